//! The state a function builds once per cold start and shares across requests.

use std::path::Path;
use std::sync::Arc;

use crate::config::{required_var, AdminConfig, AwsStoreConfig, Config, ADMIN_JWT_SECRET_ARN, JWT_SECRET_ARN};
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::push::{ConnectFollowUp, ConnectionGateway, InvokePostConnect, LocalGatewayFollowsUp, ManagementApi};
use crate::secrets;
use crate::store::dynamo::{self, DynamoUserStore};
use crate::store::dynamo_group::DynamoGroupStore;
use crate::store::dynamo_manager::DynamoManagerStore;
use crate::store::dynamo_social::{DynamoMessageLog, DynamoOfflineQueue, DynamoSocialStore};
use crate::store::embedded::{
    EmbeddedDb, EmbeddedOfflineQueue, EmbeddedSessionCache, EmbeddedSocialStore, EmbeddedUserStore,
};
use crate::store::embedded_fanout::EmbeddedFanoutQueue;
use crate::store::embedded_group::EmbeddedGroupStore;
use crate::store::embedded_manager::EmbeddedManagerStore;
use crate::store::embedded_messaging::{EmbeddedConnectionRegistry, EmbeddedMessageLog};
use crate::store::redis::RedisSessionCache;
use crate::store::sqs::SqsFanoutQueue;
use crate::store::{
    ConnectionRegistry, FanoutQueue, GroupStore, ManagerStore, MessageLog, OfflineQueue, SessionCache, SocialStore,
    UserStore,
};

#[derive(Clone)]
pub struct AppState {
    pub config: Config,
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionCache>,
    pub social: Arc<dyn SocialStore>,
    pub groups: Arc<dyn GroupStore>,
    pub offline: Arc<dyn OfflineQueue>,
    /// Push-or-queue delivery with the fan-out queue behind it (spec 6.2).
    pub delivery: Arc<Delivery>,
    pub connections: Arc<dyn ConnectionRegistry>,
    pub gateway: Arc<dyn ConnectionGateway>,
    pub follow_up: Arc<dyn ConnectFollowUp>,
    pub messages: Arc<dyn MessageLog>,
    /// The admins; present exactly when `config.admin` is (admin functions, chat-local).
    pub managers: Option<Arc<dyn ManagerStore>>,
}

impl AppState {
    /// Deployed functions: strict configuration, the keys from Secrets Manager, DynamoDB and
    /// Redis from the environment; `admin` adds the admin key and `MANAGERS_TABLE`.
    pub async fn from_env(admin: bool) -> AppResult<AppState> {
        let mut stores = AwsStoreConfig::from_env()?;
        let mut secret_ids = vec![required_var(JWT_SECRET_ARN)?];
        if admin {
            stores.managers_table = Some(required_var("MANAGERS_TABLE")?);
            secret_ids.push(required_var(ADMIN_JWT_SECRET_ARN)?);
        }
        let shared = dynamo::lambda_sdk_config();
        let mut keys = secrets::fetch(&shared, &secret_ids).await?.into_iter();
        let mut config = Config::from_env(keys.next().unwrap_or_default())?;
        if let Some(admin_key) = keys.next() {
            config = config.with_admin(AdminConfig::build(admin_key)?)?;
        }
        let queue_url = stores.fanout_queue_url.clone().unwrap_or_default();
        let fanout = Arc::new(SqsFanoutQueue::new(&shared, &queue_url, None));
        AppState::aws_on(&shared, config, &stores, dynamo::endpoint_from_env("DYNAMODB").as_deref(), fanout)
    }

    /// The admin API's settings and store (spec 7); an internal error where they are not configured.
    pub fn admin(&self) -> AppResult<(&AdminConfig, &dyn ManagerStore)> {
        match (&self.config.admin, &self.managers) {
            (Some(config), Some(managers)) => Ok((config, managers.as_ref())),
            _ => Err(AppError::internal("the admin API is not configured in this function")),
        }
    }

    /// DynamoDB (optionally at an emulator's `endpoint`, which then serves SQS too), Redis, and
    /// the SQS fan-out queue at `fanout_queue_url`.
    pub async fn aws(config: Config, stores: &AwsStoreConfig, endpoint: Option<&str>) -> AppResult<AppState> {
        let shared = dynamo::sdk_config(endpoint.is_some()).await;
        let queue_url = stores
            .fanout_queue_url
            .as_deref()
            .ok_or_else(|| AppError::Config("missing required environment variable FANOUT_QUEUE_URL".into()))?;
        let fanout = Arc::new(SqsFanoutQueue::new(&shared, queue_url, endpoint));
        AppState::aws_on(&shared, config, stores, endpoint, fanout)
    }

    /// DynamoDB and Redis as [`AppState::aws`], with the fan-out queue embedded under `dir` and
    /// worked by this process (chat-local pointed at DynamoDB and Redis).
    pub async fn aws_with_local_queue(
        config: Config,
        stores: &AwsStoreConfig,
        endpoint: Option<&str>,
        dir: &Path,
    ) -> AppResult<AppState> {
        let queue = EmbeddedFanoutQueue::new(EmbeddedDb::open(dir)?);
        let shared = dynamo::sdk_config(endpoint.is_some()).await;
        let state = AppState::aws_on(&shared, config, stores, endpoint, Arc::new(queue.clone()))?;
        spawn_fanout_worker(queue, state.delivery.clone());
        Ok(state)
    }

    fn aws_on(
        shared: &aws_config::SdkConfig,
        config: Config,
        stores: &AwsStoreConfig,
        endpoint: Option<&str>,
        fanout: Arc<dyn FanoutQueue>,
    ) -> AppResult<AppState> {
        let client = dynamo::client_from(shared, endpoint);
        let ids = stores.id_block_size;
        let offline: Arc<dyn OfflineQueue> = Arc::new(DynamoOfflineQueue::new(client.clone(), &stores.social_table));
        let sessions = Arc::new(RedisSessionCache::connect(&stores.redis_url, stores.redis_cluster)?);
        let connections: Arc<dyn ConnectionRegistry> = sessions.clone();
        let gateway: Arc<dyn ConnectionGateway> = Arc::new(ManagementApi::new(shared, &stores.websocket_endpoint));
        let managers: Option<Arc<dyn ManagerStore>> = match (&config.admin, &stores.managers_table) {
            (None, _) => None,
            (Some(_), Some(table)) => Some(Arc::new(DynamoManagerStore::new(client.clone(), table))),
            (Some(_), None) => {
                return Err(AppError::Config("missing required environment variable MANAGERS_TABLE".into()))
            }
        };
        let follow_up: Arc<dyn ConnectFollowUp> = match &stores.post_connect_function {
            Some(function) => Arc::new(InvokePostConnect::new(shared, function)),
            None => Arc::new(LocalGatewayFollowsUp),
        };
        Ok(AppState {
            config,
            users: Arc::new(DynamoUserStore::new(client.clone(), &stores.users_table).with_id_blocks(ids)),
            sessions,
            social: Arc::new(DynamoSocialStore::new(client.clone(), &stores.social_table).with_id_blocks(ids)),
            groups: Arc::new(DynamoGroupStore::new(client.clone(), &stores.social_table).with_id_blocks(ids)),
            messages: Arc::new(DynamoMessageLog::new(client, &stores.social_table)),
            delivery: Arc::new(Delivery::new(connections.clone(), gateway.clone(), offline.clone(), fanout)),
            offline,
            connections,
            gateway,
            follow_up,
            managers,
        })
    }

    /// The embedded persistent store under `dir` (chat-local's default), its fan-out queue worked
    /// by this process; pushes go to the local gateway's `@connections` API at `websocket_endpoint`.
    pub async fn embedded(config: Config, dir: &Path, websocket_endpoint: &str) -> AppResult<AppState> {
        let db = EmbeddedDb::open(dir)?;
        let queue = EmbeddedFanoutQueue::new(db.clone());
        let shared = dynamo::sdk_config(true).await;
        let offline: Arc<dyn OfflineQueue> = Arc::new(EmbeddedOfflineQueue::new(db.clone()));
        let sessions = EmbeddedSessionCache::new(db.clone());
        let connections: Arc<dyn ConnectionRegistry> = Arc::new(EmbeddedConnectionRegistry::new(sessions.clone()));
        let gateway: Arc<dyn ConnectionGateway> = Arc::new(ManagementApi::new(&shared, websocket_endpoint));
        let managers: Option<Arc<dyn ManagerStore>> =
            config.admin.as_ref().map(|_| Arc::new(EmbeddedManagerStore::new(db.clone())) as Arc<dyn ManagerStore>);
        let state = AppState {
            config,
            managers,
            users: Arc::new(EmbeddedUserStore::new(db.clone())),
            sessions: Arc::new(sessions),
            social: Arc::new(EmbeddedSocialStore::new(db.clone())),
            groups: Arc::new(EmbeddedGroupStore::new(db.clone())),
            messages: Arc::new(EmbeddedMessageLog::new(db)),
            delivery: Arc::new(Delivery::new(
                connections.clone(),
                gateway.clone(),
                offline.clone(),
                Arc::new(queue.clone()),
            )),
            offline,
            connections,
            gateway,
            follow_up: Arc::new(LocalGatewayFollowsUp),
        };
        spawn_fanout_worker(queue, state.delivery.clone());
        Ok(state)
    }
}

/// Works the embedded fan-out queue in the background, as Lambda's event source mapping works the
/// SQS queue in AWS: the same [`Delivery::run`] runs each job.
fn spawn_fanout_worker(queue: EmbeddedFanoutQueue, delivery: Arc<Delivery>) {
    tokio::spawn(queue.work(move |job| {
        let delivery = delivery.clone();
        async move { delivery.run(&job).await }
    }));
}

/// Log lines on stderr (CloudWatch adds timestamps; chat-local keeps stdout for its banner):
/// one JSON object per line with the enclosing spans' fields (request id, route, user id) where
/// Lambda's `LoggingConfig` asks for JSON (`AWS_LAMBDA_LOG_FORMAT`), plain text otherwise.
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, filters (default `info`).
pub fn init_tracing() {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.to_ascii_lowercase())
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(true).try_init()
    } else {
        builder.without_time().try_init()
    };
}

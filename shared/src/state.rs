//! The state a function builds once per cold start and shares across requests.

use std::path::Path;
use std::sync::Arc;

use crate::config::{AwsStoreConfig, Config};
use crate::error::AppResult;
use crate::notify::{Notifier, OfflineNotifier};
use crate::store::dynamo::{self, DynamoUserStore};
use crate::store::dynamo_social::{DynamoOfflineQueue, DynamoSocialStore};
use crate::store::embedded::{
    EmbeddedDb, EmbeddedOfflineQueue, EmbeddedSessionCache, EmbeddedSocialStore, EmbeddedUserStore,
};
use crate::store::redis::RedisSessionCache;
use crate::store::{OfflineQueue, SessionCache, SocialStore, UserStore};

#[derive(Clone)]
pub struct AppState {
    pub config: Config,
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionCache>,
    pub social: Arc<dyn SocialStore>,
    pub offline: Arc<dyn OfflineQueue>,
    pub notifier: Arc<dyn Notifier>,
}

impl AppState {
    /// Deployed functions: strict configuration, DynamoDB and Redis from the environment.
    pub async fn from_env() -> AppResult<AppState> {
        let config = Config::from_env()?;
        let stores = AwsStoreConfig::from_env()?;
        AppState::aws(config, &stores, None).await
    }

    /// DynamoDB (optionally at `endpoint`) and Redis.
    pub async fn aws(config: Config, stores: &AwsStoreConfig, endpoint: Option<&str>) -> AppResult<AppState> {
        let client = dynamo::client(endpoint).await;
        let offline: Arc<dyn OfflineQueue> = Arc::new(DynamoOfflineQueue::new(client.clone(), &stores.social_table));
        Ok(AppState {
            config,
            users: Arc::new(DynamoUserStore::new(client.clone(), &stores.users_table)),
            sessions: Arc::new(RedisSessionCache::connect(&stores.redis_url)?),
            social: Arc::new(DynamoSocialStore::new(client, &stores.social_table)),
            notifier: Arc::new(OfflineNotifier::new(offline.clone())),
            offline,
        })
    }

    /// The embedded persistent store under `dir` (chat-local's default).
    pub fn embedded(config: Config, dir: &Path) -> AppResult<AppState> {
        let db = EmbeddedDb::open(dir)?;
        let offline: Arc<dyn OfflineQueue> = Arc::new(EmbeddedOfflineQueue::new(db.clone()));
        Ok(AppState {
            config,
            users: Arc::new(EmbeddedUserStore::new(db.clone())),
            sessions: Arc::new(EmbeddedSessionCache::new(db.clone())),
            social: Arc::new(EmbeddedSocialStore::new(db)),
            notifier: Arc::new(OfflineNotifier::new(offline.clone())),
            offline,
        })
    }
}

/// Plain log lines on stderr (CloudWatch adds timestamps; chat-local keeps stdout for its banner);
/// `RUST_LOG` filters.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_writer(std::io::stderr)
        .try_init();
}

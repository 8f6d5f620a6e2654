//! Test harness: real `redis-server` and moto (DynamoDB API) processes on free loopback ports,
//! backends built on them, and helpers to call the handlers as API Gateway would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chat_shared::config::{AdminConfig, AwsStoreConfig, Config, COURSE_VISITOR_SALT};
use chat_shared::store::dynamo::{self, DynamoUserStore};
use chat_shared::store::dynamo_manager::DynamoManagerStore;
use chat_shared::store::dynamo_social::DynamoSocialStore;
use chat_shared::store::sqs::SqsFanoutQueue;
use chat_shared::AppState;
use serde_json::{json, Value};

pub mod runtime_api;

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";
/// The admin token key of the tests: another key than the chat one, as in production.
pub const TEST_ADMIN_SECRET: &str = "admin-secret-admin-secret-admin-secret";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A registered user to create straight through a store (no password hashing): benchmarks and
/// tests that need many users.
pub fn plain_user(username: &str) -> chat_shared::model::NewUser {
    chat_shared::model::NewUser {
        username: username.to_owned(),
        password: "not-a-login".to_owned(),
        role: chat_shared::model::Role::User,
        avatar: String::new(),
        devicefingeruuid: String::new(),
        stats: chat_shared::model::DeviceStats::default(),
        now: chat_shared::clock::now_secs(),
        logged_in: false,
    }
}

/// The configuration of every test backend, with the admin API enabled.
pub fn test_config() -> Config {
    let config = Config::build(COURSE_VISITOR_SALT.to_owned(), TEST_SECRET.as_bytes().to_vec()).expect("config");
    config.with_admin(AdminConfig::build(TEST_ADMIN_SECRET.as_bytes().to_vec()).expect("admin config")).expect("admin")
}

/// A `redis-server` owned by one test; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer { port: free_port(), child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (make test installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    /// Simulates an outage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 3-master Redis Cluster (cluster mode enabled, no replicas) of `redis-server` processes owned
/// by one test, its slots assigned by `redis-cli --cluster create`; killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = TempDir::new();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_port();
                let child = Command::new("redis-server")
                    .current_dir(&dir.0)
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                    // The bus port on a free port too (the default, port + 10000, may be taken).
                    .args(["--cluster-port", &free_port().to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server on PATH (make test installs it)");
                wait_for_port(port, "redis-server (cluster node)");
                RedisServer { port, child: Some(child) }
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli on PATH (it comes with redis-server)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_until_ready();
        cluster
    }

    /// A node's URL: the client learns the others from it.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// Until every node reports `cluster_state:ok` (slots assigned and known everywhere).
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "the Redis Cluster did not become ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct Moto {
    port: u16,
    // Held for the life of the test process: when the pipe closes, the launcher stops moto.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// The moto server shared by every test of this process (tables are per test).
pub fn moto_endpoint() -> String {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    let moto = MOTO.get_or_init(|| {
        let python = std::env::var("MOTO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
        let mut child = Command::new(&python)
            .arg(workspace_root().join("tests/moto_launcher.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} (run `make test-deps`): {e}", python.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("moto port");
        let port: u16 = line.trim().parse().expect("moto printed its port");
        wait_for_port(port, "moto");
        let stdin = child.stdin.take().expect("stdin");
        Moto { port, _stdin: Mutex::new(stdin), _child: Mutex::new(child) }
    });
    format!("http://127.0.0.1:{}", moto.port)
}

/// A fresh table name, so tests sharing the moto server never see each other's data.
pub fn unique_table() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("chat-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The backends every conformance and endpoint test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Embedded,
    DynamoRedis,
    /// DynamoDB and a 3-master Redis Cluster (`REDIS_CLUSTER=true`).
    DynamoRedisCluster,
}

/// A backend with the processes and files it needs; they go away on drop.
pub struct Backend {
    pub state: Arc<AppState>,
    /// Where the state's pushes go; [`Backend::serve`] serves chat-local's gateway on it.
    gateway_listener: Mutex<Option<std::net::TcpListener>>,
    pub redis: Option<RedisServer>,
    pub redis_cluster: Option<RedisCluster>,
    pub table: Option<String>,
    /// The DynamoDB tables and Redis of a [`BackendKind::DynamoRedis`] backend.
    pub stores: Option<AwsStoreConfig>,
    /// The `@connections` API the state's pushes go to (served by [`Backend::serve`]).
    pub websocket_endpoint: String,
    pub dynamodb_endpoint: Option<String>,
    _dir: Option<TempDir>,
}

impl Backend {
    pub async fn new(kind: BackendKind) -> Backend {
        Backend::with_config(kind, test_config()).await
    }

    /// A backend whose state has `config` (e.g. lower limits).
    pub async fn with_config(kind: BackendKind, config: Config) -> Backend {
        match kind {
            BackendKind::Embedded => {
                let dir = TempDir::new();
                let (listener, endpoint) = gateway_listener();
                let state = AppState::embedded(config, &dir.0, &endpoint).await.expect("embedded state");
                Backend {
                    state: Arc::new(state),
                    gateway_listener: Mutex::new(Some(listener)),
                    redis: None,
                    redis_cluster: None,
                    table: None,
                    stores: None,
                    websocket_endpoint: endpoint,
                    dynamodb_endpoint: None,
                    _dir: Some(dir),
                }
            }
            BackendKind::DynamoRedis => {
                let redis = RedisServer::start();
                let endpoint = moto_endpoint();
                Backend::aws_with_config(redis, &endpoint, &endpoint, config).await
            }
            BackendKind::DynamoRedisCluster => {
                let cluster = RedisCluster::start();
                let endpoint = moto_endpoint();
                let mut backend = Backend::aws_on(&cluster.url(), true, &endpoint, &endpoint, config).await;
                backend.redis_cluster = Some(cluster);
                backend.consume_fanout_queue();
                backend
            }
        }
    }

    /// DynamoDB reached through `endpoint` (maybe a proxy), table created through `admin_endpoint`.
    pub async fn aws(redis: RedisServer, endpoint: &str, admin_endpoint: &str) -> Backend {
        Backend::aws_with_config(redis, endpoint, admin_endpoint, test_config()).await
    }

    /// [`Backend::aws`] with `config`. The fan-out queue is an SQS queue in moto (with a
    /// dead-letter queue after 5 receives, as the template's), consumed by the event source
    /// mapping's emulation with the `message-fanout` handler.
    pub async fn aws_with_config(redis: RedisServer, endpoint: &str, admin_endpoint: &str, config: Config) -> Backend {
        let backend = Backend::aws_without_consumer(redis, endpoint, admin_endpoint, config).await;
        backend.consume_fanout_queue();
        backend
    }

    /// Works the SQS fan-out queue as the event source mapping would, with `message-fanout`.
    fn consume_fanout_queue(&self) {
        tokio::spawn(chat_functions::local::consume_fanout_queue(
            self.state.clone(),
            self.fanout_queue(),
            FANOUT_VISIBILITY_SECS,
        ));
    }

    /// [`Backend::aws_with_config`] with nobody consuming the fan-out queue (see
    /// [`Backend::fanout_queue`]).
    pub async fn aws_without_consumer(
        redis: RedisServer,
        endpoint: &str,
        admin_endpoint: &str,
        config: Config,
    ) -> Backend {
        let redis_url = redis.url();
        Backend::aws_through(redis, &redis_url, endpoint, admin_endpoint, config).await
    }

    /// [`Backend::aws_without_consumer`] reaching Redis at `redis_url` (maybe a proxy).
    pub async fn aws_through(
        redis: RedisServer,
        redis_url: &str,
        endpoint: &str,
        admin_endpoint: &str,
        config: Config,
    ) -> Backend {
        let mut backend = Backend::aws_on(redis_url, false, endpoint, admin_endpoint, config).await;
        backend.redis = Some(redis);
        backend
    }

    /// Fresh tables in the DynamoDB at `admin_endpoint`, reached at `endpoint`, and the Redis (or
    /// Redis Cluster) at `redis_url`; the processes are the caller's.
    async fn aws_on(
        redis_url: &str,
        redis_cluster: bool,
        endpoint: &str,
        admin_endpoint: &str,
        config: Config,
    ) -> Backend {
        let (table, social_table, managers_table) = (unique_table(), unique_table(), unique_table());
        let admin = dynamo::client(Some(admin_endpoint)).await;
        DynamoUserStore::new(admin.clone(), &table).create_table_if_missing().await.expect("create users table");
        DynamoSocialStore::new(admin.clone(), &social_table)
            .create_table_if_missing()
            .await
            .expect("create social table");
        DynamoManagerStore::new(admin, &managers_table).create_table_if_missing().await.expect("create managers table");
        let (listener, websocket_endpoint) = gateway_listener();
        let stores = AwsStoreConfig {
            users_table: table.clone(),
            social_table,
            redis_url: redis_url.to_owned(),
            redis_cluster,
            websocket_endpoint: websocket_endpoint.clone(),
            post_connect_function: None,
            managers_table: Some(managers_table),
            fanout_queue_url: Some(create_fanout_queue(admin_endpoint).await.0),
            id_block_size: 1,
        };
        let state = Arc::new(AppState::aws(config, &stores, Some(endpoint)).await.expect("aws state"));
        Backend {
            state,
            gateway_listener: Mutex::new(Some(listener)),
            redis: None,
            redis_cluster: None,
            table: Some(table),
            stores: Some(stores),
            websocket_endpoint,
            dynamodb_endpoint: Some(admin_endpoint.to_owned()),
            _dir: None,
        }
    }

    /// The SQS fan-out queue of a DynamoDB + Redis backend, reached directly (not through a proxy).
    pub fn fanout_queue(&self) -> SqsFanoutQueue {
        let stores = self.stores.as_ref().expect("a DynamoDB + Redis backend");
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                aws_sdk_sqs::config::Credentials::new("local", "local", None, None, "local"),
            ))
            .build();
        let url = stores.fanout_queue_url.as_deref().expect("fan-out queue");
        SqsFanoutQueue::new(&shared, url, self.dynamodb_endpoint.as_deref())
    }

    /// Serves a fault-injecting `@connections` API (instead of chat-local's gateway) where this
    /// backend's pushes go.
    pub fn serve_fake_gateway(&self) -> FakeGateway {
        let listener = self.gateway_listener.lock().expect("lock").take().expect("served once");
        FakeGateway::serve(listener)
    }

    /// Serves chat-local's gateway for this backend's state under [`test_limits`]: clients' HTTP
    /// routes and `/ws` on the returned `127.0.0.1:<port>`, `@connections` at
    /// [`Backend::websocket_endpoint`].
    pub fn serve(&self) -> String {
        self.serve_with(test_limits())
    }

    /// [`Backend::serve`] under other limits. The state's pushes go to the `@connections`
    /// listener reserved when the backend was made; clients get a listener of their own.
    pub fn serve_with(&self, limits: chat_functions::local::Limits) -> String {
        let management = self.gateway_listener.lock().expect("lock").take().expect("served once");
        management.set_nonblocking(true).expect("nonblocking");
        let management = tokio::net::TcpListener::from_std(management).expect("tokio listener");
        let public = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gateway");
        let addr = public.local_addr().expect("addr").to_string();
        public.set_nonblocking(true).expect("nonblocking");
        let public = tokio::net::TcpListener::from_std(public).expect("tokio listener");
        let state = self.state.clone();
        tokio::spawn(chat_functions::local::serve_gateway(public, management, state, limits, std::future::pending()));
        addr
    }

    /// A request through the API Gateway emulation to the route's handler: `(status, body)`.
    pub async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (parts, ()) = builder.body(()).expect("request").into_parts();
        let peer: SocketAddr = "127.0.0.1:50000".parse().expect("addr");
        let response = chat_functions::local::dispatch(self.state.clone(), &parts, body.as_bytes(), peer).await;
        let status = response.status().as_u16();
        let body = response.body().as_ref();
        let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).expect("JSON body") };
        (status, json)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, &[("content-type", "application/json")], &body.to_string()).await
    }

    /// A freshly signed `POST /api/visitorRegister` for `device`, as the client sends it.
    pub async fn visitor_register(&self, device: &str) -> (u16, Value) {
        let ts = chat_shared::clock::now_ms();
        let sign = visitor_sign(device, ts);
        let body = serde_json::json!({"deviceId": device, "timestamp": ts}).to_string();
        self.call(
            "POST",
            "/api/visitorRegister",
            &[("x-security-sign", &sign), ("content-type", "application/json")],
            &body,
        )
        .await
    }

    pub async fn post_with_token(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("POST", path, &[("token", token), ("content-type", "application/json")], "{}").await
    }
}

impl Backend {
    /// The environment of a deployed function on this (DynamoDB + Redis) backend, as the template
    /// sets it: tables, Redis, the management API at `websocket_endpoint` (chat-local's gateway
    /// from [`Backend::serve`]), and the test keys as Secrets Manager secrets in moto.
    pub async fn function_env(&self, websocket_endpoint: &str) -> Vec<(String, String)> {
        let stores = self.stores.as_ref().expect("a DynamoDB + Redis backend");
        let endpoint = self.dynamodb_endpoint.clone().expect("moto endpoint");
        let jwt_arn = create_secret(&endpoint, TEST_SECRET).await;
        let admin_arn = create_secret(&endpoint, TEST_ADMIN_SECRET).await;
        [
            ("USERS_TABLE", stores.users_table.clone()),
            ("SOCIAL_TABLE", stores.social_table.clone()),
            ("MANAGERS_TABLE", stores.managers_table.clone().unwrap_or_default()),
            ("REDIS_URL", stores.redis_url.clone()),
            ("REDIS_CLUSTER", stores.redis_cluster.to_string()),
            ("WEBSOCKET_ENDPOINT", websocket_endpoint.to_owned()),
            ("POST_CONNECT_FUNCTION", "ws-post-connect".to_owned()),
            ("VISITOR_SALT", COURSE_VISITOR_SALT.to_owned()),
            ("JWT_SECRET_ARN", jwt_arn),
            ("ADMIN_JWT_SECRET_ARN", admin_arn),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.clone()),
            ("AWS_ENDPOINT_URL_SQS", endpoint),
            ("FANOUT_QUEUE_URL", stores.fanout_queue_url.clone().unwrap_or_default()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            // As the template sets it in Lambda: the CA bundle alone, so the TLS setup of a cold
            // start reads one file instead of probing the hashed directory beside it too.
            ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// How long a fan-out job taken from the test queue stays hidden: short, so retries after a
/// failure come within the tests' patience.
pub const FANOUT_VISIBILITY_SECS: i32 = 2;

/// A fan-out queue in moto with its dead-letter queue (5 receives, as in template.yaml):
/// `(queue URL, dead-letter queue URL)`.
pub async fn create_fanout_queue(endpoint: &str) -> (String, String) {
    let shared = dynamo::sdk_config(true).await;
    let config = aws_sdk_sqs::config::Builder::from(&shared).endpoint_url(endpoint).build();
    let sqs = aws_sdk_sqs::Client::from_conf(config);
    let name = format!("fanout-{}", uuid::Uuid::new_v4().simple());
    let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("create DLQ");
    let dlq_url = dlq.queue_url.expect("DLQ URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("DLQ ARN")
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("QueueArn");
    let redrive = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, FANOUT_VISIBILITY_SECS.to_string())
        .send()
        .await
        .expect("create fan-out queue");
    (queue.queue_url.expect("queue URL"), dlq_url)
}

/// A new Secrets Manager secret holding `value` at `endpoint` (moto); returns its ARN.
pub async fn create_secret(endpoint: &str, value: &str) -> String {
    let shared = dynamo::sdk_config(true).await;
    let config = aws_sdk_secretsmanager::config::Builder::from(&shared).endpoint_url(endpoint).build();
    let created = aws_sdk_secretsmanager::Client::from_conf(config)
        .create_secret()
        .name(format!("chat-key-{}", uuid::Uuid::new_v4().simple()))
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    created.arn.expect("secret ARN")
}

/// The credentials a sample event is refreshed with: a user's token (events with a `token`
/// header, WebSocket connects, the post-connect step) and a manager's (admin `Authorization`).
#[derive(Debug, Clone, Default)]
pub struct EventCredentials {
    pub user_token: String,
    pub admin_token: String,
}

/// Makes a checked-in sample event valid now: visitor requests are re-signed with a fresh
/// timestamp (the server refuses signatures older than 5 minutes), tokens are replaced by live
/// ones. `infra/resign-event.py` does the first part for `sam local invoke`.
pub fn refresh_event(event: &mut Value, credentials: &EventCredentials) {
    resign_visitor_request(event);
    if let Some(token) = event.pointer_mut("/headers/token") {
        *token = Value::String(credentials.user_token.clone());
    }
    if let Some(authorization) = event.pointer_mut("/headers/authorization") {
        *authorization = Value::String(format!("Bearer {}", credentials.admin_token));
    }
    if let Some(token) = event.pointer_mut("/queryStringParameters/token") {
        *token = Value::String(credentials.user_token.clone());
    }
    // The post-connect step's own event carries the token of the connect it follows.
    if event.get("connectionId").is_some() && event.get("token").is_some() {
        event["token"] = Value::String(credentials.user_token.clone());
    }
}

fn resign_visitor_request(event: &mut Value) {
    let Some(body) = event["body"].as_str() else { return };
    let Ok(mut body) = serde_json::from_str::<Value>(body) else { return };
    let (Some(device), Some(_)) = (body["deviceId"].as_str().map(str::to_owned), body.get("timestamp")) else { return };
    let ts = chat_shared::clock::now_ms();
    body["timestamp"] = json!(ts);
    event["body"] = Value::String(body.to_string());
    event["headers"]["x-security-sign"] = Value::String(visitor_sign(&device, ts));
    event["headers"]["content-length"] = Value::String(event["body"].as_str().map_or(0, str::len).to_string());
}

/// The built multi-call Lambda binary of `profile` (`debug` or `release`) in the shared target dir.
pub fn function_binary(profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let binary = target.join(profile).join("bootstrap");
    assert!(binary.exists(), "{} is missing: run `make build-bins` (cargo build --bins) first", binary.display());
    binary
}

/// chat-local's limits in the tests: short deadlines, so the hostile-client tests see them act;
/// a connection cap the tests can reach.
pub fn test_limits() -> chat_functions::local::Limits {
    chat_functions::local::Limits {
        max_connections: 256,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        http_idle: Duration::from_secs(2),
        websocket_idle: Duration::from_secs(3),
        ..chat_functions::local::Limits::default()
    }
}

/// A registered or visitor account as its login response describes it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub uuid: String,
    pub token: String,
}

impl Member {
    /// From a LoginUser envelope (spec 2.6).
    pub fn from_login(body: &Value) -> Member {
        let d = &body["data"];
        Member {
            id: d["id"].as_i64().expect("id"),
            uuid: d["uuid"].as_str().expect("uuid").to_owned(),
            token: d["token"].as_str().expect("token").to_owned(),
        }
    }
}

/// The expected `(status, envelope)` of a 400.
pub fn fail(data: &str) -> (u16, Value) {
    (400, serde_json::json!({"msg": "fail", "data": data}))
}

/// The expected `(status, envelope)` of a 422.
pub fn invalid(data: &str) -> (u16, Value) {
    (422, serde_json::json!({"msg": "fail", "data": data}))
}

/// The expected `(status, envelope)` of a success.
pub fn ok(data: Value) -> (u16, Value) {
    (200, serde_json::json!({"msg": "ok", "data": data}))
}

impl Backend {
    /// Registers `username` (password `123456`) through `regChat`.
    pub async fn register(&self, username: &str) -> Member {
        let body = serde_json::json!({"username": username, "password": "123456"});
        let (status, body) = self.post_json("/api/regChat", body).await;
        assert_eq!(status, 200, "{body}");
        Member::from_login(&body)
    }

    /// A JSON request carrying `who`'s token.
    pub async fn call_as(&self, method: &str, path: &str, who: &Member, body: Value) -> (u16, Value) {
        self.call(method, path, &[("token", &who.token), ("content-type", "application/json")], &body.to_string()).await
    }

    /// Makes `a` and `c` friends through the social store, without notices (the friend endpoints
    /// have their own tests).
    pub async fn befriend(&self, a: i64, c: i64) {
        use chat_shared::store::FriendRemarks;
        let app = self.state.social.apply(a, c, "", 1).await.expect("apply").expect("new application");
        let remarks = FriendRemarks { decider_row: String::new(), applicant_row: String::new() };
        self.state.social.decide(&app, chat_shared::social::AGREE, remarks, 1).await.expect("decide");
    }

    /// Befriends `owner` with `friends`, then creates a group of `owner` with all its friends
    /// through `group/create`; returns its id (the newest of `owner`'s groups).
    pub async fn create_group(&self, owner: &Member, friends: &[&Member]) -> i64 {
        for f in friends {
            self.befriend(owner.id, f.id).await;
        }
        let rows: Vec<i64> = self.state.social.friends(owner.id).await.expect("friends").iter().map(|f| f.id).collect();
        let created = self.call_as("POST", "/api/chat/group/create", owner, serde_json::json!({"userIds": rows})).await;
        assert_eq!(created, ok(serde_json::json!("ok")));
        let (_, list) = self.call_as("GET", "/api/chat/grouplist/1", owner, serde_json::json!({})).await;
        list["data"][0]["id"].as_i64().expect("group id")
    }

    /// Stores `message` once and queues it offline for `users`; returns its key.
    pub async fn queue_offline(&self, users: &[i64], message: Value) -> String {
        let stored = chat_shared::store::StoredMessage::new(message);
        self.state.offline.store(&stored).await.expect("store");
        self.state.offline.enqueue(&stored.key, users).await.expect("enqueue");
        stored.key
    }

    /// What is queued offline for a user, oldest first (left in the queue).
    pub async fn queued(&self, user: i64) -> Vec<Value> {
        let queue = self.state.offline.peek(user, 1000).await.expect("offline queue");
        queue.into_iter().map(|(_, m)| m.expect("a queued message is stored")).collect()
    }
}

/// A loopback listener reserved for the gateway, and its URL.
fn gateway_listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gateway");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// The `X-Security-Sign` of a visitor request, as the client computes it.
pub fn visitor_sign(device_id: &str, timestamp: i64) -> String {
    chat_shared::signing::visitor_sign(device_id, timestamp, COURSE_VISITOR_SALT)
}

/// What [`FakeGateway`] answers to PostToConnection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    Accept,
    /// Every post is answered with this status (429 throttling, 500, 410 gone…).
    Status(u16),
    /// Posts are never answered (the client times out).
    Hang,
}

/// A stand-in for API Gateway's `@connections` API that records what each connection was sent
/// and fails on demand, for counting deliveries under faults. Real HTTP: the SDK client of the
/// state posts to it as to API Gateway.
#[derive(Clone)]
pub struct FakeGateway {
    mode: Arc<Mutex<GatewayMode>>,
    /// Posts answered 410 with this probability (random disconnects).
    gone_ratio: Arc<Mutex<f64>>,
    /// Connections that are gone for good.
    gone: Arc<Mutex<std::collections::HashSet<String>>>,
    frames: Arc<Mutex<std::collections::HashMap<String, Vec<Value>>>>,
}

impl FakeGateway {
    fn serve(listener: std::net::TcpListener) -> FakeGateway {
        let gateway = FakeGateway {
            mode: Arc::new(Mutex::new(GatewayMode::Accept)),
            gone_ratio: Arc::new(Mutex::new(0.0)),
            gone: Arc::default(),
            frames: Arc::default(),
        };
        let state = gateway.clone();
        let app = axum::Router::new().route(
            "/@connections/{id}",
            axum::routing::post(
                |axum::extract::State(g): axum::extract::State<FakeGateway>,
                 axum::extract::Path(id): axum::extract::Path<String>,
                 body: axum::body::Bytes| async move { g.post(id, body).await },
            ),
        );
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await });
        gateway
    }

    async fn post(&self, id: String, body: axum::body::Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mode = *self.mode.lock().expect("lock");
        let gone = rand::random::<f64>() < *self.gone_ratio.lock().expect("lock")
            || self.gone.lock().expect("lock").contains(&id);
        let status = match mode {
            GatewayMode::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                500
            }
            GatewayMode::Status(status) => status,
            GatewayMode::Accept if gone => 410,
            GatewayMode::Accept if body.len() > 128 * 1024 => 413,
            GatewayMode::Accept => 200,
        };
        let error_type = match status {
            410 => "GoneException",
            413 => "PayloadTooLargeException",
            429 => "LimitExceededException",
            _ => "InternalServerErrorException",
        };
        if status != 200 {
            let status = axum::http::StatusCode::from_u16(status).expect("status");
            return (status, [("x-amzn-ErrorType", error_type)], r#"{"message":null}"#).into_response();
        }
        let frame: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.frames.lock().expect("lock").entry(id).or_default().push(frame);
        axum::http::StatusCode::OK.into_response()
    }

    pub fn set_mode(&self, mode: GatewayMode) {
        *self.mode.lock().expect("lock") = mode;
    }

    /// Answers this share of posts (0.0–1.0) with 410 Gone.
    pub fn set_gone_ratio(&self, ratio: f64) {
        *self.gone_ratio.lock().expect("lock") = ratio;
    }

    /// From now on `connection` is gone (410).
    pub fn hang_up(&self, connection: &str) {
        self.gone.lock().expect("lock").insert(connection.to_owned());
    }

    /// Frames of type `kind` connection `connection` accepted.
    pub fn frames_of_type(&self, connection: &str, kind: &str) -> usize {
        let frames = self.frames.lock().expect("lock");
        frames.get(connection).map_or(0, |f| f.iter().filter(|f| f["type"] == kind).count())
    }

    /// How many `singleChat` frames carrying message `id` connection `connection` accepted.
    pub fn received(&self, connection: &str, id: &str) -> usize {
        let frames = self.frames.lock().expect("lock");
        frames.get(connection).map_or(0, |f| f.iter().filter(|f| f["data"]["id"] == id).count())
    }

    /// Message ids each connection accepted.
    pub fn received_ids(&self) -> std::collections::HashMap<String, Vec<String>> {
        let frames = self.frames.lock().expect("lock");
        frames
            .iter()
            .map(|(c, f)| (c.clone(), f.iter().filter_map(|f| f["data"]["id"].as_str().map(str::to_owned)).collect()))
            .collect()
    }
}

/// A TCP proxy in front of a server that can be made to fail: once armed, the connection that
/// carries `trip_word` is cut before forwarding it, and every connection after that is refused
/// until [`FaultyProxy::restore`] — an outage that starts in the middle of a request.
pub struct FaultyProxy {
    pub port: u16,
    armed: Arc<Mutex<Option<String>>>,
    down: Arc<AtomicBool>,
    /// One request carrying this word reaches the server; its response never reaches the client.
    lose_response: Arc<Mutex<Option<String>>>,
    /// This many DynamoDB BatchWriteItem requests are answered "all unprocessed" by the proxy.
    unprocessed: Arc<std::sync::atomic::AtomicUsize>,
    hole: Arc<BlackHole>,
    /// Requests carrying the word are answered 500 by the proxy, this many times.
    failing: Arc<Mutex<Option<(String, usize)>>>,
}

/// The faults a proxied connection may meet.
struct Faults {
    unprocessed: Arc<std::sync::atomic::AtomicUsize>,
    hole: Arc<BlackHole>,
    /// When the connection was made (black-hole epoch, during an outage?).
    born: (usize, bool),
    failing: Arc<Mutex<Option<(String, usize)>>>,
}

/// A network that swallows traffic without a word (no reset, no close), as after a failover or a
/// NAT mapping that timed out: connections open while it lasts stay dead for good.
#[derive(Default)]
struct BlackHole {
    active: AtomicBool,
    /// Bumped by each outage; a connection older than the last one is dead.
    epoch: std::sync::atomic::AtomicUsize,
}

impl BlackHole {
    /// Whether traffic of a connection born at `born` (epoch, during an outage?) is swallowed.
    fn swallows(&self, born: (usize, bool)) -> bool {
        self.active.load(Ordering::SeqCst) || born.1 || born.0 < self.epoch.load(Ordering::SeqCst)
    }
}

impl FaultyProxy {
    pub fn start(upstream_port: u16) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let armed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let down = Arc::new(AtomicBool::new(false));
        let lose_response: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let unprocessed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (armed2, down2, lose2, unprocessed2) =
            (armed.clone(), down.clone(), lose_response.clone(), unprocessed.clone());
        let hole = Arc::new(BlackHole::default());
        let hole2 = hole.clone();
        let failing: Arc<Mutex<Option<(String, usize)>>> = Arc::default();
        let failing2 = failing.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if down2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else { continue };
                let (armed, down, lose) = (armed2.clone(), down2.clone(), lose2.clone());
                let born = (hole2.epoch.load(Ordering::SeqCst), hole2.active.load(Ordering::SeqCst));
                let faults =
                    Faults { unprocessed: unprocessed2.clone(), hole: hole2.clone(), born, failing: failing2.clone() };
                pump(client, server, armed, down, lose, faults);
            }
        });
        FaultyProxy { port, armed, down, lose_response, unprocessed, hole, failing }
    }

    /// The next `times` requests carrying `trip_word` get a 500 from the proxy (never reaching
    /// the server), as from a service failing for a while.
    pub fn fail_requests(&self, trip_word: &str, times: usize) {
        *self.failing.lock().expect("lock") = Some((trip_word.to_ascii_lowercase(), times));
    }

    /// From now on traffic vanishes silently, on open and new connections alike.
    pub fn black_hole(&self) {
        self.hole.epoch.fetch_add(1, Ordering::SeqCst);
        self.hole.active.store(true, Ordering::SeqCst);
    }

    /// The network is back for new connections; those open during the outage stay dead.
    pub fn end_black_hole(&self) {
        self.hole.active.store(false, Ordering::SeqCst);
    }

    /// The next `n` BatchWriteItem requests get DynamoDB's "nothing written, try again" answer
    /// (every item back in `UnprocessedItems`) from the proxy, as under throttling.
    pub fn leave_batch_writes_unprocessed(&self, n: usize) {
        self.unprocessed.store(n, Ordering::SeqCst);
    }

    /// BatchWriteItem requests still to be answered "unprocessed".
    pub fn unprocessed_left(&self) -> usize {
        self.unprocessed.load(Ordering::SeqCst)
    }

    /// The next request carrying `trip_word` is served, but its response is dropped and the
    /// connection cut: the write happened, the client cannot know (it retries).
    pub fn lose_response_to(&self, trip_word: &str) {
        *self.lose_response.lock().expect("lock") = Some(trip_word.to_ascii_lowercase());
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn fail_on(&self, trip_word: &str) {
        *self.armed.lock().expect("lock") = Some(trip_word.to_ascii_lowercase());
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        *self.armed.lock().expect("lock") = None;
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<Option<String>>>,
    down: Arc<AtomicBool>,
    lose_response: Arc<Mutex<Option<String>>>,
    faults: Faults,
) {
    let Faults { unprocessed, hole, born, failing } = faults;
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else { return };
    let hole2 = hole.clone();
    let Ok(mut client_answer) = client.try_clone() else { return };
    let (mut server_r, mut client_w) = (server, client);
    let losing = Arc::new(AtomicBool::new(false));
    let losing2 = losing.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if hole.swallows(born) {
                continue;
            }
            let trip = armed.lock().expect("lock").clone();
            let chunk = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            let fail_this = {
                let mut failing = failing.lock().expect("lock");
                match failing.as_mut() {
                    Some((word, left)) if *left > 0 && chunk.contains(word.as_str()) => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                }
            };
            if fail_this {
                let Some(_) = read_whole_request(&mut client_r, buf[..n].to_vec()) else { break };
                let body = r#"{"__type":"InternalFailure","message":"injected by the test proxy"}"#;
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if client_answer.write_all(answer.as_bytes()).is_err() {
                    break;
                }
                continue;
            }
            if chunk.contains("dynamodb_20120810.batchwriteitem")
                && unprocessed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
            {
                let Some(request) = read_whole_request(&mut client_r, buf[..n].to_vec()) else { break };
                if answer_unprocessed(&mut client_answer, &request).is_err() {
                    break;
                }
                continue;
            }
            if down.load(Ordering::SeqCst) || trip.is_some_and(|w| chunk.contains(&w)) {
                down.store(true, Ordering::SeqCst);
                let _ = client_r.shutdown(std::net::Shutdown::Both);
                let _ = server_w.shutdown(std::net::Shutdown::Both);
                break;
            }
            {
                let mut lose = lose_response.lock().expect("lock");
                if lose.as_ref().is_some_and(|w| chunk.contains(w)) {
                    *lose = None;
                    losing.store(true, Ordering::SeqCst);
                }
            }
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match server_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if losing2.load(Ordering::SeqCst) {
                let _ = server_r.shutdown(std::net::Shutdown::Both);
                break;
            }
            if hole2.swallows(born) {
                continue;
            }
            if client_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client_w.shutdown(std::net::Shutdown::Both);
    });
}

/// The rest of an HTTP request whose first bytes are `start` (headers, then content-length bytes).
fn read_whole_request(reader: &mut TcpStream, mut request: Vec<u8>) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return Some(request[end + 4..end + 4 + length].to_vec());
            }
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
}

/// Answers a BatchWriteItem request with every one of its items unprocessed.
fn answer_unprocessed(client: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let answer = json!({"UnprocessedItems": request["RequestItems"]}).to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
        answer.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(answer.as_bytes())
}

/// A TCP proxy that counts what passes through it towards the server: AWS API calls by their
/// `X-Amz-Target` (DynamoDB, SQS) or Redis commands by name — the calls the adapters made.
pub struct CountingProxy {
    pub port: u16,
    counts: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
    /// The sum of the `ScannedCount`s of the DynamoDB answers: index or table entries read.
    scanned: Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    pub fn start(upstream_port: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let counts: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
        let scanned: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let tally = counts.clone();
        let scanned_tally = scanned.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else { continue };
                let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else { continue };
                let (mut server_r, mut client_w) = (server, client);
                let tally = tally.clone();
                let scanned_tally = scanned_tally.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let mut counts = tally.lock().expect("lock");
                        for call in calls_in(&buf[..n]) {
                            *counts.entry(call).or_default() += 1;
                        }
                        drop(counts);
                        if server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_w.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let (mut buf, mut unread) = (vec![0u8; 64 * 1024], Vec::new());
                    while let Ok(n) = server_r.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        // Counted before the client can see the answer, so a test reading the
                        // tally after its call always finds the call's entries in it.
                        unread.extend_from_slice(&buf[..n]);
                        let found = take_scanned_counts(&mut unread);
                        scanned_tally.fetch_add(found, std::sync::atomic::Ordering::SeqCst);
                        if client_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = client_w.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CountingProxy { port, counts, scanned }
    }

    /// Index or table entries the DynamoDB answers so far said they read (`ScannedCount`).
    pub fn scanned(&self) -> u64 {
        self.scanned.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Calls counted so far, by name.
    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.counts.lock().expect("lock").clone()
    }
}

/// Sums the complete `"ScannedCount": <n>` fields in `unread` and drops what has been looked at,
/// keeping a tail that may be the start of a field split across reads.
fn take_scanned_counts(unread: &mut Vec<u8>) -> u64 {
    const FIELD: &[u8] = b"\"ScannedCount\"";
    let mut total = 0;
    loop {
        let Some(at) = unread.windows(FIELD.len()).position(|w| w == FIELD) else {
            let keep = unread.len().min(FIELD.len());
            unread.drain(..unread.len() - keep);
            return total;
        };
        let value = &unread[at + FIELD.len()..];
        let skip = value.iter().take_while(|b| matches!(b, b':' | b' ')).count();
        let digits = value[skip..].iter().take_while(|b| b.is_ascii_digit()).count();
        if skip + digits == value.len() {
            // The number may go on in the next read.
            unread.drain(..at);
            return total;
        }
        total += std::str::from_utf8(&value[skip..skip + digits]).ok().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        unread.drain(..at + FIELD.len() + skip + digits);
    }
}

/// The calls that start in `chunk`: `X-Amz-Target` values of HTTP requests, or the names of
/// Redis commands (RESP arrays `*<n>\r\n$<len>\r\n<NAME>`).
fn calls_in(chunk: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(chunk);
    let mut calls: Vec<String> = text
        .split("\r\n")
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-amz-target").then(|| value.trim().to_owned())
        })
        .collect();
    let lines: Vec<&str> = text.split("\r\n").collect();
    for (i, line) in lines.iter().enumerate() {
        let is_array = line.strip_prefix('*').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let next_is_bulk = lines.get(i + 1).is_some_and(|l| l.starts_with('$'));
        if is_array && next_is_bulk {
            if let Some(name) = lines.get(i + 2) {
                calls.push(format!("redis {}", name.to_ascii_uppercase()));
            }
        }
    }
    calls
}

/// Port of an `http://127.0.0.1:PORT` endpoint.
pub fn endpoint_port(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("endpoint port")
}

/// A log sink for `tracing`, to check what a request logged.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

thread_local! {
    /// Where this thread's log lines go while [`capture_logs`] is active.
    static THREAD_CAPTURE: std::cell::RefCell<Option<LogCapture>> = const { std::cell::RefCell::new(None) };
}

/// The process-wide subscriber's writer: this thread's capture, if any, else nowhere.
#[derive(Clone, Copy)]
struct ThreadCaptureWriter;

impl Write for ThreadCaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        THREAD_CAPTURE.with(|c| c.borrow_mut().as_mut().map(|capture| capture.write(buf)).unwrap_or(Ok(buf.len())))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadCaptureWriter {
    type Writer = ThreadCaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Stops capturing this thread's logs when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        THREAD_CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

/// Captures this thread's logs until the guard drops (use with a current-thread runtime). One
/// process-wide subscriber routes each line to its thread's capture: a per-thread subscriber
/// would share tracing's global interest cache with threads that have none, and miss lines.
pub fn capture_logs() -> (LogCapture, CaptureGuard) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ThreadCaptureWriter)
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let capture = LogCapture::default();
    THREAD_CAPTURE.with(|c| *c.borrow_mut() = Some(capture.clone()));
    (capture, CaptureGuard(()))
}

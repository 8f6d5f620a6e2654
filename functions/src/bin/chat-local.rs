//! `chat-local`: the whole backend on a laptop. Same routes, same handlers as the Lambdas, behind
//! an API Gateway (payload v2) emulation; embedded persistent store by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_shared::config::{generate_secret, AdminConfig, AwsStoreConfig, Config, COURSE_VISITOR_SALT};
use chat_shared::service::admin;
use chat_shared::state::init_tracing;
use chat_shared::store::dynamo::{self, DynamoUserStore};
use chat_shared::store::dynamo_manager::DynamoManagerStore;
use chat_shared::store::dynamo_social::DynamoSocialStore;
use chat_shared::{AppError, AppResult, AppState};

const USAGE: &str =
    "usage: chat-local [--listen ADDR] [--data-dir DIR] [--dynamodb-endpoint URL --redis-url URL] [--users-table NAME]
                  [--social-table NAME] [--managers-table NAME]

  --listen ADDR             address to serve on (default 127.0.0.1:3000)
  --data-dir DIR            embedded store and generated JWT secret (default ./.chat-local)
  --dynamodb-endpoint URL   use DynamoDB at URL (AWS_ENDPOINT_URL_DYNAMODB works too) ...
  --redis-url URL           ... and Redis at URL instead of the embedded store
  --users-table NAME        DynamoDB users table (default $USERS_TABLE or chat-users)
  --social-table NAME       DynamoDB friends/offline table (default $SOCIAL_TABLE or chat-social)
  --managers-table NAME     DynamoDB admins table (default $MANAGERS_TABLE or chat-managers);
                            the tables are created if missing

Environment: VISITOR_SALT (default: the course's published salt), JWT_SECRET and ADMIN_JWT_SECRET
(default: generated once into the data dir), REDIS_CLUSTER=true (--redis-url is a node of a Redis
Cluster), TOKEN_TTL_SECONDS, ADMIN_TOKEN_TTL_SECONDS, ASSET_BASE,
RUST_LOG; CHAT_ADMIN_USERNAME / CHAT_ADMIN_PASSWORD: the first manager, created at the first start
(default admin / admin123456, allowed on a loopback address only).";

/// The documented first manager of a laptop install (README); refused beyond loopback.
const DEFAULT_ADMIN: (&str, &str) = ("admin", "admin123456");

struct Args {
    listen: String,
    data_dir: PathBuf,
    dynamodb_endpoint: Option<String>,
    redis_url: Option<String>,
    users_table: Option<String>,
    social_table: Option<String>,
    managers_table: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:3000".to_owned(),
        data_dir: PathBuf::from(".chat-local"),
        dynamodb_endpoint: None,
        redis_url: None,
        users_table: None,
        social_table: None,
        managers_table: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value,
            "--data-dir" => args.data_dir = PathBuf::from(value),
            "--dynamodb-endpoint" => args.dynamodb_endpoint = Some(value),
            "--redis-url" => args.redis_url = Some(value),
            "--users-table" => args.users_table = Some(value),
            "--social-table" => args.social_table = Some(value),
            "--managers-table" => args.managers_table = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// A secret from `var`, else the one generated once into `<data dir>/<file>` (readable by its
/// owner only: it signs every token of this instance).
fn local_secret(data_dir: &Path, var: &str, file: &str) -> AppResult<String> {
    if let Some(secret) = std::env::var(var).ok().filter(|s| !s.is_empty()) {
        return Ok(secret);
    }
    let file = data_dir.join(file);
    let io = |e: std::io::Error| AppError::Config(format!("{}: {e}", file.display()));
    if let Ok(secret) = std::fs::read_to_string(&file) {
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let secret = generate_secret();
    std::fs::write(&file, &secret).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(secret)
}

/// Development defaults, allowed here only: the course salt and secrets kept in the data dir.
fn local_config(data_dir: &Path) -> AppResult<Config> {
    let salt =
        std::env::var("VISITOR_SALT").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| COURSE_VISITOR_SALT.to_owned());
    let config = Config::build(salt, local_secret(data_dir, "JWT_SECRET", "jwt-secret")?.into_bytes())?;
    config.with_admin(AdminConfig::build(local_secret(data_dir, "ADMIN_JWT_SECRET", "admin-jwt-secret")?.into_bytes())?)
}

/// Creates the first manager if there is none yet; returns what the banner says about it.
async fn bootstrap_admin(state: &AppState, loopback: bool) -> AppResult<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let username = env("CHAT_ADMIN_USERNAME").unwrap_or_else(|| DEFAULT_ADMIN.0.to_owned());
    let (password, shown) = match env("CHAT_ADMIN_PASSWORD") {
        Some(password) => (password, "its password from CHAT_ADMIN_PASSWORD".to_owned()),
        // A known password must not guard an instance others can reach.
        None if !loopback => return Ok("no manager is bootstrapped without CHAT_ADMIN_PASSWORD here".to_owned()),
        None => (DEFAULT_ADMIN.1.to_owned(), format!("password {}", DEFAULT_ADMIN.1)),
    };
    Ok(match admin::bootstrap(state, &username, &password).await? {
        Some(manager) => format!("created manager {}, {shown}", manager.username),
        None => "log in as its manager".to_owned(),
    })
}

/// `websocket_endpoint`: this process's own `@connections` API, where the handlers' pushes go.
async fn build_state(args: &Args, websocket_endpoint: &str) -> AppResult<(AppState, String)> {
    let config = local_config(&args.data_dir)?;
    let dynamodb_endpoint = args.dynamodb_endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok());
    if dynamodb_endpoint.is_none() && args.redis_url.is_none() {
        let state = AppState::embedded(config, &args.data_dir, websocket_endpoint).await?;
        return Ok((state, format!("embedded store in {}", args.data_dir.display())));
    }
    let redis_url =
        args.redis_url.clone().ok_or_else(|| AppError::Config("--redis-url is required with DynamoDB".into()))?;
    let table = |flag: &Option<String>, var: &str, default: &str| {
        flag.clone().or_else(|| std::env::var(var).ok()).unwrap_or_else(|| default.to_owned())
    };
    let stores = AwsStoreConfig {
        users_table: table(&args.users_table, "USERS_TABLE", "chat-users"),
        social_table: table(&args.social_table, "SOCIAL_TABLE", "chat-social"),
        redis_url,
        redis_cluster: chat_shared::config::redis_cluster()?,
        websocket_endpoint: websocket_endpoint.to_owned(),
        post_connect_function: None,
        managers_table: Some(table(&args.managers_table, "MANAGERS_TABLE", "chat-managers")),
        fanout_queue_url: None,
        id_block_size: chat_shared::config::id_block_size()?,
    };
    let managers_table = stores.managers_table.clone().unwrap_or_default();
    // The fan-out queue stays on this machine, in the data dir, worked by this process.
    let state = AppState::aws_with_local_queue(config, &stores, dynamodb_endpoint.as_deref(), &args.data_dir).await?;
    let client = dynamo::client(dynamodb_endpoint.as_deref()).await;
    DynamoUserStore::new(client.clone(), &stores.users_table).create_table_if_missing().await?;
    DynamoSocialStore::new(client.clone(), &stores.social_table).create_table_if_missing().await?;
    DynamoManagerStore::new(client, &managers_table).create_table_if_missing().await?;
    let endpoint = dynamodb_endpoint.as_deref().unwrap_or("AWS");
    let tables = format!("{}, {} and {managers_table}", stores.users_table, stores.social_table);
    Ok((state, format!("DynamoDB tables {tables} at {endpoint}, Redis at {}", stores.redis_url)))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("chat-local: {problem}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(if problem.is_empty() { 0 } else { 2 });
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat-local: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(args.listen.clone());
    // Pushes reach this process's @connections API on a loopback listener of its own, whatever
    // address the clients' listener serves on.
    let management = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat-local: cannot listen on a loopback port for @connections: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let management_port = management.local_addr().map(|a| a.port()).unwrap_or_default();
    let (state, store) = match build_state(&args, &format!("http://127.0.0.1:{management_port}")).await {
        Ok(built) => built,
        Err(e) => {
            eprintln!("chat-local: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let managers = match bootstrap_admin(&state, loopback).await {
        Ok(said) => said,
        Err(e) => {
            eprintln!("chat-local: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("chat-local listening on http://{addr} ({store}); WebSocket at ws://{addr}/ws?token=");
    println!("admin console at http://{addr}/admin ({managers})");
    let state = Arc::new(state);
    chat_functions::local::spawn_keepalive(state.clone());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let limits = chat_functions::local::Limits::default();
    chat_functions::local::serve_gateway(listener, management, state, limits, shutdown).await;
    std::process::ExitCode::SUCCESS
}

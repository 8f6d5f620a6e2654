//! Configuration from the environment (names as in the spec and the README).

use std::env;

use crate::error::{AppError, AppResult};

/// The course's published client salt: existing clients sign visitor requests with it.
/// Only `chat-local` may fall back to it; deployed functions must be configured explicitly.
pub const COURSE_VISITOR_SALT: &str = "45ncashdaksh2!#@3nxjdas*_259";
pub const DEFAULT_ASSET_BASE: &str = "https://docs-51yrc-com.oss-cn-hangzhou.aliyuncs.com";
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 2_592_000;
/// Admin tokens live 8 hours (spec 7.1).
pub const DEFAULT_ADMIN_TOKEN_TTL_SECONDS: u64 = 8 * 3600;
/// Messages one sender may send per [`SEND_RATE_WINDOW_SECS`] (spec 1.8 item 3).
pub const DEFAULT_SEND_RATE_LIMIT: u64 = 30;
pub const SEND_RATE_WINDOW_SECS: u64 = 10;
/// Member rows (active and pending, owner included) a group may hold (spec 5.0).
pub const DEFAULT_MAX_GROUP_MEMBERS: u64 = 500;
/// HS256 keys shorter than the hash output weaken the signature.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Settings of the domain services.
#[derive(Clone)]
pub struct Config {
    /// `VISITOR_SALT`: shared salt of the visitor request signature.
    pub visitor_salt: String,
    /// `JWT_SECRET`: HS256 key of chat tokens.
    pub jwt_secret: Vec<u8>,
    /// `TOKEN_TTL_SECONDS`: lifetime of a chat token and of its Redis entry.
    pub token_ttl_seconds: u64,
    /// `ASSET_BASE`: base URL of the default avatars.
    pub asset_base: String,
    /// `SEND_RATE_LIMIT`: sends per sender per 10 s window (spec 1.8 item 3).
    pub send_rate_limit: u64,
    /// `MAX_GROUP_MEMBERS`: member rows a group may hold (spec 5.0).
    pub max_group_members: u64,
    /// The admin API's settings; only the admin functions (and chat-local) have them.
    pub admin: Option<AdminConfig>,
}

impl std::fmt::Debug for Config {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("asset_base", &self.asset_base)
            .field("send_rate_limit", &self.send_rate_limit)
            .field("max_group_members", &self.max_group_members)
            .finish_non_exhaustive()
    }
}

/// A required variable; a missing or empty one fails the cold start naming it.
pub fn required_var(name: &str) -> AppResult<String> {
    match env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(AppError::Config(format!("missing required environment variable {name}"))),
    }
}

fn optional_var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

/// A positive integer variable (seconds, counts), `default` when unset.
fn seconds_var(name: &str, default: u64) -> AppResult<u64> {
    match optional_var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| AppError::Config(format!("{name} must be a positive integer, got {v:?}"))),
    }
}

fn check_secret(name: &str, secret: &[u8]) -> AppResult<()> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(AppError::Config(format!("{name} must be at least {MIN_JWT_SECRET_BYTES} bytes")));
    }
    Ok(())
}

/// Deployed functions name their keys' Secrets Manager secrets (chat key, and the admin key in
/// the admin functions); the keys themselves are never in a function's configuration.
pub const JWT_SECRET_ARN: &str = "JWT_SECRET_ARN";
pub const ADMIN_JWT_SECRET_ARN: &str = "ADMIN_JWT_SECRET_ARN";

impl Config {
    /// Strict configuration for deployed functions: the salt must be set; `jwt_secret` was read
    /// from the secret named by [`JWT_SECRET_ARN`].
    pub fn from_env(jwt_secret: Vec<u8>) -> AppResult<Config> {
        Config::build(required_var("VISITOR_SALT")?, jwt_secret)
    }

    /// Configuration with explicit secrets and the other values from the environment.
    pub fn build(visitor_salt: String, jwt_secret: Vec<u8>) -> AppResult<Config> {
        check_secret("JWT_SECRET", &jwt_secret)?;
        let token_ttl_seconds = seconds_var("TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_SECONDS)?;
        let asset_base = optional_var("ASSET_BASE").unwrap_or_else(|| DEFAULT_ASSET_BASE.to_owned());
        let send_rate_limit = seconds_var("SEND_RATE_LIMIT", DEFAULT_SEND_RATE_LIMIT)?;
        let max_group_members = seconds_var("MAX_GROUP_MEMBERS", DEFAULT_MAX_GROUP_MEMBERS)?;
        Ok(Config {
            visitor_salt,
            jwt_secret,
            token_ttl_seconds,
            asset_base,
            send_rate_limit,
            max_group_members,
            admin: None,
        })
    }

    /// Enables the admin API; its key must differ from the chat key (spec 7.1).
    pub fn with_admin(mut self, admin: AdminConfig) -> AppResult<Config> {
        if admin.jwt_secret == self.jwt_secret {
            return Err(AppError::Config("ADMIN_JWT_SECRET must differ from JWT_SECRET".into()));
        }
        self.admin = Some(admin);
        Ok(self)
    }

    /// Default avatar of a group, also the avatar of system notices.
    pub fn default_group_avatar(&self) -> String {
        format!("{}/chat/group.png", self.asset_base.trim_end_matches('/'))
    }

    /// Default avatar of a user.
    pub fn default_user_avatar(&self) -> String {
        format!("{}/chat/user.jpg", self.asset_base.trim_end_matches('/'))
    }
}

/// Settings of the admin API (spec 7.1); only the admin functions have them.
#[derive(Clone)]
pub struct AdminConfig {
    /// `ADMIN_JWT_SECRET`: HS256 key of admin tokens, distinct from the chat key.
    pub jwt_secret: Vec<u8>,
    /// `ADMIN_TOKEN_TTL_SECONDS`: lifetime of an admin token and of its Redis entry.
    pub token_ttl_seconds: u64,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig").field("token_ttl_seconds", &self.token_ttl_seconds).finish_non_exhaustive()
    }
}

impl AdminConfig {
    /// An explicit secret, the lifetime from the environment.
    pub fn build(jwt_secret: Vec<u8>) -> AppResult<AdminConfig> {
        check_secret("ADMIN_JWT_SECRET", &jwt_secret)?;
        let token_ttl_seconds = seconds_var("ADMIN_TOKEN_TTL_SECONDS", DEFAULT_ADMIN_TOKEN_TTL_SECONDS)?;
        Ok(AdminConfig { jwt_secret, token_ttl_seconds })
    }
}

/// Settings of the AWS-backed stores.
#[derive(Debug, Clone)]
pub struct AwsStoreConfig {
    /// `USERS_TABLE`
    pub users_table: String,
    /// `SOCIAL_TABLE`: friends, applications, offline messages
    pub social_table: String,
    /// `REDIS_URL` (`rediss://` on ElastiCache)
    pub redis_url: String,
    /// `REDIS_CLUSTER=true`: `REDIS_URL` is a node of a Redis Cluster (cluster mode enabled),
    /// reached with a cluster-aware client; otherwise a single server or a cluster's proxy.
    pub redis_cluster: bool,
    /// `WEBSOCKET_ENDPOINT`: the WebSocket API's management endpoint, `https://<api>.execute-api.<region>.amazonaws.com/<stage>`
    pub websocket_endpoint: String,
    /// `POST_CONNECT_FUNCTION`: the function `$connect` hands the post-connect step to; `None` in
    /// `chat-local`, whose gateway runs that step itself.
    pub post_connect_function: Option<String>,
    /// `MANAGERS_TABLE`: the admins (spec 7.1); only the admin functions have it.
    pub managers_table: Option<String>,
    /// `FANOUT_QUEUE_URL`: the SQS queue of delivery work (spec 6.2 item 4); `None` where the
    /// queue is embedded (chat-local).
    pub fanout_queue_url: Option<String>,
    /// `ID_BLOCK_SIZE`: ids an execution environment reserves per counter write (default 1).
    pub id_block_size: i64,
}

impl AwsStoreConfig {
    pub fn from_env() -> AppResult<AwsStoreConfig> {
        Ok(AwsStoreConfig {
            users_table: required_var("USERS_TABLE")?,
            social_table: required_var("SOCIAL_TABLE")?,
            redis_url: required_var("REDIS_URL")?,
            redis_cluster: redis_cluster()?,
            websocket_endpoint: required_var("WEBSOCKET_ENDPOINT")?,
            post_connect_function: Some(required_var("POST_CONNECT_FUNCTION")?),
            managers_table: optional_var("MANAGERS_TABLE"),
            fanout_queue_url: Some(required_var("FANOUT_QUEUE_URL")?),
            id_block_size: id_block_size()?,
        })
    }
}

/// `REDIS_CLUSTER` (`true` or `false`, default `false`).
pub fn redis_cluster() -> AppResult<bool> {
    match optional_var("REDIS_CLUSTER").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(AppError::Config(format!("REDIS_CLUSTER must be true or false, got {other:?}"))),
    }
}

/// `ID_BLOCK_SIZE` (default 1: one counter write per id).
pub fn id_block_size() -> AppResult<i64> {
    Ok(seconds_var("ID_BLOCK_SIZE", 1)?.min(100_000) as i64)
}

/// A fresh random secret (hex of 32 random bytes) for development setups.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err = required_var("CHAT_TEST_VARIABLE_THAT_IS_NEVER_SET").expect_err("unset");
        assert!(err.to_string().contains("CHAT_TEST_VARIABLE_THAT_IS_NEVER_SET"), "{err}");
    }

    #[test]
    fn short_jwt_secrets_are_refused() {
        assert!(Config::build("salt".into(), b"short".to_vec()).is_err());
        assert!(Config::build("salt".into(), generate_secret().into_bytes()).is_ok());
    }

    #[test]
    fn the_admin_key_must_differ_from_the_chat_key() {
        let secret = generate_secret().into_bytes();
        let config = Config::build("salt".into(), secret.clone()).expect("config");
        let same = AdminConfig::build(secret).expect("admin config");
        assert!(config.clone().with_admin(same).is_err());
        let other = AdminConfig::build(generate_secret().into_bytes()).expect("admin config");
        assert!(config.with_admin(other).is_ok_and(|c| c.admin.is_some()));
    }
}

//! Redis adapter of [`SessionCache`]: one multiplexed connection per cold start, shared by all requests.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{token_key, SessionCache};
use crate::error::{AppError, AppResult};

/// Fixed window: the expiry is set by the increment that creates the key, never again.
const FIXED_WINDOW_HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n";

#[derive(Clone)]
pub struct RedisSessionCache {
    conn: ConnectionManager,
    hit_script: Script,
}

impl RedisSessionCache {
    /// Connects lazily, so a cold start does not wait for (or fail on) Redis; commands time out
    /// instead of hanging when Redis is unreachable.
    pub fn connect(url: &str) -> AppResult<Self> {
        let client = redis::Client::open(url).map_err(|e| AppError::Config(format!("REDIS_URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(AppError::internal)?;
        Ok(RedisSessionCache { conn, hit_script: Script::new(FIXED_WINDOW_HIT) })
    }
}

fn redis_error(e: redis::RedisError) -> AppError {
    AppError::internal(format_args!("redis: {e}"))
}

#[async_trait]
impl SessionCache for RedisSessionCache {
    async fn set_token(&self, user_id: i64, token: &str, ttl_secs: u64) -> AppResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(token_key(user_id), token, ttl_secs).await.map_err(redis_error)
    }

    async fn token(&self, user_id: i64) -> AppResult<Option<String>> {
        let mut conn = self.conn.clone();
        conn.get(token_key(user_id)).await.map_err(redis_error)
    }

    async fn delete_token(&self, user_id: i64) -> AppResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(token_key(user_id)).await.map_err(redis_error)
    }

    async fn hit(&self, key: &str, window_secs: u64) -> AppResult<u64> {
        let mut conn = self.conn.clone();
        self.hit_script.key(key).arg(window_secs).invoke_async(&mut conn).await.map_err(redis_error)
    }

    async fn count(&self, key: &str) -> AppResult<u64> {
        let mut conn = self.conn.clone();
        let n: Option<u64> = conn.get(key).await.map_err(redis_error)?;
        Ok(n.unwrap_or(0))
    }

    async fn reset(&self, key: &str) -> AppResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(key).await.map_err(redis_error)
    }

    async fn set_value(&self, key: &str, value: &str, ttl_secs: u64) -> AppResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(key, value, ttl_secs).await.map_err(redis_error)
    }

    async fn value(&self, key: &str) -> AppResult<Option<String>> {
        let mut conn = self.conn.clone();
        conn.get(key).await.map_err(redis_error)
    }
}

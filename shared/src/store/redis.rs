//! Redis adapter of [`SessionCache`] and [`ConnectionRegistry`]: one multiplexed connection per cold start, shared by all requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{registry_shard, token_key, Connection, ConnectionRegistry, SessionCache};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};
use crate::jwt::token_digest;

/// Fixed window: the expiry is set by the increment that creates the key, never again.
const FIXED_WINDOW_HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n";

/// The Redis adapter. Its connection is replaced after a timeout or a connection failure: a
/// connection dropped without a word (an ElastiCache failover, a NAT idle timeout) would
/// otherwise keep every request of the execution environment waiting out the response timeout,
/// since a timeout is not an error the connection manager reconnects on.
#[derive(Clone)]
pub struct RedisSessionCache {
    client: redis::Client,
    config: ConnectionManagerConfig,
    conn: Arc<RwLock<ConnectionManager>>,
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
            // One connection attempt per request: a retry would push a request past 3 s in an
            // outage; the next request dials again anyway.
            .set_number_of_retries(0);
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map_err(AppError::internal)?;
        Ok(RedisSessionCache {
            client,
            config,
            conn: Arc::new(RwLock::new(conn)),
            hit_script: Script::new(FIXED_WINDOW_HIT),
        })
    }

    /// The current connection (a cheap handle onto the multiplexed connection).
    fn conn(&self) -> ConnectionManager {
        self.conn.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Maps a Redis failure to the 500 envelope's error. After a timeout or a connection failure
    /// the connection is replaced, so the next request dials anew instead of waiting on a dead
    /// socket or a failed reconnection.
    fn failed(&self, e: redis::RedisError) -> AppError {
        if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
                Ok(fresh) => *self.conn.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh,
                Err(replace) => tracing::error!(error = %replace, "could not replace a timed-out Redis connection"),
            }
        }
        AppError::internal(format_args!("redis: {e}"))
    }
}

#[async_trait]
impl SessionCache for RedisSessionCache {
    async fn set_token(&self, user_id: i64, token: &str, ttl_secs: u64) -> AppResult<()> {
        let mut conn = self.conn();
        conn.set_ex::<_, _, ()>(token_key(user_id), token, ttl_secs).await.map_err(|e| self.failed(e))
    }

    async fn token(&self, user_id: i64) -> AppResult<Option<String>> {
        let mut conn = self.conn();
        conn.get(token_key(user_id)).await.map_err(|e| self.failed(e))
    }

    async fn delete_token(&self, user_id: i64) -> AppResult<()> {
        let mut conn = self.conn();
        conn.del::<_, ()>(token_key(user_id)).await.map_err(|e| self.failed(e))
    }

    async fn hit(&self, key: &str, window_secs: u64) -> AppResult<u64> {
        let mut conn = self.conn();
        self.hit_script.key(key).arg(window_secs).invoke_async(&mut conn).await.map_err(|e| self.failed(e))
    }

    async fn count(&self, key: &str) -> AppResult<u64> {
        let mut conn = self.conn();
        let n: Option<u64> = conn.get(key).await.map_err(|e| self.failed(e))?;
        Ok(n.unwrap_or(0))
    }

    async fn reset(&self, key: &str) -> AppResult<()> {
        let mut conn = self.conn();
        conn.del::<_, ()>(key).await.map_err(|e| self.failed(e))
    }

    async fn set_value(&self, key: &str, value: &str, ttl_secs: u64) -> AppResult<()> {
        let mut conn = self.conn();
        conn.set_ex::<_, _, ()>(key, value, ttl_secs).await.map_err(|e| self.failed(e))
    }

    async fn value(&self, key: &str) -> AppResult<Option<String>> {
        let mut conn = self.conn();
        conn.get(key).await.map_err(|e| self.failed(e))
    }
}

/// Connection registry keys: `ws:conn:<id>` (the connection, for `$disconnect`'s reverse lookup),
/// `ws:user:<user id>` (hash: connection id → `<expiry ms>|<connection>`, one key per user so a
/// fan-out reads each recipient with one command) and `ws:shard:<n>` (sorted set by expiry of the
/// connections of users `1000 n … 1000 n + 999`: one keepalive job's list; no key is touched by
/// every connect). Each entry carries its own expiry because hash fields cannot expire.
fn conn_key(id: &str) -> String {
    format!("ws:conn:{id}")
}

fn user_conns_key(user_id: i64) -> String {
    format!("ws:user:{user_id}")
}

fn shard_key(shard: i64) -> String {
    format!("ws:shard:{shard}")
}

fn live_entries(entries: HashMap<String, String>, now: i64) -> (Vec<Connection>, Vec<String>) {
    let (mut live, mut expired) = (Vec::new(), Vec::new());
    for (id, entry) in entries {
        let parsed = entry
            .split_once('|')
            .and_then(|(exp, json)| Some((exp.parse::<i64>().ok()?, serde_json::from_str::<Connection>(json).ok()?)));
        match parsed {
            Some((exp, conn)) if exp > now => live.push(conn),
            _ => expired.push(id),
        }
    }
    (live, expired)
}

#[async_trait]
impl ConnectionRegistry for RedisSessionCache {
    async fn register(&self, conn: &Connection, ttl_secs: u64) -> AppResult<usize> {
        let mut redis = self.conn();
        let now = now_ms();
        let expires = now + (ttl_secs * 1000) as i64;
        let json = serde_json::to_string(conn).map_err(AppError::internal)?;
        let user_key = user_conns_key(conn.user_id);
        let (existing,): (HashMap<String, String>,) = redis::pipe()
            .hgetall(&user_key)
            .set_ex(conn_key(&conn.id), &json, ttl_secs)
            .ignore()
            .hset(&user_key, &conn.id, format!("{expires}|{json}"))
            .ignore()
            .expire(&user_key, ttl_secs as i64)
            .ignore()
            .zadd(shard_key(registry_shard(conn.user_id)), &conn.id, expires)
            .ignore()
            .query_async(&mut redis)
            .await
            .map_err(|e| self.failed(e))?;
        let (live, expired) = live_entries(existing, now);
        if !expired.is_empty() {
            redis.hdel::<_, _, ()>(&user_key, &expired).await.map_err(|e| self.failed(e))?;
        }
        Ok(live.iter().filter(|c| c.id != conn.id).count())
    }

    async fn unregister(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let mut redis = self.conn();
        let (json,): (Option<String>,) = redis::pipe()
            .get(conn_key(connection_id))
            .del(conn_key(connection_id))
            .ignore()
            .query_async(&mut redis)
            .await
            .map_err(|e| self.failed(e))?;
        let Some(conn) = json.and_then(|j| serde_json::from_str::<Connection>(&j).ok()) else { return Ok(None) };
        redis::pipe()
            .hdel(user_conns_key(conn.user_id), connection_id)
            .ignore()
            .zrem(shard_key(registry_shard(conn.user_id)), connection_id)
            .ignore()
            .query_async::<()>(&mut redis)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(Some(conn))
    }

    async fn current_connections(&self, user_ids: &[i64]) -> AppResult<Vec<Connection>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut redis = self.conn();
        // One pipeline: every recipient's connections and current token.
        let mut pipe = redis::pipe();
        for &id in user_ids {
            pipe.hgetall(user_conns_key(id)).get(token_key(id));
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut redis).await.map_err(|e| self.failed(e))?;
        let now = now_ms();
        let mut current = Vec::new();
        for pair in replies.chunks(2) {
            let [entries, token] = pair else { continue };
            let entries: HashMap<String, String> = redis::from_redis_value_ref(entries).map_err(AppError::internal)?;
            let token: Option<String> = redis::from_redis_value_ref(token).map_err(AppError::internal)?;
            let Some(digest) = token.as_deref().map(token_digest) else { continue };
            let (live, _) = live_entries(entries, now);
            current.extend(live.into_iter().filter(|c| c.token_digest == digest));
        }
        Ok(current)
    }

    async fn shard_connections(&self, shard: i64) -> AppResult<Vec<Connection>> {
        let mut redis = self.conn();
        let now = now_ms();
        let key = shard_key(shard);
        let (ids,): (Vec<String>,) = redis::pipe()
            .zrangebyscore(&key, now, "+inf")
            .zrembyscore(&key, "-inf", now)
            .ignore()
            .query_async(&mut redis)
            .await
            .map_err(|e| self.failed(e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.get(conn_key(id));
        }
        let found: Vec<Option<String>> = pipe.query_async(&mut redis).await.map_err(|e| self.failed(e))?;
        Ok(found.into_iter().flatten().filter_map(|json| serde_json::from_str(&json).ok()).collect())
    }

    async fn unregister_user(&self, user_id: i64) -> AppResult<usize> {
        let mut redis = self.conn();
        let user_key = user_conns_key(user_id);
        let ids: Vec<String> = redis.hkeys(&user_key).await.map_err(|e| self.failed(e))?;
        let mut pipe = redis::pipe();
        pipe.del(&user_key).ignore();
        for id in &ids {
            pipe.del(conn_key(id)).ignore().zrem(shard_key(registry_shard(user_id)), id).ignore();
        }
        pipe.query_async::<()>(&mut redis).await.map_err(|e| self.failed(e))?;
        Ok(ids.len())
    }
}

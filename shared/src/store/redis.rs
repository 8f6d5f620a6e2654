//! Redis adapter of [`SessionCache`] and [`ConnectionRegistry`]: one multiplexed connection per
//! cold start, shared by all requests, to a single server (or a cluster's proxy, such as
//! ElastiCache Serverless) or, with `REDIS_CLUSTER=true`, to a Redis Cluster through a
//! cluster-aware client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};

use super::{registry_shard, token_key, Connection, ConnectionRegistry, SessionCache};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};
use crate::jwt::token_digest;

/// Fixed window: the expiry is set by the increment that creates the key, never again.
/// One key, so it runs on a cluster as on a single server.
const FIXED_WINDOW_HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n";

/// How long a connection attempt, and a reply, may take: a request that meets a dead Redis
/// fails inside its 3 s instead of hanging.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The client that dials (again) after a failure.
#[derive(Clone)]
enum Dialer {
    Server(redis::Client, ConnectionManagerConfig),
    Cluster(ClusterClient),
}

impl Dialer {
    /// A connection that dials on first use, so a cold start neither waits for nor fails on Redis.
    fn dial(&self) -> AppResult<Link> {
        match self {
            Dialer::Server(client, config) => ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                .map(Link::Server)
                .map_err(AppError::internal),
            Dialer::Cluster(client) => Ok(Link::Cluster(client.get_pending_async_connection_with_config(
                ClusterConfig::new().set_connection_timeout(REDIS_TIMEOUT).set_response_timeout(REDIS_TIMEOUT),
            ))),
        }
    }
}

/// A multiplexed connection to a single server or to every master of a cluster (a cheap handle).
#[derive(Clone)]
enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Server(conn) => conn.req_packed_command(cmd),
            Link::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Link::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Server(conn) => conn.get_db(),
            Link::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Commands of one logical step, each with the key that routes it. They are sent as one pipeline
/// to a single server; a cluster client only pipelines commands of one hash slot, so there they go
/// as one pipeline per slot, all at once. Replies come back in the order the commands were added.
#[derive(Default)]
struct Batch {
    commands: Vec<(String, Cmd)>,
}

impl Batch {
    fn add(&mut self, key: impl Into<String>, command: Cmd) -> &mut Self {
        self.commands.push((key.into(), command));
        self
    }

    async fn send(self, link: &Link) -> redis::RedisResult<Vec<Value>> {
        match link {
            Link::Server(conn) => {
                let mut pipe = redis::pipe();
                for (_, command) in self.commands {
                    pipe.add_command(command);
                }
                pipe.query_async(&mut conn.clone()).await
            }
            Link::Cluster(conn) => {
                let total = self.commands.len();
                let mut by_slot: HashMap<Slot, (Vec<usize>, Pipeline)> = HashMap::new();
                for (index, (key, command)) in self.commands.into_iter().enumerate() {
                    let (indexes, pipe) =
                        by_slot.entry(Slot::for_key(key)).or_insert_with(|| (Vec::new(), redis::pipe()));
                    indexes.push(index);
                    pipe.add_command(command);
                }
                let sent = by_slot.into_values().map(|(indexes, pipe)| {
                    let mut conn = conn.clone();
                    async move { pipe.query_async::<Vec<Value>>(&mut conn).await.map(|replies| (indexes, replies)) }
                });
                let mut replies = vec![Value::Nil; total];
                for (indexes, values) in futures_util::future::try_join_all(sent).await? {
                    for (index, value) in indexes.into_iter().zip(values) {
                        replies[index] = value;
                    }
                }
                Ok(replies)
            }
        }
    }
}

fn decode<T: redis::FromRedisValue>(value: &Value) -> AppResult<T> {
    redis::from_redis_value_ref(value).map_err(AppError::internal)
}

/// The Redis adapter. Its connection is replaced after a timeout or a connection failure: a
/// connection dropped without a word (an ElastiCache failover, a NAT idle timeout) would
/// otherwise keep every request of the execution environment waiting out the response timeout,
/// since a timeout is not an error the connection manager reconnects on.
#[derive(Clone)]
pub struct RedisSessionCache {
    dialer: Dialer,
    link: Arc<RwLock<Link>>,
    hit_script: Script,
}

impl RedisSessionCache {
    /// Connects lazily to the server at `url`; with `cluster`, to the Redis Cluster `url` is a
    /// node of (the client learns the others and follows slot moves).
    pub fn connect(url: &str, cluster: bool) -> AppResult<Self> {
        let config_error = |e: redis::RedisError| AppError::Config(format!("REDIS_URL: {e}"));
        let dialer = if cluster {
            let client = ClusterClient::builder([url])
                // Redirections (MOVED, ASK) are retries too; the overall timeout bounds them.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .overall_response_timeout(Some(REDIS_TIMEOUT))
                .build()
                .map_err(config_error)?;
            Dialer::Cluster(client)
        } else {
            let client = redis::Client::open(url).map_err(config_error)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                // One connection attempt per request: a retry would push a request past 3 s in an
                // outage; the next request dials again anyway.
                .set_number_of_retries(0);
            Dialer::Server(client, config)
        };
        let link = dialer.dial()?;
        Ok(RedisSessionCache { dialer, link: Arc::new(RwLock::new(link)), hit_script: Script::new(FIXED_WINDOW_HIT) })
    }

    /// The current connection (a cheap handle onto the multiplexed connection).
    fn conn(&self) -> Link {
        self.link.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Maps a Redis failure to the 500 envelope's error. After a timeout or a connection failure
    /// the connection is replaced, so the next request dials anew instead of waiting on a dead
    /// socket or a failed reconnection.
    fn failed(&self, e: redis::RedisError) -> AppError {
        if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            match self.dialer.dial() {
                Ok(fresh) => *self.link.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh,
                Err(replace) => tracing::error!(error = %replace, "could not replace a timed-out Redis connection"),
            }
        }
        AppError::internal(format_args!("redis: {e}"))
    }

    async fn send(&self, batch: Batch) -> AppResult<Vec<Value>> {
        batch.send(&self.conn()).await.map_err(|e| self.failed(e))
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
        let now = now_ms();
        let expires = now + (ttl_secs * 1000) as i64;
        let json = serde_json::to_string(conn).map_err(AppError::internal)?;
        let user_key = user_conns_key(conn.user_id);
        let (conn_key, shard_key) = (conn_key(&conn.id), shard_key(registry_shard(conn.user_id)));
        let mut batch = Batch::default();
        batch
            .add(&user_key, Cmd::hgetall(&user_key))
            .add(&conn_key, Cmd::set_ex(&conn_key, &json, ttl_secs))
            .add(&user_key, Cmd::hset(&user_key, &conn.id, format!("{expires}|{json}")))
            .add(&user_key, Cmd::expire(&user_key, ttl_secs as i64))
            .add(&shard_key, Cmd::zadd(&shard_key, &conn.id, expires));
        let replies = self.send(batch).await?;
        let existing: HashMap<String, String> = decode(&replies[0])?;
        let (live, expired) = live_entries(existing, now);
        if !expired.is_empty() {
            self.conn().hdel::<_, _, ()>(&user_key, &expired).await.map_err(|e| self.failed(e))?;
        }
        Ok(live.iter().filter(|c| c.id != conn.id).count())
    }

    async fn unregister(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let key = conn_key(connection_id);
        let mut batch = Batch::default();
        batch.add(&key, Cmd::get(&key)).add(&key, Cmd::del(&key));
        let json: Option<String> = decode(&self.send(batch).await?[0])?;
        let Some(conn) = json.and_then(|j| serde_json::from_str::<Connection>(&j).ok()) else { return Ok(None) };
        let (user_key, shard_key) = (user_conns_key(conn.user_id), shard_key(registry_shard(conn.user_id)));
        let mut batch = Batch::default();
        batch.add(&user_key, Cmd::hdel(&user_key, connection_id)).add(&shard_key, Cmd::zrem(&shard_key, connection_id));
        self.send(batch).await?;
        Ok(Some(conn))
    }

    async fn current_connections(&self, user_ids: &[i64]) -> AppResult<Vec<Connection>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One batch: every recipient's connections and current token.
        let mut batch = Batch::default();
        for &id in user_ids {
            let (conns, token) = (user_conns_key(id), token_key(id));
            batch.add(&conns, Cmd::hgetall(&conns)).add(&token, Cmd::get(&token));
        }
        let replies = self.send(batch).await?;
        let now = now_ms();
        let mut current = Vec::new();
        for pair in replies.chunks(2) {
            let [entries, token] = pair else { continue };
            let entries: HashMap<String, String> = decode(entries)?;
            let token: Option<String> = decode(token)?;
            let Some(digest) = token.as_deref().map(token_digest) else { continue };
            let (live, _) = live_entries(entries, now);
            current.extend(live.into_iter().filter(|c| c.token_digest == digest));
        }
        Ok(current)
    }

    async fn shard_connections(&self, shard: i64) -> AppResult<Vec<Connection>> {
        let now = now_ms();
        let key = shard_key(shard);
        let mut batch = Batch::default();
        batch.add(&key, Cmd::zrangebyscore(&key, now, "+inf")).add(&key, Cmd::zrembyscore(&key, "-inf", now));
        let ids: Vec<String> = decode(&self.send(batch).await?[0])?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::default();
        for id in &ids {
            let key = conn_key(id);
            batch.add(&key, Cmd::get(&key));
        }
        let mut found = Vec::with_capacity(ids.len());
        for reply in self.send(batch).await? {
            if let Some(json) = decode::<Option<String>>(&reply)? {
                found.extend(serde_json::from_str::<Connection>(&json).ok());
            }
        }
        Ok(found)
    }

    async fn unregister_user(&self, user_id: i64) -> AppResult<usize> {
        let user_key = user_conns_key(user_id);
        let ids: Vec<String> = self.conn().hkeys(&user_key).await.map_err(|e| self.failed(e))?;
        let shard_key = shard_key(registry_shard(user_id));
        let mut batch = Batch::default();
        batch.add(&user_key, Cmd::del(&user_key));
        for id in &ids {
            let key = conn_key(id);
            batch.add(&key, Cmd::del(&key)).add(&shard_key, Cmd::zrem(&shard_key, id));
        }
        self.send(batch).await?;
        Ok(ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_clients_accept_elasticache_tls_urls_and_dial_lazily() {
        // No server listens there: both connect lazily, so a cold start never waits on Redis.
        for cluster in [false, true] {
            assert!(RedisSessionCache::connect("rediss://cache.invalid:6379", cluster).is_ok(), "cluster {cluster}");
            let refused = RedisSessionCache::connect("http://cache.invalid", cluster).err();
            assert!(matches!(refused, Some(AppError::Config(_))), "cluster {cluster}: {refused:?}");
        }
    }
}

//! Embedded adapters of [`ConnectionRegistry`] and [`MessageLog`] for `chat-local`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

use super::embedded::{db_error, from_json, EmbeddedDb, EmbeddedSessionCache};
use super::embedded_tables::{SENT, STRANGER_CLAIMS};
use super::{
    registry_shard, Connection, ConnectionRegistry, MessageLog, SentMessage, SessionCache, SENT_LOG_RETENTION_SECS,
};
use crate::clock::{now_ms, now_secs};
use crate::error::{AppError, AppResult};
use crate::jwt::token_digest;

fn conversation(sender: i64, chat_type: &str, to_id: i64) -> String {
    format!("{sender}#{chat_type}#{to_id}")
}

/// Connections live as long as the process that holds their sockets, so they are kept in memory;
/// tokens come from the embedded session cache.
pub struct EmbeddedConnectionRegistry {
    sessions: EmbeddedSessionCache,
    /// connection id → (connection, expiry in ms)
    connections: Mutex<HashMap<String, (Connection, i64)>>,
}

impl EmbeddedConnectionRegistry {
    pub fn new(sessions: EmbeddedSessionCache) -> Self {
        EmbeddedConnectionRegistry { sessions, connections: Mutex::new(HashMap::new()) }
    }

    fn live(&self) -> Vec<Connection> {
        let now = now_ms();
        let mut map = self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (_, expires)| *expires > now);
        map.values().map(|(c, _)| c.clone()).collect()
    }
}

#[async_trait]
impl ConnectionRegistry for EmbeddedConnectionRegistry {
    async fn register(&self, conn: &Connection, ttl_secs: u64) -> AppResult<usize> {
        let others = self.live().iter().filter(|c| c.user_id == conn.user_id && c.id != conn.id).count();
        let expires = now_ms() + (ttl_secs * 1000) as i64;
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(conn.id.clone(), (conn.clone(), expires));
        Ok(others)
    }

    async fn unregister(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let mut map = self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.remove(connection_id).map(|(c, _)| c))
    }

    async fn current_connections(&self, user_ids: &[i64]) -> AppResult<Vec<Connection>> {
        let live = self.live();
        let mut current = Vec::new();
        for &user_id in user_ids {
            let mine: Vec<_> = live.iter().filter(|c| c.user_id == user_id).collect();
            if mine.is_empty() {
                continue;
            }
            let Some(digest) = self.sessions.token(user_id).await?.as_deref().map(token_digest) else { continue };
            current.extend(mine.into_iter().filter(|c| c.token_digest == digest).cloned());
        }
        Ok(current)
    }

    async fn shard_connections(&self, shard: i64) -> AppResult<Vec<Connection>> {
        Ok(self.live().into_iter().filter(|c| registry_shard(c.user_id) == shard).collect())
    }

    async fn unregister_user(&self, user_id: i64) -> AppResult<usize> {
        let mut map = self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = map.len();
        map.retain(|_, (c, _)| c.user_id != user_id);
        Ok(before - map.len())
    }
}

/// [`MessageLog`] on the embedded database; entries older than the retention are ignored.
#[derive(Clone)]
pub struct EmbeddedMessageLog {
    db: EmbeddedDb,
}

impl EmbeddedMessageLog {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedMessageLog { db }
    }

    /// Read-modify-write of one entry in a write transaction; `change` says whether to save.
    async fn update(
        &self,
        message: &SentMessage,
        change: impl FnOnce(&mut SentMessage) -> bool + Send + 'static,
    ) -> AppResult<bool> {
        let key = conversation(message.sender, &message.chat_type, message.to_id);
        let id = message.id.clone();
        self.db
            .write(move |txn| {
                let mut table = txn.open_table(SENT).map_err(db_error)?;
                let stored = table.get((key.as_str(), id.as_str())).map_err(db_error)?.map(|g| g.value().to_owned());
                let Some(json) = stored else { return Ok(false) };
                let mut entry: SentMessage = from_json(&json)?;
                if !change(&mut entry) {
                    return Ok(false);
                }
                let json = serde_json::to_string(&entry).map_err(AppError::internal)?;
                table.insert((key.as_str(), id.as_str()), json.as_str()).map_err(db_error)?;
                Ok(true)
            })
            .await
    }
}

fn retained(entry: &SentMessage) -> bool {
    entry.create_time / 1000 + SENT_LOG_RETENTION_SECS > now_secs()
}

#[async_trait]
impl MessageLog for EmbeddedMessageLog {
    async fn record(&self, message: &SentMessage) -> AppResult<()> {
        let key = conversation(message.sender, &message.chat_type, message.to_id);
        let id = message.id.clone();
        let json = serde_json::to_string(message).map_err(AppError::internal)?;
        self.db
            .write(move |txn| {
                txn.open_table(SENT)
                    .map_err(db_error)?
                    .insert((key.as_str(), id.as_str()), json.as_str())
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn find(&self, sender: i64, chat_type: &str, to_id: i64, id: &str) -> AppResult<Option<SentMessage>> {
        let key = conversation(sender, chat_type, to_id);
        let id = id.to_owned();
        let found: Option<SentMessage> = self
            .db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let table = txn.open_table(SENT).map_err(db_error)?;
                let found = table.get((key.as_str(), id.as_str())).map_err(db_error)?;
                found.map(|g| from_json(g.value())).transpose()
            })
            .await?;
        Ok(found.filter(retained))
    }

    async fn claim_stranger_message(&self, sender: i64, to_id: i64) -> AppResult<bool> {
        let key = conversation(sender, "single", to_id);
        // One write transaction: redb runs them one at a time, so the check and the claim are
        // one step.
        self.db
            .write(move |txn| {
                let now = now_secs();
                let sent = txn.open_table(SENT).map_err(db_error)?;
                for entry in sent.range((key.as_str(), "")..).map_err(db_error)? {
                    let (k, json) = entry.map_err(db_error)?;
                    if k.value().0 != key {
                        break;
                    }
                    if retained(&from_json(json.value())?) {
                        return Ok(false);
                    }
                }
                drop(sent);
                let mut claims = txn.open_table(STRANGER_CLAIMS).map_err(db_error)?;
                if claims.get(key.as_str()).map_err(db_error)?.is_some_and(|expires| expires.value() > now) {
                    return Ok(false);
                }
                claims.insert(key.as_str(), now + SENT_LOG_RETENTION_SECS).map_err(db_error)?;
                Ok(true)
            })
            .await
    }

    async fn mark_revoked(&self, message: &SentMessage) -> AppResult<bool> {
        self.update(message, |entry| !std::mem::replace(&mut entry.revoked, true)).await
    }

    async fn withdraw(&self, message: &SentMessage, claimed: bool) -> AppResult<()> {
        let key = conversation(message.sender, &message.chat_type, message.to_id);
        let id = message.id.clone();
        self.db
            .write(move |txn| {
                txn.open_table(SENT).map_err(db_error)?.remove((key.as_str(), id.as_str())).map_err(db_error)?;
                if claimed {
                    txn.open_table(STRANGER_CLAIMS).map_err(db_error)?.remove(key.as_str()).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn forget_sender(&self, sender: i64) -> AppResult<()> {
        let prefix = format!("{sender}#");
        self.db
            .write(move |txn| {
                let mut table = txn.open_table(SENT).map_err(db_error)?;
                let mut doomed = Vec::new();
                for entry in table.range((prefix.as_str(), "")..).map_err(db_error)? {
                    let (k, _) = entry.map_err(db_error)?;
                    let (conversation, id) = k.value();
                    if !conversation.starts_with(&prefix) {
                        break;
                    }
                    doomed.push((conversation.to_owned(), id.to_owned()));
                }
                for (conversation, id) in &doomed {
                    table.remove((conversation.as_str(), id.as_str())).map_err(db_error)?;
                }
                let mut claims = txn.open_table(STRANGER_CLAIMS).map_err(db_error)?;
                let mut claimed = Vec::new();
                for entry in claims.range(prefix.as_str()..).map_err(db_error)? {
                    let (k, _) = entry.map_err(db_error)?;
                    if !k.value().starts_with(&prefix) {
                        break;
                    }
                    claimed.push(k.value().to_owned());
                }
                for key in &claimed {
                    claims.remove(key.as_str()).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }
}

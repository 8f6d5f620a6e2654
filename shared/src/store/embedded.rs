//! Embedded adapters for `chat-local`: one redb file holds users and sessions, so both survive a
//! restart with no external service. redb is synchronous, so every call runs on the blocking pool;
//! its write transactions are serialised, which makes uniqueness checks and writes atomic.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{
    token_key, Created, DeviceBinding, LoginUpdate, ProfileChange, SessionCache, Upgraded, UserStore, SEARCH_BUDGET,
};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};
use crate::model::{is_searchable, username_key, NewUser, Role, User, UserSummary};

const USERS: TableDefinition<u64, &str> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
const DEVICES: TableDefinition<&str, u64> = TableDefinition::new("devices");
const UUIDS: TableDefinition<&str, u64> = TableDefinition::new("uuids");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Cache entries: key → (value, expiry in Unix ms).
const CACHE: TableDefinition<&str, (&str, u64)> = TableDefinition::new("cache");

fn db_error(e: impl Into<redb::Error>) -> AppError {
    AppError::internal(format_args!("embedded store: {}", e.into()))
}

/// The embedded database shared by the embedded adapters.
#[derive(Clone)]
pub struct EmbeddedDb(Arc<Database>);

impl EmbeddedDb {
    /// Opens (or creates) `<dir>/chat.redb`.
    pub fn open(dir: &Path) -> AppResult<EmbeddedDb> {
        std::fs::create_dir_all(dir).map_err(|e| AppError::Config(format!("data dir {}: {e}", dir.display())))?;
        let path = dir.join("chat.redb");
        let db = Database::create(&path).map_err(|e| AppError::Config(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_error)?;
        {
            txn.open_table(USERS).map_err(db_error)?;
            txn.open_table(USERNAMES).map_err(db_error)?;
            txn.open_table(DEVICES).map_err(db_error)?;
            txn.open_table(UUIDS).map_err(db_error)?;
            txn.open_table(COUNTERS).map_err(db_error)?;
            txn.open_table(CACHE).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(EmbeddedDb(Arc::new(db)))
    }

    async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> AppResult<T> + Send + 'static,
    {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(AppError::internal)?
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> AppResult<T> + Send + 'static,
    {
        self.run(move |db| {
            let txn = db.begin_write().map_err(db_error)?;
            let out = f(&txn)?;
            txn.commit().map_err(db_error)?;
            Ok(out)
        })
        .await
    }
}

fn decode(json: &str) -> AppResult<User> {
    serde_json::from_str(json).map_err(AppError::internal)
}

fn encode(user: &User) -> AppResult<String> {
    serde_json::to_string(user).map_err(AppError::internal)
}

fn read_user(db: &Database, id: u64) -> AppResult<Option<User>> {
    let txn = db.begin_read().map_err(db_error)?;
    let users = txn.open_table(USERS).map_err(db_error)?;
    let found = users.get(id).map_err(db_error)?;
    found.map(|json| decode(json.value())).transpose()
}

fn read_ref(db: &Database, table: TableDefinition<&str, u64>, key: &str) -> AppResult<Option<User>> {
    let id = {
        let txn = db.begin_read().map_err(db_error)?;
        let refs = txn.open_table(table).map_err(db_error)?;
        let found = refs.get(key).map_err(db_error)?;
        found.map(|g| g.value())
    };
    match id {
        Some(id) => read_user(db, id),
        None => Ok(None),
    }
}

/// Reads, changes and writes back one user inside a write transaction.
fn update_user(txn: &WriteTransaction, id: i64, change: impl FnOnce(&mut User)) -> AppResult<Option<User>> {
    let mut users = txn.open_table(USERS).map_err(db_error)?;
    let current = users.get(id as u64).map_err(db_error)?.map(|g| decode(g.value())).transpose()?;
    let Some(mut user) = current else { return Ok(None) };
    change(&mut user);
    users.insert(id as u64, encode(&user)?.as_str()).map_err(db_error)?;
    Ok(Some(user))
}

/// [`UserStore`] on the embedded database.
#[derive(Clone)]
pub struct EmbeddedUserStore {
    db: EmbeddedDb,
}

impl EmbeddedUserStore {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedUserStore { db }
    }
}

#[async_trait]
impl UserStore for EmbeddedUserStore {
    async fn create(&self, new_user: NewUser, device: Option<DeviceBinding>) -> AppResult<Created> {
        self.db
            .write(move |txn| {
                let mut counters = txn.open_table(COUNTERS).map_err(db_error)?;
                let id = counters.get("user").map_err(db_error)?.map_or(0, |g| g.value()) + 1;
                // Ids are never reused, even when the creation below is refused.
                counters.insert("user", id).map_err(db_error)?;
                let user = new_user.into_user(id as i64);
                let mut devices = txn.open_table(DEVICES).map_err(db_error)?;
                if let Some(binding) = &device {
                    let bound = devices.get(binding.device_id.as_str()).map_err(db_error)?.map(|g| g.value() as i64);
                    if bound != binding.replaces {
                        return Ok(Created::DeviceRebound);
                    }
                }
                let mut usernames = txn.open_table(USERNAMES).map_err(db_error)?;
                let name_key = username_key(&user.username);
                if usernames.get(name_key.as_str()).map_err(db_error)?.is_some() {
                    return Ok(Created::UsernameTaken);
                }
                usernames.insert(name_key.as_str(), id).map_err(db_error)?;
                if let Some(binding) = &device {
                    devices.insert(binding.device_id.as_str(), id).map_err(db_error)?;
                }
                txn.open_table(UUIDS).map_err(db_error)?.insert(user.uuid.as_str(), id).map_err(db_error)?;
                txn.open_table(USERS).map_err(db_error)?.insert(id, encode(&user)?.as_str()).map_err(db_error)?;
                Ok(Created::Created(Box::new(user)))
            })
            .await
    }

    async fn get(&self, id: i64) -> AppResult<Option<User>> {
        if id <= 0 {
            return Ok(None);
        }
        self.db.run(move |db| read_user(db, id as u64)).await
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>> {
        let key = username_key(username);
        self.db.run(move |db| read_ref(db, USERNAMES, &key)).await
    }

    async fn find_by_uuid(&self, uuid: &str) -> AppResult<Option<User>> {
        let key = uuid.to_owned();
        self.db.run(move |db| read_ref(db, UUIDS, &key)).await
    }

    async fn find_by_device(&self, device_id: &str) -> AppResult<Option<User>> {
        let key = device_id.to_owned();
        self.db.run(move |db| read_ref(db, DEVICES, &key)).await
    }

    async fn record_login(&self, id: i64, at: i64, update: LoginUpdate) -> AppResult<()> {
        self.db
            .write(move |txn| {
                update_user(txn, id, |u| {
                    u.last_login = Some(at);
                    u.updated_at = at;
                    if let Some(hash) = update.rehash {
                        u.password = hash;
                    }
                    if let Some(stats) = update.stats {
                        u.stats = stats;
                    }
                })
                .map(|_| ())
            })
            .await
    }

    async fn update_profile(&self, id: i64, change: ProfileChange, at: i64) -> AppResult<()> {
        self.db
            .write(move |txn| {
                update_user(txn, id, |u| {
                    match change {
                        ProfileChange::Userset(v) => u.userset = v,
                        ProfileChange::Nickname(v) => u.nickname = v,
                        ProfileChange::Avatar(v) => u.avatar = v,
                        ProfileChange::InviteConfirm(v) => u.invite_confirm = v,
                        ProfileChange::Password(v) => u.password = v,
                    }
                    u.updated_at = at;
                })
                .map(|_| ())
            })
            .await
    }

    async fn search(&self, keyword_lc: &str, exclude: i64, limit: usize) -> AppResult<Vec<UserSummary>> {
        let keyword = keyword_lc.to_owned();
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let users = txn.open_table(USERS).map_err(db_error)?;
                let mut hits = Vec::new();
                let mut examined = 0;
                for entry in users.iter().map_err(db_error)? {
                    let (_, json) = entry.map_err(db_error)?;
                    let user = decode(json.value())?;
                    if !is_searchable(user.role, user.status) {
                        continue;
                    }
                    examined += 1;
                    if user.id != exclude && username_key(&user.username).contains(&keyword) {
                        hits.push(UserSummary::from(&user));
                    }
                    if hits.len() >= limit || examined >= SEARCH_BUDGET {
                        break;
                    }
                }
                Ok(hits)
            })
            .await
    }

    async fn upgrade_visitor(&self, user: &User, username: &str, password_hash: &str, at: i64) -> AppResult<Upgraded> {
        let (id, old_key) = (user.id, username_key(&user.username));
        let (username, password_hash) = (username.to_owned(), password_hash.to_owned());
        self.db
            .write(move |txn| {
                let current = {
                    let users = txn.open_table(USERS).map_err(db_error)?;
                    let found = users.get(id as u64).map_err(db_error)?;
                    found.map(|g| decode(g.value())).transpose()?
                };
                if !current.is_some_and(|u| u.role == Role::Visitor && u.is_active()) {
                    return Ok(Upgraded::NotAnActiveVisitor);
                }
                let new_key = username_key(&username);
                if new_key != old_key {
                    let mut usernames = txn.open_table(USERNAMES).map_err(db_error)?;
                    if usernames.get(new_key.as_str()).map_err(db_error)?.is_some() {
                        return Ok(Upgraded::UsernameTaken);
                    }
                    usernames.insert(new_key.as_str(), id as u64).map_err(db_error)?;
                    usernames.remove(old_key.as_str()).map_err(db_error)?;
                }
                let upgraded = update_user(txn, id, |u| {
                    u.username = username;
                    u.password = password_hash;
                    u.role = Role::User;
                    u.last_login = Some(at);
                    u.updated_at = at;
                })?;
                upgraded
                    .map(|u| Upgraded::Upgraded(Box::new(u)))
                    .ok_or_else(|| AppError::internal("embedded store: user vanished"))
            })
            .await
    }
}

/// [`SessionCache`] on the embedded database, with expiry checked on read.
#[derive(Clone)]
pub struct EmbeddedSessionCache {
    db: EmbeddedDb,
}

impl EmbeddedSessionCache {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedSessionCache { db }
    }

    async fn live_value(&self, key: String) -> AppResult<Option<String>> {
        let now = now_ms() as u64;
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let cache = txn.open_table(CACHE).map_err(db_error)?;
                let found = cache.get(key.as_str()).map_err(db_error)?;
                Ok(found.and_then(|g| {
                    let (value, expires) = g.value();
                    (expires > now).then(|| value.to_owned())
                }))
            })
            .await
    }

    async fn remove(&self, key: String) -> AppResult<()> {
        self.db
            .write(move |txn| {
                txn.open_table(CACHE).map_err(db_error)?.remove(key.as_str()).map_err(db_error)?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl SessionCache for EmbeddedSessionCache {
    async fn set_token(&self, user_id: i64, token: &str, ttl_secs: u64) -> AppResult<()> {
        let (key, token) = (token_key(user_id), token.to_owned());
        let expires = now_ms() as u64 + ttl_secs * 1000;
        self.db
            .write(move |txn| {
                txn.open_table(CACHE)
                    .map_err(db_error)?
                    .insert(key.as_str(), (token.as_str(), expires))
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn token(&self, user_id: i64) -> AppResult<Option<String>> {
        self.live_value(token_key(user_id)).await
    }

    async fn delete_token(&self, user_id: i64) -> AppResult<()> {
        self.remove(token_key(user_id)).await
    }

    async fn hit(&self, key: &str, window_secs: u64) -> AppResult<u64> {
        let key = key.to_owned();
        let now = now_ms() as u64;
        self.db
            .write(move |txn| {
                let mut cache = txn.open_table(CACHE).map_err(db_error)?;
                let current = cache.get(key.as_str()).map_err(db_error)?.map(|g| {
                    let (value, expires) = g.value();
                    (value.parse::<u64>().unwrap_or(0), expires)
                });
                let (count, expires) = match current {
                    Some((count, expires)) if expires > now => (count + 1, expires),
                    _ => (1, now + window_secs * 1000),
                };
                cache.insert(key.as_str(), (count.to_string().as_str(), expires)).map_err(db_error)?;
                Ok(count)
            })
            .await
    }

    async fn count(&self, key: &str) -> AppResult<u64> {
        Ok(self.live_value(key.to_owned()).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    async fn reset(&self, key: &str) -> AppResult<()> {
        self.remove(key.to_owned()).await
    }

    async fn set_value(&self, key: &str, value: &str, ttl_secs: u64) -> AppResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let expires = now_ms() as u64 + ttl_secs * 1000;
        self.db
            .write(move |txn| {
                txn.open_table(CACHE)
                    .map_err(db_error)?
                    .insert(key.as_str(), (value.as_str(), expires))
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn value(&self, key: &str) -> AppResult<Option<String>> {
        self.live_value(key.to_owned()).await
    }
}

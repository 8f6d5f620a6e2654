//! Embedded adapters for `chat-local`: one redb file holds users and sessions, so both survive a
//! restart with no external service. redb is synchronous, so every call runs on the blocking pool;
//! its write transactions are serialised, which makes uniqueness checks and writes atomic.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use serde_json::Value;

use super::embedded_tables::{
    APPLICATIONS, APPLICATION_PAIRS, CACHE, COUNTERS, DEVICES, FRIENDS, MESSAGES, OFFLINE, USERNAMES, USERS, UUIDS,
};
use super::{
    token_key, AdminEdit, Created, Decided, DeviceBinding, Edited, FriendRemarks, LoginUpdate, OfflineQueue,
    ProfileChange, QueuedMessage, SessionCache, SocialStore, StoredMessage, Upgraded, UserPage, UserStore,
    SEARCH_BUDGET,
};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};
use crate::model::{is_searchable, username_key, NewUser, Role, User, UserPrivate, UserSummary};
use crate::social::{Application, Friend, AGREE, IGNORE, PENDING, REFUSE};

pub(super) fn db_error(e: impl Into<redb::Error>) -> AppError {
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
        super::embedded_tables::create_all(&txn).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        Ok(EmbeddedDb(Arc::new(db)))
    }

    pub(super) async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> AppResult<T> + Send + 'static,
    {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(AppError::internal)?
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    pub(super) async fn write<T, F>(&self, f: F) -> AppResult<T>
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

/// A user row as stored: the user and its private part in one JSON document (a laptop's store
/// has no read costs to split for; the layout is the one chat-local always wrote).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredUser {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    private: UserPrivate,
}

fn decode(json: &str) -> AppResult<StoredUser> {
    serde_json::from_str(json).map_err(AppError::internal)
}

fn encode(row: &StoredUser) -> AppResult<String> {
    serde_json::to_string(row).map_err(AppError::internal)
}

fn read_user(db: &Database, id: u64) -> AppResult<Option<StoredUser>> {
    let txn = db.begin_read().map_err(db_error)?;
    let users = txn.open_table(USERS).map_err(db_error)?;
    let found = users.get(id).map_err(db_error)?;
    found.map(|json| decode(json.value())).transpose()
}

fn read_ref(db: &Database, table: TableDefinition<&str, u64>, key: &str) -> AppResult<Option<StoredUser>> {
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

/// The user row inside a write transaction.
fn user_in(txn: &WriteTransaction, id: i64) -> AppResult<Option<StoredUser>> {
    let users = txn.open_table(USERS).map_err(db_error)?;
    let found = users.get(id as u64).map_err(db_error)?;
    found.map(|g| decode(g.value())).transpose()
}

/// Reads, changes and writes back one user inside a write transaction.
fn update_user(txn: &WriteTransaction, id: i64, change: impl FnOnce(&mut StoredUser)) -> AppResult<Option<StoredUser>> {
    let mut users = txn.open_table(USERS).map_err(db_error)?;
    let current = users.get(id as u64).map_err(db_error)?.map(|g| decode(g.value())).transpose()?;
    let Some(mut row) = current else { return Ok(None) };
    change(&mut row);
    users.insert(id as u64, encode(&row)?.as_str()).map_err(db_error)?;
    Ok(Some(row))
}

/// Moves user `id`'s username reservation from `old_key` to `username`'s; `false` (and nothing
/// changed) when another user holds that name. A change of case only keeps the reservation.
fn move_username(txn: &WriteTransaction, id: i64, old_key: &str, username: &str) -> AppResult<bool> {
    let new_key = username_key(username);
    if new_key == old_key {
        return Ok(true);
    }
    let mut usernames = txn.open_table(USERNAMES).map_err(db_error)?;
    if usernames.get(new_key.as_str()).map_err(db_error)?.is_some() {
        return Ok(false);
    }
    usernames.insert(new_key.as_str(), id as u64).map_err(db_error)?;
    usernames.remove(old_key).map_err(db_error)?;
    Ok(true)
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
                let (user, private) = new_user.into_user(id as i64);
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
                let row = StoredUser { user, private };
                txn.open_table(USERS).map_err(db_error)?.insert(id, encode(&row)?.as_str()).map_err(db_error)?;
                Ok(Created::Created(Box::new(row.user)))
            })
            .await
    }

    async fn get(&self, id: i64) -> AppResult<Option<User>> {
        if id <= 0 {
            return Ok(None);
        }
        self.db.run(move |db| Ok(read_user(db, id as u64)?.map(|row| row.user))).await
    }

    async fn get_many(&self, ids: &[i64]) -> AppResult<Vec<User>> {
        let ids = ids.to_vec();
        self.db
            .run(move |db| {
                let mut users = Vec::new();
                for id in ids.into_iter().filter(|id| *id > 0) {
                    users.extend(read_user(db, id as u64)?.map(|row| row.user));
                }
                Ok(users)
            })
            .await
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>> {
        let key = username_key(username);
        self.db.run(move |db| Ok(read_ref(db, USERNAMES, &key)?.map(|row| row.user))).await
    }

    async fn find_by_uuid(&self, uuid: &str) -> AppResult<Option<User>> {
        let key = uuid.to_owned();
        self.db.run(move |db| Ok(read_ref(db, UUIDS, &key)?.map(|row| row.user))).await
    }

    async fn find_by_device(&self, device_id: &str) -> AppResult<Option<User>> {
        let key = device_id.to_owned();
        self.db.run(move |db| Ok(read_ref(db, DEVICES, &key)?.map(|row| row.user))).await
    }

    async fn record_login(&self, id: i64, at: i64, update: LoginUpdate) -> AppResult<()> {
        self.db
            .write(move |txn| {
                update_user(txn, id, |row| {
                    row.user.last_login = Some(at);
                    row.user.updated_at = at;
                    if let Some(hash) = update.rehash {
                        row.private.password = hash;
                    }
                    if let Some(stats) = update.stats {
                        row.user.stats = stats;
                    }
                })
                .map(|_| ())
            })
            .await
    }

    async fn update_profile(&self, id: i64, change: ProfileChange, at: i64) -> AppResult<()> {
        self.db
            .write(move |txn| {
                update_user(txn, id, |row| {
                    match change {
                        ProfileChange::Userset(v) => row.private.userset = v,
                        ProfileChange::Nickname(v) => row.user.nickname = v,
                        ProfileChange::Avatar(v) => row.user.avatar = v,
                        ProfileChange::InviteConfirm(v) => row.user.invite_confirm = v,
                        ProfileChange::Password(v) => row.private.password = v,
                    }
                    row.user.updated_at = at;
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
                    let user = decode(json.value())?.user;
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
                let current = user_in(txn, id)?;
                if !current.is_some_and(|row| row.user.role == Role::Visitor && row.user.is_active()) {
                    return Ok(Upgraded::NotAnActiveVisitor);
                }
                if !move_username(txn, id, &old_key, &username)? {
                    return Ok(Upgraded::UsernameTaken);
                }
                let upgraded = update_user(txn, id, |row| {
                    row.user.username = username;
                    row.private.password = password_hash;
                    row.user.role = Role::User;
                    row.user.last_login = Some(at);
                    row.user.updated_at = at;
                })?;
                upgraded
                    .map(|row| Upgraded::Upgraded(Box::new(row.user)))
                    .ok_or_else(|| AppError::internal("embedded store: user vanished"))
            })
            .await
    }

    async fn list(&self, keyword_lc: Option<&str>, offset: usize, limit: usize) -> AppResult<UserPage> {
        let keyword = keyword_lc.map(str::to_owned);
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let users = txn.open_table(USERS).map_err(db_error)?;
                let mut page = UserPage::default();
                for entry in users.iter().map_err(db_error)?.rev() {
                    let (_, json) = entry.map_err(db_error)?;
                    let user = decode(json.value())?.user;
                    if keyword.as_ref().is_some_and(|k| !username_key(&user.username).contains(k.as_str())) {
                        continue;
                    }
                    if page.count >= offset as u64 && page.rows.len() < limit {
                        page.rows.push(user);
                    }
                    page.count += 1;
                }
                Ok(page)
            })
            .await
    }

    async fn admin_update(&self, user: &User, edit: AdminEdit, at: i64) -> AppResult<Edited> {
        let (id, old_key) = (user.id, username_key(&user.username));
        self.db
            .write(move |txn| {
                let current = user_in(txn, id)?;
                if current.is_none_or(|row| username_key(&row.user.username) != old_key) {
                    return Ok(Edited::NotFound);
                }
                if !move_username(txn, id, &old_key, &edit.username)? {
                    return Ok(Edited::UsernameTaken);
                }
                update_user(txn, id, |row| {
                    row.user.username = edit.username;
                    if let Some(hash) = edit.password {
                        row.private.password = hash;
                    }
                    if let Some(avatar) = edit.avatar {
                        row.user.avatar = avatar;
                    }
                    row.user.updated_at = at;
                })?;
                Ok(Edited::Updated)
            })
            .await
    }

    async fn set_status(&self, user: &User, status: i64, at: i64) -> AppResult<bool> {
        let id = user.id;
        self.db
            .write(move |txn| {
                let updated = update_user(txn, id, |row| {
                    row.user.status = status;
                    row.user.updated_at = at;
                })?;
                Ok(updated.is_some())
            })
            .await
    }

    async fn private_many(&self, ids: &[i64]) -> AppResult<HashMap<i64, UserPrivate>> {
        let ids = ids.to_vec();
        self.db
            .run(move |db| {
                let mut found = HashMap::new();
                for id in ids.into_iter().filter(|id| *id > 0) {
                    found.extend(read_user(db, id as u64)?.map(|row| (id, row.private)));
                }
                Ok(found)
            })
            .await
    }

    async fn highest_id(&self) -> AppResult<i64> {
        self.db
            .run(|db| {
                let txn = db.begin_read().map_err(db_error)?;
                let counters = txn.open_table(COUNTERS).map_err(db_error)?;
                Ok(counters.get("user").map_err(db_error)?.map_or(0, |n| n.value() as i64))
            })
            .await
    }

    async fn delete(&self, user: &User) -> AppResult<bool> {
        let id = user.id as u64;
        self.db
            .write(move |txn| {
                let Some(current) = txn
                    .open_table(USERS)
                    .map_err(db_error)?
                    .remove(id)
                    .map_err(db_error)?
                    .map(|g| decode(g.value()).map(|row| row.user))
                    .transpose()?
                else {
                    return Ok(false);
                };
                // References go only if they are still this user's.
                let remove_own = |table: TableDefinition<&str, u64>, key: &str| -> AppResult<()> {
                    let mut refs = txn.open_table(table).map_err(db_error)?;
                    if refs.get(key).map_err(db_error)?.is_some_and(|g| g.value() == id) {
                        refs.remove(key).map_err(db_error)?;
                    }
                    Ok(())
                };
                remove_own(USERNAMES, &username_key(&current.username))?;
                remove_own(UUIDS, &current.uuid)?;
                if !current.devicefingeruuid.is_empty() {
                    remove_own(DEVICES, &current.devicefingeruuid)?;
                }
                Ok(true)
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

pub(super) fn next_id(txn: &WriteTransaction, entity: &str) -> AppResult<u64> {
    let mut counters = txn.open_table(COUNTERS).map_err(db_error)?;
    let id = counters.get(entity).map_err(db_error)?.map_or(0, |g| g.value()) + 1;
    counters.insert(entity, id).map_err(db_error)?;
    Ok(id)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> AppResult<T> {
    serde_json::from_str(json).map_err(AppError::internal)
}

fn to_json<T: serde::Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(AppError::internal)
}

/// [`SocialStore`] on the embedded database: every multi-row change is one write transaction.
#[derive(Clone)]
pub struct EmbeddedSocialStore {
    db: EmbeddedDb,
}

impl EmbeddedSocialStore {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedSocialStore { db }
    }
}

fn read_application(db: &Database, to: u64, id: u64) -> AppResult<Option<Application>> {
    let txn = db.begin_read().map_err(db_error)?;
    let apps = txn.open_table(APPLICATIONS).map_err(db_error)?;
    let found = apps.get((to, id)).map_err(db_error)?;
    found.map(|g| from_json(g.value())).transpose()
}

#[async_trait]
impl SocialStore for EmbeddedSocialStore {
    async fn apply(&self, user_id: i64, friend_id: i64, nickname: &str, now: i64) -> AppResult<Option<Application>> {
        let nickname = nickname.to_owned();
        self.db
            .write(move |txn| {
                let pair = (user_id as u64, friend_id as u64);
                let mut pairs = txn.open_table(APPLICATION_PAIRS).map_err(db_error)?;
                if pairs.get(pair).map_err(db_error)?.is_some() {
                    return Ok(None);
                }
                let id = next_id(txn, "goodfriendapply")?;
                let app = Application::new(id as i64, user_id, friend_id, nickname, now);
                pairs.insert(pair, id).map_err(db_error)?;
                txn.open_table(APPLICATIONS)
                    .map_err(db_error)?
                    .insert((friend_id as u64, id), to_json(&app)?.as_str())
                    .map_err(db_error)?;
                Ok(Some(app))
            })
            .await
    }

    async fn pending_application(&self, from: i64, to: i64) -> AppResult<Option<Application>> {
        self.db
            .run(move |db| {
                let id = {
                    let txn = db.begin_read().map_err(db_error)?;
                    let pairs = txn.open_table(APPLICATION_PAIRS).map_err(db_error)?;
                    let found = pairs.get((from as u64, to as u64)).map_err(db_error)?;
                    found.map(|g| g.value())
                };
                let Some(id) = id else { return Ok(None) };
                Ok(read_application(db, to as u64, id)?.filter(|a| a.status == PENDING))
            })
            .await
    }

    async fn application(&self, to: i64, id: i64) -> AppResult<Option<Application>> {
        if to <= 0 || id <= 0 {
            return Ok(None);
        }
        self.db.run(move |db| read_application(db, to as u64, id as u64)).await
    }

    async fn applications_to(&self, to: i64, offset: usize, limit: usize) -> AppResult<Vec<Application>> {
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let apps = txn.open_table(APPLICATIONS).map_err(db_error)?;
                let range = apps.range((to as u64, 0)..=(to as u64, u64::MAX)).map_err(db_error)?;
                let mut out = Vec::new();
                for entry in range.rev().skip(offset).take(limit) {
                    let (_, json) = entry.map_err(db_error)?;
                    out.push(from_json(json.value())?);
                }
                Ok(out)
            })
            .await
    }

    async fn count_pending_to(&self, to: i64) -> AppResult<u64> {
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let apps = txn.open_table(APPLICATIONS).map_err(db_error)?;
                let mut count = 0;
                for entry in apps.range((to as u64, 0)..=(to as u64, u64::MAX)).map_err(db_error)? {
                    let (_, json) = entry.map_err(db_error)?;
                    if from_json::<Application>(json.value())?.status == PENDING {
                        count += 1;
                    }
                }
                Ok(count)
            })
            .await
    }

    async fn decide(&self, app: &Application, status: &str, remarks: FriendRemarks, now: i64) -> AppResult<Decided> {
        let (to, id, applicant) = (app.friend_id, app.id, app.user_id);
        let status = status.to_owned();
        self.db
            .write(move |txn| {
                let mut apps = txn.open_table(APPLICATIONS).map_err(db_error)?;
                let current =
                    apps.get((to as u64, id as u64)).map_err(db_error)?.map(|g| from_json::<Application>(g.value()));
                let mut current = match current.transpose()? {
                    Some(a) if a.status == PENDING => a,
                    _ => return Ok(Decided::NotPending),
                };
                current.status = status.clone();
                current.updated_at = now;
                apps.insert((to as u64, id as u64), to_json(&current)?.as_str()).map_err(db_error)?;
                if status == REFUSE || status == IGNORE {
                    txn.open_table(APPLICATION_PAIRS)
                        .map_err(db_error)?
                        .remove((applicant as u64, to as u64))
                        .map_err(db_error)?;
                }
                if status == AGREE {
                    let mut friends = txn.open_table(FRIENDS).map_err(db_error)?;
                    for (owner, friend, remark) in
                        [(to, applicant, remarks.decider_row), (applicant, to, remarks.applicant_row)]
                    {
                        if friends.get((owner as u64, friend as u64)).map_err(db_error)?.is_none() {
                            let row = Friend::new(next_id(txn, "goodfriend")? as i64, owner, friend, remark, now);
                            friends.insert((owner as u64, friend as u64), to_json(&row)?.as_str()).map_err(db_error)?;
                        }
                    }
                }
                Ok(Decided::Done)
            })
            .await
    }

    async fn withdraw(&self, app: &Application) -> AppResult<()> {
        let (from, to, id) = (app.user_id as u64, app.friend_id as u64, app.id as u64);
        self.db
            .write(move |txn| {
                txn.open_table(APPLICATIONS).map_err(db_error)?.remove((to, id)).map_err(db_error)?;
                let mut pairs = txn.open_table(APPLICATION_PAIRS).map_err(db_error)?;
                let reserved = pairs.get((from, to)).map_err(db_error)?.map(|g| g.value());
                if reserved == Some(id) {
                    pairs.remove((from, to)).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn friend(&self, owner: i64, friend: i64) -> AppResult<Option<Friend>> {
        if owner <= 0 || friend <= 0 {
            return Ok(None);
        }
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let friends = txn.open_table(FRIENDS).map_err(db_error)?;
                let found = friends.get((owner as u64, friend as u64)).map_err(db_error)?;
                found.map(|g| from_json(g.value())).transpose()
            })
            .await
    }

    async fn friends(&self, owner: i64) -> AppResult<Vec<Friend>> {
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let friends = txn.open_table(FRIENDS).map_err(db_error)?;
                let mut rows: Vec<Friend> = Vec::new();
                for entry in friends.range((owner as u64, 0)..=(owner as u64, u64::MAX)).map_err(db_error)? {
                    let (_, json) = entry.map_err(db_error)?;
                    rows.push(from_json(json.value())?);
                }
                rows.sort_by_key(|r| r.id);
                Ok(rows)
            })
            .await
    }

    async fn friends_page(&self, owner: i64, offset: usize, limit: usize) -> AppResult<Vec<Friend>> {
        // One local read of the owner's rows (a laptop's store; the DynamoDB adapter reads the page).
        Ok(self.friends(owner).await?.into_iter().skip(offset).take(limit).collect())
    }

    async fn has_friend_to_chat(&self, owner: i64) -> AppResult<bool> {
        Ok(self.friends(owner).await?.iter().any(|f| f.status == 1 && f.isblack == 0))
    }

    async fn update_friend(&self, row: &Friend) -> AppResult<()> {
        let row = row.clone();
        self.db
            .write(move |txn| {
                let mut friends = txn.open_table(FRIENDS).map_err(db_error)?;
                let key = (row.user_id as u64, row.friend_id as u64);
                if friends.get(key).map_err(db_error)?.is_some() {
                    friends.insert(key, to_json(&row)?.as_str()).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn unfriend(&self, a: i64, b: i64) -> AppResult<()> {
        let (a, b) = (a as u64, b as u64);
        self.db
            .write(move |txn| {
                let mut friends = txn.open_table(FRIENDS).map_err(db_error)?;
                friends.remove((a, b)).map_err(db_error)?;
                friends.remove((b, a)).map_err(db_error)?;
                let mut pairs = txn.open_table(APPLICATION_PAIRS).map_err(db_error)?;
                pairs.remove((a, b)).map_err(db_error)?;
                pairs.remove((b, a)).map_err(db_error)?;
                let mut apps = txn.open_table(APPLICATIONS).map_err(db_error)?;
                for (to, from) in [(a, b), (b, a)] {
                    let mut doomed = Vec::new();
                    for entry in apps.range((to, 0)..=(to, u64::MAX)).map_err(db_error)? {
                        let (key, json) = entry.map_err(db_error)?;
                        if from_json::<Application>(json.value())?.user_id as u64 == from {
                            doomed.push(key.value());
                        }
                    }
                    for key in doomed {
                        apps.remove(key).map_err(db_error)?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn purge_user(&self, user_id: i64) -> AppResult<()> {
        if user_id <= 0 {
            return Ok(());
        }
        let me = user_id as u64;
        self.db
            .write(move |txn| {
                // Every row with me on either side goes.
                txn.open_table(FRIENDS)
                    .map_err(db_error)?
                    .retain(|(owner, friend), _| owner != me && friend != me)
                    .map_err(db_error)?;
                txn.open_table(APPLICATION_PAIRS)
                    .map_err(db_error)?
                    .retain(|(from, to), _| from != me && to != me)
                    .map_err(db_error)?;
                txn.open_table(APPLICATIONS)
                    .map_err(db_error)?
                    .retain(|(to, _), json| {
                        to != me && from_json::<Application>(json).map_or(true, |a| a.user_id as u64 != me)
                    })
                    .map_err(db_error)?;
                Ok(())
            })
            .await
    }
}

/// [`OfflineQueue`] on the embedded database.
#[derive(Clone)]
pub struct EmbeddedOfflineQueue {
    db: EmbeddedDb,
}

impl EmbeddedOfflineQueue {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedOfflineQueue { db }
    }
}

#[async_trait]
impl OfflineQueue for EmbeddedOfflineQueue {
    async fn store(&self, message: &StoredMessage) -> AppResult<()> {
        let (key, json) = (message.key.clone(), message.message.to_string());
        self.db
            .write(move |txn| {
                let mut bodies = txn.open_table(MESSAGES).map_err(db_error)?;
                // A revoke mark survives a repeated store.
                let revoked = bodies.get(key.as_str()).map_err(db_error)?.is_some_and(|b| b.value().0);
                bodies.insert(key.as_str(), (revoked, json.as_str())).map_err(db_error)?;
                Ok(())
            })
            .await
    }

    async fn load(&self, key: &str) -> AppResult<Option<StoredMessage>> {
        let key = key.to_owned();
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let bodies = txn.open_table(MESSAGES).map_err(db_error)?;
                let found = bodies.get(key.as_str()).map_err(db_error)?;
                let message = found.map(|b| stored_message(b.value())).transpose()?;
                Ok(message.map(|message| StoredMessage { key, message }))
            })
            .await
    }

    async fn enqueue(&self, key: &str, recipients: &[i64]) -> AppResult<()> {
        let (key, recipients) = (key.to_owned(), recipients.to_vec());
        self.db
            .write(move |txn| {
                let mut queue = txn.open_table(OFFLINE).map_err(db_error)?;
                for user in &recipients {
                    queue.insert((*user as u64, key.as_str()), "").map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn mark_revoked(&self, key: &str) -> AppResult<()> {
        let key = key.to_owned();
        self.db
            .write(move |txn| {
                let mut bodies = txn.open_table(MESSAGES).map_err(db_error)?;
                let json = bodies.get(key.as_str()).map_err(db_error)?.map(|b| b.value().1.to_owned());
                if let Some(json) = json {
                    bodies.insert(key.as_str(), (true, json.as_str())).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn peek(&self, user_id: i64, limit: usize) -> AppResult<Vec<QueuedMessage>> {
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let queue = txn.open_table(OFFLINE).map_err(db_error)?;
                let bodies = txn.open_table(MESSAGES).map_err(db_error)?;
                let user = user_id as u64;
                let mut out = Vec::new();
                for entry in queue.range((user, "")..(user + 1, "")).map_err(db_error)?.take(limit) {
                    let (queued, _) = entry.map_err(db_error)?;
                    let key = queued.value().1.to_owned();
                    let body = bodies.get(key.as_str()).map_err(db_error)?;
                    out.push((key, body.map(|b| stored_message(b.value())).transpose()?));
                }
                Ok(out)
            })
            .await
    }

    async fn remove(&self, user_id: i64, keys: &[String]) -> AppResult<()> {
        let keys = keys.to_vec();
        self.db
            .write(move |txn| {
                let mut queue = txn.open_table(OFFLINE).map_err(db_error)?;
                for key in &keys {
                    queue.remove((user_id as u64, key.as_str())).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn clear(&self, user_id: i64) -> AppResult<()> {
        let user = user_id as u64;
        self.db
            .write(move |txn| {
                let mut queue = txn.open_table(OFFLINE).map_err(db_error)?;
                queue.retain_in((user, "")..(user + 1, ""), |_, _| false).map_err(db_error)?;
                Ok(())
            })
            .await
    }
}

/// A stored message's JSON with its revoke mark applied (`isremove: 1`).
fn stored_message((revoked, json): (bool, &str)) -> AppResult<Value> {
    let mut message: Value = from_json(json)?;
    if revoked {
        message["isremove"] = Value::from(1);
    }
    Ok(message)
}

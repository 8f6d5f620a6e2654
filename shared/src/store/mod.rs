//! Store ports. Domain services see only these traits; each backend has one adapter per port.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{DeviceStats, NewUser, User, UserSummary};

pub mod dynamo;
pub mod embedded;
pub mod redis;

/// Binding of a device id to the visitor account created for it (spec 2.10).
#[derive(Debug, Clone)]
pub struct DeviceBinding {
    pub device_id: String,
    /// The account the device is bound to now, if any; the new binding replaces only that one.
    pub replaces: Option<i64>,
}

/// Changes written together with a login.
#[derive(Debug, Clone, Default)]
pub struct LoginUpdate {
    /// Replaces a legacy password hash (spec 2.4).
    pub rehash: Option<String>,
    /// A visitor device's statistics fields (spec 2.10).
    pub stats: Option<DeviceStats>,
}

/// One change to a user's own profile (spec 3.4, 3.5, 3.7).
#[derive(Debug, Clone)]
pub enum ProfileChange {
    Userset(String),
    Nickname(String),
    Avatar(String),
    InviteConfirm(i64),
    /// A new password hash.
    Password(String),
}

/// Most directory entries one search may examine: keeps its cost flat as the user base grows
/// (spec 3.2 allows fewer than all matches for very common keywords).
pub const SEARCH_BUDGET: usize = 2000;

/// Outcome of an atomic user creation.
#[derive(Debug)]
pub enum Created {
    Created(Box<User>),
    /// Someone else holds the username (case-insensitively).
    UsernameTaken,
    /// The device's binding changed since it was read (a concurrent visitor registration won).
    DeviceRebound,
}

/// Outcome of upgrading a visitor to a registered user in place (spec 2.11).
#[derive(Debug)]
pub enum Upgraded {
    Upgraded(Box<User>),
    UsernameTaken,
    /// The account is no longer an active visitor.
    NotAnActiveVisitor,
}

/// Durable user accounts (DynamoDB in AWS).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user, its username reservation and optionally its device binding, all or nothing.
    async fn create(&self, user: NewUser, device: Option<DeviceBinding>) -> AppResult<Created>;
    async fn get(&self, id: i64) -> AppResult<Option<User>>;
    /// Case-insensitive lookup through the username reservation (strongly consistent).
    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>>;
    async fn find_by_uuid(&self, uuid: &str) -> AppResult<Option<User>>;
    /// The account the device id is bound to.
    async fn find_by_device(&self, device_id: &str) -> AppResult<Option<User>>;
    /// Records a login at `at` together with the changes that come with it, in one write.
    async fn record_login(&self, id: i64, at: i64, update: LoginUpdate) -> AppResult<()>;
    async fn update_profile(&self, id: i64, change: ProfileChange, at: i64) -> AppResult<()>;
    /// Registered, active users other than `exclude` whose username contains `keyword_lc`
    /// (lower case), by ascending id, at most `limit`, examining at most [`SEARCH_BUDGET`] users.
    async fn search(&self, keyword_lc: &str, exclude: i64, limit: usize) -> AppResult<Vec<UserSummary>>;
    /// Turns an active visitor into a registered user with new credentials, moving its username reservation.
    async fn upgrade_visitor(&self, user: &User, username: &str, password_hash: &str, at: i64) -> AppResult<Upgraded>;
}

/// Short-lived shared state (Redis in AWS): current tokens and rate-limit counters.
#[async_trait]
pub trait SessionCache: Send + Sync {
    /// Makes `token` the current token of the user (`chat_user_<id>`).
    async fn set_token(&self, user_id: i64, token: &str, ttl_secs: u64) -> AppResult<()>;
    async fn token(&self, user_id: i64) -> AppResult<Option<String>>;
    async fn delete_token(&self, user_id: i64) -> AppResult<()>;
    /// Increments a fixed-window counter: the window starts at the first hit and is never extended.
    async fn hit(&self, key: &str, window_secs: u64) -> AppResult<u64>;
    /// The counter's value in its current window (0 when none).
    async fn count(&self, key: &str) -> AppResult<u64>;
    async fn reset(&self, key: &str) -> AppResult<()>;
    /// Sets a plain value with a lifetime (e.g. `user:modify:<id>`).
    async fn set_value(&self, key: &str, value: &str, ttl_secs: u64) -> AppResult<()>;
    async fn value(&self, key: &str) -> AppResult<Option<String>>;
}

/// Redis key of a user's current chat token (spec 1.7).
pub fn token_key(user_id: i64) -> String {
    format!("chat_user_{user_id}")
}

//! Store ports. Domain services see only these traits; each backend has one adapter per port.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::AppResult;
use serde_json::Value;

use crate::group::{Group, GroupMember};
use crate::manager::{Manager, NewManager};
use crate::model::{DeviceStats, NewUser, Role, User, UserPrivate, UserSummary};
use crate::social::{Application, Friend};

pub mod dynamo;
pub mod dynamo_group;
pub mod dynamo_manager;
pub mod dynamo_social;
pub mod embedded;
pub mod embedded_fanout;
pub mod embedded_group;
pub mod embedded_manager;
pub mod embedded_messaging;
mod embedded_tables;
pub mod redis;
pub mod sqs;

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

/// One page of the admin's user list (spec 7.2).
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    /// Every user that matches, on all pages.
    pub count: u64,
    /// The page, newest first.
    pub rows: Vec<User>,
}

/// What an admin edit writes (spec 7.6): the username always, password and avatar when given.
#[derive(Debug, Clone)]
pub struct AdminEdit {
    pub username: String,
    /// A new password hash.
    pub password: Option<String>,
    pub avatar: Option<String>,
}

/// Outcome of an admin edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Edited {
    Updated,
    /// The user is gone, or was renamed since it was read.
    NotFound,
    /// Another user holds the new username (case-insensitively).
    UsernameTaken,
}

/// Durable user accounts (DynamoDB in AWS).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user, its username reservation and optionally its device binding, all or nothing.
    async fn create(&self, user: NewUser, device: Option<DeviceBinding>) -> AppResult<Created>;
    async fn get(&self, id: i64) -> AppResult<Option<User>>;
    /// The users that exist among `ids`, in no particular order (one batched read).
    async fn get_many(&self, ids: &[i64]) -> AppResult<Vec<User>>;
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
    /// All users (both roles, any status) whose lower-case username contains `keyword_lc` (every
    /// user when `None`), newest first: their count and the `limit` after `offset`.
    async fn list(&self, keyword_lc: Option<&str>, offset: usize, limit: usize) -> AppResult<UserPage>;
    /// Applies an admin edit to `user` as read, moving its username reservation when the name changes.
    async fn admin_update(&self, user: &User, edit: AdminEdit, at: i64) -> AppResult<Edited>;
    /// Sets the status (1 enabled, 0 disabled); `false` when the user does not exist.
    async fn set_status(&self, user: &User, status: i64, at: i64) -> AppResult<bool>;
    /// Deletes the user row with its username reservation and (if still its own) device binding,
    /// all or nothing; `false` when it was already gone.
    async fn delete(&self, user: &User) -> AppResult<bool>;
    /// At least the highest user id ever given out (0 before the first user): where the
    /// keepalive's shards end.
    async fn highest_id(&self) -> AppResult<i64>;
    /// The password hashes and settings of the users that exist among `ids` (one batched,
    /// strongly consistent read, apart from the rows every request reads).
    async fn private_many(&self, ids: &[i64]) -> AppResult<HashMap<i64, UserPrivate>>;
    /// [`UserStore::private_many`] of one user.
    async fn private(&self, id: i64) -> AppResult<Option<UserPrivate>> {
        Ok(self.private_many(&[id]).await?.remove(&id))
    }
}

/// The admins of the management API (spec 7.1), kept apart from chat users.
#[async_trait]
pub trait ManagerStore: Send + Sync {
    /// Creates the first manager unless a manager was bootstrapped before (then `None`);
    /// atomic, so concurrent bootstraps create one.
    async fn bootstrap(&self, manager: NewManager) -> AppResult<Option<Manager>>;
    async fn get(&self, id: i64) -> AppResult<Option<Manager>>;
    /// Case-insensitive lookup.
    async fn find_by_username(&self, username: &str) -> AppResult<Option<Manager>>;
    /// Replaces the password hash (legacy upgrade on login, spec 2.4).
    async fn set_password(&self, id: i64, hash: &str, at: i64) -> AppResult<()>;
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
    /// Deletes a counter or value (e.g. `admin_token_<id>` on admin logout).
    async fn reset(&self, key: &str) -> AppResult<()>;
    /// Sets a plain value with a lifetime (e.g. `user:modify:<id>`).
    async fn set_value(&self, key: &str, value: &str, ttl_secs: u64) -> AppResult<()>;
    async fn value(&self, key: &str) -> AppResult<Option<String>>;
}

/// Redis key of a user's current chat token (spec 1.7).
pub fn token_key(user_id: i64) -> String {
    format!("chat_user_{user_id}")
}

/// The remarks the two new friend rows start with when an application is agreed (spec 4.3).
#[derive(Debug, Clone)]
pub struct FriendRemarks {
    /// On the decider's row (decider → applicant).
    pub decider_row: String,
    /// On the applicant's row (applicant → decider).
    pub applicant_row: String,
}

/// Outcome of deciding an application.
#[derive(Debug, PartialEq, Eq)]
pub enum Decided {
    Done,
    /// Someone decided it first (or it vanished).
    NotPending,
    /// The atomic write failed for another reason; nothing changed.
    Conflict,
}

/// Friends and friend applications (DynamoDB in AWS).
#[async_trait]
pub trait SocialStore: Send + Sync {
    /// Creates a pending application, unless the ordered pair already has one pending or
    /// agreed (`None`); enforced atomically, so a concurrent duplicate gets `None` too.
    async fn apply(&self, user_id: i64, friend_id: i64, nickname: &str, now: i64) -> AppResult<Option<Application>>;
    /// The pending application from `from` to `to`.
    async fn pending_application(&self, from: i64, to: i64) -> AppResult<Option<Application>>;
    /// Application `id` addressed to `to`.
    async fn application(&self, to: i64, id: i64) -> AppResult<Option<Application>>;
    /// Applications addressed to `to`, newest first.
    async fn applications_to(&self, to: i64, offset: usize, limit: usize) -> AppResult<Vec<Application>>;
    async fn count_pending_to(&self, to: i64) -> AppResult<u64>;
    /// Sets a pending application's status; for `agree` also creates the missing friend rows
    /// of both directions. All or nothing.
    async fn decide(&self, app: &Application, status: &str, remarks: FriendRemarks, now: i64) -> AppResult<Decided>;
    /// Removes an application and the pair's reservation (cleanup of a failed auto-add).
    async fn withdraw(&self, app: &Application) -> AppResult<()>;
    /// `owner`'s row for `friend`.
    async fn friend(&self, owner: i64, friend: i64) -> AppResult<Option<Friend>>;
    /// All of `owner`'s rows by ascending row id.
    async fn friends(&self, owner: i64) -> AppResult<Vec<Friend>>;
    /// `owner`'s rows `offset .. offset + limit` by ascending row id, reading no more rows than that.
    async fn friends_page(&self, owner: i64, offset: usize, limit: usize) -> AppResult<Vec<Friend>>;
    /// Whether `owner` has a row with `status = 1` and `isblack = 0`, read as one item.
    async fn has_friend_to_chat(&self, owner: i64) -> AppResult<bool>;
    /// Saves the flags and remark of an existing row.
    async fn update_friend(&self, row: &Friend) -> AppResult<()>;
    /// Deletes both rows of a pair and every application between them, so they may apply again.
    async fn unfriend(&self, a: i64, b: i64) -> AppResult<()>;
    /// Deletes every friend row, application and pair reservation the user is part of, on
    /// either side (spec 7.7).
    async fn purge_user(&self, user_id: i64) -> AppResult<()>;
}

/// A message stored once for every offline queue that references it (spec 6.7): `key` names it
/// and orders the references (enqueue time), `message` is its JSON as pushed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub key: String,
    pub message: Value,
}

impl StoredMessage {
    /// A new stored message with a fresh [`queue_key`].
    pub fn new(message: Value) -> StoredMessage {
        StoredMessage { key: queue_key(), message }
    }
}

/// One entry of a user's offline queue: the reference's key and the message it names, with its
/// revoke applied (`isremove: 1`); `None` when the message itself has expired.
pub type QueuedMessage = (String, Option<Value>);

/// Durable per-user queues of messages not yet delivered (spec 6.7), oldest first. A message is
/// stored once; each queue holds a small reference to it, so nothing grows per recipient inside
/// one item and a revoke marks one item that every reference sees.
#[async_trait]
pub trait OfflineQueue: Send + Sync {
    /// Stores the message; storing the same key again rewrites it but keeps a revoke mark.
    async fn store(&self, message: &StoredMessage) -> AppResult<()>;
    /// The stored message `key` with its revoke applied.
    async fn load(&self, key: &str) -> AppResult<Option<StoredMessage>>;
    /// Adds a reference to the stored message `key` to each recipient's queue (batched; adding one
    /// twice leaves one reference).
    async fn enqueue(&self, key: &str, recipients: &[i64]) -> AppResult<()>;
    /// Marks the stored message revoked (spec 6.8); nothing if it is not stored.
    async fn mark_revoked(&self, key: &str) -> AppResult<()>;
    /// The oldest `limit` entries of the user's queue.
    async fn peek(&self, user_id: i64, limit: usize) -> AppResult<Vec<QueuedMessage>>;
    async fn remove(&self, user_id: i64, keys: &[String]) -> AppResult<()>;
    /// Deletes the user's whole queue.
    async fn clear(&self, user_id: i64) -> AppResult<()>;
}

/// Recipients of one stored message still to be delivered to (pushed live or queued offline).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FanoutJob {
    /// The [`StoredMessage`] key.
    pub message: String,
    pub recipients: Vec<i64>,
}

/// Keepalive pings for the connection registry's shards `from..to` (see [`registry_shard`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeepaliveJob {
    pub from: i64,
    pub to: i64,
}

/// A message that could not be stored in the request, carried by its job (a push frame is at
/// most 120 KB, an SQS message 256 KB), with its recipients.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoreJob {
    pub message: StoredMessage,
    pub recipients: Vec<i64>,
}

/// A unit of work of the fan-out queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueJob {
    Deliver(FanoutJob),
    Store(StoreJob),
    Keepalive(KeepaliveJob),
}

/// The durable queue of fan-out work (SQS in AWS, the embedded store in chat-local): what a
/// request could not deliver itself continues from here, at-least-once; the keepalive's pages
/// too.
#[async_trait]
pub trait FanoutQueue: Send + Sync {
    /// Queues every job durably, visible after `delay_secs` (at most 900); `Ok` only when all are.
    async fn enqueue(&self, jobs: &[QueueJob], delay_secs: u32) -> AppResult<()>;
}

/// A registered WebSocket connection (spec 6.3.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    pub id: String,
    pub user_id: i64,
    /// [`crate::jwt::token_digest`] of the token it connected with: the connection is current
    /// while that token is the user's current token (spec 6.2).
    pub token_digest: String,
    pub role: Role,
}

/// API Gateway closes every WebSocket after 2 hours; a registration never outlives that.
pub const CONNECTION_TTL_SECS: u64 = 2 * 60 * 60;

/// Users per shard of the connection registry's keepalive lists: the most users one list key
/// serves (so its load does not grow with the user base) and one keepalive job's work.
pub const USERS_PER_REGISTRY_SHARD: i64 = 1000;

/// The registry shard of a user's connections: users `1000 n … 1000 n + 999` share shard `n`.
pub fn registry_shard(user_id: i64) -> i64 {
    user_id.max(0) / USERS_PER_REGISTRY_SHARD
}

/// Who is connected where (Redis in AWS): user → connections, connection → user.
#[async_trait]
pub trait ConnectionRegistry: Send + Sync {
    /// Registers `conn` for `ttl_secs`; returns how many other live connections its user had.
    async fn register(&self, conn: &Connection, ttl_secs: u64) -> AppResult<usize>;
    /// Removes a connection; returns it if it was registered.
    async fn unregister(&self, connection_id: &str) -> AppResult<Option<Connection>>;
    /// The live connections of `user_ids` that authenticated with their user's current token,
    /// read in one round trip however many users are asked for.
    async fn current_connections(&self, user_ids: &[i64]) -> AppResult<Vec<Connection>>;
    /// The live connections of the users of registry shard `shard` (one keepalive job's list),
    /// forgetting expired ones on the way.
    async fn shard_connections(&self, shard: i64) -> AppResult<Vec<Connection>>;
    /// Removes every connection of the user; returns how many there were.
    async fn unregister_user(&self, user_id: i64) -> AppResult<usize>;
}

/// How long the sent-message log remembers a message (revoke window and stranger limits).
pub const SENT_LOG_RETENTION_SECS: i64 = 30 * 24 * 60 * 60;

/// An entry of the sent-message log (spec 6.5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentMessage {
    pub id: String,
    pub sender: i64,
    /// `single` or `group`.
    pub chat_type: String,
    pub to_id: i64,
    pub to_name: String,
    pub to_avatar: String,
    pub create_time: i64,
    pub revoked: bool,
    /// The [`StoredMessage`] key of the message (empty for entries older than stored messages).
    #[serde(default)]
    pub stored: String,
}

/// The durable log of messages sent with `sendmessage` (DynamoDB in AWS), keyed by sender,
/// chat type, recipient and message id.
#[async_trait]
pub trait MessageLog: Send + Sync {
    async fn record(&self, message: &SentMessage) -> AppResult<()>;
    async fn find(&self, sender: i64, chat_type: &str, to_id: i64, id: &str) -> AppResult<Option<SentMessage>>;
    /// Claims the one message a stranger may send `to_id` before they are friends (spec 6.6,
    /// `sendCount` 1): `true` for exactly one caller however many ask at once, and only while
    /// `sender` sent `to_id` nothing within the retention (not even as a friend before).
    async fn claim_stranger_message(&self, sender: i64, to_id: i64) -> AppResult<bool>;
    /// Marks the entry revoked; `false` if it already was (or vanished), so only one revoke acts.
    async fn mark_revoked(&self, message: &SentMessage) -> AppResult<bool>;
    /// Deletes every entry `sender` sent.
    async fn forget_sender(&self, sender: i64) -> AppResult<()>;
    /// Takes back a send that was never acknowledged: its entry and, if `claimed`, the stranger
    /// claim it made, so the sender's retry is judged as the first attempt was.
    async fn withdraw(&self, message: &SentMessage, claimed: bool) -> AppResult<()>;
}

/// A queue key that sorts by enqueue time: zero-padded milliseconds, a sequence number that keeps
/// this process's keys in order within one millisecond, and a random part that keeps keys from
/// different processes apart.
pub fn queue_key() -> String {
    static LAST: std::sync::Mutex<(i64, u32)> = std::sync::Mutex::new((0, 0));
    let now = crate::clock::now_ms();
    let (ms, seq) = {
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = if now > last.0 { (now, 0) } else { (last.0, last.1 + 1) };
        *last
    };
    format!("{ms:015}#{seq:06}#{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// What a new group starts with (spec 5.1); the store assigns the group and member row ids.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// The owner.
    pub user_id: i64,
    pub name: String,
    pub avatar: String,
    /// Every member's user id, owner first; each gets an active row, in this order.
    pub members: Vec<i64>,
    pub now: i64,
}

impl NewGroup {
    /// The group row for `id` with the defaults of spec 5.1.
    pub fn to_group(&self, id: i64) -> Group {
        Group {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            user_id: self.user_id,
            name: self.name.clone(),
            avatar: self.avatar.clone(),
            remark: String::new(),
            invite_confirm: 0,
            status: 1,
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

/// A new member row with the defaults (no nickname, no avatar).
pub fn new_member(id: i64, group_id: i64, user_id: i64, status: i64, now: i64) -> GroupMember {
    GroupMember {
        id,
        group_id,
        user_id,
        nickname: String::new(),
        avatar: String::new(),
        status,
        created_at: now,
        updated_at: now,
    }
}

/// One change to a group's own columns (spec 5.0, 5.4, 5.5, 5.10).
#[derive(Debug, Clone)]
pub enum GroupChange {
    Name(String),
    Remark(String),
    InviteConfirm(i64),
    Avatar(String),
}

/// Outcome of adding a member row.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    Added(GroupMember),
    /// The user already has a row (active or pending) in the group.
    AlreadyMember,
    /// The group does not exist (any more).
    NoGroup,
    /// The group already holds its cap of member rows (spec 5.0).
    Full,
}

/// Groups and their member rows (DynamoDB in AWS). Every multi-row change is all or nothing.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the group and one active row per member.
    async fn create(&self, group: NewGroup) -> AppResult<(Group, Vec<GroupMember>)>;
    async fn group(&self, id: i64) -> AppResult<Option<Group>>;
    /// Every member row of the group (active and pending), by row id.
    async fn members(&self, group_id: i64) -> AppResult<Vec<GroupMember>>;
    /// The group with its member rows, read together.
    async fn group_with_members(&self, id: i64) -> AppResult<Option<(Group, Vec<GroupMember>)>> {
        let Some(group) = self.group(id).await? else { return Ok(None) };
        Ok(Some((group, self.members(id).await?)))
    }
    /// The user's row in the group, active or pending.
    async fn member(&self, group_id: i64, user_id: i64) -> AppResult<Option<GroupMember>>;
    /// Groups with `status = 1` in which the user is an active member, by group id descending,
    /// each with the user's own row.
    async fn groups_of(&self, user_id: i64, offset: usize, limit: usize) -> AppResult<Vec<(Group, GroupMember)>>;
    /// Whether the user is an active member of at least one group with `status = 1`.
    async fn is_active_member_of_any(&self, user_id: i64) -> AppResult<bool> {
        Ok(!self.groups_of(user_id, 0, 1).await?.is_empty())
    }
    /// Changes one column of an existing group; `false` if it does not exist.
    async fn update(&self, id: i64, change: GroupChange, now: i64) -> AppResult<bool>;
    /// Sets the nickname of an existing member row; `false` if there is none.
    async fn set_nickname(&self, group_id: i64, user_id: i64, nickname: &str, now: i64) -> AppResult<bool>;
    /// Adds a member row with `status` unless the user has one, the group is gone, or it already
    /// holds `cap` member rows; atomic, so of two joins for the last place one succeeds.
    async fn join(&self, group_id: i64, user_id: i64, status: i64, now: i64, cap: u64) -> AppResult<Joined>;
    /// Makes a pending row active; `false` if it is not pending (any more).
    async fn approve(&self, group_id: i64, user_id: i64, now: i64) -> AppResult<bool>;
    /// Deletes a pending row; `false` if it is not pending (any more).
    async fn reject(&self, group_id: i64, user_id: i64) -> AppResult<bool>;
    /// Deletes the user's row, if any.
    async fn remove_member(&self, group_id: i64, user_id: i64) -> AppResult<()>;
    /// Deletes the group and every member row.
    async fn dissolve(&self, group_id: i64) -> AppResult<()>;
    /// Every member row of the user (active and pending), in any group.
    async fn memberships_of(&self, user_id: i64) -> AppResult<Vec<GroupMember>>;
}

//! Every table of the embedded store (redb), in one place: `EmbeddedDb::open` creates them all,
//! so a read transaction never meets a missing table, and each adapter imports the ones it uses.

use redb::{TableDefinition, TableError, WriteTransaction};

pub(super) const USERS: TableDefinition<u64, &str> = TableDefinition::new("users");

pub(super) const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");

pub(super) const DEVICES: TableDefinition<&str, u64> = TableDefinition::new("devices");

pub(super) const UUIDS: TableDefinition<&str, u64> = TableDefinition::new("uuids");

pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub(super) const FRIENDS: TableDefinition<(u64, u64), &str> = TableDefinition::new("friends");

/// Applications keyed by (addressee, id).
pub(super) const APPLICATIONS: TableDefinition<(u64, u64), &str> = TableDefinition::new("applications");

/// (applicant, addressee) → id of the pending or agreed application between them.
pub(super) const APPLICATION_PAIRS: TableDefinition<(u64, u64), u64> = TableDefinition::new("application_pairs");

/// (user id, stored message key) → "": the user's offline queue, referencing [`MESSAGES`].
pub(super) const OFFLINE: TableDefinition<(u64, &str), &str> = TableDefinition::new("offline_refs");

/// Stored message key → (revoked, message JSON): each queued message once (spec 6.7).
pub(super) const MESSAGES: TableDefinition<&str, (bool, &str)> = TableDefinition::new("offline_messages");

/// Cache entries: key → (value, expiry in Unix ms).
pub(super) const CACHE: TableDefinition<&str, (&str, u64)> = TableDefinition::new("cache");

/// Group id → group row JSON.
pub(super) const GROUPS: TableDefinition<u64, &str> = TableDefinition::new("groups");

/// (group id, user id) → member row JSON, active or pending.
pub(super) const GROUP_MEMBERS: TableDefinition<(u64, u64), &str> = TableDefinition::new("group_members");

/// (user id, group id) → member row id, for active memberships only: "my groups" by group id.
pub(super) const USER_GROUPS: TableDefinition<(u64, u64), u64> = TableDefinition::new("user_groups");

/// Manager id → manager row JSON.
pub(super) const MANAGERS: TableDefinition<u64, &str> = TableDefinition::new("managers");

/// Lower-case username → manager id.
pub(super) const MANAGER_NAMES: TableDefinition<&str, u64> = TableDefinition::new("manager_names");

/// Sent-message log: (`<sender>#<chatType>#<to_id>`, message id) → entry JSON.
pub(super) const SENT: TableDefinition<(&str, &str), &str> = TableDefinition::new("sent_messages");

/// Stranger claims (spec 6.6): `<sender>#single#<to_id>` → when the claim expires (seconds).
pub(super) const STRANGER_CLAIMS: TableDefinition<&str, i64> = TableDefinition::new("stranger_claims");

/// Fan-out job id → (visible from, Unix ms; runs that failed; job JSON).
pub(super) const JOBS: TableDefinition<u64, (u64, u32, &str)> = TableDefinition::new("fanout_queue");

/// Job id → job JSON: fan-out jobs that failed too often (the dead-letter queue).
pub(super) const DEAD: TableDefinition<u64, &str> = TableDefinition::new("fanout_dead");

/// Creates every table that does not exist yet.
pub(super) fn create_all(txn: &WriteTransaction) -> Result<(), TableError> {
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(DEVICES)?;
    txn.open_table(UUIDS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(FRIENDS)?;
    txn.open_table(APPLICATIONS)?;
    txn.open_table(APPLICATION_PAIRS)?;
    txn.open_table(OFFLINE)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(CACHE)?;
    txn.open_table(GROUPS)?;
    txn.open_table(GROUP_MEMBERS)?;
    txn.open_table(USER_GROUPS)?;
    txn.open_table(MANAGERS)?;
    txn.open_table(MANAGER_NAMES)?;
    txn.open_table(SENT)?;
    txn.open_table(STRANGER_CLAIMS)?;
    txn.open_table(JOBS)?;
    txn.open_table(DEAD)?;
    Ok(())
}

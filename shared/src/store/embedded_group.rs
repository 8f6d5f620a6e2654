//! Embedded adapter of [`GroupStore`] for `chat-local`: every change is one redb write
//! transaction, so multi-row changes are atomic and serialised.

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::embedded::{db_error, from_json, next_id, EmbeddedDb};
use super::embedded_tables::{GROUPS, GROUP_MEMBERS, USER_GROUPS};
use super::{new_member, GroupChange, GroupStore, Joined, NewGroup};
use crate::error::{AppError, AppResult};
use crate::group::{Group, GroupMember, ACTIVE, PENDING};

fn to_json<T: serde::Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(AppError::internal)
}

fn read_group(db: &Database, id: u64) -> AppResult<Option<Group>> {
    let txn = db.begin_read().map_err(db_error)?;
    let groups = txn.open_table(GROUPS).map_err(db_error)?;
    let found = groups.get(id).map_err(db_error)?;
    found.map(|g| from_json(g.value())).transpose()
}

fn read_members(db: &Database, group_id: u64) -> AppResult<Vec<GroupMember>> {
    let txn = db.begin_read().map_err(db_error)?;
    let table = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
    let mut members = Vec::new();
    for entry in table.range((group_id, 0)..=(group_id, u64::MAX)).map_err(db_error)? {
        let (_, json) = entry.map_err(db_error)?;
        members.push(from_json::<GroupMember>(json.value())?);
    }
    members.sort_by_key(|m| m.id);
    Ok(members)
}

fn read_member(db: &Database, group_id: u64, user_id: u64) -> AppResult<Option<GroupMember>> {
    let txn = db.begin_read().map_err(db_error)?;
    let table = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
    let found = table.get((group_id, user_id)).map_err(db_error)?;
    found.map(|g| from_json(g.value())).transpose()
}

/// The member row inside a write transaction.
fn member_in(txn: &WriteTransaction, group_id: u64, user_id: u64) -> AppResult<Option<GroupMember>> {
    let table = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
    let found = table.get((group_id, user_id)).map_err(db_error)?;
    found.map(|g| from_json(g.value())).transpose()
}

fn save_member(txn: &WriteTransaction, member: &GroupMember) -> AppResult<()> {
    let (group, user) = (member.group_id as u64, member.user_id as u64);
    txn.open_table(GROUP_MEMBERS)
        .map_err(db_error)?
        .insert((group, user), to_json(member)?.as_str())
        .map_err(db_error)?;
    let mut index = txn.open_table(USER_GROUPS).map_err(db_error)?;
    if member.is_active() {
        index.insert((user, group), member.id as u64).map_err(db_error)?;
    } else {
        index.remove((user, group)).map_err(db_error)?;
    }
    Ok(())
}

fn delete_member(txn: &WriteTransaction, group_id: u64, user_id: u64) -> AppResult<()> {
    txn.open_table(GROUP_MEMBERS).map_err(db_error)?.remove((group_id, user_id)).map_err(db_error)?;
    txn.open_table(USER_GROUPS).map_err(db_error)?.remove((user_id, group_id)).map_err(db_error)?;
    Ok(())
}

/// Valid store ids are positive; anything else names nothing.
fn ids(a: i64, b: i64) -> Option<(u64, u64)> {
    (a > 0 && b > 0).then_some((a as u64, b as u64))
}

/// [`GroupStore`] on the embedded database.
#[derive(Clone)]
pub struct EmbeddedGroupStore {
    db: EmbeddedDb,
}

impl EmbeddedGroupStore {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedGroupStore { db }
    }
}

#[async_trait]
impl GroupStore for EmbeddedGroupStore {
    async fn create(&self, new: NewGroup) -> AppResult<(Group, Vec<GroupMember>)> {
        self.db
            .write(move |txn| {
                let group = new.to_group(next_id(txn, "group")? as i64);
                txn.open_table(GROUPS)
                    .map_err(db_error)?
                    .insert(group.id as u64, to_json(&group)?.as_str())
                    .map_err(db_error)?;
                let mut members = Vec::with_capacity(new.members.len());
                for &user_id in &new.members {
                    let member = new_member(next_id(txn, "group_user")? as i64, group.id, user_id, ACTIVE, new.now);
                    save_member(txn, &member)?;
                    members.push(member);
                }
                Ok((group, members))
            })
            .await
    }

    async fn group(&self, id: i64) -> AppResult<Option<Group>> {
        if id <= 0 {
            return Ok(None);
        }
        self.db.run(move |db| read_group(db, id as u64)).await
    }

    async fn members(&self, group_id: i64) -> AppResult<Vec<GroupMember>> {
        if group_id <= 0 {
            return Ok(Vec::new());
        }
        self.db.run(move |db| read_members(db, group_id as u64)).await
    }

    async fn group_with_members(&self, id: i64) -> AppResult<Option<(Group, Vec<GroupMember>)>> {
        if id <= 0 {
            return Ok(None);
        }
        self.db
            .run(move |db| {
                let Some(group) = read_group(db, id as u64)? else { return Ok(None) };
                Ok(Some((group, read_members(db, id as u64)?)))
            })
            .await
    }

    async fn member(&self, group_id: i64, user_id: i64) -> AppResult<Option<GroupMember>> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(None) };
        self.db.run(move |db| read_member(db, group, user)).await
    }

    async fn groups_of(&self, user_id: i64, offset: usize, limit: usize) -> AppResult<Vec<(Group, GroupMember)>> {
        if user_id <= 0 || limit == 0 {
            return Ok(Vec::new());
        }
        let user = user_id as u64;
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let index = txn.open_table(USER_GROUPS).map_err(db_error)?;
                let groups = txn.open_table(GROUPS).map_err(db_error)?;
                let members = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
                let mut out = Vec::new();
                let mut skipped = 0;
                for entry in index.range((user, 0)..=(user, u64::MAX)).map_err(db_error)?.rev() {
                    let (key, _) = entry.map_err(db_error)?;
                    let group_id = key.value().1;
                    let group = groups.get(group_id).map_err(db_error)?.map(|g| from_json::<Group>(g.value()));
                    let Some(group) = group.transpose()?.filter(Group::is_active) else { continue };
                    let mine =
                        members.get((group_id, user)).map_err(db_error)?.map(|g| from_json::<GroupMember>(g.value()));
                    let Some(mine) = mine.transpose()?.filter(GroupMember::is_active) else { continue };
                    if skipped < offset {
                        skipped += 1;
                        continue;
                    }
                    out.push((group, mine));
                    if out.len() == limit {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn update(&self, id: i64, change: GroupChange, now: i64) -> AppResult<bool> {
        if id <= 0 {
            return Ok(false);
        }
        self.db
            .write(move |txn| {
                let mut groups = txn.open_table(GROUPS).map_err(db_error)?;
                let current = groups.get(id as u64).map_err(db_error)?.map(|g| from_json::<Group>(g.value()));
                let Some(mut group) = current.transpose()? else { return Ok(false) };
                match change {
                    GroupChange::Name(name) => group.name = name,
                    GroupChange::Remark(remark) => group.remark = remark,
                    GroupChange::InviteConfirm(value) => group.invite_confirm = value,
                    GroupChange::Avatar(avatar) => group.avatar = avatar,
                }
                group.updated_at = now;
                groups.insert(id as u64, to_json(&group)?.as_str()).map_err(db_error)?;
                Ok(true)
            })
            .await
    }

    async fn set_nickname(&self, group_id: i64, user_id: i64, nickname: &str, now: i64) -> AppResult<bool> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(false) };
        let nickname = nickname.to_owned();
        self.db
            .write(move |txn| {
                let Some(mut member) = member_in(txn, group, user)? else { return Ok(false) };
                member.nickname = nickname;
                member.updated_at = now;
                save_member(txn, &member)?;
                Ok(true)
            })
            .await
    }

    async fn join(&self, group_id: i64, user_id: i64, status: i64, now: i64, cap: u64) -> AppResult<Joined> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(Joined::NoGroup) };
        self.db
            .write(move |txn| {
                if txn.open_table(GROUPS).map_err(db_error)?.get(group).map_err(db_error)?.is_none() {
                    return Ok(Joined::NoGroup);
                }
                if member_in(txn, group, user)?.is_some() {
                    return Ok(Joined::AlreadyMember);
                }
                // Counted inside the write transaction, which serialises every join.
                let rows = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
                let count = rows.range((group, 0)..=(group, u64::MAX)).map_err(db_error)?.count() as u64;
                drop(rows);
                if count >= cap {
                    return Ok(Joined::Full);
                }
                let member = new_member(next_id(txn, "group_user")? as i64, group_id, user_id, status, now);
                save_member(txn, &member)?;
                Ok(Joined::Added(member))
            })
            .await
    }

    async fn approve(&self, group_id: i64, user_id: i64, now: i64) -> AppResult<bool> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(false) };
        self.db
            .write(move |txn| {
                let Some(mut member) = member_in(txn, group, user)?.filter(|m| m.status == PENDING) else {
                    return Ok(false);
                };
                member.status = ACTIVE;
                member.updated_at = now;
                save_member(txn, &member)?;
                Ok(true)
            })
            .await
    }

    async fn reject(&self, group_id: i64, user_id: i64) -> AppResult<bool> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(false) };
        self.db
            .write(move |txn| {
                if member_in(txn, group, user)?.is_none_or(|m| m.status != PENDING) {
                    return Ok(false);
                }
                delete_member(txn, group, user)?;
                Ok(true)
            })
            .await
    }

    async fn remove_member(&self, group_id: i64, user_id: i64) -> AppResult<()> {
        let Some((group, user)) = ids(group_id, user_id) else { return Ok(()) };
        self.db.write(move |txn| delete_member(txn, group, user)).await
    }

    async fn dissolve(&self, group_id: i64) -> AppResult<()> {
        if group_id <= 0 {
            return Ok(());
        }
        let group = group_id as u64;
        self.db
            .write(move |txn| {
                txn.open_table(GROUPS).map_err(db_error)?.remove(group).map_err(db_error)?;
                let users: Vec<u64> = {
                    let table = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
                    let range = table.range((group, 0)..=(group, u64::MAX)).map_err(db_error)?;
                    range.map(|e| e.map(|(k, _)| k.value().1).map_err(db_error)).collect::<AppResult<_>>()?
                };
                for user in users {
                    delete_member(txn, group, user)?;
                }
                Ok(())
            })
            .await
    }

    async fn memberships_of(&self, user_id: i64) -> AppResult<Vec<GroupMember>> {
        if user_id <= 0 {
            return Ok(Vec::new());
        }
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let table = txn.open_table(GROUP_MEMBERS).map_err(db_error)?;
                // Pending rows have no index entry, so every member row is looked at; fine at
                // chat-local's scale.
                let mut rows = Vec::new();
                for entry in table.iter().map_err(db_error)? {
                    let (key, json) = entry.map_err(db_error)?;
                    if key.value().1 == user_id as u64 {
                        rows.push(from_json::<GroupMember>(json.value())?);
                    }
                }
                Ok(rows)
            })
            .await
    }
}

//! DynamoDB adapter of [`GroupStore`], in the social table (`pk` + `sk`):
//! * `GROUP#<group id>` / `META`: the group row, one attribute per column.
//! * `GROUP#<group id>` / `MEMBER#<user id, zero-padded>`: a member row (active or pending), one
//!   attribute per column; one Query of the partition reads a group with all its members.
//! * `MYGROUP#<user id>` / `<group id, zero-padded>`: present while the user is an **active** member;
//!   written and deleted in the same transaction as the member row, so "my groups by group id
//!   descending" is one Query, never a Scan.
//! * `COUNTER#group`, `COUNTER#group_user` / `#`: id counters.
//!
//! `META` counts the group's member rows (`member_rows`), changed in the same transaction as the
//! rows themselves, so the member cap (spec 5.0) is one condition on one item however many join
//! at once. It also carries `version`, added to by every write that changes the group or one of
//! its member rows: an execution environment keeps the groups it read (`GroupCache`) and, per
//! group message, reads the small `META` item and re-reads the partition only when its version
//! moved, so a busy group's partition is not read whole for every message.
//!
//! A group is created in one `TransactWriteItems` when it fits (1 + 2 per member ≤ 100 items);
//! a bigger one gets its member and index items in batches first and its `META` item last, so
//! until the `META` write succeeds the group does not exist for any reader, and a failure
//! deletes what was written. Dissolving deletes `META` first for the same reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::dynamo::{dynamo_error, failed_conditions, get_n, get_s, n, put, s, transact, Item};
use super::dynamo_social::{key, padded, with, DynamoSocialStore};
use super::{new_member, GroupChange, GroupStore, Joined, NewGroup};
use crate::error::{AppError, AppResult};
use crate::group::{Group, GroupMember, ACTIVE, PENDING};

/// TransactWriteItems' limit.
const TRANSACTION_MAX: usize = 100;
/// Index entries read per page of `groups_of`.
const INDEX_PAGE: usize = 50;
const META: &str = "META";
const MEMBER_PREFIX: &str = "MEMBER#";

fn group_pk(id: i64) -> String {
    format!("GROUP#{id}")
}

fn meta_key(id: i64) -> Item {
    key(group_pk(id), META.to_owned())
}

fn member_key(group_id: i64, user_id: i64) -> Item {
    key(group_pk(group_id), format!("{MEMBER_PREFIX}{}", padded(user_id)))
}

fn index_key(user_id: i64, group_id: i64) -> Item {
    key(format!("MYGROUP#{user_id}"), padded(group_id))
}

/// The group row of a new group with `member_rows` members.
fn group_item(g: &Group, member_rows: usize) -> Item {
    with(
        meta_key(g.id),
        [
            ("member_rows", n(member_rows as i64)),
            ("id", n(g.id)),
            ("uuid", s(&g.uuid)),
            ("user_id", n(g.user_id)),
            ("name", s(&g.name)),
            ("avatar", s(&g.avatar)),
            ("remark", s(&g.remark)),
            ("invite_confirm", n(g.invite_confirm)),
            ("status", n(g.status)),
            ("created_at", n(g.created_at)),
            ("updated_at", n(g.updated_at)),
        ],
    )
}

fn member_item(m: &GroupMember) -> Item {
    with(
        member_key(m.group_id, m.user_id),
        [
            ("id", n(m.id)),
            ("group_id", n(m.group_id)),
            ("user_id", n(m.user_id)),
            // The member, for the `uid-index` (spec 7.7).
            ("uid", n(m.user_id)),
            ("nickname", s(&m.nickname)),
            ("avatar", s(&m.avatar)),
            ("status", n(m.status)),
            ("created_at", n(m.created_at)),
            ("updated_at", n(m.updated_at)),
        ],
    )
}

fn index_item(m: &GroupMember) -> Item {
    with(index_key(m.user_id, m.group_id), [("group_id", n(m.group_id))])
}

fn req_n(item: &Item, name: &str) -> AppResult<i64> {
    get_n(item, name).ok_or_else(|| AppError::internal(format_args!("dynamodb: group item without {name}")))
}

fn req_s(item: &Item, name: &str) -> AppResult<String> {
    get_s(item, name).ok_or_else(|| AppError::internal(format_args!("dynamodb: group item without {name}")))
}

fn group_of(item: &Item) -> AppResult<Group> {
    Ok(Group {
        id: req_n(item, "id")?,
        uuid: req_s(item, "uuid")?,
        user_id: req_n(item, "user_id")?,
        name: req_s(item, "name")?,
        avatar: req_s(item, "avatar")?,
        remark: req_s(item, "remark")?,
        invite_confirm: req_n(item, "invite_confirm")?,
        status: req_n(item, "status")?,
        created_at: req_n(item, "created_at")?,
        updated_at: req_n(item, "updated_at")?,
    })
}

fn member_of(item: &Item) -> AppResult<GroupMember> {
    Ok(GroupMember {
        id: req_n(item, "id")?,
        group_id: req_n(item, "group_id")?,
        user_id: req_n(item, "user_id")?,
        nickname: req_s(item, "nickname")?,
        avatar: req_s(item, "avatar")?,
        status: req_n(item, "status")?,
        created_at: req_n(item, "created_at")?,
        updated_at: req_n(item, "updated_at")?,
    })
}

fn is_member_item(item: &Item) -> bool {
    get_s(item, "sk").is_some_and(|sk| sk.starts_with(MEMBER_PREFIX))
}

fn tx_put(table: &str, item: Item) -> AppResult<TransactWriteItem> {
    let put = Put::builder().table_name(table).set_item(Some(item)).build().map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn tx_delete(table: &str, key: Item) -> AppResult<TransactWriteItem> {
    let delete = Delete::builder().table_name(table).set_key(Some(key)).build().map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// Changes the group's member-row count by `delta` (and its version); growing is refused beyond
/// `cap`, and a group that no longer exists is never recreated by it.
fn tx_count_members(table: &str, group_id: i64, delta: i64, cap: Option<u64>) -> AppResult<TransactWriteItem> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(meta_key(group_id)))
        .update_expression("ADD member_rows :delta, version :one")
        .expression_attribute_values(":delta", n(delta))
        .expression_attribute_values(":one", n(1));
    update = match cap {
        Some(cap) => update
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(member_rows) OR member_rows < :cap)")
            .expression_attribute_values(":cap", n(i64::try_from(cap).unwrap_or(i64::MAX))),
        None => update.condition_expression("attribute_exists(pk)"),
    };
    Ok(TransactWriteItem::builder().update(update.build().map_err(AppError::internal)?).build())
}

/// Adds to the version of an existing group (a member row of it changed in the same transaction).
fn tx_bump_version(table: &str, group_id: i64) -> AppResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(meta_key(group_id)))
        .update_expression("ADD version :one")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":one", n(1))
        .build()
        .map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Groups with their members as last read by this execution environment, by id, with the
/// `META` version they were read at.
#[derive(Default)]
struct GroupCache {
    groups: HashMap<i64, (i64, Group, Vec<GroupMember>)>,
}

/// Groups one execution environment keeps (at most 500 member rows each).
const CACHED_GROUPS: usize = 128;

impl GroupCache {
    fn get(&self, id: i64, version: i64) -> Option<(Group, Vec<GroupMember>)> {
        let (at, group, members) = self.groups.get(&id)?;
        (*at == version).then(|| (group.clone(), members.clone()))
    }

    fn put(&mut self, version: i64, group: &Group, members: &[GroupMember]) {
        if self.groups.len() >= CACHED_GROUPS && !self.groups.contains_key(&group.id) {
            // Any one goes: a miss costs one partition read.
            let victim = self.groups.keys().next().copied();
            victim.map(|v| self.groups.remove(&v));
        }
        self.groups.insert(group.id, (version, group.clone(), members.to_vec()));
    }
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

#[derive(Clone)]
pub struct DynamoGroupStore {
    client: Client,
    table: String,
    /// The same table's batch writes and id counters.
    social: DynamoSocialStore,
    cache: Arc<Mutex<GroupCache>>,
}

impl DynamoGroupStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        DynamoGroupStore {
            social: DynamoSocialStore::new(client.clone(), &table),
            client,
            table,
            cache: Arc::default(),
        }
    }

    /// Group and member-row ids from blocks of `size` (see [`super::dynamo::IdBlocks`]).
    pub fn with_id_blocks(mut self, size: i64) -> Self {
        self.social = self.social.with_id_blocks(size);
        self
    }

    /// One page of a partition (optionally only sort keys starting with `prefix`).
    async fn query_page(
        &self,
        pk: &str,
        prefix: Option<&str>,
        forward: bool,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> AppResult<(Vec<Item>, Option<Item>)> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(forward)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .set_limit(limit.map(|l| l.min(1000) as i32));
        query = match prefix {
            Some(p) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(p)),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await.map_err(|e| dynamo_error("Query group", e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Every item of a partition (optionally only sort keys starting with `prefix`).
    async fn query_all(&self, pk: &str, prefix: Option<&str>) -> AppResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.query_page(pk, prefix, true, None, start).await?;
            items.extend(page);
            start = next;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The keys of a member row and its index entry.
    fn member_keys(group_id: i64, user_id: i64) -> [Item; 2] {
        [member_key(group_id, user_id), index_key(user_id, group_id)]
    }

    /// Deletes every remaining member row of a group with its index entry.
    async fn sweep_members(&self, group_id: i64) -> AppResult<()> {
        let left = self.query_all(&group_pk(group_id), Some(MEMBER_PREFIX)).await?;
        let keys = left
            .iter()
            .filter_map(|i| get_n(i, "user_id"))
            .flat_map(|user| DynamoGroupStore::member_keys(group_id, user))
            .collect::<Vec<_>>();
        self.social.batch_delete(keys).await
    }

    /// A big group: member and index items in batches, then `META` (its appearance makes the
    /// group exist); on any failure what was written is deleted again.
    async fn create_in_batches(&self, group: &Group, members: &[GroupMember]) -> AppResult<()> {
        let items: Vec<Item> = members.iter().flat_map(|m| [member_item(m), index_item(m)]).collect();
        let written = async {
            self.social.batch_put(items).await?;
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(group_item(group, members.len())))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|e| dynamo_error("PutItem group", e))?;
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(err) = written {
            let keys = members.iter().flat_map(|m| DynamoGroupStore::member_keys(m.group_id, m.user_id)).collect();
            if let Err(cleanup) = self.social.batch_delete(keys).await {
                tracing::error!(group_id = group.id, error = %cleanup, "a failed group creation left member items behind");
            }
            return Err(err);
        }
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, GroupCache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets attributes of the existing `META` item and adds to its version; `false` if it does
    /// not exist.
    async fn update_meta(&self, group_id: i64, sets: &[(&str, AttributeValue)]) -> AppResult<bool> {
        let expression = sets.iter().enumerate().map(|(i, _)| format!("#f{i} = :v{i}")).collect::<Vec<_>>().join(", ");
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(group_id)))
            .update_expression(format!("SET {expression} ADD version :one"))
            .expression_attribute_values(":one", n(1))
            .condition_expression("attribute_exists(pk)");
        for (i, (name, value)) in sets.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#f{i}"), *name)
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
            Err(e) => Err(dynamo_error("UpdateItem group", e)),
        }
    }
}

#[async_trait]
impl GroupStore for DynamoGroupStore {
    async fn create(&self, new: NewGroup) -> AppResult<(Group, Vec<GroupMember>)> {
        let count = new.members.len() as i64;
        let group = new.to_group(self.social.reserve_ids("group", 1).await?);
        let first = if count > 0 { self.social.reserve_ids("group_user", count).await? } else { 0 };
        let members: Vec<GroupMember> = new
            .members
            .iter()
            .enumerate()
            .map(|(i, &user_id)| new_member(first + i as i64, group.id, user_id, ACTIVE, new.now))
            .collect();
        if 1 + 2 * members.len() > TRANSACTION_MAX {
            self.create_in_batches(&group, &members).await?;
            return Ok((group, members));
        }
        let mut items = vec![put(&self.table, group_item(&group, members.len()), "attribute_not_exists(pk)", None)?];
        for m in &members {
            items.push(put(&self.table, member_item(m), "attribute_not_exists(pk)", None)?);
            items.push(tx_put(&self.table, index_item(m))?);
        }
        transact(&self.client, items).await.map_err(|e| dynamo_error("TransactWriteItems create group", e))?;
        Ok((group, members))
    }

    async fn group(&self, id: i64) -> AppResult<Option<Group>> {
        self.social.get(meta_key(id)).await?.map(|i| group_of(&i)).transpose()
    }

    async fn members(&self, group_id: i64) -> AppResult<Vec<GroupMember>> {
        let items = self.query_all(&group_pk(group_id), Some(MEMBER_PREFIX)).await?;
        let mut members: Vec<GroupMember> = items.iter().map(member_of).collect::<AppResult<_>>()?;
        members.sort_by_key(|m| m.id);
        Ok(members)
    }

    async fn group_with_members(&self, id: i64) -> AppResult<Option<(Group, Vec<GroupMember>)>> {
        // The version is read before the partition: a change committed in between leaves the
        // entry under the older version, so the next read sees the move and reads again.
        let Some(version) = self.social.get(meta_key(id)).await? else { return Ok(None) };
        let version = get_n(&version, "version").unwrap_or(0);
        if let Some(cached) = self.cache().get(id, version) {
            return Ok(Some(cached));
        }
        let items = self.query_all(&group_pk(id), None).await?;
        let Some(meta) = items.iter().find(|i| get_s(i, "sk").as_deref() == Some(META)) else { return Ok(None) };
        let mut members: Vec<GroupMember> =
            items.iter().filter(|i| is_member_item(i)).map(member_of).collect::<AppResult<_>>()?;
        members.sort_by_key(|m| m.id);
        let group = group_of(meta)?;
        self.cache().put(version, &group, &members);
        Ok(Some((group, members)))
    }

    async fn member(&self, group_id: i64, user_id: i64) -> AppResult<Option<GroupMember>> {
        self.social.get(member_key(group_id, user_id)).await?.map(|i| member_of(&i)).transpose()
    }

    async fn groups_of(&self, user_id: i64, offset: usize, limit: usize) -> AppResult<Vec<(Group, GroupMember)>> {
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut start = None;
        let pk = format!("MYGROUP#{user_id}");
        while out.len() < limit {
            let (page, next) = self.query_page(&pk, None, false, Some(INDEX_PAGE), start).await?;
            let group_ids: Vec<i64> = page.iter().filter_map(|i| get_n(i, "group_id")).collect();
            let keys = group_ids.iter().flat_map(|&g| [meta_key(g), member_key(g, user_id)]).collect();
            let found = self.social.batch_get(keys).await?;
            let mut groups = HashMap::new();
            let mut mine = HashMap::new();
            for item in &found {
                if is_member_item(item) {
                    let m = member_of(item)?;
                    mine.insert(m.group_id, m);
                } else {
                    let g = group_of(item)?;
                    groups.insert(g.id, g);
                }
            }
            for id in group_ids {
                // A dissolved group's leftovers, or a row changed meanwhile, are not listed.
                let (Some(group), Some(member)) = (groups.remove(&id), mine.remove(&id)) else { continue };
                if !group.is_active() || !member.is_active() {
                    continue;
                }
                if skipped < offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push((group, member));
                }
            }
            start = next;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn update(&self, id: i64, change: GroupChange, now: i64) -> AppResult<bool> {
        let (name, value) = match change {
            GroupChange::Name(v) => ("name", s(v)),
            GroupChange::Remark(v) => ("remark", s(v)),
            GroupChange::InviteConfirm(v) => ("invite_confirm", n(v)),
            GroupChange::Avatar(v) => ("avatar", s(v)),
        };
        self.update_meta(id, &[(name, value), ("updated_at", n(now))]).await
    }

    async fn set_nickname(&self, group_id: i64, user_id: i64, nickname: &str, now: i64) -> AppResult<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(member_key(group_id, user_id)))
            .update_expression("SET nickname = :nick, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":nick", s(nickname))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(AppError::internal)?;
        let items = vec![TransactWriteItem::builder().update(update).build(), tx_bump_version(&self.table, group_id)?];
        match transact(&self.client, items).await {
            Ok(_) => Ok(true),
            // No such member, or no such group.
            Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => Ok(false),
            Err(e) => Err(dynamo_error("TransactWriteItems group nickname", e)),
        }
    }

    async fn join(&self, group_id: i64, user_id: i64, status: i64, now: i64, cap: u64) -> AppResult<Joined> {
        let member = new_member(self.social.reserve_ids("group_user", 1).await?, group_id, user_id, status, now);
        let mut items = vec![
            tx_count_members(&self.table, group_id, 1, Some(cap))?,
            put(&self.table, member_item(&member), "attribute_not_exists(pk)", None)?,
        ];
        if member.is_active() {
            items.push(tx_put(&self.table, index_item(&member))?);
        }
        match transact(&self.client, items).await {
            Ok(_) => Ok(Joined::Added(member)),
            Err(e) => match failed_conditions(&e) {
                // A row with our freshly reserved row id is our own commit, its answer lost.
                Some(failed) if failed.get(1) == Some(&true) => match self.member(group_id, user_id).await? {
                    Some(row) if row.id == member.id => Ok(Joined::Added(member)),
                    _ => Ok(Joined::AlreadyMember),
                },
                // The count's condition: the group is gone, or full.
                Some(failed) if failed.first() == Some(&true) => {
                    Ok(if self.social.get(meta_key(group_id)).await?.is_some() {
                        Joined::Full
                    } else {
                        Joined::NoGroup
                    })
                }
                _ => Err(dynamo_error("TransactWriteItems join group", e)),
            },
        }
    }

    async fn approve(&self, group_id: i64, user_id: i64, now: i64) -> AppResult<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(member_key(group_id, user_id)))
            .update_expression("SET #st = :active, updated_at = :now")
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", n(ACTIVE))
            .expression_attribute_values(":pending", n(PENDING))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(AppError::internal)?;
        let index = with(index_key(user_id, group_id), [("group_id", n(group_id))]);
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            tx_put(&self.table, index)?,
            tx_bump_version(&self.table, group_id)?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(true),
            Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => Ok(false),
            Err(e) => Err(dynamo_error("TransactWriteItems approve member", e)),
        }
    }

    async fn reject(&self, group_id: i64, user_id: i64) -> AppResult<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(member_key(group_id, user_id)))
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", n(PENDING))
            .build()
            .map_err(AppError::internal)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            tx_count_members(&self.table, group_id, -1, None)?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(true),
            Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => Ok(false),
            Err(e) => Err(dynamo_error("TransactWriteItems reject member", e)),
        }
    }

    async fn remove_member(&self, group_id: i64, user_id: i64) -> AppResult<()> {
        let [member, index] = DynamoGroupStore::member_keys(group_id, user_id);
        let existing = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(member.clone()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(AppError::internal)?;
        let items = vec![
            TransactWriteItem::builder().delete(existing).build(),
            tx_delete(&self.table, index.clone())?,
            tx_count_members(&self.table, group_id, -1, None)?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(()),
            // No row: nothing to remove. No group: its leftovers go without a count.
            Err(e) if failed_conditions(&e).is_some_and(|f| f.first() == Some(&true)) => Ok(()),
            Err(e) if failed_conditions(&e).is_some_and(|f| f.get(2) == Some(&true)) => {
                let items = vec![tx_delete(&self.table, member)?, tx_delete(&self.table, index)?];
                transact(&self.client, items).await.map_err(|e| dynamo_error("TransactWriteItems remove member", e))?;
                Ok(())
            }
            Err(e) => Err(dynamo_error("TransactWriteItems remove member", e)),
        }
    }

    async fn dissolve(&self, group_id: i64) -> AppResult<()> {
        let members = self.members(group_id).await?;
        let member_keys: Vec<Item> =
            members.iter().flat_map(|m| DynamoGroupStore::member_keys(group_id, m.user_id)).collect();
        // `META` and every member and index item in one transaction when they fit.
        if member_keys.len() < TRANSACTION_MAX {
            let mut items = vec![tx_delete(&self.table, meta_key(group_id))?];
            for k in member_keys {
                items.push(tx_delete(&self.table, k)?);
            }
            transact(&self.client, items).await.map_err(|e| dynamo_error("TransactWriteItems dissolve", e))?;
        } else {
            // The group stops existing at once; its member items follow in batches.
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(meta_key(group_id)))
                .send()
                .await
                .map_err(|e| dynamo_error("DeleteItem group", e))?;
            self.social.batch_delete(member_keys).await?;
        }
        // A member who joined while this ran is not left behind.
        self.sweep_members(group_id).await
    }

    async fn memberships_of(&self, user_id: i64) -> AppResult<Vec<GroupMember>> {
        // Active memberships from the (strongly consistent) index partition, pending ones too
        // from the `uid-index`; each row is then read consistently.
        let index = format!("MYGROUP#{user_id}");
        let (active, naming) = tokio::try_join!(self.query_all(&index, None), self.social.items_naming(user_id))?;
        let mut groups: Vec<i64> = active.iter().filter_map(|i| get_n(i, "group_id")).collect();
        groups.extend(
            naming
                .iter()
                .filter(|(_, sk)| sk.starts_with(MEMBER_PREFIX))
                .filter_map(|(pk, _)| pk.strip_prefix("GROUP#")?.parse::<i64>().ok()),
        );
        groups.sort_unstable();
        groups.dedup();
        let rows = self.social.batch_get(groups.into_iter().map(|g| member_key(g, user_id)).collect()).await?;
        rows.iter().map(member_of).collect()
    }
}

//! DynamoDB adapters of [`SocialStore`] and [`OfflineQueue`], on one table keyed by `pk` + `sk`:
//! * `FRIEND#<owner>` / `<friend id>`: a friend row (`row` holds its JSON).
//! * `APPLY#<addressee>` / `<application id>`: an application (`row` JSON, `status`, `from_id`).
//! * `PAIR#<applicant>#<addressee>` / `#`: the pair's pending-or-agreed reservation (`app_id`),
//!   written in the same transaction as the application, so duplicates are refused atomically.
//! * `MSG#<key>` / `BODY`: a message stored once for the offline queues, expiring through TTL.
//! * `OFFLINE#<user>` / `<key>`: a reference to a stored message in the user's queue (TTL).
//! * `COUNTER#<entity>` / `#`: id counters.
//!
//! Two sparse indexes keep the social reads bounded by what they return, not by a partition's
//! history:
//! * `flag-index` (keys only) on `flag`: `chat#<owner>` on each friend row with `status = 1` and
//!   `isblack = 0` (does the owner have a friend to chat with: one item), `pending#<addressee>` on
//!   each pending application (the pending count reads the pending ones only).
//! * `list-index` (keys only) on `list` + `lid`: `friends#<owner>` by row id on friend rows (a
//!   contacts page reads that page's keys, then its rows consistently), `pair#<applicant>#<addressee>`
//!   by id on applications (unfriending finds the pair's applications without reading either inbox).
//!
//! Index reads lag writes by a fraction of a second: a friend added a moment ago may miss a page
//! or the check once, and an application made during an unfriending may stay as history.
//!
//! Items that name a user outside their own partition key carry that user's id as `uid`
//! (applications and reservations: the applicant; friend rows: the friend; group member rows: the
//! member; sent-message log entries: the sender). The sparse `uid-index` (keys only) finds them
//! all, so deleting a user (spec 7.7) never scans the table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, PutRequest, ReturnValue, ScalarAttributeType, Select, TransactWriteItem,
    Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::dynamo::{
    batch_get_items, dynamo_error, enable_ttl, failed_conditions, get_n, get_s, n, put, s, transact, IdBlocks, Item,
    TTL_ATTRIBUTE,
};
use super::{
    Decided, FriendRemarks, MessageLog, OfflineQueue, QueuedMessage, SentMessage, SocialStore, StoredMessage,
    SENT_LOG_RETENTION_SECS,
};
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::social::{Application, Friend, AGREE, IGNORE, PENDING, REFUSE};

/// Offline messages are kept this long (spec 1.7 retention default).
pub const OFFLINE_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Keys-only index of the items that name a user (`uid`).
pub const UID_INDEX: &str = "uid-index";
/// Keys-only sparse index on `flag` (see the module doc).
pub const FLAG_INDEX: &str = "flag-index";
/// Keys-only sparse index on `list` + `lid` (see the module doc).
pub const LIST_INDEX: &str = "list-index";

pub(super) fn padded(n: i64) -> String {
    format!("{n:020}")
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn friend_key(owner: i64, friend: i64) -> Item {
    key(format!("FRIEND#{owner}"), padded(friend))
}

fn application_key(to: i64, id: i64) -> Item {
    key(format!("APPLY#{to}"), padded(id))
}

fn pair_key(from: i64, to: i64) -> Item {
    key(format!("PAIR#{from}#{to}"), "#".to_owned())
}

pub(super) fn with(mut item: Item, attrs: impl IntoIterator<Item = (&'static str, AttributeValue)>) -> Item {
    item.extend(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    item
}

fn row_of<T: serde::de::DeserializeOwned>(item: &Item) -> AppResult<T> {
    let json = get_s(item, "row").ok_or_else(|| AppError::internal("dynamodb: social item without row"))?;
    serde_json::from_str(&json).map_err(AppError::internal)
}

fn json<T: serde::Serialize>(value: &T) -> AppResult<AttributeValue> {
    serde_json::to_string(value).map(s).map_err(AppError::internal)
}

/// The table keys (`pk`, `sk`) of index entries or items.
fn keys_of(items: &[Item]) -> Vec<(String, String)> {
    items.iter().filter_map(|i| Some((get_s(i, "pk")?, get_s(i, "sk")?))).collect()
}

fn pending_flag(to: i64) -> String {
    format!("pending#{to}")
}

fn chat_flag(owner: i64) -> String {
    format!("chat#{owner}")
}

fn pair_list(from: i64, to: i64) -> String {
    format!("pair#{from}#{to}")
}

fn friends_list(owner: i64) -> String {
    format!("friends#{owner}")
}

fn application_item(app: &Application) -> AppResult<Item> {
    let mut item = with(
        application_key(app.friend_id, app.id),
        [
            ("row", json(app)?),
            ("status", s(&app.status)),
            ("from_id", n(app.user_id)),
            ("uid", n(app.user_id)),
            ("list", s(pair_list(app.user_id, app.friend_id))),
            ("lid", n(app.id)),
        ],
    );
    if app.status == PENDING {
        item.insert("flag".to_owned(), s(pending_flag(app.friend_id)));
    }
    Ok(item)
}

fn friend_item(row: &Friend) -> AppResult<Item> {
    let mut item = with(
        friend_key(row.user_id, row.friend_id),
        [("row", json(row)?), ("uid", n(row.friend_id)), ("list", s(friends_list(row.user_id))), ("lid", n(row.id))],
    );
    if row.status == 1 && row.isblack == 0 {
        item.insert("flag".to_owned(), s(chat_flag(row.user_id)));
    }
    Ok(item)
}

fn tx_delete(table: &str, key: Item, condition: Option<(&str, Item)>) -> AppResult<TransactWriteItem> {
    let (condition, values) = condition.map_or((None, None), |(c, v)| (Some(c.to_owned()), Some(v)));
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

#[derive(Clone)]
pub struct DynamoSocialStore {
    client: Client,
    table: String,
    ids: Arc<IdBlocks>,
}

impl DynamoSocialStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSocialStore { client, table: table.into(), ids: IdBlocks::new(1) }
    }

    /// Ids from blocks of `size` (see [`IdBlocks`]).
    pub fn with_id_blocks(mut self, size: i64) -> Self {
        self.ids = IdBlocks::new(size);
        self
    }

    /// Creates the table (`pk` + `sk`, its three indexes, TTL) when it does not exist (chat-local,
    /// tests).
    /// Deployed stacks get the same table from template.yaml.
    pub async fn create_table_if_missing(&self) -> AppResult<()> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        let attr = |name: &str, kind| AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build();
        let key_part = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        // Every index of this table projects keys only.
        let index = |name: &str, hash: &str, range: Option<&str>| {
            let mut index = GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key_part(hash, KeyType::Hash).map_err(AppError::internal)?)
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build());
            if let Some(range) = range {
                index = index.key_schema(key_part(range, KeyType::Range).map_err(AppError::internal)?);
            }
            index.build().map_err(AppError::internal)
        };
        let uid_index = index(UID_INDEX, "uid", None)?;
        let flag_index = index(FLAG_INDEX, "flag", None)?;
        let list_index = index(LIST_INDEX, "list", Some("lid"))?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S).map_err(AppError::internal)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::S).map_err(AppError::internal)?)
            .attribute_definitions(attr("uid", ScalarAttributeType::N).map_err(AppError::internal)?)
            .attribute_definitions(attr("flag", ScalarAttributeType::S).map_err(AppError::internal)?)
            .attribute_definitions(attr("list", ScalarAttributeType::S).map_err(AppError::internal)?)
            .attribute_definitions(attr("lid", ScalarAttributeType::N).map_err(AppError::internal)?)
            .key_schema(key_part("pk", KeyType::Hash).map_err(AppError::internal)?)
            .key_schema(key_part("sk", KeyType::Range).map_err(AppError::internal)?)
            .global_secondary_indexes(uid_index)
            .global_secondary_indexes(flag_index)
            .global_secondary_indexes(list_index)
            .send()
            .await
            .map_err(|e| dynamo_error("CreateTable", e))?;
        enable_ttl(&self.client, &self.table).await
    }

    /// The keys (`pk`, `sk`) of every item that names `user_id` as its `uid` (spec 7.7).
    pub(super) async fn items_naming(&self, user_id: i64) -> AppResult<Vec<(String, String)>> {
        let (entries, _) = self.query_index(UID_INDEX, ("uid", n(user_id)), usize::MAX, false).await?;
        Ok(keys_of(&entries))
    }

    /// Up to `max` entries of `index` under `key` (in `lid` order on `list-index`), and how many
    /// index entries the reads examined; `count_only` asks for the count alone.
    async fn query_index(
        &self,
        index: &str,
        (name, key): (&str, AttributeValue),
        max: usize,
        count_only: bool,
    ) -> AppResult<(Vec<Item>, u64)> {
        let (mut items, mut counted) = (Vec::new(), 0u64);
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", name)
                .expression_attribute_values(":k", key.clone())
                .set_select(count_only.then_some(Select::Count))
                .limit((max.saturating_sub(counted as usize)).clamp(1, 1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error(&format!("Query {index}"), e))?;
            counted += out.count.max(0) as u64;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || counted as usize >= max {
                return Ok((items, counted));
            }
        }
    }

    /// The keys of every item of a partition.
    async fn partition_keys(&self, pk: String) -> AppResult<Vec<(String, String)>> {
        let items = self.query_partition(pk.clone(), true, usize::MAX).await?;
        Ok(items.iter().filter_map(|i| get_s(i, "sk")).map(|sk| (pk.clone(), sk)).collect())
    }

    /// Deletes the items at `keys`, each once.
    pub(super) async fn delete_keys(&self, mut keys: Vec<(String, String)>) -> AppResult<()> {
        keys.sort();
        keys.dedup();
        self.batch_delete(keys.into_iter().map(|(pk, sk)| key(pk, sk)).collect()).await
    }

    /// Reserves `count` consecutive ids of a counter; returns the first.
    pub(super) async fn reserve_ids(&self, entity: &str, count: i64) -> AppResult<i64> {
        self.ids.take(entity, count, |n| self.add_to_counter(entity, n)).await
    }

    /// Adds `amount` to the counter `COUNTER#<entity>`; its new value.
    async fn add_to_counter(&self, entity: &str, count: i64) -> AppResult<i64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("COUNTER#{entity}"), "#".to_owned())))
            .update_expression("ADD n :k")
            .expression_attribute_values(":k", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem counter", e))?;
        out.attributes().and_then(|a| get_n(a, "n")).ok_or_else(|| AppError::internal("counter without n"))
    }

    /// A strongly consistent read of one item.
    pub(super) async fn get(&self, key: Item) -> AppResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of a partition, in key order (forward or backward), up to `max` items.
    async fn query_partition(&self, pk: String, forward: bool, max: usize) -> AppResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .limit((max - items.len()).min(1000) as i32)
                .send()
                .await
                .map_err(|e| dynamo_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || items.len() >= max {
                return Ok(items);
            }
        }
    }

    /// `BatchGetItem` (strongly consistent) in chunks of 100, retrying unprocessed keys.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> AppResult<Vec<Item>> {
        batch_get_items(&self.client, &self.table, keys, true).await
    }

    /// Deletes items in batches, retrying what DynamoDB leaves unprocessed.
    pub(super) async fn batch_delete(&self, keys: Vec<Item>) -> AppResult<()> {
        let requests = keys
            .into_iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(AppError::internal)
            })
            .collect::<AppResult<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> AppResult<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(AppError::internal)
            })
            .collect::<AppResult<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    /// `BatchWriteItem` in chunks of 25, retrying unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> AppResult<()> {
        for chunk in requests.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            for attempt in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| dynamo_error("BatchWriteItem", e))?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(AppError::internal("dynamodb BatchWriteItem: items left unprocessed"));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SocialStore for DynamoSocialStore {
    async fn apply(&self, user_id: i64, friend_id: i64, nickname: &str, now: i64) -> AppResult<Option<Application>> {
        // Cheap pre-check so duplicates do not burn ids; the transaction is what guarantees it.
        if self.get(pair_key(user_id, friend_id)).await?.is_some() {
            return Ok(None);
        }
        let id = self.reserve_ids("goodfriendapply", 1).await?;
        let app = Application::new(id, user_id, friend_id, nickname.to_owned(), now);
        let items = vec![
            put(
                &self.table,
                with(pair_key(user_id, friend_id), [("app_id", n(id)), ("uid", n(user_id))]),
                "attribute_not_exists(pk)",
                None,
            )?,
            put(&self.table, application_item(&app)?, "attribute_not_exists(pk)", None)?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(Some(app)),
            Err(e) if failed_conditions(&e).is_some_and(|f| f.first() == Some(&true)) => {
                // The pair naming our freshly reserved id is our own commit, its answer lost.
                let pair = self.get(pair_key(user_id, friend_id)).await?;
                Ok(pair.and_then(|p| get_n(&p, "app_id")).filter(|own| *own == id).map(|_| app))
            }
            Err(e) => Err(dynamo_error("TransactWriteItems apply", e)),
        }
    }

    async fn pending_application(&self, from: i64, to: i64) -> AppResult<Option<Application>> {
        let Some(id) = self.get(pair_key(from, to)).await?.and_then(|p| get_n(&p, "app_id")) else { return Ok(None) };
        Ok(self.application(to, id).await?.filter(|a| a.status == PENDING))
    }

    async fn application(&self, to: i64, id: i64) -> AppResult<Option<Application>> {
        self.get(application_key(to, id)).await?.map(|i| row_of(&i)).transpose()
    }

    async fn applications_to(&self, to: i64, offset: usize, limit: usize) -> AppResult<Vec<Application>> {
        let items = self.query_partition(format!("APPLY#{to}"), false, offset + limit).await?;
        items.iter().skip(offset).map(row_of).collect()
    }

    async fn count_pending_to(&self, to: i64) -> AppResult<u64> {
        // The sparse index holds pending applications only: decided ones cost nothing.
        let (_, count) = self.query_index(FLAG_INDEX, ("flag", s(pending_flag(to))), usize::MAX, true).await?;
        Ok(count)
    }

    async fn decide(&self, app: &Application, status: &str, remarks: FriendRemarks, now: i64) -> AppResult<Decided> {
        let (to, applicant) = (app.friend_id, app.user_id);
        let mut decided = app.clone();
        decided.status = status.to_owned();
        decided.updated_at = now;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(application_key(to, app.id)))
            // Decided: out of the pending count's index.
            .update_expression("SET #st = :s, #row = :row REMOVE flag")
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#row", "row")
            .expression_attribute_values(":s", s(status))
            .expression_attribute_values(":row", json(&decided)?)
            .expression_attribute_values(":pending", s(PENDING))
            .build()
            .map_err(AppError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if status == REFUSE || status == IGNORE {
            let reserved = HashMap::from([(":id".to_owned(), n(app.id))]);
            items.push(tx_delete(&self.table, pair_key(applicant, to), Some(("app_id = :id", reserved)))?);
        }
        if status == AGREE {
            // Both rows are looked up at once; only the missing ones are created.
            let (mine, theirs) =
                tokio::try_join!(self.get(friend_key(to, applicant)), self.get(friend_key(applicant, to)))?;
            let missing: Vec<(i64, i64, String)> = [
                (mine.is_none(), to, applicant, remarks.decider_row),
                (theirs.is_none(), applicant, to, remarks.applicant_row),
            ]
            .into_iter()
            .filter_map(|(missing, owner, friend, remark)| missing.then_some((owner, friend, remark)))
            .collect();
            if !missing.is_empty() {
                let first = self.reserve_ids("goodfriend", missing.len() as i64).await?;
                for (i, (owner, friend, remark)) in missing.into_iter().enumerate() {
                    let row = Friend::new(first + i as i64, owner, friend, remark, now);
                    items.push(put(&self.table, friend_item(&row)?, "attribute_not_exists(pk)", None)?);
                }
            }
        }
        match transact(&self.client, items).await {
            Ok(_) => Ok(Decided::Done),
            Err(e) => match failed_conditions(&e) {
                Some(failed) if failed.first() == Some(&true) => Ok(Decided::NotPending),
                // A friend row appeared between the read and the write: nothing was changed.
                Some(_) => Ok(Decided::Conflict),
                None => Err(dynamo_error("TransactWriteItems decide", e)),
            },
        }
    }

    async fn withdraw(&self, app: &Application) -> AppResult<()> {
        let reserved = HashMap::from([(":id".to_owned(), n(app.id))]);
        let items = vec![
            tx_delete(&self.table, application_key(app.friend_id, app.id), None)?,
            tx_delete(&self.table, pair_key(app.user_id, app.friend_id), Some(("app_id = :id", reserved)))?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(()),
            // The reservation already belongs to another application: delete ours alone.
            Err(e) if failed_conditions(&e).is_some() => {
                self.batch_delete(vec![application_key(app.friend_id, app.id)]).await
            }
            Err(e) => Err(dynamo_error("TransactWriteItems withdraw", e)),
        }
    }

    async fn friend(&self, owner: i64, friend: i64) -> AppResult<Option<Friend>> {
        self.get(friend_key(owner, friend)).await?.map(|i| row_of(&i)).transpose()
    }

    async fn friends(&self, owner: i64) -> AppResult<Vec<Friend>> {
        let items = self.query_partition(format!("FRIEND#{owner}"), true, usize::MAX).await?;
        let mut rows: Vec<Friend> = items.iter().map(row_of).collect::<AppResult<_>>()?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    async fn friends_page(&self, owner: i64, offset: usize, limit: usize) -> AppResult<Vec<Friend>> {
        // The index gives the page's keys in row-id order; the rows themselves are read
        // consistently, so a remark, a block or an unfriending just made shows at once.
        let wanted = offset.saturating_add(limit);
        let (entries, _) = self.query_index(LIST_INDEX, ("list", s(friends_list(owner))), wanted, false).await?;
        let keys = keys_of(&entries).into_iter().skip(offset).take(limit).map(|(pk, sk)| key(pk, sk)).collect();
        let mut rows: Vec<Friend> = self.batch_get(keys).await?.iter().map(row_of).collect::<AppResult<_>>()?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    async fn has_friend_to_chat(&self, owner: i64) -> AppResult<bool> {
        let (_, count) = self.query_index(FLAG_INDEX, ("flag", s(chat_flag(owner))), 1, true).await?;
        Ok(count > 0)
    }

    async fn update_friend(&self, row: &Friend) -> AppResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(friend_item(row)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Deleted meanwhile: nothing to update.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(dynamo_error("PutItem friend", e)),
        }
    }

    async fn unfriend(&self, a: i64, b: i64) -> AppResult<()> {
        let items = vec![
            tx_delete(&self.table, friend_key(a, b), None)?,
            tx_delete(&self.table, friend_key(b, a), None)?,
            tx_delete(&self.table, pair_key(a, b), None)?,
            tx_delete(&self.table, pair_key(b, a), None)?,
        ];
        transact(&self.client, items).await.map_err(|e| dynamo_error("TransactWriteItems unfriend", e))?;
        // The applications between them are history only; the reservations above were what
        // blocked a new application. The pair's index entries name them; neither inbox is read.
        let (from_a, from_b) = tokio::try_join!(
            self.query_index(LIST_INDEX, ("list", s(pair_list(a, b))), usize::MAX, false),
            self.query_index(LIST_INDEX, ("list", s(pair_list(b, a))), usize::MAX, false),
        )?;
        let doomed = [keys_of(&from_a.0), keys_of(&from_b.0)].concat();
        self.delete_keys(doomed).await
    }

    async fn purge_user(&self, user_id: i64) -> AppResult<()> {
        let mine = format!("FRIEND#{user_id}");
        let (friend_rows, applications, naming) = tokio::try_join!(
            self.query_partition(mine.clone(), true, usize::MAX),
            self.query_partition(format!("APPLY#{user_id}"), true, usize::MAX),
            self.items_naming(user_id),
        )?;
        let mut doomed = Vec::new();
        for row in &friend_rows {
            let Some(sk) = get_s(row, "sk") else { continue };
            // The other direction too, even if the index has not caught up with it yet.
            if let Ok(friend) = sk.parse::<i64>() {
                doomed.push((format!("FRIEND#{friend}"), padded(user_id)));
            }
            doomed.push((mine.clone(), sk));
        }
        for app in &applications {
            let Some(sk) = get_s(app, "sk") else { continue };
            if let Some(from) = get_n(app, "from_id") {
                doomed.push((format!("PAIR#{from}#{user_id}"), "#".to_owned()));
            }
            doomed.push((format!("APPLY#{user_id}"), sk));
        }
        let social = ["FRIEND#", "APPLY#", "PAIR#"];
        doomed.extend(naming.into_iter().filter(|(pk, _)| social.iter().any(|p| pk.starts_with(p))));
        self.delete_keys(doomed).await
    }
}

/// The offline queue lives in the social table and shares its query and batch helpers: the
/// message once at `MSG#<key>` / `BODY` (`message` JSON, `revoked` once revoked), and per
/// recipient a keys-only reference `OFFLINE#<user>` / `<key>`; both expire through TTL.
#[derive(Clone)]
pub struct DynamoOfflineQueue {
    store: DynamoSocialStore,
}

const BODY: &str = "BODY";

fn body_key(message_key: &str) -> Item {
    key(format!("MSG#{message_key}"), BODY.to_owned())
}

fn queue_pk(user_id: i64) -> String {
    format!("OFFLINE#{user_id}")
}

/// The message of a `BODY` item, with its revoke applied (spec 6.8: `isremove: 1`).
fn body_of(item: &Item) -> AppResult<Value> {
    let mut message: Value =
        serde_json::from_str(&get_s(item, "message").unwrap_or_default()).map_err(AppError::internal)?;
    if matches!(item.get("revoked"), Some(AttributeValue::Bool(true))) {
        message["isremove"] = Value::from(1);
    }
    Ok(message)
}

impl DynamoOfflineQueue {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOfflineQueue { store: DynamoSocialStore::new(client, table) }
    }
}

#[async_trait]
impl OfflineQueue for DynamoOfflineQueue {
    async fn store(&self, message: &StoredMessage) -> AppResult<()> {
        self.store
            .client
            .update_item()
            .table_name(&self.store.table)
            .set_key(Some(body_key(&message.key)))
            .update_expression("SET message = :m, #ttl = :t")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":m", s(message.message.to_string()))
            .expression_attribute_values(":t", n(now_secs() + OFFLINE_RETENTION_SECS))
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem message", e))?;
        Ok(())
    }

    async fn load(&self, message_key: &str) -> AppResult<Option<StoredMessage>> {
        let Some(item) = self.store.get(body_key(message_key)).await? else { return Ok(None) };
        Ok(Some(StoredMessage { key: message_key.to_owned(), message: body_of(&item)? }))
    }

    async fn enqueue(&self, message_key: &str, recipients: &[i64]) -> AppResult<()> {
        let expires = n(now_secs() + OFFLINE_RETENTION_SECS);
        let items = recipients
            .iter()
            .map(|user| with(key(queue_pk(*user), message_key.to_owned()), [(TTL_ATTRIBUTE, expires.clone())]))
            .collect();
        self.store.batch_put(items).await
    }

    async fn mark_revoked(&self, message_key: &str) -> AppResult<()> {
        let result = self
            .store
            .client
            .update_item()
            .table_name(&self.store.table)
            .set_key(Some(body_key(message_key)))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(dynamo_error("UpdateItem message revoke", e)),
        }
    }

    async fn peek(&self, user_id: i64, limit: usize) -> AppResult<Vec<QueuedMessage>> {
        let now = now_secs();
        let refs: Vec<String> = self
            .store
            .query_partition(queue_pk(user_id), true, limit)
            .await?
            .iter()
            .filter_map(|i| get_s(i, "sk"))
            .collect();
        let mut wanted: Vec<&String> = refs.iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut bodies = HashMap::new();
        for item in self.store.batch_get(wanted.into_iter().map(|k| body_key(k)).collect()).await? {
            // TTL deletion lags; an expired message is as good as gone.
            if get_n(&item, TTL_ATTRIBUTE).is_some_and(|t| t <= now) {
                continue;
            }
            let Some(message_key) = get_s(&item, "pk").and_then(|pk| pk.strip_prefix("MSG#").map(str::to_owned)) else {
                continue;
            };
            bodies.insert(message_key, body_of(&item)?);
        }
        Ok(refs.into_iter().map(|k| (k.clone(), bodies.get(&k).cloned())).collect())
    }

    async fn remove(&self, user_id: i64, keys: &[String]) -> AppResult<()> {
        self.store.batch_delete(keys.iter().map(|k| key(queue_pk(user_id), k.clone())).collect()).await
    }

    async fn clear(&self, user_id: i64) -> AppResult<()> {
        let keys = self.store.partition_keys(queue_pk(user_id)).await?;
        self.store.delete_keys(keys).await
    }
}

/// [`MessageLog`] in the social table: `SENT#<sender>#<chatType>#<to_id>` / `<message id>`, holding
/// the entry's fixed part as JSON plus `revoked` as an attribute of its own.
pub struct DynamoMessageLog {
    store: DynamoSocialStore,
}

impl DynamoMessageLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMessageLog { store: DynamoSocialStore::new(client, table) }
    }

    /// Whether `sender` sent any single message to `to_id` within the retention.
    async fn has_sent_single(&self, sender: i64, to_id: i64) -> AppResult<bool> {
        let mut start = None;
        loop {
            let out = self
                .store
                .client
                .query()
                .table_name(&self.store.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":pk", s(format!("SENT#{sender}#single#{to_id}")))
                .expression_attribute_values(":now", n(now_secs()))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Query sent", e))?;
            if out.count > 0 {
                return Ok(true);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(false);
            }
        }
    }
}

fn sent_key(sender: i64, chat_type: &str, to_id: i64, id: &str) -> Item {
    key(format!("SENT#{sender}#{chat_type}#{to_id}"), id.to_owned())
}

fn sent_of(item: &Item) -> AppResult<SentMessage> {
    let mut entry: SentMessage = row_of(item)?;
    entry.revoked = matches!(item.get("revoked"), Some(AttributeValue::Bool(true)));
    Ok(entry)
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    async fn record(&self, message: &SentMessage) -> AppResult<()> {
        let item = with(
            sent_key(message.sender, &message.chat_type, message.to_id, &message.id),
            [
                ("row", json(message)?),
                ("uid", n(message.sender)),
                ("revoked", AttributeValue::Bool(message.revoked)),
                (TTL_ATTRIBUTE, n(message.create_time / 1000 + SENT_LOG_RETENTION_SECS)),
            ],
        );
        self.store
            .client
            .put_item()
            .table_name(&self.store.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem sent", e))?;
        Ok(())
    }

    async fn find(&self, sender: i64, chat_type: &str, to_id: i64, id: &str) -> AppResult<Option<SentMessage>> {
        let item = self.store.get(sent_key(sender, chat_type, to_id, id)).await?;
        let now = now_secs();
        // TTL deletion lags; an expired entry is as good as gone. The stranger claim has no row.
        let live = |i: &Item| get_n(i, TTL_ATTRIBUTE).is_none_or(|t| t > now) && i.contains_key("row");
        item.filter(live).map(|i| sent_of(&i)).transpose()
    }

    async fn claim_stranger_message(&self, sender: i64, to_id: i64) -> AppResult<bool> {
        if self.has_sent_single(sender, to_id).await? {
            return Ok(false);
        }
        // The claim lives in the conversation's partition (so it counts as a message sent, and
        // expires with the log) and carries `uid` (so deleting the sender removes it) and this
        // attempt's id (so a retry whose first write landed but whose answer was lost knows it won).
        let now = now_secs();
        let claim_key = key(format!("SENT#{sender}#single#{to_id}"), STRANGER_CLAIM.to_owned());
        let attempt = uuid::Uuid::new_v4().to_string();
        let mut claim = claim_key.clone();
        claim.extend([
            ("uid".to_owned(), n(sender)),
            ("attempt".to_owned(), s(&attempt)),
            (TTL_ATTRIBUTE.to_owned(), n(now + SENT_LOG_RETENTION_SECS)),
        ]);
        let put = self
            .store
            .client
            .put_item()
            .table_name(&self.store.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let stored = self.store.get(claim_key).await?;
                Ok(stored.is_some_and(|item| get_s(&item, "attempt").as_deref() == Some(attempt.as_str())))
            }
            Err(e) => Err(dynamo_error("PutItem stranger claim", e)),
        }
    }

    async fn mark_revoked(&self, message: &SentMessage) -> AppResult<bool> {
        let result = self
            .store
            .client
            .update_item()
            .table_name(&self.store.table)
            .set_key(Some(sent_key(message.sender, &message.chat_type, message.to_id, &message.id)))
            .update_expression("SET revoked = :yes")
            .condition_expression("revoked = :no")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(dynamo_error("UpdateItem sent revoke", e)),
        }
    }

    async fn withdraw(&self, message: &SentMessage, claimed: bool) -> AppResult<()> {
        let mut keys = vec![sent_key(message.sender, &message.chat_type, message.to_id, &message.id)];
        if claimed {
            keys.push(key(format!("SENT#{}#single#{}", message.sender, message.to_id), STRANGER_CLAIM.to_owned()));
        }
        self.store.batch_delete(keys).await
    }

    async fn forget_sender(&self, sender: i64) -> AppResult<()> {
        let prefix = format!("SENT#{sender}#");
        let keys =
            self.store.items_naming(sender).await?.into_iter().filter(|(pk, _)| pk.starts_with(&prefix)).collect();
        self.store.delete_keys(keys).await
    }
}

/// Sort key of the stranger claim in a `SENT#<sender>#single#<to>` partition (no message id
/// starts with `#`).
const STRANGER_CLAIM: &str = "#stranger";

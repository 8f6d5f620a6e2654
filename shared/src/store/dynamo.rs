//! DynamoDB adapter of [`UserStore`].
//!
//! One table keyed by `pk`:
//! * `USER#<id>`: the user row (with its `userinfo` map); GSIs `uuid-index` and
//!   `devicefingeruuid-index` (sparse: only visitors carry a device id).
//! * `USERNAME#<lowercase name>` → `user_id`: the username reservation, written in the same
//!   transaction as the user, so uniqueness never depends on an (eventually consistent) GSI read.
//! * `DEVICE#<device id>` → `user_id`: the device's binding to its visitor account.
//! * `COUNTER#<entity>` → `n`: atomic id counters.
//!
//! Every user row carries `listed = "user#<id mod 16>"`: the `users-by-id-index` (key `listed`,
//! sorted by `id`, projecting `username_lc`) is the admin's list of all users, newest first.
//! Searchable users also carry `directory = "user#<id mod 16>"` (`directory-index`). The keys are
//! sharded so that inserts, which come in id order, spread over 16 index partitions instead of
//! all landing on the last one; readers merge the 16 sorted streams back into one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use super::{
    AdminEdit, Created, DeviceBinding, Edited, LoginUpdate, ProfileChange, Upgraded, UserPage, UserStore, SEARCH_BUDGET,
};
use crate::error::{AppError, AppResult};
use crate::model::{is_searchable, username_key, DeviceStats, NewUser, Role, User, UserInfo, UserPrivate, UserSummary};

pub const UUID_INDEX: &str = "uuid-index";
pub const DEVICE_INDEX: &str = "devicefingeruuid-index";
/// Sparse index of searchable users (registered and enabled): key `directory` (sharded), sorted
/// by `id`.
pub const DIRECTORY_INDEX: &str = "directory-index";
/// Attributes the directory index carries, enough for a search hit.
const DIRECTORY_PROJECTION: [&str; 6] = ["username", "username_lc", "avatar", "nickname", "uuid", "role"];
/// Index of every user by id, for the admin list (spec 7.2): key `listed` (sharded), sorted by `id`.
pub const USERS_BY_ID_INDEX: &str = "users-by-id-index";
/// Partition keys per index (`user#0` … `user#15`). Fixed for a table's life: changing it means
/// re-keying every user row.
pub const INDEX_SHARDS: i64 = 16;

/// The `listed` / `directory` key of user `id`.
fn index_shard_key(id: i64) -> String {
    format!("user#{}", id.rem_euclid(INDEX_SHARDS))
}
/// `COUNT#user#<n>`: how many users index shard `n` lists, changed in the transaction that creates
/// or deletes a row, so the admin list counts its users with one read of 16 small items instead
/// of a pass over the index.
fn user_count_pk(shard: i64) -> String {
    format!("COUNT#user#{shard}")
}

/// Adds `delta` to the user count of `id`'s index shard, inside a transaction.
fn count_users(table: &str, id: i64, delta: i64) -> AppResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(user_count_pk(id.rem_euclid(INDEX_SHARDS))))
        .update_expression("ADD n :d")
        .expression_attribute_values(":d", n(delta))
        .build()
        .map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Items a search reads per page.
const SEARCH_PAGE: i32 = 500;
/// TTL attribute of items that expire (offline messages, logs).
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Builds the DynamoDB client once per cold start. `endpoint` points it at an emulator
/// (or use the SDK's standard `AWS_ENDPOINT_URL_DYNAMODB`); local endpoints get dummy
/// credentials and a region when the environment has none.
pub async fn client(endpoint: Option<&str>) -> Client {
    client_from(&sdk_config(endpoint.is_some()).await, endpoint)
}

/// The shared AWS configuration, loaded once per cold start. `emulated`: talking to local
/// emulators, which need no real identity, so the instance-metadata lookups a laptop lacks are skipped.
pub async fn sdk_config(emulated: bool) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if emulated {
        let env = |name: &str| std::env::var_os(name).is_some();
        if !env("AWS_REGION") && !env("AWS_DEFAULT_REGION") {
            loader = loader.region(Region::new("us-east-1"));
        }
        if !env("AWS_ACCESS_KEY_ID") && !env("AWS_PROFILE") {
            loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    loader.load().await
}

/// The AWS configuration of a deployed function, from what Lambda puts in its environment (the
/// region and the execution role's credentials) rather than the SDK's default provider chains,
/// whose profile-file and instance-metadata probing a Lambda cold start pays for nothing.
/// `AWS_ENDPOINT_URL_<SERVICE>` still points a client elsewhere (see [`endpoint_from_env`]).
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok();
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.map(Region::new))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .build()
}

/// The SDK's endpoint override variables (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`),
/// honoured by hand where the configuration is not loaded by `aws-config` (local emulators).
pub fn endpoint_from_env(service: &str) -> Option<String> {
    std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .filter(|url| !url.is_empty())
}

/// Calls fail fast instead of hanging a request on an unreachable service.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// A DynamoDB client on `shared`, optionally at an emulator's `endpoint`.
pub fn client_from(shared: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(shared).timeout_config(timeouts());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn dynamo_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> AppError {
    AppError::internal(format_args!("dynamodb {op}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

pub(crate) fn get_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn put_opt_s(item: &mut Item, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        item.insert(key.to_owned(), s(v));
    }
}

fn user_pk(id: i64) -> String {
    format!("USER#{id}")
}

fn username_pk(username: &str) -> String {
    format!("USERNAME#{}", username_key(username))
}

fn device_pk(device_id: &str) -> String {
    format!("DEVICE#{device_id}")
}

/// `PRIVATE#<id>`: the user's password hash and settings, apart from the row every request reads.
fn private_pk(id: i64) -> String {
    format!("PRIVATE#{id}")
}

/// The user id of a private item, from its key.
fn private_id(item: &Item) -> Option<i64> {
    get_s(item, "pk")?.strip_prefix("PRIVATE#")?.parse().ok()
}

fn private_from_item(item: &Item) -> UserPrivate {
    UserPrivate {
        password: get_s(item, "password").unwrap_or_default(),
        userset: get_s(item, "userset").unwrap_or_default(),
    }
}

fn private_to_item(id: i64, p: &UserPrivate) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(private_pk(id))),
        ("id".to_owned(), n(id)),
        ("password".to_owned(), s(&p.password)),
        ("userset".to_owned(), s(&p.userset)),
    ])
}

/// Deletes the item at `pk` (no condition), inside a transaction.
fn tx_delete_key(table: &str, pk: String) -> AppResult<TransactWriteItem> {
    let delete = Delete::builder().table_name(table).key("pk", s(pk)).build().map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// Sets one attribute (`password` or `userset`) of a user's private item, inside a transaction
/// whose update of the user row checks that the user exists.
fn set_private(table: &str, id: i64, attribute: &str, value: &str) -> AppResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(private_pk(id)))
        .update_expression("SET #f = :v, id = :id")
        .expression_attribute_names("#f", attribute)
        .expression_attribute_values(":v", s(value))
        .expression_attribute_values(":id", n(id))
        .build()
        .map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn user_to_item(u: &User) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".to_owned(), s(user_pk(u.id))),
        ("id".to_owned(), n(u.id)),
        ("uuid".to_owned(), s(&u.uuid)),
        ("username".to_owned(), s(&u.username)),
        ("nickname".to_owned(), s(&u.nickname)),
        ("avatar".to_owned(), s(&u.avatar)),
        ("uniplatform".to_owned(), s(&u.stats.uniplatform)),
        ("devicemodel".to_owned(), s(&u.stats.devicemodel)),
        ("deviceos".to_owned(), s(&u.stats.deviceos)),
        ("devicebrand".to_owned(), s(&u.stats.devicebrand)),
        ("invite_confirm".to_owned(), n(u.invite_confirm)),
        ("status".to_owned(), n(u.status)),
        ("role".to_owned(), s(u.role.as_str())),
        ("registered_at".to_owned(), n(u.registered_at)),
        ("created_at".to_owned(), n(u.created_at)),
        ("updated_at".to_owned(), n(u.updated_at)),
    ]);
    item.insert("username_lc".to_owned(), s(username_key(&u.username)));
    item.insert("listed".to_owned(), s(index_shard_key(u.id)));
    if is_searchable(u.role, u.status) {
        item.insert("directory".to_owned(), s(index_shard_key(u.id)));
    }
    // GSI key attributes cannot be empty strings: registered users simply lack the attribute.
    if !u.devicefingeruuid.is_empty() {
        item.insert("devicefingeruuid".to_owned(), s(&u.devicefingeruuid));
    }
    if let Some(t) = u.last_login {
        item.insert("last_login".to_owned(), n(t));
    }
    let i = &u.userinfo;
    let mut info: Item = HashMap::from([("gender".to_owned(), s(&i.gender))]);
    if let Some(b) = i.birthday {
        info.insert("birthday".to_owned(), n(b));
    }
    put_opt_s(&mut info, "bio", &i.bio);
    put_opt_s(&mut info, "location", &i.location);
    put_opt_s(&mut info, "website", &i.website);
    item.insert("userinfo".to_owned(), AttributeValue::M(info));
    item
}

fn user_from_item(item: &Item) -> AppResult<User> {
    let corrupt = |field: &str| AppError::internal(format_args!("dynamodb: user item without {field}"));
    let text = |k: &str| get_s(item, k).unwrap_or_default();
    let info = item.get("userinfo").and_then(|v| v.as_m().ok());
    let userinfo = match info {
        Some(m) => UserInfo {
            gender: get_s(m, "gender").unwrap_or_else(|| "unknown".to_owned()),
            birthday: get_n(m, "birthday"),
            bio: get_s(m, "bio"),
            location: get_s(m, "location"),
            website: get_s(m, "website"),
        },
        None => UserInfo::default(),
    };
    Ok(User {
        id: get_n(item, "id").ok_or_else(|| corrupt("id"))?,
        uuid: get_s(item, "uuid").ok_or_else(|| corrupt("uuid"))?,
        username: get_s(item, "username").ok_or_else(|| corrupt("username"))?,
        nickname: text("nickname"),
        avatar: text("avatar"),
        devicefingeruuid: text("devicefingeruuid"),
        stats: DeviceStats {
            uniplatform: text("uniplatform"),
            devicemodel: text("devicemodel"),
            deviceos: text("deviceos"),
            devicebrand: text("devicebrand"),
        },
        invite_confirm: get_n(item, "invite_confirm").unwrap_or(0),
        status: get_n(item, "status").unwrap_or(1),
        role: get_s(item, "role").and_then(|r| Role::parse(&r)).ok_or_else(|| corrupt("role"))?,
        last_login: get_n(item, "last_login"),
        registered_at: get_n(item, "registered_at").unwrap_or(0),
        created_at: get_n(item, "created_at").unwrap_or(0),
        updated_at: get_n(item, "updated_at").unwrap_or(0),
        userinfo,
    })
}

/// Turns on expiry through [`TTL_ATTRIBUTE`].
pub(crate) async fn enable_ttl(client: &Client, table: &str) -> AppResult<()> {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(AppError::internal)?,
        )
        .send()
        .await
        .map_err(|e| dynamo_error("UpdateTimeToLive", e))?;
    Ok(())
}

type TransactResult = Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// Attempts of a transaction that DynamoDB cancelled only because another transaction was
/// touching the same items at that moment (`TransactionConflict`, not retried by the SDK).
const TRANSACTION_ATTEMPTS: u32 = 4;

/// `TransactWriteItems`, retried with a short backoff while it conflicts with a concurrent
/// transaction; a failed condition is returned at once (the caller decides what it means).
pub(crate) async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> TransactResult {
    let mut attempt = 1;
    // The SDK's own retries of a request (a lost answer, a timeout) resend its token, and
    // DynamoDB answers a repeated token with the first outcome instead of failing the retry on
    // conditions the first commit made true. A request still in progress is asked again with the
    // same token; only a conflict cancellation (nothing written) is retried with a new one.
    // Emulators ignore tokens; adapters whose retry would misreport also read their own write back.
    let mut token = uuid::Uuid::new_v4().to_string();
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&token)
            .send()
            .await;
        let (retry, same_token) = match &result {
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<_> = c.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
                    (codes.contains(&"TransactionConflict") && !codes.contains(&"ConditionalCheckFailed"), false)
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => (true, true),
                _ => (false, false),
            },
            Ok(_) => (false, false),
        };
        if !retry || attempt == TRANSACTION_ATTEMPTS {
            return result;
        }
        if !same_token {
            token = uuid::Uuid::new_v4().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt) + u64::from(rand::random::<u8>() % 20))).await;
        attempt += 1;
    }
}

/// Which items of a cancelled transaction failed their condition.
pub(crate) fn failed_conditions(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<bool>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect())
        }
        _ => None,
    }
}

/// Next value of the counter `COUNTER#<entity>` of a table keyed by `pk` only.
pub(crate) async fn next_counter(client: &Client, table: &str, entity: &str) -> AppResult<i64> {
    add_to_counter(client, table, entity, 1).await
}

/// Adds `amount` to the counter `COUNTER#<entity>` of a table keyed by `pk` only; its new value.
async fn add_to_counter(client: &Client, table: &str, entity: &str, amount: i64) -> AppResult<i64> {
    let out = client
        .update_item()
        .table_name(table)
        .key("pk", s(format!("COUNTER#{entity}")))
        .update_expression("ADD n :one")
        .expression_attribute_values(":one", n(amount))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| dynamo_error("UpdateItem counter", e))?;
    out.attributes().and_then(|a| get_n(a, "n")).ok_or_else(|| AppError::internal("dynamodb: counter without n"))
}

/// Merges the sorted pages of every index shard into one stream by `id` (ascending when
/// `ascending`), handing each item to `visit` until it returns `false` or every shard is done.
/// `fetch(shard, start, examined)` reads a shard's next page: its items, the key to go on from,
/// and how many entries it examined (`examined` keeps each shard's total, for budgets).
async fn merge_index_shards<F, Fut>(
    ascending: bool,
    examined: &mut [usize],
    fetch: F,
    mut visit: impl FnMut(&Item) -> bool,
) -> AppResult<()>
where
    F: Fn(i64, Option<Item>, usize) -> Fut,
    Fut: std::future::Future<Output = AppResult<(Vec<Item>, Option<Item>, usize)>>,
{
    struct Shard {
        buffer: std::collections::VecDeque<Item>,
        start: Option<Item>,
        done: bool,
    }
    let mut shards: Vec<Shard> =
        (0..INDEX_SHARDS).map(|_| Shard { buffer: Default::default(), start: None, done: false }).collect();
    loop {
        // Every shard with nothing buffered reads on, all at once, until it has items or ends.
        let pending: Vec<usize> =
            (0..shards.len()).filter(|&i| shards[i].buffer.is_empty() && !shards[i].done).collect();
        let pages = futures_util::future::join_all(
            pending.iter().map(|&i| fetch(i as i64, shards[i].start.take(), examined[i])),
        )
        .await;
        for (&i, page) in pending.iter().zip(pages) {
            let (items, next, scanned) = page?;
            examined[i] += scanned;
            shards[i].buffer.extend(items);
            shards[i].done = next.is_none();
            shards[i].start = next;
        }
        if shards.iter().any(|s| s.buffer.is_empty() && !s.done) {
            continue;
        }
        let id = |s: &Shard| s.buffer.front().and_then(|item| get_n(item, "id"));
        let heads = shards.iter().enumerate().filter_map(|(i, s)| id(s).map(|id| (i, id)));
        let best = if ascending { heads.min_by_key(|&(_, id)| id) } else { heads.max_by_key(|&(_, id)| id) };
        let Some((i, _)) = best else { return Ok(()) };
        let item = shards[i].buffer.pop_front().expect("a head");
        if !visit(&item) {
            return Ok(());
        }
    }
}

/// Ids handed out from blocks: one counter write (`ADD size`) reserves `size` ids that this
/// execution environment then hands out itself, so the counter item is written once per block
/// instead of once per insert (a counter item takes about 1,000 writes a second). Ids stay unique
/// and never reused, increasing within a block; a block's unused ids are lost when the
/// environment ends.
#[derive(Debug, Default)]
pub struct IdBlocks {
    size: i64,
    /// Entity → the block's next id and its end (exclusive).
    left: std::sync::Mutex<HashMap<String, (i64, i64)>>,
}

impl IdBlocks {
    /// Blocks of `size` ids (1: one counter write per id).
    pub fn new(size: i64) -> Arc<IdBlocks> {
        Arc::new(IdBlocks { size: size.max(1), left: std::sync::Mutex::default() })
    }

    /// The first of `count` consecutive new ids of `entity`; `reserve(n)` adds `n` to the
    /// counter and returns its new value.
    pub(crate) async fn take<F, Fut>(&self, entity: &str, count: i64, reserve: F) -> AppResult<i64>
    where
        F: FnOnce(i64) -> Fut,
        Fut: std::future::Future<Output = AppResult<i64>>,
    {
        {
            let mut left = self.left.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((next, end)) = left.get_mut(entity) {
                if *end - *next >= count {
                    let first = *next;
                    *next += count;
                    return Ok(first);
                }
            }
        }
        let reserved = self.size.max(count);
        let last = reserve(reserved).await?;
        let first = last - reserved + 1;
        let mut left = self.left.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        left.insert(entity.to_owned(), (first + count, last + 1));
        Ok(first)
    }
}

/// `BatchGetItem` of `keys` in chunks of 100 (optionally strongly consistent), retrying what
/// DynamoDB leaves unprocessed.
pub(crate) async fn batch_get_items(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
) -> AppResult<Vec<Item>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(100) {
        let mut pending = chunk.to_vec();
        for attempt in 0..5 {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(AppError::internal)?;
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| dynamo_error("BatchGetItem", e))?;
            found.extend(out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
            pending =
                out.unprocessed_keys.and_then(|mut u| u.remove(table)).map(|k| k.keys().to_vec()).unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        if !pending.is_empty() {
            return Err(AppError::internal("dynamodb BatchGetItem: keys left unprocessed"));
        }
    }
    Ok(found)
}

/// A strongly consistent read of the item `pk` of a table keyed by `pk` only.
pub(crate) async fn get_by_pk(client: &Client, table: &str, pk: String) -> AppResult<Option<Item>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| dynamo_error("GetItem", e))?;
    Ok(out.item)
}

/// A conditional Put inside a transaction.
pub(crate) fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> AppResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(AppError::internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[derive(Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
    ids: Arc<IdBlocks>,
}

impl DynamoUserStore {
    /// Sets `password` or `userset` of an existing user, with the row's `updated_at`.
    async fn update_private(&self, id: i64, attribute: &str, value: &str, at: i64) -> AppResult<()> {
        let touched = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(id)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET updated_at = :t")
            .expression_attribute_values(":t", n(at))
            .build()
            .map_err(AppError::internal)?;
        let items =
            vec![TransactWriteItem::builder().update(touched).build(), set_private(&self.table, id, attribute, value)?];
        transact(&self.client, items).await.map_err(|e| dynamo_error("TransactWriteItems private", e))?;
        Ok(())
    }

    /// The number of users, from the 16 per-shard counters (one batch read).
    async fn user_count(&self) -> AppResult<u64> {
        let keys = (0..INDEX_SHARDS).map(|shard| HashMap::from([("pk".to_owned(), s(user_count_pk(shard)))])).collect();
        let counters = batch_get_items(&self.client, &self.table, keys, true).await?;
        Ok(counters.iter().filter_map(|c| get_n(c, "n")).sum::<i64>().max(0) as u64)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoUserStore { client, table: table.into(), ids: IdBlocks::new(1) }
    }

    /// Ids from blocks of `size` (see [`IdBlocks`]).
    pub fn with_id_blocks(mut self, size: i64) -> Self {
        self.ids = IdBlocks::new(size);
        self
    }

    /// Whether the stored row of `user.id` is this very user (same uuid): a read-back that
    /// recognises a write whose answer was lost.
    async fn is_own_row(&self, user: &User) -> AppResult<bool> {
        let stored = self.get_item(user_pk(user.id)).await?;
        Ok(stored.and_then(|item| get_s(&item, "uuid")).is_some_and(|uuid| uuid == user.uuid))
    }

    /// Next value of a per-entity counter (ids are never reused).
    async fn next_id(&self, entity: &str) -> AppResult<i64> {
        self.ids.take(entity, 1, |n| add_to_counter(&self.client, &self.table, entity, n)).await
    }

    async fn get_item(&self, pk: String) -> AppResult<Option<Item>> {
        get_by_pk(&self.client, &self.table, pk).await
    }

    /// Follows a `user_id` reference item to its user.
    async fn follow(&self, pk: String) -> AppResult<Option<User>> {
        match self.get_item(pk).await?.and_then(|i| get_n(&i, "user_id")) {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// Creates the table with its indexes and TTL when it does not exist (chat-local, tests).
    /// Deployed stacks get the same table from template.yaml.
    pub async fn create_table_if_missing(&self) -> AppResult<()> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(AppError::internal)
        };
        let hash = |name: &str| {
            KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Hash).build().map_err(AppError::internal)
        };
        // Keys only: a user row's update then never rewrites these indexes (with ALL, every login
        // wrote the whole row twice more); a lookup reads the row itself.
        let index = |index: &str, key: &str| -> AppResult<GlobalSecondaryIndex> {
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(hash(key)?)
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .map_err(AppError::internal)
        };
        // A sparse index keyed by `key`, sorted by `id`, carrying `projection`.
        let by_id = |index: &str, key: &str, projection: &[&str]| -> AppResult<GlobalSecondaryIndex> {
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(hash(key)?)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("id")
                        .key_type(KeyType::Range)
                        .build()
                        .map_err(AppError::internal)?,
                )
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(projection.iter().map(|a| (*a).to_owned()).collect()))
                        .build(),
                )
                .build()
                .map_err(AppError::internal)
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("uuid")?)
            .attribute_definitions(attr("devicefingeruuid")?)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .map_err(AppError::internal)?,
            )
            .attribute_definitions(attr("directory")?)
            .attribute_definitions(attr("listed")?)
            .key_schema(hash("pk")?)
            .global_secondary_indexes(index(UUID_INDEX, "uuid")?)
            .global_secondary_indexes(index(DEVICE_INDEX, "devicefingeruuid")?)
            .global_secondary_indexes(by_id(DIRECTORY_INDEX, "directory", &DIRECTORY_PROJECTION)?)
            .global_secondary_indexes(by_id(USERS_BY_ID_INDEX, "listed", &["username_lc"])?)
            .send()
            .await
            .map_err(|e| dynamo_error("CreateTable", e))?;
        enable_ttl(&self.client, &self.table).await
    }

    /// The transaction item deleting the reference item `pk` if it still points at `user_id`.
    fn release(&self, pk: String, user_id: i64) -> AppResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .condition_expression("user_id = :id")
            .expression_attribute_values(":id", n(user_id))
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The items moving `user`'s username reservation to `username` (none when only the case
    /// changes): the new one (item 1 of the caller's transaction after its update, failing when
    /// taken) and the release of the old one.
    fn move_reservation(&self, user: &User, username: &str) -> AppResult<Vec<TransactWriteItem>> {
        if username_key(username) == username_key(&user.username) {
            return Ok(Vec::new());
        }
        let reserve = put(
            &self.table,
            HashMap::from([("pk".to_owned(), s(username_pk(username))), ("user_id".to_owned(), n(user.id))]),
            "attribute_not_exists(pk)",
            None,
        )?;
        Ok(vec![reserve, self.release(username_pk(&user.username), user.id)?])
    }

    /// A reference item (`user_id`) pointing at `user_id`: its conditional delete, else `None`.
    async fn own_reference(&self, pk: String, user_id: i64) -> AppResult<Option<TransactWriteItem>> {
        let item = self.get_item(pk.clone()).await?;
        if item.and_then(|i| get_n(&i, "user_id")) != Some(user_id) {
            return Ok(None);
        }
        self.release(pk, user_id).map(Some)
    }
}

/// Attempts of a write whose condition on what was read (references, role) failed because they
/// changed meanwhile.
const STALE_READ_ATTEMPTS: usize = 3;

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn create(&self, new_user: NewUser, device: Option<DeviceBinding>) -> AppResult<Created> {
        let id = self.next_id("user").await?;
        let (user, private) = new_user.into_user(id);
        let mut items = vec![
            put(&self.table, user_to_item(&user), "attribute_not_exists(pk)", None)?,
            put(
                &self.table,
                HashMap::from([("pk".to_owned(), s(username_pk(&user.username))), ("user_id".to_owned(), n(id))]),
                "attribute_not_exists(pk)",
                None,
            )?,
        ];
        if let Some(binding) = &device {
            let item =
                HashMap::from([("pk".to_owned(), s(device_pk(&binding.device_id))), ("user_id".to_owned(), n(id))]);
            items.push(match binding.replaces {
                None => put(&self.table, item, "attribute_not_exists(pk)", None)?,
                Some(old) => {
                    put(&self.table, item, "user_id = :old", Some(HashMap::from([(":old".to_owned(), n(old))])))?
                }
            });
        }
        // Last, so the failed conditions above keep their positions. The private item of a fresh
        // id needs no condition.
        let private = Put::builder()
            .table_name(&self.table)
            .set_item(Some(private_to_item(id, &private)))
            .build()
            .map_err(AppError::internal)?;
        items.push(TransactWriteItem::builder().put(private).build());
        items.push(count_users(&self.table, id, 1)?);
        match transact(&self.client, items).await {
            Ok(_) => Ok(Created::Created(Box::new(user))),
            Err(e) => match failed_conditions(&e) {
                // The row of a freshly reserved id exists: only our own commit, whose answer was
                // lost, can have written it (then every condition fails on the retry).
                Some(failed) if failed.first() == Some(&true) && self.is_own_row(&user).await? => {
                    Ok(Created::Created(Box::new(user)))
                }
                Some(failed) if failed.get(2) == Some(&true) => Ok(Created::DeviceRebound),
                Some(failed) if failed.get(1) == Some(&true) => Ok(Created::UsernameTaken),
                _ => Err(dynamo_error("TransactWriteItems create user", e)),
            },
        }
    }

    async fn get(&self, id: i64) -> AppResult<Option<User>> {
        self.get_item(user_pk(id)).await?.map(|i| user_from_item(&i)).transpose()
    }

    async fn get_many(&self, ids: &[i64]) -> AppResult<Vec<User>> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let keys = unique.iter().map(|id| HashMap::from([("pk".to_owned(), s(user_pk(*id)))])).collect();
        let items = batch_get_items(&self.client, &self.table, keys, false).await?;
        items.iter().map(user_from_item).collect()
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>> {
        self.follow(username_pk(username)).await
    }

    async fn find_by_uuid(&self, uuid: &str) -> AppResult<Option<User>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(UUID_INDEX)
            .key_condition_expression("#u = :u")
            .expression_attribute_names("#u", "uuid")
            .expression_attribute_values(":u", s(uuid))
            .limit(1)
            .send()
            .await
            .map_err(|e| dynamo_error("Query uuid-index", e))?;
        // The index carries keys only: the row itself is read by its key.
        match out.items().first().and_then(|item| get_s(item, "pk")) {
            Some(pk) => self.get_item(pk).await?.map(|item| user_from_item(&item)).transpose(),
            None => Ok(None),
        }
    }

    async fn find_by_device(&self, device_id: &str) -> AppResult<Option<User>> {
        self.follow(device_pk(device_id)).await
    }

    async fn record_login(&self, id: i64, at: i64, update: LoginUpdate) -> AppResult<()> {
        let mut set = vec!["last_login = :t", "updated_at = :t"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", n(at));
        if let Some(stats) = update.stats {
            set.extend(["uniplatform = :p", "devicemodel = :m", "deviceos = :o", "devicebrand = :b"]);
            request = request
                .expression_attribute_values(":p", s(stats.uniplatform))
                .expression_attribute_values(":m", s(stats.devicemodel))
                .expression_attribute_values(":o", s(stats.deviceos))
                .expression_attribute_values(":b", s(stats.devicebrand));
        }
        request
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem login", e))?;
        if let Some(hash) = update.rehash {
            // Apart from the row: should this write fail, the next login replaces the legacy hash.
            // Only an existing item: a user deleted meanwhile must not get its hash back.
            let replaced = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(private_pk(id)))
                .condition_expression("attribute_exists(pk)")
                .update_expression("SET #pw = :h")
                .expression_attribute_names("#pw", "password")
                .expression_attribute_values(":h", s(hash))
                .send()
                .await;
            match replaced {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(dynamo_error("UpdateItem rehash", e)),
            }
        }
        Ok(())
    }

    async fn update_profile(&self, id: i64, change: ProfileChange, at: i64) -> AppResult<()> {
        let (attribute, value) = match change {
            ProfileChange::Userset(v) => return self.update_private(id, "userset", &v, at).await,
            ProfileChange::Password(v) => return self.update_private(id, "password", &v, at).await,
            ProfileChange::Nickname(v) => ("nickname", s(v)),
            ProfileChange::Avatar(v) => ("avatar", s(v)),
            ProfileChange::InviteConfirm(v) => ("invite_confirm", n(v)),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(id)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET #f = :v, updated_at = :t")
            .expression_attribute_names("#f", attribute)
            .expression_attribute_values(":v", value)
            .expression_attribute_values(":t", n(at))
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem profile", e))?;
        Ok(())
    }

    async fn search(&self, keyword_lc: &str, exclude: i64, limit: usize) -> AppResult<Vec<UserSummary>> {
        // Each shard examines its share of the budget; the matches merge by ascending id.
        let budget = SEARCH_BUDGET.div_ceil(INDEX_SHARDS as usize);
        let mut examined = vec![0usize; INDEX_SHARDS as usize];
        let mut hits = Vec::new();
        let fetch = |shard: i64, start: Option<Item>, examined_so_far: usize| async move {
            if examined_so_far >= budget {
                return Ok((Vec::new(), None, 0));
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DIRECTORY_INDEX)
                .key_condition_expression("#d = :d")
                .filter_expression("contains(username_lc, :kw) AND #i <> :me")
                .expression_attribute_names("#d", "directory")
                .expression_attribute_names("#i", "id")
                .expression_attribute_values(":d", s(format!("user#{shard}")))
                .expression_attribute_values(":kw", s(keyword_lc))
                .expression_attribute_values(":me", n(exclude))
                .limit(SEARCH_PAGE.min((budget - examined_so_far) as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Query directory-index", e))?;
            let scanned = out.scanned_count().max(0) as usize;
            Ok((out.items.unwrap_or_default(), out.last_evaluated_key, scanned))
        };
        merge_index_shards(true, &mut examined, fetch, |item| {
            hits.push(UserSummary {
                id: get_n(item, "id").unwrap_or(0),
                username: get_s(item, "username").unwrap_or_default(),
                avatar: get_s(item, "avatar").unwrap_or_default(),
                role: get_s(item, "role").and_then(|r| Role::parse(&r)).unwrap_or(Role::User),
                uuid: get_s(item, "uuid").unwrap_or_default(),
                nickname: get_s(item, "nickname").unwrap_or_default(),
            });
            hits.len() < limit
        })
        .await?;
        Ok(hits)
    }

    async fn upgrade_visitor(&self, user: &User, username: &str, password_hash: &str, at: i64) -> AppResult<Upgraded> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user.id)))
            .update_expression(
                "SET #un = :u, username_lc = :lc, #r = :user, #d = :dir, last_login = :t, updated_at = :t",
            )
            .condition_expression("#r = :visitor AND #s = :one")
            .expression_attribute_names("#un", "username")
            .expression_attribute_names("#r", "role")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#d", "directory")
            .expression_attribute_values(":u", s(username))
            .expression_attribute_values(":lc", s(username_key(username)))
            .expression_attribute_values(":dir", s(index_shard_key(user.id)))
            .expression_attribute_values(":user", s(Role::User.as_str()))
            .expression_attribute_values(":visitor", s(Role::Visitor.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":t", n(at))
            .build()
            .map_err(AppError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.move_reservation(user, username)?);
        items.push(set_private(&self.table, user.id, "password", password_hash)?);
        match transact(&self.client, items).await {
            Ok(_) => {
                let mut upgraded = user.clone();
                upgraded.username = username.to_owned();
                upgraded.role = Role::User;
                upgraded.last_login = Some(at);
                upgraded.updated_at = at;
                Ok(Upgraded::Upgraded(Box::new(upgraded)))
            }
            Err(e) => match failed_conditions(&e) {
                Some(failed) if failed.first() == Some(&true) => Ok(Upgraded::NotAnActiveVisitor),
                Some(failed) if failed.get(1) == Some(&true) => Ok(Upgraded::UsernameTaken),
                _ => Err(dynamo_error("TransactWriteItems upgrade visitor", e)),
            },
        }
    }

    async fn list(&self, keyword_lc: Option<&str>, offset: usize, limit: usize) -> AppResult<UserPage> {
        // The shards merge newest first and the page's rows are then read in one batch. Without
        // a keyword the count comes from the per-shard counters and each shard reads at most
        // `offset + limit` entries; a keyword search counts its matches, which takes a pass over
        // the index (keys and `username_lc` only: about 30k entries per 1 MB page).
        let wanted = offset.saturating_add(limit);
        let counted = match keyword_lc {
            Some(_) => None,
            None => Some(self.user_count().await?),
        };
        let mut count = 0u64;
        let mut page_ids = Vec::with_capacity(limit);
        let mut examined = vec![0usize; INDEX_SHARDS as usize];
        let fetch = |shard: i64, start: Option<Item>, _: usize| async move {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(USERS_BY_ID_INDEX)
                .key_condition_expression("#l = :l")
                .expression_attribute_names("#l", "listed")
                .expression_attribute_values(":l", s(format!("user#{shard}")))
                .scan_index_forward(false)
                .set_exclusive_start_key(start);
            match keyword_lc {
                Some(keyword) => {
                    query = query
                        .filter_expression("contains(username_lc, :kw)")
                        .expression_attribute_values(":kw", s(keyword));
                }
                None => query = query.limit(wanted.clamp(1, 1000) as i32),
            }
            let out = query.send().await.map_err(|e| dynamo_error("Query users-by-id-index", e))?;
            let scanned = out.scanned_count().max(0) as usize;
            Ok((out.items.unwrap_or_default(), out.last_evaluated_key, scanned))
        };
        merge_index_shards(false, &mut examined, fetch, |item| {
            if count >= offset as u64 && page_ids.len() < limit {
                page_ids.extend(get_n(item, "id"));
            }
            count += 1;
            // Counted already: stop once the page is full.
            counted.is_none() || page_ids.len() < limit && count < wanted as u64
        })
        .await?;
        let count = counted.unwrap_or(count);
        let mut rows = self.get_many(&page_ids).await?;
        rows.sort_by_key(|u| std::cmp::Reverse(u.id));
        Ok(UserPage { count, rows })
    }

    async fn admin_update(&self, user: &User, edit: AdminEdit, at: i64) -> AppResult<Edited> {
        let mut set = vec!["#un = :u", "username_lc = :lc", "updated_at = :t"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user.id)))
            // Renamed meanwhile: the reservation moved below would not be this user's.
            .condition_expression("attribute_exists(pk) AND username_lc = :old")
            .expression_attribute_names("#un", "username")
            .expression_attribute_values(":u", s(&edit.username))
            .expression_attribute_values(":lc", s(username_key(&edit.username)))
            .expression_attribute_values(":old", s(username_key(&user.username)))
            .expression_attribute_values(":t", n(at));
        if let Some(avatar) = edit.avatar {
            set.push("avatar = :a");
            update = update.expression_attribute_values(":a", s(avatar));
        }
        let update = update.update_expression(format!("SET {}", set.join(", "))).build().map_err(AppError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.move_reservation(user, &edit.username)?);
        if let Some(hash) = &edit.password {
            items.push(set_private(&self.table, user.id, "password", hash)?);
        }
        match transact(&self.client, items).await {
            Ok(_) => Ok(Edited::Updated),
            Err(e) => match failed_conditions(&e) {
                Some(failed) if failed.get(1) == Some(&true) => Ok(Edited::UsernameTaken),
                // The row (gone or renamed) or the old reservation no longer matches what was read.
                Some(failed) if failed.contains(&true) => Ok(Edited::NotFound),
                _ => Err(dynamo_error("TransactWriteItems admin update", e)),
            },
        }
    }

    async fn set_status(&self, user: &User, status: i64, at: i64) -> AppResult<bool> {
        let mut role = user.role;
        for _ in 0..STALE_READ_ATTEMPTS {
            // The search directory lists enabled registered users only; the role it was decided
            // on must still be the row's (a visitor may upgrade meanwhile).
            let directory = if is_searchable(role, status) { ", #d = :dir" } else { " REMOVE #d" };
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(user_pk(user.id)))
                .condition_expression("attribute_exists(pk) AND #r = :role")
                .update_expression(format!("SET #s = :s, updated_at = :t{directory}"))
                .expression_attribute_names("#s", "status")
                .expression_attribute_names("#d", "directory")
                .expression_attribute_names("#r", "role")
                .expression_attribute_values(":s", n(status))
                .expression_attribute_values(":t", n(at))
                .expression_attribute_values(":role", s(role.as_str()));
            if is_searchable(role, status) {
                request = request.expression_attribute_values(":dir", s(index_shard_key(user.id)));
            }
            match request.send().await {
                Ok(_) => return Ok(true),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    match self.get(user.id).await? {
                        Some(current) => role = current.role,
                        None => return Ok(false),
                    }
                }
                Err(e) => return Err(dynamo_error("UpdateItem status", e)),
            }
        }
        Err(AppError::internal("dynamodb: the user's role kept changing during a status change"))
    }

    async fn private_many(&self, ids: &[i64]) -> AppResult<HashMap<i64, UserPrivate>> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let keys = unique.iter().map(|&id| HashMap::from([("pk".to_owned(), s(private_pk(id)))])).collect();
        let items = batch_get_items(&self.client, &self.table, keys, true).await?;
        Ok(items.iter().filter_map(|item| Some((private_id(item)?, private_from_item(item)))).collect())
    }
    /// One `GetItem` (what the login and profile functions' policies allow), not a batch.
    async fn private(&self, id: i64) -> AppResult<Option<UserPrivate>> {
        Ok(self.get_item(private_pk(id)).await?.map(|item| private_from_item(&item)))
    }

    async fn highest_id(&self) -> AppResult<i64> {
        let counter = self.get_item("COUNTER#user".to_owned()).await?;
        Ok(counter.and_then(|c| get_n(&c, "n")).unwrap_or(0))
    }

    async fn delete(&self, user: &User) -> AppResult<bool> {
        for _ in 0..STALE_READ_ATTEMPTS {
            let row = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(user_pk(user.id)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(AppError::internal)?;
            let mut items =
                vec![TransactWriteItem::builder().delete(row).build(), count_users(&self.table, user.id, -1)?];
            // Only references that are still this user's: a device rebound to a newer visitor
            // keeps its binding. Each delete is conditioned on what was read.
            let (name, device) = tokio::try_join!(self.own_reference(username_pk(&user.username), user.id), async {
                match user.devicefingeruuid.as_str() {
                    "" => Ok(None),
                    device => self.own_reference(device_pk(device), user.id).await,
                }
            })?;
            items.extend(name.into_iter().chain(device));
            items.push(tx_delete_key(&self.table, private_pk(user.id))?);
            match transact(&self.client, items).await {
                Ok(_) => return Ok(true),
                Err(e) => match failed_conditions(&e) {
                    Some(failed) if failed.first() == Some(&true) => return Ok(false),
                    // A reference changed after it was read: read them again.
                    Some(_) => continue,
                    None => return Err(dynamo_error("TransactWriteItems delete user", e)),
                },
            }
        }
        Err(AppError::internal("dynamodb: the user's references kept changing during its deletion"))
    }
}

//! Races that must end with exactly one of something: an account, an application, a member row,
//! a revoke notice (issue 11 item 3: every check-then-act of the spec is one atomic step).

use std::sync::Arc;

use chat_shared::clock::now_ms;
use chat_tests::{fail, ok, visitor_sign, Backend, BackendKind};
use serde_json::{json, Value};

async fn concurrent_registrations_of_one_username_create_one_account(kind: BackendKind) {
    let b = Arc::new(Backend::new(kind).await);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let b = b.clone();
            // Different spellings: uniqueness is case-insensitive.
            let name = if i % 2 == 0 { "racer01" } else { "RACER01" };
            tokio::spawn(
                async move { b.post_json("/api/regChat", json!({"username": name, "password": "123456"})).await },
            )
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            200 => winners.push(body["data"]["id"].as_i64().expect("id")),
            400 => assert_eq!(body["data"], "该账号已存在，请换一个账号注册"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    let stored = b.state.users.find_by_username("racer01").await.expect("find").expect("exists");
    assert_eq!(stored.id, winners[0]);
}

async fn concurrent_visitor_registrations_of_one_device_create_one_user(kind: BackendKind) {
    let b = Arc::new(Backend::new(kind).await);
    let device = "c0ffee00-bf16-5425-adbc-d12f49cfa332";
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move {
                let ts = now_ms();
                let body = json!({"deviceId": device, "timestamp": ts}).to_string();
                let sign = visitor_sign(device, ts);
                b.call(
                    "POST",
                    "/api/visitorRegister",
                    &[("x-security-sign", &sign), ("content-type", "application/json")],
                    &body,
                )
                .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut limited = 0;
    for task in tasks {
        let (status, body): (u16, Value) = task.await.expect("task");
        match status {
            200 => ids.push(body["data"]["id"].as_i64().expect("id")),
            400 if body["data"] == "请求过于频繁，请1个小时后再试" => limited += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ids.len(), limited), (5, 15), "the device limit lets five through");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every successful request logged into the same visitor: {ids:?}");
    assert_eq!(b.state.users.find_by_device(device).await.expect("find").map(|u| u.id), Some(ids[0]));
    // No second visitor was created for the device, not even under a fallback name.
    let next = b.post_json("/api/regChat", json!({"username": "after-race", "password": "123456"})).await;
    let next_id = next.1["data"]["id"].as_i64().expect("id");
    for id in 1..next_id {
        if let Some(u) = b.state.users.get(id).await.expect("get") {
            assert!(u.devicefingeruuid != device || u.id == ids[0], "extra visitor {u:?}");
        }
    }
}

async fn concurrent_applications_make_one(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("apply001").await, b.register("apply002").await);
    let apply = json!({"friend_id": bob.id});
    let answers = futures_util::future::join_all(
        (0..20).map(|_| b.call_as("POST", "/api/chat/applyfriend", &alice, apply.clone())),
    )
    .await;
    let accepted = answers.iter().filter(|a| **a == ok(json!("ok"))).count();
    let repeated = answers.iter().filter(|a| **a == fail("您已经申请过了，请勿重复申请")).count();
    assert_eq!((accepted, repeated), (1, 19), "{answers:?}");
    assert_eq!(b.queued(bob.id).await.len(), 1, "one application, one notice");
}

async fn concurrent_invites_add_one_member(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (owner, friend, joiner) =
        (b.register("owner021").await, b.register("friend21").await, b.register("joiner21").await);
    let group_id = b.create_group(&owner, &[&friend]).await;
    let invite = json!({"group_id": group_id, "user_id": joiner.id});
    let answers = futures_util::future::join_all(
        (0..10).map(|_| b.call_as("POST", "/api/chat/groupInviteUser", &owner, invite.clone())),
    )
    .await;
    let joined = answers.iter().filter(|a| **a == ok(json!("加群成功"))).count();
    let already = answers.iter().filter(|a| **a == fail("用户已经在群里")).count();
    assert_eq!((joined, already), (1, 9), "{answers:?}");
    let members = b.state.groups.members(group_id).await.expect("members");
    assert_eq!(members.iter().filter(|m| m.user_id == joiner.id).count(), 1);
}

async fn concurrent_revokes_push_one_notice(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("revoke01").await, b.register("revoke02").await);
    b.befriend(bob.id, alice.id).await;
    let data = json!({"data": "oops", "dataType": false, "otherData": null}).to_string();
    let send = json!({"sendto_id": bob.id, "chatType": "single", "type": "text", "data": data, "options": "%7B%7D"});
    let (status, sent) = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send).await;
    assert_eq!(status, 200, "{sent}");
    let m = &sent["data"];
    let revoke = json!({"to_id": bob.id, "to_name": m["to_name"], "to_avatar": m["to_avatar"], "id": m["id"],
                        "chatType": "single", "create_time": m["create_time"]});
    let answers = futures_util::future::join_all(
        (0..10).map(|_| b.call_as("POST", "/api/chat/revokeMessage", &alice, revoke.clone())),
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let queued = b.queued(bob.id).await;
    let notices = queued.iter().filter(|q| q["actionType"] == "revoke").count();
    assert_eq!(notices, 1, "one revoke acts: {queued:?}");
    assert!(queued.iter().any(|q| q["id"] == m["id"] && q["isremove"] == 1), "the queued copy is marked");
}

/// Parallel enable/disable toggles of one user end in one status that the row, the login check and
/// the search directory agree on.
async fn concurrent_status_toggles_leave_one_consistent_state(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (target, searcher) = (b.register("toggled1").await, b.register("searcher").await);
    let toggles = (0..20).map(|i| {
        let value = (i % 2).to_string();
        let state = b.state.clone();
        async move { chat_shared::service::admin::common_update(&state, target.id, "status", &value, "User").await }
    });
    for outcome in futures_util::future::join_all(toggles).await {
        outcome.expect("toggle");
    }
    let status = b.state.users.get(target.id).await.expect("get").expect("user").status;
    let login = b.post_json("/api/loginChat", json!({"username": "toggled1", "password": "123456"})).await;
    let search = b.call_as("POST", "/api/chat/searchUser", &searcher, json!({"keyword": "toggled1"})).await;
    let found = search.1["data"].as_array().is_some_and(|hits| !hits.is_empty());
    match status {
        1 => assert!(login.0 == 200 && found, "enabled: {login:?} {search:?}"),
        _ => assert!(login == fail("账号不存在或者被禁用") && !found, "disabled: {login:?} {search:?}"),
    }
}

on_every_backend!(
    concurrent_applications_make_one,
    concurrent_status_toggles_leave_one_consistent_state,
    concurrent_invites_add_one_member,
    concurrent_revokes_push_one_notice,
    concurrent_registrations_of_one_username_create_one_account,
    concurrent_visitor_registrations_of_one_device_create_one_user,
);

/// A fresh table in moto, a client straight to moto (to create the table, or to act as another
/// execution environment) and one through a proxy that counts what the adapter under test does.
struct CountedMoto {
    table: String,
    direct: aws_sdk_dynamodb::Client,
    counted: aws_sdk_dynamodb::Client,
    proxy: chat_tests::CountingProxy,
}

async fn counted_moto() -> CountedMoto {
    let moto = chat_tests::moto_endpoint();
    let proxy = chat_tests::CountingProxy::start(chat_tests::endpoint_port(&moto));
    CountedMoto {
        table: chat_tests::unique_table(),
        direct: chat_shared::store::dynamo::client(Some(&moto)).await,
        counted: chat_shared::store::dynamo::client(Some(&proxy.endpoint())).await,
        proxy,
    }
}

/// Ids come from blocks reserved with one counter write each (`ID_BLOCK_SIZE`), not from one
/// counter write per insert: 25 users created concurrently with blocks of 10 write the counter
/// 3 times; their ids are unique and the counter covers them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_come_from_blocks_with_one_counter_write_each() {
    use chat_shared::store::dynamo::DynamoUserStore;
    use chat_shared::store::{Created, UserStore};
    let CountedMoto { table, direct, counted, proxy } = counted_moto().await;
    DynamoUserStore::new(direct.clone(), &table).create_table_if_missing().await.expect("table");
    let store = DynamoUserStore::new(counted, &table).with_id_blocks(10);
    let new_user = |i: usize| chat_tests::plain_user(&format!("block{i:03}"));
    let mut ids = Vec::new();
    // Sequential: concurrent misses may each reserve a block (gaps, never duplicates).
    for i in 0..25 {
        let Created::Created(user) = store.create(new_user(i), None).await.expect("create") else { panic!("created") };
        ids.push(user.id);
    }
    let counter_writes = proxy.counts().get("DynamoDB_20120810.UpdateItem").copied().unwrap_or(0);
    assert_eq!(counter_writes, 3, "one counter write per block of 10");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 25, "unique ids");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing within and across this environment's blocks");
    assert!(store.highest_id().await.expect("highest") >= *ids.last().expect("ids"), "the counter covers every id");
    // Another environment's block never overlaps.
    let other = DynamoUserStore::new(direct, &table).with_id_blocks(10);
    let Created::Created(next) = other.create(new_user(99), None).await.expect("create") else { panic!("created") };
    assert!(next.id > 30, "a fresh block after the three reserved: {}", next.id);
}

/// The social reads of hot paths read what they answer with, not a partition's history (issue 12
/// item 5), counted as the entries DynamoDB says it read (`ScannedCount`) through a proxy. User 1
/// has 24 friends (the first 12 blacklisted), 24 decided applications and 1 pending one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_reads_are_bounded_by_their_answer() {
    use chat_shared::store::dynamo_social::DynamoSocialStore;
    use chat_shared::store::{FriendRemarks, SocialStore};
    let CountedMoto { table, direct, counted, proxy } = counted_moto().await;
    DynamoSocialStore::new(direct, &table).create_table_if_missing().await.expect("table");
    let social = DynamoSocialStore::new(counted, &table);
    let remarks = || FriendRemarks { decider_row: String::new(), applicant_row: String::new() };
    for other in 2..=25 {
        let app = social.apply(other, 1, "", 1).await.expect("apply").expect("new");
        social.decide(&app, "agree", remarks(), 2).await.expect("agree");
    }
    for other in 100..124 {
        let app = social.apply(other, 1, "", 1).await.expect("apply").expect("new");
        social.decide(&app, "refuse", remarks(), 2).await.expect("refuse");
    }
    social.apply(200, 1, "", 3).await.expect("apply").expect("new");
    for other in 2..=13 {
        let mut row = social.friend(1, other).await.expect("row").expect("friend");
        row.isblack = 1;
        social.update_friend(&row).await.expect("blacklist");
    }
    let reads = |before: u64| proxy.scanned() - before;

    // Before: the whole partition, as every read was.
    let at = proxy.scanned();
    let all = social.friends(1).await.expect("friends");
    assert_eq!((all.len(), reads(at)), (24, 24));

    let at = proxy.scanned();
    assert_eq!(social.count_pending_to(1).await.expect("count"), 1);
    assert_eq!(reads(at), 1, "the pending application alone, not 49 applications");

    let at = proxy.scanned();
    assert!(social.has_friend_to_chat(1).await.expect("check"));
    assert_eq!(reads(at), 1, "one entry, although the first 12 rows are blacklisted");
    assert!(!social.has_friend_to_chat(200).await.expect("check"), "no friends");

    let at = proxy.scanned();
    let page = social.friends_page(1, 5, 5).await.expect("page");
    assert_eq!(page, all[5..10].to_vec(), "rows 6-10 by row id");
    assert_eq!(reads(at), 10, "offset + limit entries");

    let at = proxy.scanned();
    social.unfriend(1, 2).await.expect("unfriend");
    assert_eq!(reads(at), 1, "the pair's one application, not either inbox");
    assert!(social.friend(1, 2).await.expect("row").is_none());
    assert!(social.applications_to(1, 0, 100).await.expect("inbox").iter().all(|a| a.user_id != 2), "deleted");
    assert_eq!(social.count_pending_to(1).await.expect("count"), 1, "a decided application left the count");
}

/// The admin list's default view counts users from 16 per-shard counters and reads at most
/// `offset + limit` index entries per shard, not the whole index (issue 12 item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_list_reads_its_page_not_the_index() {
    use chat_shared::store::dynamo::DynamoUserStore;
    use chat_shared::store::{Created, UserStore};
    let CountedMoto { table, direct, counted, proxy } = counted_moto().await;
    DynamoUserStore::new(direct, &table).create_table_if_missing().await.expect("table");
    let store = DynamoUserStore::new(counted, &table).with_id_blocks(100);
    let mut users = Vec::new();
    for i in 0..96 {
        let Created::Created(user) =
            store.create(chat_tests::plain_user(&format!("lister{i:03}")), None).await.expect("create")
        else {
            panic!("created")
        };
        users.push(*user);
    }
    let at = proxy.scanned();
    let page = store.list(None, 0, 2).await.expect("list");
    let read = proxy.scanned() - at;
    assert_eq!(page.count, 96);
    assert_eq!(page.rows.iter().map(|u| u.id).collect::<Vec<_>>(), [users[95].id, users[94].id], "newest first");
    assert!(read <= 2 * 16, "at most 2 entries per shard, read {read} of 96");
    let at = proxy.scanned();
    let keyword = store.list(Some("lister01"), 0, 2).await.expect("search");
    assert_eq!(keyword.count, 10, "lister010 … lister019");
    assert_eq!(proxy.scanned() - at, 96, "a keyword count still passes over the index");
    assert!(store.delete(&users[95]).await.expect("delete"));
    let after = store.list(None, 0, 2).await.expect("list");
    assert_eq!((after.count, after.rows[0].id), (95, users[94].id), "the delete counted down in its transaction");
}

/// A group message reads the group's small `META` item and re-reads the partition only when its
/// version moved (issue 12 item 3), and a change made by another execution environment is seen
/// by the very next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_reads_reuse_the_partition_until_its_version_moves() {
    use chat_shared::group::{ACTIVE, PENDING};
    use chat_shared::store::dynamo_group::DynamoGroupStore;
    use chat_shared::store::dynamo_social::DynamoSocialStore;
    use chat_shared::store::{GroupChange, GroupStore, Joined, NewGroup};
    let CountedMoto { table, direct, counted, proxy } = counted_moto().await;
    DynamoSocialStore::new(direct.clone(), &table).create_table_if_missing().await.expect("table");
    let sender = DynamoGroupStore::new(counted, &table);
    let other = DynamoGroupStore::new(direct, &table);
    let members: Vec<i64> = (1..=40).collect();
    let new = NewGroup { user_id: 1, name: "群".into(), avatar: String::new(), members, now: 1 };
    let (group, _) = other.create(new).await.expect("create");
    let partition_reads = || proxy.counts().get("DynamoDB_20120810.Query").copied().unwrap_or(0);
    let read = |store: &DynamoGroupStore| {
        let store = store.clone();
        async move { store.group_with_members(group.id).await.expect("read").expect("exists") }
    };

    let at = proxy.scanned();
    assert_eq!(read(&sender).await.1.len(), 40);
    assert_eq!((partition_reads(), proxy.scanned() - at), (1, 41), "the first read reads the partition");
    for _ in 0..5 {
        assert_eq!(read(&sender).await.1.len(), 40);
    }
    assert_eq!((partition_reads(), proxy.scanned() - at), (1, 41), "then META alone, per message");

    // Every kind of change, made elsewhere, is seen at once.
    assert!(other.set_nickname(group.id, 7, "七", 2).await.expect("nickname"));
    let (_, seen) = read(&sender).await;
    assert_eq!(seen.iter().find(|m| m.user_id == 7).map(|m| m.nickname.as_str()), Some("七"));
    assert!(matches!(other.join(group.id, 99, PENDING, 3, 500).await.expect("join"), Joined::Added(_)));
    assert_eq!(read(&sender).await.1.iter().find(|m| m.user_id == 99).map(|m| m.status), Some(PENDING));
    assert!(other.approve(group.id, 99, 4).await.expect("approve"));
    assert_eq!(read(&sender).await.1.iter().find(|m| m.user_id == 99).map(|m| m.status), Some(ACTIVE));
    other.remove_member(group.id, 5).await.expect("remove");
    assert!(read(&sender).await.1.iter().all(|m| m.user_id != 5), "a removed member receives nothing more");
    assert!(other.update(group.id, GroupChange::Name("新名字".into()), 5).await.expect("rename"));
    assert_eq!(read(&sender).await.0.name, "新名字");
    assert_eq!(partition_reads(), 6, "one partition read per change");
    other.dissolve(group.id).await.expect("dissolve");
    assert!(sender.group_with_members(group.id).await.expect("read").is_none(), "a dissolved group is gone");
}

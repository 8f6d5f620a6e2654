//! Durable delivery (spec 6.2 item 4, 8.1a N1–N5) on the real backends: the fan-out queue (SQS
//! in moto, the embedded queue), faults injected for real (a gateway answering 429/500/410 or
//! never, Redis stopped mid-send, DynamoDB leaving batch writes unprocessed, a consumer that dies
//! holding a job, a restart), counting that every recipient ends with every acknowledged message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_shared::config::Config;
use chat_shared::delivery::INLINE_AUDIENCE;
use chat_shared::jwt::token_digest;
use chat_shared::model::Role;
use chat_shared::store::embedded::EmbeddedDb;
use chat_shared::store::embedded_fanout::EmbeddedFanoutQueue;
use chat_shared::store::{Connection, FanoutJob, FanoutQueue, QueueJob, StoredMessage, CONNECTION_TTL_SECS};
use chat_shared::AppState;
use chat_tests::{
    fail, moto_endpoint, ok, test_config, Backend, BackendKind, FakeGateway, FaultyProxy, GatewayMode, RedisServer,
    TempDir,
};
use serde_json::{json, Value};

/// How long a test waits for asynchronous delivery (a passing test never waits it out).
const PATIENCE: Duration = Duration::from_secs(60);

fn connection_id(user: i64) -> String {
    format!("conn-{user}")
}

/// Gives `user` a current token and one registered connection.
async fn go_online(b: &Backend, user: i64) {
    let token = format!("token-of-{user}");
    b.state.sessions.set_token(user, &token, 3600).await.expect("token");
    let conn =
        Connection { id: connection_id(user), user_id: user, token_digest: token_digest(&token), role: Role::User };
    b.state.connections.register(&conn, CONNECTION_TTL_SECS).await.expect("register");
}

fn message(n: usize) -> StoredMessage {
    StoredMessage::new(json!({"id": uuid::Uuid::new_v4().to_string(), "n": n, "chatType": "single", "isremove": 0}))
}

/// How many times each recipient has message `id`: live (frames its connection accepted) plus
/// offline (references in its queue).
async fn copies(b: &Backend, gateway: &FakeGateway, recipients: &[i64], id: &str) -> HashMap<i64, (usize, usize)> {
    let mut out = HashMap::new();
    for &user in recipients {
        let live = gateway.received(&connection_id(user), id);
        let offline = b.queued(user).await.iter().filter(|m| m["id"] == id).count();
        out.insert(user, (live, offline));
    }
    out
}

/// Waits until every recipient has message `id` live or offline; returns the counts.
async fn until_everyone_has(
    b: &Backend,
    gateway: &FakeGateway,
    recipients: &[i64],
    id: &str,
) -> HashMap<i64, (usize, usize)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = copies(b, gateway, recipients, id).await;
        let missing: Vec<i64> = counts.iter().filter(|(_, (l, o))| l + o == 0).map(|(u, _)| *u).collect();
        if missing.is_empty() {
            return counts;
        }
        assert!(Instant::now() < deadline, "{} recipients never got {id}: {missing:?}", missing.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A big audience goes through the fan-out queue: the request only stores and hands over, and
/// every recipient then has the message exactly once, live when connected, queued when not.
async fn a_big_audience_is_fanned_out_through_the_queue(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let gateway = b.serve_fake_gateway();
    let recipients: Vec<i64> = (1000..1300).collect();
    assert!(recipients.len() > INLINE_AUDIENCE);
    for &user in recipients.iter().filter(|u| *u % 2 == 0) {
        go_online(&b, user).await;
    }
    let m = message(1);
    let id = m.message["id"].as_str().expect("id").to_owned();
    b.state.delivery.deliver(&recipients, &m).await.expect("handed over");
    let counts = until_everyone_has(&b, &gateway, &recipients, &id).await;
    for (user, (live, offline)) in counts {
        let online = user % 2 == 0;
        assert_eq!((live, offline), (usize::from(online), usize::from(!online)), "user {user}");
    }
}

/// A gateway that throttles (429), fails (500) or never answers does not lose the message: the
/// recipient gets it offline (spec 6.2 item 4: not accepted → queued).
async fn a_failing_gateway_leaves_every_message_offline(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let gateway = b.serve_fake_gateway();
    let recipients: Vec<i64> = (1..=5).collect();
    for &user in &recipients {
        go_online(&b, user).await;
    }
    for mode in [GatewayMode::Status(429), GatewayMode::Status(500), GatewayMode::Hang] {
        gateway.set_mode(mode);
        let m = message(2);
        let id = m.message["id"].as_str().expect("id").to_owned();
        let started = Instant::now();
        b.state.delivery.deliver(&recipients, &m).await.expect("delivered or handed over");
        // A hanging gateway costs the request its inline budget, not the client's timeout.
        assert!(started.elapsed() < Duration::from_secs(6), "{mode:?}: {:?}", started.elapsed());
        let counts = until_everyone_has(&b, &gateway, &recipients, &id).await;
        assert!(counts.values().all(|(live, offline)| (*live, *offline) == (0, 1)), "{mode:?}: {counts:?}");
    }
}

/// Redis unreachable in the middle of a send: the request hands the recipients to the queue, and
/// once Redis is back every one of them has the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_during_a_send_delays_but_never_loses() {
    let mut b = Backend::new(BackendKind::DynamoRedis).await;
    let gateway = b.serve_fake_gateway();
    let recipients: Vec<i64> = (1..=5).collect();
    b.redis.as_mut().expect("redis").stop();
    let m = message(3);
    let id = m.message["id"].as_str().expect("id").to_owned();
    b.state.delivery.deliver(&recipients, &m).await.expect("handed over while Redis is down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    b.redis.as_mut().expect("redis").restart();
    let counts = until_everyone_has(&b, &gateway, &recipients, &id).await;
    assert!(counts.values().all(|c| *c == (0, 1)), "{counts:?}");
}

/// DynamoDB answering a batch write with every item unprocessed (throttling), more often than the
/// adapter retries: the request hands over, the fan-out retries, every queue ends with one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_batch_writes_are_retried_until_every_queue_has_the_message() {
    let moto = moto_endpoint();
    let proxy = FaultyProxy::start(chat_tests::endpoint_port(&moto));
    let b = Backend::aws(RedisServer::start(), &proxy.endpoint(), &moto).await;
    let gateway = b.serve_fake_gateway();
    let recipients: Vec<i64> = (1..=30).collect();
    // More than one request's retries (5 attempts each), fewer than the job's.
    proxy.leave_batch_writes_unprocessed(7);
    let m = message(4);
    let id = m.message["id"].as_str().expect("id").to_owned();
    b.state.delivery.deliver(&recipients, &m).await.expect("handed over");
    let counts = until_everyone_has(&b, &gateway, &recipients, &id).await;
    assert_eq!(proxy.unprocessed_left(), 0, "the fault was hit");
    assert!(counts.values().all(|c| *c == (0, 1)), "exactly one reference each: {counts:?}");
}

/// A consumer that takes a job and dies (the fan-out function killed mid-way): SQS shows the job
/// again after its visibility timeout, and the next consumer delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_taken_by_a_consumer_that_died_is_delivered_by_the_next() {
    let moto = moto_endpoint();
    let b = Backend::aws_without_consumer(RedisServer::start(), &moto, &moto, test_config()).await;
    let gateway = b.serve_fake_gateway();
    let recipients: Vec<i64> = (1..=(INLINE_AUDIENCE as i64 + 10)).collect();
    for &user in recipients.iter().take(10) {
        go_online(&b, user).await;
    }
    let m = message(5);
    let id = m.message["id"].as_str().expect("id").to_owned();
    b.state.delivery.deliver(&recipients, &m).await.expect("handed over");
    let queue = b.fanout_queue();
    let mut taken = Vec::new();
    for _ in 0..20 {
        taken.extend(queue.receive(10, 1, 1).await.expect("receive"));
        if !taken.is_empty() {
            break;
        }
    }
    assert_eq!(taken.len(), 1, "one job for {} recipients", recipients.len());
    // The consumer dies here: nothing delivered, nothing deleted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(copies(&b, &gateway, &recipients, &id).await.values().all(|c| *c == (0, 0)));
    tokio::spawn(chat_functions::local::consume_fanout_queue(b.state.clone(), queue, 2));
    let counts = until_everyone_has(&b, &gateway, &recipients, &id).await;
    for (i, user) in recipients.iter().enumerate() {
        assert_eq!(counts[user], if i < 10 { (1, 0) } else { (0, 1) }, "user {user}");
    }
}

/// Work queued in chat-local's embedded queue before a crash is done after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_jobs_queued_before_a_crash_run_after_the_restart() {
    let dir = TempDir::new();
    let recipients: Vec<i64> = (1..=20).collect();
    let m = message(6);
    {
        // The process that stored the message and queued the work, then crashed.
        let db = EmbeddedDb::open(&dir.0).expect("db");
        let queue = EmbeddedFanoutQueue::new(db.clone());
        let offline = chat_shared::store::embedded::EmbeddedOfflineQueue::new(db);
        chat_shared::store::OfflineQueue::store(&offline, &m).await.expect("store");
        let job = QueueJob::Deliver(FanoutJob { message: m.key.clone(), recipients: recipients.clone() });
        queue.enqueue(&[job], 0).await.expect("enqueue");
        assert_eq!(queue.depth().await.expect("depth"), (1, 0));
    }
    let endpoint = "http://127.0.0.1:9"; // nobody is connected: nothing is posted
    let state = AppState::embedded(test_config(), &dir.0, endpoint).await.expect("restarted");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut have = 0;
        for &user in &recipients {
            let queued = state.offline.peek(user, 10).await.expect("peek");
            have += usize::from(queued.iter().any(|(k, _)| *k == m.key));
        }
        if have == recipients.len() {
            break;
        }
        assert!(Instant::now() < deadline, "only {have} of {} got it after the restart", recipients.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Many messages while connections come and go (the gateway answers Gone at random, clients
/// reconnect): not one message is delivered zero times.
async fn a_soak_with_random_disconnects_loses_nothing(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let gateway = b.serve_fake_gateway();
    gateway.set_gone_ratio(0.05);
    let users: Vec<i64> = (1..=20).collect();
    let messages = match kind {
        BackendKind::Embedded => 10_000,
        // moto serves one request at a time; the SQS path is covered by the tests above.
        BackendKind::DynamoRedis | BackendKind::DynamoRedisCluster => 2_000,
    };
    let mut sent: Vec<(String, Vec<i64>)> = Vec::with_capacity(messages);
    for chunk in 0..messages / 50 {
        // Whoever was disconnected comes back.
        for &user in &users {
            if b.state.connections.current_connections(&[user]).await.expect("current").is_empty() && rand::random() {
                go_online(&b, user).await;
            }
        }
        let batch = (0..50).map(|i| {
            let n = chunk * 50 + i;
            let audience: Vec<i64> = users.iter().copied().filter(|u| (u + n as i64) % 7 == 0 || *u == 1).collect();
            let m = message(n);
            sent.push((m.message["id"].as_str().expect("id").to_owned(), audience.clone()));
            let b = &b;
            async move { b.state.delivery.deliver(&audience, &m).await }
        });
        for result in futures_util::future::join_all(batch).await {
            result.expect("delivered or handed over");
        }
    }
    // Every copy, counted once all work is done.
    let deadline = Instant::now() + PATIENCE;
    let lost = loop {
        let live = gateway.received_ids();
        let mut have: HashMap<(i64, &str), usize> = HashMap::new();
        for &user in &users {
            for id in live.get(&connection_id(user)).into_iter().flatten() {
                *have.entry((user, id.as_str())).or_default() += 1;
            }
        }
        let mut offline: HashMap<i64, Vec<String>> = HashMap::new();
        for &user in &users {
            let queue = b.state.offline.peek(user, 1_000_000).await.expect("peek");
            offline.insert(user, queue.into_iter().filter_map(|(_, m)| m?["id"].as_str().map(str::to_owned)).collect());
        }
        let mut lost = 0;
        for (id, audience) in &sent {
            for user in audience {
                let live = have.get(&(*user, id.as_str())).copied().unwrap_or(0);
                if live == 0 && !offline[user].contains(id) {
                    lost += 1;
                }
            }
        }
        if lost == 0 || Instant::now() > deadline {
            break lost;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(lost, 0, "deliveries lost out of {} messages", sent.len());
}

/// The keepalive pages through the registry: the scheduled run only queues range jobs, a range
/// job splits into one job per shard of 1000 users, each shard job pings that shard's live
/// connections once; a gone connection is unregistered.
async fn the_keepalive_pings_every_shard_through_the_queue(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let gateway = b.serve_fake_gateway();
    let members = [b.register("ping0001").await, b.register("ping0002").await];
    let mut users: Vec<i64> = members.iter().map(|m| m.id).collect();
    if kind != BackendKind::Embedded {
        // Three shards: the user counter as after 2,500 registrations, users in shards 1 and 2.
        let stores = b.stores.as_ref().expect("stores");
        let admin = chat_shared::store::dynamo::client(b.dynamodb_endpoint.as_deref()).await;
        admin
            .update_item()
            .table_name(&stores.users_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("COUNTER#user".into()))
            .update_expression("SET n = :n")
            .expression_attribute_values(":n", aws_sdk_dynamodb::types::AttributeValue::N("2500".into()))
            .send()
            .await
            .expect("counter");
        users.extend([1500, 2400]);
    }
    for &user in &users {
        go_online(&b, user).await;
    }
    gateway.hang_up(&connection_id(users[1]));
    assert_eq!(chat_shared::service::websocket::keepalive(&b.state).await.expect("scheduled"), 1, "one range job");
    let deadline = Instant::now() + PATIENCE;
    let alive: Vec<i64> = users.iter().copied().filter(|u| *u != users[1]).collect();
    while alive.iter().any(|u| gateway.frames_of_type(&connection_id(*u), "ping") == 0) {
        assert!(Instant::now() < deadline, "not every connection was pinged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !b.state.connections.current_connections(&[users[1]]).await.expect("current").is_empty() {
        assert!(Instant::now() < deadline, "the gone connection stays registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for user in &alive {
        assert_eq!(gateway.frames_of_type(&connection_id(*user), "ping"), 1, "user {user}: one ping per run");
    }
}

/// N1: the 31st send in a window is refused before anything is stored; validation failures do
/// not count.
async fn the_send_rate_is_limited_per_sender(kind: BackendKind) {
    let b = Backend::with_config(kind, Config { send_rate_limit: 3, ..test_config() }).await;
    let (alice, bob) = (b.register("rate0001").await, b.register("rate0002").await);
    b.befriend(bob.id, alice.id).await;
    let send = |text: &str| json!({"sendto_id": bob.id, "chatType": "single", "type": "text", "data": text});
    let (status, _) = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, json!({"sendto_id": bob.id})).await;
    assert_eq!(status, 422, "invalid: not counted");
    for i in 0..3 {
        assert_eq!(b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send(&format!("m{i}"))).await.0, 200);
    }
    let refused = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send("one too many")).await;
    assert_eq!(refused, fail("发送消息过于频繁，请稍后再试"));
    assert_eq!(b.queued(bob.id).await.len(), 3, "nothing stored for the refused send");
    assert!(b.state.sessions.count(&format!("send_rate:{}", alice.id)).await.expect("count") >= 4);
    let other = b
        .call_as(
            "POST",
            "/api/chat/socket/sendmessage",
            &bob,
            json!({"sendto_id": alice.id, "chatType": "single", "type": "text", "data": "hi"}),
        )
        .await;
    assert_eq!(other.0, 200, "per sender: {other:?}");
}

/// N4: a message whose push frame would pass 120 KB is refused and nothing is stored; JSON
/// escaping counts (control characters become `\u0001`).
async fn an_oversized_frame_is_refused_at_send(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("frame001").await, b.register("frame002").await);
    b.befriend(bob.id, alice.id).await;
    let form = |data: &str| format!("sendto_id={}&chatType=single&type=text&data={data}", bob.id);
    let headers = [("token", alice.token.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    // 30,000 control characters: a 90 KB body, a 180 KB frame.
    let (status, body) = b.call("POST", "/api/chat/socket/sendmessage", &headers, &form(&"%01".repeat(30_000))).await;
    assert_eq!((status, body), fail("消息内容过长"));
    assert!(b.queued(bob.id).await.is_empty(), "nothing stored");
    assert_eq!(b.state.messages.find(alice.id, "single", bob.id, "x").await.expect("find"), None);
    // 90 KB of plain text fits.
    let (status, body) = b.call("POST", "/api/chat/socket/sendmessage", &headers, &form(&"a".repeat(90_000))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.queued(bob.id).await.len(), 1);
}

/// N5: an offline item the gateway refuses for good (over its 128 KB post limit) is dropped and
/// the items behind it are delivered.
async fn a_poison_item_never_blocks_the_offline_queue(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let bob = b.register("poison01").await;
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (i, id) in ids.iter().enumerate() {
        let data = if i == 1 { "x".repeat(140 * 1024) } else { format!("message {i}") };
        b.queue_offline(&[bob.id], json!({"id": id, "chatType": "single", "data": data, "isremove": 0})).await;
    }
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", bob.token)).await.expect("ws");
    let deadline = Instant::now() + PATIENCE;
    while b.state.connections.current_connections(&[bob.id]).await.expect("current").is_empty() {
        assert!(Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pulled = b.call_as("POST", "/api/chat/chatGetmessageOffLine", &bob, json!({})).await;
    assert_eq!(pulled, ok(json!("ok")));
    let mut got = Vec::new();
    while got.len() < 2 {
        use futures_util::StreamExt;
        let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a frame").expect("open").expect("ok");
        if let Ok(text) = frame.into_text() {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            let id = frame["data"]["id"].as_str().unwrap_or_default().to_owned();
            // Connect-time prompts are singleChat frames too.
            if frame["type"] == "singleChat" && ids.contains(&id) {
                got.push(id);
            }
        }
    }
    assert_eq!(got, [ids[0].clone(), ids[2].clone()], "the refused item is skipped, the rest arrive in order");
    assert!(b.queued(bob.id).await.is_empty(), "the poison item is removed too");
}

/// N2: the member cap on create, invite and self-join.
async fn groups_stop_at_the_member_cap(kind: BackendKind) {
    let b = Backend::with_config(kind, Config { max_group_members: 3, ..test_config() }).await;
    let owner = b.register("capowner").await;
    let friends = [b.register("capuser1").await, b.register("capuser2").await, b.register("capuser3").await];
    for f in &friends {
        b.befriend(owner.id, f.id).await;
    }
    let rows: Vec<i64> = b.state.social.friends(owner.id).await.expect("friends").iter().map(|f| f.id).collect();
    let too_many = b.call_as("POST", "/api/chat/group/create", &owner, json!({"userIds": rows})).await;
    assert_eq!(too_many, fail("群成员已达上限"), "4 members over a cap of 3");
    assert!(b.state.groups.groups_of(owner.id, 0, 10).await.expect("groups").is_empty(), "nothing created");
    // A full group of three; an invitation and a self-join are refused until someone leaves.
    let (leader, first, second, third) =
        (b.register("capuser4").await, b.register("capuser5").await, b.register("capuser6").await, &friends[0]);
    let group = b.create_group(&leader, &[&first]).await;
    let join = json!({"group_id": group, "user_id": second.id});
    assert_eq!(b.call_as("POST", "/api/chat/groupInviteUser", &second, join).await, ok(json!("加群成功")));
    let invite = json!({"group_id": group, "user_id": third.id});
    assert_eq!(b.call_as("POST", "/api/chat/groupInviteUser", &leader, invite.clone()).await, fail("群成员已达上限"));
    assert_eq!(b.call_as("POST", "/api/chat/groupInviteUser", third, invite.clone()).await, fail("群成员已达上限"));
    let quit = json!({"id": group});
    assert_eq!(b.call_as("POST", "/api/chat/groupDeleteOrQuit", &second, quit).await.0, 200);
    assert_eq!(b.call_as("POST", "/api/chat/groupInviteUser", third, invite).await, ok(json!("加群成功")));
}

on_every_backend!(
    a_big_audience_is_fanned_out_through_the_queue,
    a_failing_gateway_leaves_every_message_offline,
    a_soak_with_random_disconnects_loses_nothing,
    the_send_rate_is_limited_per_sender,
    an_oversized_frame_is_refused_at_send,
    a_poison_item_never_blocks_the_offline_queue,
    groups_stop_at_the_member_cap,
    the_keepalive_pings_every_shard_through_the_queue,
);

on_redis_cluster!(a_big_audience_is_fanned_out_through_the_queue, the_keepalive_pings_every_shard_through_the_queue);

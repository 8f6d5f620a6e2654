//! Storage outages in the middle of a request: the spec's 500 envelope with no internal detail,
//! the cause logged once, and no half-written user.

use chat_tests::{capture_logs, endpoint_port, moto_endpoint, Backend, FaultyProxy, RedisServer};
use serde_json::json;

fn internal_error() -> (u16, serde_json::Value) {
    (500, json!({"msg": "fail", "data": "Internal Server Error"}))
}

#[tokio::test(flavor = "current_thread")]
async fn redis_outage_answers_500_and_logs_the_cause_once() {
    let mut b = Backend::new(chat_tests::BackendKind::DynamoRedis).await;
    let (status, user) = b.post_json("/api/regChat", json!({"username": "outage1", "password": "123456"})).await;
    assert_eq!(status, 200);
    let token = user["data"]["token"].as_str().expect("token").to_owned();
    b.redis.as_mut().expect("redis").stop();

    let (logs, _guard) = capture_logs();
    let login = b.post_json("/api/loginChat", json!({"username": "outage1", "password": "123456"})).await;
    assert_eq!(login, internal_error());
    let text = logs.text();
    assert_eq!(text.matches("internal error").count(), 1, "logged once: {text}");
    assert!(text.contains("redis"), "the cause is in the log: {text}");
    assert!(!text.contains("123456") && !text.contains(&token), "no secrets in logs");

    assert_eq!(b.post_with_token("/api/chat/logout", &token).await, internal_error());
    // Redis comes back: nothing was lost, the session still works.
    b.redis.as_mut().expect("redis").restart();
    let (status, _) = b.post_json("/api/loginChat", json!({"username": "outage1", "password": "123456"})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "current_thread")]
async fn dynamodb_outage_during_the_write_leaves_no_half_user() {
    let moto = moto_endpoint();
    let proxy = FaultyProxy::start(endpoint_port(&moto));
    let b = Backend::aws(RedisServer::start(), &proxy.endpoint(), &moto).await;

    proxy.fail_on("TransactWriteItems");
    let (logs, guard) = capture_logs();
    let r = b.post_json("/api/regChat", json!({"username": "halfuser", "password": "123456"})).await;
    drop(guard);
    assert_eq!(r, internal_error());
    assert!(proxy.is_down(), "the outage started at the transaction, after the reads and the id counter");
    let text = logs.text();
    assert_eq!(text.matches("internal error").count(), 1, "logged once: {text}");
    assert!(text.contains("TransactWriteItems"), "{text}");

    proxy.restore();
    assert!(b.state.users.find_by_username("halfuser").await.expect("find").is_none(), "no user, no reservation");
    let (status, body) = b.post_json("/api/regChat", json!({"username": "halfuser", "password": "123456"})).await;
    assert_eq!(status, 200, "the name is still free: {body}");
}

#[tokio::test(flavor = "current_thread")]
async fn redis_outage_after_the_user_is_written_keeps_a_whole_user() {
    let mut b = Backend::new(chat_tests::BackendKind::DynamoRedis).await;
    b.redis.as_mut().expect("redis").stop();
    // Spec 2.6 step 5: a failed token write answers 登录失败; the user is complete and can log in later.
    let r = b.post_json("/api/regChat", json!({"username": "wholeuser", "password": "123456"})).await;
    assert_eq!(r, (400, json!({"msg": "fail", "data": "登录失败"})));
    b.redis.as_mut().expect("redis").restart();
    let (status, body) = b.post_json("/api/loginChat", json!({"username": "wholeuser", "password": "123456"})).await;
    assert_eq!(status, 200, "{body}");
}

/// A lost answer to the stranger claim's write (spec 6.6): the SDK retries, the retry's condition
/// fails on the claim the first attempt wrote, and the read-back recognises it as its own, so the
/// sender's first message is not refused because of its own claim.
#[tokio::test(flavor = "current_thread")]
async fn a_stranger_claim_whose_answer_was_lost_is_still_won() {
    let moto = moto_endpoint();
    let proxy = FaultyProxy::start(endpoint_port(&moto));
    let b = Backend::aws(RedisServer::start(), &proxy.endpoint(), &moto).await;
    proxy.lose_response_to("#stranger");
    assert!(b.state.messages.claim_stranger_message(41, 42).await.expect("claim"), "its own claim, written once");
    assert!(!b.state.messages.claim_stranger_message(41, 42).await.expect("claim"), "and only once");
}

/// A transaction that committed but whose answer was lost is retried by the SDK; the retry's
/// conditions fail on the first commit's own writes. Each logical transaction recognises its own
/// write (DynamoDB's client request token in AWS, a read-back everywhere), so the caller is told
/// the truth: registered, joined, applied — never "taken", "already a member", "already applied".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_whose_answer_was_lost_report_their_own_success() {
    let moto = moto_endpoint();
    let proxy = FaultyProxy::start(endpoint_port(&moto));
    let b = Backend::aws(RedisServer::start(), &proxy.endpoint(), &moto).await;

    proxy.lose_response_to("TransactWriteItems");
    let (status, body) = b.post_json("/api/regChat", json!({"username": "lostanswer1", "password": "123456"})).await;
    assert_eq!(status, 200, "a new user is not told its own account exists: {body}");
    let user = b.state.users.find_by_username("lostanswer1").await.expect("find").expect("created");
    assert_eq!(user.id, body["data"]["id"].as_i64().expect("id"), "exactly the account answered");

    let (owner, friend) = (b.register("lostowner1").await, b.register("lostfriend1").await);
    let joiner = chat_tests::Member::from_login(&body);
    let group = b.create_group(&owner, &[&friend]).await;
    proxy.lose_response_to("TransactWriteItems");
    let join = json!({"group_id": group, "user_id": joiner.id});
    let answer = b.call_as("POST", "/api/chat/groupInviteUser", &joiner, join).await;
    assert_eq!(answer, chat_tests::ok(json!("加群成功")), "not 用户已经在群里");
    let rows = b.state.groups.members(group).await.expect("members");
    assert_eq!(rows.iter().filter(|m| m.user_id == joiner.id).count(), 1);

    proxy.lose_response_to("TransactWriteItems");
    let apply = json!({"friend_id": owner.id, "nickname": "hi"});
    let answer = b.call_as("POST", "/api/chat/applyfriend", &joiner, apply).await;
    assert_eq!(answer.0, 200, "not 您已经申请过了: {answer:?}");
    assert_eq!(b.state.social.count_pending_to(owner.id).await.expect("count"), 1, "one application");
}

/// Redis unreachable without a word (a failover, a NAT mapping gone: no reset, no close). While it
/// lasts, requests fail within 3 s with the 500 envelope and nothing half-written; once the network
/// is back, the very next request succeeds — the timed-out connection was replaced, not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dropped_redis_connection_is_replaced() {
    let redis = RedisServer::start();
    let proxy = FaultyProxy::start(redis.port);
    let moto = moto_endpoint();
    let redis_url = format!("redis://127.0.0.1:{}", proxy.port);
    let b = Backend::aws_through(redis, &redis_url, &moto, &moto, chat_tests::test_config()).await;
    let alice = b.register("frozen001").await;
    let probe = || b.post_with_token("/api/chat/getUserSetInfo", &alice.token);
    let before = probe().await;
    assert_ne!(before.0, 500, "{before:?}");

    proxy.black_hole();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert_eq!(probe().await, internal_error());
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "failed in {:?}", started.elapsed());
    }
    // A login in the outage fails whole: the old session stays the current one.
    let login = b.post_json("/api/loginChat", json!({"username": "frozen001", "password": "123456"})).await;
    assert_eq!(login, internal_error());

    proxy.end_black_hole();
    assert_eq!(probe().await, before, "the very next request after the outage succeeds");
}

/// A stranger's first message whose delivery cannot be handed over (offline writes throttled,
/// SQS failing) answers 500 and is taken back whole: the retry is judged as the first attempt
/// was, not refused as a second message before friendship.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_does_not_use_up_a_strangers_one_message() {
    let moto = moto_endpoint();
    let proxy = FaultyProxy::start(endpoint_port(&moto));
    let b = Backend::aws(RedisServer::start(), &proxy.endpoint(), &moto).await;
    let (alice, bob) = (b.register("stranger01").await, b.register("stranger02").await);
    let send = |text: &str| json!({"sendto_id": bob.id, "chatType": "single", "type": "text", "data": text});
    // Bob is offline: his queue reference is written with BatchWriteItem (5 attempts), then the
    // fan-out queue is the fallback (3 attempts by the SDK).
    proxy.leave_batch_writes_unprocessed(5);
    proxy.fail_requests("AmazonSQS.SendMessageBatch", 3);
    let failed = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send("first try")).await;
    assert_eq!(failed, internal_error());
    assert!(b.queued(bob.id).await.is_empty(), "nothing acknowledged, nothing queued");
    let retried = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send("second try")).await;
    assert_eq!(retried.0, 200, "the retry is the first message: {retried:?}");
    assert_eq!(b.queued(bob.id).await.len(), 1);
    let another = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, send("one more")).await;
    assert_eq!(another, chat_tests::fail("在成为好友之前，对方只允许向他发一条消息"), "the claim holds");
}

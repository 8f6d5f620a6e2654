//! `make bench-fanout`: one group message to 499 members, half of them online over real
//! WebSockets, through chat-local's gateway (the same handlers as the Lambdas). Prints the
//! sender's response time, the time until every online member has the frame and until every
//! offline member has it queued, and — on DynamoDB (moto) + Redis — the calls the adapters made,
//! counted by proxies in front of both. Run on the embedded store (chat-local's default) and on
//! DynamoDB + Redis + SQS (moto), side by side with the figures before the fan-out queue.
//!   fanout-bench [MEMBERS]   (default 499)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::clock::now_secs;
use chat_shared::config::Config;
use chat_shared::model::Role;
use chat_shared::store::{Created, NewGroup, OfflineQueue};
use chat_tests::{moto_endpoint, test_config, Backend, BackendKind, CountingProxy, RedisServer};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the issue measured before the fan-out queue (chat-local, 499 members, 249 online).
const BEFORE_ANSWER: &str = "7.2 s";

struct Figures {
    backend: &'static str,
    answer: Duration,
    all_online: Duration,
    all_offline: Duration,
    calls: Option<BTreeMap<String, u64>>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let members: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(499);
    let config = Config { max_group_members: members as u64 + 1, ..test_config() };
    let embedded = Backend::with_config(BackendKind::Embedded, config.clone()).await;
    let embedded_queue = embedded.state.offline.clone();
    let first = run("embedded (chat-local default)", &embedded, members, embedded_queue, None).await;
    drop(embedded);

    let redis = RedisServer::start();
    let moto = moto_endpoint();
    let dynamo_proxy = CountingProxy::start(chat_tests::endpoint_port(&moto));
    let redis_proxy = CountingProxy::start(redis.port);
    let redis_url = format!("redis://127.0.0.1:{}", redis_proxy.port);
    let aws = Backend::aws_through(redis, &redis_url, &dynamo_proxy.endpoint(), &moto, config).await;
    tokio::spawn(chat_functions::local::consume_fanout_queue(aws.state.clone(), aws.fanout_queue(), 30));
    // The bench watches the offline queues past the counting proxy.
    let direct = chat_shared::store::dynamo::client(Some(&moto)).await;
    let social_table = &aws.stores.as_ref().expect("stores").social_table;
    let watch = Arc::new(chat_shared::store::dynamo_social::DynamoOfflineQueue::new(direct, social_table));
    let second = run("DynamoDB + Redis + SQS (moto)", &aws, members, watch, Some((&dynamo_proxy, &redis_proxy))).await;

    println!();
    println!("group message to {members} members, {} online (this machine)", members.div_ceil(2));
    println!("{:<34} {:>12} {:>16} {:>17}", "backend", "sender's 200", "all online have", "all offline have");
    println!("{:<34} {:>12} {:>16} {:>17}", "before (issue #10, chat-local)", BEFORE_ANSWER, "≤ 7.2 s", "7.2 s");
    for f in [&first, &second] {
        println!(
            "{:<34} {:>12} {:>16} {:>17}",
            f.backend,
            format!("{:.0} ms", f.answer.as_secs_f64() * 1000.0),
            format!("{:.0} ms", f.all_online.as_secs_f64() * 1000.0),
            format!("{:.0} ms", f.all_offline.as_secs_f64() * 1000.0),
        );
    }
    if let Some(calls) = &second.calls {
        println!();
        println!("calls made for the message (DynamoDB + SQS by X-Amz-Target, Redis by command):");
        for (call, n) in calls {
            println!("  {call:<45} {n:>5}");
        }
        let writes: u64 = calls
            .iter()
            .filter(|(c, _)| {
                ["PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem", "TransactWriteItems"]
                    .iter()
                    .any(|w| c.ends_with(w))
            })
            .map(|(_, n)| n)
            .sum();
        println!(
            "  DynamoDB write calls: {writes} for {members} recipients (goal: O(recipients / 25) = {})",
            members / 25
        );
    }
}

async fn run(
    backend: &'static str,
    b: &Backend,
    members: usize,
    watch: Arc<dyn OfflineQueue>,
    proxies: Option<(&CountingProxy, &CountingProxy)>,
) -> Figures {
    let state = &b.state;
    let mut ids = Vec::with_capacity(members + 1);
    let mut tokens = Vec::with_capacity(members + 1);
    for i in 0..=members {
        let username = format!("bench{i:04}");
        let user = chat_tests::plain_user(&username);
        let Created::Created(user) = state.users.create(user, None).await.expect("create") else { panic!("created") };
        let token = chat_shared::jwt::issue(&state.config.jwt_secret, user.id, &username, Role::User, now_secs(), 3600);
        state.sessions.set_token(user.id, &token, 3600).await.expect("token");
        ids.push(user.id);
        tokens.push(token);
    }
    let group = NewGroup {
        user_id: ids[0],
        name: "bench".into(),
        avatar: String::new(),
        members: ids.clone(),
        now: now_secs(),
    };
    let (group, _) = state.groups.create(group).await.expect("group");
    let limits = chat_functions::local::Limits { max_connections: 4096, ..chat_functions::local::Limits::default() };
    let addr = b.serve_with(limits);

    // Every other member online.
    let online: Vec<usize> = (1..=members).filter(|i| i % 2 == 1).collect();
    let mut sockets = Vec::new();
    for &i in &online {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", tokens[i])).await.expect("ws");
        loop {
            let frame = socket.next().await.expect("frame").expect("ok");
            let text = frame.into_text().unwrap_or_default();
            if serde_json::from_str::<Value>(&text).is_ok_and(|f| f["type"] == "system") {
                break;
            }
        }
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = proxies.map(|(d, r)| (d.counts(), r.counts()));

    let started = Instant::now();
    let arrivals: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                while let Some(Ok(frame)) = socket.next().await {
                    let text = frame.into_text().unwrap_or_default();
                    if serde_json::from_str::<Value>(&text).is_ok_and(|f| f["data"]["data"] == "bench") {
                        // Kept open until the calls are counted: closing is not the message's work.
                        return (Some(Instant::now()), socket);
                    }
                }
                (None, socket)
            })
        })
        .collect();
    let body = json!({"sendto_id": group.id, "chatType": "group", "type": "text", "data": "bench"}).to_string();
    let (status, answer) = post(&addr, "/api/chat/socket/sendmessage", &tokens[0], &body).await;
    let answered = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    let message_id =
        serde_json::from_str::<Value>(&answer).expect("JSON")["data"]["id"].as_str().expect("id").to_owned();
    let mut all_online = Duration::ZERO;
    let mut open = Vec::new();
    for arrival in arrivals {
        let (at, socket) =
            tokio::time::timeout(Duration::from_secs(60), arrival).await.expect("in time").expect("task");
        all_online = all_online.max(at.expect("the frame arrived").duration_since(started));
        open.push(socket);
    }
    let offline: Vec<i64> = (1..=members).filter(|i| i % 2 == 0).map(|i| ids[i]).collect();
    // Watched through a sample (so the watching does not slow moto down), then checked in full.
    let has_it = |user: i64| {
        let (watch, id) = (watch.clone(), message_id.clone());
        async move {
            let queue = watch.peek(user, 10).await.expect("peek");
            queue.iter().any(|(_, m)| m.as_ref().is_some_and(|m| m["id"] == id.as_str()))
        }
    };
    let sample: Vec<i64> =
        offline.iter().step_by(offline.len().div_ceil(8).max(1)).chain(offline.last()).copied().collect();
    let all_offline = loop {
        let mut ready = true;
        for &user in &sample {
            ready &= has_it(user).await;
        }
        if ready {
            let at = started.elapsed();
            let mut missing = 0;
            for &user in &offline {
                missing += usize::from(!has_it(user).await);
            }
            if missing == 0 {
                break at;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "offline members never got it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = before.zip(proxies).map(|((d0, r0), (d, r))| {
        let mut diff = BTreeMap::new();
        for (now, then) in [(d.counts(), d0), (r.counts(), r0)] {
            for (call, n) in now {
                let delta = n - then.get(&call).copied().unwrap_or(0);
                if delta > 0 {
                    diff.insert(call, delta);
                }
            }
        }
        diff
    });
    drop(open);
    Figures { backend, answer: answered, all_online, all_offline, calls }
}

/// A POST over a fresh TCP connection: `(status, body)`.
async fn post(addr: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ntoken: {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    (head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), body.to_owned())
}

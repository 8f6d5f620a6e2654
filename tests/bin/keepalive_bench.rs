//! `make bench-keepalive`: the server keepalive (spec 6.3.5) over 100,000 registered WebSocket
//! connections (synthetic, one per user, in a real redis-server; posts answered by a local
//! stand-in of the `@connections` API), before and after paging it through the fan-out queue.
//! Prints how many invocations a run needs and the most work and time any one of them takes,
//! against the 10 s a Lambda function has.
//!   keepalive-bench [CONNECTIONS]   (default 100000)

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chat_shared::jwt::token_digest;
use chat_shared::model::Role;
use chat_shared::push::post_to_all;
use chat_shared::store::{registry_shard, Connection, QueueJob, CONNECTION_TTL_SECS};
use chat_tests::{moto_endpoint, test_config, Backend, RedisServer};
use futures_util::future::join_all;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let connections: i64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let moto = moto_endpoint();
    let b = Backend::aws_without_consumer(RedisServer::start(), &moto, &moto, test_config()).await;
    let gateway = b.serve_fake_gateway();
    let stores = b.stores.as_ref().expect("stores");
    let admin = chat_shared::store::dynamo::client(Some(&moto)).await;
    admin
        .update_item()
        .table_name(&stores.users_table)
        .key("pk", AttributeValue::S("COUNTER#user".into()))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N(connections.to_string()))
        .send()
        .await
        .expect("user counter");
    let registering = Instant::now();
    let users: Vec<i64> = (1..=connections).collect();
    for chunk in users.chunks(1000) {
        join_all(chunk.iter().map(|&user| {
            let conn = Connection {
                id: format!("conn-{user}"),
                user_id: user,
                token_digest: token_digest("t"),
                role: Role::User,
            };
            let registry = b.state.connections.clone();
            async move { registry.register(&conn, CONNECTION_TTL_SECS).await.expect("register") }
        }))
        .await;
    }
    println!("registered {connections} connections in {:.1} s", registering.elapsed().as_secs_f64());

    // Before: one scheduled invocation reads every connection and pings them all.
    let before = Instant::now();
    let mut all = Vec::new();
    for shard in 0..=registry_shard(connections) {
        all.extend(b.state.connections.shard_connections(shard).await.expect("shard"));
    }
    let posted = post_to_all(b.state.connections.as_ref(), b.state.gateway.as_ref(), &all, br#"{"type":"ping"}"#).await;
    let before_time = before.elapsed();
    assert_eq!(posted.len() as i64, connections);

    // After: the scheduled run queues range jobs; the fan-out function runs each job.
    let mut invocations = vec![("scheduled", 0usize, {
        let started = Instant::now();
        chat_shared::service::websocket::keepalive(&b.state).await.expect("scheduled");
        started.elapsed()
    })];
    let queue = b.fanout_queue();
    let pings_before: usize = (1..=connections).map(|u| gateway.frames_of_type(&format!("conn-{u}"), "ping")).sum();
    let mut idle = 0;
    while idle < 3 {
        let received = queue.receive(10, 1, 60).await.expect("receive");
        if received.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for record in received {
            let job: QueueJob = serde_json::from_str(&record.body).expect("job");
            let started = Instant::now();
            let (kind, work) = match &job {
                QueueJob::Keepalive(range) if range.to - range.from == 1 => {
                    ("shard", b.state.delivery.ping_shard(range.from).await.expect("ping"))
                }
                QueueJob::Keepalive(range) => {
                    b.state.delivery.run(&job).await.expect("split");
                    ("range", (range.to - range.from) as usize)
                }
                QueueJob::Deliver(_) | QueueJob::Store(_) => unreachable!("no messages in this benchmark"),
            };
            invocations.push((kind, work, started.elapsed()));
            queue.delete(&record.receipt_handle).await.expect("delete");
        }
    }
    let pinged: usize =
        (1..=connections).map(|u| gateway.frames_of_type(&format!("conn-{u}"), "ping")).sum::<usize>() - pings_before;
    let max_of = |kind: &str| {
        invocations
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .fold((0, 0, Duration::ZERO), |(n, w, t), (_, work, time)| (n + 1, w.max(*work), t.max(*time)))
    };
    let (ranges, most_shards, range_time) = max_of("range");
    let (shards, most_pings, shard_time) = max_of("shard");
    println!();
    println!("keepalive over {connections} connections (Lambda timeout: 10 s)");
    println!("{:<44} {:>12} {:>22} {:>14}", "", "invocations", "most work in one", "longest one");
    println!(
        "{:<44} {:>12} {:>22} {:>14}",
        "before: one invocation pings all",
        1,
        format!("{connections} pings"),
        format!("{:.2} s", before_time.as_secs_f64())
    );
    println!(
        "{:<44} {:>12} {:>22} {:>14}",
        "after: scheduled run (queues range jobs)",
        1,
        format!("{} jobs queued", ranges),
        format!("{:.3} s", invocations[0].2.as_secs_f64())
    );
    println!(
        "{:<44} {:>12} {:>22} {:>14}",
        "after: range jobs (split into shard jobs)",
        ranges,
        format!("{most_shards} jobs queued"),
        format!("{:.3} s", range_time.as_secs_f64())
    );
    println!(
        "{:<44} {:>12} {:>22} {:>14}",
        "after: shard jobs (ping ≤ 1000 users)",
        shards,
        format!("{most_pings} pings"),
        format!("{:.3} s", shard_time.as_secs_f64())
    );
    println!("pings accepted after paging: {pinged} of {connections}");
}

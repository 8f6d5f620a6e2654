//! `make bench-counters`: writes to the user id counter item per 1,000 registrations, one id per
//! counter write (before) against blocks of `ID_BLOCK_SIZE` ids (after), on DynamoDB (moto) with
//! the calls counted by a proxy. A single item takes about 1,000 writes a second, so the counter
//! capped registrations near that rate; with blocks of 100 it would take 100,000 a second.
//!   counter-bench [REGISTRATIONS] [BLOCK]   (default 500, 100; moto copies a table for every
//!   transaction, so much larger runs only measure moto)

use std::time::Instant;

use chat_shared::store::dynamo::{self, DynamoUserStore};
use chat_shared::store::{Created, UserStore};
use chat_tests::{endpoint_port, moto_endpoint, plain_user, unique_table, CountingProxy};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let registrations: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(500);
    let block: i64 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(100);
    let moto = moto_endpoint();
    println!("{registrations} registrations (user rows created through the DynamoDB adapter, moto)");
    println!("{:<28} {:>20} {:>26} {:>10}", "", "counter-item writes", "per 1,000 registrations", "time");
    for (label, size) in [("before: one id per write", 1), ("after: blocks of ids", block)] {
        let proxy = CountingProxy::start(endpoint_port(&moto));
        let table = unique_table();
        DynamoUserStore::new(dynamo::client(Some(&moto)).await, &table).create_table_if_missing().await.expect("table");
        let store = DynamoUserStore::new(dynamo::client(Some(&proxy.endpoint())).await, &table).with_id_blocks(size);
        let started = Instant::now();
        for i in 0..registrations {
            let user = plain_user(&format!("bench{i:06}"));
            let Created::Created(_) = store.create(user, None).await.expect("create") else { panic!("created") };
        }
        let writes = proxy.counts().get("DynamoDB_20120810.UpdateItem").copied().unwrap_or(0);
        let label = if size == 1 { label.to_owned() } else { format!("{label} of {size}") };
        let per_thousand = writes as f64 * 1000.0 / registrations as f64;
        println!("{label:<28} {writes:>20} {per_thousand:>26.0} {:>9.1}s", started.elapsed().as_secs_f64());
    }
}

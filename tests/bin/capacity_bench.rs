//! `make bench-capacity`: DynamoDB read and write units of a token check, a login and a send,
//! with the password hash and `userset` inside the user row (before) and apart in `PRIVATE#<id>`
//! (after). The items are the ones the service writes (registration and `/api/chat/userset`
//! through the handlers, on moto); their sizes follow DynamoDB's item-size rules, since moto
//! reports a flat capacity whatever the size. "Before" is the same attributes in one item, as the
//! row was written until this change. Strongly consistent reads: 1 RCU per 4 KB; writes: 1 WCU
//! per 1 KB of the larger of the item before and after.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chat_tests::{Backend, BackendKind};
use serde_json::json;

type Item = HashMap<String, AttributeValue>;

/// An attribute value's size by DynamoDB's rules (numbers approximated from their digits).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        _ => 0,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn rcu(bytes: usize) -> usize {
    bytes.div_ceil(4096).max(1)
}

fn wcu(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

async fn raw_item(b: &Backend, pk: String) -> Item {
    let client = chat_shared::store::dynamo::client(b.dynamodb_endpoint.as_deref()).await;
    let table = b.table.as_deref().expect("users table");
    let out = client.get_item().table_name(table).key("pk", AttributeValue::S(pk)).send().await.expect("get");
    out.item.expect("item")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let b = Backend::new(BackendKind::DynamoRedis).await;
    let typical =
        r#"{"chatset":{"visitor":{"sendCount":0,"needFollow":false},"user":{"sendCount":1,"needFollow":false}}}"#;
    // The largest settings a request can carry: 100 KB bodies (34,000 CJK characters, 3 bytes each).
    let largest = format!(r#"{{"a":"{}"}}"#, "设".repeat(34_000));
    println!("Capacity units per operation: token check (the row, strongly consistent), login (username");
    println!("reservation, row, private item; one row update), send (sender's and recipient's rows; a");
    println!("stranger's first message also reads the recipient's settings).");
    println!(
        "{:<16} {:<7} {:>9} {:>12} {:>11} {:>11} {:>12} {:>14}",
        "userset", "layout", "row B", "private B", "token RCU", "login RCU", "login WCU", "send RCU"
    );
    for (label, userset) in [("typical (108 ch)", typical.to_owned()), ("34,000 CJK ch", largest)] {
        let username = format!("cap{}", userset.len() % 10_000);
        let who = b.register(&username).await;
        let (status, body) = b.call_as("POST", "/api/chat/userset", &who, json!({"userset": userset})).await;
        assert_eq!(status, 200, "{body}");
        let row = raw_item(&b, format!("USER#{}", who.id)).await;
        let private = raw_item(&b, format!("PRIVATE#{}", who.id)).await;
        let reservation = raw_item(&b, format!("USERNAME#{username}")).await;
        let mut combined = row.clone();
        combined.extend(
            private.iter().filter(|(k, _)| *k == "password" || *k == "userset").map(|(k, v)| (k.clone(), v.clone())),
        );
        let (row_b, private_b, combined_b, reservation_b) =
            (item_size(&row), item_size(&private), item_size(&combined), item_size(&reservation));
        let before = (rcu(combined_b), rcu(reservation_b) + rcu(combined_b), wcu(combined_b), 2 * rcu(combined_b));
        let after = (rcu(row_b), rcu(reservation_b) + rcu(row_b) + rcu(private_b), wcu(row_b), 2 * rcu(row_b));
        let stranger_after = after.3 + rcu(private_b);
        println!(
            "{label:<16} {:<7} {combined_b:>9} {:>12} {:>11} {:>11} {:>12} {:>14}",
            "before", "-", before.0, before.1, before.2, before.3
        );
        println!(
            "{label:<16} {:<7} {row_b:>9} {private_b:>12} {:>11} {:>11} {:>12} {:>14}",
            "after",
            after.0,
            after.1,
            after.2,
            format!("{} ({stranger_after})", after.3)
        );
    }
}

//! Races that must end with exactly one account.

use std::sync::Arc;

use chat_shared::clock::now_ms;
use chat_tests::{visitor_sign, Backend, BackendKind};
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

on_every_backend!(
    concurrent_registrations_of_one_username_create_one_account,
    concurrent_visitor_registrations_of_one_device_create_one_user,
);

//! Every sample event in `events/` goes through its function's handler against the emulators,
//! and every Lambda binary has its event and its template.yaml entry.

use chat_functions::routes::{self, Route};
use chat_shared::clock::now_ms;
use chat_tests::{visitor_sign, workspace_root, Backend, BackendKind};
use serde_json::{json, Value};

/// Event files in the order a client would send them, with the expected status and `data` check.
const EXPECTED: &[(&str, u16)] = &[
    ("reg-chat.json", 200),
    ("login-chat.json", 200),
    ("visitor-register.json", 200),
    ("visitor-reg-chat.json", 200),
    ("visitor-login-chat.json", 200),
    ("user-info.json", 200),
    ("search-user.json", 200),
    ("userset.json", 200),
    ("update-userinfo.json", 200),
    ("set-password.json", 200),
    // demo01 (user 1) and demo02 (user 2, the upgraded visitor) become friends.
    ("auto-add-friend.json", 200),
    ("get-user-set-info.json", 200),
    ("is-apply-friend.json", 400),
    ("apply-friend.json", 400),
    ("list-apply-friend.json", 200),
    ("handle-apply.json", 400),
    ("goodfriend-list.json", 200),
    ("get-goodfriend-info.json", 200),
    ("set-star-goodfriend.json", 200),
    ("set-see-goodfriend.json", 200),
    ("is-my-goodfriend.json", 200),
    ("set-black-goodfriend.json", 200),
    ("delete-goodfriend.json", 200),
    ("logout.json", 200),
    ("not-found.json", 204),
    ("not-found-get.json", 404),
    ("not-found-chat-noauth.json", 400),
];

fn route_of(file: &str) -> &'static Route {
    let stem = file.trim_end_matches(".json");
    routes::ROUTES
        .iter()
        .chain(std::iter::once(&routes::DEFAULT_ROUTE))
        .filter(|r| stem == r.bin || stem.starts_with(&format!("{}-", r.bin)))
        .max_by_key(|r| r.bin.len())
        .unwrap_or_else(|| panic!("events/{file} names no function"))
}

/// Visitor events carry a fixed timestamp; the server refuses signatures older than 5 minutes,
/// so they are re-signed now (as `infra/resign-event.py` does for `sam local invoke`).
fn resign(event: &mut Value) {
    let Some(body) = event["body"].as_str() else { return };
    let mut body: Value = serde_json::from_str(body).expect("JSON body");
    let (Some(device), Some(_)) = (body["deviceId"].as_str().map(str::to_owned), body.get("timestamp")) else { return };
    let ts = now_ms();
    body["timestamp"] = json!(ts);
    event["body"] = Value::String(body.to_string());
    event["headers"]["x-security-sign"] = Value::String(visitor_sign(&device, ts));
    event["headers"]["content-length"] = Value::String(event["body"].as_str().map_or(0, str::len).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_runs_through_its_handler() {
    let b = Backend::new(BackendKind::DynamoRedis).await;
    let dir = workspace_root().join("events");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    expected.sort();
    assert_eq!(files, expected, "every event file has an expectation here");

    // Events carrying a token act as demo01, user 1.
    let mut demo01_token = String::new();
    for (file, status) in EXPECTED {
        let route = route_of(file);
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("read")).expect("JSON");
        let route_key = if route.bin == routes::DEFAULT_ROUTE.bin {
            "$default".to_owned()
        } else {
            format!("{} {}", route.method, route.path)
        };
        assert_eq!(event["routeKey"], route_key.as_str(), "{file}");
        assert_eq!(event["version"], "2.0", "{file}");
        resign(&mut event);
        if event["headers"].get("token").is_some() {
            event["headers"]["token"] = Value::String(demo01_token.clone());
        }
        let request = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
        let response = (route.handler)(b.state.clone(), request).await;
        assert_eq!(response.status().as_u16(), *status, "{file}: {:?}", response.body());
        assert_eq!(response.headers()["access-control-allow-origin"], "*", "{file}");
        let bytes = response.body().as_ref();
        if *status == 204 {
            assert!(bytes.is_empty());
            continue;
        }
        let body: Value = serde_json::from_slice(bytes).expect("envelope");
        assert_eq!(body["msg"], if *status == 200 { "ok" } else { "fail" }, "{file}: {body}");
        if let (Some(t), Some(1)) = (body["data"]["token"].as_str(), body["data"]["id"].as_i64()) {
            demo01_token = t.to_owned();
        }
    }
}

#[test]
fn every_function_binary_has_a_route_an_event_and_a_template_entry() {
    let root = workspace_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let events: Vec<String> = std::fs::read_dir(root.join("events"))
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut bins: Vec<String> = std::fs::read_dir(root.join("functions/src/bin"))
        .expect("bins")
        .map(|e| e.expect("entry").file_name().to_string_lossy().trim_end_matches(".rs").to_owned())
        .filter(|b| b != "chat-local")
        .collect();
    bins.sort();
    let mut routed: Vec<String> =
        routes::ROUTES.iter().chain(std::iter::once(&routes::DEFAULT_ROUTE)).map(|r| r.bin.to_owned()).collect();
    routed.sort();
    assert_eq!(bins, routed, "one binary per route");
    for bin in &bins {
        assert!(template.contains(&format!("Binary: {bin}\n")), "template.yaml lacks Binary: {bin}");
        assert!(events.iter().any(|e| e == &format!("{bin}.json")), "events/{bin}.json missing");
        let route = routes::by_bin(bin).expect("route");
        if route.bin != routes::DEFAULT_ROUTE.bin {
            let path = route.path;
            assert!(template.contains(&format!("Path: {path}\n")), "template.yaml lacks the route {path}");
        }
    }
}

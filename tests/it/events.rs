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
    // The WebSocket life cycle of demo01 (the gateway knows no such connection: posts are Gone).
    ("ws-connect.json", 200),
    ("ws-post-connect.json", 200),
    ("ws-default.json", 200),
    ("ws-keepalive.json", 200),
    ("ws-disconnect.json", 200),
    // demo01 messages demo02 (now a friend), pulls its own queue, revokes an unknown message.
    ("send-message.json", 200),
    ("get-offline-messages.json", 200),
    ("revoke-message.json", 400),
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
    // demo01 makes a group with demo02 (its own goodfriend row among the ids), changes it, removes
    // and re-invites demo02 (the owner's invitation needs no approval, so there is nothing to
    // agree to), then dissolves it.
    ("group-create.json", 200),
    ("group-list.json", 200),
    ("group-info.json", 200),
    ("group-update-name.json", 200),
    ("group-remark.json", 200),
    ("group-nickname.json", 200),
    ("group-add-user-set.json", 200),
    ("group-delete-user.json", 200),
    ("group-invite-user.json", 200),
    ("group-agree-or-no.json", 400),
    ("group-delete-or-quit.json", 200),
    ("set-black-goodfriend.json", 200),
    ("delete-goodfriend.json", 200),
    ("logout.json", 200),
    // The admin console and API, last: they change and finally delete demo01.
    ("admin-bootstrap.json", 200),
    ("admin-console.json", 200),
    ("admin-login.json", 200),
    ("admin-user-create-form.json", 200),
    ("admin-user-save.json", 200),
    ("admin-user-list.json", 200),
    ("admin-user-list-index.json", 200),
    ("admin-user-edit.json", 200),
    ("admin-user-update.json", 200),
    ("admin-common-update.json", 200),
    ("admin-user-delete.json", 200),
    ("admin-logout.json", 200),
    ("not-found.json", 204),
    ("not-found-get.json", 404),
    ("not-found-chat-noauth.json", 400),
];

fn routes_of(file: &str) -> Vec<&'static Route> {
    let stem = file.trim_end_matches(".json");
    let all = || routes::ROUTES.iter().chain(routes::WS_ROUTES).chain(std::iter::once(&routes::DEFAULT_ROUTE));
    let bin = all()
        .filter(|r| stem == r.bin || stem.starts_with(&format!("{}-", r.bin)))
        .map(|r| r.bin)
        .max_by_key(|b| b.len())
        .unwrap_or_else(|| panic!("events/{file} names no function"));
    all().filter(|r| r.bin == bin).collect()
}

fn route_of(file: &str) -> &'static Route {
    routes_of(file)[0]
}

/// The route of an HTTP event: its function's route with the event's route key (a function may
/// serve several routes).
fn http_route_of(file: &str, route_key: &str) -> &'static Route {
    routes_of(file)
        .into_iter()
        .find(|r| r.bin == routes::DEFAULT_ROUTE.bin || format!("{} {}", r.method, r.path) == route_key)
        .unwrap_or_else(|| panic!("events/{file}: its function serves no route {route_key}"))
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

    b.serve();
    // Events carrying a token act as demo01, user 1; admin events as the bootstrapped manager.
    let mut demo01_token = String::new();
    let mut admin_token = String::new();
    for (file, status) in EXPECTED {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("read")).expect("JSON");
        if file.starts_with("ws-") || *file == "admin-bootstrap.json" {
            run_plain_event(&b, file, event, &demo01_token, *status).await;
            continue;
        }
        let route = http_route_of(file, event["routeKey"].as_str().unwrap_or_default());
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
        if event["headers"].get("authorization").is_some() {
            event["headers"]["authorization"] = Value::String(format!("Bearer {admin_token}"));
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
        if response.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/html")) {
            assert!(std::str::from_utf8(bytes).is_ok_and(|page| page.contains("/admin/loginevent")), "{file}");
            continue;
        }
        let body: Value = serde_json::from_slice(bytes).expect("envelope");
        assert_eq!(body["msg"], if *status == 200 { "ok" } else { "fail" }, "{file}: {body}");
        if let (Some(t), Some(1)) = (body["data"]["token"].as_str(), body["data"]["id"].as_i64()) {
            demo01_token = t.to_owned();
        }
        if let Some(t) = body["data"]["token"].as_str().filter(|_| body["data"].get("manager").is_some()) {
            admin_token = t.to_owned();
        }
    }
}

/// WebSocket route events and the plain events of the post-connect, keepalive and admin
/// bootstrap functions.
async fn run_plain_event(b: &Backend, file: &str, mut event: Value, token: &str, status: u16) {
    let stem = file.trim_end_matches(".json");
    if routes::EVENT_FUNCTIONS.contains(&stem) {
        let outcome = match stem {
            "ws-post-connect" => {
                event["token"] = Value::String(token.to_owned());
                let step = serde_json::from_value(event).expect("post-connect event");
                chat_functions::handlers::ws_post_connect(b.state.clone(), step).await
            }
            "admin-bootstrap" => {
                let credentials = serde_json::from_value(event).expect("bootstrap event");
                let created = chat_functions::handlers::admin_bootstrap(b.state.clone(), credentials).await;
                created.map(|answer| assert_eq!(answer, json!({"created": true}), "{file}"))
            }
            _ => chat_functions::handlers::ws_keepalive(b.state.clone()).await,
        };
        assert_eq!(outcome.map(|()| 200).unwrap_or(500), status, "{file}");
        return;
    }
    let route = route_of(file);
    assert_eq!(event["requestContext"]["routeKey"], route.path, "{file}");
    if event.get("queryStringParameters").is_some() {
        event["queryStringParameters"]["token"] = Value::String(token.to_owned());
    }
    let request = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway WebSocket event");
    let response = (route.handler)(b.state.clone(), request).await;
    assert_eq!(response.status().as_u16(), status, "{file}");
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
    let mut routed: Vec<String> = routes::ROUTES
        .iter()
        .chain(routes::WS_ROUTES)
        .chain(std::iter::once(&routes::DEFAULT_ROUTE))
        .map(|r| r.bin.to_owned())
        .chain(routes::EVENT_FUNCTIONS.iter().map(|f| (*f).to_owned()))
        .collect();
    routed.sort();
    routed.dedup();
    assert_eq!(bins, routed, "one binary per route or event function");
    for bin in &bins {
        assert!(template.contains(&format!("Binary: {bin}\n")), "template.yaml lacks Binary: {bin}");
        assert!(events.iter().any(|e| e == &format!("{bin}.json")), "events/{bin}.json missing");
        for route in routes::ROUTES.iter().chain(routes::WS_ROUTES).filter(|r| r.bin == bin) {
            if route.method == "WS" {
                let key = route.path;
                assert!(
                    template.contains(&format!("RouteKey: {key}\n")),
                    "template.yaml lacks the WebSocket route {key}"
                );
            } else {
                let path = route.path;
                assert!(template.contains(&format!("Path: {path}\n")), "template.yaml lacks the route {path}");
            }
        }
    }
}

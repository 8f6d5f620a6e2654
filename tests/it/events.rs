//! Every function runs as a real Lambda process (the multi-call `bootstrap` binary selected by
//! `_HANDLER`, served by a Runtime API emulator) and answers every one of its sample events in
//! `events/` against moto and redis-server; every function has its route, event and template.yaml
//! entry.

use std::collections::HashMap;

use base64::Engine as _;
use chat_functions::routes::{self, Route};
use chat_tests::runtime_api::{FunctionProcess, Outcome};
use chat_tests::{function_binary, refresh_event, workspace_root, Backend, BackendKind, EventCredentials};
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
    // A fan-out job whose stored message is not there (never stored here): logged and dropped.
    ("message-fanout.json", 200),
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

/// The function an event file belongs to: `events/<function>.json` or `events/<function>-<case>.json`.
fn function_of(file: &str) -> &'static str {
    let stem = file.trim_end_matches(".json");
    routes::functions()
        .into_iter()
        .filter(|f| stem == *f || stem.starts_with(&format!("{f}-")))
        .max_by_key(|f| f.len())
        .unwrap_or_else(|| panic!("events/{file} names no function"))
}

/// The route of an HTTP or WebSocket event: its function's route with the event's route key (a
/// function may serve several routes).
fn route_of(file: &str, event: &Value) -> &'static Route {
    let function = function_of(file);
    let key = event["routeKey"].as_str().or_else(|| event["requestContext"]["routeKey"].as_str()).unwrap_or_default();
    routes::routes_of(function)
        .find(|r| r.function == routes::DEFAULT_ROUTE.function || route_key(r) == key)
        .unwrap_or_else(|| panic!("events/{file}: {function} serves no route {key}"))
}

fn route_key(route: &Route) -> String {
    match route.method {
        "WS" => route.path.to_owned(),
        "ANY" => "$default".to_owned(),
        method => format!("{method} {}", route.path),
    }
}

/// The body of an API Gateway (payload 2.0 / WebSocket) response, decoded.
fn response_body(response: &Value) -> Vec<u8> {
    let text = response["body"].as_str().unwrap_or_default();
    if response["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(text).expect("base64 body")
    } else {
        text.as_bytes().to_vec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_sample_events_as_a_lambda_process() {
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

    // Posts go to chat-local's `@connections` API, which knows no connection: they are Gone.
    b.serve();
    let gateway = b.websocket_endpoint.clone();
    let env = b.function_env(&gateway).await;
    let binary = function_binary("debug");
    let mut processes: HashMap<&str, FunctionProcess> = HashMap::new();
    // Events carrying a token act as demo01, user 1; admin events as the bootstrapped manager.
    let mut credentials = EventCredentials::default();
    let mut connect_id = String::new();
    for (file, status) in EXPECTED {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("read")).expect("JSON");
        let function = function_of(file);
        let is_event_function = routes::EVENT_FUNCTIONS.contains(&function);
        if !is_event_function {
            let route = route_of(file, &event);
            if route.method == "WS" {
                assert_eq!(event["requestContext"]["routeKey"], route.path, "{file}");
            } else {
                assert_eq!(event["routeKey"], route_key(route).as_str(), "{file}");
                assert_eq!(event["version"], "2.0", "{file}");
            }
        }
        if *file == "ws-connect.json" {
            connect_id = event["requestContext"]["connectionId"].as_str().expect("connection id").to_owned();
        }
        refresh_event(&mut event, &credentials);

        let process = match processes.entry(function) {
            std::collections::hash_map::Entry::Occupied(p) => p.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let mut process = FunctionProcess::spawn(&binary, function, &env).await;
                if let Err(failure) = process.ready().await {
                    panic!("{function}: its cold start failed: {failure:?}");
                }
                slot.insert(process)
            }
        };
        let response = match process.invoke(&event).await {
            Outcome::Response(response) => response,
            failure => panic!("{file}: {function} answered {failure:?}"),
        };
        if is_event_function {
            // Lambda and EventBridge only need a successful invocation; the bootstrap says what it did.
            let expected = match function {
                "admin-bootstrap" => json!({"created": true}),
                "message-fanout" => json!({"batchItemFailures": []}),
                _ => Value::Null,
            };
            assert_eq!(response, expected, "{file}");
            continue;
        }
        assert_eq!(response["statusCode"], *status, "{file}: {response}");
        if file.starts_with("ws-") {
            continue;
        }
        assert_eq!(response["headers"]["access-control-allow-origin"], "*", "{file}");
        let bytes = response_body(&response);
        if *status == 204 {
            assert!(bytes.is_empty(), "{file}");
            continue;
        }
        if response["headers"]["content-type"].as_str().is_some_and(|t| t.starts_with("text/html")) {
            assert!(std::str::from_utf8(&bytes).is_ok_and(|page| page.contains("/admin/loginevent")), "{file}");
            continue;
        }
        let body: Value = serde_json::from_slice(&bytes).expect("envelope");
        assert_eq!(body["msg"], if *status == 200 { "ok" } else { "fail" }, "{file}: {body}");
        if let (Some(t), Some(1)) = (body["data"]["token"].as_str(), body["data"]["id"].as_i64()) {
            credentials.user_token = t.to_owned();
        }
        if let Some(t) = body["data"]["token"].as_str().filter(|_| body["data"].get("manager").is_some()) {
            credentials.admin_token = t.to_owned();
        }
    }

    // `$connect` handed the post-connect step to its function with one asynchronous invoke.
    let invokes = processes["ws-connect"].api.invokes();
    assert_eq!(invokes.len(), 1, "{invokes:?}");
    assert_eq!(invokes[0].0, "ws-post-connect");
    assert_eq!(invokes[0].1["connectionId"], connect_id.as_str());
    assert_eq!(invokes[0].1["token"], credentials.user_token.as_str());
    let all = routes::functions();
    assert_eq!(processes.len(), all.len(), "every function ran as a process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_function_or_a_missing_variable_fails_the_cold_start() {
    let b = Backend::new(BackendKind::DynamoRedis).await;
    let env = b.function_env("http://127.0.0.1:9").await;
    let binary = function_binary("debug");
    let mut unknown = FunctionProcess::spawn(&binary, "no-such-function", &env).await;
    assert!(matches!(unknown.ready().await, Err(Outcome::InitError(_))));
    let without_table: Vec<(String, String)> = env.iter().filter(|(k, _)| k != "USERS_TABLE").cloned().collect();
    let mut misconfigured = FunctionProcess::spawn(&binary, "login-chat", &without_table).await;
    assert!(matches!(misconfigured.ready().await, Err(Outcome::InitError(_))));
    let mut fine = FunctionProcess::spawn(&binary, "login-chat", &env).await;
    assert!(fine.ready().await.is_ok());
}

/// With Lambda's JSON log format every line is a JSON object naming the invocation's request id,
/// the route and, once the token check passed, the user; the token itself never appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_request_route_and_user_and_never_the_token() {
    let b = Backend::new(BackendKind::DynamoRedis).await;
    let user = b.register("logged01").await;
    let mut env = b.function_env("http://127.0.0.1:9").await;
    env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
    // Debug: the SDK's lines of the request's own DynamoDB calls, after the token check.
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "DEBUG".into()));
    let dir = chat_tests::TempDir::new();
    let log = dir.0.join("goodfriend-list.log");
    let mut process =
        FunctionProcess::spawn_with_args(&function_binary("debug"), &[], "goodfriend-list", &env, Some(&log)).await;
    assert!(process.ready().await.is_ok());
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("events/goodfriend-list.json")).expect("event"),
    )
    .expect("JSON");
    refresh_event(&mut event, &EventCredentials { user_token: user.token.clone(), admin_token: String::new() });
    let Outcome::Response(response) = process.invoke(&event).await else { panic!("goodfriend-list failed") };
    assert_eq!(response["statusCode"], 200, "{response}");
    drop(process);

    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains(&user.token), "a token was logged");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    // The cold start's lines (the Secrets Manager read) belong to no request.
    let in_request: Vec<&Value> = lines.iter().filter(|l| l["spans"][0]["name"] == "Lambda runtime invoke").collect();
    assert!(!in_request.is_empty(), "no line of the request: {text}");
    for line in &in_request {
        let spans = line["spans"].as_array().expect("spans");
        assert_eq!(spans[0]["requestId"], "00000000-0000-4000-8000-000000000001", "{line}");
        // Only the runtime's own debug lines (reading the event, sending the answer) are outside
        // the handler's span.
        if let Some(handler) = spans.get(1) {
            assert_eq!(handler["function"], "goodfriend-list", "{line}");
            assert_eq!(handler["route"], "GET /api/chat/goodfriendlist/{page}", "{line}");
        }
    }
    assert!(
        in_request.iter().any(|l| l["spans"][1]["user_id"] == user.id),
        "no line after the token check names the user: {text}"
    );
}

#[test]
fn every_function_has_a_route_an_event_and_a_template_entry() {
    let root = workspace_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let events: Vec<String> = std::fs::read_dir(root.join("events"))
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let functions = routes::functions();
    let declared = template.matches("      Handler: ").count();
    assert_eq!(template.matches("        Binary: bootstrap\n").count(), functions.len(), "one build definition");
    assert_eq!(declared, functions.len(), "template.yaml declares exactly one function per handler");
    for function in &functions {
        assert!(template.contains(&format!("      Handler: {function}\n")), "template.yaml lacks Handler: {function}");
        // Its own log group with a retention, and an alarm on its errors and throttles.
        let log_group = format!("      LogGroupName: !Sub /aws/lambda/${{AWS::StackName}}/{function}\n");
        assert!(template.contains(&log_group), "template.yaml lacks the log group of {function}");
        let alarm = format!("      AlarmDescription: {function} failed or was throttled\n");
        assert!(template.contains(&alarm), "template.yaml lacks the alarm of {function}");
        assert!(events.iter().any(|e| e == &format!("{function}.json")), "events/{function}.json missing");
        for route in routes::routes_of(function) {
            match route.method {
                "WS" => assert!(
                    template.contains(&format!("RouteKey: {}\n", route.path)),
                    "template.yaml lacks the WebSocket route {}",
                    route.path
                ),
                "ANY" => {}
                _ => {
                    assert!(
                        template.contains(&format!("Path: {}\n", route.path)),
                        "template.yaml lacks the route {}",
                        route.path
                    );
                    // Its own throttle on the HTTP API's stage.
                    let throttle = format!(
                        "        \"{} {}\":\n          ThrottlingRateLimit: !Ref Throttle",
                        route.method, route.path
                    );
                    assert!(template.contains(&throttle), "template.yaml lacks the throttle of {}", route.path);
                }
            }
        }
    }
}

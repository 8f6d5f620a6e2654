//! `make invoke FN=<function> EVENT=events/<file>.json`: runs the real Lambda binary for one
//! function through a Runtime API emulator against local stores (a redis-server and moto started
//! for the run, tables and keys created), with the event's tokens and visitor signature made
//! valid first, and prints the function's answer. Docker-free `sam local invoke`.

use std::path::PathBuf;
use std::process::ExitCode;

use chat_shared::service::admin;
use chat_tests::runtime_api::{FunctionProcess, Outcome};
use chat_tests::{
    function_binary, moto_endpoint, refresh_event, workspace_root, Backend, EventCredentials, Member, RedisServer,
};
use serde_json::{json, Value};

const USAGE: &str = "usage: lambda-invoke <function> <event.json> [--release]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(function), Some(event_path)) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let profile = if args.iter().any(|a| a == "--release") { "release" } else { "debug" };
    let mut event: Value = match std::fs::read_to_string(PathBuf::from(event_path)).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(event)) => event,
        Ok(Err(e)) => return fail(&format!("{event_path}: not JSON: {e}")),
        Err(e) => return fail(&format!("{event_path}: {e}")),
    };
    if !chat_functions::routes::functions().contains(&function.as_str()) {
        return fail(&format!(
            "no function {function:?}; the functions are: {}",
            chat_functions::routes::functions().join(", ")
        ));
    }

    eprintln!("starting redis-server and moto on loopback ports, creating tables and keys");
    let backend = Backend::aws(RedisServer::start(), &moto_endpoint(), &moto_endpoint()).await;
    backend.serve();
    let gateway = backend.websocket_endpoint.clone();
    let credentials = credentials(&backend).await;
    refresh_event(&mut event, &credentials);

    let env = backend.function_env(&gateway).await;
    let mut process = FunctionProcess::spawn(&function_binary(profile), function, &env).await;
    if let Err(failure) = process.ready().await {
        return fail(&format!("{function}: cold start failed: {failure:?}"));
    }
    match process.invoke(&event).await {
        Outcome::Response(response) => {
            println!("{}", serde_json::to_string_pretty(&readable(response)).unwrap_or_default());
            ExitCode::SUCCESS
        }
        failure => fail(&format!("{function}: {failure:?}")),
    }
}

/// The sample events' world: user 1 (whose token the `token` headers get) and its friend user 2
/// (whom the events address; names other than the events' own `demo01`/`demo02`, which
/// `reg-chat` and `visitor-reg-chat` register), and the manager of `events/admin-bootstrap.json`
/// (whose token `Authorization` gets, and whose password `admin-login` uses).
async fn credentials(backend: &Backend) -> EventCredentials {
    let user = backend.register("invoke01").await;
    let friend = backend.register("invoke02").await;
    backend.befriend(user.id, friend.id).await;
    let manager: Value = std::fs::read_to_string(workspace_root().join("events/admin-bootstrap.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| json!({"username": "admin", "password": "change-me-now"}));
    let (name, password) =
        (manager["username"].as_str().unwrap_or("admin"), manager["password"].as_str().unwrap_or(""));
    let _ = admin::bootstrap(&backend.state, name, password).await;
    let (_, login) = backend.post_json("/admin/loginevent", json!({"username": name, "password": password})).await;
    let admin_token = login["data"]["token"].as_str().unwrap_or_default().to_owned();
    let Member { token, .. } = user;
    EventCredentials { user_token: token, admin_token }
}

/// An API Gateway response with its JSON body shown as JSON rather than a string.
fn readable(mut response: Value) -> Value {
    if let Some(body) = response.get("body").and_then(Value::as_str) {
        if let Ok(json) = serde_json::from_str::<Value>(body) {
            response["body"] = json;
        }
    }
    response
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}

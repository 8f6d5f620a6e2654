//! `make invoke FN=<function> EVENT=events/<file>.json`: runs the real Lambda binary for one
//! function through a Runtime API emulator against local stores (a redis-server and moto started
//! for the run, tables and keys created), with the event's tokens and visitor signature made
//! valid first, and prints the function's answer. Docker-free `sam local invoke`.

use std::path::PathBuf;
use std::process::ExitCode;

use chat_shared::service::admin;
use chat_tests::runtime_api::{FunctionProcess, Outcome};
use chat_tests::{function_binary, moto_endpoint, refresh_event, Backend, EventCredentials, Member, RedisServer};
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
    let gateway = format!("http://{}", backend.serve());
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

/// A live chat user (`demo01`, registered now) and manager (`admin`, bootstrapped now) for the
/// event's `token` and `Authorization` headers.
async fn credentials(backend: &Backend) -> EventCredentials {
    let user = backend.register("demo01").await;
    let password = "admin123456";
    let _ = admin::bootstrap(&backend.state, "admin", password).await;
    let (_, login) = backend.post_json("/admin/loginevent", json!({"username": "admin", "password": password})).await;
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

//! `chat-local`'s gateway: it turns each HTTP request into the API Gateway HTTP API (payload v2)
//! event that AWS would deliver, hands it to the same handler the Lambda runs, and writes the
//! handler's response back. It also plays API Gateway's WebSocket API: `/ws?token=` sockets whose
//! `$connect` / `$default` / `$disconnect` events go to the WebSocket handlers, the post-connect
//! step, a keepalive, and the `@connections` management API the handlers post through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chat_shared::clock::now_ms;
use chat_shared::web::json_response;
use chat_shared::AppState;
use lambda_http::Body;
use serde_json::{json, Map, Value};

use crate::routes::{self, Route};

mod websocket;

/// Bodies above this are refused before reaching a handler; handlers refuse above 100 KB.
const MAX_FORWARDED_BODY: usize = 1024 * 1024;

/// The router of `chat-local`: the WebSocket endpoint, the `@connections` API, and every other
/// path through the HTTP API emulation.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let sockets = Arc::new(Sockets::default());
    let websocket = axum::Router::new()
        .route("/ws", axum::routing::get(websocket::upgrade))
        .route(
            "/@connections/{id}",
            axum::routing::post(websocket::post_to_connection)
                .delete(websocket::delete_connection)
                .get(websocket::get_connection),
        )
        .with_state(websocket::Local { state: state.clone(), sockets });
    axum::Router::new().fallback(gateway).with_state(state).merge(websocket)
}

pub use websocket::{spawn_keepalive, Sockets};

async fn gateway(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await else {
        return to_axum(json_response(413, &json!({"msg":"fail","data":"request entity too large"})));
    };
    to_axum(dispatch(state, &parts, &body, peer).await)
}

/// Routes one HTTP request as API Gateway would: the matching route's handler (or `$default`'s)
/// receives the payload v2 event of the request.
pub async fn dispatch(
    state: Arc<AppState>,
    parts: &axum::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
) -> lambda_http::Response<Body> {
    let (route, path_params): (&Route, Vec<(String, String)>) =
        routes::find(parts.method.as_str(), parts.uri.path()).unwrap_or((&routes::DEFAULT_ROUTE, Vec::new()));
    let event = v2_event(parts, body, route, path_params, peer);
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => (route.handler)(state, request).await,
        Err(e) => {
            tracing::error!(error = %e, "could not build the API Gateway event");
            json_response(500, &json!({"msg":"fail","data":"Internal Server Error"}))
        }
    }
}

/// The event API Gateway would send for this request.
fn v2_event(
    parts: &axum::http::request::Parts,
    body: &[u8],
    route: &Route,
    path_params: Vec<(String, String)>,
    peer: SocketAddr,
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let route_key = if route.path == routes::DEFAULT_ROUTE.path {
        "$default".to_owned()
    } else {
        format!("{} {}", route.method, route.path)
    };
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let user_agent = parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
    let host = parts.headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "chat-local",
            "domainName": host,
            "domainPrefix": "chat-local",
            "http": {
                "method": method,
                "path": path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now_ms(),
        },
        "isBase64Encoded": is_base64,
    });
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = Value::Object(path_params.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    event
}

fn to_axum(response: lambda_http::Response<Body>) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Empty => Vec::new(),
        other => other.as_ref().to_vec(),
    };
    // Built by hand so that no content type is added to bodiless responses (204 preflight).
    let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

//! `chat-local`'s gateway: it turns each HTTP request into the API Gateway HTTP API (payload v2)
//! event that AWS would deliver, hands it to the same handler the Lambda runs, and writes the
//! handler's response back. It also plays API Gateway's WebSocket API: `/ws?token=` sockets whose
//! `$connect` / `$default` / `$disconnect` events go to the WebSocket handlers, the post-connect
//! step, a keepalive, and the `@connections` management API the handlers post through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chat_shared::clock::now_ms;
use chat_shared::web::json_response;
use chat_shared::AppState;
use lambda_http::Body;
use serde_json::{json, Map, Value};

use crate::routes::{self, Route};

mod docs;
mod server;
mod sqs;
mod websocket;

pub use docs::{openapi_json, OPENAPI_YAML};
use server::serve;
pub use server::Limits;
pub use sqs::consume_fanout_queue;

/// Bodies above this are refused before reaching a handler; handlers refuse above 100 KB.
const MAX_FORWARDED_BODY: usize = 1024 * 1024;

/// chat-local's two routers over one set of sockets: `public` serves clients (the WebSocket
/// endpoint and every other path through the HTTP API emulation) under the connection cap;
/// `management` serves only the `@connections` API the handlers post through, on a loopback
/// listener of its own, so pushes never wait for a place among the clients' connections.
struct Routers {
    public: axum::Router,
    management: axum::Router,
}

/// The routers of `chat-local`; `limits` bound the time a request body may take.
fn routers(state: Arc<AppState>, limits: &Limits) -> Routers {
    let sockets = Arc::new(Sockets::default());
    let body_timeout = limits.body_timeout;
    let local = websocket::Local { state: state.clone(), sockets, body_timeout };
    let management = axum::Router::new()
        .route(
            "/@connections/{id}",
            axum::routing::post(websocket::post_to_connection)
                .delete(websocket::delete_connection)
                .get(websocket::get_connection),
        )
        .with_state(local.clone());
    let websocket = axum::Router::new()
        // Any other method on /ws is an unknown route, answered by `$default` like every other.
        .route("/ws", axum::routing::get(websocket::upgrade).fallback(websocket::not_a_route))
        .with_state(local)
        // chat-local only: the API's document and its reference page.
        .route("/openapi.yaml", axum::routing::get(docs::yaml))
        .route("/openapi.json", axum::routing::get(docs::json))
        .route("/docs", axum::routing::get(docs::page));
    let public = axum::Router::new()
        .fallback(move |state: State<Arc<AppState>>, peer: ConnectInfo<SocketAddr>, req: axum::extract::Request| {
            gateway(state, peer, req, body_timeout)
        })
        .with_state(state)
        .merge(websocket);
    Routers { public, management }
}

/// Serves chat-local's gateway for `state` until `shutdown`: clients on `public` under `limits`,
/// the `@connections` API on `management` (loopback; only this process's handlers reach it,
/// with up to [`chat_shared::push::PUSH_CONCURRENCY`] posts at once per fan-out).
pub async fn serve_gateway(
    public: tokio::net::TcpListener,
    management: tokio::net::TcpListener,
    state: Arc<AppState>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let routers = routers(state, &limits);
    let management_limits = Limits { max_connections: 4096, ..limits.clone() };
    tokio::spawn(serve(management, routers.management, management_limits, std::future::pending()));
    serve(public, routers.public, limits, shutdown).await;
}

pub use websocket::{spawn_keepalive, Sockets};

async fn gateway(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    body_timeout: Duration,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    match read_body(&parts, body, body_timeout).await {
        Ok(body) => to_axum(dispatch(state, &parts, &body, peer).await),
        Err(refusal) => refusal,
    }
}

/// A request's body, or the envelope refusing it: a declared length over the limit at once
/// (413, without reading it), a body over the limit (413), one that does not arrive in time
/// (408) or is malformed (400, e.g. a bad chunk size).
pub(crate) async fn read_body(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    timeout: Duration,
) -> Result<axum::body::Bytes, axum::response::Response> {
    let fail = |status: u16, data: &str| to_axum(json_response(status, &json!({"msg": "fail", "data": data})));
    let declared = parts.headers.get("content-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORWARDED_BODY as u64) {
        return Err(fail(413, "request entity too large"));
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_FORWARDED_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(fail(413, "request entity too large")),
        Ok(Err(_)) => Err(fail(400, "Bad Request")),
        Err(_) => Err(fail(408, "Request Timeout")),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
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

pub(crate) fn to_axum(response: lambda_http::Response<Body>) -> axum::response::Response {
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

//! API Gateway's WebSocket API, emulated: each socket gets a connection id, its lifecycle and
//! frames become the `$connect` / `$default` / `$disconnect` events AWS would send to the same
//! handlers, and the handlers' pushes come back through the `@connections` API served here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chat_shared::clock::now_ms;
use chat_shared::push::PostConnectEvent;
use chat_shared::AppState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::handlers;
use crate::routes;

/// Server keepalive interval of the local gateway (spec 6.3.5).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

enum Outbound {
    Text(String),
    Close,
}

/// The open sockets by connection id.
#[derive(Default)]
pub struct Sockets(Mutex<HashMap<String, mpsc::UnboundedSender<Outbound>>>);

impl Sockets {
    fn sender(&self, id: &str) -> Option<mpsc::UnboundedSender<Outbound>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    fn insert(&self, id: &str, tx: mpsc::UnboundedSender<Outbound>) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned(), tx);
    }

    fn remove(&self, id: &str) -> Option<mpsc::UnboundedSender<Outbound>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id)
    }
}

#[derive(Clone)]
pub struct Local {
    pub state: Arc<AppState>,
    pub sockets: Arc<Sockets>,
}

/// An API Gateway-style connection id: 16 characters of base64 over random bytes (URL-safe
/// here, so it needs no escaping in `@connections` paths).
fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&uuid::Uuid::new_v4().as_bytes()[..12])
}

/// GET /ws?token= — the WebSocket handshake always completes (spec 6.3.1); authentication follows.
pub async fn upgrade(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| serve(local, socket, uri, headers, peer))
}

async fn serve(local: Local, socket: WebSocket, uri: Uri, headers: HeaderMap, peer: SocketAddr) {
    let id = new_connection_id();
    let connected_at = now_ms();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    local.sockets.insert(&id, tx);
    // The writer: frames posted through @connections, in order; a delete closes with 1000.
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Outbound::Text(text) => sink.send(Message::Text(text.into())).await,
                Outbound::Close => {
                    let frame = CloseFrame { code: 1000, reason: "".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let event = |route_key: &str, body: Option<(String, bool)>| {
        ws_event(route_key, &id, connected_at, &uri, &headers, peer, body)
    };
    let query = uri.query().unwrap_or("");
    let token: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    if invoke(&local.state, "$connect", event("$connect", None)).await == 200 {
        // What the post-connect function does in AWS, run right after $connect returned.
        let step = PostConnectEvent { connection_id: id.clone(), token };
        if let Err(e) = handlers::ws_post_connect(local.state.clone(), step).await {
            tracing::error!(error = %e, "post-connect step failed");
        }
        while let Some(Ok(message)) = stream.next().await {
            let body = match message {
                Message::Text(text) => (text.to_string(), false),
                Message::Binary(bytes) => (STANDARD.encode(&bytes), true),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            invoke(&local.state, "$default", event("$default", Some(body))).await;
        }
    }
    if let Some(tx) = local.sockets.remove(&id) {
        let _ = tx.send(Outbound::Close);
    }
    let _ = writer.await;
    invoke(&local.state, "$disconnect", event("$disconnect", None)).await;
}

/// Runs a WebSocket route's handler on its event; returns the status it answered.
async fn invoke(state: &Arc<AppState>, route_key: &str, event: Value) -> u16 {
    let Some(route) = routes::ws_route(route_key) else { return 500 };
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => (route.handler)(state.clone(), request).await.status().as_u16(),
        Err(e) => {
            tracing::error!(error = %e, "could not build the WebSocket event");
            500
        }
    }
}

/// The event API Gateway's WebSocket API sends for a route.
fn ws_event(
    route_key: &str,
    connection_id: &str,
    connected_at: i64,
    uri: &Uri,
    headers: &HeaderMap,
    peer: SocketAddr,
    body: Option<(String, bool)>,
) -> Value {
    let event_type = match route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": "local",
            "connectedAt": connected_at,
            "requestTimeEpoch": now_ms(),
            "identity": {"sourceIp": peer.ip().to_string()},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "domainName": host,
            "connectionId": connection_id,
            "apiId": "chat-local",
        },
        "isBase64Encoded": false,
    });
    // Like AWS: handshake headers and query on $connect, the frame as body on $default.
    if route_key == "$connect" {
        let mut hdrs = Map::new();
        for (name, value) in headers {
            hdrs.insert(name.as_str().to_owned(), Value::String(String::from_utf8_lossy(value.as_bytes()).into()));
        }
        event["headers"] = Value::Object(hdrs);
        let query: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
        if !query.is_empty() {
            event["queryStringParameters"] =
                Value::Object(query.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        }
    }
    if let Some((body, base64)) = body {
        event["body"] = Value::String(body);
        event["isBase64Encoded"] = Value::Bool(base64);
    }
    event
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [("content-type", "application/json"), ("x-amzn-ErrorType", "GoneException")],
        r#"{"message":null}"#,
    )
        .into_response()
}

/// Only processes on this machine may use the management API (AWS requires IAM for it).
fn local_only(peer: &SocketAddr) -> Option<Response> {
    (!peer.ip().is_loopback()).then(|| (StatusCode::FORBIDDEN, "@connections is loopback-only").into_response())
}

/// POST /@connections/{id} — PostToConnection.
pub async fn post_to_connection(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = local_only(&peer) {
        return refused;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    match local.sockets.sender(&id) {
        Some(tx) if tx.send(Outbound::Text(text)).is_ok() => StatusCode::OK.into_response(),
        _ => gone(),
    }
}

/// DELETE /@connections/{id} — DeleteConnection: the socket is closed with 1000.
pub async fn delete_connection(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = local_only(&peer) {
        return refused;
    }
    match local.sockets.sender(&id) {
        Some(tx) if tx.send(Outbound::Close).is_ok() => StatusCode::NO_CONTENT.into_response(),
        _ => gone(),
    }
}

/// GET /@connections/{id} — GetConnection.
pub async fn get_connection(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = local_only(&peer) {
        return refused;
    }
    match local.sockets.sender(&id) {
        Some(_) => ([("content-type", "application/json")], r#"{"identity":{"sourceIp":"127.0.0.1"}}"#).into_response(),
        None => gone(),
    }
}

/// The local gateway's keepalive: every [`KEEPALIVE_INTERVAL`], the keepalive function's handler.
pub fn spawn_keepalive(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEEPALIVE_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = handlers::ws_keepalive(state.clone()).await {
                tracing::error!(error = %e, "keepalive failed");
            }
        }
    })
}

//! API Gateway's WebSocket API, emulated: each socket gets a connection id, its lifecycle and
//! frames become the `$connect` / `$default` / `$disconnect` events AWS would send to the same
//! handlers, and the handlers' pushes come back through the `@connections` API served here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
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
use tokio::sync::{mpsc, watch};

use crate::handlers;
use crate::routes;

/// Server keepalive interval of the local gateway (spec 6.3.5).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Frames posted to a connection and not yet taken by its client, in bytes. A client that stops
/// reading fills it; the connection is then gone, as API Gateway drops a connection it cannot
/// write to, and what is posted to it afterwards is kept offline by the handlers.
pub const OUTBOUND_BUFFER_BYTES: usize = 1024 * 1024;
/// API Gateway's WebSocket limits: a frame of at most 32 KB, a message of at most 128 KB; more
/// closes the connection with 1009.
const MAX_FRAME_BYTES: usize = 32 * 1024;
const MAX_MESSAGE_BYTES: usize = 128 * 1024;

enum Outbound {
    Text(String),
    Close(u16),
}

/// One open socket as the `@connections` API reaches it: its writer's queue, the bytes waiting
/// in it, and the switch that ends the connection at once.
#[derive(Clone)]
struct Socket {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    kill: Arc<watch::Sender<bool>>,
}

impl Socket {
    /// Queues a frame; `false` when the connection is gone or its client stopped reading (it is
    /// then ended).
    fn post(&self, text: String) -> bool {
        let len = text.len();
        if self.queued.fetch_add(len, Ordering::SeqCst) + len > OUTBOUND_BUFFER_BYTES {
            self.kill.send_replace(true);
            return false;
        }
        self.tx.send(Outbound::Text(text)).is_ok()
    }
}

/// The open sockets by connection id.
#[derive(Default)]
pub struct Sockets(Mutex<HashMap<String, Socket>>);

impl Sockets {
    fn get(&self, id: &str) -> Option<Socket> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    fn insert(&self, id: &str, socket: Socket) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned(), socket);
    }

    fn remove(&self, id: &str) -> Option<Socket> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id)
    }
}

/// The close code RFC 6455 gives a frame the socket could not accept (API Gateway answers so):
/// 1002 protocol error, 1007 invalid UTF-8, 1009 too big; anything else 1011.
fn close_code(error: &axum::Error) -> u16 {
    use tokio_tungstenite::tungstenite::Error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        match err.downcast_ref::<Error>() {
            Some(Error::Protocol(_)) => return 1002,
            Some(Error::Utf8(_)) => return 1007,
            Some(Error::Capacity(_)) => return 1009,
            Some(_) => return 1011,
            None => source = err.source(),
        }
    }
    1011
}

#[derive(Clone)]
pub struct Local {
    pub state: Arc<AppState>,
    pub sockets: Arc<Sockets>,
    /// How long a request body may take to arrive (the server's limit).
    pub body_timeout: Duration,
}

/// An API Gateway-style connection id: 16 characters of base64 over random bytes (URL-safe
/// here, so it needs no escaping in `@connections` paths).
fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&uuid::Uuid::new_v4().as_bytes()[..12])
}

/// GET /ws?token= — the WebSocket handshake always completes (spec 6.3.1); authentication follows.
/// A plain GET (no upgrade) is a 400 envelope.
pub async fn upgrade(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        let refusal = chat_shared::web::json_response(400, &json!({"msg": "fail", "data": "Bad Request"}));
        return super::to_axum(refusal);
    };
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(local, socket, uri, headers, peer))
}

/// Any other method on `/ws`: the route does not exist, `$default` answers (spec 1.3).
pub async fn not_a_route(
    State(local): State<Local>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    match super::read_body(&parts, body, local.body_timeout).await {
        Ok(body) => super::to_axum(super::dispatch(local.state, &parts, &body, peer).await),
        Err(refusal) => refusal,
    }
}

async fn serve(local: Local, socket: WebSocket, uri: Uri, headers: HeaderMap, peer: SocketAddr) {
    let id = new_connection_id();
    let connected_at = now_ms();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (kill, mut killed) = watch::channel(false);
    let socket = Socket { tx, queued: Arc::new(AtomicUsize::new(0)), kill: Arc::new(kill) };
    let (queued, end) = (socket.queued.clone(), socket.kill.clone());
    local.sockets.insert(&id, socket.clone());
    // The writer: frames posted through @connections, in order; a close ends it. Killed (its
    // client stopped reading), it stops at once, even in the middle of a send.
    let mut writer_killed = killed.clone();
    let writer = tokio::spawn(async move {
        let write = async {
            while let Some(out) = rx.recv().await {
                match out {
                    Outbound::Text(text) => {
                        let len = text.len();
                        let sent = sink.send(Message::Text(text.into())).await;
                        queued.fetch_sub(len, Ordering::SeqCst);
                        if sent.is_err() {
                            break;
                        }
                    }
                    Outbound::Close(code) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: "".into() }))).await;
                        break;
                    }
                }
            }
            // However the writing ended (our close sent, or the client's close making further
            // sends fail), tungstenite may still owe the client its close reply: `close` flushes it.
            let _ = sink.close().await;
        };
        tokio::select! {
            () = write => {}
            _ = writer_killed.wait_for(|k| *k) => {}
        }
        // Closed by us or killed: the reader stops too, instead of waiting for a client that may
        // never answer the close.
        end.send_replace(true);
    });
    let event = |route_key: &str, body: Option<(String, bool)>| {
        ws_event(route_key, &id, connected_at, &uri, &headers, peer, body)
    };
    let query = uri.query().unwrap_or("");
    let token: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    let mut close_code_on_error = None;
    if invoke(&local.state, "$connect", event("$connect", None)).await == 200 {
        // What the post-connect function does in AWS, run right after $connect returned.
        let step = PostConnectEvent { connection_id: id.clone(), token };
        if let Err(e) = handlers::ws_post_connect(local.state.clone(), step).await {
            tracing::error!(error = %e, "post-connect step failed");
        }
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = killed.wait_for(|k| *k) => break,
            };
            let body = match next {
                Some(Ok(Message::Text(text))) => (text.to_string(), false),
                Some(Ok(Message::Binary(bytes))) => (STANDARD.encode(&bytes), true),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(error)) => {
                    close_code_on_error = Some(close_code(&error));
                    break;
                }
            };
            invoke(&local.state, "$default", event("$default", Some(body))).await;
        }
    }
    if let Some(socket) = local.sockets.remove(&id) {
        let _ = socket.tx.send(Outbound::Close(close_code_on_error.unwrap_or(1000)));
    }
    // A killed writer has stopped already; a closing one gets a moment for its close frame.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_err() {
        writer.abort();
    }
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
    req: axum::extract::Request,
) -> Response {
    if let Some(refused) = local_only(&peer) {
        return refused;
    }
    let (parts, body) = req.into_parts();
    let body = match super::read_body(&parts, body, local.body_timeout).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    // API Gateway refuses a post over its 128 KB message limit for good.
    if body.len() > MAX_MESSAGE_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("content-type", "application/json"), ("x-amzn-ErrorType", "PayloadTooLargeException")],
            r#"{"message":"Message too long"}"#,
        )
            .into_response();
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    match local.sockets.get(&id) {
        Some(socket) if socket.post(text) => StatusCode::OK.into_response(),
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
    match local.sockets.get(&id) {
        Some(socket) if socket.tx.send(Outbound::Close(1000)).is_ok() => StatusCode::NO_CONTENT.into_response(),
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
    match local.sockets.get(&id) {
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

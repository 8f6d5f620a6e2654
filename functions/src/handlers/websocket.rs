//! The WebSocket API's routes (spec 6.3): `$connect`, `$disconnect`, `$default`, plus the
//! post-connect step and the keepalive, which are not API routes but plain events.

use std::sync::Arc;

use chat_shared::push::PostConnectEvent;
use chat_shared::service::websocket;
use chat_shared::{AppResult, AppState};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

fn connection_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::WebSocket(ctx)) => ctx.connection_id.clone(),
        _ => None,
    }
}

/// What API Gateway gets back: 200 unless the function itself failed (the cause is logged once).
fn gateway_answer(result: AppResult<()>) -> Response<Body> {
    let status = match result {
        Ok(()) => 200,
        Err(e) => {
            tracing::error!(error = %e, "websocket route failed");
            500
        }
    };
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(status).unwrap_or_default();
    response
}

fn missing_connection() -> AppResult<()> {
    Err(chat_shared::AppError::internal("websocket event without a connection id"))
}

/// WS $connect (`/ws?token=`) — always accepted; the checks run in the post-connect step.
pub async fn ws_connect(state: Arc<AppState>, req: Request) -> Response<Body> {
    let token = req.query_string_parameters_ref().and_then(|q| q.first("token")).map(str::to_owned);
    gateway_answer(match connection_id(&req) {
        Some(id) => websocket::connect(&state, &id, token.as_deref()).await,
        None => missing_connection(),
    })
}

/// WS $disconnect — the connection leaves the registry.
pub async fn ws_disconnect(state: Arc<AppState>, req: Request) -> Response<Body> {
    gateway_answer(match connection_id(&req) {
        Some(id) => websocket::disconnect(&state, &id).await,
        None => missing_connection(),
    })
}

/// WS $default — client frames: pings get a pong, the rest is ignored.
pub async fn ws_default(state: Arc<AppState>, req: Request) -> Response<Body> {
    let body = match req.body() {
        Body::Text(text) => text.clone(),
        // Binary frames are ignored (spec 6.3.4).
        _ => String::new(),
    };
    gateway_answer(match connection_id(&req) {
        Some(id) => websocket::client_frame(&state, &id, &body).await,
        None => missing_connection(),
    })
}

/// The post-connect step `$connect` hands over (asynchronous invoke): refusal, or registration
/// with the welcome frame and prompts.
pub async fn ws_post_connect(state: Arc<AppState>, event: PostConnectEvent) -> AppResult<()> {
    websocket::after_connect(&state, &event.connection_id, event.token.as_deref()).await
}

/// Scheduled keepalive: hands the registry's shards to the fan-out queue, whose jobs ping them.
pub async fn ws_keepalive(state: Arc<AppState>) -> AppResult<()> {
    let jobs = websocket::keepalive(&state).await?;
    tracing::info!(jobs, "keepalive queued");
    Ok(())
}

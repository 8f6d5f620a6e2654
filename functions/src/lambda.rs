//! The Lambda entry point: one multi-call binary serves every function, the function's `Handler`
//! (`_HANDLER` in Lambda) names which; state is built once per cold start.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use chat_shared::state::init_tracing;
use chat_shared::AppResult;
use chat_shared::AppState;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, LambdaEvent, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::handlers;
use crate::routes::{self, Handler};

/// Runs the Lambda function `name` until the runtime stops it: an HTTP or WebSocket route's
/// handler, or one of the event functions (asynchronous invoke, schedule). A missing variable or
/// an unknown name fails the cold start, naming it.
pub async fn run_function(name: &'static str) -> Result<(), lambda_http::Error> {
    init_tracing();
    match name {
        "ws-post-connect" => serve_events(name, cold_start(false).await?, handlers::ws_post_connect).await,
        "ws-keepalive" => {
            serve_events(name, cold_start(false).await?, |state, _: Value| handlers::ws_keepalive(state)).await
        }
        "admin-bootstrap" => serve_events(name, cold_start(true).await?, handlers::admin_bootstrap).await,
        "message-fanout" => serve_events(name, cold_start(false).await?, handlers::message_fanout).await,
        _ => {
            let route = routes::routes_of(name).next().ok_or_else(|| {
                tracing::error!(function = name, "cold start failed: no such function");
                format!("no function named {name:?} (the Handler of the function's template entry)")
            })?;
            // Every route of a function shares its handler (`admin-user-list` serves two paths);
            // routes under `/admin/` need the admin settings.
            let handler: Handler = route.handler;
            let state = cold_start(routes::is_admin(route)).await?;
            serve(name, state, handler).await
        }
    }
}

/// The state of a cold start, with the admin settings if `admin`.
async fn cold_start(admin: bool) -> Result<Arc<AppState>, lambda_http::Error> {
    let state = AppState::from_env(admin).await;
    Ok(Arc::new(state.inspect_err(|e| tracing::error!("cold start failed: {e}"))?))
}

/// Serves every API Gateway request (HTTP or WebSocket) with `handler`.
async fn serve<F, Fut>(function: &'static str, state: Arc<AppState>, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(service_fn(|req: Request| {
        // Inside the runtime's span (its `requestId`): every line of the request names its route
        // and, once authenticated, its user.
        let span = tracing::info_span!(
            "request",
            function,
            route = %route_key(&req),
            user_id = tracing::field::Empty
        );
        let response = handler(state.clone(), req).instrument(span);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
}

/// The API Gateway route key of a request (`POST /api/loginChat`, `$connect`), as the template
/// declares it.
fn route_key(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        Some(RequestContext::WebSocket(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Serves every plain event with `handler`; a failure is logged and reported to Lambda (which
/// retries it or sends it to the failed-invocations queue).
async fn serve_events<E, O, F, Fut>(
    function: &'static str,
    state: Arc<AppState>,
    handler: F,
) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<O>> + Send,
{
    lambda_http::lambda_runtime::run(service_fn(|event: LambdaEvent<E>| {
        let done = handler(state.clone(), event.payload).instrument(tracing::info_span!("request", function));
        async move {
            done.await.map_err(|e| {
                tracing::error!(error = %e, "invocation failed");
                lambda_http::Error::from(e.to_string())
            })
        }
    }))
    .await
}

//! The Lambda entry point: one multi-call binary serves every function, the function's `Handler`
//! (`_HANDLER` in Lambda) names which; state is built once per cold start.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use chat_shared::state::init_tracing;
use chat_shared::AppResult;
use chat_shared::AppState;
use lambda_http::{service_fn, Body, LambdaEvent, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::handlers;
use crate::routes::{self, Handler};

/// Runs the Lambda function `name` until the runtime stops it: an HTTP or WebSocket route's
/// handler, or one of the event functions. An unknown name fails the cold start, naming it.
pub async fn run_function(name: &str) -> Result<(), lambda_http::Error> {
    let _ = FUNCTION.set(name.to_owned());
    match name {
        "ws-post-connect" => run_event(handlers::ws_post_connect).await,
        "ws-keepalive" => run_event(|state, _: Value| handlers::ws_keepalive(state)).await,
        "admin-bootstrap" => run_admin_event(handlers::admin_bootstrap).await,
        _ => {
            let route = routes::routes_of(name).next().ok_or_else(|| {
                init_tracing();
                tracing::error!(function = name, "cold start failed: no such function");
                format!("no function named {name:?} (the Handler of the function's template entry)")
            })?;
            // Every route of a function shares its handler (`admin-user-list` serves two paths).
            let handler: Handler = route.handler;
            let serve_route = move |state, req| handler(state, req);
            if routes::is_admin(route) {
                run_admin(serve_route).await
            } else {
                run(serve_route).await
            }
        }
    }
}
/// The function this process serves, named in every request's log span.
static FUNCTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn function_name() -> &'static str {
    FUNCTION.get().map_or("", String::as_str)
}

/// The state of a cold start; a missing variable fails here, naming it.
async fn cold_start(admin: bool) -> Result<Arc<AppState>, lambda_http::Error> {
    init_tracing();
    let state = AppState::from_env(admin).await;
    Ok(Arc::new(state.inspect_err(|e| tracing::error!("cold start failed: {e}"))?))
}

/// Builds the state once per cold start and serves every invocation with `handler`.
async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    serve(cold_start(false).await?, handler).await
}

/// [`run`] for the admin API's functions, whose state includes the admin settings.
async fn run_admin<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    serve(cold_start(true).await?, handler).await
}

async fn serve<F, Fut>(state: Arc<AppState>, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(service_fn(|req: Request| {
        // Inside the runtime's span (its `requestId`): every line of the request names its route
        // and, once authenticated, its user.
        let span = tracing::info_span!(
            "request",
            function = function_name(),
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
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        Some(RequestContext::WebSocket(ctx)) => ctx.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Like [`run`] for a function invoked with a plain event (asynchronous invoke, schedule) rather
/// than an API Gateway request. A failure is logged and reported to Lambda.
async fn run_event<E, O, F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<O>> + Send,
{
    serve_events(cold_start(false).await?, handler).await
}

/// [`run_event`] with the admin settings in the state.
async fn run_admin_event<E, O, F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<O>> + Send,
{
    serve_events(cold_start(true).await?, handler).await
}

async fn serve_events<E, O, F, Fut>(state: Arc<AppState>, handler: F) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<O>> + Send,
{
    lambda_http::lambda_runtime::run(service_fn(|event: LambdaEvent<E>| {
        let span = tracing::info_span!("request", function = function_name());
        let done = handler(state.clone(), event.payload).instrument(span);
        async move {
            done.await.map_err(|e| {
                tracing::error!(error = %e, "invocation failed");
                lambda_http::Error::from(e.to_string())
            })
        }
    }))
    .await
}

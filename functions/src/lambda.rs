//! The Lambda entry point every binary calls.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use chat_shared::state::init_tracing;
use chat_shared::AppResult;
use chat_shared::AppState;
use lambda_http::{service_fn, Body, LambdaEvent, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The state of a cold start; a missing variable fails here, naming it.
async fn cold_start(admin: bool) -> Result<Arc<AppState>, lambda_http::Error> {
    init_tracing();
    let state = if admin { AppState::from_env_admin().await } else { AppState::from_env().await };
    Ok(Arc::new(state.inspect_err(|e| tracing::error!("cold start failed: {e}"))?))
}

/// Builds the state once per cold start and serves every invocation with `handler`.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    serve(cold_start(false).await?, handler).await
}

/// [`run`] for the admin API's functions, whose state includes the admin settings.
pub async fn run_admin<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
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
    lambda_http::run(service_fn(|req| {
        let response = handler(state.clone(), req);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
}

/// Like [`run`] for a function invoked with a plain event (asynchronous invoke, schedule) rather
/// than an API Gateway request. A failure is logged and reported to Lambda.
pub async fn run_event<E, O, F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<O>> + Send,
{
    serve_events(cold_start(false).await?, handler).await
}

/// [`run_event`] with the admin settings in the state.
pub async fn run_admin_event<E, O, F, Fut>(handler: F) -> Result<(), lambda_http::Error>
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
        let done = handler(state.clone(), event.payload);
        async move {
            done.await.map_err(|e| {
                tracing::error!(error = %e, "invocation failed");
                lambda_http::Error::from(e.to_string())
            })
        }
    }))
    .await
}

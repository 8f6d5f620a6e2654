//! The Lambda entry point every binary calls.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use chat_shared::state::init_tracing;
use chat_shared::AppResult;
use chat_shared::AppState;
use lambda_http::{service_fn, Body, LambdaEvent, Request, Response};
use serde::de::DeserializeOwned;

/// Builds the state once per cold start (a missing variable fails here, naming it) and serves
/// every invocation with `handler`.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<AppState>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    init_tracing();
    let state = Arc::new(AppState::from_env().await.inspect_err(|e| tracing::error!("cold start failed: {e}"))?);
    lambda_http::run(service_fn(|req| {
        let response = handler(state.clone(), req);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
}

/// Like [`run`] for a function invoked with a plain event (asynchronous invoke, schedule) rather
/// than an API Gateway request. A failure is logged and reported to Lambda.
pub async fn run_event<E, F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    E: DeserializeOwned + Send + 'static,
    F: Fn(Arc<AppState>, E) -> Fut,
    Fut: Future<Output = AppResult<()>> + Send,
{
    init_tracing();
    let state = Arc::new(AppState::from_env().await.inspect_err(|e| tracing::error!("cold start failed: {e}"))?);
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

//! The Lambda entry point every binary calls.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use chat_shared::state::init_tracing;
use chat_shared::AppState;
use lambda_http::{service_fn, Body, Request, Response};

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

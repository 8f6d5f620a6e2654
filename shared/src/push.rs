//! The WebSocket side of API Gateway as ports: the `@connections` management API that posts
//! frames to connections, and the asynchronous step that follows `$connect` (spec 6.3.1).
//! Adapters: the AWS SDK clients (also used by `chat-local`, whose gateway serves the same
//! `@connections` API) and the local gateway's in-process follow-up.

use std::sync::OnceLock;

use crate::error::{AppError, AppResult};
use crate::store::{Connection, ConnectionRegistry};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};

/// Posts in flight at once during a fan-out: enough to hide latency, few enough not to exhaust
/// sockets or the management API's rate limit.
pub const PUSH_CONCURRENCY: usize = 32;

/// What became of one posted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Accepted,
    /// The connection is gone (and is unregistered by [`post_one`]).
    Gone,
    /// The gateway refuses this frame for good (payload too large): posting it again can never
    /// succeed, though the connection may be fine (spec 6.7 poison items).
    Refused,
    /// Anything else (throttling, 5xx, timeout): not delivered this time (spec 6.2 item 4).
    Failed,
}

/// API Gateway's `@connections` API.
#[async_trait]
pub trait ConnectionGateway: Send + Sync {
    /// PostToConnection of one text frame: accepted, gone or refused for good; an error for
    /// anything that may pass another time.
    async fn post(&self, connection_id: &str, frame: &[u8]) -> AppResult<Posted>;
    /// DeleteConnection (a refused connection is closed); a gone connection is not an error.
    async fn close(&self, connection_id: &str) -> AppResult<()>;
}

/// What happens after `$connect` returned (posting inside `$connect` is not allowed).
#[async_trait]
pub trait ConnectFollowUp: Send + Sync {
    async fn after_connect(&self, connection_id: &str, token: Option<&str>) -> AppResult<()>;
}

/// The event the post-connect function receives.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostConnectEvent {
    pub connection_id: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// The management API through the AWS SDK, at the WebSocket API's `https://…/<stage>` endpoint.
/// The client is built on first use: most functions never push, and building an SDK client
/// (its TLS trust store) is a measurable part of a cold start.
pub struct ManagementApi {
    shared: SdkConfig,
    endpoint: String,
    client: OnceLock<aws_sdk_apigatewaymanagement::Client>,
}

impl ManagementApi {
    pub fn new(shared: &SdkConfig, endpoint: &str) -> Self {
        ManagementApi { shared: shared.clone(), endpoint: endpoint.to_owned(), client: OnceLock::new() }
    }

    fn client(&self) -> &aws_sdk_apigatewaymanagement::Client {
        self.client.get_or_init(|| {
            let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.shared)
                .endpoint_url(&self.endpoint)
                .timeout_config(crate::store::dynamo::timeouts())
                .build();
            aws_sdk_apigatewaymanagement::Client::from_conf(config)
        })
    }
}

#[async_trait]
impl ConnectionGateway for ManagementApi {
    async fn post(&self, connection_id: &str, frame: &[u8]) -> AppResult<Posted> {
        match self.client().post_to_connection().connection_id(connection_id).data(Blob::new(frame)).send().await {
            Ok(_) => Ok(Posted::Accepted),
            Err(e) if matches!(e.as_service_error(), Some(PostToConnectionError::GoneException(_))) => Ok(Posted::Gone),
            Err(e) if is_permanent_refusal(&e) => Ok(Posted::Refused),
            Err(e) => Err(AppError::internal(format_args!(
                "PostToConnection: {}",
                aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e)
            ))),
        }
    }

    async fn close(&self, connection_id: &str) -> AppResult<()> {
        match self.client().delete_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_gone_exception()) => Ok(()),
            Err(e) => Err(AppError::internal(format_args!(
                "DeleteConnection: {}",
                aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

/// A refusal that no retry can change because of the frame itself: it is too large. (Other
/// refusals, a 400 included, may come from the connection or the gateway and pass later.)
fn is_permanent_refusal(e: &SdkError<PostToConnectionError, HttpResponse>) -> bool {
    matches!(e.as_service_error(), Some(PostToConnectionError::PayloadTooLargeException(_)))
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 413)
}

/// Hands the post-connect step to its own function with an asynchronous (`Event`) invoke; the
/// client is built on first use, as only `ws-connect` invokes.
pub struct InvokePostConnect {
    shared: SdkConfig,
    client: OnceLock<aws_sdk_lambda::Client>,
    function: String,
}

impl InvokePostConnect {
    pub fn new(shared: &SdkConfig, function: impl Into<String>) -> Self {
        InvokePostConnect { shared: shared.clone(), client: OnceLock::new(), function: function.into() }
    }

    fn client(&self) -> &aws_sdk_lambda::Client {
        self.client.get_or_init(|| {
            let mut config =
                aws_sdk_lambda::config::Builder::from(&self.shared).timeout_config(crate::store::dynamo::timeouts());
            if let Some(url) = crate::store::dynamo::endpoint_from_env("LAMBDA") {
                config = config.endpoint_url(url);
            }
            aws_sdk_lambda::Client::from_conf(config.build())
        })
    }
}

#[async_trait]
impl ConnectFollowUp for InvokePostConnect {
    async fn after_connect(&self, connection_id: &str, token: Option<&str>) -> AppResult<()> {
        let event = PostConnectEvent { connection_id: connection_id.to_owned(), token: token.map(str::to_owned) };
        let payload = serde_json::to_vec(&event).map_err(AppError::internal)?;
        self.client()
            .invoke()
            .function_name(&self.function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                AppError::internal(format_args!("Lambda Invoke: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))
            })?;
        Ok(())
    }
}

/// `chat-local`'s gateway runs the post-connect step itself, right after `$connect` returns,
/// as the spec's local gateway does; `$connect` has nothing to hand over.
pub struct LocalGatewayFollowsUp;

#[async_trait]
impl ConnectFollowUp for LocalGatewayFollowsUp {
    async fn after_connect(&self, _connection_id: &str, _token: Option<&str>) -> AppResult<()> {
        Ok(())
    }
}

/// Posts `frame` to each connection, at most [`PUSH_CONCURRENCY`] at a time. A connection the
/// gateway reports gone is removed from the registry; any other failure is logged. Returns, per
/// connection in the given order, what became of the frame.
pub async fn post_to_all(
    registry: &dyn ConnectionRegistry,
    gateway: &dyn ConnectionGateway,
    connections: &[Connection],
    frame: &[u8],
) -> Vec<Posted> {
    // Boxed up front: a closure producing the futures would trip the compiler's higher-ranked
    // lifetime inference inside `async_trait` methods.
    let posts: Vec<BoxFuture<'_, (usize, Posted)>> = connections
        .iter()
        .enumerate()
        .map(|(i, conn)| {
            Box::pin(async move { (i, post_one(registry, gateway, conn, frame).await) }) as BoxFuture<'_, _>
        })
        .collect();
    let results: Vec<(usize, Posted)> = stream::iter(posts).buffer_unordered(PUSH_CONCURRENCY).collect().await;
    let mut posted = vec![Posted::Failed; connections.len()];
    for (i, outcome) in results {
        posted[i] = outcome;
    }
    posted
}

/// Posts one frame; a gone connection is unregistered, a failure logged.
pub async fn post_one(
    registry: &dyn ConnectionRegistry,
    gateway: &dyn ConnectionGateway,
    conn: &Connection,
    frame: &[u8],
) -> Posted {
    match gateway.post(&conn.id, frame).await {
        Ok(Posted::Gone) => {
            if let Err(e) = registry.unregister(&conn.id).await {
                tracing::error!(connection = %conn.id, error = %e, "could not unregister a gone connection");
            }
            Posted::Gone
        }
        Ok(posted) => posted,
        Err(e) => {
            tracing::error!(connection = %conn.id, user_id = conn.user_id, error = %e, "post to a connection failed");
            Posted::Failed
        }
    }
}

//! Route handlers: parse → domain service → envelope. Each takes the API Gateway request and the
//! state built once per cold start; the Lambdas and `chat-local` call the very same functions.

use std::sync::Arc;

use chat_shared::auth::{self, Caller};
use chat_shared::validate::Params;
use chat_shared::web::{chat_token, params, raw_path, respond};
use chat_shared::{AppError, AppResult, AppState};
use lambda_http::{Body, Request, Response};

pub mod admin;
pub mod friends;
pub mod groups;
pub mod identity;
pub mod messaging;
pub mod profile;
pub mod websocket;

pub use admin::*;
pub use friends::*;
pub use groups::*;
pub use identity::*;
pub use messaging::*;
pub use profile::*;
pub use websocket::*;

/// Parses the request and runs `chatUserAuth` (spec 2.2) for a `/api/chat/*` route.
pub async fn authenticate(state: &AppState, req: &Request) -> AppResult<(Caller, Params)> {
    let params = params(req)?;
    let token = chat_token(req, &params);
    let caller = auth::chat_user_auth(state, token.as_deref(), req.method().as_str(), raw_path(req)).await?;
    Ok((caller, params))
}

/// `$default` route: `OPTIONS` preflight on any path, else 404 — after authentication under
/// `/api/chat`, so an unauthenticated or visitor caller gets the auth failure first (spec 1.3).
pub async fn not_found(state: Arc<AppState>, req: Request) -> Response<Body> {
    if req.method() == lambda_http::http::Method::OPTIONS {
        return chat_shared::web::preflight();
    }
    respond(
        async {
            if auth::is_chat_path(raw_path(&req)) {
                authenticate(&state, &req).await?;
            }
            Err(AppError::NotFound)
        }
        .await,
    )
}

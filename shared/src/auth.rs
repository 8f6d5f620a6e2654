//! `chatUserAuth` (spec 2.2, 2.3): the one authentication check every `/api/chat/*` handler calls,
//! and its WebSocket counterpart (spec 6.3.1).

use subtle::ConstantTimeEq;

use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
pub use crate::jwt::token_digest;
use crate::jwt::{self, Claims, TokenRejection};
use crate::model::{Role, User};
use crate::state::AppState;

/// The authenticated caller of a chat route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The freshly loaded user row ("me").
    pub user: User,
    /// The token's claims ("token user").
    pub claims: Claims,
}

/// Routes a visitor-role token may call: `(method, path prefix)` (spec 2.3, final 19 entries).
const VISITOR_WHITELIST: [(&str, &str); 19] = [
    ("POST", "/api/chat/socket/sendmessage"),
    ("POST", "/api/chat/chatGetmessageOffLine"),
    ("GET", "/api/chat/grouplist"),
    ("GET", "/api/chat/groupinfo"),
    ("POST", "/api/chat/groupnickname"),
    ("POST", "/api/chat/groupDeleteOrQuit"),
    ("GET", "/api/chat/groupQrcode"),
    ("POST", "/api/chat/uploadStreamSingleToServerDiy"),
    ("POST", "/api/chat/uploadAliyun"),
    ("POST", "/api/chat/getVideoScreenshot"),
    ("POST", "/api/chat/revokeMessage"),
    ("POST", "/api/chat/updateUserinfo"),
    ("POST", "/api/chat/groupInviteUser"),
    ("POST", "/api/chat/getUserSetInfo"),
    ("POST", "/api/chat/applyfriend"),
    ("POST", "/api/chat/autoAddFriendAndAgree"),
    ("POST", "/api/chat/ismygoodfriend"),
    ("POST", "/api/chat/userset"),
    ("POST", "/api/chat/deletegoodfriend"),
];

/// Whether `path` is under `/api/chat` (segment boundary: `/api/chatX` is not).
pub fn is_chat_path(path: &str) -> bool {
    path == "/api/chat" || path.starts_with("/api/chat/")
}

pub fn visitor_may_call(method: &str, path: &str) -> bool {
    VISITOR_WHITELIST.iter().any(|(m, prefix)| *m == method && path.starts_with(prefix))
}

/// Checks a chat token in the spec's order; the first failure ends the request.
pub async fn chat_user_auth(state: &AppState, token: Option<&str>, method: &str, path: &str) -> AppResult<Caller> {
    let token = token.ok_or(AppError::Fail("您没有权限访问即时通讯接口"))?;
    let claims = jwt::verify(&state.config.jwt_secret, token, now_secs()).map_err(|r| match r {
        TokenRejection::Expired => AppError::Fail("Token已过期！请重新获取令牌"),
        TokenRejection::Invalid => AppError::Fail("Token 令牌不合法！"),
    })?;
    // Both reads at once (one round trip of latency, not two); checked in the spec's order.
    let (current, user) = tokio::join!(state.sessions.token(claims.id), state.users.get(claims.id));
    if !current?.is_some_and(|c| bool::from(c.as_bytes().ct_eq(token.as_bytes()))) {
        return Err(AppError::Fail("Token 令牌不合法！"));
    }
    let user = match user? {
        Some(user) if user.is_active() => user,
        _ => return Err(AppError::Fail("当前用户不存在或者已被禁用")),
    };
    // The request's log lines name their user from here on (the Lambda's request span).
    tracing::Span::current().record("user_id", user.id);
    if claims.role == Role::Visitor && !visitor_may_call(method, path) {
        return Err(AppError::Fail("您没有权限访问，请先注册或登录"));
    }
    Ok(Caller { user, claims })
}

/// Why a WebSocket connect is refused (spec 6.3.1); the text is the refusal frame's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

/// The WebSocket connect check (spec 6.3.1, DEVIATION D9: the Redis token is checked too).
/// `Err(Ok(refusal))` refuses the connection; `Err(Err(_))` is a store failure.
pub async fn websocket_auth(state: &AppState, token: Option<&str>) -> Result<Caller, Result<Refusal, AppError>> {
    let token = token.filter(|t| !t.is_empty()).ok_or(Ok(Refusal("缺少 token 参数")))?;
    let claims = jwt::verify(&state.config.jwt_secret, token, now_secs()).map_err(|r| match r {
        TokenRejection::Expired => Ok(Refusal("token 已过期")),
        TokenRejection::Invalid => Ok(Refusal("Token 不合法")),
    })?;
    let (current, user) = tokio::join!(state.sessions.token(claims.id), state.users.get(claims.id));
    if !current.map_err(Err)?.is_some_and(|c| bool::from(c.as_bytes().ct_eq(token.as_bytes()))) {
        return Err(Ok(Refusal("Token 不合法")));
    }
    match user.map_err(Err)? {
        None => Err(Ok(Refusal("用户不存在"))),
        Some(user) if !user.is_active() => Err(Ok(Refusal("你已被管理员禁用"))),
        Some(user) => Ok(Caller { user, claims }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_is_a_method_and_prefix_match() {
        assert!(visitor_may_call("POST", "/api/chat/socket/sendmessage"));
        assert!(visitor_may_call("GET", "/api/chat/grouplist/1"));
        assert!(!visitor_may_call("POST", "/api/chat/grouplist/1"));
        assert!(!visitor_may_call("POST", "/api/chat/logout"));
        assert!(!visitor_may_call("POST", "/api/chat/searchUser"));
        assert!(is_chat_path("/api/chat") && is_chat_path("/api/chat/x") && !is_chat_path("/api/chatX"));
    }
}

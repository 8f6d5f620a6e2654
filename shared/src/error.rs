//! The one error type of the backend and its mapping to the `{msg, data}` envelope (spec 1.3).

use serde_json::{json, Value};

/// Everything a request can end with other than success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A business failure: 400 with the spec's message verbatim.
    #[error("{0}")]
    Fail(&'static str),
    /// A parameter validation failure: 422 with the first message (spec 1.4).
    #[error("{0}")]
    Validation(String),
    /// Admin authentication missing or invalid: 401.
    #[error("请先登录！")]
    Unauthorized,
    /// No route for the method and path: 404.
    #[error("404 错误")]
    NotFound,
    /// Body over 100 KB: 413.
    #[error("request entity too large")]
    PayloadTooLarge,
    /// Malformed JSON body: 400.
    #[error("invalid JSON, only supports object and array")]
    BadJson,
    /// Missing or invalid configuration: fails the cold start, never a request.
    #[error("configuration: {0}")]
    Config(String),
    /// A genuine fault (storage unavailable, ...): 500. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Wraps an infrastructure failure; the cause is kept for the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    /// HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Fail(_) | AppError::BadJson => 400,
            AppError::Validation(_) => 422,
            AppError::Unauthorized => 401,
            AppError::NotFound => 404,
            AppError::PayloadTooLarge => 413,
            AppError::Internal(_) | AppError::Config(_) => 500,
        }
    }

    /// The string sent as `data`; internal details never leave the process.
    pub fn client_message(&self) -> String {
        match self {
            AppError::Internal(_) | AppError::Config(_) => "Internal Server Error".to_owned(),
            other => other.to_string(),
        }
    }
}

/// `Ok` → `(200, {"msg":"ok","data":…})`; `Err` → the failure envelope and status.
/// Internal errors are logged here, once, with their cause.
pub fn envelope(result: Result<Value, AppError>) -> (u16, Value) {
    match result {
        Ok(data) => (200, json!({ "msg": "ok", "data": data })),
        Err(err) => {
            if let AppError::Internal(cause) = &err {
                tracing::error!(%cause, "request failed with an internal error");
            }
            (err.status(), json!({ "msg": "fail", "data": err.client_message() }))
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let (status, body) = envelope(Err(AppError::internal("redis: connection refused at 10.0.0.1")));
        assert_eq!(status, 500);
        assert_eq!(body, json!({"msg":"fail","data":"Internal Server Error"}));
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(envelope(Err(AppError::Fail("账户或密码错误"))).0, 400);
        assert_eq!(envelope(Err(AppError::Validation("账号不能为空".into()))).0, 422);
        assert_eq!(envelope(Err(AppError::NotFound)).1["data"], "404 错误");
        assert_eq!(envelope(Err(AppError::PayloadTooLarge)).0, 413);
        assert_eq!(envelope(Ok(json!(true))).1, json!({"msg":"ok","data":true}));
    }
}

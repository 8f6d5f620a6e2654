//! Identity endpoints (spec 2, 3.1).

use std::sync::Arc;

use chat_shared::model::DeviceStats;
use chat_shared::service::identity;
use chat_shared::validate::Params;
use chat_shared::web::{header_value, params, respond};
use chat_shared::{AppError, AppResult, AppState};
use lambda_http::{Body, Request, Response};

use super::authenticate;

/// `账号` 4–20 and `密码` 6–20, in that order (spec 2.7).
fn credentials(p: &Params) -> AppResult<(String, String)> {
    let username = p.string("username", "账号").len(4, 20).required()?;
    let password = p.string("password", "密码").len(6, 20).required()?;
    Ok((username, password))
}

/// The visitor endpoints' `X-Security-Sign`: missing → `非法访问`, before validation (spec 2.5).
fn security_sign(req: &Request) -> AppResult<String> {
    header_value(req, "x-security-sign").map(str::to_owned).ok_or(AppError::Fail("非法访问"))
}

fn device(p: &Params) -> AppResult<(String, i64)> {
    let device_id = p.string("deviceId", "设备指纹").len(36, 200).required()?;
    let timestamp = p.int("timestamp", "时间戳").required()?;
    Ok((device_id, timestamp))
}

/// POST /api/regChat — register a user and log in.
pub async fn reg_chat(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (username, password) = credentials(&params(&req)?)?;
            identity::register(&state, &username, &password).await
        }
        .await,
    )
}

/// POST /api/loginChat — log in with username and password.
pub async fn login_chat(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (username, password) = credentials(&params(&req)?)?;
            identity::login(&state, &username, &password).await
        }
        .await,
    )
}

/// POST /api/chat/logout — end the current session.
pub async fn logout(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, _) = authenticate(&state, &req).await?;
            identity::logout(&state, &me).await
        }
        .await,
    )
}

/// POST /api/visitorRegister — give the device a visitor identity and log it in.
pub async fn visitor_register(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let p = params(&req)?;
            let sign = security_sign(&req)?;
            let (device_id, timestamp) = device(&p)?;
            let stats = DeviceStats {
                uniplatform: p.string("uniplatform", "平台类型").len(2, 50).or_default(""),
                devicemodel: p.string("devicemodel", "设备型号").len(1, 50).or_default(""),
                deviceos: p.string("deviceos", "操作系统").len(1, 50).or_default(""),
                devicebrand: p.string("devicebrand", "设备品牌").len(1, 50).or_default(""),
            };
            identity::check_visitor_request(&state, &sign, &device_id, timestamp).await?;
            identity::visitor_register(&state, &device_id, stats).await
        }
        .await,
    )
}

/// The checks shared by the two credential-carrying visitor routes (spec 2.11, 2.12): header,
/// validation of `账号, 密码, 设备指纹, 时间戳` in that order, signature, time window, device, rate limit.
/// Returns `(username, password, deviceId)`.
async fn signed_credentials(state: &AppState, req: &Request) -> AppResult<(String, String, String)> {
    let p = params(req)?;
    let sign = security_sign(req)?;
    let (username, password) = credentials(&p)?;
    let (device_id, timestamp) = device(&p)?;
    identity::check_visitor_request(state, &sign, &device_id, timestamp).await?;
    Ok((username, password, device_id))
}

/// POST /api/visitorregChat — a visitor registers (upgrades in place) and logs in.
pub async fn visitor_reg_chat(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (username, password, device_id) = signed_credentials(&state, &req).await?;
            identity::visitor_register_account(&state, &username, &password, &device_id).await
        }
        .await,
    )
}

/// POST /api/visitorloginChat — log in with username and password from a visitor device.
pub async fn visitor_login_chat(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (username, password, _device_id) = signed_credentials(&state, &req).await?;
            identity::login(&state, &username, &password).await
        }
        .await,
    )
}

/// GET /api/userinfo/{uuid} — public profile; a token, if sent, is ignored.
pub async fn user_info(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let uuid = params(&req)?.string("uuid", "uuid值").len(36, 36).required()?;
            identity::public_profile(&state, &uuid).await
        }
        .await,
    )
}

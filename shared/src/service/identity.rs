//! Identity and visitors (spec 2): registration, logins, logout, visitor devices, public profile.
//! Knows the store ports only, nothing of AWS or Lambda.

use rand::Rng;
use serde_json::Value;

use crate::auth::Caller;
use crate::clock::{now_ms, now_secs};
use crate::error::{AppError, AppResult};
use crate::jwt;
use crate::model::{username_key, DeviceStats, NewUser, Role, User};
use crate::password::{self, Verified};
use crate::signing;
use crate::state::AppState;
use crate::store::{Created, DeviceBinding, LoginUpdate, Upgraded};

/// Visitor endpoints: requests per device per window (spec 1.8 #1).
pub const VISITOR_LIMIT: u64 = 5;
pub const VISITOR_WINDOW_SECS: u64 = 3600;
/// Password logins: failures per username per window (spec 1.8 #2).
pub const LOGIN_FAILURE_LIMIT: u64 = 5;
pub const LOGIN_FAILURE_WINDOW_SECS: u64 = 900;
/// Attempts at a free `VIS…` username before giving up (spec 2.10).
const VISITOR_NAME_ATTEMPTS: usize = 5;
/// Re-reads of a device binding that a concurrent registration changed under us.
const DEVICE_RESOLVE_ATTEMPTS: usize = 5;

const USERNAME_TAKEN: AppError = AppError::Fail("该账号已存在，请换一个账号注册");
const NO_SUCH_ACCOUNT: AppError = AppError::Fail("账号不存在或者被禁用");

/// The fixed-window counter of failed password logins of one username (spec 1.8 #2); admins
/// have a namespace of their own.
pub(crate) struct LoginFailures(String);

impl LoginFailures {
    pub(crate) fn chat(username: &str) -> Self {
        LoginFailures(format!("login_fail:{}", username_key(username)))
    }

    pub(crate) fn admin(username: &str) -> Self {
        LoginFailures(format!("admin_login_fail:{}", username_key(username)))
    }

    /// Counts this attempt and refuses it once the window holds more than the limit. Counting
    /// first, in one atomic step, is what bounds parallel guesses: of any number of attempts in
    /// flight at most [`LOGIN_FAILURE_LIMIT`] get to check a password. A success clears the count,
    /// so only failed attempts stay counted.
    pub(crate) async fn attempt(&self, state: &AppState) -> AppResult<()> {
        if state.sessions.hit(&self.0, LOGIN_FAILURE_WINDOW_SECS).await? > LOGIN_FAILURE_LIMIT {
            return Err(AppError::Fail("登录失败次数过多，请15分钟后再试"));
        }
        Ok(())
    }

    pub(crate) async fn clear(&self, state: &AppState) -> AppResult<()> {
        state.sessions.reset(&self.0).await
    }
}

/// compareData steps 5–6: issue a token, make it current, answer LoginUser (with the user's
/// settings, `userset`).
async fn issue_token(state: &AppState, user: &User, userset: &str) -> AppResult<Value> {
    let token = jwt::issue(
        &state.config.jwt_secret,
        user.id,
        &user.username,
        user.role,
        now_secs(),
        state.config.token_ttl_seconds,
    );
    if let Err(err) = state.sessions.set_token(user.id, &token, state.config.token_ttl_seconds).await {
        tracing::error!(user_id = user.id, error = %err, "storing the chat token failed");
        return Err(AppError::Fail("登录失败"));
    }
    Ok(user.login_json(userset, &token))
}

/// compareData with a password (spec 2.6 steps 1–6).
pub async fn login(state: &AppState, username: &str, password: &str) -> AppResult<Value> {
    let failures = LoginFailures::chat(username);
    failures.attempt(state).await?;
    let user = match state.users.find_by_username(username).await? {
        Some(user) if user.is_active() => user,
        _ => return Err(NO_SUCH_ACCOUNT),
    };
    let private = state.users.private(user.id).await?.unwrap_or_default();
    let rehash = match password::verify(password, &private.password).await? {
        Verified::No => return Err(AppError::Fail("账户或密码错误")),
        Verified::Yes => None,
        Verified::YesLegacy => Some(password::hash(password).await?),
    };
    let now = now_secs();
    state.users.record_login(user.id, now, LoginUpdate { rehash, stats: None }).await?;
    let mut user = user;
    user.last_login = Some(now);
    user.updated_at = now;
    let response = issue_token(state, &user, &private.userset).await?;
    failures.clear(state).await?;
    Ok(response)
}

/// `POST /api/regChat` (spec 2.7).
pub async fn register(state: &AppState, username: &str, password: &str) -> AppResult<Value> {
    if state.users.find_by_username(username).await?.is_some() {
        return Err(USERNAME_TAKEN);
    }
    let new_user = NewUser {
        username: username.to_owned(),
        password: password::hash(password).await?,
        role: Role::User,
        avatar: state.config.default_user_avatar(),
        devicefingeruuid: String::new(),
        stats: DeviceStats::default(),
        now: now_secs(),
        logged_in: true,
    };
    match state.users.create(new_user, None).await? {
        Created::Created(user) => issue_token(state, &user, "").await,
        Created::UsernameTaken | Created::DeviceRebound => Err(USERNAME_TAKEN),
    }
}

/// `POST /api/chat/logout` (spec 2.9).
pub async fn logout(state: &AppState, me: &Caller) -> AppResult<Value> {
    state.sessions.delete_token(me.user.id).await?;
    Ok(Value::Bool(true))
}

/// Spec 2.5 steps 3–6 for the visitor endpoints: signature, time window, device id, rate limit.
pub async fn check_visitor_request(state: &AppState, sign: &str, device_id: &str, timestamp: i64) -> AppResult<()> {
    signing::check_visitor_request(sign, device_id, timestamp, &state.config.visitor_salt, now_ms())?;
    let hits = state.sessions.hit(&format!("chat_visitor_reg:{device_id}"), VISITOR_WINDOW_SECS).await?;
    if hits > VISITOR_LIMIT {
        return Err(AppError::Fail("请求过于频繁，请1个小时后再试"));
    }
    Ok(())
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// `VIS` + the device id's first 8 characters, then with 4 random digits on collision.
fn visitor_names(device_id: &str) -> impl Iterator<Item = String> + '_ {
    let base = format!("VIS{}", device_id.chars().take(8).collect::<String>());
    std::iter::once(base.clone()).chain((0..VISITOR_NAME_ATTEMPTS).map(move |_| format!("{base}{}", random_digits(4))))
}

/// `POST /api/visitorRegister` account resolution (spec 2.10), after the request checks.
pub async fn visitor_register(state: &AppState, device_id: &str, stats: DeviceStats) -> AppResult<Value> {
    for _ in 0..DEVICE_RESOLVE_ATTEMPTS {
        let bound = state.users.find_by_device(device_id).await?;
        match bound {
            Some(user) if user.role == Role::Visitor => {
                if !user.is_active() {
                    return Err(NO_SUCH_ACCOUNT);
                }
                let now = now_secs();
                state
                    .users
                    .record_login(user.id, now, LoginUpdate { rehash: None, stats: Some(stats.clone()) })
                    .await?;
                let userset = state.users.private(user.id).await?.unwrap_or_default().userset;
                let mut user = user;
                user.last_login = Some(now);
                user.updated_at = now;
                user.stats = stats;
                return issue_token(state, &user, &userset).await;
            }
            // Unbound, or bound to an account that has since registered: a device never
            // unlocks a registered account (DEVIATION D4), so it gets a new visitor account.
            other => {
                let replaces = other.map(|u| u.id);
                if let Some(user) = create_visitor(state, device_id, &stats, replaces).await? {
                    return issue_token(state, &user, "").await;
                }
                // A concurrent registration bound the device first: resolve again.
            }
        }
    }
    Err(AppError::internal(format_args!("device binding of {device_id} kept changing")))
}

/// Creates a visitor bound to the device; `None` when the binding changed concurrently.
async fn create_visitor(
    state: &AppState,
    device_id: &str,
    stats: &DeviceStats,
    replaces: Option<i64>,
) -> AppResult<Option<User>> {
    let password = password::hash(&random_digits(6)).await?;
    for username in visitor_names(device_id) {
        let new_user = NewUser {
            username,
            password: password.clone(),
            role: Role::Visitor,
            avatar: state.config.default_user_avatar(),
            devicefingeruuid: device_id.to_owned(),
            stats: stats.clone(),
            now: now_secs(),
            logged_in: true,
        };
        let binding = DeviceBinding { device_id: device_id.to_owned(), replaces };
        match state.users.create(new_user, Some(binding)).await? {
            Created::Created(user) => return Ok(Some(*user)),
            Created::DeviceRebound => return Ok(None),
            Created::UsernameTaken => continue,
        }
    }
    Err(AppError::internal(format_args!("no free visitor username for device {device_id}")))
}

/// `POST /api/visitorregChat` account resolution (spec 2.11), after the request checks.
pub async fn visitor_register_account(
    state: &AppState,
    username: &str,
    password: &str,
    device_id: &str,
) -> AppResult<Value> {
    if state.users.find_by_username(username).await?.is_some() {
        return Err(USERNAME_TAKEN);
    }
    let hash = password::hash(password).await?;
    let now = now_secs();
    match state.users.find_by_device(device_id).await? {
        Some(visitor) if visitor.role == Role::Visitor => {
            if !visitor.is_active() {
                return Err(NO_SUCH_ACCOUNT);
            }
            match state.users.upgrade_visitor(&visitor, username, &hash, now).await? {
                Upgraded::Upgraded(user) => {
                    // A visitor's settings stay with the account it becomes.
                    let userset = state.users.private(user.id).await?.unwrap_or_default().userset;
                    issue_token(state, &user, &userset).await
                }
                Upgraded::UsernameTaken => Err(USERNAME_TAKEN),
                Upgraded::NotAnActiveVisitor => Err(NO_SUCH_ACCOUNT),
            }
        }
        // Never overwrite a registered account's credentials (DEVIATION D4): a new account.
        _ => {
            let new_user = NewUser {
                username: username.to_owned(),
                password: hash,
                role: Role::User,
                avatar: state.config.default_user_avatar(),
                devicefingeruuid: String::new(),
                stats: DeviceStats::default(),
                now,
                logged_in: true,
            };
            match state.users.create(new_user, None).await? {
                Created::Created(user) => issue_token(state, &user, "").await,
                Created::UsernameTaken | Created::DeviceRebound => Err(USERNAME_TAKEN),
            }
        }
    }
}

/// `GET /api/userinfo/:uuid` (spec 3.1): `null` when unknown or disabled.
pub async fn public_profile(state: &AppState, uuid: &str) -> AppResult<Value> {
    Ok(match state.users.find_by_uuid(uuid).await? {
        Some(user) if user.is_active() => {
            user.public_json(&state.users.private(user.id).await?.unwrap_or_default().userset)
        }
        _ => Value::Null,
    })
}

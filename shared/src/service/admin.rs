//! Chat-user management (spec 7): admin login and token check, the user list, create, edit,
//! update, delete and the status toggle, and the bootstrap of the first manager.
//! Knows the store ports only, nothing of AWS or Lambda.

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::identity::LoginFailures;
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::jwt;
use crate::manager::{Manager, NewManager};
use crate::model::{DeviceStats, NewUser, Role};
use crate::password::{self, Verified};
use crate::state::AppState;
use crate::store::{AdminEdit, Created, Edited};

const NO_SUCH_USER: AppError = AppError::Fail("该即时通讯用户不存在");

/// Redis key of a manager's current admin token (single session, spec 7.1).
pub fn admin_token_key(manager_id: i64) -> String {
    format!("admin_token_{manager_id}")
}

/// `POST /admin/loginevent` (spec 7.1).
pub async fn login(state: &AppState, username: &str, password: &str) -> AppResult<Value> {
    let (config, managers) = state.admin()?;
    let failures = LoginFailures::admin(username);
    failures.attempt(state).await?;
    let Some(manager) = managers.find_by_username(username).await? else {
        return Err(AppError::Fail("该管理员不存在或者被禁用了"));
    };
    let mut manager = manager;
    match password::verify(password, &manager.password).await? {
        Verified::No => return Err(AppError::Fail("密码错误")),
        Verified::Yes => {}
        Verified::YesLegacy => {
            let now = now_secs();
            manager.password = password::hash(password).await?;
            manager.updated_at = now;
            managers.set_password(manager.id, &manager.password, now).await?;
        }
    }
    let token =
        jwt::issue_admin(&config.jwt_secret, manager.id, &manager.username, now_secs(), config.token_ttl_seconds);
    state.sessions.set_value(&admin_token_key(manager.id), &token, config.token_ttl_seconds).await?;
    failures.clear(state).await?;
    Ok(json!({ "token": token, "manager": manager.to_json() }))
}

/// The admin token check of every other `/admin` route (spec 7.1 "Using the token"): any failure
/// is the same 401.
pub async fn authenticate(state: &AppState, token: Option<&str>) -> AppResult<Manager> {
    let (config, managers) = state.admin()?;
    let token = token.ok_or(AppError::Unauthorized)?;
    let claims = jwt::verify_admin(&config.jwt_secret, token, now_secs()).map_err(|_| AppError::Unauthorized)?;
    let current = state.sessions.value(&admin_token_key(claims.id)).await?;
    if !current.is_some_and(|c| bool::from(c.as_bytes().ct_eq(token.as_bytes()))) {
        return Err(AppError::Unauthorized);
    }
    managers.get(claims.id).await?.ok_or(AppError::Unauthorized)
}

/// `POST /admin/logout`.
pub async fn logout(state: &AppState, manager: &Manager) -> AppResult<Value> {
    state.sessions.reset(&admin_token_key(manager.id)).await?;
    Ok(json!("ok"))
}

/// `GET /admin/chatuser` (spec 7.2); `keyword` (an extension of ours) keeps the users whose
/// username contains it, case-insensitively.
pub async fn list(state: &AppState, page: i64, limit: i64, keyword: Option<&str>) -> AppResult<Value> {
    let keyword = keyword.map(str::to_ascii_lowercase);
    let offset = crate::validate::page_offset(page, limit);
    let found = state.users.list(keyword.as_deref(), offset, limit as usize).await?;
    let total_page = found.count.div_ceil(limit as u64);
    let ids: Vec<i64> = found.rows.iter().map(|u| u.id).collect();
    let mut private = state.users.private_many(&ids).await?;
    let rows: Vec<Value> =
        found.rows.iter().map(|u| u.row_json(&private.remove(&u.id).unwrap_or_default().userset)).collect();
    Ok(json!({ "count": found.count, "page": page, "limit": limit, "totalPage": total_page, "rows": rows }))
}

fn form_fields(account: &str, password: &str) -> Value {
    json!([
        {"label": account, "type": "text", "name": "username", "placeholder": format!("请输入{account}")},
        {"label": password, "type": "password", "name": "password", "placeholder": format!("请输入{password}")},
        {"label": "即时通讯用户头像", "type": "file", "name": "avatar"},
    ])
}

/// `GET /admin/chatuser/create` (spec 7.3).
pub fn create_form() -> Value {
    json!({
        "title": "创建即时通讯用户",
        "action": "/admin/chatuser/save",
        "fields": form_fields("即时通讯用户登录账号", "即时通讯用户登录密码"),
        "successUrl": "/admin/chatuser",
    })
}

/// `POST /admin/chatuser/save` (spec 7.4).
pub async fn save(state: &AppState, username: &str, password: &str, avatar: Option<String>) -> AppResult<Value> {
    const TAKEN: AppError = AppError::Fail("即时通讯用户账号已存在");
    if state.users.find_by_username(username).await?.is_some() {
        return Err(TAKEN);
    }
    let new_user = NewUser {
        username: username.to_owned(),
        password: password::hash(password).await?,
        role: Role::User,
        avatar: avatar.unwrap_or_else(|| state.config.default_user_avatar()),
        devicefingeruuid: String::new(),
        stats: DeviceStats::default(),
        now: now_secs(),
        logged_in: false,
    };
    match state.users.create(new_user, None).await? {
        Created::Created(_) => Ok(json!("创建成功")),
        Created::UsernameTaken | Created::DeviceRebound => Err(TAKEN),
    }
}

/// `GET /admin/chatuser/edit/:id` (spec 7.5).
pub async fn edit_form(state: &AppState, id: i64) -> AppResult<Value> {
    let (user, private) = tokio::try_join!(state.users.get(id), state.users.private(id))?;
    let user = user.ok_or(NO_SUCH_USER)?;
    Ok(json!({
        "id": id,
        "title": "修改即时通讯用户",
        "action": format!("/admin/chatuser/update/{id}"),
        "fields": form_fields("即时通讯用户账号", "即时通讯用户密码"),
        "data": user.row_json(&private.unwrap_or_default().userset),
        "successUrl": "/admin/chatuser",
    }))
}

/// `POST /admin/chatuser/update/:id` (spec 7.6): username always, password and avatar when given;
/// a new password also ends the user's session.
pub async fn update(
    state: &AppState,
    id: i64,
    username: &str,
    password: Option<&str>,
    avatar: Option<String>,
) -> AppResult<Value> {
    const GONE: AppError = AppError::Fail("该即时通讯用户记录不存在");
    const TAKEN: AppError = AppError::Fail("该即时通讯用户账号已经存在，不能修改成该即时通讯用户账号");
    let user = state.users.get(id).await?.ok_or(GONE)?;
    if state.users.find_by_username(username).await?.is_some_and(|other| other.id != id) {
        return Err(TAKEN);
    }
    let password = match password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };
    let resets_password = password.is_some();
    let edit = AdminEdit { username: username.to_owned(), password, avatar };
    match state.users.admin_update(&user, edit, now_secs()).await? {
        Edited::Updated => {
            if resets_password {
                state.sessions.delete_token(id).await?;
            }
            Ok(json!("修改成功"))
        }
        Edited::NotFound => Err(GONE),
        Edited::UsernameTaken => Err(TAKEN),
    }
}

/// `POST /admin/chatuser/delete/:id` (spec 7.7). The user is disabled and signed out first, so it
/// can do nothing while the rows that name it go; the user row itself goes last, so a delete that
/// failed half-way is finished by repeating it.
pub async fn delete(state: &AppState, id: i64) -> AppResult<Value> {
    let user = state.users.get(id).await?.ok_or(NO_SUCH_USER)?;
    if user.is_active() {
        state.users.set_status(&user, 0, now_secs()).await?;
    }
    state.sessions.delete_token(id).await?;
    state.connections.unregister_user(id).await?;
    state.social.purge_user(id).await?;
    for membership in state.groups.memberships_of(id).await? {
        match state.groups.group(membership.group_id).await? {
            // Groups it owns go with all their members, without notices (spec 7.7).
            Some(group) if group.user_id == id => state.groups.dissolve(group.id).await?,
            _ => state.groups.remove_member(membership.group_id, id).await?,
        }
    }
    state.offline.clear(id).await?;
    state.messages.forget_sender(id).await?;
    if !state.users.delete(&user).await? {
        return Err(NO_SUCH_USER);
    }
    Ok(json!("删除成功"))
}

/// `POST /admin/commonUpdateById` (spec 7.8): only `User.status` ∈ {0, 1} may be written
/// (DEVIATION D11). Disabling takes effect at once: every chat request and connect checks it.
pub async fn common_update(state: &AppState, id: i64, keyname: &str, keyvalue: &str, model: &str) -> AppResult<Value> {
    let status = match (model, keyname, keyvalue) {
        ("User", "status", "0") => 0,
        ("User", "status", "1") => 1,
        _ => return Err(AppError::Fail("不允许修改该字段")),
    };
    const GONE: AppError = AppError::Fail("数据不存在");
    let user = state.users.get(id).await?.ok_or(GONE)?;
    if !state.users.set_status(&user, status, now_secs()).await? {
        return Err(GONE);
    }
    Ok(json!("修改成功"))
}

/// Shortest bootstrap password: an admin password guards every account.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = 8;

/// Creates the first manager when none was bootstrapped before (chat-local's start, the
/// `admin-bootstrap` function); `None` when one was. Usernames are 4–20 characters as for chat
/// users; passwords at least [`MIN_ADMIN_PASSWORD_CHARS`].
pub async fn bootstrap(state: &AppState, username: &str, password: &str) -> AppResult<Option<Manager>> {
    let (_, managers) = state.admin()?;
    let name_chars = username.chars().count();
    if !(4..=20).contains(&name_chars) || username.chars().any(char::is_whitespace) {
        return Err(AppError::Config("the admin username must be 4-20 characters without spaces".into()));
    }
    if password.chars().count() < MIN_ADMIN_PASSWORD_CHARS {
        return Err(AppError::Config(format!(
            "the admin password must be at least {MIN_ADMIN_PASSWORD_CHARS} characters"
        )));
    }
    let manager = NewManager {
        username: username.to_owned(),
        password: password::hash(password).await?,
        avatar: state.config.default_user_avatar(),
        now: now_secs(),
    };
    managers.bootstrap(manager).await
}

//! Profile and settings of the caller (spec 3.2, 3.4, 3.5, 3.7).

use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::model::{is_searchable, username_key, Role, UserSummary};
use crate::password::{self, Verified};
use crate::state::AppState;
use crate::store::ProfileChange;
use crate::validate::js_length;

/// Search results per request (DEVIATION D6).
pub const SEARCH_LIMIT: usize = 20;
/// Longest `userset` accepted (DEVIATION D8).
pub const USERSET_MAX_CHARS: i64 = 65_535;
/// Lifetime of the `user:modify:<id>` marker read at WebSocket connect (spec 6.4).
pub const MODIFY_MARKER_TTL_SECS: u64 = 60;

/// `POST /api/chat/searchUser`: registered, enabled users other than me whose username contains
/// the keyword literally, case-insensitively. The substring scan has a fixed budget, so an exact
/// username is also looked up directly: searching someone's full name always finds them.
pub async fn search_users(state: &AppState, me: &Caller, keyword: &str) -> AppResult<Value> {
    let mut hits = state.users.search(&username_key(keyword), me.user.id, SEARCH_LIMIT).await?;
    let exact = state.users.find_by_username(keyword).await?;
    if let Some(user) = exact.filter(|u| is_searchable(u.role, u.status) && u.id != me.user.id) {
        if !hits.iter().any(|h| h.id == user.id) {
            // The exact match always makes the list.
            hits.truncate(SEARCH_LIMIT - 1);
            hits.push(UserSummary::from(&user));
            hits.sort_by_key(|h| h.id);
        }
    }
    Ok(Value::Array(hits.iter().map(|h| h.to_json()).collect()))
}

/// `POST /api/chat/userset`: the settings must be a JSON object (stored verbatim).
pub async fn set_userset(state: &AppState, me: &Caller, userset: &str) -> AppResult<Value> {
    let is_object = serde_json::from_str::<Map<String, Value>>(userset).is_ok();
    if !is_object || js_length(userset) > USERSET_MAX_CHARS {
        return Err(AppError::Fail("用户设置格式不正确"));
    }
    state.users.update_profile(me.user.id, ProfileChange::Userset(userset.to_owned()), now_secs()).await?;
    Ok(Value::String("ok".to_owned()))
}

/// JavaScript `Number(value)` for the loose 0/1 test of `invite_confirm`.
fn js_number(value: &str) -> Option<f64> {
    let t = value.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    if t.is_empty() {
        return Some(0.0);
    }
    let radix = |prefix: &[&str], radix: u32| {
        prefix
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .map(|digits| i64::from_str_radix(digits, radix).ok().map(|v| v as f64))
    };
    if let Some(v) = radix(&["0x", "0X"], 16).or_else(|| radix(&["0o", "0O"], 8)).or_else(|| radix(&["0b", "0B"], 2)) {
        return v;
    }
    // Rust accepts "inf"/"nan" spellings JavaScript does not; neither is 0 or 1, so no harm.
    t.parse::<f64>().ok()
}

/// `POST /api/chat/updateUserinfo`: one field at a time, checks in the spec's order.
pub async fn update_userinfo(state: &AppState, me: &Caller, fieldname: &str, value: &str) -> AppResult<Value> {
    let (change, result) = match fieldname {
        "username" => return Err(AppError::Fail("账号不可修改")),
        "nickname" if js_length(value) > 30 => return Err(AppError::Fail("昵称长度不能超过30个字符")),
        "nickname" => (ProfileChange::Nickname(value.to_owned()), "修改昵称成功"),
        "avatar" if js_length(value) > 1000 => return Err(AppError::Fail("头像地址过长不能超过1000个字符")),
        "avatar" => (ProfileChange::Avatar(value.to_owned()), "头像更新成功"),
        "invite_confirm" => match js_number(value) {
            Some(v) if v == 0.0 || v == 1.0 => (ProfileChange::InviteConfirm(v as i64), "设置成功"),
            _ => return Err(AppError::Fail("添加我为好友设置值错误")),
        },
        _ => return Err(AppError::Fail("不支持修改该字段")),
    };
    state.users.update_profile(me.user.id, change, now_secs()).await?;
    state.sessions.set_value(&format!("user:modify:{}", me.user.id), fieldname, MODIFY_MARKER_TTL_SECS).await?;
    Ok(Value::String(result.to_owned()))
}

/// `POST /api/chat/setPassword`. The current token stays valid; with one current token per
/// user, every other session of the account is already dead.
pub async fn set_password(state: &AppState, me: &Caller, old: &str, new: &str, confirm: &str) -> AppResult<Value> {
    if new != confirm {
        return Err(AppError::Fail("新密码与确认新密码不一致"));
    }
    if me.claims.role == Role::Visitor && me.user.role != Role::Visitor {
        return Err(AppError::Fail("您未登录，无法修改密码"));
    }
    let user = match state.users.get(me.user.id).await? {
        Some(user) if user.is_active() => user,
        _ => return Err(AppError::Fail("用户不存在，无法修改密码")),
    };
    let current = state.users.private(user.id).await?.unwrap_or_default().password;
    if password::verify(old, &current).await? == Verified::No {
        return Err(AppError::Fail("原始密码错误，无法修改密码"));
    }
    let hash = password::hash(new).await?;
    state.users.update_profile(user.id, ProfileChange::Password(hash), now_secs()).await?;
    Ok(Value::String("修改密码成功".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::js_number;

    #[test]
    fn loose_number_parsing_matches_javascript_for_0_and_1() {
        for accepted in ["0", "1", "00", "1.0", " 1", "1e0", "+1", "-0", "0x1", "   "] {
            let v = js_number(accepted);
            assert!(v == Some(0.0) || v == Some(1.0), "{accepted:?} -> {v:?}");
        }
        for refused in ["2", "abc", "1a", "0x", "true"] {
            let v = js_number(refused);
            assert!(v != Some(0.0) && v != Some(1.0), "{refused:?} -> {v:?}");
        }
    }
}

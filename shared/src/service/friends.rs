//! Friends and friend applications (spec 3.3, 3.6, 4). Pushes go through [`crate::delivery`]
//! after the change is committed; a failed delivery is logged and never undoes the change.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::auth::Caller;
use crate::clock::{now_ms, now_secs};
use crate::error::{AppError, AppResult};
use crate::message::{friends_now_notice, single_message, Party};
use crate::model::{Role, User};
use crate::social::{Application, Friend, AGREE};
use crate::sortword;
use crate::state::AppState;
use crate::store::{Decided, FriendRemarks, StoredMessage};

const NOT_PENDING: AppError = AppError::Fail("申请不存在或已处理");
const SYSTEM_BUSY: AppError = AppError::Fail("系统异常，请稍后再试");
const DUPLICATE: AppError = AppError::Fail("您已经申请过了，请勿重复申请");

async fn notify(state: &AppState, user_id: i64, message: &Value) {
    if let Err(err) = state.delivery.deliver(&[user_id], &StoredMessage::new(message.clone())).await {
        tracing::error!(user_id, error = %err, "a notification could not be delivered or queued");
    }
}

async fn active_user(state: &AppState, id: i64) -> AppResult<Option<User>> {
    Ok(state.users.get(id).await?.filter(User::is_active))
}

/// `POST /api/chat/getUserSetInfo`
pub async fn user_set_info(state: &AppState, me: &Caller, user_id: i64) -> AppResult<Value> {
    let user = match active_user(state, user_id).await? {
        Some(u) if u.role == Role::User => u,
        _ => return Err(AppError::Fail("用户不存在或者为游客，无法加为好友")),
    };
    // Am I in their contacts, and not blocked there?
    let row = state.social.friend(user.id, me.user.id).await?;
    let usable = row.as_ref().is_none_or(|r| r.isblack != 1 && r.status == 1);
    Ok(json!({
        "id": user.id,
        "userset": state.users.private(user.id).await?.unwrap_or_default().userset,
        "invite_confirm": user.invite_confirm,
        "uuid": user.uuid,
        "isgoodfriend": row.is_some(),
        "isgoodfriend_status": usable,
    }))
}

/// `POST /api/chat/isApplyfriend/:uuid`
pub async fn pending_application_from(state: &AppState, me: &Caller, uuid: &str) -> AppResult<Value> {
    let applicant = match state.users.find_by_uuid(uuid).await? {
        Some(u) if u.is_active() => u,
        _ => return Err(AppError::Fail("用户不存在")),
    };
    match state.social.pending_application(applicant.id, me.user.id).await? {
        Some(app) => Ok(app.short_json()),
        None => Err(AppError::Fail("用户申请信息不存在")),
    }
}

/// The checks shared by `applyfriend` and `autoAddFriendAndAgree` up to the target's lookup.
async fn befriendable(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<User> {
    if friend_id == me.user.id {
        return Err(AppError::Fail("不能添加自己为好友"));
    }
    active_user(state, friend_id).await?.ok_or(AppError::Fail("添加的好友不存在"))
}

/// `POST /api/chat/applyfriend`
pub async fn apply(state: &AppState, me: &Caller, friend_id: i64, nickname: &str) -> AppResult<Value> {
    let target = befriendable(state, me, friend_id).await?;
    state.social.apply(me.user.id, target.id, nickname, now_secs()).await?.ok_or(DUPLICATE)?;
    let redirect_id = format!("redirect-applyFriend-{}", me.user.id);
    let text = format!("用户[{}]申请添加您为好友，请尽快处理", me.user.display_name());
    let group_avatar = state.config.default_group_avatar();
    let from = Party { id: json!(redirect_id), name: "好友申请提醒", avatar: &group_avatar };
    let to = Party { id: json!(target.id), name: target.display_name(), avatar: &target.avatar };
    let mut message = single_message(&uuid::Uuid::new_v4().to_string(), &from, &to, "text", &text, now_ms());
    message["redirect"] = json!({"url": "/pages/applyMyfriend/applyMyfriend", "type": "navigateTo"});
    message["msgidKey"] = json!(redirect_id);
    notify(state, target.id, &message).await;
    Ok(json!("ok"))
}

/// `GET /api/chat/listapplyfriend/:page`
pub async fn applications(state: &AppState, me: &Caller, page: i64, limit: i64) -> AppResult<Value> {
    let offset = crate::validate::page_offset(page, limit);
    let apps = state.social.applications_to(me.user.id, offset, limit as usize).await?;
    let ids: Vec<i64> = apps.iter().map(|a| a.user_id).collect();
    let applicants: HashMap<i64, User> = state.users.get_many(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    let rows: Vec<Value> = apps
        .iter()
        .map(|a| {
            let mut row = a.row_json();
            row["user"] = applicants.get(&a.user_id).map_or(Value::Null, User::brief_json);
            row
        })
        .collect();
    let pending = state.social.count_pending_to(me.user.id).await?;
    Ok(json!({"alldata": rows, "pendingCount": pending}))
}

/// The two "we are friends now" notices, one id, `a` first: `a` hears from `b`, then `b` from `a`.
async fn announce_friendship(state: &AppState, a: (&User, &str), b: (&User, &str)) {
    let (id, at) = (uuid::Uuid::new_v4().to_string(), now_ms());
    let pa = Party { id: json!(a.0.id), name: a.1, avatar: &a.0.avatar };
    let pb = Party { id: json!(b.0.id), name: b.1, avatar: &b.0.avatar };
    notify(state, a.0.id, &friends_now_notice(&id, &pb, &pa, at)).await;
    notify(state, b.0.id, &friends_now_notice(&id, &pa, &pb, at)).await;
}

/// `POST /api/chat/handleapply/:id`
pub async fn decide(state: &AppState, me: &Caller, id: i64, remark: &str, status: &str) -> AppResult<Value> {
    let app = state.social.application(me.user.id, id).await?.filter(|a| a.status == crate::social::PENDING);
    let app = app.ok_or(NOT_PENDING)?;
    let remarks = FriendRemarks { decider_row: remark.to_owned(), applicant_row: me.user.nickname.clone() };
    match state.social.decide(&app, status, remarks, now_secs()).await? {
        Decided::Done => {}
        Decided::NotPending => return Err(NOT_PENDING),
        Decided::Conflict => return Err(SYSTEM_BUSY),
    }
    if status == AGREE {
        if let Some(applicant) = state.users.get(app.user_id).await? {
            let applicant_name = if remark.is_empty() { applicant.display_name() } else { remark };
            announce_friendship(state, (&applicant, applicant_name), (&me.user, me.user.display_name())).await;
        }
    }
    Ok(json!("ok"))
}

/// `POST /api/chat/autoAddFriendAndAgree`
pub async fn auto_add(state: &AppState, me: &Caller, friend_id: i64, nickname: &str) -> AppResult<Value> {
    let target = befriendable(state, me, friend_id).await?;
    if target.invite_confirm != 0 {
        return Err(AppError::Fail("需要对方审核，不能自动加对方为好友"));
    }
    let app: Application = state.social.apply(me.user.id, target.id, nickname, now_secs()).await?.ok_or(DUPLICATE)?;
    let remarks = FriendRemarks { decider_row: me.user.nickname.clone(), applicant_row: String::new() };
    let decided = state.social.decide(&app, AGREE, remarks, now_secs()).await;
    if !matches!(decided, Ok(Decided::Done)) {
        // Leave no dangling pending application behind (RESOLVED 4.4).
        state.social.withdraw(&app).await?;
        decided?;
        return Err(SYSTEM_BUSY);
    }
    announce_friendship(state, (&target, target.display_name()), (&me.user, me.user.display_name())).await;
    Ok(json!("ok"))
}

/// `GET /api/chat/goodfriendlist/:page`
pub async fn contacts(state: &AppState, me: &Caller, page: i64, limit: i64) -> AppResult<Value> {
    let page_rows =
        state.social.friends_page(me.user.id, crate::validate::page_offset(page, limit), limit as usize).await?;
    let ids: Vec<i64> = page_rows.iter().map(|r| r.friend_id).collect();
    let users: HashMap<i64, User> = state.users.get_many(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    let items: Vec<Value> = page_rows
        .iter()
        .filter_map(|r| {
            let friend = users.get(&r.friend_id)?;
            let name = [r.nickname.as_str(), friend.nickname.as_str(), friend.username.as_str()]
                .into_iter()
                .find(|n| !n.is_empty())
                .unwrap_or_default();
            Some(json!({
                "id": r.id,
                "beizhu": r.nickname,
                "username": friend.username,
                "avatar": friend.avatar,
                "friend_nickname": friend.nickname,
                "friend_id": r.friend_id,
                "name": name,
                "uuid": friend.uuid,
            }))
        })
        .collect();
    if items.is_empty() {
        return Ok(json!({"count": 0, "rows": []}));
    }
    let count = items.len();
    let grouped = sortword::group(items, |item| item["name"].as_str().unwrap_or_default().to_owned());
    Ok(json!({"count": count, "rows": grouped}))
}

/// `GET /api/chat/getgoodfriendinfo/:id`
pub async fn contact(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<Value> {
    let row = state.social.friend(me.user.id, friend_id).await?.ok_or(AppError::Fail("好友不存在"))?;
    let friend = state.users.get(friend_id).await?;
    Ok(json!({
        "id": row.id,
        "user_id": row.user_id,
        "friend_id": row.friend_id,
        "nickname": row.nickname,
        "friendinfo": friend.as_ref().map_or(Value::Null, User::friend_info_json),
    }))
}

/// A change to my own row for a friend, after the route's existence check.
async fn change_row(
    state: &AppState,
    me: &Caller,
    friend_id: i64,
    blacklisted_counts_as_missing: bool,
    missing: &'static str,
    change: impl FnOnce(&mut Friend),
) -> AppResult<Value> {
    let row = state.social.friend(me.user.id, friend_id).await?;
    let mut row = row.filter(|r| !(blacklisted_counts_as_missing && r.isblack != 0)).ok_or(AppError::Fail(missing))?;
    change(&mut row);
    row.updated_at = now_secs();
    state.social.update_friend(&row).await?;
    Ok(json!("ok"))
}

/// `POST /api/chat/setblackgoodfriend/:id`
pub async fn toggle_black(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<Value> {
    change_row(state, me, friend_id, false, "好友不存在", |r| r.isblack = if r.isblack == 1 { 0 } else { 1 }).await
}

/// `POST /api/chat/setstargoodfriend/:id`
pub async fn toggle_star(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<Value> {
    change_row(state, me, friend_id, true, "好友不存在或者被拉黑，无法操作", |r| {
        r.ismystarfriend = if r.ismystarfriend == 0 { 1 } else { 0 }
    })
    .await
}

/// `POST /api/chat/setmeOrfriendCanSee/:id`
pub async fn set_visibility(state: &AppState, me: &Caller, friend_id: i64, lookme: i64, look: i64) -> AppResult<Value> {
    change_row(state, me, friend_id, true, "好友不存在或者被拉黑，无法操作", |r| {
        r.friendlookme = lookme;
        r.melookfriend = look;
    })
    .await
}

/// `POST /api/chat/ismygoodfriend/:id`
pub async fn is_friend(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<Value> {
    let row = state.social.friend(me.user.id, friend_id).await?.filter(|r| r.isblack == 0);
    Ok(row.ok_or(AppError::Fail("不是好友"))?.short_json())
}

/// `POST /api/chat/deletegoodfriend/:id`
pub async fn remove(state: &AppState, me: &Caller, friend_id: i64) -> AppResult<Value> {
    state.social.friend(me.user.id, friend_id).await?.ok_or(AppError::Fail("不是好友关系，无权操作"))?;
    state.social.unfriend(me.user.id, friend_id).await?;
    Ok(json!("删除好友成功"))
}

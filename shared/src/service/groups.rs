//! Groups (spec 5). Every notice carries the group snapshot after the route's change, is cut to
//! fit one frame (120 KB rule) and goes to all its recipients in one delivery after the change is
//! committed; a failed push is logged and never undoes the change.

use serde_json::{json, Value};

use crate::auth::Caller;
use crate::clock::{local_time, now_ms};
use crate::error::{AppError, AppResult};
use crate::group::{
    self, active_member_ids, encode_uri_component, fit_frame, member_avatar, member_name, Group, GroupMember, ACTIVE,
    PENDING,
};
use crate::message::{single_message, Party};
use crate::model::{Role, User};
use crate::state::AppState;
use crate::store::{GroupChange, Joined, NewGroup, StoredMessage};

const NOT_MANAGEABLE: AppError = AppError::Fail("群不存在或者被封禁或者你无权操作");
const NOT_IN_GROUP: AppError = AppError::Fail("你不在该群聊中，操作失败");
const GROUP_FULL: AppError = AppError::Fail("群成员已达上限");
/// `from_name` of join notices (spec 5.9, 5.11).
const JOIN_REMINDER: &str = "加群申请提醒";

/// Delivers one message to every recipient in one call (fitted to a frame first).
async fn deliver(state: &AppState, recipients: &[i64], mut message: Value) {
    if recipients.is_empty() {
        return;
    }
    fit_frame(&mut message);
    if let Err(err) = state.delivery.deliver(recipients, &StoredMessage::new(message)).await {
        tracing::error!(recipients = recipients.len(), error = %err, "a group notice could not be delivered or queued");
    }
}

fn message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn secs(ms: i64) -> i64 {
    ms / 1000
}

/// Recomputes the group avatar from its first active members (spec 5.0) and returns the group
/// with its member rows as they are now; `None` if the group is gone.
async fn refresh_avatar(state: &AppState, group_id: i64) -> AppResult<Option<(Group, Vec<GroupMember>)>> {
    let Some((mut group, members)) = state.groups.group_with_members(group_id).await? else { return Ok(None) };
    let users = state.users.get_many(&group::avatar_member_ids(&members)).await?;
    if let Some(avatar) = group::recomputed_avatar(&members, &users) {
        if avatar != group.avatar {
            let now = now_ms();
            state.groups.update(group.id, GroupChange::Avatar(avatar.clone()), secs(now)).await?;
            group.avatar = avatar;
            group.updated_at = secs(now);
        }
    }
    Ok(Some((group, members)))
}

/// The `redirect-applyAddGroup…` key of join notices and approval requests.
fn join_key(group_id: i64, user_id: i64, now: i64) -> String {
    format!("redirect-applyAddGroup{group_id}-{user_id}-{now}")
}

/// The join notice to all active members (spec 5.9, 5.11).
async fn announce_join(state: &AppState, group: &Group, members: &[GroupMember], user_id: i64, text: &str) {
    let now = now_ms();
    let key = join_key(group.id, user_id, now);
    let avatar = state.config.default_group_avatar();
    let from = Party { id: json!(key), name: JOIN_REMINDER, avatar: &avatar };
    let message = group::notice(&message_id(), group, members, &from, text, now);
    deliver(state, &active_member_ids(members), message).await;
}

/// `POST /api/chat/group/create` — `row_ids` are my goodfriend row ids.
pub async fn create(state: &AppState, me: &Caller, row_ids: &[i64]) -> AppResult<Value> {
    let rows = state.social.friends(me.user.id).await?;
    let friend_ids: Vec<i64> = rows
        .iter()
        .filter(|r| row_ids.contains(&r.id) && r.user_id == me.user.id && r.status == 1 && r.isblack == 0)
        .map(|r| r.friend_id)
        .collect();
    if friend_ids.is_empty() {
        return Err(AppError::Fail("请选择加入群聊的用户"));
    }
    let mut users: Vec<User> =
        state.users.get_many(&friend_ids).await?.into_iter().filter(|u| u.is_active() && u.id != me.user.id).collect();
    if users.is_empty() {
        return Err(AppError::Fail("用户不存在，无法加入群聊"));
    }
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    if users.len() as u64 + 1 > state.config.max_group_members {
        return Err(GROUP_FULL);
    }
    let everyone: Vec<&User> = std::iter::once(&me.user).chain(users.iter()).collect();
    let names: Vec<&str> = everyone.iter().map(|u| u.display_name()).collect();
    let name: String = names.join("、").chars().take(group::NAME_MAX_CHARS).collect();
    let avatar = group::joined_avatar(everyone.iter().map(|u| u.avatar.as_str())).unwrap_or_default();
    let now = now_ms();
    let new = NewGroup {
        user_id: me.user.id,
        name,
        avatar,
        members: everyone.iter().map(|u| u.id).collect(),
        now: secs(now),
    };
    let (group, members) = state.groups.create(new).await?;
    let from = Party { id: json!(me.user.id), name: me.user.display_name(), avatar: &me.user.avatar };
    let text = format!("{}创建了一个群，大家可以开始聊天了", me.user.display_name());
    let message = group::notice(&message_id(), &group, &members, &from, &text, now);
    deliver(state, &active_member_ids(&members), message).await;
    Ok(json!("ok"))
}

/// `GET /api/chat/grouplist/:page`
pub async fn list(state: &AppState, me: &Caller, page: i64, limit: i64) -> AppResult<Value> {
    let limit = limit.max(1) as usize;
    let offset = crate::validate::page_offset(page, limit as i64);
    let groups = state.groups.groups_of(me.user.id, offset, limit).await?;
    Ok(Value::Array(groups.iter().map(|(g, mine)| g.list_json(mine)).collect()))
}

/// `GET /api/chat/groupinfo/:id`
pub async fn info(state: &AppState, id: i64) -> AppResult<Value> {
    let found = state.groups.group_with_members(id).await?;
    let (group, members) = found
        .filter(|(g, m)| g.is_active() && m.iter().any(GroupMember::is_active))
        .ok_or(AppError::Fail("群不存在或被封禁"))?;
    let active: Vec<&GroupMember> = members.iter().filter(|m| m.is_active()).collect();
    let ids: Vec<i64> = active.iter().map(|m| m.user_id).collect();
    let users = state.users.get_many(&ids).await?;
    let rows: Vec<Value> = active.iter().map(|m| m.info_json(users.iter().find(|u| u.id == m.user_id))).collect();
    let mut v = group.listed_json();
    v["group_users"] = Value::Array(rows);
    Ok(v)
}

/// An owner's change of a group column, announced to the active members (spec 5.4, 5.5).
async fn owner_change(
    state: &AppState,
    me: &Caller,
    id: i64,
    change: GroupChange,
    not_owner: &'static str,
    text: String,
) -> AppResult<Value> {
    let found = state.groups.group_with_members(id).await?;
    let (mut group, members) =
        found.filter(|(g, _)| g.is_active() && g.user_id == me.user.id).ok_or(AppError::Fail(not_owner))?;
    // Checked before saving (RESOLVED 5.4): the notice needs the owner's member row.
    let mine = members.iter().find(|m| m.user_id == me.user.id).ok_or(AppError::Fail("无法通知群成员"))?;
    let now = now_ms();
    if !state.groups.update(id, change.clone(), secs(now)).await? {
        return Err(AppError::Fail(not_owner));
    }
    match change {
        GroupChange::Name(name) => group.name = name,
        GroupChange::Remark(remark) => group.remark = remark,
        GroupChange::InviteConfirm(value) => group.invite_confirm = value,
        GroupChange::Avatar(avatar) => group.avatar = avatar,
    }
    group.updated_at = secs(now);
    let (name, avatar) = (member_name(mine, &me.user), member_avatar(mine, &me.user));
    let from = Party { id: json!(me.user.id), name: &name, avatar: &avatar };
    let message = group::notice(&message_id(), &group, &members, &from, &text, now);
    deliver(state, &active_member_ids(&members), message).await;
    Ok(json!("ok"))
}

/// `POST /api/chat/groupUpdateName`
pub async fn rename(state: &AppState, me: &Caller, id: i64, name: &str) -> AppResult<Value> {
    let text = format!("群名称修改为：{name}");
    owner_change(state, me, id, GroupChange::Name(name.to_owned()), "只有群主才能修改群名称", text).await
}

/// `POST /api/chat/groupremark`
pub async fn set_remark(state: &AppState, me: &Caller, id: i64, remark: &str) -> AppResult<Value> {
    let text = format!("[公告] \n\n {remark}");
    owner_change(state, me, id, GroupChange::Remark(remark.to_owned()), "只有群主才能修改群公告", text).await
}

/// `POST /api/chat/groupnickname`
pub async fn set_nickname(state: &AppState, me: &Caller, id: i64, nickname: &str) -> AppResult<Value> {
    const NOT_MEMBER: AppError = AppError::Fail("你不在该群聊中，无法修改昵称");
    state.groups.member(id, me.user.id).await?.filter(GroupMember::is_active).ok_or(NOT_MEMBER)?;
    if !state.groups.set_nickname(id, me.user.id, nickname, secs(now_ms())).await? {
        return Err(NOT_MEMBER);
    }
    Ok(json!("ok"))
}

/// `POST /api/chat/groupDeleteOrQuit` — the owner dissolves the group, anyone else quits it.
pub async fn delete_or_quit(state: &AppState, me: &Caller, id: i64) -> AppResult<Value> {
    let (group, members) = state.groups.group_with_members(id).await?.ok_or(AppError::Fail("群不存在"))?;
    let mine = members.iter().find(|m| m.user_id == me.user.id).ok_or(NOT_IN_GROUP)?.clone();
    let now = now_ms();
    let time = local_time(secs(now));
    let (name, avatar) = (member_name(&mine, &me.user), member_avatar(&mine, &me.user));
    let from = Party { id: json!(me.user.id), name: &name, avatar: &avatar };
    if group.user_id == me.user.id {
        // Snapshot and recipients are taken before everything goes.
        let text = format!("群主于 {time} 解散了该群");
        let message = group::notice(&message_id(), &group, &members, &from, &text, now);
        state.groups.dissolve(id).await?;
        deliver(state, &active_member_ids(&members), message).await;
    } else {
        state.groups.remove_member(id, me.user.id).await?;
        let remaining: Vec<GroupMember> = members.into_iter().filter(|m| m.user_id != me.user.id).collect();
        let text = format!("{name}于 {time} 已退出群聊");
        let message = group::notice(&message_id(), &group, &remaining, &from, &text, now);
        deliver(state, &[group.user_id], message).await;
    }
    Ok(json!("ok"))
}

/// `POST /api/chat/groupDeleteUser`
pub async fn delete_user(state: &AppState, me: &Caller, group_id: i64, user_id: i64) -> AppResult<Value> {
    let owned = state.groups.group(group_id).await?.filter(|g| g.user_id == me.user.id);
    owned.ok_or(AppError::Fail("只有群主才能操作"))?;
    if user_id == me.user.id {
        return Err(AppError::Fail("群主不能删除自己"));
    }
    state.groups.remove_member(group_id, user_id).await?;
    refresh_avatar(state, group_id).await?;
    Ok(json!("删除群成员成功"))
}

fn already_in(member: &GroupMember) -> AppError {
    if member.is_pending() {
        AppError::Fail("已申请加入群聊，正在等待群主同意")
    } else {
        AppError::Fail("用户已经在群里")
    }
}

/// `POST /api/chat/groupInviteUser` — DEVIATION D10: the effective inviter is the caller.
pub async fn invite(state: &AppState, me: &Caller, group_id: i64, user_id: i64, desc: &str) -> AppResult<Value> {
    let found = state.groups.group_with_members(group_id).await?;
    let (group, members) = found.filter(|(g, _)| g.is_active()).ok_or(AppError::Fail("群不存在或者被封禁"))?;
    // Inviting someone else needs my active membership; joining by myself does not.
    let inviter = if user_id == me.user.id {
        None
    } else {
        Some(members.iter().find(|m| m.user_id == me.user.id && m.is_active()).ok_or(NOT_IN_GROUP)?)
    };
    if let Some(existing) = members.iter().find(|m| m.user_id == user_id) {
        return Err(already_in(existing));
    }
    if members.len() as u64 >= state.config.max_group_members {
        return Err(GROUP_FULL);
    }
    let joiner = state.users.get(user_id).await?.filter(User::is_active);
    let joiner = joiner.ok_or(AppError::Fail("加群的用户不存在或已被封禁，无法加入群聊"))?;
    let by_owner = inviter.is_some() && me.user.id == group.user_id;
    if group.invite_confirm == 2 && !by_owner && joiner.role == Role::Visitor {
        return Err(AppError::Fail("请先登录再申请进群"));
    }
    let status = if group.invite_confirm == 1 && !by_owner { PENDING } else { ACTIVE };
    match state.groups.join(group_id, user_id, status, secs(now_ms()), state.config.max_group_members).await? {
        Joined::Added(_) => {}
        Joined::AlreadyMember => {
            // Someone added the row meanwhile.
            let existing = state.groups.member(group_id, user_id).await?;
            return Err(existing.as_ref().map_or(AppError::Fail("用户已经在群里"), already_in));
        }
        Joined::NoGroup => return Err(AppError::Fail("群不存在或者被封禁")),
        Joined::Full => return Err(GROUP_FULL),
    }
    let label = match inviter {
        Some(m) if me.user.role == Role::User => format!("[{}]邀请 ", member_name(m, &me.user)),
        _ => String::new(),
    };
    let joiner_name = joiner.display_name();
    if status == ACTIVE {
        if let Some((group, members)) = refresh_avatar(state, group_id).await? {
            announce_join(state, &group, &members, user_id, &format!("{label}[{joiner_name}] 加入了群聊")).await;
        }
        return Ok(json!("加群成功"));
    }
    request_approval(state, &group, &members, &joiner, inviter.is_some(), &label, desc).await?;
    Ok(json!("等待群主同意"))
}

/// The approval request of a pending join, to the owner only (spec 5.9).
async fn request_approval(
    state: &AppState,
    group: &Group,
    members: &[GroupMember],
    joiner: &User,
    invited: bool,
    label: &str,
    add_desc: &str,
) -> AppResult<()> {
    let Some(owner) = state.users.get(group.user_id).await? else { return Ok(()) };
    let (to_name, to_avatar) = match members.iter().find(|m| m.user_id == owner.id) {
        Some(m) => (member_name(m, &owner), member_avatar(m, &owner)),
        None => (owner.display_name().to_owned(), owner.avatar.clone()),
    };
    let now = now_ms();
    let key = join_key(group.id, joiner.id, now);
    let joiner_name = joiner.display_name();
    let kind = if invited { "邀请进群" } else { "用户自主进群" };
    let invite_user = label.replacen('[', "", 1).replacen(']', "", 1).replacen("邀请", "", 1);
    let role = joiner.role.as_str();
    let desc = json!({
        "addGroupUserType": kind,
        "inviteUser": invite_user,
        "addGroupTime": now,
        "addGroupDesc": add_desc,
        "addGroupUserRole": role,
        "msgidKey": key,
    });
    // `JSON.stringify(desc)` keeps the client's field order.
    let text = |s: &str| Value::from(s).to_string();
    let desc_json = format!(
        "{{\"addGroupUserType\":{},\"inviteUser\":{},\"addGroupTime\":{now},\"addGroupDesc\":{},\"addGroupUserRole\":{},\"msgidKey\":{}}}",
        text(kind),
        text(&invite_user),
        text(add_desc),
        text(role),
        text(&key),
    );
    let url = format!(
        "/pages/setpageInfo/setpageInfo?action=applyAddGroup&title=%E5%8A%A0%E7%BE%A4%E7%94%B3%E8%AF%B7&id={}&name={}\
         &avatar={}&chatType=group&applyUserid={}&applyUsername={joiner_name}&applyUseruuid={}&applyUseravatar={}\
         &applydesc={}",
        group.id,
        encode_uri_component(&group.name),
        encode_uri_component(&group.avatar),
        joiner.id,
        joiner.uuid,
        encode_uri_component(&joiner.avatar),
        encode_uri_component(&desc_json),
    );
    let group_avatar = state.config.default_group_avatar();
    let from = Party { id: json!(key), name: "加群处理", avatar: &group_avatar };
    let to = Party { id: json!(owner.id), name: &to_name, avatar: &to_avatar };
    let request_text = format!("请处理申请 {label}[{joiner_name}] 加入了群[{}]", group.name);
    let mut message = single_message(&message_id(), &from, &to, "text", &request_text, now);
    message["redirect"] = json!({"url": url, "type": "navigateTo", "desc": desc});
    message["group"] = group::snapshot(group, members);
    message["msgidKey"] = json!(key);
    deliver(state, &[owner.id], message).await;
    Ok(())
}

/// `POST /api/chat/groupAddUserSet`
pub async fn set_join_policy(state: &AppState, me: &Caller, group_id: i64, value: i64) -> AppResult<Value> {
    let owned = state.groups.group(group_id).await?.filter(|g| g.is_active() && g.user_id == me.user.id);
    owned.ok_or(NOT_MANAGEABLE)?;
    if !state.groups.update(group_id, GroupChange::InviteConfirm(value), secs(now_ms())).await? {
        return Err(NOT_MANAGEABLE);
    }
    Ok(json!("设置成功"))
}

/// `POST /api/chat/groupAgreeOrNo` — `agree` or `no`.
pub async fn decide(state: &AppState, me: &Caller, group_id: i64, user_id: i64, kind: &str) -> AppResult<Value> {
    const ILLEGAL: AppError = AppError::Fail("非法操作");
    let found = state.groups.group_with_members(group_id).await?;
    let (_, members) = found
        .filter(|(g, m)| g.is_active() && g.user_id == me.user.id && m.iter().any(GroupMember::is_active))
        .ok_or(NOT_MANAGEABLE)?;
    members.iter().find(|m| m.user_id == user_id).filter(|m| m.is_pending()).ok_or(ILLEGAL)?;
    if kind != "agree" {
        return if state.groups.reject(group_id, user_id).await? { Ok(json!("处理成功")) } else { Err(ILLEGAL) };
    }
    let joiner = state.users.get(user_id).await?.filter(User::is_active);
    let joiner = joiner.ok_or(AppError::Fail("用户不存在或者被封禁"))?;
    if !state.groups.approve(group_id, user_id, secs(now_ms())).await? {
        return Err(ILLEGAL);
    }
    if let Some((group, members)) = refresh_avatar(state, group_id).await? {
        announce_join(state, &group, &members, user_id, &format!("[{}] 加入了群聊", joiner.display_name())).await;
    }
    Ok(json!("处理成功"))
}

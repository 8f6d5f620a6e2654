//! Sending, offline messages and revoke (spec 6.5–6.8).

use serde_json::{json, Value};

use crate::auth::Caller;
use crate::clock::now_ms;
use crate::config::SEND_RATE_WINDOW_SECS;
use crate::error::{AppError, AppResult};
use crate::group::{self, fit_frame, frame_len, member_avatar, member_name, FRAME_LIMIT};
use crate::message::single_chat_frame;
use crate::model::{Role, User};
use crate::push::{post_to_all, Posted};
use crate::social::Friend;
use crate::state::AppState;
use crate::store::{SentMessage, StoredMessage};

/// A message may be revoked this long after it was sent (server clock).
const REVOKE_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Offline messages read per page while flushing.
const FLUSH_PAGE: usize = 100;
/// Delivered offline messages are removed from the queue at least this often, so a flush cut
/// short (the function's timeout) re-sends few of them next time.
const FLUSH_REMOVE_EVERY: usize = 25;
/// What one flush may take: the rest waits for the client's next pull (it pulls after every
/// WebSocket open), well inside the function's 10 s.
const FLUSH_BUDGET: std::time::Duration = std::time::Duration::from_secs(4);

const ONE_MESSAGE_BEFORE_FRIENDS: AppError = AppError::Fail("在成为好友之前，对方只允许向他发一条消息");

/// A client message to send (spec 6.5 parameters, validated).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub sendto_id: i64,
    /// `single` or `group`.
    pub chat_type: String,
    pub kind: String,
    pub data: String,
    /// The parsed `options` parameter (`null` when absent or not JSON).
    pub options: Value,
}

/// The `options` parameter (spec 6.5): `encodeURIComponent(JSON.stringify(obj))` from the client;
/// the raw text when it is not valid percent-encoding; `null` when it is not JSON.
pub fn parse_options(raw: &str) -> Value {
    let text = decode_uri_component(raw).unwrap_or_else(|| raw.to_owned());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// JavaScript's `decodeURIComponent`: `None` where it would throw.
fn decode_uri_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `sendCount` of the recipient's chat settings for a sender of `role` (spec 6.6): 0 = friends
/// only, 1 = one message before friendship, 2 = unlimited.
pub fn send_count(userset: &str, role: Role) -> u8 {
    let settings: Value = serde_json::from_str(userset).unwrap_or(Value::Null);
    let entry = settings.get("chatset").filter(|c| c.is_object()).and_then(|c| c.get(role.as_str()));
    let raw = match entry {
        Some(Value::Object(o)) => o.get("sendCount").cloned(),
        Some(v @ (Value::Number(_) | Value::String(_))) => Some(v.clone()),
        _ => None,
    };
    let Some(raw) = raw.filter(|v| !v.is_null()) else { return 1 };
    let number = match &raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    if number == Some(0.0) {
        0
    } else if number == Some(1.0) {
        1
    } else {
        2
    }
}

/// The stranger and visitor limits (spec 6.6); `their_row` is the recipient's row for me.
/// `Ok(true)` when passing them took the one stranger claim.
async fn check_send_limits(
    state: &AppState,
    me: &User,
    recipient: &User,
    their_row: Option<&Friend>,
) -> AppResult<bool> {
    let visitor = me.role == Role::Visitor;
    if let Some(row) = their_row {
        if row.isblack != 0 {
            return Err(AppError::Fail(if visitor {
                "对方把你拉黑了，不能发消息"
            } else {
                "对方把你拉黑了，不能发送消息"
            }));
        }
        if row.status != 1 {
            return Err(AppError::Fail(if visitor {
                "系统把你们拉黑了，不能发消息"
            } else {
                "系统把你们拉黑了，不能发送消息"
            }));
        }
        // In their contacts: no limit.
        return Ok(false);
    }
    // A stranger's first messages only: the settings are read apart from the recipient's row.
    let userset = state.users.private(recipient.id).await?.unwrap_or_default().userset;
    match send_count(&userset, me.role) {
        0 if visitor => Err(AppError::Fail("你们不是好友关系，对方设置成：先登录才能发消息")),
        0 => Err(AppError::Fail("对方设置成：需要您先成为他的好友才能发消息")),
        // One atomic claim, so parallel first messages cannot all pass a check-then-send.
        1 if state.messages.claim_stranger_message(me.id, recipient.id).await? => Ok(true),
        1 => Err(ONE_MESSAGE_BEFORE_FRIENDS),
        _ => Ok(false),
    }
}

fn remark_or(row: Option<&Friend>, fallback: &str) -> String {
    match row {
        Some(r) if !r.nickname.is_empty() => r.nickname.clone(),
        _ => fallback.to_owned(),
    }
}

/// Key of a sender's send-rate counter (spec 1.8 item 3).
fn send_rate_key(user_id: i64) -> String {
    format!("send_rate:{user_id}")
}

/// The frame size rule (spec 6.5): `message` as pushed must fit [`FRAME_LIMIT`].
fn check_frame(message: &Value) -> AppResult<()> {
    if frame_len(message) > FRAME_LIMIT {
        return Err(AppError::Fail("消息内容过长"));
    }
    Ok(())
}

/// `POST /api/chat/socket/sendmessage`: validated by the handler; then the send rate (one Redis
/// call), the frame size, the recipient's checks, and the message is logged and delivered.
pub async fn send(state: &AppState, me: &Caller, out: Outgoing) -> AppResult<Value> {
    let sent = state.sessions.hit(&send_rate_key(me.user.id), SEND_RATE_WINDOW_SECS).await?;
    if sent > state.config.send_rate_limit {
        return Err(AppError::Fail("发送消息过于频繁，请稍后再试"));
    }
    // The client's own fields alone already decide most oversized frames, before any lookup;
    // the whole message is measured again once built.
    check_frame(&json!({"type": out.kind, "data": out.data, "options": out.options}))?;
    if out.chat_type == "group" {
        send_to_group(state, me, out).await
    } else {
        send_to_user(state, me, out).await
    }
}

async fn send_to_user(state: &AppState, me: &Caller, out: Outgoing) -> AppResult<Value> {
    let me = &me.user;
    let recipient = match state.users.get(out.sendto_id).await? {
        Some(u) if u.is_active() => u,
        _ => return Err(AppError::Fail("对方不存在或者被禁用，不能发消息")),
    };
    let (their_row, my_row) = if me.role == Role::User {
        tokio::try_join!(state.social.friend(recipient.id, me.id), state.social.friend(me.id, recipient.id))?
    } else {
        (state.social.friend(recipient.id, me.id).await?, None)
    };
    let (from_name, to_name) = if me.role == Role::User {
        (remark_or(their_row.as_ref(), me.display_name()), remark_or(my_row.as_ref(), recipient.display_name()))
    } else {
        (me.display_name().to_owned(), recipient.display_name().to_owned())
    };
    let message = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "from_avatar": me.avatar,
        "from_name": from_name,
        "from_id": me.id,
        "to_id": recipient.id,
        "to_name": to_name,
        "to_avatar": recipient.avatar,
        "chatType": "single",
        "type": out.kind,
        "data": out.data,
        "options": out.options,
        "create_time": now_ms(),
        "isremove": 0,
        "sendUUid": me.uuid,
    });
    check_frame(&message)?;
    // Last of the checks: the stranger limit's claim is a write.
    let claimed = check_send_limits(state, me, &recipient, their_row.as_ref()).await?;
    log_and_deliver(state, me.id, &message, &[recipient.id], claimed).await?;
    Ok(message)
}

async fn send_to_group(state: &AppState, me: &Caller, out: Outgoing) -> AppResult<Value> {
    let me = &me.user;
    // The group and its members in one read (one Query of the group's partition).
    let (group, members) = match state.groups.group_with_members(out.sendto_id).await? {
        Some((g, members)) if g.status == 1 => (Some(g), members.into_iter().filter(|m| m.status == 1).collect()),
        _ => (None, Vec::new()),
    };
    let Some(group) = group.filter(|_| !members.is_empty()) else {
        return Err(AppError::Fail("群不存在或者已解散或者被封禁，无法发消息"));
    };
    let Some(mine) = members.iter().find(|m| m.user_id == me.id) else {
        return Err(AppError::Fail("您不在群里，无法发消息"));
    };
    let mut message = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "from_avatar": member_avatar(mine, me),
        "from_name": member_name(mine, me),
        "from_id": me.id,
        "to_id": group.id,
        "to_name": group.name,
        "to_avatar": group.avatar,
        "chatType": "group",
        "type": out.kind,
        "data": out.data,
        "options": out.options,
        "create_time": now_ms(),
        "isremove": 0,
        "group": group::snapshot(&group, &members),
        "sendUUid": me.uuid,
    });
    fit_frame(&mut message);
    check_frame(&message)?;
    let recipients: Vec<i64> = members.iter().map(|m| m.user_id).filter(|&id| id != me.id).collect();
    log_and_deliver(state, me.id, &message, &recipients, false).await?;
    Ok(message)
}

/// Persists, then delivers (spec 6.2 item 4): the log entry names the stored message, so a
/// revoke finds the one copy every offline queue references. The answer is `ok` only once every
/// recipient has the message pushed, queued offline or in the fan-out queue; otherwise the sender
/// gets an error and the send is taken back (its log entry, and the stranger claim if it took
/// one), so sending again is judged as this attempt was.
async fn log_and_deliver(
    state: &AppState,
    sender: i64,
    message: &Value,
    recipients: &[i64],
    claimed: bool,
) -> AppResult<()> {
    let stored = StoredMessage::new(message.clone());
    let entry = SentMessage {
        id: message["id"].as_str().unwrap_or_default().to_owned(),
        sender,
        chat_type: message["chatType"].as_str().unwrap_or_default().to_owned(),
        to_id: message["to_id"].as_i64().unwrap_or_default(),
        to_name: message["to_name"].as_str().unwrap_or_default().to_owned(),
        to_avatar: message["to_avatar"].as_str().unwrap_or_default().to_owned(),
        create_time: message["create_time"].as_i64().unwrap_or_default(),
        revoked: false,
        stored: stored.key.clone(),
    };
    // The log entry and the stored message are independent writes: one round trip for both.
    let delivered = match tokio::try_join!(state.messages.record(&entry), state.offline.store(&stored)) {
        Ok(_) => state.delivery.deliver_stored(recipients, &stored).await,
        Err(e) => Err(e),
    };
    if delivered.is_err() {
        if let Err(e) = state.messages.withdraw(&entry, claimed).await {
            tracing::error!(error = %e, message = %entry.id, "could not take back a failed send");
        }
    }
    delivered
}

/// `POST /api/chat/chatGetmessageOffLine`: my queue, oldest first, to my current connections;
/// an item is removed only after a connection took it, and the first one none took stops the
/// flush (at-least-once, never lost). An item the gateway refuses for good is dropped and logged
/// (spec 6.7, N5), so it never blocks the items behind it.
pub async fn flush_offline(state: &AppState, me: &Caller) -> AppResult<()> {
    let started = std::time::Instant::now();
    let mut connections = state.connections.current_connections(&[me.user.id]).await?;
    while !connections.is_empty() && started.elapsed() < FLUSH_BUDGET {
        let page = state.offline.peek(me.user.id, FLUSH_PAGE).await?;
        let full_page = page.len() == FLUSH_PAGE;
        let mut done = Vec::new();
        for (key, message) in page {
            let Some(message) = message else {
                // Its stored message expired: nothing left to deliver.
                done.push(key);
                continue;
            };
            let frame = single_chat_frame(&message);
            let posted = post_to_all(state.connections.as_ref(), state.gateway.as_ref(), &connections, &frame).await;
            let accepted = posted.contains(&Posted::Accepted);
            if !accepted && posted.contains(&Posted::Refused) {
                tracing::error!(message = %message["id"], queue_key = %key, "the gateway refuses an offline message for good; dropped");
            }
            // Connections that took the frame, or refused only this frame, stay in the flush.
            connections = connections
                .into_iter()
                .zip(&posted)
                .filter(|(_, p)| matches!(p, Posted::Accepted | Posted::Refused))
                .map(|(c, _)| c)
                .collect();
            if !accepted && !posted.contains(&Posted::Refused) {
                break;
            }
            done.push(key);
            if done.len() >= FLUSH_REMOVE_EVERY {
                state.offline.remove(me.user.id, &std::mem::take(&mut done)).await?;
            }
            if started.elapsed() >= FLUSH_BUDGET {
                connections.clear();
                break;
            }
        }
        state.offline.remove(me.user.id, &done).await?;
        if !full_page {
            break;
        }
    }
    Ok(())
}

/// A message to revoke (spec 6.8 parameters, validated; the client's names and time are not used).
#[derive(Debug, Clone)]
pub struct Revoke {
    pub to_id: i64,
    pub chat_type: String,
    pub id: String,
}

/// `POST /api/chat/revokeMessage` (DEVIATION D7: verified against the sent-message log).
pub async fn revoke(state: &AppState, me: &Caller, request: Revoke) -> AppResult<Value> {
    let me = &me.user;
    let entry = state
        .messages
        .find(me.id, &request.chat_type, request.to_id, &request.id)
        .await?
        .ok_or(AppError::Fail("消息不存在，无法撤回"))?;
    if now_ms() - entry.create_time > REVOKE_WINDOW_MS {
        return Err(AppError::Fail("消息超过5分钟，不能撤回"));
    }
    let (from_avatar, from_name, text, recipients) = if entry.chat_type == "group" {
        let group =
            state.groups.group(entry.to_id).await?.filter(|g| g.status == 1).ok_or(AppError::Fail("群不存在"))?;
        let members = state.groups.members(group.id).await?;
        let mine = members.iter().find(|m| m.user_id == me.id).ok_or(AppError::Fail("你不在该群聊中，操作失败"))?;
        let name = member_name(mine, me);
        let recipients: Vec<i64> =
            members.iter().filter(|m| m.status == 1 && m.user_id != me.id).map(|m| m.user_id).collect();
        (member_avatar(mine, me), name.clone(), format!("{name} 撤回了一条消息"), recipients)
    } else {
        let name = me.display_name().to_owned();
        (me.avatar.clone(), name.clone(), format!("{name}撤回了一条消息"), vec![entry.to_id])
    };
    let notice = json!({
        "id": entry.id,
        "from_avatar": from_avatar,
        "from_name": from_name,
        "from_id": me.id,
        "to_id": entry.to_id,
        "to_name": entry.to_name,
        "to_avatar": entry.to_avatar,
        "chatType": entry.chat_type,
        "type": "systemNotice",
        "actionType": "revoke",
        "data": {"data": text, "dataType": false, "otherData": null},
        "options": {},
        "create_time": now_ms(),
        "isremove": 0,
        "group": null,
    });
    // A finished revoke just answers again. Otherwise: mark the one stored copy, deliver the
    // notice durably, and only then flip the log's flag, so a retry after any failure finishes
    // what this one started. The notice is stored under a key derived from the message's, so
    // retries and racing revokes queue it once (a live push may come twice; clients key it by id).
    if entry.revoked {
        return Ok(notice);
    }
    let notice = if entry.stored.is_empty() {
        StoredMessage::new(notice)
    } else {
        state.offline.mark_revoked(&entry.stored).await?;
        StoredMessage { key: format!("{}~revoke", entry.stored), message: notice }
    };
    state.delivery.deliver(&recipients, &notice).await?;
    state.messages.mark_revoked(&entry).await?;
    Ok(notice.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_percent_decoded_json_with_fallbacks() {
        assert_eq!(parse_options("%7B%22a%22%3A1%7D"), json!({"a": 1}));
        assert_eq!(parse_options(r#"{"b":"%"}"#), json!({"b": "%"}), "bad escapes: the raw text is parsed");
        assert_eq!(parse_options(""), Value::Null);
        assert_eq!(parse_options("not json"), Value::Null);
        assert_eq!(parse_options("%5B1%2C2%5D"), json!([1, 2]));
        assert_eq!(parse_options("%E4%BD%A0"), Value::Null, "decodes to non-JSON text");
        assert_eq!(decode_uri_component("%E4%BD%A0").as_deref(), Some("你"));
        assert_eq!(decode_uri_component("%E4%BD"), None, "invalid UTF-8 throws in JavaScript");
    }

    #[test]
    fn send_count_follows_the_settings_rules() {
        assert_eq!(send_count("", Role::User), 1, "no settings: one message");
        assert_eq!(send_count("not json", Role::Visitor), 1);
        assert_eq!(send_count(r#"{"chatset":{"user":{"sendCount":0}}}"#, Role::User), 0);
        assert_eq!(send_count(r#"{"chatset":{"user":{"sendCount":0}}}"#, Role::Visitor), 1, "missing role entry");
        assert_eq!(send_count(r#"{"chatset":{"visitor":{"sendCount":"1"}}}"#, Role::Visitor), 1, "numeric string");
        assert_eq!(send_count(r#"{"chatset":{"visitor":0,"user":2}}"#, Role::Visitor), 0, "legacy form");
        assert_eq!(send_count(r#"{"chatset":{"visitor":0,"user":2}}"#, Role::User), 2);
        assert_eq!(send_count(r#"{"chatset":{"user":{"sendCount":5}}}"#, Role::User), 2, "other values: unlimited");
        assert_eq!(send_count(r#"{"chatset":[]}"#, Role::User), 1, "chatset not an object");
    }
}

//! Server-built messages (spec 6.1) and the frame that carries every pushed message (6.3.3).
//! A leaf module: it knows nothing of stores or gateways.

use serde_json::{json, Value};

use crate::clock::now_ms;

/// A pushed message as a frame (spec 6.3.3).
pub fn single_chat_frame(message: &Value) -> Vec<u8> {
    json!({"type": "singleChat", "data": message, "timestamp": now_ms()}).to_string().into_bytes()
}

/// A party of a single-chat message: id (or redirect key), display name, avatar.
pub struct Party<'a> {
    pub id: Value,
    pub name: &'a str,
    pub avatar: &'a str,
}

/// A server-generated single-chat text-like message (spec 6.1), without `redirect`.
pub fn single_message(id: &str, from: &Party, to: &Party, kind: &str, text: &str, create_time: i64) -> Value {
    json!({
        "id": id,
        "from_avatar": from.avatar,
        "from_name": from.name,
        "from_id": from.id,
        "to_id": to.id,
        "to_name": to.name,
        "to_avatar": to.avatar,
        "chatType": "single",
        "type": kind,
        "data": {"data": text, "dataType": false, "otherData": null},
        "options": {},
        "create_time": create_time,
        "isremove": 0,
    })
}

/// A "we are friends now" notice (spec 4.3); both sides get one, with the same id and time.
pub fn friends_now_notice(id: &str, from: &Party, to: &Party, create_time: i64) -> Value {
    single_message(id, from, to, "systemNotice", "我们已经是好友了，可以开始聊天了", create_time)
}

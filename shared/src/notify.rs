//! The `Notifier` port: "deliver now if the user is connected, otherwise keep it durably".
//! This is the durable half; live WebSocket delivery plugs in behind the same trait.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::error::AppResult;
use crate::store::OfflineQueue;

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, user_id: i64, message: &Value) -> AppResult<()>;
}

/// Keeps every message in the recipient's offline queue.
pub struct OfflineNotifier {
    queue: Arc<dyn OfflineQueue>,
}

impl OfflineNotifier {
    pub fn new(queue: Arc<dyn OfflineQueue>) -> Self {
        OfflineNotifier { queue }
    }
}

#[async_trait]
impl Notifier for OfflineNotifier {
    async fn notify(&self, user_id: i64, message: &Value) -> AppResult<()> {
        self.queue.push(user_id, message).await
    }
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

//! The `Notifier` port: "deliver now if the user is connected, otherwise keep it durably".
//! Live WebSocket delivery with the offline queue behind it.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::error::AppResult;
use crate::push::{post_to_all, single_chat_frame, ConnectionGateway};
use crate::store::{ConnectionRegistry, OfflineQueue};

/// What a delivery did with a message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Recipients no current connection accepted it from, with the offline-queue key of their copy.
    pub queued: Vec<(i64, String)>,
}

/// `DELIVER(recipient, message, store_offline)` of spec 6.2 for many recipients at once.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Posts `message` as a `singleChat` frame to every current connection of each recipient;
    /// with `store_offline`, queues it for each recipient no connection accepted it from.
    async fn deliver(&self, recipients: &[i64], message: &Value, store_offline: bool) -> AppResult<Delivered>;
}

/// Live delivery (spec 6.2): every current connection of each recipient gets the frame; those no
/// connection accepted it from get it queued offline.
pub struct LiveNotifier {
    connections: Arc<dyn ConnectionRegistry>,
    gateway: Arc<dyn ConnectionGateway>,
    queue: Arc<dyn OfflineQueue>,
}

impl LiveNotifier {
    pub fn new(
        connections: Arc<dyn ConnectionRegistry>,
        gateway: Arc<dyn ConnectionGateway>,
        queue: Arc<dyn OfflineQueue>,
    ) -> Self {
        LiveNotifier { connections, gateway, queue }
    }
}

#[async_trait]
impl Notifier for LiveNotifier {
    async fn deliver(&self, recipients: &[i64], message: &Value, store_offline: bool) -> AppResult<Delivered> {
        let mut unique = recipients.to_vec();
        unique.sort_unstable();
        unique.dedup();
        // One registry round trip for all recipients, then the posts run concurrently.
        let connections = self.connections.current_connections(&unique).await?;
        let frame = single_chat_frame(message);
        let accepted = post_to_all(self.connections.as_ref(), self.gateway.as_ref(), &connections, &frame).await;
        let reached: HashSet<i64> =
            connections.iter().zip(&accepted).filter(|(_, ok)| **ok).map(|(c, _)| c.user_id).collect();
        let mut seen = HashSet::new();
        let missed: Vec<i64> =
            recipients.iter().copied().filter(|id| !reached.contains(id) && seen.insert(*id)).collect();
        if !store_offline || missed.is_empty() {
            return Ok(Delivered::default());
        }
        let items: Vec<(i64, Value)> = missed.iter().map(|&id| (id, message.clone())).collect();
        let keys = self.queue.push_many(&items).await?;
        Ok(Delivered { queued: missed.into_iter().zip(keys).collect() })
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

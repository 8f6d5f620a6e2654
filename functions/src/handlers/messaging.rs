//! Messaging endpoints (spec 6.5, 6.7, 6.8).

use std::sync::Arc;

use chat_shared::service::messaging::{self, Outgoing, Revoke};
use chat_shared::web::respond;
use chat_shared::AppState;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::authenticate;

const CHAT_TYPES: &[&str] = &["single", "group"];

/// POST /api/chat/socket/sendmessage — send a single or group message.
pub async fn send_message(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let out = Outgoing {
                sendto_id: p.int("sendto_id", "接收人/群的id值").at_least(1).required()?,
                chat_type: p.string("chatType", "接收类型").one_of(CHAT_TYPES).required()?,
                kind: p.string("type", "消息类型").required()?,
                data: p.string("data", "消息内容").required()?,
                options: messaging::parse_options(&p.string("options", "额外参数json字符串").or_default("")),
            };
            messaging::send(&state, &me, out).await
        }
        .await,
    )
}

/// POST /api/chat/chatGetmessageOffLine — flush my offline queue to my connections.
pub async fn get_offline_messages(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, _) = authenticate(&state, &req).await?;
            messaging::flush_offline(&state, &me).await?;
            Ok(json!("ok"))
        }
        .await,
    )
}

/// POST /api/chat/revokeMessage — revoke a message I sent within 5 minutes.
pub async fn revoke_message(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let to_id = p.int("to_id", "接收者id或者群id").at_least(1).required()?;
            // Validated as the client sends them; the notice uses the stored values (D7).
            p.string("to_name", "接收者或者群名称").len(1, 50).required()?;
            p.string("to_avatar", "接收者或者群头像").len(10, 1000).required()?;
            let id = p.string("id", "消息uuid").required()?;
            let chat_type = p.string("chatType", "聊天类型").one_of(CHAT_TYPES).required()?;
            p.int("create_time", "消息发送时间").at_least(1_000_000_000_000).required()?;
            messaging::revoke(&state, &me, Revoke { to_id, chat_type, id }).await
        }
        .await,
    )
}

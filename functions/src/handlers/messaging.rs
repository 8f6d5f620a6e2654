//! Messaging endpoints (spec 6.5, 6.7, 6.8) and the fan-out function behind them (6.2).

use std::sync::Arc;

use chat_shared::service::messaging::{self, Outgoing, Revoke};
use chat_shared::store::QueueJob;
use chat_shared::web::respond;
use chat_shared::{AppResult, AppState};
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

/// Lambda's SQS event (the fields the fan-out reads).
#[derive(Debug, serde::Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    #[serde(default)]
    pub body: String,
}

/// The partial batch response (`ReportBatchItemFailures`): SQS deletes every other record.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<SqsItemFailure>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsItemFailure {
    pub item_identifier: String,
}

/// Fan-out jobs of one batch run at once (each posts up to `PUSH_CONCURRENCY` frames at a time).
const JOBS_AT_ONCE: usize = 4;

/// The `message-fanout` function: each SQS record is a fan-out job (spec 6.2 item 4) or a page of
/// the keepalive (6.3.5). A job that
/// fails is reported, so SQS retries it alone (then its dead-letter queue); a record that is not
/// a job can never succeed, so it is logged and dropped rather than retried.
pub async fn message_fanout(state: Arc<AppState>, event: SqsEvent) -> AppResult<SqsBatchResponse> {
    use futures_util::stream::{self, StreamExt};
    let outcomes: Vec<Option<String>> = stream::iter(event.records)
        .map(|record| {
            let state = state.clone();
            async move {
                let job: QueueJob = match serde_json::from_str(&record.body) {
                    Ok(job) => job,
                    Err(e) => {
                        tracing::error!(record = %record.message_id, error = %e, "not a fan-out job; dropped");
                        return None;
                    }
                };
                match state.delivery.run(&job).await {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!(record = %record.message_id, ?job, error = %e, "fan-out job failed");
                        Some(record.message_id)
                    }
                }
            }
        })
        .buffer_unordered(JOBS_AT_ONCE)
        .collect()
        .await;
    let batch_item_failures =
        outcomes.into_iter().flatten().map(|item_identifier| SqsItemFailure { item_identifier }).collect();
    Ok(SqsBatchResponse { batch_item_failures })
}

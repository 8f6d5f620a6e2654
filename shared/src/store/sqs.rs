//! SQS adapter of [`FanoutQueue`]: a standard queue with a dead-letter queue behind it, consumed
//! by the `message-fanout` function through an event source mapping that reports partial batch
//! failures (template.yaml). [`SqsFanoutQueue::receive`] and [`SqsFanoutQueue::delete`] are that
//! mapping's side, for running the consumer outside Lambda (tests against moto).

use std::sync::OnceLock;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use super::{FanoutQueue, QueueJob};
use crate::error::{AppError, AppResult};

/// SendMessageBatch's limit.
const SEND_BATCH: usize = 10;

/// One received message, as Lambda's SQS event carries it.
#[derive(Debug, Clone)]
pub struct ReceivedJob {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

pub struct SqsFanoutQueue {
    shared: SdkConfig,
    endpoint: Option<String>,
    queue_url: String,
    client: OnceLock<aws_sdk_sqs::Client>,
}

fn sqs_error(operation: &str, e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::internal(format_args!("{operation}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
}

impl SqsFanoutQueue {
    /// The queue at `queue_url`; `endpoint` (or `AWS_ENDPOINT_URL_SQS`) points at an emulator.
    /// The client is built on first use: only functions that hand work over need it.
    pub fn new(shared: &SdkConfig, queue_url: &str, endpoint: Option<&str>) -> Self {
        SqsFanoutQueue {
            shared: shared.clone(),
            endpoint: endpoint.map(str::to_owned).or_else(|| super::dynamo::endpoint_from_env("SQS")),
            queue_url: queue_url.to_owned(),
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| {
            let mut config = aws_sdk_sqs::config::Builder::from(&self.shared).timeout_config(super::dynamo::timeouts());
            if let Some(url) = &self.endpoint {
                config = config.endpoint_url(url);
            }
            aws_sdk_sqs::Client::from_conf(config.build())
        })
    }

    /// Up to `max` (≤ 10) messages, each hidden for `visibility_secs`, waiting up to `wait_secs`.
    pub async fn receive(&self, max: i32, wait_secs: i32, visibility_secs: i32) -> AppResult<Vec<ReceivedJob>> {
        let out = self
            .client()
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| ReceivedJob {
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    pub async fn delete(&self, receipt_handle: &str) -> AppResult<()> {
        self.client()
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", e))?;
        Ok(())
    }
}

#[async_trait]
impl FanoutQueue for SqsFanoutQueue {
    async fn enqueue(&self, jobs: &[QueueJob], delay_secs: u32) -> AppResult<()> {
        for chunk in jobs.chunks(SEND_BATCH) {
            let mut entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let body = serde_json::to_string(job).map_err(AppError::internal)?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(delay_secs.min(900) as i32)
                        .build()
                        .map_err(AppError::internal)
                })
                .collect::<AppResult<Vec<_>>>()?;
            // Entries SQS failed (throttling, internal errors) are sent once more; a batch is
            // never reported queued while any of it is not.
            for attempt in 0..3 {
                let out = self
                    .client()
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await
                    .map_err(|e| sqs_error("SendMessageBatch", e))?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                entries.retain(|e| failed.contains(&e.id()));
                if entries.is_empty() {
                    break;
                }
                tracing::warn!(failed = entries.len(), attempt, "SendMessageBatch entries failed; sending them again");
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !entries.is_empty() {
                return Err(AppError::internal(format_args!("SendMessageBatch: {} jobs not queued", entries.len())));
            }
        }
        Ok(())
    }
}

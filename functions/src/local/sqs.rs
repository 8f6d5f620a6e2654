//! Lambda's SQS event source mapping, outside Lambda: receives batches from the fan-out queue,
//! hands each to the `message-fanout` handler as the SQS event AWS would send, and deletes every
//! record the handler did not report failed (`ReportBatchItemFailures`). Failed records become
//! visible again after the visibility timeout; the queue's redrive policy dead-letters them.
//! Used where the fan-out queue is a real (or emulated) SQS queue but no Lambda runs: tests
//! against moto.

use std::sync::Arc;
use std::time::Duration;

use chat_shared::store::sqs::SqsFanoutQueue;
use chat_shared::AppState;

use crate::handlers::{message_fanout, SqsEvent, SqsRecord};

/// Consumes `queue` with `state`'s delivery until the task is dropped.
pub async fn consume_fanout_queue(state: Arc<AppState>, queue: SqsFanoutQueue, visibility_secs: i32) {
    loop {
        let received = match queue.receive(10, 1, visibility_secs).await {
            Ok(received) => received,
            Err(e) => {
                tracing::warn!(error = %e, "could not receive fan-out jobs");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if received.is_empty() {
            continue;
        }
        let event = SqsEvent {
            records: received
                .iter()
                .map(|r| SqsRecord { message_id: r.message_id.clone(), body: r.body.clone() })
                .collect(),
        };
        let failed: Vec<String> = match message_fanout(state.clone(), event).await {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            // A failed invocation fails the whole batch.
            Err(_) => received.iter().map(|r| r.message_id.clone()).collect(),
        };
        for record in received.iter().filter(|r| !failed.contains(&r.message_id)) {
            if let Err(e) = queue.delete(&record.receipt_handle).await {
                tracing::warn!(error = %e, "could not delete a processed fan-out job");
            }
        }
    }
}

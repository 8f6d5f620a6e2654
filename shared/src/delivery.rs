//! Durable delivery (spec 6.2, N3): `DELIVER(recipient, message, store_offline = true)` for any
//! number of recipients, read top-down:
//!
//! 1. **persist once** — the message is stored once ([`OfflineQueue::store`]) before anyone is told;
//! 2. **fan out** — a small audience is served inside the request; a big one, a failure or the
//!    end of the request's time budget hands the recipients to the [`FanoutQueue`] in jobs of
//!    [`JOB_RECIPIENTS`] (SQS in AWS, consumed by the `message-fanout` function; the embedded
//!    queue in chat-local);
//! 3. **push or queue** — every current connection of a recipient gets the frame; a recipient no
//!    connection accepted it from gets a reference to the stored message in its offline queue.
//!
//! The same queue carries the keepalive's pages ([`Delivery::schedule_keepalive`]).
//!
//! [`Delivery::deliver`] returns `Ok` only when every recipient has the message pushed, queued
//! offline, or in the fan-out queue, so an acknowledged message survives the request's function
//! being killed right after answering. Delivery is at-least-once: a retried job may push a frame
//! twice (clients key messages by `id`), offline references are idempotent.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::error::AppResult;
use crate::message::single_chat_frame;
use crate::push::{post_to_all, ConnectionGateway, Posted};
use crate::store::{
    ConnectionRegistry, FanoutJob, FanoutQueue, KeepaliveJob, OfflineQueue, QueueJob, StoreJob, StoredMessage,
};

/// Audiences up to this size are pushed inside the request (one Redis round trip and at most
/// this many posts); bigger ones go to the fan-out queue at once.
pub const INLINE_AUDIENCE: usize = 64;
/// What the request may spend pushing before it hands the rest to the fan-out queue.
pub const INLINE_BUDGET: Duration = Duration::from_secs(3);
/// Recipients per fan-out job: one Redis round trip, ≤ 10 offline batch writes, and posts that
/// finish well inside the fan-out function's timeout.
pub const JOB_RECIPIENTS: usize = 250;
/// Registry shards per keepalive range job; a range job only splits itself into one job per
/// shard (at most 10 `SendMessageBatch` calls), a shard job pings that shard's connections.
pub const SHARDS_PER_RANGE: i64 = 100;

/// The keepalive frame (spec 6.3.5).
const PING: &[u8] = br#"{"type":"ping"}"#;

/// The delivery pipeline with its ports.
pub struct Delivery {
    connections: Arc<dyn ConnectionRegistry>,
    gateway: Arc<dyn ConnectionGateway>,
    offline: Arc<dyn OfflineQueue>,
    fanout: Arc<dyn FanoutQueue>,
}

impl Delivery {
    pub fn new(
        connections: Arc<dyn ConnectionRegistry>,
        gateway: Arc<dyn ConnectionGateway>,
        offline: Arc<dyn OfflineQueue>,
        fanout: Arc<dyn FanoutQueue>,
    ) -> Self {
        Delivery { connections, gateway, offline, fanout }
    }

    /// Delivers `message` to every recipient (duplicates ignored), durably: `Ok` once each has it
    /// pushed, queued offline, or in the fan-out queue; an error only when the message could not
    /// be stored or handed over at all.
    pub async fn deliver(&self, recipients: &[i64], message: &StoredMessage) -> AppResult<()> {
        if recipients.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.offline.store(message).await {
            // The message travels in its job instead; the worker stores it, then delivers.
            tracing::warn!(error = %e, "could not store a message; the fan-out queue takes it whole");
            let job = StoreJob { message: message.clone(), recipients: recipients.to_vec() };
            return self.fanout.enqueue(&[QueueJob::Store(job)], 0).await;
        }
        self.deliver_stored(recipients, message).await
    }

    /// [`Delivery::deliver`] of a message the caller has already stored.
    pub async fn deliver_stored(&self, recipients: &[i64], message: &StoredMessage) -> AppResult<()> {
        let mut seen = HashSet::new();
        let recipients: Vec<i64> = recipients.iter().copied().filter(|id| seen.insert(*id)).collect();
        if recipients.is_empty() {
            return Ok(());
        }
        if recipients.len() <= INLINE_AUDIENCE {
            match tokio::time::timeout(INLINE_BUDGET, self.push_or_queue(message, &recipients)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => tracing::warn!(error = %e, "inline delivery failed; the fan-out queue takes over"),
                Err(_) => tracing::warn!("inline delivery ran out of time; the fan-out queue takes over"),
            }
        }
        let jobs: Vec<QueueJob> = recipients
            .chunks(JOB_RECIPIENTS)
            .map(|chunk| QueueJob::Deliver(FanoutJob { message: message.key.clone(), recipients: chunk.to_vec() }))
            .collect();
        self.fanout.enqueue(&jobs, 0).await
    }

    /// Runs one job of the fan-out queue; an error asks the queue to run it again later.
    pub async fn run(&self, job: &QueueJob) -> AppResult<()> {
        match job {
            QueueJob::Deliver(job) => self.fan_out(job).await,
            // Storing fails again: the queue retries the job later (no new job per failure).
            QueueJob::Store(job) => {
                self.offline.store(&job.message).await?;
                self.deliver_stored(&job.recipients, &job.message).await
            }
            QueueJob::Keepalive(range) if range.to - range.from > 1 => {
                let shards = (range.from..range.to).map(|shard| KeepaliveJob { from: shard, to: shard + 1 });
                self.fanout.enqueue(&shards.map(QueueJob::Keepalive).collect::<Vec<_>>(), 0).await
            }
            QueueJob::Keepalive(range) => self.ping_shard(range.from).await.map(drop),
        }
    }

    /// The scheduled keepalive (spec 6.3.5) for a registry of `shards` shards: one range job per
    /// [`SHARDS_PER_RANGE`] shards, so the scheduled run's work grows by one queued job per 100k
    /// users and no run pings more than one shard's connections.
    pub async fn schedule_keepalive(&self, shards: i64) -> AppResult<usize> {
        let jobs: Vec<QueueJob> = (0..shards)
            .step_by(SHARDS_PER_RANGE as usize)
            .map(|from| QueueJob::Keepalive(KeepaliveJob { from, to: (from + SHARDS_PER_RANGE).min(shards) }))
            .collect();
        self.fanout.enqueue(&jobs, 0).await?;
        Ok(jobs.len())
    }

    /// Pings every live connection of one registry shard; gone ones are unregistered on the way.
    /// Returns how many took the ping.
    pub async fn ping_shard(&self, shard: i64) -> AppResult<usize> {
        let connections = self.connections.shard_connections(shard).await?;
        let posted = post_to_all(self.connections.as_ref(), self.gateway.as_ref(), &connections, PING).await;
        Ok(posted.into_iter().filter(|p| *p == Posted::Accepted).count())
    }

    /// Delivers one job's recipients.
    async fn fan_out(&self, job: &FanoutJob) -> AppResult<()> {
        let Some(message) = self.offline.load(&job.message).await? else {
            // Stored before the job was queued, so only its 30-day expiry removes it.
            tracing::error!(message = %job.message, "a fan-out job names no stored message; dropped");
            return Ok(());
        };
        self.push_or_queue(&message, &job.recipients).await
    }

    /// Posts the frame to every current connection of the recipients; those no connection
    /// accepted it from get it in their offline queue. Without the registry (Redis failing)
    /// nobody can be pushed to, so everyone gets it offline: the queue needs DynamoDB only.
    async fn push_or_queue(&self, message: &StoredMessage, recipients: &[i64]) -> AppResult<()> {
        let connections = match self.connections.current_connections(recipients).await {
            Ok(connections) => connections,
            Err(e) => {
                tracing::warn!(error = %e, recipients = recipients.len(), "no connection registry; queuing offline");
                Vec::new()
            }
        };
        let frame = single_chat_frame(&message.message);
        let posted = post_to_all(self.connections.as_ref(), self.gateway.as_ref(), &connections, &frame).await;
        let reached: HashSet<i64> =
            connections.iter().zip(&posted).filter(|(_, p)| **p == Posted::Accepted).map(|(c, _)| c.user_id).collect();
        let missed: Vec<i64> = recipients.iter().copied().filter(|id| !reached.contains(id)).collect();
        if missed.is_empty() {
            return Ok(());
        }
        self.offline.enqueue(&message.key, &missed).await
    }
}

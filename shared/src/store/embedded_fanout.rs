//! Embedded adapter of [`FanoutQueue`] for `chat-local`: jobs in the redb file, so work queued
//! before a crash is done after the restart. It behaves as the SQS queue does for the Lambda
//! functions: a taken job is hidden for a lease (the visibility timeout) and reappears if its
//! worker dies; a failed job is retried with backoff (1 s, doubling, at most 5 minutes: about
//! 20 minutes in all) and, after [`MAX_ATTEMPTS`], kept aside in a dead-letter table and logged;
//! dead-lettered jobs are tried again when chat-local starts (its redrive).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::Notify;

use super::embedded::{db_error, from_json, next_id, EmbeddedDb};
use super::embedded_tables::{DEAD, JOBS};
use super::{FanoutQueue, QueueJob};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult};

/// Runs of one job before it is dead-lettered (the SQS queue's `maxReceiveCount`).
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two runs of a failing job.
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// How long a taken job stays hidden from other takers.
const LEASE: Duration = Duration::from_secs(30);
/// Jobs a worker runs at once.
const BATCH: usize = 8;
/// How often an idle worker looks for jobs that became visible (retries, expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct EmbeddedFanoutQueue {
    db: EmbeddedDb,
    wake: Arc<Notify>,
}

fn to_json(job: &QueueJob) -> AppResult<String> {
    serde_json::to_string(job).map_err(AppError::internal)
}

impl EmbeddedFanoutQueue {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedFanoutQueue { db, wake: Arc::new(Notify::new()) }
    }

    /// Takes up to `max` visible jobs, hiding each for [`LEASE`]: `(id, failed runs, job)`.
    pub async fn take(&self, max: usize) -> AppResult<Vec<(u64, u32, QueueJob)>> {
        // A read first: an idle worker writes (and syncs) nothing.
        let any_visible = self
            .db
            .run(|db| {
                let now = now_ms() as u64;
                let txn = db.begin_read().map_err(db_error)?;
                let jobs = txn.open_table(JOBS).map_err(db_error)?;
                for entry in jobs.iter().map_err(db_error)? {
                    if entry.map_err(db_error)?.1.value().0 <= now {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await?;
        if !any_visible {
            return Ok(Vec::new());
        }
        self.db
            .write(move |txn| {
                let now = now_ms() as u64;
                let mut jobs = txn.open_table(JOBS).map_err(db_error)?;
                let mut taken = Vec::new();
                for entry in jobs.iter().map_err(db_error)? {
                    let (id, value) = entry.map_err(db_error)?;
                    let (visible_from, failures, json) = value.value();
                    if visible_from <= now {
                        taken.push((id.value(), failures, json.to_owned()));
                        if taken.len() == max {
                            break;
                        }
                    }
                }
                let lease_end = now + LEASE.as_millis() as u64;
                let mut out = Vec::with_capacity(taken.len());
                for (id, failures, json) in taken {
                    jobs.insert(id, (lease_end, failures, json.as_str())).map_err(db_error)?;
                    out.push((id, failures, from_json(&json)?));
                }
                Ok(out)
            })
            .await
    }

    /// The job is done.
    pub async fn ack(&self, id: u64) -> AppResult<()> {
        self.db.write(move |txn| txn.open_table(JOBS).map_err(db_error)?.remove(id).map_err(db_error).map(drop)).await
    }

    /// The job failed: run it again after a backoff, or dead-letter it after [`MAX_ATTEMPTS`].
    pub async fn fail(&self, id: u64, failures: u32, job: &QueueJob) -> AppResult<()> {
        let failures = failures + 1;
        let json = to_json(job)?;
        let dead = failures >= MAX_ATTEMPTS;
        let backoff = (1000u64 << failures.min(16)).min(MAX_BACKOFF_MS);
        self.db
            .write(move |txn| {
                let mut jobs = txn.open_table(JOBS).map_err(db_error)?;
                jobs.remove(id).map_err(db_error)?;
                if dead {
                    txn.open_table(DEAD).map_err(db_error)?.insert(id, json.as_str()).map_err(db_error)?;
                } else {
                    jobs.insert(id, (now_ms() as u64 + backoff, failures, json.as_str())).map_err(db_error)?;
                }
                Ok(())
            })
            .await?;
        if dead {
            tracing::error!(job = id, ?job, "fan-out job dead-lettered");
        }
        Ok(())
    }

    /// Jobs waiting or running, and jobs dead-lettered.
    pub async fn depth(&self) -> AppResult<(u64, u64)> {
        self.db
            .run(|db| {
                let txn = db.begin_read().map_err(db_error)?;
                let jobs = txn.open_table(JOBS).map_err(db_error)?.len().map_err(db_error)?;
                let dead = txn.open_table(DEAD).map_err(db_error)?.len().map_err(db_error)?;
                Ok((jobs, dead))
            })
            .await
    }

    /// Puts every dead-lettered job back in the queue.
    pub async fn redrive(&self) -> AppResult<usize> {
        let moved = self
            .db
            .write(|txn| {
                let mut dead = txn.open_table(DEAD).map_err(db_error)?;
                let mut jobs = txn.open_table(JOBS).map_err(db_error)?;
                let mut moved = Vec::new();
                for entry in dead.iter().map_err(db_error)? {
                    let (id, json) = entry.map_err(db_error)?;
                    moved.push((id.value(), json.value().to_owned()));
                }
                for (id, json) in &moved {
                    jobs.insert(*id, (0, 0, json.as_str())).map_err(db_error)?;
                    dead.remove(*id).map_err(db_error)?;
                }
                Ok(moved.len())
            })
            .await?;
        if moved > 0 {
            tracing::warn!(jobs = moved, "dead-lettered fan-out jobs put back in the queue");
        }
        Ok(moved)
    }

    /// Runs jobs with `handler` for as long as the process lives: the consumer that Lambda's SQS
    /// event source mapping is in AWS. Dead-lettered jobs get another chance first. Each job runs
    /// in a task of its own, so a panicking job counts as a failed one.
    pub async fn work<F, Fut>(self, handler: F)
    where
        F: Fn(QueueJob) -> Fut,
        Fut: Future<Output = AppResult<()>> + Send + 'static,
    {
        if let Err(e) = self.redrive().await {
            tracing::error!(error = %e, "could not put dead-lettered fan-out jobs back");
        }
        loop {
            let jobs = match self.take(BATCH).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "could not take fan-out jobs");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                let _ = tokio::time::timeout(IDLE_POLL, self.wake.notified()).await;
                continue;
            }
            let runs = jobs.into_iter().map(|(id, failures, job)| {
                let run = tokio::spawn(handler(job.clone()));
                async move {
                    let outcome = run.await.unwrap_or_else(|e| Err(AppError::internal(format_args!("job task: {e}"))));
                    (id, failures, job, outcome)
                }
            });
            for (id, failures, job, outcome) in join_all(runs).await {
                let settled = match outcome {
                    Ok(()) => self.ack(id).await,
                    Err(e) => {
                        tracing::warn!(job = id, failures, error = %e, "fan-out job failed; retrying later");
                        self.fail(id, failures, &job).await
                    }
                };
                if let Err(e) = settled {
                    // The lease runs out and the job comes back.
                    tracing::error!(job = id, error = %e, "could not settle a fan-out job");
                }
            }
        }
    }
}

#[async_trait]
impl FanoutQueue for EmbeddedFanoutQueue {
    async fn enqueue(&self, jobs: &[QueueJob], delay_secs: u32) -> AppResult<()> {
        let visible_from = now_ms() as u64 + u64::from(delay_secs) * 1000;
        let jsons = jobs.iter().map(to_json).collect::<AppResult<Vec<_>>>()?;
        self.db
            .write(move |txn| {
                let mut table = txn.open_table(JOBS).map_err(db_error)?;
                for json in &jsons {
                    let id = next_id(txn, "fanout_job")?;
                    table.insert(id, (visible_from, 0, json.as_str())).map_err(db_error)?;
                }
                Ok(())
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}

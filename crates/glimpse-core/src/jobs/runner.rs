//! The job runner of one region: N worker loops that claim jobs, run their kind's code
//! ([`super::Job`], from the runner's [`Registry`]) under a lease kept alive by a heartbeat, and record the outcome. The heartbeat also carries
//! cancel requests to the handler (through its cancellation token) and notices a lost lease.
//!
//! Crash behaviour: a killed process leaves its jobs `running` with a lease that expires; the
//! next claim (by any process sharing the database) takes them over and the handler resumes
//! from its checkpoint. On graceful shutdown running jobs are put back to `queued` at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::kind::{Handler, Registry};
use super::{JobError, JobRecord, JobState, Queue, store};
use crate::db::Db;

/// What a handler may do with its job while it runs.
pub struct JobContext {
    pub job: JobRecord,
    /// Fires on a cancel request, a lost lease, or shutdown.
    pub cancel: CancellationToken,
    db: Db,
    owner: String,
    cancel_requested: Arc<AtomicBool>,
    lease_lost: Arc<AtomicBool>,
}

impl JobContext {
    /// Persists progress (0–100) and the current phase.
    pub async fn progress(&self, pct: u8, phase: &str) -> Result<(), JobError> {
        match store::progress(&self.db, &self.job.id, &self.owner, pct, phase).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lost()),
            Err(e) => Err(JobError::Retryable(e.message)),
        }
    }

    /// Persists a resume point and optionally a partial result.
    pub async fn checkpoint(
        &self,
        checkpoint: serde_json::Value,
        result: Option<serde_json::Value>,
    ) -> Result<(), JobError> {
        match store::checkpoint(
            &self.db,
            &self.job.id,
            &self.owner,
            &checkpoint,
            result.as_ref(),
        )
        .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lost()),
            Err(e) => Err(JobError::Retryable(e.message)),
        }
    }

    /// The job's latest stored record (checkpoint and result included).
    pub async fn reload(&self) -> Result<JobRecord, JobError> {
        store::get(&self.db, &self.job.id)
            .await
            .map_err(|e| JobError::Retryable(e.message))?
            .ok_or_else(|| JobError::Permanent("job disappeared".into()))
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::SeqCst)
    }

    fn lost(&self) -> JobError {
        self.lease_lost.store(true, Ordering::SeqCst);
        self.cancel.cancel();
        JobError::Interrupted
    }
}

/// Tuning of a region's runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub workers: usize,
    pub lease: Duration,
    pub max_attempts: i64,
    pub per_project_running: i64,
    /// How often an idle worker looks for work that no in-process wake-up announced
    /// (jobs enqueued by another process, backoffs that ended, expired leases).
    pub poll: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The node this runner works for: its leases are `<node>/<process>-w<n>`
    /// ([`crate::nodes`]).
    pub node: String,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            workers: 2,
            lease: Duration::from_secs(30),
            max_attempts: 8,
            per_project_running: 2,
            poll: Duration::from_millis(500),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            node: "local".into(),
        }
    }
}

pub struct Runner {
    db: Db,
    queue: Arc<Queue>,
    handlers: Registry,
    config: RunnerConfig,
    owner: String,
}

impl Runner {
    pub fn new(db: Db, queue: Arc<Queue>, handlers: Registry, config: RunnerConfig) -> Runner {
        Runner {
            db,
            queue,
            handlers,
            owner: format!(
                "{}/{}-{}",
                config.node,
                std::process::id(),
                &glimpse_types::hex_id()[..8]
            ),
            config,
        }
    }

    /// Tells idle workers that there may be work (a job was enqueued or cancel requested).
    pub fn wake(&self) {
        self.queue.notify.notify_waiters();
    }

    /// Starts the worker loops; they stop when `shutdown` fires.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        (0..self.config.workers.max(1))
            .map(|n| {
                let me = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { me.worker(n, shutdown).await })
            })
            .collect()
    }

    async fn worker(self: Arc<Self>, n: usize, shutdown: CancellationToken) {
        let owner = format!("{}-w{n}", self.owner);
        let kinds = self.handlers.kinds();
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        while !shutdown.is_cancelled() {
            // Register interest before looking, so a wake-up during the claim is not lost.
            let notified = self.queue.notify.notified();
            let claimed = store::claim(
                &self.db,
                &owner,
                &kinds,
                lease,
                self.config.per_project_running,
            )
            .await;
            match claimed {
                Ok(Some(job)) => {
                    self.run_one(job, &owner, &shutdown).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "job claim failed"),
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    async fn run_one(&self, job: JobRecord, owner: &str, shutdown: &CancellationToken) {
        let Some(handler) = self.handlers.get(&job.kind) else {
            return;
        };
        let ctx = JobContext {
            cancel: shutdown.child_token(),
            cancel_requested: Arc::new(AtomicBool::new(job.cancel_requested)),
            lease_lost: Arc::new(AtomicBool::new(false)),
            db: self.db.clone(),
            owner: owner.to_string(),
            job,
        };
        tracing::info!(job = %ctx.job.id, kind = %ctx.job.kind, attempt = ctx.job.attempts, "job claimed");
        if ctx.job.cancel_requested || ctx.job.state == JobState::Canceling {
            self.wind_down(&*handler, &ctx).await;
            return;
        }
        let heartbeat = self.heartbeat(&ctx);
        let outcome = tokio::select! {
            r = handler.run(&ctx) => r,
            _ = ctx.cancel.cancelled() => Err(JobError::Interrupted),
        };
        heartbeat.abort();
        let (db, id) = (&self.db, ctx.job.id.as_str());
        match outcome {
            Ok(result) => {
                let ok = store::transition(
                    db,
                    id,
                    owner,
                    JobState::Succeeded,
                    None,
                    Some(&result),
                    None,
                )
                .await;
                if !matches!(ok, Ok(true)) {
                    tracing::warn!(job = %id, "job finished but its lease was lost; the new owner decides");
                } else {
                    tracing::info!(job = %id, "job succeeded");
                }
            }
            Err(JobError::Interrupted) if ctx.lease_lost.load(Ordering::SeqCst) => {
                tracing::warn!(job = %id, "job lease lost; another worker owns it now");
            }
            Err(JobError::Interrupted) if ctx.cancel_requested() => {
                self.wind_down(&*handler, &ctx).await;
            }
            Err(JobError::Interrupted) => {
                // Shutdown: hand the job back so the next start resumes it at once.
                let _ = store::transition(
                    db,
                    id,
                    owner,
                    JobState::Queued,
                    None,
                    None,
                    Some(glimpse_types::now()),
                )
                .await;
                tracing::info!(job = %id, "job requeued at shutdown");
            }
            Err(JobError::Retryable(msg)) if ctx.job.attempts < self.config.max_attempts => {
                let delay = self.backoff(ctx.job.attempts);
                let at =
                    glimpse_types::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(job = %id, error = %msg, retry_in_ms = delay.as_millis() as u64, "job will be retried");
                let _ =
                    store::transition(db, id, owner, JobState::Queued, Some(&msg), None, Some(at))
                        .await;
            }
            Err(JobError::Retryable(msg)) | Err(JobError::Permanent(msg)) => {
                tracing::warn!(job = %id, error = %msg, "job failed");
                handler.cleanup(&ctx).await;
                let _ = store::transition(db, id, owner, JobState::Failed, Some(&msg), None, None)
                    .await;
            }
        }
    }

    /// Cancel path: `canceling`, the handler's cleanup, then `canceled`.
    async fn wind_down(&self, handler: &dyn Handler, ctx: &JobContext) {
        let (db, id, owner) = (&self.db, ctx.job.id.as_str(), ctx.owner.as_str());
        if !matches!(
            store::transition(db, id, owner, JobState::Canceling, None, None, None).await,
            Ok(true)
        ) {
            return;
        }
        let cleanup_ctx = JobContext {
            cancel: CancellationToken::new(),
            cancel_requested: ctx.cancel_requested.clone(),
            lease_lost: ctx.lease_lost.clone(),
            db: db.clone(),
            owner: owner.to_string(),
            job: ctx.reload().await.unwrap_or_else(|_| ctx.job.clone()),
        };
        handler.cleanup(&cleanup_ctx).await;
        let _ = store::transition(db, id, owner, JobState::Canceled, None, None, None).await;
        tracing::info!(job = %id, "job canceled");
    }

    fn heartbeat(&self, ctx: &JobContext) -> JoinHandle<()> {
        let db = self.db.clone();
        let id = ctx.job.id.clone();
        let owner = ctx.owner.clone();
        let every = self.config.lease / 3;
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let cancel = ctx.cancel.clone();
        let requested = ctx.cancel_requested.clone();
        let lost = ctx.lease_lost.clone();
        let poll = self.config.poll.min(every);
        tokio::spawn(async move {
            let mut last_beat = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(poll).await;
                // Cancel requests are looked for every poll; the lease is extended every lease/3.
                let beat = last_beat.elapsed() >= every;
                let answer = if beat {
                    last_beat = tokio::time::Instant::now();
                    store::heartbeat(&db, &id, &owner, lease).await
                } else {
                    store::get(&db, &id).await.map(|j| {
                        j.filter(|j| j.lease_owner.as_deref() == Some(&owner))
                            .map(|j| j.cancel_requested)
                    })
                };
                match answer {
                    Ok(Some(false)) => {}
                    Ok(Some(true)) => {
                        requested.store(true, Ordering::SeqCst);
                        cancel.cancel();
                        return;
                    }
                    Ok(None) => {
                        lost.store(true, Ordering::SeqCst);
                        cancel.cancel();
                        return;
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "job heartbeat failed"),
                }
            }
        })
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
        self.config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.config.backoff_max)
    }
}

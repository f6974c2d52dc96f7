//! Durable jobs: every long task (cross-region replication, in-region copy, volume upload,
//! snapshot) is a row in the region's `jobs` table, run by a [`runner`] under a lease.
//!
//! Life of a job: `queued` → `running` (claimed, lease extended by a heartbeat) → `succeeded`
//! | `failed` | (after a cancel request) `canceling` → `canceled`. A retryable failure puts it
//! back to `queued` with a backoff; a worker that dies leaves an expired lease that any worker
//! takes over, and the handler resumes from the job's `checkpoint`. The kind's code (a
//! [`Job`]: its `KIND`, typed `Params`, run, cleanup; registered in a [`Registry`]) does the
//! work and cleans up partial output on cancel or failure. Each API
//! maps the generic state to its own words (the replicator's `replicate_requested`…, IMS's
//! `INIT`/`RUNNING`/`SUCCESS`/`FAIL`).
//!
//! Crash behaviour: all state is in the database; a job is completed by a conditional update
//! guarded by the lease owner, so it ends exactly once even if a paused worker wakes up late.

pub mod kind;
pub mod runner;
pub mod store;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use kind::{Job, Registry};
pub use runner::{JobContext, Runner, RunnerConfig};

use tokio::sync::Notify;

use crate::db::Db;
use crate::error::Result;

/// A region's job queue: what the APIs use to enqueue, read and cancel jobs. The region's
/// [`Runner`] shares its wake-up signal.
pub struct Queue {
    db: Db,
    pub(crate) notify: Notify,
}

impl Queue {
    pub fn new(db: Db) -> Queue {
        Queue {
            db,
            notify: Notify::new(),
        }
    }

    /// Enqueues a job (or returns the one with the same idempotency key); the bool is true if
    /// this call created it.
    pub async fn enqueue(&self, new: &NewJob) -> Result<(JobRecord, bool)> {
        let out = store::enqueue(&self.db, new).await?;
        self.notify.notify_waiters();
        Ok(out)
    }

    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>> {
        store::get(&self.db, id).await
    }

    /// The job of kind `J` a project created with an idempotency key, if any.
    pub async fn by_key<J: Job>(&self, project: &str, key: &str) -> Result<Option<JobRecord>> {
        store::by_key(&self.db, project, J::KIND, key).await
    }

    /// Jobs of kind `J`, oldest first; `None` = every project's.
    pub async fn list<J: Job>(&self, project: Option<&str>) -> Result<Vec<JobRecord>> {
        store::list(&self.db, J::KIND, project).await
    }

    /// Forgets finished jobs that ended more than `retention` ago (and so their idempotency
    /// keys: the same key then makes a new job); returns how many.
    pub async fn purge_finished(&self, retention: std::time::Duration) -> Result<u64> {
        let age = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let before = glimpse_types::now()
            .checked_sub_signed(age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        store::purge_finished(&self.db, before).await
    }

    /// Requests cancellation of a queued or running job; false if it is in another state.
    pub async fn request_cancel(&self, id: &str) -> Result<bool> {
        let changed = store::request_cancel(&self.db, id).await?;
        self.notify.notify_waiters();
        Ok(changed)
    }
}

/// The generic state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Canceling,
    Succeeded,
    Failed,
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Canceling => "canceling",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        use JobState::*;
        [Queued, Running, Canceling, Succeeded, Failed, Canceled]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Canceled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub project_id: String,
    pub state: JobState,
    /// The handler's current step, free text (e.g. `copying`, `verifying`).
    pub phase: String,
    pub cancel_requested: bool,
    /// 0–100, never decreasing.
    pub progress: u8,
    pub params: serde_json::Value,
    pub checkpoint: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i64,
    pub idempotency_key: Option<String>,
    pub lease_owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job to enqueue; [`NewJob::of`] makes one of a kind.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// A chosen id (e.g. IMS's 32-hex form); `None` gives a UUID.
    pub id: Option<String>,
    pub kind: String,
    pub project_id: String,
    pub phase: String,
    pub params: serde_json::Value,
    /// Same key, same project and kind ⇒ the existing job is returned, nothing new runs.
    pub idempotency_key: Option<String>,
}

/// How a handler's attempt ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth retrying later (the other region is down, a connection reset).
    Retryable(String),
    /// Will never work (source deleted, bad data); the job fails now.
    Permanent(String),
    /// The job's cancel token fired (cancel request, lost lease or shutdown).
    Interrupted,
}

impl From<crate::Error> for JobError {
    fn from(e: crate::Error) -> JobError {
        match e.kind {
            crate::Kind::Internal | crate::Kind::Unavailable => JobError::Retryable(e.message),
            _ => JobError::Permanent(e.message),
        }
    }
}

//! A job kind: the [`Job`] trait each kind implements (its `KIND`, typed parameters, run,
//! cleanup) and the [`Registry`] a region's runner is built from. The runner owns the
//! (de)serialisation: a kind's code sees its `Params` value, never the stored JSON, submitters
//! build rows with [`NewJob::of`] and views read them with [`JobRecord::params_as`], so a
//! kind string and a params shape are each named once (in the kind's `impl Job`).
//!
//! Stored format: `kind` is `Job::KIND`, `params` is `Params` as serde_json writes it. Rows
//! outlive releases, so neither may change without a migration. A row whose params do not
//! read as its kind's fails at once (permanently) with "unreadable job parameters: …".

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

use super::{JobContext, JobError, JobRecord, NewJob};
use crate::error::{Error, Result};

/// The code of one kind of job.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// The `kind` column of this kind's jobs.
    const KIND: &'static str;

    /// Everything a job of this kind needs, fixed at submission (the `params` column).
    type Params: Serialize + DeserializeOwned + Send + Sync;

    /// Runs or resumes the job (check `ctx.job.checkpoint`). Long loops must watch
    /// `ctx.cancel` and return [`JobError::Interrupted`] when it fires. The returned value is
    /// stored as the job's result.
    async fn run(&self, ctx: &JobContext, params: Self::Params) -> Result<Value, JobError>;

    /// Removes partial output after a cancel or a final failure (e.g. a half-made image).
    async fn cleanup(&self, ctx: &JobContext, params: &Self::Params) {
        let _ = (ctx, params);
    }
}

impl NewJob {
    /// A job of kind `J` in `project_id` with these parameters: a UUID id, phase `queued`,
    /// no idempotency key (struct update syntax sets the rest:
    /// `NewJob { phase: "requested".into(), ..NewJob::of::<J>(project, &params)? }`).
    pub fn of<J: Job>(project_id: impl Into<String>, params: &J::Params) -> Result<NewJob> {
        Ok(NewJob {
            id: None,
            kind: J::KIND.into(),
            project_id: project_id.into(),
            phase: "queued".into(),
            params: serde_json::to_value(params).map_err(Error::internal)?,
            idempotency_key: None,
        })
    }
}

impl JobRecord {
    /// This job's parameters as kind `J` reads them; an error if the job is of another kind
    /// or its stored params do not read as `J::Params`.
    pub fn params_as<J: Job>(&self) -> std::result::Result<J::Params, JobError> {
        if self.kind != J::KIND {
            return Err(JobError::Permanent(format!(
                "a {} job is not a {} job",
                self.kind,
                J::KIND
            )));
        }
        J::Params::deserialize(&self.params)
            .map_err(|e| JobError::Permanent(format!("unreadable job parameters: {e}")))
    }
}

/// A kind as the runner holds it: parameters already decoded for the kind's code.
#[async_trait]
pub(super) trait Handler: Send + Sync {
    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError>;
    async fn cleanup(&self, ctx: &JobContext);
}

struct Typed<J>(Arc<J>);

#[async_trait]
impl<J: Job> Handler for Typed<J> {
    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let params = ctx.job.params_as::<J>()?;
        self.0.run(ctx, params).await
    }

    async fn cleanup(&self, ctx: &JobContext) {
        match ctx.job.params_as::<J>() {
            Ok(params) => self.0.cleanup(ctx, &params).await,
            Err(e) => {
                tracing::warn!(job = %ctx.job.id, error = ?e, "nothing to clean up without parameters");
            }
        }
    }
}

/// The job kinds a runner runs, each under its [`Job::KIND`].
#[derive(Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
}

impl Registry {
    /// Adds kind `J`, run by `job`. A kind registered twice is a programming error (panics).
    pub fn register<J: Job>(mut self, job: Arc<J>) -> Registry {
        let before = self.handlers.insert(J::KIND, Arc::new(Typed(job)));
        assert!(before.is_none(), "job kind {:?} registered twice", J::KIND);
        self
    }

    pub(super) fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    pub(super) fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(kind).cloned()
    }
}

//! The image replicator (seeds 000 and 001): copy an image into the region of another tenant
//! as a durable job of kind [`KIND`] in the SOURCE region's job queue.
//!
//! * [`submit`] checks a request the way the seeds' error tables say (source image as the
//!   caller sees it, destination tenant and the caller's role in it, the destination region's
//!   health and capabilities) and enqueues the job with every parameter the copy needs,
//!   including the destination image id, chosen at submission so a retried or resumed job
//!   never creates a second image.
//! * [`handler::ReplicateHandler`] runs it: create the destination image (as the service
//!   account, owned by the destination tenant), stream the bytes source → destination, verify
//!   md5 and sha512, done. Cancel and final failure delete the half-made destination image.
//! * [`crate::images::adopt`] is the destination side of "content the region already holds moves no bytes":
//!   the job asks before streaming, the destination shares an existing blob.
//! * [`view`] is the seed's job object (`glimpse_types::replicator::ReplicationJob`);
//!   [`status`] maps the generic job states to the seed's words.
//!
//! Regions share nothing but HTTP: everything here talks to the public Glance v2 API of the
//! source region (this one) and of the destination region (from the service token's catalog),
//! and to identity, over HTTP (with `glimpse_client`, the client the CLI and the tests use),
//! even when both regions run in this process.
//!
//! Crash behaviour: the job row is the only state. A killed worker's job is taken over when
//! its lease expires; the handler finds the destination image by its pre-chosen id and either
//! skips the copy (already active with the right hashes) or continues the upload: the
//! destination reverts an interrupted upload to `queued` and keeps the bytes that arrived
//! (filesystem store), so the copy goes on from the last byte it holds (`resumed_from` in the
//! job's result, `X-Glimpse-Job-Resumed-From` in its view); from byte zero when it holds none
//! (an S3 store keeps no partial upload).

pub mod handler;
pub mod pause;
pub mod submit;
#[cfg(test)]
mod tests;

pub use glimpse_types::replicator::Capabilities;
use glimpse_types::replicator::{ReplicationJob, ReplicationStatus};
use serde::{Deserialize, Serialize};

use crate::config::ReplicationConfig;
use crate::jobs::{Job, JobRecord, JobState};

pub use handler::ReplicateHandler;
pub use submit::{Submission, submit};

/// The job kind of a replication (named by its [`Job`] impl).
pub const KIND: &str = <ReplicateHandler as Job>::KIND;

/// Custom properties every replica carries (where it came from, which job made it).
pub const PROP_FROM_REGION: &str = "replicated_from_region";
pub const PROP_FROM_IMAGE: &str = "replicated_from_image";
pub const PROP_JOB: &str = "replication_job_id";

/// Everything a replication job needs, fixed at submission (the job's `params`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub source_image_id: String,
    pub source_image_name: Option<String>,
    pub source_region_id: String,
    /// The project that asked for the copy (the job's project).
    pub source_tenant_id: String,
    pub destination_region_id: String,
    pub destination_tenant_id: String,
    /// Chosen at submission; the handler creates the destination image with this id.
    pub destination_image_id: String,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub size: u64,
    /// Who asked (a user id), for the log.
    pub requested_by: String,
}

impl From<&ReplicationConfig> for Capabilities {
    fn from(c: &ReplicationConfig) -> Capabilities {
        Capabilities {
            accept_replicas: c.accept_replicas,
            license_switch_types: c.license_switch_types.clone(),
            official_template_types: c.official_template_types.clone(),
        }
    }
}

/// The seed's status word for a job: `replicate_requested` (queued, never started),
/// `replicating` (running, or waiting for a retry), `replicated`, `cancel_requested`,
/// `canceling`, `canceled`, `error`.
pub fn status(job: &JobRecord) -> ReplicationStatus {
    use ReplicationStatus as S;
    match job.state {
        JobState::Queued | JobState::Running if job.cancel_requested => S::CancelRequested,
        JobState::Queued if job.attempts == 0 => S::ReplicateRequested,
        JobState::Queued | JobState::Running => S::Replicating,
        JobState::Canceling => S::Canceling,
        JobState::Succeeded => S::Replicated,
        JobState::Failed => S::Error,
        JobState::Canceled => S::Canceled,
    }
}

/// The view of a replication job as seed 001 shows it (`None` if its params are not a
/// replication's).
pub fn view(job: &JobRecord) -> Option<ReplicationJob> {
    let p = job.params_as::<ReplicateHandler>().ok()?;
    let destination_image_id = job
        .result
        .as_ref()
        .and_then(|r| r.get("destination_image_id"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some(ReplicationJob {
        copy_progress: job.progress.min(100),
        destination_image_id,
        destination_region_id: p.destination_region_id,
        destination_tenant_id: p.destination_tenant_id,
        job_id: job.id.clone(),
        source_image_id: p.source_image_id,
        source_image_name: p.source_image_name,
        source_region_id: p.source_region_id,
        source_tenant_id: p.source_tenant_id,
        status: status(job),
    })
}

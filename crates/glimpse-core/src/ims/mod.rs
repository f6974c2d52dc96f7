//! Huawei IMS's in-region image copy (seed 003, `POST /v1/cloudimages/{image_id}/copy`) as a
//! durable job of kind [`KIND`], and the IMS status of a job ([`status`]; the API renders
//! the job view, `glimpse_types::ims::ImsJob`).
//!
//! * [`submit`] checks the request (name, description, the source as the caller sees it, ISO
//!   and whole-server images refused, the keys involved usable by the caller's project) and
//!   enqueues a job with a 32-hex id and the new image's id chosen up front.
//! * [`handler::CopyHandler`] makes the copy. Without re-encryption the copy's record shares
//!   the source's immutable blob (and, for an encrypted source, its wrapped data key), so a
//!   copy of any size takes one transaction. With a new `cmk_id` the bytes are read (decrypted
//!   if needed) and sealed under a fresh data key, their sha512 checked against the source's.
//!   Either way the new record is inserted `active` by ONE statement that also requires the
//!   source row to still be there: nothing half-made is ever visible.
//!
//! Crash behaviour: the job row is the only state. A resumed job finds the new image by its
//! pre-chosen id (done) or starts the copy again; a sealed blob a crash left behind names no
//! image and is removed by the orphan cleaner.

pub mod handler;
pub mod submit;
#[cfg(test)]
mod tests;

use glimpse_types::ims::ImsStatus;
use serde::{Deserialize, Serialize};

use crate::jobs::{Job, JobRecord, JobState};

pub use handler::CopyHandler;
pub use submit::{CopyRequest, submit};

/// The job kind of an in-region copy (named by its [`Job`] impl).
pub const KIND: &str = <CopyHandler as Job>::KIND;
/// Huawei's `job_type` of an in-region copy.
pub const JOB_TYPE: &str = glimpse_types::ims::COPY_JOB_TYPE;

/// Huawei's encryption properties (B.4): "1" encrypted; the key id.
pub const PROP_ENCRYPTED: &str = "__system__encrypted";
pub const PROP_CMK: &str = "__system__cmkid";
/// Huawei's image description property.
pub const PROP_DESCRIPTION: &str = "__description";

/// Error codes of the IMS dialect (see docs/ims.md).
pub mod codes {
    pub const BAD_REQUEST: &str = "IMG.0001";
    pub const BAD_NAME: &str = "IMG.0002";
    pub const BAD_DESCRIPTION: &str = "IMG.0004";
    pub const NOT_ACTIVE: &str = "IMG.0061";
    pub const ISO_IMAGE: &str = "IMG.0062";
    pub const WHOLE_IMAGE: &str = "IMG.0063";
    pub const KEY_NOT_FOUND: &str = "IMG.0064";
    pub const KEY_UNUSABLE: &str = "IMG.0065";
    pub const JOB_FAILED: &str = "IMG.0066";
}

/// Everything a copy needs, fixed at submission (the job's `params`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub source_image_id: String,
    /// The new image's id, chosen at submission so a resumed job never makes two.
    pub image_id: String,
    pub name: String,
    pub description: Option<String>,
    /// Re-encrypt with this key (else: same encryption as the source).
    pub cmk_id: Option<String>,
    /// The new image's owner: the project that asked.
    pub project_id: String,
    pub requested_by: String,
}

/// IMS's status word: `INIT` (never started), `RUNNING`, `SUCCESS`, `FAIL`.
pub fn status(job: &JobRecord) -> ImsStatus {
    match job.state {
        JobState::Queued if job.attempts == 0 => ImsStatus::Init,
        JobState::Queued | JobState::Running | JobState::Canceling => ImsStatus::Running,
        JobState::Succeeded => ImsStatus::Success,
        JobState::Failed | JobState::Canceled => ImsStatus::Fail,
    }
}

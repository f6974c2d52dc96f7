//! Huawei IMS's wire vocabulary for the in-region copy (seed 003): the request, the job id it
//! answers and the job view (B.3), shared by the API and its clients. Fields are declared in
//! alphabetical order: that is the order the API has always written them in.

use serde::{Deserialize, Serialize};

/// Huawei's `job_type` of an in-region copy.
pub const COPY_JOB_TYPE: &str = "imsCopyImageInRegionJob";

/// The body of `POST /v1/cloudimages/{image_id}/copy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CopyRequest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmk_id: Option<String>,
}

/// `{"job_id": …}`: what the copy answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobId {
    pub job_id: String,
}

/// IMS's status word of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ImsStatus {
    /// Never started.
    Init,
    Running,
    Success,
    Fail,
}

/// A job as IMS shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImsJob {
    /// `2026-11-22T07:02:15.123Z`.
    pub begin_time: String,
    /// Same format; empty while the job runs.
    pub end_time: String,
    pub entities: Entities,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
    pub job_id: String,
    pub job_type: String,
    pub status: ImsStatus,
}

/// What a copy job made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    pub process_percent: f64,
}

/// IMS's time format: milliseconds and a literal `Z`.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

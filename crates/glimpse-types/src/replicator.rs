//! The image replicator's wire vocabulary (seeds 000 and 001, and the region-to-region
//! extension calls): what `…/v2/extension/image_replicator/…` answers and accepts, shared by
//! the API that renders it and the clients (the CLI, other regions, the tests) that read it.

use serde::{Deserialize, Serialize};

/// A job's status word (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationStatus {
    /// Queued, never started.
    ReplicateRequested,
    /// Running, or waiting for a retry.
    Replicating,
    Replicated,
    CancelRequested,
    Canceling,
    Canceled,
    Error,
}

impl ReplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationStatus::ReplicateRequested => "replicate_requested",
            ReplicationStatus::Replicating => "replicating",
            ReplicationStatus::Replicated => "replicated",
            ReplicationStatus::CancelRequested => "cancel_requested",
            ReplicationStatus::Canceling => "canceling",
            ReplicationStatus::Canceled => "canceled",
            ReplicationStatus::Error => "error",
        }
    }

    /// Whether a job in this status may still be canceled (`DELETE` answers 409 otherwise).
    pub fn cancelable(self) -> bool {
        matches!(
            self,
            ReplicationStatus::ReplicateRequested | ReplicationStatus::Replicating
        )
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ReplicationStatus::Replicated | ReplicationStatus::Canceled | ReplicationStatus::Error
        )
    }
}

impl PartialEq<&str> for ReplicationStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ReplicationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job as seed 001 shows it: exactly these fields, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationJob {
    pub copy_progress: u8,
    pub destination_image_id: Option<String>,
    pub destination_region_id: String,
    pub destination_tenant_id: String,
    pub job_id: String,
    pub source_image_id: String,
    pub source_image_name: Option<String>,
    pub source_region_id: String,
    pub source_tenant_id: String,
    pub status: ReplicationStatus,
}

/// The body of `POST …/jobs` (seed 000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicateRequest {
    pub image_id: String,
    pub tenant_id_dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// What `POST …/jobs` answers (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCreated {
    pub job_id: String,
}

/// What a region accepts as the destination of a replication
/// (`GET …/capabilities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub accept_replicas: bool,
    pub license_switch_types: Vec<String>,
    pub official_template_types: Vec<String>,
}

/// The body of `POST …/adopt`: publish a queued replica from content the region holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptRequest {
    pub image_id: String,
    pub size: u64,
    /// md5, lower-case hex.
    pub checksum: String,
    /// sha512, lower-case hex.
    pub os_hash_value: String,
}

/// What `POST …/adopt` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopted {
    pub adopted: bool,
}

/// What `GET …/uploads/{image_id}` answers: the bytes of a cut upload the region holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOffset {
    pub image_id: String,
    pub offset: u64,
}

/// What `GET /v2/extension/license_switch/types` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseSwitchTypes {
    pub license_switch_types: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_are_the_seeds() {
        for s in [
            ReplicationStatus::ReplicateRequested,
            ReplicationStatus::Replicating,
            ReplicationStatus::Replicated,
            ReplicationStatus::CancelRequested,
            ReplicationStatus::Canceling,
            ReplicationStatus::Canceled,
            ReplicationStatus::Error,
        ] {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.as_str().into())
            );
        }
        assert!(ReplicationStatus::Replicating.cancelable());
        assert!(!ReplicationStatus::CancelRequested.cancelable());
        assert!(ReplicationStatus::Error.is_final());
    }
}

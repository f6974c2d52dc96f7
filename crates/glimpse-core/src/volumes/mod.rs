//! Volumes: the Cinder subset of one region, without HTTP. A volume is a real sparse raw file
//! under the region's volume directory ([`files`]), described by a row of `volumes`
//! ([`repo`]); every access is decided in [`policy`] (another project's volume is 404, a
//! reader's write is 403).
//!
//! * [`records`]: create (blank, or from an image), show, list, update, extend, delete.
//! * [`attach`]: Cinder's attach actions (`os-reserve`, `os-attach`, `os-begin_detaching`,
//!   `os-detach`, …) and Nova's `os-volume_attachments`, which both end in the one attachment
//!   row a volume may have (no multiattach).
//! * [`upload`]: `os-volume_upload_image` (seed 002): checks, the Glance record, and the
//!   durable job ([`upload::UploadHandler`]) that converts the volume with `qemu-img` and
//!   publishes it through the image upload pipeline.
//! * [`create`]: the durable job ([`create::CreateHandler`]) that makes a volume's file
//!   (blank, or converted from an image) and moves it `creating → available`.
//!
//! Crash behaviour: every state change is one conditional UPDATE. Creations and uploads are
//! durable jobs, taken over after a crash; a job resumes from the volume's and image's state.
//! [`recover`] (run at start-up by [`crate::cloud::recover`]) finishes deletions a crash interrupted and removes
//! the image of an upload whose job was never enqueued.

pub mod attach;
pub mod create;
pub mod files;
pub mod policy;
pub mod records;
mod repo;
pub mod upload;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::jobs::Job;
use crate::region::Region;

pub use records::{NewVolume, create, delete, get, list, update};

/// The one volume type, as Cinder names its default type.
pub const DEFAULT_TYPE: &str = "__DEFAULT__";
/// The default volume type's id (Cinder makes a fresh UUID per deployment; ours is fixed).
pub const DEFAULT_TYPE_ID: &str = "5d3a1ee6-2f3a-4e3c-9a8e-3b0f3c3c5f0d";
/// The one availability zone, Cinder's default name.
pub const AVAILABILITY_ZONE: &str = "nova";
/// Longest name and description (Cinder's column sizes).
pub const MAX_NAME: usize = 255;

/// A volume's status, in Cinder's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeStatus {
    Creating,
    Available,
    Reserved,
    Attaching,
    InUse,
    Detaching,
    Uploading,
    Extending,
    Deleting,
    Error,
    ErrorDeleting,
}

impl VolumeStatus {
    pub const ALL: [VolumeStatus; 11] = [
        VolumeStatus::Creating,
        VolumeStatus::Available,
        VolumeStatus::Reserved,
        VolumeStatus::Attaching,
        VolumeStatus::InUse,
        VolumeStatus::Detaching,
        VolumeStatus::Uploading,
        VolumeStatus::Extending,
        VolumeStatus::Deleting,
        VolumeStatus::Error,
        VolumeStatus::ErrorDeleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VolumeStatus::Creating => "creating",
            VolumeStatus::Available => "available",
            VolumeStatus::Reserved => "reserved",
            VolumeStatus::Attaching => "attaching",
            VolumeStatus::InUse => "in-use",
            VolumeStatus::Detaching => "detaching",
            VolumeStatus::Uploading => "uploading",
            VolumeStatus::Extending => "extending",
            VolumeStatus::Deleting => "deleting",
            VolumeStatus::Error => "error",
            VolumeStatus::ErrorDeleting => "error_deleting",
        }
    }

    pub fn parse(s: &str) -> Option<VolumeStatus> {
        VolumeStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One attachment of a volume to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub id: String,
    pub volume_id: String,
    /// `None` while only reserved (`os-reserve` without a server yet).
    pub server_id: Option<String>,
    pub mountpoint: Option<String>,
    /// `attaching` or `attached`.
    pub attach_status: String,
    pub attached_at: Option<DateTime<Utc>>,
}

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size_gb: i64,
    pub status: VolumeStatus,
    pub previous_status: Option<VolumeStatus>,
    pub volume_type: String,
    pub availability_zone: String,
    pub bootable: bool,
    pub source_image_id: Option<String>,
    /// Glance metadata of the source image (Cinder's `volume_image_metadata`).
    pub image_metadata: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The image an `os-volume_upload_image` is making while the volume is `uploading`
    /// (recorded before the image exists, so that [`recover`] can find a stray one).
    pub upload_image_id: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl Volume {
    /// Bytes of the volume's file.
    pub fn size_bytes(&self) -> u64 {
        (self.size_gb.max(0) as u64) << 30
    }
}

/// Start-up recovery: volumes a crash left `deleting` lose their file and their row; a
/// `creating` volume whose job was never enqueued goes to `error`, and an `uploading` volume
/// with no live upload job loses the image it names if that is still `queued`, and goes back
/// (`in-use` if attached, else `available`). Volumes whose jobs exist are left to those jobs,
/// which are taken over.
pub async fn recover(region: &Region) -> Result<u64> {
    let ids = repo::ids_with_status(&region.db, VolumeStatus::Deleting).await?;
    for id in &ids {
        files::remove(region, id).await?;
        repo::delete_row(&region.db, id).await?;
    }
    let orphans = repo::without_job(
        &region.db,
        VolumeStatus::Creating,
        <create::CreateHandler as Job>::KIND,
    )
    .await?;
    for id in &orphans {
        repo::step(&region.db, id, VolumeStatus::Creating, VolumeStatus::Error).await?;
    }
    // An upload without a job: its process died after the volume went `uploading` and
    // before the job's enqueue committed (or a job's cleanup could not restore the volume).
    // The image the volume names, if its record was made and is still `queued`, would never
    // be filled: it goes, then the volume goes back.
    let stuck = repo::without_job(
        &region.db,
        VolumeStatus::Uploading,
        <upload::UploadHandler as Job>::KIND,
    )
    .await?;
    let mut strays = 0;
    for id in &stuck {
        if let Some(v) = repo::load(&region.db, id).await?
            && let Some(image_id) = v.upload_image_id.as_deref()
        {
            // A stray image the repair could not delete is not worth a region that will not
            // start: it is logged, and the user can delete it.
            match upload::discard_stray_image(region, &v, image_id).await {
                Ok(deleted) => strays += usize::from(deleted),
                Err(e) => {
                    tracing::error!(volume = %id, image = %image_id, error = %e,
                        "could not delete the image of an upload that never got its job");
                }
            }
        }
        repo::end_upload(&region.db, id, None).await?;
    }
    // An extension a crash interrupted: the file goes back to the recorded size (it only
    // ever grows by zeros), the volume back to available.
    let extending = repo::ids_with_status(&region.db, VolumeStatus::Extending).await?;
    for id in &extending {
        if let Some(v) = repo::load(&region.db, id).await? {
            files::resize(region, id, v.size_bytes()).await?;
        }
        repo::step(
            &region.db,
            id,
            VolumeStatus::Extending,
            VolumeStatus::Available,
        )
        .await?;
    }
    let n = ids.len() + orphans.len() + stuck.len() + extending.len();
    if n > 0 {
        tracing::warn!(region = %region.name, deleted = ids.len(), creating = orphans.len(),
            uploading = stuck.len(), stray_images = strays, "interrupted volume operations repaired");
    }
    Ok(n as u64)
}

//! `os-volume_upload_image` (seed 002): a volume becomes a Glance image of the same region.
//!
//! The action's body is read at the edge (`glimpse-api`, `volume::upload`) into an
//! [`UploadRequest`]. [`submit`] checks the volume (404 if not visible, 403 by
//! policy, 400 unless `available`, or `in-use` with `force`), moves it to `uploading`
//! (remembering where it was, and recording the id chosen for the image in the same UPDATE),
//! creates the `queued` image of that id (500 if the image service fails, the volume put
//! back) and enqueues its job ([`UploadHandler`]) keyed by the image id.
//!
//! The job ([`UploadHandler`]) converts the volume file with `qemu-img convert -f raw -O
//! <disk_format>` (raw is published as it is, as Cinder streams it) and streams the result
//! through the image upload pipeline (`queued → saving → active`, hashed and inspected like
//! any upload), then puts the volume back to `in-use` if it is attached, else `available`.
//!
//! Failure (final, or cancel): the image is deleted unless it became `active`, the volume goes
//! back, the scratch file is removed. Crash behaviour: a taken-over job looks at the image:
//! `active` means only the volume's status is left to restore; `queued` (the region's start-up
//! recovery reverts an interrupted `saving`) means convert and upload again from the start.
//! A crash before the job is enqueued leaves a volume `uploading` with no job that names its
//! image: [`super::recover`] deletes that image if it is still `queued`
//! ([`discard_stray_image`]) and puts the volume back. Every end of an upload clears the
//! recorded id, and ends only the upload of its own image.
//!
//! `disk_format: iso` is accepted, as the seed says, but creates no image: the answer carries
//! `image_id: null` and the volume's unchanged status, and nothing runs.

use std::sync::Arc;

use async_trait::async_trait;
use glimpse_formats::qemu;
use glimpse_formats::{DiskFormat, Limits};
use glimpse_types::{ImageStatus, Visibility};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::policy::{self, Action};
use super::records::load_for;
use super::{Volume, VolumeStatus, files, repo};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::images::{Expected, NewImage};
use crate::jobs::{Job, JobContext, JobError, NewJob};
use crate::region::Region;

/// Glance fields Cinder never copies from a volume's image metadata
/// (`[DEFAULT]glance_core_properties`).
const CORE_PROPERTIES: [&str; 9] = [
    "checksum",
    "container_format",
    "disk_format",
    "image_name",
    "image_id",
    "min_disk",
    "min_ram",
    "name",
    "size",
];

/// A parsed `os-volume_upload_image` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub image_name: String,
    pub force: bool,
    pub disk_format: DiskFormat,
    pub container_format: String,
    /// 3.1+: `None` below 3.1 (the image gets Glance's default, `shared`).
    pub visibility: Option<Visibility>,
    pub protected: Option<bool>,
}

/// What the 202 answer shows.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The volume as it is after the request (`uploading`, or unchanged for iso).
    pub volume: Volume,
    /// `None` for iso (no image is made).
    pub image_id: Option<String>,
    pub request: UploadRequest,
}

/// Everything the job needs, fixed at the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub volume_id: String,
    pub image_id: String,
    pub disk_format: String,
    /// Who asked (the image is uploaded as this caller).
    pub caller: Caller,
}

/// Custom properties of the image: the volume's image metadata minus Glance's core fields and
/// reserved keys (`os_glance*`, and `__system__*`: the uploaded image is stored in the clear
/// even when the volume was made from an encrypted image); none for a volume not made from
/// an image.
pub fn image_properties(v: &Volume) -> Vec<(String, String)> {
    v.image_metadata
        .iter()
        .filter(|(k, _)| {
            !CORE_PROPERTIES.contains(&k.as_str()) && !crate::images::model::is_reserved_property(k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn status_error(id: &str, force: bool) -> Error {
    let want = if force {
        "available or in-use"
    } else {
        "available"
    };
    Error::bad_request(format!("Invalid volume: Volume {id} status must be {want}"))
}

/// Checks and accepts an upload (see the module documentation).
pub async fn submit(
    region: &Region,
    caller: &Caller,
    volume_id: &str,
    req: UploadRequest,
) -> Result<Accepted> {
    let v = load_for(region, caller, volume_id, Action::Get).await?;
    policy::authorize(caller, Action::UploadImage)?;
    if req.visibility == Some(Visibility::Public) {
        policy::authorize(caller, Action::UploadPublic)?;
    }
    let from: &[VolumeStatus] = if req.force {
        &[VolumeStatus::Available, VolumeStatus::InUse]
    } else {
        &[VolumeStatus::Available]
    };
    if req.disk_format == DiskFormat::Iso {
        if !from.contains(&v.status) {
            return Err(status_error(volume_id, req.force));
        }
        return Ok(Accepted {
            volume: v,
            image_id: None,
            request: req,
        });
    }
    // The image's id is chosen here and recorded on the volume in the step that makes it
    // `uploading`: a crash before the job is enqueued then leaves a volume that names its
    // image, and [`super::recover`] deletes that image (see the module documentation).
    let image_id = glimpse_types::uuid_id();
    if !repo::begin_upload(&region.db, volume_id, from, &image_id).await? {
        return Err(status_error(volume_id, req.force));
    }
    // The answer shows the volume as this request left it (the job may finish before the
    // answer is written; Cinder's answer says `uploading` regardless).
    let mut volume = repo::load(&region.db, volume_id)
        .await?
        .ok_or_else(|| policy::not_found(volume_id))?;
    volume.status = VolumeStatus::Uploading;
    let restore = || async {
        if let Err(e) = repo::end_upload(&region.db, volume_id, Some(&image_id)).await {
            tracing::error!(volume = volume_id, error = %e, "could not restore the volume's status");
        }
    };
    let new = NewImage {
        id: Some(image_id.clone()),
        name: Some(req.image_name.clone()),
        visibility: req.visibility,
        protected: req.protected.unwrap_or(false),
        disk_format: Some(req.disk_format.as_str().to_string()),
        container_format: Some(req.container_format.clone()),
        properties: image_properties(&v),
        ..NewImage::default()
    };
    let image = match crate::images::create(region, caller, new).await {
        Ok(i) => i,
        Err(e) => {
            restore().await;
            return Err(image_service_error(e));
        }
    };
    let params = Params {
        volume_id: volume_id.to_string(),
        image_id: image.id.clone(),
        disk_format: req.disk_format.as_str().to_string(),
        caller: caller.clone(),
    };
    let enqueued = region
        .jobs
        .enqueue(&NewJob {
            idempotency_key: Some(image.id.clone()),
            ..NewJob::of::<UploadHandler>(&v.project_id, &params)?
        })
        .await;
    if let Err(e) = enqueued {
        let _ = remove_image(region, caller, &image.id, unfinished).await;
        restore().await;
        return Err(e);
    }
    Ok(Accepted {
        volume,
        image_id: Some(image.id),
        request: req,
    })
}

/// A failure of the image service while creating the image record is the seed's 500
/// ("failed to communicate with glance-api"); a refusal by Glance's own rules (403, 400)
/// keeps its status.
fn image_service_error(e: Error) -> Error {
    match e.kind {
        crate::Kind::Internal | crate::Kind::Unavailable => Error::internal(format!(
            "Failed to communicate with the image service: {}",
            e.message
        )),
        _ => e,
    }
}

/// Deletes an upload's image if `doomed(status)` (unprotecting it first); `Ok(false)` if it
/// was kept or is already gone.
async fn remove_image(
    region: &Region,
    caller: &Caller,
    id: &str,
    doomed: fn(ImageStatus) -> bool,
) -> Result<bool> {
    let img = match crate::images::get(region, caller, id).await {
        Ok(i) => i,
        Err(e) if e.kind == crate::Kind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !doomed(img.status) {
        return Ok(false);
    }
    if img.protected {
        crate::images::update(
            region,
            caller,
            id,
            vec![crate::images::Change::Set(crate::images::Attr::Protected(
                false,
            ))],
        )
        .await?;
    }
    match crate::images::delete(region, caller, id).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == crate::Kind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Any image but an `active` one: what a failed or canceled upload leaves.
fn unfinished(s: ImageStatus) -> bool {
    s != ImageStatus::Active
}

/// Start-up repair of an upload that has no job (see [`super::recover`]): `v` is `uploading`
/// and names `image_id`, the image its request was making when the process died between
/// creating the image record and enqueuing the job. No job will ever fill that image, so it
/// is deleted if it is still `queued` (no data reached it; an interrupted `saving` has already
/// been put back to `queued` by the images' own recovery); an `active` one is kept. The
/// volume's status is left to the caller. True if an image was deleted.
pub(super) async fn discard_stray_image(
    region: &Region,
    v: &Volume,
    image_id: &str,
) -> Result<bool> {
    // The region repairing itself: an admin (the request may have come from an admin of
    // another project, who owns the image), in the volume's project.
    let repair = Caller {
        user_id: v.user_id.clone(),
        user_name: String::new(),
        project_id: Some(v.project_id.clone()),
        project_name: None,
        roles: vec!["admin".into(), "member".into(), "reader".into()],
        expires_at: glimpse_types::now() + chrono::Duration::hours(1),
    };
    remove_image(region, &repair, image_id, |s| s == ImageStatus::Queued).await
}

/// Runs `volume_upload` jobs of one region.
pub struct UploadHandler {
    region: Arc<Region>,
}

impl UploadHandler {
    pub fn new(region: Arc<Region>) -> UploadHandler {
        UploadHandler { region }
    }

    fn scratch_name(p: &Params) -> String {
        format!("{}.upload", p.image_id)
    }

    async fn convert_and_publish(
        &self,
        ctx: &JobContext,
        p: &Params,
        v: &Volume,
    ) -> Result<(), JobError> {
        let region = &*self.region;
        let source = files::path(region, &v.id)?;
        let target = DiskFormat::parse(&p.disk_format)
            .ok_or_else(|| JobError::Permanent(format!("unknown disk format {}", p.disk_format)))?;
        let scratch = files::scratch(region, &Self::scratch_name(p)).await?;
        let file = if target == DiskFormat::Raw {
            source
        } else {
            ctx.progress(10, "converting").await?;
            let (limits, inspect) = (
                crate::disks::qemu_limits(),
                Limits {
                    max_virtual_size: v.size_bytes(),
                },
            );
            let converted = qemu::convert_with_limits(
                &source,
                DiskFormat::Raw,
                &scratch,
                target,
                &limits,
                &inspect,
            );
            tokio::select! {
                // Refused input is permanent; a failing qemu-img (disk full, a limit) retries.
                r = converted => r.map_err(|e| JobError::from(crate::disks::qemu_error(
                    &format!("The volume could not be converted to {}", p.disk_format), e)))?,
                _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
            }
            scratch.clone()
        };
        ctx.progress(50, "uploading").await?;
        let expected = Expected::default();
        let published = tokio::select! {
            r = crate::disks::publish_file(region, &p.caller, &p.image_id, &file, &expected) => r.map(|_| ()),
            _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
        };
        let _ = files::remove_path(&scratch).await;
        published.map_err(|e| match e.kind {
            crate::Kind::Internal | crate::Kind::Unavailable => JobError::Retryable(e.message),
            _ => JobError::Permanent(format!(
                "the image refused the volume's data: {}",
                e.message
            )),
        })
    }
}

#[async_trait]
impl Job for UploadHandler {
    const KIND: &'static str = "volume_upload";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> std::result::Result<Value, JobError> {
        let region = &*self.region;
        let done = json!({ "volume_id": p.volume_id, "image_id": p.image_id });
        let Some(v) = repo::load(&region.db, &p.volume_id).await? else {
            return Err(JobError::Permanent(format!(
                "volume {} was deleted",
                p.volume_id
            )));
        };
        let image = match crate::images::get(region, &p.caller, &p.image_id).await {
            Ok(i) => i,
            Err(e) if e.kind == crate::Kind::NotFound => {
                return Err(JobError::Permanent(format!(
                    "image {} was deleted during the upload",
                    p.image_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        match image.status {
            ImageStatus::Active => {}
            ImageStatus::Queued if uploading_this(&v, &p.image_id) => {
                self.convert_and_publish(ctx, &p, &v).await?;
            }
            ImageStatus::Queued => {
                return Err(JobError::Permanent(format!(
                    "volume {} is {}, not uploading image {}",
                    v.id,
                    v.status.as_str(),
                    p.image_id
                )));
            }
            ImageStatus::Saving => {
                return Err(JobError::Retryable(
                    "the image is still saving (an earlier attempt's upload)".into(),
                ));
            }
            other => {
                return Err(JobError::Permanent(format!(
                    "image {} is {}",
                    p.image_id,
                    other.as_str()
                )));
            }
        }
        ctx.progress(99, "finishing").await?;
        repo::end_upload(&region.db, &p.volume_id, Some(&p.image_id)).await?;
        tracing::info!(volume = %p.volume_id, image = %p.image_id, "volume uploaded to image");
        Ok(done)
    }

    /// The image is deleted unless active, the volume goes back, the scratch file goes.
    async fn cleanup(&self, _ctx: &JobContext, p: &Params) {
        let region = &*self.region;
        if let Err(e) = remove_image(region, &p.caller, &p.image_id, unfinished).await {
            tracing::error!(image = %p.image_id, error = %e, "could not delete the half-made image");
        }
        if let Err(e) = repo::end_upload(&region.db, &p.volume_id, Some(&p.image_id)).await {
            tracing::error!(volume = %p.volume_id, error = %e, "could not restore the volume's status");
        }
        if let Ok(s) = files::scratch(region, &Self::scratch_name(p)).await {
            let _ = files::remove_path(&s).await;
        }
    }
}

/// The volume is `uploading` for this image (or for an upload from before the volume
/// recorded its image).
fn uploading_this(v: &Volume, image_id: &str) -> bool {
    v.status == VolumeStatus::Uploading
        && v.upload_image_id.as_deref().is_none_or(|i| i == image_id)
}

//! The `volume_create` job: makes a `creating` volume's file and moves it to `available`.
//!
//! * Blank: a sparse file of `size` GiB.
//! * From an image (`imageRef`): a verified local copy of the image, `qemu-img convert -f
//!   <disk_format> -O raw` under the runner's limits (the input inspected first, the output
//!   again), grown to the volume's size. The volume becomes `bootable` and keeps the image's
//!   Glance metadata (Cinder's `volume_image_metadata`).
//!
//! Failure (final, or cancel): the volume goes to `error` and its file is removed, as Cinder.
//! Crash behaviour: a taken-over job starts again from nothing (the file is written under a
//! temporary name and renamed into place, so a half-written file is never the volume's).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use glimpse_formats::qemu;
use glimpse_formats::{DiskFormat, Limits};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{VolumeStatus, files, repo};
use crate::auth::Caller;
use crate::jobs::{Job, JobContext, JobError};
use crate::region::Region;

/// Everything the job needs, fixed at the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub volume_id: String,
    pub image_id: Option<String>,
    /// Who asked (the image is read as this caller).
    pub caller: Caller,
}

/// Glance fields Cinder copies into `volume_image_metadata` (besides custom properties).
const IMAGE_FIELDS: [&str; 7] = [
    "checksum",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "size",
    "image_name",
];

pub struct CreateHandler {
    region: Arc<Region>,
}

impl CreateHandler {
    pub fn new(region: Arc<Region>) -> CreateHandler {
        CreateHandler { region }
    }

    async fn make_from_image(
        &self,
        ctx: &JobContext,
        p: &Params,
        image_id: &str,
        bytes: u64,
    ) -> Result<BTreeMap<String, String>, JobError> {
        let region = &*self.region;
        let img = crate::images::load_for_use(region, &p.caller, image_id).await?;
        let format = img
            .disk_format
            .as_deref()
            .and_then(DiskFormat::parse)
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "image {image_id} has no disk format qemu-img reads"
                ))
            })?;
        ctx.progress(10, "fetching image").await?;
        let local = crate::disks::cached_image(region, &img).await?;
        ctx.progress(50, "converting").await?;
        let out = files::scratch(region, &format!("{}.create", p.volume_id)).await?;
        let converted = qemu::convert_with_limits(
            &local,
            format,
            &out,
            DiskFormat::Raw,
            &crate::disks::qemu_limits(),
            &Limits {
                max_virtual_size: bytes,
            },
        )
        .await;
        if let Err(e) = converted {
            let _ = files::remove_path(&out).await;
            // Refused input is permanent; a failing qemu-img (disk full, a limit) retries.
            return Err(JobError::from(crate::disks::qemu_error(
                &format!("Image {image_id} could not be converted to a volume"),
                e,
            )));
        }
        files::install(region, &p.volume_id, out, bytes).await?;
        let mut meta = BTreeMap::new();
        meta.insert("image_id".to_string(), img.id.clone());
        let fields = [
            ("checksum", img.checksum.clone()),
            ("container_format", img.container_format.clone()),
            ("disk_format", img.disk_format.clone()),
            ("min_disk", Some(img.min_disk.to_string())),
            ("min_ram", Some(img.min_ram.to_string())),
            ("size", img.size.map(|s| s.to_string())),
            ("image_name", img.name.clone()),
        ];
        debug_assert_eq!(fields.len(), IMAGE_FIELDS.len());
        for (k, v) in fields {
            if let Some(v) = v {
                meta.insert(k.to_string(), v);
            }
        }
        for (k, v) in &img.properties {
            if !k.starts_with("os_glance") {
                meta.insert(k.clone(), v.clone());
            }
        }
        Ok(meta)
    }
}

#[async_trait]
impl Job for CreateHandler {
    const KIND: &'static str = "volume_create";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> Result<Value, JobError> {
        let region = &*self.region;
        let Some(v) = repo::load(&region.db, &p.volume_id).await? else {
            return Err(JobError::Permanent(format!(
                "volume {} was deleted",
                p.volume_id
            )));
        };
        if v.status != VolumeStatus::Creating {
            // An earlier attempt finished.
            return Ok(json!({ "volume_id": v.id, "status": v.status.as_str() }));
        }
        let bytes = v.size_bytes();
        let (bootable, meta) = match p.image_id.as_deref() {
            None => {
                files::create_blank(region, &v.id, bytes).await?;
                (false, BTreeMap::new())
            }
            Some(image) => (true, self.make_from_image(ctx, &p, image, bytes).await?),
        };
        if !repo::finish_create(&region.db, &v.id, bootable, &meta).await? {
            return Err(JobError::Permanent(format!(
                "volume {} left creating meanwhile",
                v.id
            )));
        }
        tracing::info!(volume = %v.id, "volume created");
        Ok(json!({ "volume_id": v.id, "status": "available" }))
    }

    /// The volume goes to `error` and loses its file.
    async fn cleanup(&self, _ctx: &JobContext, p: &Params) {
        let region = &*self.region;
        if let Err(e) = repo::step(
            &region.db,
            &p.volume_id,
            VolumeStatus::Creating,
            VolumeStatus::Error,
        )
        .await
        {
            tracing::error!(volume = %p.volume_id, error = %e, "could not mark the volume error");
        }
        if let Err(e) = files::remove(region, &p.volume_id).await {
            tracing::warn!(volume = %p.volume_id, error = %e, "could not remove the volume file");
        }
        for suffix in ["create"] {
            if let Ok(out) = files::scratch(region, &format!("{}.{suffix}", p.volume_id)).await {
                let _ = files::remove_path(&out).await;
            }
        }
    }
}

//! `createImage` (seed 004): a server snapshot as a durable `server_snapshot` job.
//!
//! Submission ([`create_image`], Nova's order of checks): snapshots enabled in the region's
//! `[compute]` config (400), the server visible (404) and the caller a member (403), the
//! metadata quota before microversion 2.39 (403 "Image metadata limit exceeded"), Glance's
//! property quota on all the snapshot's properties (400), then ONE conditional UPDATE claims the server
//! (`task_state NULL → image_snapshot`, only from ACTIVE, SHUTOFF, PAUSED, SUSPENDED and once
//! launched; 409 with Nova's message otherwise, so a second snapshot while one runs is 409).
//! Then the image record is created `queued` (owner = the server's project, `private`, or
//! `shared` + `instance_owner` when an admin of another project asks; properties as Nova's
//! `compute/utils.py::create_image`: the server's inherited image properties minus the
//! non-inheritable ones, `base_image_ref`, `owner_project_name`, `owner_user_name`,
//! `image_type=snapshot`, `instance_uuid`, `user_id`, then the request's `metadata`), and the
//! job is enqueued with the image id as its idempotency key.
//!
//! The job ([`SnapshotHandler`]): `image_pending_upload` → flatten the overlay over its base
//! into `work/<job>.qcow2` (`qemu-img convert -f qcow2 -O qcow2`, inspected) →
//! `image_uploading` → set `disk_format=qcow2`, `container_format=bare` (Nova leaves them to
//! the driver) → [`crate::disks::publish_file`] (the upload pipeline: `saving`, hashed,
//! inspected, `active`) → task state cleared. A deleted server or image fails the job;
//! `cleanup` (final failure, cancel) deletes the image unless it became active and clears the
//! task state, so the server stays usable.
//!
//! Crash behaviour: a killed worker leaves the image `saving` (the region's start-up recovery
//! puts it back to `queued`) and the job `running`; when its lease expires the job runs again
//! from the flatten. A crash between the claim and the enqueue leaves a task state with no
//! job; [`super::recover`] clears it and deletes the queued image.

use std::sync::Arc;

use async_trait::async_trait;
use glimpse_formats::DiskFormat;
use glimpse_types::{ImageStatus, Visibility};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Server, VmState, task};
use super::repo;
use super::servers::{acting_for, disk_file, get, invalid_state, not_found, require_member};
use crate::auth::Caller;
use crate::disks;
use crate::error::{Error, Kind, Result};
use crate::images::model::{Attr, Change, MAX_PROPERTIES, NewImage, is_reserved_property};
use crate::images::{Expected, Image};
use crate::jobs::{Job, JobContext, JobError, NewJob};
use crate::region::Region;

/// Longest snapshot name and metadata key (Nova's schema).
pub const MAX_NAME: usize = 255;
/// Longest metadata value: the seed's `text (2^16 - 1 bytes)` (today's Nova schema says 255
/// characters; the seed is the contract here).
pub const MAX_VALUE_BYTES: usize = 65_535;

/// Image properties a snapshot never inherits (`nova/compute/utils.py`).
const NON_INHERITABLE: [&str; 6] = [
    "cinder_encryption_key_id",
    "cinder_encryption_key_deletion_policy",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
];

/// A `createImage` request, already parsed from JSON.
#[derive(Debug, Clone, Default)]
pub struct SnapshotRequest {
    pub name: String,
    pub metadata: Vec<(String, String)>,
    /// Microversion ≥ 2.39: no Nova-side metadata quota (Glance's property quota applies).
    pub glance_quota: bool,
}

/// Nova's schema checks of `createImage` (400 with Nova's `Invalid input` wording).
pub fn validate(req: &SnapshotRequest) -> Result<()> {
    let n = req.name.chars().count();
    if n == 0 || req.name.trim().is_empty() {
        return Err(Error::bad_request(format!(
            "Invalid input for field/attribute name. Value: {}. '{}' does not match \
             '^(?! )[\\S ]*(?<! )$'",
            req.name, req.name
        )));
    }
    if n > MAX_NAME {
        return Err(Error::bad_request(format!(
            "Invalid input for field/attribute name. Value: {}. '{}' is too long",
            req.name, req.name
        )));
    }
    for (k, v) in &req.metadata {
        let ok = (1..=MAX_NAME).contains(&k.chars().count())
            && !k.trim().is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !ok {
            return Err(Error::bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {{'{k}': '{v}'}}. \
                 Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        if v.len() > MAX_VALUE_BYTES {
            return Err(Error::bad_request(format!(
                "Invalid input for field/attribute {k}. Value: {v}. '{v}' is too long"
            )));
        }
    }
    Ok(())
}

/// The properties of a snapshot of `server` (see the module documentation).
fn snapshot_properties(
    server: &Server,
    caller: &Caller,
    metadata: &[(String, String)],
) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        if let Some(slot) = props.iter_mut().find(|(key, _)| key == k) {
            slot.1 = v;
        } else {
            props.push((k.to_string(), v));
        }
    };
    if let Some(inherited) = server.image_meta["properties"].as_object() {
        for (k, v) in inherited {
            // Reserved names (`os_glance*`, and the `__system__*` encryption marks: a snapshot
            // is stored in the clear even when the server booted from an encrypted image).
            let keep = !NON_INHERITABLE.contains(&k.as_str()) && !is_reserved_property(k);
            if keep && let Some(v) = v.as_str() {
                set(k, v.to_string());
            }
        }
    }
    set("base_image_ref", server.image_id.clone());
    for key in ["owner_project_name", "owner_user_name"] {
        if let Some(v) = server.image_meta[key].as_str() {
            set(key, v.to_string());
        }
    }
    set("instance_uuid", server.id.clone());
    set("user_id", caller.user_id.clone());
    set("image_type", "snapshot".into());
    if caller.project_id.as_deref() != Some(server.project_id.as_str()) {
        set("instance_owner", server.project_id.clone());
    }
    for (k, v) in metadata {
        set(k, v.clone());
    }
    props
}

/// Starts a snapshot of server `id` (see the module documentation); returns the new
/// `queued` image.
pub async fn create_image(
    region: &Region,
    caller: &Caller,
    id: &str,
    req: &SnapshotRequest,
) -> Result<Image> {
    validate(req)?;
    if !region.config.compute.snapshots {
        return Err(Error::bad_request(
            "Snapshots are disabled in this region's configuration ([compute] snapshots).",
        ));
    }
    let server = get(region, caller, id).await?;
    require_member(caller, "servers:create_image")?;
    let quota = region.config.compute.metadata_items;
    if !req.glance_quota && req.metadata.len() > quota {
        return Err(Error::forbidden("Image metadata limit exceeded"));
    }
    let props = snapshot_properties(&server, caller, &req.metadata);
    // Glance's property quota counts the inherited and system properties too; refused here
    // rather than by a job that could only fail.
    if props.len() > MAX_PROPERTIES {
        return Err(Error::bad_request(format!(
            "Maximum number of image properties exceeded: {} of {MAX_PROPERTIES}.",
            props.len()
        )));
    }
    if let Some((k, _)) = props.iter().find(|(k, _)| is_reserved_property(k)) {
        return Err(Error::bad_request(format!("Attribute '{k}' is reserved.")));
    }

    let image_id = glimpse_types::uuid_id();
    let states = [
        VmState::Active,
        VmState::Stopped,
        VmState::Paused,
        VmState::Suspended,
    ];
    if !repo::claim_task(
        &region.db,
        id,
        &states,
        task::IMAGE_SNAPSHOT,
        Some(&image_id),
        None,
    )
    .await?
    {
        let now = repo::load(&region.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        return Err(invalid_state("createImage", &now));
    }
    let release = || async {
        let _ = repo::move_task(&region.db, id, &[task::IMAGE_SNAPSHOT], None).await;
    };
    let other_project = caller.project_id.as_deref() != Some(server.project_id.as_str());
    let new = NewImage {
        id: Some(image_id.clone()),
        name: Some(req.name.clone()),
        owner: Some(server.project_id.clone()),
        visibility: Some(if other_project {
            Visibility::Shared
        } else {
            Visibility::Private
        }),
        min_disk: server.image_meta["min_disk"].as_i64().unwrap_or(0),
        min_ram: server.image_meta["min_ram"].as_i64().unwrap_or(0),
        properties: props,
        ..NewImage::default()
    };
    let image = match crate::images::create(region, caller, new).await {
        Ok(i) => i,
        Err(e) => {
            release().await;
            return Err(e);
        }
    };
    let params = Params {
        server_id: id.to_string(),
        image_id: image_id.clone(),
    };
    let job = NewJob {
        idempotency_key: Some(image_id.clone()),
        ..NewJob::of::<SnapshotHandler>(&server.project_id, &params)?
    };
    if let Err(e) = region.jobs.enqueue(&job).await {
        let _ = crate::images::delete(region, &acting_for(&server), &image_id).await;
        release().await;
        return Err(e);
    }
    Ok(image)
}

/// Runs `server_snapshot` jobs of one region.
pub struct SnapshotHandler {
    region: Arc<Region>,
}

impl SnapshotHandler {
    pub fn new(region: Arc<Region>) -> SnapshotHandler {
        SnapshotHandler { region }
    }

    async fn snapshot(&self, ctx: &JobContext, p: &Params) -> Result<Value, JobError> {
        let region = &*self.region;
        let gone = || JobError::Permanent(format!("server {} was deleted", p.server_id));
        let server = repo::load(&region.db, &p.server_id)
            .await?
            .ok_or_else(gone)?;
        if server.snapshot_image.as_deref() != Some(p.image_id.as_str()) {
            return Err(JobError::Permanent(format!(
                "server {} is not snapshotting image {}",
                p.server_id, p.image_id
            )));
        }
        let owner = acting_for(&server);
        let image = match crate::images::get(region, &owner, &p.image_id).await {
            Ok(i) => i,
            Err(e) if e.kind == Kind::NotFound => {
                return Err(JobError::Permanent(format!(
                    "the snapshot image {} was deleted",
                    p.image_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if image.status == ImageStatus::Active {
            self.finish(p).await?;
            return Ok(json!({ "image_id": p.image_id }));
        }
        if image.status != ImageStatus::Queued {
            return Err(JobError::Retryable(format!(
                "the snapshot image is {} (an earlier attempt's upload)",
                image.status.as_str()
            )));
        }
        let step = [
            task::IMAGE_SNAPSHOT,
            task::IMAGE_PENDING_UPLOAD,
            task::IMAGE_UPLOADING,
        ];
        if !repo::move_task(
            &region.db,
            &p.server_id,
            &step,
            Some(task::IMAGE_PENDING_UPLOAD),
        )
        .await?
        {
            return Err(gone());
        }
        ctx.progress(10, "flattening").await?;
        let (Some(disk), Some(base), Some(fmt)) = (
            server.disk_path.as_deref(),
            server.base_path.as_deref(),
            server.base_format.as_deref().and_then(DiskFormat::parse),
        ) else {
            return Err(JobError::Permanent(format!(
                "server {} has no disk",
                p.server_id
            )));
        };
        let work = disks::subdir(region, "work").await?;
        let out = work.join(format!("snapshot-{}.qcow2", ctx.job.id));
        let _ = tokio::fs::remove_file(&out).await;
        let (disk, base) = (disk_file(region, disk), disk_file(region, base));
        let flat = tokio::select! {
            r = disks::flatten(&disk, &base, fmt, &out, DiskFormat::Qcow2) => r,
            _ = ctx.cancel.cancelled() => Err(Error::internal("interrupted")),
        };
        let uploaded = async {
            if ctx.cancel.is_cancelled() {
                return Err(JobError::Interrupted);
            }
            // A failure because the server (and its disk) was deleted is retried, and the
            // retry finds the server gone.
            flat?;
            if repo::load(&region.db, &p.server_id).await?.is_none() {
                return Err(gone());
            }
            if !repo::move_task(
                &region.db,
                &p.server_id,
                &[task::IMAGE_PENDING_UPLOAD],
                Some(task::IMAGE_UPLOADING),
            )
            .await?
            {
                return Err(gone());
            }
            ctx.progress(50, "uploading").await?;
            if image.disk_format.as_deref() != Some("qcow2")
                || image.container_format.as_deref() != Some("bare")
            {
                crate::images::update(
                    region,
                    &owner,
                    &p.image_id,
                    vec![
                        Change::Set(Attr::DiskFormat(Some("qcow2".into()))),
                        Change::Set(Attr::ContainerFormat(Some("bare".into()))),
                    ],
                )
                .await?;
            }
            let expected = Expected::default();
            let published = tokio::select! {
                r = disks::publish_file(region, &owner, &p.image_id, &out, &expected) => r,
                _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
            };
            published?;
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&out).await;
        uploaded?;
        self.finish(p).await?;
        Ok(json!({ "image_id": p.image_id }))
    }

    /// Clears the server's snapshot task (if it is still this snapshot's).
    async fn finish(&self, p: &Params) -> Result<(), JobError> {
        repo::move_task(
            &self.region.db,
            &p.server_id,
            &[
                task::IMAGE_SNAPSHOT,
                task::IMAGE_PENDING_UPLOAD,
                task::IMAGE_UPLOADING,
            ],
            None,
        )
        .await?;
        Ok(())
    }
}

/// A snapshot job's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub server_id: String,
    pub image_id: String,
}

/// Deletes a snapshot's image unless it is active, and clears the server's task state if it
/// still belongs to that snapshot. Used by job cleanup and start-up recovery.
pub(crate) async fn abandon(region: &Region, server_id: &str, image_id: &str, owner: &Caller) {
    match crate::images::get(region, owner, image_id).await {
        Ok(img) if img.status != ImageStatus::Active => {
            if let Err(e) = crate::images::delete(region, owner, image_id).await {
                tracing::warn!(image = image_id, error = %e, "could not delete a failed snapshot");
            }
        }
        _ => {}
    }
    if let Ok(Some(s)) = repo::load(&region.db, server_id).await
        && s.snapshot_image.as_deref() == Some(image_id)
    {
        let _ = repo::move_task(
            &region.db,
            server_id,
            &[
                task::IMAGE_SNAPSHOT,
                task::IMAGE_PENDING_UPLOAD,
                task::IMAGE_UPLOADING,
            ],
            None,
        )
        .await;
    }
}

#[async_trait]
impl Job for SnapshotHandler {
    const KIND: &'static str = "server_snapshot";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> Result<Value, JobError> {
        let r = self.snapshot(ctx, &p).await;
        if let Err(JobError::Permanent(msg)) = &r {
            tracing::warn!(job = %ctx.job.id, server = %p.server_id, error = %msg, "snapshot failed");
        }
        r
    }

    async fn cleanup(&self, ctx: &JobContext, p: &Params) {
        let owner = Caller {
            user_id: String::new(),
            user_name: String::new(),
            project_id: Some(ctx.job.project_id.clone()),
            project_name: None,
            roles: vec!["member".into(), "reader".into()],
            expires_at: glimpse_types::now() + chrono::Duration::days(1),
        };
        abandon(&self.region, &p.server_id, &p.image_id, &owner).await;
        let work = disks::dir(&self.region).join("work");
        let _ = tokio::fs::remove_file(work.join(format!("snapshot-{}.qcow2", ctx.job.id))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::model::{Server, VmState};

    fn req(name: &str, metadata: &[(&str, &str)]) -> SnapshotRequest {
        SnapshotRequest {
            name: name.into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            glance_quota: false,
        }
    }

    #[test]
    fn nova_schema_rules() {
        assert!(validate(&req("snap", &[("a-b_c:d. e", "v")])).is_ok());
        assert!(validate(&req(&"n".repeat(255), &[])).is_ok());
        assert!(validate(&req("x", &[("k", &"v".repeat(65_535))])).is_ok());
        for bad in [
            req("", &[]),
            req("   ", &[]),
            req(&"n".repeat(256), &[]),
            req("x", &[("", "v")]),
            req("x", &[("  ", "v")]),
            req("x", &[("bad/key", "v")]),
            req("x", &[("k", &"v".repeat(65_536))]),
        ] {
            let e = validate(&bad).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{bad:?}");
            assert!(e.message.starts_with("Invalid input"), "{}", e.message);
        }
    }

    #[test]
    fn properties_follow_nova() {
        let now = glimpse_types::now();
        let server = Server {
            id: "srv".into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            name: "s".into(),
            image_id: "img".into(),
            flavor_id: "1".into(),
            vm_state: VmState::Active,
            task_state: None,
            power_state: 1,
            metadata: vec![],
            access_ipv4: String::new(),
            access_ipv6: String::new(),
            key_name: None,
            base_path: None,
            base_format: None,
            disk_path: None,
            disk_size: None,
            snapshot_image: None,
            fault: None,
            image_meta: json!({
                "owner_project_name": "proj",
                "owner_user_name": "user",
                "properties": {
                    "hw_disk_bus": "virtio",
                    "img_signature": "sig",
                    "cinder_encryption_key_id": "k",
                    "os_glance_importing_to_stores": "x",
                    "image_type": "base",
                },
            }),
            created_at: now,
            updated_at: now,
            launched_at: Some(now),
        };
        let mut caller = crate::compute::servers::acting_for(&server);
        caller.user_id = "u2".into();
        let props = snapshot_properties(&server, &caller, &[("image_type".into(), "test".into())]);
        let get = |k: &str| {
            props
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("hw_disk_bus"), Some("virtio"));
        assert_eq!(get("img_signature"), None);
        assert_eq!(get("cinder_encryption_key_id"), None);
        assert_eq!(get("os_glance_importing_to_stores"), None);
        assert_eq!(get("base_image_ref"), Some("img"));
        assert_eq!(get("owner_project_name"), Some("proj"));
        assert_eq!(get("owner_user_name"), Some("user"));
        assert_eq!(get("instance_uuid"), Some("srv"));
        assert_eq!(get("user_id"), Some("u2"));
        assert_eq!(get("image_type"), Some("test"));
        assert_eq!(get("instance_owner"), None);
        caller.project_id = Some("admin-project".into());
        let props = snapshot_properties(&server, &caller, &[]);
        assert!(props.contains(&("instance_owner".into(), "p1".into())));
        assert!(props.contains(&("image_type".into(), "snapshot".into())));
    }
}

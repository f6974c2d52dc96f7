//! The `server_build` job: makes a building server's root disk and marks it ACTIVE.
//!
//! 1. Re-read the server (gone or no longer building → nothing to do).
//! 2. Read its image as the server's creator ([`super::servers::acting_for`]): still visible
//!    and active, else the server goes to ERROR with a fault.
//! 3. [`crate::disks::cached_image`]: the verified local copy (downloaded once per region).
//! 4. A fresh qcow2 overlay `servers/<id>.qcow2` over it, sized to the flavor's disk.
//! 5. One conditional UPDATE `building → active` (launched_at set). If the server was deleted
//!    meanwhile the overlay is removed.
//!
//! Crash behaviour: a killed worker's job is taken over; step 4 removes any leftover overlay
//! first, so the build simply runs again. A final failure puts the server in ERROR.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{VmState, flavor};
use super::repo;
use super::servers::{acting_for, disk_file, disk_rel};
use crate::disks;
use crate::error::Kind;
use crate::jobs::{Job, JobContext, JobError};
use crate::region::Region;

/// A build job's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub server_id: String,
}

/// Runs `server_build` jobs of one region.
pub struct BuildHandler {
    region: Arc<Region>,
}

impl BuildHandler {
    pub fn new(region: Arc<Region>) -> BuildHandler {
        BuildHandler { region }
    }

    async fn build(&self, ctx: &JobContext, id: &str) -> Result<Value, JobError> {
        let region = &*self.region;
        let Some(server) = repo::load(&region.db, id).await? else {
            return Ok(json!({ "server_id": id, "outcome": "deleted" }));
        };
        if server.vm_state != VmState::Building {
            return Ok(json!({ "server_id": id, "outcome": "not building" }));
        }
        ctx.progress(10, "image").await?;
        let caller = acting_for(&server);
        let image = match crate::images::get(region, &caller, &server.image_id).await {
            Ok(i) => i,
            Err(e) if e.kind == Kind::NotFound => {
                return Err(JobError::Permanent(format!(
                    "Image {} could not be found.",
                    server.image_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let format = disks::disk_format(&image)?;
        let base = tokio::select! {
            r = disks::cached_image(region, &image) => r?,
            _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
        };
        ctx.progress(60, "disk").await?;
        let rel = disk_rel(id);
        let overlay = disk_file(region, &rel);
        let _ = tokio::fs::remove_file(&overlay).await;
        let size = flavor(&server.flavor_id).map(|f| f.disk << 30).unwrap_or(0);
        let size = disks::create_overlay(&base, format, &overlay, Some(size as u64)).await?;
        let base_rel = base
            .strip_prefix(disks::dir(region))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| base.display().to_string());
        if !repo::built(&region.db, id, &base_rel, format.as_str(), &rel, size).await? {
            let _ = tokio::fs::remove_file(&overlay).await;
            return Ok(json!({ "server_id": id, "outcome": "deleted" }));
        }
        Ok(json!({ "server_id": id, "outcome": "active" }))
    }
}

#[async_trait]
impl Job for BuildHandler {
    const KIND: &'static str = "server_build";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> Result<Value, JobError> {
        let id = p.server_id;
        match self.build(ctx, &id).await {
            Err(JobError::Permanent(msg)) => {
                if let Err(e) = repo::failed_build(&self.region.db, &id, &msg).await {
                    tracing::warn!(server = %id, error = %e, "could not mark the build failed");
                }
                Err(JobError::Permanent(msg))
            }
            other => other,
        }
    }

    async fn cleanup(&self, ctx: &JobContext, p: &Params) {
        let id = p.server_id.clone();
        let _ = tokio::fs::remove_file(disk_file(&self.region, &disk_rel(&id))).await;
        let reason = ctx
            .job
            .error
            .clone()
            .unwrap_or_else(|| "Build of instance aborted: the build job failed.".into());
        if let Err(e) = repo::failed_build(&self.region.db, &id, &reason).await {
            tracing::warn!(server = %id, error = %e, "could not mark the build failed");
        }
    }
}

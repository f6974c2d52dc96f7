//! The `ims_copy` job: makes the in-region copy a [`super::submit`] accepted.
//!
//! 1. If the new image (its id was chosen at submission) exists, an earlier attempt finished:
//!    done.
//! 2. Re-read the source (deleted or no longer active → FAIL) and re-check the keys (disabled
//!    meanwhile → FAIL).
//! 3. Same encryption as the source (no `cmk_id`, or the source's own key): the copy SHARES
//!    the source's blob and wrapped data key. Otherwise: stream the source's plaintext (decrypted
//!    if it is sealed) into a new blob sealed under a fresh data key wrapped by `cmk_id`, and
//!    check that the plaintext's size and sha512 are the source's.
//! 4. Publish ([`lifecycle::insert_copy`]): one INSERT … SELECT makes the new `active` record from the source row (formats,
//!    sizes, hashes of the plaintext, minimums), which must still exist and still name the
//!    same blob (on PostgreSQL the source row is locked `FOR SHARE` so that a concurrent
//!    delete either comes first and the copy fails, or comes after and sees the copy), plus
//!    the custom properties, name, description and encryption properties, in one transaction.
//!
//! Failures: a vanished source, an unusable key or a data mismatch fail the job at once; the
//! store or the database failing is retried. A new sealed blob that was not published is
//! deleted (after a crash, the orphan cleaner deletes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use glimpse_store::WriteError;
use glimpse_types::ImageStatus;
use serde_json::{Value, json};

use super::{PROP_CMK, PROP_DESCRIPTION, PROP_ENCRYPTED, Params};
use crate::db::Db;
use crate::error::Result;
use crate::images::Sealing;
use crate::images::model::Image;
use crate::images::{lifecycle, repo};
use crate::jobs::{Job, JobContext, JobError};
use crate::region::Region;

/// Runs `ims_copy` jobs of one region.
pub struct CopyHandler {
    region: Arc<Region>,
}

impl CopyHandler {
    pub fn new(region: Arc<Region>) -> CopyHandler {
        CopyHandler { region }
    }
}

/// Where the copy's bytes are.
pub(crate) enum Bytes {
    /// The source's blob (and its sealing, if any), shared.
    Shared,
    /// A new blob sealed under `sealing`.
    Sealed { blob: String, sealing: Sealing },
}

/// The copy's custom properties: the source's (less its encryption marks), then the
/// description and the encryption marks of the copy.
fn properties(src: &Image, p: &Params, sealed_with: Option<&str>) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = src
        .properties
        .iter()
        .filter(|(k, _)| ![PROP_ENCRYPTED, PROP_CMK, PROP_DESCRIPTION].contains(&k.as_str()))
        .cloned()
        .collect();
    if let Some(d) = &p.description {
        props.push((PROP_DESCRIPTION.into(), d.clone()));
    }
    if let Some(k) = sealed_with {
        props.push((PROP_ENCRYPTED.into(), "1".into()));
        props.push((PROP_CMK.into(), k.into()));
    }
    props
}

/// Inserts the copy's record from the source row ([`lifecycle::insert_copy`]); `Ok(false)`
/// if the source is gone, no longer active, or names another blob than `src_blob`.
pub(crate) async fn publish(
    db: &Db,
    src: &Image,
    src_blob: &str,
    p: &Params,
    bytes: &Bytes,
) -> Result<bool> {
    let (sealed, sealed_with) = match bytes {
        Bytes::Shared => (None, src.sealing.as_ref().map(|s| s.cmk_id.as_str())),
        Bytes::Sealed { blob, sealing } => (
            Some((blob.as_str(), sealing)),
            Some(sealing.cmk_id.as_str()),
        ),
    };
    let copy = lifecycle::Copy {
        id: &p.image_id,
        name: &p.name,
        owner: &p.project_id,
        sealed,
        properties: &properties(src, p, sealed_with),
    };
    lifecycle::insert_copy(db, &src.id, src_blob, &copy).await
}

impl CopyHandler {
    /// Streams the source's plaintext into a new blob sealed under `cmk`'s fresh data key.
    async fn seal(
        &self,
        ctx: &JobContext,
        src: &Image,
        cmk: &crate::kms::UsableKey,
    ) -> Result<(String, Sealing), JobError> {
        let region = &self.region;
        let (data_key, wrapped) = region.kms.new_data_key(cmk);
        let size = src.size.unwrap_or(0).max(0) as u64;
        let source = crate::images::read(region, src, None)
            .await
            .map_err(JobError::from)?;
        let moved = Arc::new(AtomicU64::new(0));
        let counter = moved.clone();
        let body = source.map(move |chunk| {
            if let Ok(c) = &chunk {
                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            chunk
        });
        let write = region.store.write_sealed(body, &data_key);
        tokio::pin!(write);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut shown = 0u8;
        let written = loop {
            tokio::select! {
                done = &mut write => break done,
                _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
                _ = tick.tick() => {
                    let pct = crate::replication::handler::percent(moved.load(Ordering::Relaxed), size);
                    if pct > shown {
                        ctx.progress(pct, "copying").await?;
                        shown = pct;
                    }
                }
            }
        };
        let written = written.map_err(|e| match e {
            // The source blob failed authentication or vanished: retrying will not help.
            WriteError::Source(e) => JobError::Permanent(format!("reading the source failed: {e}")),
            e => JobError::Retryable(format!("writing the copy failed: {e}")),
        })?;
        let matches = written.plain_size == size
            && src
                .os_hash_value
                .as_deref()
                .is_none_or(|h| h == written.sha512);
        if !matches {
            let _ = region.store.delete(&written.key).await;
            return Err(JobError::Permanent(format!(
                "the source's data does not match its record ({} bytes, sha512 {})",
                written.plain_size, written.sha512
            )));
        }
        Ok((
            written.key,
            Sealing {
                cmk_id: cmk.id.clone(),
                wrapped_data_key: wrapped,
            },
        ))
    }
}

#[async_trait]
impl Job for CopyHandler {
    const KIND: &'static str = "ims_copy";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> std::result::Result<Value, JobError> {
        let region = &self.region;
        let db = &region.db;
        let done = json!({ "image_id": p.image_id, "image_name": p.name });
        if crate::images::repo::exists(db, &p.image_id).await? {
            return Ok(done);
        }
        ctx.progress(0, "copying").await?;
        let gone = || {
            JobError::Permanent(format!(
                "the source image {} was deleted",
                p.source_image_id
            ))
        };
        let (src, _) = repo::load(db, &p.source_image_id, &p.project_id)
            .await?
            .ok_or_else(gone)?;
        let Some(src_blob) = src
            .blob_key
            .clone()
            .filter(|_| src.status == ImageStatus::Active)
        else {
            return Err(JobError::Permanent(format!(
                "the source image is no longer active (its status is {})",
                src.status.as_str()
            )));
        };
        let src_sealing = src.sealing.clone();
        if let Some(s) = &src_sealing {
            region
                .kms
                .usable(&p.project_id, &s.cmk_id)
                .await
                .map_err(JobError::from)?;
        }
        let target = match &p.cmk_id {
            Some(k) => Some(
                region
                    .kms
                    .usable(&p.project_id, k)
                    .await
                    .map_err(JobError::from)?,
            ),
            None => None,
        };
        let share = match (&target, &src_sealing) {
            (None, _) => true,
            (Some(t), Some(s)) => t.id == s.cmk_id,
            (Some(_), None) => false,
        };
        let bytes = match &target {
            Some(cmk) if !share => {
                let (blob, sealing) = self.seal(ctx, &src, cmk).await?;
                Bytes::Sealed { blob, sealing }
            }
            _ => Bytes::Shared,
        };
        ctx.progress(99, "publishing").await?;
        let published = publish(db, &src, &src_blob, &p, &bytes).await;
        let ok = match published {
            Ok(ok) => ok,
            Err(e) => {
                // The commit may have happened with its answer lost: then the image exists
                // and names the new blob, which must stay.
                if crate::images::repo::exists(db, &p.image_id).await? {
                    return Ok(done);
                }
                if let Bytes::Sealed { blob, .. } = &bytes {
                    let _ = region.store.delete(blob).await;
                }
                return Err(JobError::from(e));
            }
        };
        if !ok {
            if let Bytes::Sealed { blob, .. } = &bytes {
                let _ = region.store.delete(blob).await;
            }
            return Err(gone());
        }
        tracing::info!(job = %ctx.job.id, image = %p.image_id, source = %p.source_image_id,
            shared = matches!(bytes, Bytes::Shared), "in-region copy made");
        Ok(done)
    }
}

//! The `replicate` job: copies one image from this region to the destination region over
//! the public Glance v2 APIs of both, as the service account.
//!
//! 1. Re-read the source image (deleted or no longer active → error; data changed → error).
//! 2. Find or create the destination image with the id chosen at submission, owned by the
//!    destination tenant, private, with the source's name, formats, minimums, tags and custom
//!    properties plus `replicated_from_region`, `replicated_from_image` and
//!    `replication_job_id`. Checkpoint its id (the job list shows it from now on).
//! 3. Unless it is already `active` (an earlier attempt finished the upload), ask the
//!    destination to adopt content it already holds ([`crate::images::adopt`]: no byte
//!    moves), else ask how many bytes of a cut earlier upload it holds (N, usually 0) and stream
//!    `GET {src}/file` (`Range: bytes=N-`) into `PUT {dst}/file` (`X-Glimpse-Upload-Offset: N`)
//!    with `Content-Length` and the expected md5 and sha512 in headers, counting bytes for
//!    `copy_progress` (persisted when the percentage grows, at most once a second). Never
//!    buffered: memory is one chunk in flight.
//! 4. Verify that the destination is `active` with the source's checksum and os_hash_value.
//!
//! Failures: no answer or 5xx → [`JobError::Retryable`] (the runner backs off and retries);
//! 4xx → [`JobError::Permanent`]; the cancel token → [`JobError::Interrupted`]. `cleanup`
//! (cancel, final failure) deletes the destination image if it is this job's.
//!
//! Crash behaviour: a killed worker's upload connection drops, so the destination puts the
//! image back to `queued` and keeps the bytes that arrived; the job's next owner finds the
//! image by id and continues the upload from the last byte the destination holds (its
//! filesystem staging file, or the 8 MiB part objects of an S3 store), or skips the copy if
//! the image became `active` with the right hashes. The result records `resumed_from` (the byte a resumed copy started at).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use glimpse_client::{Fault, Glance, Upload};
use glimpse_types::glance::{Image, ImageCreate};
use glimpse_types::replicator::AdoptRequest;
use glimpse_types::{ImageStatus, Visibility};

use super::{PROP_FROM_IMAGE, PROP_FROM_REGION, PROP_JOB, Params, pause};
use crate::jobs::{Job, JobContext, JobError, JobRecord};
use crate::region::Region;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a copy may move no byte before the attempt is abandoned (and retried).
const STALL: Duration = Duration::from_secs(120);

/// Runs `replicate` jobs of one (source) region.
pub struct ReplicateHandler {
    region: Arc<Region>,
}

impl ReplicateHandler {
    pub fn new(region: Arc<Region>) -> ReplicateHandler {
        ReplicateHandler { region }
    }

    /// A fault as a job error; a refused service token is dropped so the retry logs in again,
    /// and a resume point the destination no longer holds (416) is asked for again.
    async fn classify(&self, f: Fault) -> JobError {
        match f.status() {
            Some(401) => {
                self.region.service.forget().await;
                JobError::Retryable(f.message().to_string())
            }
            Some(416) => JobError::Retryable(f.message().to_string()),
            _ => f.into(),
        }
    }

    /// The source and destination image APIs, with the service token.
    async fn endpoints(&self, p: &Params) -> Result<(String, String, String), JobError> {
        let svc = self.region.service.token().await?;
        let dst = svc
            .endpoint("image", &p.destination_region_id)
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "the catalog has no image endpoint in region {}",
                    p.destination_region_id
                ))
            })?;
        Ok((svc.token, self.region.image_url(), dst))
    }

    async fn replicate(
        &self,
        ctx: &JobContext,
        p: &Params,
        src: &Glance,
        dst: &Glance,
    ) -> Result<Value, JobError> {
        let source = match src.image(&p.source_image_id).await {
            Ok(v) => v,
            Err(f) if f.status() == Some(404) => {
                return Err(JobError::Permanent(format!(
                    "the source image {} was deleted",
                    p.source_image_id
                )));
            }
            Err(f) => return Err(self.classify(f).await),
        };
        if source.status != ImageStatus::Active {
            return Err(JobError::Permanent(format!(
                "the source image is no longer active (its status is {})",
                source.status.as_str()
            )));
        }
        if !source.has_data(p.checksum.as_deref(), p.os_hash_value.as_deref()) {
            return Err(JobError::Permanent(
                "the source image's data changed after the request".into(),
            ));
        }

        ctx.progress(0, "creating").await?;
        let id = p.destination_image_id.as_str();
        let image = self.destination_image(ctx, p, &source, dst).await?;
        // An earlier attempt's resume point stays in the result.
        let mut made = ctx
            .job
            .result
            .clone()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        made["destination_image_id"] = json!(id);
        ctx.checkpoint(made.clone(), Some(made.clone())).await?;

        match image.status {
            ImageStatus::Active => {
                tracing::info!(job = %ctx.job.id, image = id, "destination already active")
            }
            ImageStatus::Queued => {
                if !self.adopt(ctx, p, dst).await? {
                    let asked = self.resume_point(ctx, p, dst).await;
                    // Where the copy that published the image started (not an earlier
                    // attempt's resume point).
                    match self.copy(ctx, p, asked, src, dst).await? {
                        0 => made.as_object_mut().map(|m| m.remove("resumed_from")),
                        from => made
                            .as_object_mut()
                            .map(|m| m.insert("resumed_from".into(), json!(from))),
                    };
                    ctx.checkpoint(made.clone(), Some(made.clone())).await?;
                }
            }
            s @ (ImageStatus::Saving | ImageStatus::Uploading | ImageStatus::Importing) => {
                return Err(JobError::Retryable(format!(
                    "the destination image is still {} (an earlier attempt's upload)",
                    s.as_str()
                )));
            }
            other => {
                return Err(JobError::Permanent(format!(
                    "the destination image is {}",
                    other.as_str()
                )));
            }
        }

        ctx.progress(99, "verifying").await?;
        // A long copy may outlive the token it started with.
        let fresh = self.region.service.token().await?;
        let dst = dst.with_token(&fresh.token);
        let after = match dst.image(id).await {
            Ok(v) => v,
            Err(f) => return Err(self.classify(f).await),
        };
        if after.status != ImageStatus::Active
            || !after.has_data(p.checksum.as_deref(), p.os_hash_value.as_deref())
        {
            // `cleanup` (called for this final failure) deletes the bad copy.
            return Err(JobError::Permanent(format!(
                "the destination image does not match the source (checksum {:?}, os_hash_value {:?})",
                after.checksum, after.os_hash_value
            )));
        }
        tracing::info!(job = %ctx.job.id, image = id, "replicated");
        Ok(made)
    }

    /// The destination image: found by its pre-chosen id (a resumed job), else created.
    async fn destination_image(
        &self,
        ctx: &JobContext,
        p: &Params,
        source: &Image,
        dst: &Glance,
    ) -> Result<Image, JobError> {
        let id = p.destination_image_id.as_str();
        match dst.image(id).await {
            Ok(img) => return ours(img, p, &ctx.job),
            Err(f) if f.status() == Some(404) => {}
            Err(f) => return Err(self.classify(f).await),
        }
        match dst.create(&destination_body(source, p, &ctx.job.id)).await {
            Ok(img) => Ok(img),
            // Created meanwhile (by an earlier attempt whose answer was lost).
            Err(f) if f.status() == Some(409) => match dst.image(id).await {
                Ok(img) => ours(img, p, &ctx.job),
                Err(f) if f.status() == Some(404) => Err(JobError::Permanent(format!(
                    "the destination image id {id} is held by a deleted image"
                ))),
                Err(f) => Err(self.classify(f).await),
            },
            Err(f) => Err(self.classify(f).await),
        }
    }

    /// Asks the destination to publish the image from content it already holds (no byte
    /// moves); `Ok(false)`: stream it. A failed request is not fatal: the image is re-read,
    /// and only an `active` one (adopted, the answer lost) skips the copy.
    async fn adopt(&self, ctx: &JobContext, p: &Params, dst: &Glance) -> Result<bool, JobError> {
        let (Some(checksum), Some(os_hash_value)) = (&p.checksum, &p.os_hash_value) else {
            return Ok(false);
        };
        if p.os_hash_algo.as_deref().is_some_and(|a| a != "sha512") {
            return Ok(false);
        }
        let id = p.destination_image_id.as_str();
        let content = AdoptRequest {
            image_id: id.to_string(),
            size: p.size,
            checksum: checksum.clone(),
            os_hash_value: os_hash_value.clone(),
        };
        match dst.replicator().adopt(&content).await {
            Ok(adopted) => {
                if adopted {
                    tracing::info!(job = %ctx.job.id, image = id, "the destination adopted content it holds; no bytes moved");
                }
                Ok(adopted)
            }
            Err(f) => {
                tracing::warn!(job = %ctx.job.id, image = id, error = %f, "adoption not possible; streaming");
                match dst.image(id).await {
                    Ok(img) => Ok(img.status == ImageStatus::Active),
                    Err(f) => Err(self.classify(f).await),
                }
            }
        }
    }

    /// The byte to continue the copy at: how much of a cut earlier upload of this content the
    /// destination holds (0 when it holds none, cannot say, or the digests to name the content
    /// are unknown). Never fatal: at worst the copy starts from zero.
    async fn resume_point(&self, ctx: &JobContext, p: &Params, dst: &Glance) -> u64 {
        let (Some(_), Some(sha512)) = (&p.checksum, &p.os_hash_value) else {
            return 0;
        };
        if p.os_hash_algo.as_deref().is_some_and(|a| a != "sha512") {
            return 0;
        }
        match dst
            .replicator()
            .upload_offset(&p.destination_image_id, sha512)
            .await
        {
            Ok(n) if n > 0 && n <= p.size => {
                tracing::info!(job = %ctx.job.id, image = %p.destination_image_id, from = n,
                    size = p.size, "the destination holds part of an earlier upload; resuming");
                n
            }
            Ok(_) => 0,
            Err(f) => {
                tracing::warn!(job = %ctx.job.id, error = %f, "could not ask for a resume point; copying from zero");
                0
            }
        }
    }

    /// Streams the source's data from byte `from` on into the destination image; returns the
    /// byte the copy actually started at (0 when the source ignored the range).
    ///
    /// A resumed upload refused for its content (400: the held bytes and the rest do not make
    /// the source's sha512 — a held prefix damaged on the destination's disk) is retried: the
    /// destination dropped the held bytes, so the next attempt sends everything.
    async fn copy(
        &self,
        ctx: &JobContext,
        p: &Params,
        from: u64,
        src: &Glance,
        dst: &Glance,
    ) -> Result<u64, JobError> {
        let refused_resume = |f: &Fault| {
            JobError::Retryable(format!(
                "the destination refused the bytes it held plus the rest ({f}); copying again \
                 from zero"
            ))
        };
        if from == p.size {
            // Every byte arrived before the cut; only the publication is missing.
            ctx.progress(percent(from, p.size), "copying").await?;
            let empty = reqwest::Body::from(Vec::new());
            return match dst
                .upload(&p.destination_image_id, empty, &upload(p, from, 0))
                .await
            {
                Ok(()) => Ok(from),
                Err(f) if f.status() == Some(400) => Err(refused_resume(&f)),
                Err(f) => Err(self.classify(f).await),
            };
        }
        let resp = match src.download(&p.source_image_id, from).await {
            Ok(r) => r,
            Err(f) => return Err(self.classify(f).await),
        };
        let from = answered_from(&resp, from)?;
        ctx.progress(percent(from, p.size), "copying").await?;
        let len = resp.content_length().unwrap_or(p.size - from);
        if from + len != p.size {
            return Err(JobError::Permanent(format!(
                "the source image data is {} bytes, {} were expected",
                from + len,
                p.size
            )));
        }
        let sent = Arc::new(AtomicU64::new(from));
        let point = pause::lookup(&p.source_image_id);
        let (counter, held) = (sent.clone(), point.clone());
        let limit = self.region.config.replication.max_bytes_per_second;
        let started = tokio::time::Instant::now();
        let stream = resp.bytes_stream().then(move |chunk| {
            let (counter, held) = (counter.clone(), held.clone());
            async move {
                let chunk = chunk.map_err(BoxError::from)?;
                if let Some(point) = held {
                    // Held before the next chunk, so everything counted has gone out.
                    point.hold(counter.load(Ordering::Relaxed)).await?;
                }
                let total = counter.fetch_add(chunk.len() as u64, Ordering::Relaxed) - from;
                if limit > 0 {
                    // Bandwidth limit: this chunk leaves once the budget allows it.
                    let due = Duration::from_secs_f64(total as f64 / limit as f64);
                    tokio::time::sleep_until(started + due).await;
                }
                Ok::<_, BoxError>(chunk)
            }
        });
        let up = upload(p, from, len);
        let upload = dst.upload(
            &p.destination_image_id,
            reqwest::Body::wrap_stream(stream),
            &up,
        );
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let (mut shown, mut last_bytes, mut moved_at) =
            (percent(from, p.size), from, Instant::now());
        // Before it reads the body, the destination re-reads the `from` bytes it holds through
        // its hashes (at disk speed; 50 MB/s assumed at worst): no byte moves meanwhile, beyond
        // what the sockets buffer.
        let prefix_grace = Duration::from_secs(from / 50_000_000);
        // After the last byte, an S3 destination composes its blob from the part objects it
        // holds (reads and writes every byte once more; 50 MB/s assumed at worst) before it
        // answers.
        let publish_grace = Duration::from_secs(p.size / 50_000_000);
        loop {
            tokio::select! {
                done = &mut upload => {
                    return match done {
                        Ok(()) => Ok(from),
                        Err(f) if from > 0 && f.status() == Some(400) => Err(refused_resume(&f)),
                        Err(f) => Err(self.classify(f).await),
                    };
                }
                _ = ctx.cancel.cancelled() => return Err(JobError::Interrupted),
                _ = tick.tick() => {
                    let n = sent.load(Ordering::Relaxed);
                    let pct = percent(n, p.size);
                    if pct > shown {
                        ctx.progress(pct, "copying").await?;
                        shown = pct;
                    }
                    let holding = point.as_ref().is_some_and(|p| p.is_reached());
                    // Still within what the sockets take while the prefix is re-read.
                    let rehashing = n - from < 16 << 20;
                    let mut allowed = if rehashing { STALL + prefix_grace } else { STALL };
                    if n == p.size {
                        allowed += publish_grace;
                    }
                    if n != last_bytes || holding {
                        (last_bytes, moved_at) = (n, Instant::now());
                    } else if moved_at.elapsed() > allowed {
                        return Err(JobError::Retryable(format!(
                            "the copy moved no data for {} s", STALL.as_secs()
                        )));
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Job for ReplicateHandler {
    const KIND: &'static str = "replicate";
    type Params = Params;

    async fn run(&self, ctx: &JobContext, p: Params) -> Result<Value, JobError> {
        let (token, src_base, dst_base) = self.endpoints(&p).await?;
        let http = &self.region.service.http;
        let src = Glance::new(http.clone(), &src_base, &token);
        let dst = Glance::new(http.clone(), &dst_base, &token);
        self.replicate(ctx, &p, &src, &dst).await
    }

    /// Deletes the destination image if it is this job's (a few tries; the destination region
    /// may be briefly down), then clears `destination_image_id` from the job's result.
    async fn cleanup(&self, ctx: &JobContext, p: &Params) {
        let id = p.destination_image_id.as_str();
        for attempt in 1..=3u32 {
            match self.remove_destination(ctx, p).await {
                Ok(()) => {
                    let gone = json!({ "destination_image_id": null });
                    let _ = ctx.checkpoint(gone.clone(), Some(gone)).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %ctx.job.id, image = id, attempt, error = %e,
                        "could not remove the destination image");
                    if attempt < 3 {
                        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    }
                }
            }
        }
        tracing::error!(job = %ctx.job.id, image = id, region = %p.destination_region_id,
            "the half-made destination image is left behind (status queued)");
    }
}

impl ReplicateHandler {
    async fn remove_destination(&self, ctx: &JobContext, p: &Params) -> Result<(), String> {
        let (token, _, dst_base) = self.endpoints(p).await.map_err(error_text)?;
        let dst = Glance::new(self.region.service.http.clone(), &dst_base, &token);
        let id = p.destination_image_id.as_str();
        match dst.image(id).await {
            Err(f) if f.status() == Some(404) => return Ok(()),
            Err(f) => return Err(error_text(self.classify(f).await)),
            Ok(img) if img.property(PROP_JOB) != Some(ctx.job.id.as_str()) => {
                tracing::warn!(job = %ctx.job.id, image = id, "the destination image is not this job's; kept");
                return Ok(());
            }
            Ok(_) => {}
        }
        dst.delete(id).await.map_err(|f| f.to_string())?;
        tracing::info!(job = %ctx.job.id, image = id, "destination image removed");
        Ok(())
    }
}

impl From<Fault> for JobError {
    fn from(f: Fault) -> JobError {
        match f {
            Fault::Down(m) => JobError::Retryable(m),
            Fault::Refused { message, .. } => JobError::Permanent(message),
        }
    }
}

fn error_text(e: JobError) -> String {
    match e {
        JobError::Retryable(m) | JobError::Permanent(m) => m,
        JobError::Interrupted => "interrupted".into(),
    }
}

/// An existing destination image is usable only if this job made it for this tenant.
fn ours(img: Image, p: &Params, job: &JobRecord) -> Result<Image, JobError> {
    if img.property(PROP_JOB) == Some(job.id.as_str())
        && img.owner.as_deref() == Some(p.destination_tenant_id.as_str())
    {
        Ok(img)
    } else {
        Err(JobError::Permanent(format!(
            "the destination image id {} belongs to another image",
            p.destination_image_id
        )))
    }
}

/// The byte a download answer starts at: a source that ignored the range sends everything
/// (then so do we: 0); a partial answer must start where it was asked to.
fn answered_from(resp: &reqwest::Response, from: u64) -> Result<u64, JobError> {
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Ok(0);
    }
    let starts = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<u64>().ok());
    if starts != Some(from) {
        return Err(JobError::Retryable(format!(
            "the source answered a range that does not start at byte {from}"
        )));
    }
    Ok(from)
}

/// The upload of the content from byte `from` on, `len` bytes, verified by the destination.
fn upload(p: &Params, from: u64, len: u64) -> Upload<'_> {
    Upload {
        from,
        len,
        checksum: p.checksum.as_deref(),
        os_hash_value: p.os_hash_value.as_deref(),
    }
}

/// 0–99 while copying (100 is for the verified end).
pub fn percent(sent: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    (u128::from(sent.min(total)) * 100 / u128::from(total)).min(99) as u8
}

/// Whether `key` of a source image is a custom property to copy (not a Glance field, not
/// Glance's reserved `os_glance_*`, not one of the replica's own origin properties).
pub fn is_custom_property(key: &str) -> bool {
    !glimpse_types::glance::BASE_FIELDS.contains(&key)
        && !key.starts_with("os_glance")
        && ![PROP_FROM_REGION, PROP_FROM_IMAGE, PROP_JOB].contains(&key)
}

/// The `POST /v2/images` body of the destination image: the source's name, formats,
/// minimums, tags and custom properties, owned by the destination tenant, private, with the
/// replica's origin properties.
pub fn destination_body(source: &Image, p: &Params, job_id: &str) -> ImageCreate {
    let mut properties: std::collections::BTreeMap<String, String> = source
        .properties()
        .filter(|(k, _)| is_custom_property(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    properties.insert(PROP_FROM_REGION.into(), p.source_region_id.clone());
    properties.insert(PROP_FROM_IMAGE.into(), p.source_image_id.clone());
    properties.insert(PROP_JOB.into(), job_id.into());
    ImageCreate {
        id: Some(p.destination_image_id.clone()),
        name: source.name.clone(),
        owner: Some(p.destination_tenant_id.clone()),
        visibility: Some(Visibility::Private),
        disk_format: source.disk_format.clone(),
        container_format: source.container_format.clone(),
        min_disk: source.min_disk,
        min_ram: source.min_ram,
        tags: Some(source.tags.clone()),
        properties,
    }
}

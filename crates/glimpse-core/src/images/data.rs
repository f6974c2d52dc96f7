//! The data path: upload (`PUT /file`), download preparation (`GET /file`), and the start-up
//! recovery and orphan-blob cleaner that keep invariant 1 ("record first, data next, verify,
//! publish last") true across crashes.
//!
//! Upload: the image must be `queued` (else 409) with both formats set (else 400). One
//! conditional UPDATE claims it (`queued → saving`), then the body streams into a fresh blob
//! ([`glimpse_store::BlobStore::write`] hashes md5 + sha512 in the same pass; a replication's
//! upload by the service account hashes sha512 only and takes the source's md5, see
//! `trusted_md5`) while an observer
//! enforces the size cap and the owner project's quota (413) and feeds the format inspector.
//! At the end of the stream the inspector's verdict must accept the claimed `disk_format`
//! (415, or 413 for a virtual size over the cap). Only then does ONE conditional UPDATE publish
//! `saving → active` with the blob key, size, checksum, `os_hash_*` and `virtual_size`. Any
//! failure removes the blob (except the held bytes of a cut replication upload, below) and
//! puts the image back to `queued` with no data; if the image was deleted meanwhile, the blob
//! is removed and the upload answers 409.
//!
//! As in Glance, only `bare` container images are inspected: `ami`, `ova`, `docker`, … hold
//! payloads the inspector cannot judge; they are stored as uploaded with `virtual_size` null.
//!
//! Resumable uploads: the replication service's uploads (see `resumable`) are staged under a
//! name made of the image id and the content's sha512, and a cut one keeps what arrived. The
//! next upload of the same image and content may say, with `Expected::resume_from`, that it
//! continues at byte N ([`upload_offset`] tells the sender N): the store re-reads the held
//! N bytes through the hashes, the size and quota checks and the format inspector before it
//! appends the body, so the verdict and the sha512 (the only digest computed for these
//! uploads, see `trusted_md5`) still cover the whole content.
//!
//! Crash behaviour: a crash mid-upload leaves the image `saving` and perhaps a blob nobody
//! names. [`recover`] (run at start-up by [`crate::cloud::recover`]) puts `saving` images back to `queued`, and
//! [`clean_orphans`] deletes unreferenced blobs older than a grace period. A dropped upload
//! future (client gone) reverts the image at once through a guard.
//!
//! Database outages (a PostgreSQL restart, a failover) while a node runs: a statement whose
//! answer is lost may or may not have been committed, so the upload never guesses.
//! * A revert the database cannot take now is retried in the background until it can
//!   ([`REVERT_RETRY_FOR`]), so the image does not stay `saving` on a live node.
//! * A claim without an answer is reverted the same way (the image may have become `saving`),
//!   that claim only: it is named by the time it wrote, so that a later upload of the image
//!   on this node (the client's retry) is left alone.
//! * A publication without an answer is settled before the blob is touched: the revert is
//!   retried (for [`SETTLE_FOR`]); if it applies, nothing was published and the blob goes; if
//!   not, the image is read: `active` with this upload's blob means the publication was
//!   committed and the upload succeeded. If the database stays out of reach, the blob is kept
//!   (the orphan cleaner removes it if no image names it) and the answer is 503.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use futures::stream::BoxStream;
use glimpse_formats::{DiskFormat, Inspector, Limits};
use glimpse_store::{BoxError, StoreError, WriteError};
use glimpse_types::ImageStatus;

use super::lifecycle;
use super::model::Image;
use super::policy::{self, Action};
use super::records::load_for;
use crate::auth::Caller;
use crate::db::Db;
use crate::error::{Error, Kind, Result};
use crate::nodes;
use crate::region::Region;

/// How long an unreferenced blob (or staging leftover) is left alone before the cleaner,
/// at start-up and then hourly, deletes it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// An observer's reason to stop an upload.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TooLarge(String);

/// Puts an image back to `queued` when an upload ends without publishing, even if the upload's
/// future is dropped (a client that goes away mid-body).
struct SavingGuard {
    db: Db,
    id: String,
    node: String,
    armed: bool,
}

impl SavingGuard {
    /// The upload published (or the image is gone): nothing to put back.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Puts the image back now; if the database cannot take it now, keeps trying in the
    /// background.
    async fn revert(mut self) {
        self.armed = false;
        match lifecycle::revert(&self.db, &self.id, &self.node).await {
            Err(e) if e.kind == Kind::Unavailable => self.retry_in_background(),
            Err(e) => {
                tracing::error!(image = %self.id, error = %e, "could not put the image back to queued");
            }
            Ok(_) => {}
        }
    }
}

impl SavingGuard {
    /// Hands the revert to [`revert_in_background`].
    fn retry_in_background(&mut self) {
        let (id, node) = (std::mem::take(&mut self.id), std::mem::take(&mut self.node));
        revert_in_background(self.db.clone(), id, node, None);
    }
}

impl Drop for SavingGuard {
    fn drop(&mut self) {
        if self.armed {
            self.retry_in_background();
        }
    }
}

/// How long a node keeps trying, in the background, to put an upload it gave up back to
/// `queued` while the database cannot be reached.
const REVERT_RETRY_FOR: Duration = Duration::from_secs(600);

/// How long an upload whose publication went unanswered waits for the database to tell what
/// happened, before it answers 503.
const SETTLE_FOR: Duration = Duration::from_secs(60);

/// [`revert_retrying`] for [`REVERT_RETRY_FOR`] on a task of its own (a guard dropped with its
/// upload, an outage).
fn revert_in_background(db: Db, id: String, node: String, claimed_at: Option<DateTime<Utc>>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        if let Err(e) = revert_retrying(&db, &id, &node, claimed_at, REVERT_RETRY_FOR).await {
            tracing::error!(image = %id, error = %e,
                "could not put the image back to queued; it goes back when this node restarts");
        }
    });
}

/// [`lifecycle::revert`] (of the claim made at `claimed_at` only, if given:
/// [`lifecycle::revert_claim`]), retried with a backoff up to 5 s while the database cannot be
/// reached, for at most `patience`. Whether it put the image back.
async fn revert_retrying(
    db: &Db,
    id: &str,
    node: &str,
    claimed_at: Option<DateTime<Utc>>,
    patience: Duration,
) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut wait = Duration::from_millis(200);
    loop {
        let reverted = match claimed_at {
            Some(at) => lifecycle::revert_claim(db, id, node, at).await,
            None => lifecycle::revert(db, id, node).await,
        };
        match reverted {
            Err(e)
                if e.kind == Kind::Unavailable && tokio::time::Instant::now() + wait < deadline =>
            {
                tracing::warn!(image = id, error = %e, "putting the image back to queued: retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            r => return r,
        }
    }
}

/// What became of an upload whose publication went unanswered.
enum Settled {
    /// It was committed (at this time).
    Published(DateTime<Utc>),
    /// It was not: the image is back to `queued`.
    Reverted,
    /// It was not, and the image is no longer this upload's (deleted, or taken over).
    Gone,
}

/// Finds out whether an unanswered publication of `blob_key` into `id` happened (see the module
/// documentation). An error: the database could not tell within [`SETTLE_FOR`].
async fn settle(region: &Region, id: &str, blob_key: &str) -> Result<Settled> {
    if revert_retrying(&region.db, id, &region.node, None, SETTLE_FOR).await? {
        return Ok(Settled::Reverted);
    }
    Ok(
        match super::repo::published_with(&region.db, id, blob_key).await? {
            Some(at) => Settled::Published(at),
            None => Settled::Gone,
        },
    )
}

fn cap_error(cap: u64) -> String {
    format!("The incoming image is too large: the image size cap is {cap} bytes.")
}

fn quota_error(quota: u64, used: u64) -> String {
    format!(
        "Image exceeds the storage quota: the project's quota is {quota} bytes and {used} bytes are in use."
    )
}

/// Digests the uploader already knows (a replication job sends the source's): the upload is
/// refused, before the image becomes active, unless the received bytes have them.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// md5, lower-case hex (Glance's `checksum`).
    pub checksum: Option<String>,
    /// sha512, lower-case hex (`os_hash_value`).
    pub os_hash_value: Option<String>,
    /// Bytes of the content the uploader says an earlier, cut upload of the same content
    /// left here (`X-Glimpse-Upload-Offset`); the body holds the rest. Only for the
    /// replication service's uploads, which are resumable ([`resumable`]).
    pub resume_from: u64,
}

/// The name of the resumable upload of `image`'s content with sha512 `os_hash_value`: a new
/// content never continues another's bytes.
fn partial_name(image: &str, os_hash_value: &str) -> String {
    let tag: String = os_hash_value.chars().take(32).collect();
    format!("{image}-{tag}")
}

/// How an upload is stored: resumable (the replication service's, with both digests stated:
/// a cut upload keeps what arrived, and the next may continue from there), or plain.
struct Resumable {
    name: String,
    md5: String,
}

fn resumable(region: &Region, caller: &Caller, id: &str, expected: &Expected) -> Option<Resumable> {
    let md5 = trusted_md5(region, caller, expected)?;
    let sha = expected.os_hash_value.as_deref()?.to_ascii_lowercase();
    Some(Resumable {
        name: partial_name(id, &sha),
        md5,
    })
}

/// How many bytes of an interrupted replication upload of `id` with content sha512
/// `os_hash_value` this region holds, so that the sender resumes there (0: send it all).
/// Only the service account may ask (403), about an image it can see (404).
pub async fn upload_offset(
    region: &Region,
    caller: &Caller,
    id: &str,
    os_hash_value: &str,
) -> Result<u64> {
    if !region.service.recognises(caller) {
        return Err(Error::forbidden(
            "Only the replication service may resume an upload.",
        ));
    }
    if os_hash_value.len() != 128 || !os_hash_value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::bad_request(
            "os_hash_value must be a sha512 digest in hexadecimal.",
        ));
    }
    let img = load_for(region, caller, id, Action::Get).await?.image;
    if img.status != ImageStatus::Queued {
        return Ok(0);
    }
    let name = partial_name(id, &os_hash_value.to_ascii_lowercase());
    Ok(region.store.partial_len(&name).await?)
}

/// Drops what interrupted resumable uploads of `image` left (the image is gone or no longer
/// needs them); failures are logged, the cleaner gets them later.
pub(crate) async fn drop_partials(region: &Region, image: &str) {
    if let Err(e) = region.store.drop_partials(&format!("{image}-")).await {
        tracing::warn!(image, error = %e, "could not drop a partial upload; the cleaner will");
    }
}

/// The expected md5 an upload may take as the content's without computing it: only the
/// service account's (a replication, whose md5 and sha512 the source region computed
/// together over the content it holds), only with an expected sha512 (the received bytes'
/// sha512 is still computed and must equal it, which proves they are the source's bytes,
/// hence have the source's md5), and only a well-formed md5. Anyone else's md5 is computed
/// and compared as before. docs/replication.md explains the trade.
fn trusted_md5(region: &Region, caller: &Caller, expected: &Expected) -> Option<String> {
    let md5 = expected.checksum.as_deref()?;
    let sha = expected.os_hash_value.as_deref()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(md5, 32) && hex(sha, 128) && region.service.recognises(caller))
        .then(|| md5.to_ascii_lowercase())
}

/// Refuses an upload into an image that is not `queued` (409) or lacks a format (400).
fn check_uploadable(img: &Image) -> Result<()> {
    if img.status != ImageStatus::Queued {
        return Err(not_saving(img.status));
    }
    let missing: Vec<&str> = [
        ("disk_format", img.disk_format.is_none()),
        ("container_format", img.container_format.is_none()),
    ]
    .into_iter()
    .filter_map(|(n, m)| m.then_some(n))
    .collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(Error::bad_request(format!(
            "Property {one} must be set prior to saving data."
        ))),
        _ => Err(Error::bad_request(format!(
            "Properties {} must be set prior to saving data.",
            missing.join(", ")
        ))),
    }
}

fn not_saving(status: ImageStatus) -> Error {
    Error::conflict(format!(
        "Image status transition from {} to saving is not allowed",
        status.as_str()
    ))
}

/// How many bytes an upload may bring: the size cap and what the owner's quota leaves.
struct Budget {
    cap: u64,
    quota: u64,
    used: u64,
    quota_left: u64,
}

impl Budget {
    /// The budget of an upload into `img`; 413 at once when the declared length (the held part
    /// and the body) is over it.
    async fn of(region: &Region, img: &Image, declared_len: Option<u64>) -> Result<Budget> {
        let limits = &region.config.limits;
        let (cap, quota) = (limits.image_size_cap, limits.project_quota_bytes);
        if declared_len.is_some_and(|n| n > cap) {
            return Err(Error::too_large(cap_error(cap)));
        }
        let used = if quota > 0 {
            lifecycle::bytes_used(&region.db, &img.owner, &img.id).await?
        } else {
            0
        };
        let quota_left = if quota > 0 {
            quota.saturating_sub(used)
        } else {
            u64::MAX
        };
        if declared_len.is_some_and(|n| n > quota_left) {
            return Err(Error::too_large(quota_error(quota, used)));
        }
        Ok(Budget {
            cap,
            quota,
            used,
            quota_left,
        })
    }

    /// Why `seen` bytes are too many, if they are.
    fn exceeded(&self, seen: u64) -> Option<TooLarge> {
        if seen > self.cap {
            return Some(TooLarge(cap_error(self.cap)));
        }
        (seen > self.quota_left).then(|| TooLarge(quota_error(self.quota, self.used)))
    }
}

/// Uploads an image's data (see the module documentation for the whole protocol).
/// `declared_len` is the request's `Content-Length`, if any: an over-large one fails at once.
pub async fn upload<S, E>(
    region: &Region,
    caller: &Caller,
    id: &str,
    body: S,
    declared_len: Option<u64>,
    expected: &Expected,
) -> Result<Image>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<BoxError>,
{
    let img = load_for(region, caller, id, Action::Upload).await?.image;
    check_uploadable(&img)?;
    let stored_as = resumable(region, caller, id, expected);
    if expected.resume_from > 0 && stored_as.is_none() {
        return Err(Error::bad_request(
            "X-Glimpse-Upload-Offset is accepted only from the replication service, with both \
             expected digests.",
        ));
    }
    // What the whole content will weigh: the held part and the body.
    let declared_len = declared_len.map(|n| n.saturating_add(expected.resume_from));
    let budget = Budget::of(region, &img, declared_len).await?;

    let claimed_at = glimpse_types::now();
    match lifecycle::claim_upload(&region.db, id, &region.node, claimed_at).await {
        Ok(true) => {}
        Ok(false) => {
            return match load_for(region, caller, id, Action::Get).await {
                Ok(now) => Err(not_saving(now.image.status)),
                Err(e) => Err(e),
            };
        }
        Err(e) => {
            // Unanswered: the image may be `saving` on this node now.
            if e.kind == Kind::Unavailable {
                let (db, node) = (region.db.clone(), region.node.clone());
                revert_in_background(db, id.to_string(), node, Some(claimed_at));
            }
            return Err(e);
        }
    }
    let guard = SavingGuard {
        db: region.db.clone(),
        id: id.to_string(),
        node: region.node.clone(),
        armed: true,
    };

    let claim = DiskFormat::parse(img.disk_format.as_deref().unwrap_or(""));
    let inspect = img.container_format.as_deref() == Some("bare") && claim.is_some();
    let mut inspector = inspect.then(Inspector::new);
    let mut seen: u64 = 0;
    let observe = |chunk: &[u8]| -> std::result::Result<(), BoxError> {
        seen = seen.saturating_add(chunk.len() as u64);
        if let Some(too_large) = budget.exceeded(seen) {
            return Err(Box::new(too_large));
        }
        if let Some(i) = inspector.as_mut() {
            i.feed(chunk);
        }
        Ok(())
    };
    let written = match stored_as {
        Some(r) => {
            region
                .store
                .write_resumable(&r.name, expected.resume_from, body, Some(r.md5), observe)
                .await
        }
        None => region.store.write(body, observe).await,
    };
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            guard.revert().await;
            return Err(write_error(region, id, expected, e).await?);
        }
    };
    let mut content = lifecycle::Content::new(
        written.key,
        written.size,
        written.digests.md5,
        written.digests.sha512,
    );
    let verified = match check_digests(expected, &content) {
        Ok(()) => inspection(region, inspector.zip(claim)),
        Err(e) => Err(e),
    };
    match verified {
        Ok(virtual_size) => content.virtual_size = virtual_size,
        Err(e) => {
            discard(region, &content.blob_key).await;
            guard.revert().await;
            return Err(e);
        }
    }
    let published_at = match lifecycle::publish(&region.db, id, &region.node, &content).await {
        Ok(Some(at)) => at,
        Ok(None) => {
            discard(region, &content.blob_key).await;
            guard.disarm();
            return Err(gone_during_upload(id));
        }
        Err(e) if e.kind == Kind::Unavailable => {
            match settle(region, id, &content.blob_key).await {
                Ok(Settled::Published(at)) => at,
                Ok(Settled::Gone) => {
                    guard.disarm();
                    discard(region, &content.blob_key).await;
                    return Err(gone_during_upload(id));
                }
                Ok(_) => {
                    guard.disarm();
                    discard(region, &content.blob_key).await;
                    return Err(e);
                }
                // Still unknown: the blob stays (it may be the image's now); the guard, dropped
                // armed, keeps reverting in the background (a no-op if it was published).
                Err(_) => return Err(e),
            }
        }
        Err(e) => {
            discard(region, &content.blob_key).await;
            guard.revert().await;
            return Err(e);
        }
    };
    guard.disarm();
    Ok(Image {
        status: ImageStatus::Active,
        blob_key: Some(content.blob_key),
        size: Some(content.size as i64),
        checksum: Some(content.checksum),
        os_hash_algo: Some(content.os_hash_algo.to_string()),
        os_hash_value: Some(content.os_hash_value),
        virtual_size: content.virtual_size.map(|v| v as i64),
        updated_at: published_at,
        ..img
    })
}

/// The answer to a failed write of an upload's bytes.
async fn write_error(
    region: &Region,
    id: &str,
    expected: &Expected,
    e: WriteError,
) -> Result<Error> {
    Ok(match e {
        WriteError::Aborted(e) => match e.downcast::<TooLarge>() {
            Ok(t) => Error::too_large(t.0),
            Err(e) => Error::internal(format!("upload aborted: {e}")),
        },
        WriteError::Source(e) => {
            tracing::info!(image = id, error = %e, "upload body failed");
            Error::bad_request(format!("Error reading the image data: {e}"))
        }
        WriteError::Store(StoreError::Gap { held }) => Error::new(
            crate::Kind::RangeNotSatisfiable,
            format!(
                "This region holds {held} bytes of an earlier upload of this content, fewer \
                 than the {} the upload continues from.",
                expected.resume_from
            ),
        ),
        // Deleted meanwhile (which also drops a resumable upload's held bytes, so the
        // store fails to publish them): the same answer as a delete seen at publication.
        WriteError::Store(_) if !super::repo::exists(&region.db, id).await? => {
            gone_during_upload(id)
        }
        WriteError::Store(e) => Error::unavailable(format!("Image storage failed: {e}")),
    })
}

/// 400 unless the received bytes have the digests the uploader stated.
fn check_digests(expected: &Expected, got: &lifecycle::Content) -> Result<()> {
    let mismatch = [
        ("checksum", &expected.checksum, &got.checksum),
        ("os_hash_value", &expected.os_hash_value, &got.os_hash_value),
    ]
    .into_iter()
    .find(|(_, want, got)| want.as_ref().is_some_and(|w| !w.eq_ignore_ascii_case(got)));
    match mismatch {
        None => Ok(()),
        Some((what, want, got)) => Err(Error::bad_request(format!(
            "The uploaded data does not match the expected {what}: expected {}, received {got}.",
            want.as_deref().unwrap_or_default()
        ))),
    }
}

/// The inspector's verdict on the claimed format, if the content was inspected: its virtual
/// size, or 415 (413 for a virtual size over the limit).
fn inspection(region: &Region, inspected: Option<(Inspector, DiskFormat)>) -> Result<Option<u64>> {
    let Some((inspector, claim)) = inspected else {
        return Ok(None);
    };
    let limits = Limits {
        max_virtual_size: region.config.limits.max_virtual_size,
    };
    match inspector.finish().verdict(claim, &limits) {
        Ok(accepted) => Ok(Some(accepted.virtual_size)),
        Err(rejection) => {
            let msg = format!("Image failed format inspection: {rejection}");
            Err(if rejection.is_limit() {
                Error::too_large(msg)
            } else {
                Error::unsupported_media(msg)
            })
        }
    }
}

/// Glance's answer to an upload whose image was deleted while the bytes arrived.
fn gone_during_upload(id: &str) -> Error {
    Error::conflict(format!(
        "Image {id} could not be found after upload. The image may have been deleted during \
         the upload, cleaning up the chunks uploaded."
    ))
}

async fn discard(region: &Region, key: &str) {
    if let Err(e) = region.store.delete(key).await {
        tracing::warn!(blob = key, error = %e, "could not delete a refused blob; the cleaner will");
    }
}

/// Checks that the caller may download an image. `Ok(None)`: the image has no data (204).
pub async fn prepare_download(region: &Region, caller: &Caller, id: &str) -> Result<Option<Image>> {
    let img = load_for_use(region, caller, id).await?;
    if img.status == ImageStatus::Deactivated {
        policy::authorize_deactivated_download(caller)?;
    }
    let has_data = matches!(img.status, ImageStatus::Active | ImageStatus::Deactivated)
        && img.blob_key.is_some()
        && img.size.is_some();
    Ok(has_data.then_some(img))
}

/// Loads an image whose bytes the caller means to read (download it, boot a server from it,
/// make a volume of it): visible to the caller (404), downloadable by policy (403) and, if its
/// bytes are encrypted, sealed with a key the caller's project may use (403). Any status: the
/// caller checks that it has data.
pub async fn load_for_use(region: &Region, caller: &Caller, id: &str) -> Result<Image> {
    let loaded = load_for(region, caller, id, Action::Get).await?;
    policy::authorize(caller, &loaded.target(), Action::Download, None)?;
    if let Some(sealed) = &loaded.image.sealing {
        authorize_key(region, caller, id, &sealed.cmk_id).await?;
    }
    Ok(loaded.image)
}

/// Whether the caller's project may use the key of an encrypted image now: only the key's
/// project may (403 for others, who see the image but not the key), and only while the key
/// is enabled (403 when disabled, pending deletion or deleted).
pub async fn authorize_key(region: &Region, caller: &Caller, image: &str, cmk: &str) -> Result<()> {
    match region.kms.usable(caller.project()?, cmk).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == crate::Kind::NotFound => Err(Error::forbidden(format!(
            "Image {image} is encrypted with key {cmk}, which this project may not use or which \
             no longer exists."
        ))),
        Err(e) if e.kind == crate::Kind::BadRequest => Err(Error::forbidden(format!(
            "Image {image} cannot be read: {}",
            e.message
        ))),
        Err(e) => Err(e),
    }
}

/// Streams an image's bytes, or the range `start..end` of them; an encrypted image's bytes
/// are decrypted on the way out (a tampered blob ends the stream with an error before any
/// unauthenticated byte). Callers check access first ([`prepare_download`]).
pub async fn read(
    region: &Region,
    image: &Image,
    range: Option<(u64, u64)>,
) -> Result<BoxStream<'static, std::result::Result<Bytes, StoreError>>> {
    let key = image
        .blob_key
        .as_deref()
        .ok_or_else(|| Error::internal(format!("image {} has no data", image.id)))?;
    match &image.sealing {
        None => Ok(region.store.read(key, range).await?),
        Some(s) => {
            let data_key = region.kms.data_key_of(s).await?;
            let plain = image.size.unwrap_or(0).max(0) as u64;
            Ok(region
                .store
                .read_sealed(key, &data_key, plain, range)
                .await?)
        }
    }
}

/// Start-up recovery: images this node left `saving` when it stopped go back to `queued`
/// (their partial blobs are orphans), then a background task deletes orphan blobs older than
/// [`ORPHAN_GRACE`]. Returns how many images were reset.
///
/// With several nodes on one database, the uploads other live nodes run are left alone; those
/// of nodes already dead (heartbeat stale, see [`crate::nodes`]) are reset too.
pub async fn recover(region: &Region) -> Result<u64> {
    let stale = nodes::stale_before(&region.node_config);
    let n = lifecycle::reset_abandoned(&region.db, Some(&region.node), &stale).await?;
    if n > 0 {
        tracing::warn!(region = %region.name, images = n, "interrupted uploads put back to queued");
    }
    match region.store.clear_abandoned_staging().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(region = %region.name, files = n,
            "staging files of writers that died removed"),
        Err(e) => tracing::warn!(region = %region.name, error = %e,
            "clearing abandoned staging files failed"),
    }
    let (db, store, name) = (region.db.clone(), region.store.clone(), region.name.clone());
    tokio::spawn(async move {
        match clean_store(&db, &store, ORPHAN_GRACE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(region = %name, blobs = n, "orphan blobs deleted"),
            Err(e) => tracing::warn!(region = %name, error = %e, "orphan blob cleaning failed"),
        }
    });
    Ok(n)
}

/// The uploads of nodes whose heartbeat went stale go back to `queued` (run by every node after
/// each of its own heartbeats). Returns how many.
pub async fn take_over(region: &Region, stale_before: &str) -> Result<u64> {
    lifecycle::reset_abandoned(&region.db, None, stale_before).await
}

/// Deletes blobs that no image references and that are older than `grace`; returns how many.
pub async fn clean_orphans(region: &Region, grace: Duration) -> Result<usize> {
    clean_store(&region.db, &region.store, grace).await
}

async fn clean_store(db: &Db, store: &glimpse_store::BlobStore, grace: Duration) -> Result<usize> {
    // List the store first: a blob published after the database read below is younger than
    // the listing, hence (for any real grace) too young to be deleted.
    let blobs = store.list().await?;
    let cutoff = glimpse_types::now()
        - chrono::Duration::from_std(grace).unwrap_or_else(|_| chrono::Duration::days(1));
    let referenced = super::repo::blob_keys(db).await?;
    let mut deleted = 0;
    for b in blobs {
        if b.modified <= cutoff && !referenced.contains(&b.key) {
            store.delete(&b.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

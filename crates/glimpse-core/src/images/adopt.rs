//! Adoption, the receiving side of replication: a replica whose content the destination
//! region already holds moves no bytes.
//!
//! Before streaming, a replicate job asks the destination region
//! (`POST /v2/extension/image_replicator/adopt`, service account only) to publish its queued
//! destination image from content it already has. The job sends the source's size, md5 and
//! sha512, which the source region computed over bytes it holds. [`adopt`] looks, in this
//! region, for an `active`, unencrypted image of ANY owner with the same size, md5, sha512
//! and the same disk and container format (so the format inspection the candidate passed at
//! its upload is the one this image would pass), and shares its immutable blob: one
//! conditional UPDATE publishes `queued → active` with the candidate's blob key, size,
//! hashes and virtual size, only while the candidate still exists, is active and names that
//! blob ([`lifecycle::adopt_blob`]). Deletes keep a blob while any row names it
//! ([`lifecycle::delete`]), so deleting either image leaves the other readable.
//!
//! Race with a delete of the candidate: on SQLite the UPDATE and the delete's transaction are
//! serialized (one writer); on PostgreSQL the candidate row is locked `FOR SHARE` first, so
//! a concurrent delete either commits before (the UPDATE finds no candidate: not adopted,
//! the job streams) or after (and counts the adopted row: the blob stays), exactly as the IMS
//! copy shares a blob.
//!
//! Only the service account (role `admin` or `service` in the service project) may ask:
//! anyone else would learn whether some tenant holds given content (403).
//!
//! Not adopted (the job then streams as before): no matching candidate; the destination is
//! not `queued`, lacks a format, or is encrypted; the content is over the size cap or the
//! owner's quota (the streamed upload then answers the usual 413).

use glimpse_types::ImageStatus;

use super::policy::Action;
use super::records::load_for;
use super::{lifecycle, repo};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::region::Region;

/// The content a replication carries, as the source region computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub size: u64,
    /// md5, lower-case hex.
    pub checksum: String,
    /// sha512, lower-case hex.
    pub os_hash_value: String,
}

/// Publishes the queued image `id` from content this region already holds; `Ok(true)` when
/// adopted (the image is now `active`), `Ok(false)` when the bytes must be uploaded.
/// 403 for any caller but the service account; 404 for an unknown image.
pub async fn adopt(region: &Region, caller: &Caller, id: &str, want: &Content) -> Result<bool> {
    if !region.service.recognises(caller) {
        return Err(Error::forbidden(
            "Only the service account may ask a region to adopt existing content.",
        ));
    }
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(&want.checksum, 32) || !hex(&want.os_hash_value, 128) {
        return Err(Error::bad_request(
            "checksum must be an md5 and os_hash_value a sha512, in hexadecimal.",
        ));
    }
    let (md5, sha512) = (
        want.checksum.to_ascii_lowercase(),
        want.os_hash_value.to_ascii_lowercase(),
    );
    let img = load_for(region, caller, id, Action::Upload).await?.image;
    let (Some(disk), Some(container)) = (img.disk_format.clone(), img.container_format.clone())
    else {
        return Ok(false);
    };
    if img.status != ImageStatus::Queued || img.sealing.is_some() {
        return Ok(false);
    }
    let limits = &region.config.limits;
    if want.size > limits.image_size_cap {
        return Ok(false);
    }
    if limits.project_quota_bytes > 0 {
        let used = lifecycle::bytes_used(&region.db, &img.owner, id).await?;
        if used.saturating_add(want.size) > limits.project_quota_bytes {
            return Ok(false);
        }
    }
    let Ok(size) = i64::try_from(want.size) else {
        return Ok(false);
    };
    let same = repo::SameContent {
        size,
        md5: &md5,
        sha512: &sha512,
        disk_format: &disk,
        container_format: &container,
    };
    let Some((candidate, blob)) = repo::find_same_content(&region.db, &same, id).await? else {
        return Ok(false);
    };
    let content = lifecycle::Content::new(blob.clone(), want.size, md5, sha512);
    let adopted = lifecycle::adopt_blob(&region.db, id, &candidate, &content).await?;
    if adopted {
        tracing::info!(region = %region.name, image = id, from = %candidate, blob = %blob,
            "replica adopted existing content; no bytes moved");
        // An earlier, cut upload of this image is no longer needed.
        super::data::drop_partials(region, id).await;
    }
    Ok(adopted)
}

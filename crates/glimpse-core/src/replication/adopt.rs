//! Adoption: a replica whose content the destination region already holds moves no bytes.
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
//! blob. Deletes keep a blob while any row names it (`images::repo::delete`), so deleting
//! either image leaves the other readable.
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

use glimpse_types::{ImageStatus, db_time};
use sqlx::Row;

use crate::auth::Caller;
use crate::db::Backend;
use crate::error::{Error, Result};
use crate::images::policy::Action;
use crate::images::records::load_for;
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
        let used: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM images \
             WHERE owner = $1 AND id <> $2 AND size IS NOT NULL",
        )
        .bind(img.owner.clone())
        .bind(id)
        .fetch_one(&region.db.pool)
        .await?
        .try_get("used")?;
        if (used.max(0) as u64).saturating_add(want.size) > limits.project_quota_bytes {
            return Ok(false);
        }
    }

    let Ok(size) = i64::try_from(want.size) else {
        return Ok(false);
    };
    let found = sqlx::query(
        "SELECT id, blob_key FROM images WHERE status = 'active' AND size = $1 \
         AND checksum = $2 AND os_hash_algo = 'sha512' AND os_hash_value = $3 \
         AND disk_format = $4 AND container_format = $5 AND blob_key IS NOT NULL \
         AND cmk_id IS NULL AND id <> $6 ORDER BY created_at LIMIT 1",
    )
    .bind(size)
    .bind(md5.clone())
    .bind(sha512.clone())
    .bind(disk)
    .bind(container)
    .bind(id)
    .fetch_optional(&region.db.pool)
    .await?;
    let Some(row) = found else { return Ok(false) };
    let candidate: String = row.try_get("id")?;
    let blob: String = row.try_get("blob_key")?;

    let mut tx = region.db.pool.begin().await?;
    if region.db.backend == Backend::Postgres {
        let still = sqlx::query(
            "SELECT id FROM images WHERE id = $1 AND status = 'active' AND blob_key = $2 \
             AND cmk_id IS NULL FOR SHARE",
        )
        .bind(candidate.clone())
        .bind(blob.clone())
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(false);
        }
    }
    let published = sqlx::query(
        "UPDATE images SET status = 'active', blob_key = $1, size = $2, checksum = $3, \
         os_hash_algo = 'sha512', os_hash_value = $4, \
         virtual_size = (SELECT c.virtual_size FROM images c WHERE c.id = $5), updated_at = $6 \
         WHERE id = $7 AND status = 'queued' AND cmk_id IS NULL AND EXISTS \
         (SELECT 1 FROM images c WHERE c.id = $5 AND c.status = 'active' AND c.blob_key = $1 \
         AND c.cmk_id IS NULL)",
    )
    .bind(blob.clone())
    .bind(size)
    .bind(md5)
    .bind(sha512)
    .bind(candidate.clone())
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if published == 1 {
        tracing::info!(region = %region.name, image = id, from = %candidate, blob = %blob,
            "replica adopted existing content; no bytes moved");
        // An earlier, cut upload of this image is no longer needed.
        crate::images::data::drop_partials(region, id).await;
    }
    Ok(published == 1)
}

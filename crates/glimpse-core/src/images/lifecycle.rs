//! The one writer of `images`, `image_properties` and `image_tags`: every way an image record
//! is made, changed, filled, emptied or removed is a function here, and every path (the Glance
//! API's records and upload, replication's adoption, IMS copies, snapshots and volume uploads
//! through [`crate::disks::publish_file`]) calls it. Reads are in [`super::repo`].
//!
//! The upload states: [`claim_upload`] (`queued → saving`), then [`publish`] (`saving →
//! active` with a verified [`Content`]) or [`revert`] (`saving → queued`, no data);
//! [`reset_abandoned`] does the revert for every upload no live node runs any more. [`adopt_blob`]
//! publishes a queued image from a blob another image holds, [`insert_copy`] makes an active
//! copy of an image in one INSERT … SELECT. Invariant 1 of DESIGN.md: an image gets content
//! and becomes `active` only through [`publish`], [`adopt_blob`] or [`insert_copy`], each one
//! conditional statement over verified content ([`set_status`] only moves an image that
//! already has it between `active` and `deactivated`).
//!
//! Crash behaviour: every multi-statement change runs in one transaction, so a crash leaves the
//! record as it was before or after the change, never half-written.

use chrono::{DateTime, Utc};
use glimpse_types::{ImageStatus, db_time};
use sqlx::{Any, Row, Transaction};

use super::model::{HASH_ALGO, Image, Sealing};
use super::repo::placeholders;
use crate::db::guarded::{Guarded, Value, bind_all};
use crate::db::{Backend, Db, flag, unique_or};
use crate::error::{Error, Result};
use crate::nodes;

// ---- records ----

/// Inserts a complete new record (row, properties, tags) in one transaction; 409 when the id
/// is taken.
pub(crate) async fn create(db: &Db, img: &Image) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "INSERT INTO images (id, name, owner, status, visibility, protected, os_hidden, \
         disk_format, container_format, size, virtual_size, checksum, os_hash_algo, \
         os_hash_value, min_disk, min_ram, blob_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(img.id.clone())
    .bind(img.name.clone())
    .bind(img.owner.clone())
    .bind(img.status.as_str())
    .bind(img.visibility.as_str())
    .bind(flag(img.protected))
    .bind(flag(img.os_hidden))
    .bind(img.disk_format.clone())
    .bind(img.container_format.clone())
    .bind(img.size)
    .bind(img.virtual_size)
    .bind(img.checksum.clone())
    .bind(img.os_hash_algo.clone())
    .bind(img.os_hash_value.clone())
    .bind(img.min_disk)
    .bind(img.min_ram)
    .bind(img.blob_key.clone())
    .bind(db_time(img.created_at))
    .bind(db_time(img.updated_at))
    .execute(&mut *tx)
    .await;
    unique_or(r, || {
        Error::conflict(format!("Image with identifier {} already exists!", img.id))
    })?;
    write_properties(&mut tx, &img.id, &img.properties).await?;
    write_tags(&mut tx, &img.id, &img.tags).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces all custom properties of an image (inside `tx`), numbering them in order.
async fn write_properties(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    props: &[(String, String)],
) -> Result<()> {
    let rows = props
        .iter()
        .map(|(k, v)| vec![k.clone().into(), v.clone().into()])
        .collect();
    replace_list(tx, "image_properties", "name, value", id, rows).await
}

/// Replaces all tags of an image (inside `tx`), numbering them in order.
async fn write_tags(tx: &mut Transaction<'_, Any>, id: &str, tags: &[String]) -> Result<()> {
    let rows = tags.iter().map(|t| vec![t.clone().into()]).collect();
    replace_list(tx, "image_tags", "tag", id, rows).await
}

/// Replaces the rows of `table` that belong to image `id` with `rows` (the values of
/// `columns`), numbered in order in their `position`.
async fn replace_list(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    columns: &str,
    id: &str,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE image_id = $1"
    )))
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    let Some(width) = rows.first().map(|r| r.len() + 2) else {
        return Ok(());
    };
    let tuples = (0..rows.len())
        .map(|i| format!("({})", placeholders(i * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO {table} (image_id, {columns}, position) VALUES {tuples}");
    let mut values = Vec::with_capacity(rows.len() * width);
    for (pos, row) in rows.into_iter().enumerate() {
        values.push(Value::from(id));
        values.extend(row);
        values.push(Value::from(pos as i64));
    }
    bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What an update writes.
pub(crate) struct Update<'a> {
    pub image: &'a Image,
    pub properties_changed: bool,
    pub tags_changed: bool,
    /// The disk or container format changed: only allowed while the image is still `queued`.
    pub formats_changed: bool,
}

/// Writes the mutable attributes of an image (never status, size or hashes, which belong to the
/// data path). `Ok(false)` when the row is gone or, for a format change, no longer `queued`.
pub(crate) async fn update(db: &Db, u: Update<'_>) -> Result<bool> {
    let img = u.image;
    let mut tx = db.pool.begin().await?;
    let guard = if u.formats_changed {
        " AND status IN ('queued', 'importing')"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE images SET name = $1, visibility = $2, protected = $3, os_hidden = $4, \
         min_disk = $5, min_ram = $6, disk_format = $7, container_format = $8, owner = $9, \
         updated_at = $10 WHERE id = $11{guard}"
    );
    let n = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(img.name.clone())
        .bind(img.visibility.as_str())
        .bind(flag(img.protected))
        .bind(flag(img.os_hidden))
        .bind(img.min_disk)
        .bind(img.min_ram)
        .bind(img.disk_format.clone())
        .bind(img.container_format.clone())
        .bind(img.owner.clone())
        .bind(db_time(img.updated_at))
        .bind(img.id.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    if u.properties_changed {
        write_properties(&mut tx, &img.id, &img.properties).await?;
    }
    if u.tags_changed {
        write_tags(&mut tx, &img.id, &img.tags).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Sets the status from `from` to `to` (deactivate/reactivate). `Ok(false)` if the image was
/// not in `from`.
pub(crate) async fn set_status(
    db: &Db,
    id: &str,
    from: ImageStatus,
    to: ImageStatus,
) -> Result<bool> {
    Guarded::new("images", id)
        .set("status", to.as_str())
        .when_in("status", &[from.as_str()])
        .apply(&db.pool)
        .await
}

/// How a delete went.
pub(crate) enum Deleted {
    /// The rows are gone; the blob (if any, and named by no other image) must be deleted next.
    Done {
        blob_key: Option<String>,
    },
    Protected,
    Missing,
}

/// Deletes an unprotected image's rows in one transaction and returns its blob key.
pub(crate) async fn delete(db: &Db, id: &str) -> Result<Deleted> {
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query("DELETE FROM images WHERE id = $1 AND protected = 0 RETURNING blob_key")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        let exists = sqlx::query("SELECT protected FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        return Ok(if exists.is_some() {
            Deleted::Protected
        } else {
            Deleted::Missing
        });
    };
    let mut blob_key: Option<String> = row.try_get("blob_key")?;
    // Copies share their source's immutable blob: keep it while any other row names it. An
    // in-region copy inserts its row only while the source row exists (locking it on
    // PostgreSQL), so a copy either committed before this delete (and is counted here) or
    // finds the source gone and inserts nothing.
    if let Some(key) = &blob_key {
        let others: i64 = sqlx::query("SELECT COUNT(*) AS n FROM images WHERE blob_key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if others > 0 {
            blob_key = None;
        }
    }
    for table in ["image_properties", "image_tags", "image_members"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE image_id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Deleted::Done { blob_key })
}

/// Adds a tag (a no-op if present). `Ok(false)` when the image already has the most tags allowed.
pub(crate) async fn add_tag(db: &Db, id: &str, tag: &str, max: usize) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    // Write first, so that on SQLite the transaction holds the write lock before it reads
    // (a deferred read-then-write transaction can fail with SQLITE_BUSY under concurrency).
    touch(&mut tx, id).await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(MAX(position), -1) AS BIGINT) AS last, \
         CAST(SUM(CASE WHEN tag = $1 THEN 1 ELSE 0 END) AS BIGINT) AS present \
         FROM image_tags WHERE image_id = $2",
    )
    .bind(tag)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let n: i64 = row.try_get("n")?;
    let last: i64 = row.try_get("last")?;
    let present: Option<i64> = row.try_get("present")?;
    if present.unwrap_or(0) > 0 {
        return Ok(true);
    }
    if n as usize >= max {
        return Ok(false);
    }
    sqlx::query("INSERT INTO image_tags (image_id, tag, position) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(id)
        .bind(tag)
        .bind(last + 1)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes a tag. `Ok(false)` when the image has no such tag.
pub(crate) async fn remove_tag(db: &Db, id: &str, tag: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND tag = $2")
        .bind(id)
        .bind(tag)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    touch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

async fn touch(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    sqlx::query("UPDATE images SET updated_at = $1 WHERE id = $2")
        .bind(db_time(glimpse_types::now()))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// ---- data ----

/// Verified content an image is published with. One blob in the region's store today;
/// several stores or chunked content would add fields here, not paths.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub blob_key: String,
    pub size: u64,
    /// md5, lower-case hex (Glance's `checksum`).
    pub checksum: String,
    pub os_hash_algo: &'static str,
    /// The `os_hash_algo` digest, lower-case hex.
    pub os_hash_value: String,
    /// What the format inspector found, when it judged the content.
    pub virtual_size: Option<u64>,
}

impl Content {
    /// Content hashed with the region's [`HASH_ALGO`].
    pub fn new(blob_key: String, size: u64, checksum: String, os_hash_value: String) -> Content {
        Content {
            blob_key,
            size,
            checksum,
            os_hash_algo: HASH_ALGO,
            os_hash_value,
            virtual_size: None,
        }
    }
}

/// Claims an image for an upload on `node` at `at` (its `updated_at`, which names this claim
/// for [`revert_claim`]): `queued → saving`. `Ok(false)` when it was not `queued`.
pub(crate) async fn claim_upload(db: &Db, id: &str, node: &str, at: DateTime<Utc>) -> Result<bool> {
    Guarded::new("images", id)
        .at(at)
        .set("status", ImageStatus::Saving.as_str())
        .set("saving_node", node)
        .when_in("status", &[ImageStatus::Queued.as_str()])
        .apply(&db.pool)
        .await
}

/// Publishes verified content: `saving → active` with its blob, size and digests; the time
/// written. `Ok(None)` when the image is gone or no longer `saving` on `node` (deleted, or
/// reset meanwhile: taken over when the node's heartbeat went stale).
pub(crate) async fn publish(
    db: &Db,
    id: &str,
    node: &str,
    c: &Content,
) -> Result<Option<DateTime<Utc>>> {
    let now = glimpse_types::now();
    let published = Guarded::new("images", id)
        .at(now)
        .set("status", ImageStatus::Active.as_str())
        .set_sql("saving_node", "NULL")
        .set("blob_key", c.blob_key.as_str())
        .set("size", c.size as i64)
        .set("checksum", c.checksum.as_str())
        .set("os_hash_algo", c.os_hash_algo)
        .set("os_hash_value", c.os_hash_value.as_str())
        .set("virtual_size", c.virtual_size.map(|v| v as i64))
        .when_in("status", &[ImageStatus::Saving.as_str()])
        .when_eq("saving_node", node)
        .apply(&db.pool)
        .await?;
    Ok(published.then_some(now))
}

/// The columns an upload fills, emptied.
const NO_DATA: [&str; 7] = [
    "saving_node",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "blob_key",
];

/// `saving → queued`, clearing everything an upload sets. `Ok(false)` when it was not `saving`
/// on `node`.
pub(crate) async fn revert(db: &Db, id: &str, node: &str) -> Result<bool> {
    reverting(id, node).apply(&db.pool).await
}

/// [`revert`] of the claim [`claim_upload`] made at `claimed_at` only: for a claim whose answer
/// was lost, so that an upload that claimed the image since, on the same node, is left alone.
pub(crate) async fn revert_claim(
    db: &Db,
    id: &str,
    node: &str,
    claimed_at: DateTime<Utc>,
) -> Result<bool> {
    reverting(id, node)
        .when_eq("updated_at", db_time(claimed_at))
        .apply(&db.pool)
        .await
}

fn reverting<'a>(id: &str, node: &str) -> Guarded<'a> {
    NO_DATA
        .iter()
        .fold(Guarded::new("images", id), |g, col| g.set_sql(col, "NULL"))
        .set("status", ImageStatus::Queued.as_str())
        .when_in("status", &[ImageStatus::Saving.as_str()])
        .when_eq("saving_node", node)
}

/// Uploads no live node runs go back to `queued` with no data (the partial blobs are orphans
/// for the cleaner): those of nodes whose heartbeat is older than `stale_before`, and at
/// `starting` node's start-up also its own and those of no node ([`nodes::abandoned`]).
/// Returns how many.
pub(crate) async fn reset_abandoned(
    db: &Db,
    starting: Option<&str>,
    stale_before: &str,
) -> Result<u64> {
    let clear = NO_DATA.map(|c| format!("{c} = NULL")).join(", ");
    let sql = format!(
        "UPDATE images SET status = 'queued', {clear}, updated_at = $1 \
         WHERE status = 'saving' AND {}",
        nodes::abandoned("saving_node", starting.is_some())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(db_time(glimpse_types::now()))
        .bind(stale_before);
    if let Some(n) = starting {
        q = q.bind(n);
    }
    Ok(q.execute(&db.pool).await?.rows_affected())
}

/// Bytes the owner's images other than `except` use (the project quota's measure).
pub(crate) async fn bytes_used(db: &Db, owner: &str, except: &str) -> Result<u64> {
    let n: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM images \
         WHERE owner = $1 AND id <> $2 AND size IS NOT NULL",
    )
    .bind(owner)
    .bind(except)
    .fetch_one(&db.pool)
    .await?
    .try_get("used")?;
    Ok(n.max(0) as u64)
}

/// Publishes the queued, unencrypted image `id` from the blob of `candidate`, which must still
/// be `active`, unencrypted and name `content.blob_key` (on PostgreSQL its row is locked
/// `FOR SHARE` first, so a concurrent delete of it either comes before, and nothing is
/// adopted, or after, and counts this row: the blob stays). The virtual size is the
/// candidate's. `Ok(false)` when not adopted.
pub(crate) async fn adopt_blob(db: &Db, id: &str, candidate: &str, c: &Content) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    if db.backend == Backend::Postgres {
        let still = sqlx::query(
            "SELECT id FROM images WHERE id = $1 AND status = 'active' AND blob_key = $2 \
             AND cmk_id IS NULL FOR SHARE",
        )
        .bind(candidate)
        .bind(c.blob_key.clone())
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(false);
        }
    }
    let published = sqlx::query(
        "UPDATE images SET status = 'active', blob_key = $1, size = $2, checksum = $3, \
         os_hash_algo = $4, os_hash_value = $5, \
         virtual_size = (SELECT c.virtual_size FROM images c WHERE c.id = $6), updated_at = $7 \
         WHERE id = $8 AND status = 'queued' AND cmk_id IS NULL AND EXISTS \
         (SELECT 1 FROM images c WHERE c.id = $6 AND c.status = 'active' AND c.blob_key = $1 \
         AND c.cmk_id IS NULL)",
    )
    .bind(c.blob_key.clone())
    .bind(c.size as i64)
    .bind(c.checksum.clone())
    .bind(c.os_hash_algo)
    .bind(c.os_hash_value.clone())
    .bind(candidate)
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(published == 1)
}

/// A new image made as a copy of an active one (IMS): the new record's identity, and where its
/// bytes are.
pub(crate) struct Copy<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub owner: &'a str,
    /// `None`: the source's blob and sealing, shared. `Some`: a new blob and its sealing.
    pub sealed: Option<(&'a str, &'a Sealing)>,
    pub properties: &'a [(String, String)],
}

/// Inserts an `active`, private copy of `source` (formats, sizes, hashes and minimums from its
/// row) in one transaction with the copy's properties. The source must still exist, be
/// `active` and name `source_blob` (on PostgreSQL its row is locked `FOR SHARE`, so that a
/// concurrent delete comes either first, and nothing is inserted, or after, and sees the
/// copy). `Ok(false)` when it did not.
pub(crate) async fn insert_copy(
    db: &Db,
    source: &str,
    source_blob: &str,
    copy: &Copy<'_>,
) -> Result<bool> {
    let lock = match db.backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    let (blob, cmk, wrapped) = match copy.sealed {
        None => ("blob_key", "cmk_id", "wrapped_data_key"),
        Some(_) => ("$8", "$9", "$10"),
    };
    let sql = format!(
        "INSERT INTO images (id, name, owner, status, visibility, protected, os_hidden, \
         disk_format, container_format, size, virtual_size, checksum, os_hash_algo, \
         os_hash_value, min_disk, min_ram, blob_key, cmk_id, wrapped_data_key, created_at, \
         updated_at) \
         SELECT $1, $2, $3, 'active', 'private', 0, 0, disk_format, container_format, size, \
         virtual_size, checksum, os_hash_algo, os_hash_value, min_disk, min_ram, {blob}, {cmk}, \
         {wrapped}, $4, $4 FROM images WHERE id = $5 AND status = $6 AND blob_key = $7{lock}"
    );
    let mut tx = db.pool.begin().await?;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(copy.id.to_string())
        .bind(copy.name.to_string())
        .bind(copy.owner.to_string())
        .bind(db_time(glimpse_types::now()))
        .bind(source.to_string())
        .bind(ImageStatus::Active.as_str())
        .bind(source_blob.to_string());
    if let Some((blob, sealing)) = copy.sealed {
        q = q
            .bind(blob.to_string())
            .bind(sealing.cmk_id.clone())
            .bind(sealing.wrapped_data_key.clone());
    }
    if q.execute(&mut *tx).await?.rows_affected() != 1 {
        return Ok(false);
    }
    write_properties(&mut tx, copy.id, copy.properties).await?;
    tx.commit().await?;
    Ok(true)
}

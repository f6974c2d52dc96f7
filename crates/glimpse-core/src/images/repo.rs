//! SQL for image records: reading rows into [`Image`]s (with their properties and tags, for one
//! image or a whole page in one extra query), inserting, updating mutable attributes, deleting,
//! and tags. One query text for SQLite and PostgreSQL (see `crate::db`).
//!
//! Crash behaviour: every multi-statement change runs in one transaction, so a crash leaves the
//! record as it was before or after the change, never half-written.

use crate::db::is_unique_violation;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use glimpse_types::{ImageStatus, Visibility, db_time, parse_time};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::model::{Image, MemberStatus, Sealing};
use crate::db::{Db, flag};
use crate::error::{Error, Result};

/// The image columns, as selected from `images i`.
pub(crate) const COLUMNS: &str = "i.id, i.name, i.owner, i.status, i.visibility, i.protected, \
     i.os_hidden, i.disk_format, i.container_format, i.size, i.virtual_size, i.checksum, \
     i.os_hash_algo, i.os_hash_value, i.min_disk, i.min_ram, i.blob_key, i.cmk_id, i.wrapped_data_key, i.created_at, i.updated_at";

pub(crate) fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    let s: String = row.try_get(col)?;
    parse_time(&s).ok_or_else(|| Error::internal(format!("bad timestamp {s:?} in column {col}")))
}

/// Reads the [`COLUMNS`] of a row (properties and tags empty).
pub(crate) fn image_from_row(row: &AnyRow) -> Result<Image> {
    let status: String = row.try_get("status")?;
    let visibility: String = row.try_get("visibility")?;
    Ok(Image {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        status: ImageStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad image status {status:?}")))?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| Error::internal(format!("bad visibility {visibility:?}")))?,
        protected: row.try_get::<i64, _>("protected")? != 0,
        os_hidden: row.try_get::<i64, _>("os_hidden")? != 0,
        disk_format: row.try_get("disk_format")?,
        container_format: row.try_get("container_format")?,
        size: row.try_get("size")?,
        virtual_size: row.try_get("virtual_size")?,
        checksum: row.try_get("checksum")?,
        os_hash_algo: row.try_get("os_hash_algo")?,
        os_hash_value: row.try_get("os_hash_value")?,
        min_disk: row.try_get("min_disk")?,
        min_ram: row.try_get("min_ram")?,
        blob_key: row.try_get("blob_key")?,
        sealing: match (row.try_get("cmk_id")?, row.try_get("wrapped_data_key")?) {
            (Some(cmk_id), Some(wrapped_data_key)) => Some(Sealing {
                cmk_id,
                wrapped_data_key,
            }),
            _ => None,
        },
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        properties: Vec::new(),
        tags: Vec::new(),
    })
}

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills the properties and tags of `images` with one query.
pub(crate) async fn attach_details(db: &Db, images: &mut [Image]) -> Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    let n = images.len();
    let sql = format!(
        "SELECT image_id, CAST(0 AS BIGINT) AS kind, name, value, position FROM image_properties \
         WHERE image_id IN ({}) \
         UNION ALL SELECT image_id, CAST(1 AS BIGINT) AS kind, tag AS name, tag AS value, position \
         FROM image_tags WHERE image_id IN ({})",
        placeholders(1, n),
        placeholders(n + 1, n)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for _ in 0..2 {
        for img in images.iter() {
            q = q.bind(img.id.clone());
        }
    }
    let rows = q.fetch_all(&db.pool).await?;
    let index: HashMap<&str, usize> = images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.id.as_str(), i))
        .collect();
    let mut props: Vec<Vec<(i64, String, String)>> = vec![Vec::new(); n];
    let mut tags: Vec<Vec<(i64, String)>> = vec![Vec::new(); n];
    for row in rows {
        let id: String = row.try_get("image_id")?;
        let Some(&i) = index.get(id.as_str()) else {
            continue;
        };
        let kind: i64 = row.try_get("kind")?;
        let position: i64 = row.try_get("position")?;
        let name: String = row.try_get("name")?;
        if kind == 0 {
            props[i].push((position, name, row.try_get("value")?));
        } else {
            tags[i].push((position, name));
        }
    }
    for (i, img) in images.iter_mut().enumerate() {
        let mut p = std::mem::take(&mut props[i]);
        p.sort_by_key(|(pos, _, _)| *pos);
        img.properties = p.into_iter().map(|(_, k, v)| (k, v)).collect();
        let mut t = std::mem::take(&mut tags[i]);
        t.sort_by_key(|(pos, _)| *pos);
        img.tags = t.into_iter().map(|(_, t)| t).collect();
    }
    Ok(())
}

/// One image with the caller project's membership status, or `None` if no such record.
pub(crate) async fn load(
    db: &Db,
    id: &str,
    project: &str,
) -> Result<Option<(Image, Option<MemberStatus>)>> {
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT m.status FROM image_members m \
         WHERE m.image_id = i.id AND m.member_id = $1) AS my_status \
         FROM images i WHERE i.id = $2"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let mut img = image_from_row(&row)?;
    let my: Option<String> = row.try_get("my_status")?;
    attach_details(db, std::slice::from_mut(&mut img)).await?;
    Ok(Some((img, my.as_deref().and_then(MemberStatus::parse))))
}

/// Inserts a complete new record (row, properties, tags) in one transaction; 409 when the id
/// is taken.
pub(crate) async fn insert(db: &Db, img: &Image) -> Result<()> {
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
    if let Err(e) = r {
        if is_unique_violation(&e) {
            return Err(Error::conflict(format!(
                "Image with identifier {} already exists!",
                img.id
            )));
        }
        return Err(e.into());
    }
    write_properties(&mut tx, &img.id, &img.properties).await?;
    write_tags(&mut tx, &img.id, &img.tags).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces all custom properties of an image (inside `tx`), numbering them in order.
pub(crate) async fn write_properties(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    props: &[(String, String)],
) -> Result<()> {
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if props.is_empty() {
        return Ok(());
    }
    let values = (0..props.len())
        .map(|i| {
            format!(
                "(${}, ${}, ${}, ${})",
                4 * i + 1,
                4 * i + 2,
                4 * i + 3,
                4 * i + 4
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql =
        format!("INSERT INTO image_properties (image_id, name, value, position) VALUES {values}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (pos, (k, v)) in props.iter().enumerate() {
        q = q
            .bind(id.to_string())
            .bind(k.clone())
            .bind(v.clone())
            .bind(pos as i64);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Replaces all tags of an image (inside `tx`), numbering them in order.
pub(crate) async fn write_tags(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    tags: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if tags.is_empty() {
        return Ok(());
    }
    let values = (0..tags.len())
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO image_tags (image_id, tag, position) VALUES {values}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (pos, t) in tags.iter().enumerate() {
        q = q.bind(id.to_string()).bind(t.clone()).bind(pos as i64);
    }
    q.execute(&mut **tx).await?;
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
    let n =
        sqlx::query("UPDATE images SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to.as_str())
            .bind(db_time(glimpse_types::now()))
            .bind(id)
            .bind(from.as_str())
            .execute(&db.pool)
            .await?
            .rows_affected();
    Ok(n == 1)
}

/// Whether an image row exists (any status).
pub(crate) async fn exists(db: &Db, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT id FROM images WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .is_some())
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

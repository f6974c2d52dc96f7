//! Reads of image records: rows into [`Image`]s (with their properties and tags, for one image
//! or a whole page in one extra query), existence, the blobs images name and content already
//! held. Every write of `images`, `image_properties` and `image_tags` is in
//! [`super::lifecycle`]. One query text for SQLite and PostgreSQL (see `crate::db`).

use std::collections::{HashMap, HashSet};

use glimpse_types::{ImageStatus, Visibility};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Image, MemberStatus, Sealing};
use crate::db::Db;
use crate::db::rows::{boolean, enumerated, time};
use crate::error::Result;

/// The image columns, as selected from `images i`.
pub(crate) const COLUMNS: &str = "i.id, i.name, i.owner, i.status, i.visibility, i.protected, \
     i.os_hidden, i.disk_format, i.container_format, i.size, i.virtual_size, i.checksum, \
     i.os_hash_algo, i.os_hash_value, i.min_disk, i.min_ram, i.blob_key, i.cmk_id, i.wrapped_data_key, i.created_at, i.updated_at";

/// Reads the [`COLUMNS`] of a row (properties and tags empty).
pub(crate) fn image_from_row(row: &AnyRow) -> Result<Image> {
    Ok(Image {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        status: enumerated(row, "status", ImageStatus::parse)?,
        visibility: enumerated(row, "visibility", Visibility::parse)?,
        protected: boolean(row, "protected")?,
        os_hidden: boolean(row, "os_hidden")?,
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

/// Whether an image row exists (any status).
pub(crate) async fn exists(db: &Db, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT id FROM images WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

/// When image `id` was published with the blob `blob_key` (its `updated_at`), if it is `active`
/// with that blob: how an upload whose publication went unanswered learns that it happened.
pub(crate) async fn published_with(
    db: &Db,
    id: &str,
    blob_key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let row = sqlx::query(
        "SELECT updated_at FROM images WHERE id = $1 AND status = 'active' AND blob_key = $2",
    )
    .bind(id)
    .bind(blob_key)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| time(&r, "updated_at")).transpose()
}

/// The blob keys image rows name.
pub(crate) async fn blob_keys(db: &Db) -> Result<HashSet<String>> {
    let rows = sqlx::query("SELECT blob_key FROM images WHERE blob_key IS NOT NULL")
        .fetch_all(&db.pool)
        .await?;
    Ok(crate::db::rows::strings(&rows, "blob_key")?
        .into_iter()
        .collect())
}

/// What a replica's content is, as the source region computed it and as an image here would
/// have to match it to share its blob.
pub(crate) struct SameContent<'a> {
    pub size: i64,
    pub md5: &'a str,
    pub sha512: &'a str,
    pub disk_format: &'a str,
    pub container_format: &'a str,
}

/// The oldest `active`, unencrypted image but `except` holding exactly `want` (same size,
/// md5, sha512 and formats) with a blob: its id and blob key.
pub(crate) async fn find_same_content(
    db: &Db,
    want: &SameContent<'_>,
    except: &str,
) -> Result<Option<(String, String)>> {
    let found = sqlx::query(
        "SELECT id, blob_key FROM images WHERE status = 'active' AND size = $1 \
         AND checksum = $2 AND os_hash_algo = 'sha512' AND os_hash_value = $3 \
         AND disk_format = $4 AND container_format = $5 AND blob_key IS NOT NULL \
         AND cmk_id IS NULL AND id <> $6 ORDER BY created_at LIMIT 1",
    )
    .bind(want.size)
    .bind(want.md5.to_string())
    .bind(want.sha512.to_string())
    .bind(want.disk_format.to_string())
    .bind(want.container_format.to_string())
    .bind(except)
    .fetch_optional(&db.pool)
    .await?;
    found
        .map(|row| Ok((row.try_get("id")?, row.try_get("blob_key")?)))
        .transpose()
}

//! Every SQL statement on `volumes` and `volume_attachments`. State changes are conditional
//! UPDATEs (`… WHERE status IN (…)`) so two racing requests cannot both win.

use std::collections::BTreeMap;

use glimpse_types::{db_time, parse_time};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Attachment, Volume, VolumeStatus};
use crate::db::Db;
use crate::error::{Error, Result};

const COLUMNS: &str = "id, project_id, user_id, name, description, size_gb, status, \
    previous_status, volume_type, availability_zone, bootable, source_image_id, \
    image_metadata, metadata, created_at, updated_at, upload_image_id";

fn time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    parse_time(s).ok_or_else(|| Error::internal(format!("bad time in the database: {s}")))
}

fn map(s: &str) -> BTreeMap<String, String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn status(s: &str) -> Result<VolumeStatus> {
    VolumeStatus::parse(s).ok_or_else(|| Error::internal(format!("bad volume status {s}")))
}

fn volume(r: &AnyRow) -> Result<Volume> {
    let previous: Option<String> = r.try_get("previous_status")?;
    let updated: Option<String> = r.try_get("updated_at")?;
    Ok(Volume {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        size_gb: r.try_get("size_gb")?,
        status: status(&r.try_get::<String, _>("status")?)?,
        previous_status: previous.as_deref().map(status).transpose()?,
        volume_type: r.try_get("volume_type")?,
        availability_zone: r.try_get("availability_zone")?,
        bootable: r.try_get::<i64, _>("bootable")? != 0,
        source_image_id: r.try_get("source_image_id")?,
        image_metadata: map(&r.try_get::<String, _>("image_metadata")?),
        metadata: map(&r.try_get::<String, _>("metadata")?),
        created_at: time(&r.try_get::<String, _>("created_at")?)?,
        updated_at: updated.as_deref().map(time).transpose()?,
        upload_image_id: r.try_get("upload_image_id")?,
        attachments: Vec::new(),
    })
}

fn attachment(r: &AnyRow) -> Result<Attachment> {
    let at: Option<String> = r.try_get("attached_at")?;
    Ok(Attachment {
        id: r.try_get("id")?,
        volume_id: r.try_get("volume_id")?,
        server_id: r.try_get("server_id")?,
        mountpoint: r.try_get("mountpoint")?,
        attach_status: r.try_get("attach_status")?,
        attached_at: at.as_deref().map(time).transpose()?,
    })
}

fn json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

pub async fn insert(db: &Db, v: &Volume) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO volumes ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )))
    .bind(&v.id)
    .bind(&v.project_id)
    .bind(&v.user_id)
    .bind(v.name.clone())
    .bind(v.description.clone())
    .bind(v.size_gb)
    .bind(v.status.as_str())
    .bind(v.previous_status.map(|s| s.as_str()))
    .bind(&v.volume_type)
    .bind(&v.availability_zone)
    .bind(i64::from(v.bootable))
    .bind(v.source_image_id.clone())
    .bind(json(&v.image_metadata))
    .bind(json(&v.metadata))
    .bind(db_time(v.created_at))
    .bind(v.updated_at.map(db_time))
    .bind(v.upload_image_id.clone())
    .execute(&db.pool)
    .await?;
    Ok(())
}

async fn attachments_of(db: &Db, volume_id: &str) -> Result<Vec<Attachment>> {
    sqlx::query(
        "SELECT id, volume_id, server_id, mountpoint, attach_status, attached_at \
         FROM volume_attachments WHERE volume_id = $1 ORDER BY created_at",
    )
    .bind(volume_id)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(attachment)
    .collect()
}

/// A volume with its attachments.
pub async fn load(db: &Db, id: &str) -> Result<Option<Volume>> {
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM volumes WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let mut v = volume(&row)?;
    v.attachments = attachments_of(db, id).await?;
    Ok(Some(v))
}

/// Volumes of a project (every project's for `None`), newest first, with attachments.
pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<Volume>> {
    let rows = match project {
        Some(p) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM volumes WHERE project_id = $1 \
                 ORDER BY created_at DESC, id DESC"
            )))
            .bind(p)
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM volumes ORDER BY created_at DESC, id DESC"
            )))
            .fetch_all(&db.pool)
            .await?
        }
    };
    let mut out: Vec<Volume> = rows.iter().map(volume).collect::<Result<_>>()?;
    let all = match project {
        Some(p) => {
            sqlx::query(
                "SELECT id, volume_id, server_id, mountpoint, attach_status, attached_at \
             FROM volume_attachments WHERE project_id = $1",
            )
            .bind(p)
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT id, volume_id, server_id, mountpoint, attach_status, attached_at \
             FROM volume_attachments",
            )
            .fetch_all(&db.pool)
            .await?
        }
    };
    let mut by_volume: BTreeMap<String, Vec<Attachment>> = BTreeMap::new();
    for r in &all {
        let a = attachment(r)?;
        by_volume.entry(a.volume_id.clone()).or_default().push(a);
    }
    for v in &mut out {
        v.attachments = by_volume.remove(&v.id).unwrap_or_default();
    }
    Ok(out)
}

/// `from → to` if the volume's status is one of `from`; false if it was not.
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[VolumeStatus],
    to: VolumeStatus,
) -> Result<bool> {
    let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
        list.join(", ")
    )))
    .bind(to.as_str())
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// `from → uploading` for an upload making `image_id`, which is recorded on the row in the
/// same UPDATE (before the image record exists), so that a crash at any later point leaves a
/// trace of the image for [`super::recover`]; false if the volume's status was not in `from`.
pub async fn begin_upload(
    db: &Db,
    id: &str,
    from: &[VolumeStatus],
    image_id: &str,
) -> Result<bool> {
    let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE volumes SET previous_status = status, status = 'uploading', \
         upload_image_id = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
        list.join(", ")
    )))
    .bind(image_id)
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// `uploading →` `in-use` if the volume is attached, else `available` (as Cinder's
/// `volume_update_status_based_on_attachment`), forgetting the upload's image; false if it
/// was not uploading. With `Some(image_id)` only the upload of that image is ended (a row
/// recorded by another upload is left alone; a row from before `upload_image_id` existed has
/// none and is ended).
pub async fn end_upload(db: &Db, id: &str, image_id: Option<&str>) -> Result<bool> {
    let guard = if image_id.is_some() {
        " AND (upload_image_id IS NULL OR upload_image_id = $3)"
    } else {
        ""
    };
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE volumes SET status = CASE WHEN EXISTS (SELECT 1 FROM volume_attachments a \
         WHERE a.volume_id = volumes.id AND a.attach_status = 'attached') THEN 'in-use' \
         ELSE 'available' END, previous_status = NULL, upload_image_id = NULL, \
         updated_at = $1 WHERE id = $2 AND status = 'uploading'{guard}"
    )))
    .bind(db_time(glimpse_types::now()))
    .bind(id);
    let q = match image_id {
        Some(image) => q.bind(image),
        None => q,
    };
    Ok(q.execute(&db.pool).await?.rows_affected() == 1)
}

/// Sets the fields a creation fills once the file exists.
pub async fn finish_create(
    db: &Db,
    id: &str,
    bootable: bool,
    image_metadata: &BTreeMap<String, String>,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE volumes SET status = 'available', bootable = $1, image_metadata = $2, \
         updated_at = $3 WHERE id = $4 AND status = 'creating'",
    )
    .bind(i64::from(bootable))
    .bind(json(image_metadata))
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// `extending → available` with the new size; false if the volume was not extending.
pub async fn finish_extend(db: &Db, id: &str, size_gb: i64) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE volumes SET status = 'available', size_gb = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'extending'",
    )
    .bind(size_gb)
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Writes a volume's name, description, metadata and bootable flag.
pub async fn update_fields(db: &Db, v: &Volume) -> Result<()> {
    sqlx::query(
        "UPDATE volumes SET name = $1, description = $2, metadata = $3, bootable = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(v.name.clone())
    .bind(v.description.clone())
    .bind(json(&v.metadata))
    .bind(i64::from(v.bootable))
    .bind(db_time(glimpse_types::now()))
    .bind(&v.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn ids_with_status(db: &Db, status: VolumeStatus) -> Result<Vec<String>> {
    sqlx::query("SELECT id FROM volumes WHERE status = $1")
        .bind(status.as_str())
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect()
}

/// Volumes in `status` with no unfinished job of `kind` naming them (a create job is keyed by
/// the volume id; an upload job's parameters carry it).
pub async fn without_job(db: &Db, status: VolumeStatus, kind: &str) -> Result<Vec<String>> {
    sqlx::query(
        "SELECT v.id FROM volumes v WHERE v.status = $1 AND NOT EXISTS (SELECT 1 FROM jobs j \
         WHERE j.kind = $2 AND j.state IN ('queued', 'running', 'canceling') \
         AND (j.idempotency_key = v.id OR j.params LIKE '%' || v.id || '%'))",
    )
    .bind(status.as_str())
    .bind(kind)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok(r.try_get::<String, _>("id")?))
    .collect()
}

/// Removes a volume's row and its attachments.
pub async fn delete_row(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM volumes WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Attachment steps, each with the volume's status change in the same transaction.
pub enum AttachStep<'a> {
    /// `available → attaching`, a reservation row without a server.
    Reserve { attachment_id: &'a str },
    /// `available|attaching → in-use`, the row attached to `server_id`.
    Attach {
        attachment_id: &'a str,
        server_id: &'a str,
        mountpoint: Option<&'a str>,
    },
    /// `attaching → available`, the reservation row removed.
    Unreserve,
    /// `in-use|detaching → available`, the row removed.
    Detach,
}

/// Applies an attachment step; false if the volume's status did not allow it.
pub async fn attach_step(
    db: &Db,
    volume_id: &str,
    project_id: &str,
    step: AttachStep<'_>,
) -> Result<bool> {
    let now = db_time(glimpse_types::now());
    let mut tx = db.pool.begin().await?;
    let (from, to): (&str, &str) = match step {
        AttachStep::Reserve { .. } => ("'available'", "attaching"),
        AttachStep::Attach { .. } => ("'available', 'attaching', 'reserved'", "in-use"),
        AttachStep::Unreserve => ("'attaching', 'reserved'", "available"),
        AttachStep::Detach => ("'in-use', 'detaching', 'attaching'", "available"),
    };
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({from})"
    )))
    .bind(to)
    .bind(&now)
    .bind(volume_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    match step {
        AttachStep::Reserve { attachment_id } => {
            sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
                .bind(volume_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO volume_attachments (id, volume_id, server_id, project_id, \
                 mountpoint, attach_status, attached_at, created_at) \
                 VALUES ($1, $2, NULL, $3, NULL, 'attaching', NULL, $4)",
            )
            .bind(attachment_id)
            .bind(volume_id)
            .bind(project_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        AttachStep::Attach {
            attachment_id,
            server_id,
            mountpoint,
        } => {
            sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
                .bind(volume_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO volume_attachments (id, volume_id, server_id, project_id, \
                 mountpoint, attach_status, attached_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'attached', $6, $7)",
            )
            .bind(attachment_id)
            .bind(volume_id)
            .bind(server_id)
            .bind(project_id)
            .bind(mountpoint.map(str::to_string))
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        AttachStep::Unreserve | AttachStep::Detach => {
            sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
                .bind(volume_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Volumes attached to a server (Nova's view of a server's volumes).
pub async fn attachments_of_server(db: &Db, server_id: &str) -> Result<Vec<Attachment>> {
    sqlx::query(
        "SELECT id, volume_id, server_id, mountpoint, attach_status, attached_at \
         FROM volume_attachments WHERE server_id = $1 ORDER BY created_at",
    )
    .bind(server_id)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(attachment)
    .collect()
}

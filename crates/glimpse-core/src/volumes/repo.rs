//! Every SQL statement on `volumes` and `volume_attachments`. State changes are conditional
//! UPDATEs (`… WHERE status IN (…)`, through [`Guarded`]) so two racing requests cannot both
//! win.

use std::collections::BTreeMap;

use glimpse_types::db_time;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Attachment, Volume, VolumeStatus};
use crate::db::guarded::Guarded;
use crate::db::rows::{boolean, enumerated, lenient_json, opt_enumerated, opt_time, strings, time};
use crate::db::{Db, by_project, delete_cascade, row_where};
use crate::error::Result;

const COLUMNS: &str = "id, project_id, user_id, name, description, size_gb, status, \
    previous_status, volume_type, availability_zone, bootable, source_image_id, \
    image_metadata, metadata, created_at, updated_at, upload_image_id";

const ATTACHMENT_COLUMNS: &str = "id, volume_id, server_id, mountpoint, attach_status, attached_at";

fn map(r: &AnyRow, col: &str) -> Result<BTreeMap<String, String>> {
    Ok(lenient_json(r, col)?.unwrap_or_default())
}

fn volume(r: &AnyRow) -> Result<Volume> {
    Ok(Volume {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        size_gb: r.try_get("size_gb")?,
        status: enumerated(r, "status", VolumeStatus::parse)?,
        previous_status: opt_enumerated(r, "previous_status", VolumeStatus::parse)?,
        volume_type: r.try_get("volume_type")?,
        availability_zone: r.try_get("availability_zone")?,
        bootable: boolean(r, "bootable")?,
        source_image_id: r.try_get("source_image_id")?,
        image_metadata: map(r, "image_metadata")?,
        metadata: map(r, "metadata")?,
        created_at: time(r, "created_at")?,
        updated_at: opt_time(r, "updated_at")?,
        upload_image_id: r.try_get("upload_image_id")?,
        attachments: Vec::new(),
    })
}

fn attachment(r: &AnyRow) -> Result<Attachment> {
    Ok(Attachment {
        id: r.try_get("id")?,
        volume_id: r.try_get("volume_id")?,
        server_id: r.try_get("server_id")?,
        mountpoint: r.try_get("mountpoint")?,
        attach_status: r.try_get("attach_status")?,
        attached_at: opt_time(r, "attached_at")?,
    })
}

fn json(m: &BTreeMap<String, String>) -> String {
    crate::db::rows::to_json(m, "{}")
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

/// The attachments whose `col` is `value`, oldest first.
async fn attachments_where(db: &Db, col: &str, value: &str) -> Result<Vec<Attachment>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM volume_attachments WHERE {col} = $1 ORDER BY created_at"
    )))
    .bind(value.to_string())
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(attachment)
    .collect()
}

/// A volume with its attachments.
pub async fn load(db: &Db, id: &str) -> Result<Option<Volume>> {
    let Some(row) = row_where(db, COLUMNS, "volumes", "id", id).await? else {
        return Ok(None);
    };
    let mut v = volume(&row)?;
    v.attachments = attachments_where(db, "volume_id", id).await?;
    Ok(Some(v))
}

/// Volumes of a project (every project's for `None`), newest first, with attachments.
pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<Volume>> {
    let rows = by_project(db, COLUMNS, "volumes", project, "created_at DESC, id DESC").await?;
    let mut out: Vec<Volume> = rows.iter().map(volume).collect::<Result<_>>()?;
    let all = by_project(
        db,
        ATTACHMENT_COLUMNS,
        "volume_attachments",
        project,
        "created_at",
    )
    .await?;
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

fn names(statuses: &[VolumeStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

/// `from → to` if the volume's status is one of `from`; false if it was not.
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[VolumeStatus],
    to: VolumeStatus,
) -> Result<bool> {
    Guarded::new("volumes", id)
        .set("status", to.as_str())
        .when_in("status", &names(from))
        .apply(&db.pool)
        .await
}

/// `from → to` if the volume's status is `from`; false if it was not.
pub async fn step(db: &Db, id: &str, from: VolumeStatus, to: VolumeStatus) -> Result<bool> {
    transition(db, id, &[from], to).await
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
    Guarded::new("volumes", id)
        .set_sql("previous_status", "status")
        .set("status", VolumeStatus::Uploading.as_str())
        .set("upload_image_id", image_id)
        .when_in("status", &names(from))
        .apply(&db.pool)
        .await
}

/// `uploading →` `in-use` if the volume is attached, else `available` (as Cinder's
/// `volume_update_status_based_on_attachment`), forgetting the upload's image; false if it
/// was not uploading. With `Some(image_id)` only the upload of that image is ended (a row
/// recorded by another upload is left alone; a row from before `upload_image_id` existed has
/// none and is ended).
pub async fn end_upload(db: &Db, id: &str, image_id: Option<&str>) -> Result<bool> {
    let change = Guarded::new("volumes", id)
        .set_sql(
            "status",
            "CASE WHEN EXISTS (SELECT 1 FROM volume_attachments a \
             WHERE a.volume_id = volumes.id AND a.attach_status = 'attached') THEN 'in-use' \
             ELSE 'available' END",
        )
        .set_sql("previous_status", "NULL")
        .set_sql("upload_image_id", "NULL")
        .when_in("status", &[VolumeStatus::Uploading.as_str()]);
    let change = match image_id {
        Some(image) => {
            change.when_bound("(upload_image_id IS NULL OR upload_image_id = {})", image)
        }
        None => change,
    };
    change.apply(&db.pool).await
}

/// Sets the fields a creation fills once the file exists.
pub async fn finish_create(
    db: &Db,
    id: &str,
    bootable: bool,
    image_metadata: &BTreeMap<String, String>,
) -> Result<bool> {
    Guarded::new("volumes", id)
        .set("status", VolumeStatus::Available.as_str())
        .set("bootable", bootable)
        .set("image_metadata", json(image_metadata))
        .when_in("status", &[VolumeStatus::Creating.as_str()])
        .apply(&db.pool)
        .await
}

/// `extending → available` with the new size; false if the volume was not extending.
pub async fn finish_extend(db: &Db, id: &str, size_gb: i64) -> Result<bool> {
    Guarded::new("volumes", id)
        .set("status", VolumeStatus::Available.as_str())
        .set("size_gb", size_gb)
        .when_in("status", &[VolumeStatus::Extending.as_str()])
        .apply(&db.pool)
        .await
}

/// Writes a volume's name, description, metadata and bootable flag.
pub async fn update_fields(db: &Db, v: &Volume) -> Result<()> {
    Guarded::new("volumes", &v.id)
        .set("name", v.name.clone())
        .set("description", v.description.clone())
        .set("metadata", json(&v.metadata))
        .set("bootable", v.bootable)
        .apply(&db.pool)
        .await?;
    Ok(())
}

pub async fn ids_with_status(db: &Db, status: VolumeStatus) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM volumes WHERE status = $1")
        .bind(status.as_str())
        .fetch_all(&db.pool)
        .await?;
    strings(&rows, "id")
}

/// Volumes in `status` with no unfinished job of `kind` naming them (a create job is keyed by
/// the volume id; an upload job's parameters carry it).
pub async fn without_job(db: &Db, status: VolumeStatus, kind: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT v.id FROM volumes v WHERE v.status = $1 AND NOT EXISTS (SELECT 1 FROM jobs j \
         WHERE j.kind = $2 AND j.state IN ('queued', 'running', 'canceling') \
         AND (j.idempotency_key = v.id OR j.params LIKE '%' || v.id || '%'))",
    )
    .bind(status.as_str())
    .bind(kind)
    .fetch_all(&db.pool)
    .await?;
    strings(&rows, "id")
}

/// Removes a volume's row and its attachments.
pub async fn delete_row(db: &Db, id: &str) -> Result<()> {
    delete_cascade(db, "volumes", id, &[("volume_attachments", "volume_id")]).await?;
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

impl AttachStep<'_> {
    /// The volume statuses the step starts from and the one it ends in.
    fn statuses(&self) -> (&'static [&'static str], VolumeStatus) {
        match self {
            AttachStep::Reserve { .. } => (&["available"], VolumeStatus::Attaching),
            AttachStep::Attach { .. } => {
                (&["available", "attaching", "reserved"], VolumeStatus::InUse)
            }
            AttachStep::Unreserve => (&["attaching", "reserved"], VolumeStatus::Available),
            AttachStep::Detach => (
                &["in-use", "detaching", "attaching"],
                VolumeStatus::Available,
            ),
        }
    }
}

/// Applies an attachment step; false if the volume's status did not allow it.
pub async fn attach_step(
    db: &Db,
    volume_id: &str,
    project_id: &str,
    step: AttachStep<'_>,
) -> Result<bool> {
    let now = glimpse_types::now();
    let mut tx = db.pool.begin().await?;
    let (from, to) = step.statuses();
    let moved = Guarded::new("volumes", volume_id)
        .set("status", to.as_str())
        .at(now)
        .when_in("status", from)
        .apply(&mut *tx)
        .await?;
    if !moved {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
        .bind(volume_id)
        .execute(&mut *tx)
        .await?;
    match step {
        AttachStep::Reserve { attachment_id } => {
            let row = (attachment_id, None, None, "attaching", None);
            insert_attachment(&mut tx, volume_id, project_id, row, now).await?;
        }
        AttachStep::Attach {
            attachment_id,
            server_id,
            mountpoint,
        } => {
            let row = (
                attachment_id,
                Some(server_id),
                mountpoint,
                "attached",
                Some(now),
            );
            insert_attachment(&mut tx, volume_id, project_id, row, now).await?;
        }
        AttachStep::Unreserve | AttachStep::Detach => {}
    }
    tx.commit().await?;
    Ok(true)
}

/// An attachment row: id, server, mountpoint, status, attached at.
type AttachmentRow<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    Option<chrono::DateTime<chrono::Utc>>,
);

async fn insert_attachment(
    tx: &mut Transaction<'_, Any>,
    volume_id: &str,
    project_id: &str,
    (id, server_id, mountpoint, status, attached_at): AttachmentRow<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO volume_attachments (id, volume_id, server_id, project_id, \
         mountpoint, attach_status, attached_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(volume_id.to_string())
    .bind(server_id.map(str::to_string))
    .bind(project_id.to_string())
    .bind(mountpoint.map(str::to_string))
    .bind(status.to_string())
    .bind(attached_at.map(db_time))
    .bind(db_time(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Volumes attached to a server (Nova's view of a server's volumes).
pub async fn attachments_of_server(db: &Db, server_id: &str) -> Result<Vec<Attachment>> {
    attachments_where(db, "server_id", server_id).await
}

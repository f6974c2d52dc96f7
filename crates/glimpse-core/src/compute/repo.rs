//! SQL for servers: read, insert, guarded state transitions (each one conditional UPDATE, so
//! two racing requests cannot both win), delete. One query text for SQLite and PostgreSQL.
//!
//! Crash behaviour: every change is one statement; a crash leaves a row before or after it.

use glimpse_types::{db_time, parse_time};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Server, VmState};
use crate::db::Db;
use crate::error::{Error, Result};

const COLUMNS: &str = "id, project_id, user_id, name, image_id, flavor_id, vm_state, task_state, \
     power_state, metadata, access_ipv4, access_ipv6, key_name, base_path, base_format, disk_path, disk_size, snapshot_image, fault, \
     image_meta, created_at, updated_at, launched_at";

fn time(row: &AnyRow, col: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    let s: String = row.try_get(col)?;
    parse_time(&s).ok_or_else(|| Error::internal(format!("bad timestamp {s:?} in column {col}")))
}

fn from_row(row: &AnyRow) -> Result<Server> {
    let vm: String = row.try_get("vm_state")?;
    let metadata: String = row.try_get("metadata")?;
    let metadata: Vec<(String, String)> = serde_json::from_str(&metadata)
        .map_err(|e| Error::internal(format!("bad server metadata: {e}")))?;
    let image_meta: String = row.try_get("image_meta")?;
    let launched: Option<String> = row.try_get("launched_at")?;
    Ok(Server {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        image_id: row.try_get("image_id")?,
        flavor_id: row.try_get("flavor_id")?,
        vm_state: VmState::parse(&vm)
            .ok_or_else(|| Error::internal(format!("bad vm_state {vm:?}")))?,
        task_state: row.try_get("task_state")?,
        power_state: row.try_get("power_state")?,
        metadata,
        access_ipv4: row.try_get("access_ipv4")?,
        access_ipv6: row.try_get("access_ipv6")?,
        key_name: row.try_get("key_name")?,
        base_path: row.try_get("base_path")?,
        base_format: row.try_get("base_format")?,
        disk_path: row.try_get("disk_path")?,
        disk_size: row.try_get("disk_size")?,
        snapshot_image: row.try_get("snapshot_image")?,
        fault: row.try_get("fault")?,
        image_meta: serde_json::from_str(&image_meta)
            .map_err(|e| Error::internal(format!("bad image_meta: {e}")))?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        launched_at: launched.as_deref().and_then(parse_time),
    })
}

pub async fn load(db: &Db, id: &str) -> Result<Option<Server>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM servers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A project's servers (every project's for `None`), newest first.
pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<Server>> {
    let rows =
        match project {
            Some(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM servers WHERE project_id = $1 ORDER BY created_at DESC, id"
            )))
            .bind(p)
            .fetch_all(&db.pool)
            .await?,
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM servers ORDER BY created_at DESC, id"
                )))
                .fetch_all(&db.pool)
                .await?
            }
        };
    rows.iter().map(from_row).collect()
}

/// Servers with a task state (for start-up recovery).
pub async fn with_task(db: &Db) -> Result<Vec<Server>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM servers WHERE task_state IS NOT NULL"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn insert(db: &Db, s: &Server) -> Result<()> {
    sqlx::query(
        "INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, vm_state, \
         task_state, power_state, metadata, image_meta, created_at, updated_at, access_ipv4, \
         access_ipv6, key_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.name)
    .bind(&s.image_id)
    .bind(&s.flavor_id)
    .bind(s.vm_state.as_str())
    .bind(s.task_state.clone())
    .bind(s.power_state)
    .bind(serde_json::to_string(&s.metadata).unwrap_or_else(|_| "[]".into()))
    .bind(s.image_meta.to_string())
    .bind(db_time(s.created_at))
    .bind(db_time(s.updated_at))
    .bind(&s.access_ipv4)
    .bind(&s.access_ipv6)
    .bind(s.key_name.clone())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Sets a server's name and access addresses; false if it is gone.
pub async fn update_fields(db: &Db, s: &Server) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE servers SET name = $1, access_ipv4 = $2, access_ipv6 = $3, updated_at = $4 \
         WHERE id = $5",
    )
    .bind(&s.name)
    .bind(&s.access_ipv4)
    .bind(&s.access_ipv6)
    .bind(db_time(s.updated_at))
    .bind(&s.id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Marks a built server `active` (only from `building`); false if it is gone or not building.
pub async fn built(
    db: &Db,
    id: &str,
    base_path: &str,
    base_format: &str,
    disk_path: &str,
    disk_size: u64,
) -> Result<bool> {
    let now = db_time(glimpse_types::now());
    let n = sqlx::query(
        "UPDATE servers SET vm_state = 'active', task_state = NULL, power_state = 1, \
         base_path = $1, base_format = $2, disk_path = $3, disk_size = $4, launched_at = $5, \
         updated_at = $6 WHERE id = $7 AND vm_state = 'building'",
    )
    .bind(base_path)
    .bind(base_format)
    .bind(disk_path)
    .bind(disk_size as i64)
    .bind(now.clone())
    .bind(now)
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// `building → error` with a fault message.
pub async fn failed_build(db: &Db, id: &str, fault: &str) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET vm_state = 'error', task_state = NULL, power_state = 0, fault = $1, \
         updated_at = $2 WHERE id = $3 AND vm_state = 'building'",
    )
    .bind(fault)
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// `vm_state ∈ from` and no task ⇒ `to` (with its power state). False when the guard failed.
pub async fn transition(db: &Db, id: &str, from: &[VmState], to: VmState) -> Result<bool> {
    let list = from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE servers SET vm_state = $1, power_state = $2, updated_at = $3 \
         WHERE id = $4 AND task_state IS NULL AND vm_state IN ({list})"
    )))
    .bind(to.as_str())
    .bind(to.power_state() as i64)
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Claims a server for a task: `task_state NULL → task` when `vm_state ∈ from` and the server
/// was launched; `snapshot_image` is set with it. False when the guard failed.
pub async fn claim_task(
    db: &Db,
    id: &str,
    from: &[VmState],
    task: &str,
    snapshot_image: Option<&str>,
) -> Result<bool> {
    let list = from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE servers SET task_state = $1, snapshot_image = $2, updated_at = $3 \
         WHERE id = $4 AND task_state IS NULL AND launched_at IS NOT NULL \
         AND vm_state IN ({list})"
    )))
    .bind(task)
    .bind(snapshot_image.map(str::to_string))
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Moves a running task on (`from` → `to`; `None` ends it and clears `snapshot_image`).
/// False when the server is gone or runs another task.
pub async fn move_task(db: &Db, id: &str, from: &[&str], to: Option<&str>) -> Result<bool> {
    let list = from
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let clear = if to.is_none() {
        ", snapshot_image = NULL"
    } else {
        ""
    };
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE servers SET task_state = $1, updated_at = $2{clear} \
         WHERE id = $3 AND task_state IN ({list})"
    )))
    .bind(to.map(str::to_string))
    .bind(db_time(glimpse_types::now()))
    .bind(id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Deletes a server's row; false if it was already gone.
pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM servers WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

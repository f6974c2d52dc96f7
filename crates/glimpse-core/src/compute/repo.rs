//! SQL for servers: read, insert, guarded state transitions (each one conditional UPDATE
//! through [`Guarded`], so two racing requests cannot both win), delete. One query text for
//! SQLite and PostgreSQL.
//!
//! Crash behaviour: every change is one statement; a crash leaves a row before or after it.

use glimpse_types::db_time;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Server, VmState};
use crate::db::guarded::Guarded;
use crate::db::rows::{enumerated, json, lenient_time, time, to_json};
use crate::db::{Db, by_project, row_where};
use crate::error::Result;

const COLUMNS: &str = "id, project_id, user_id, name, image_id, flavor_id, vm_state, task_state, \
     power_state, metadata, access_ipv4, access_ipv6, key_name, base_path, base_format, disk_path, disk_size, snapshot_image, fault, \
     image_meta, created_at, updated_at, launched_at";

fn from_row(row: &AnyRow) -> Result<Server> {
    Ok(Server {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        image_id: row.try_get("image_id")?,
        flavor_id: row.try_get("flavor_id")?,
        vm_state: enumerated(row, "vm_state", VmState::parse)?,
        task_state: row.try_get("task_state")?,
        power_state: row.try_get("power_state")?,
        metadata: json(row, "metadata")?,
        access_ipv4: row.try_get("access_ipv4")?,
        access_ipv6: row.try_get("access_ipv6")?,
        key_name: row.try_get("key_name")?,
        base_path: row.try_get("base_path")?,
        base_format: row.try_get("base_format")?,
        disk_path: row.try_get("disk_path")?,
        disk_size: row.try_get("disk_size")?,
        snapshot_image: row.try_get("snapshot_image")?,
        fault: row.try_get("fault")?,
        image_meta: json(row, "image_meta")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        launched_at: lenient_time(row, "launched_at")?,
    })
}

pub async fn load(db: &Db, id: &str) -> Result<Option<Server>> {
    let row = row_where(db, COLUMNS, "servers", "id", id).await?;
    row.as_ref().map(from_row).transpose()
}

/// A project's servers (every project's for `None`), newest first.
pub async fn list(db: &Db, project: Option<&str>) -> Result<Vec<Server>> {
    let rows = by_project(db, COLUMNS, "servers", project, "created_at DESC, id").await?;
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
    .bind(to_json(&s.metadata, "[]"))
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
    Guarded::new("servers", &s.id)
        .set("name", s.name.as_str())
        .set("access_ipv4", s.access_ipv4.as_str())
        .set("access_ipv6", s.access_ipv6.as_str())
        .at(s.updated_at)
        .apply(&db.pool)
        .await
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
    let now = glimpse_types::now();
    Guarded::new("servers", id)
        .set("vm_state", VmState::Active.as_str())
        .set_sql("task_state", "NULL")
        .set("power_state", 1)
        .set("base_path", base_path)
        .set("base_format", base_format)
        .set("disk_path", disk_path)
        .set("disk_size", disk_size as i64)
        .set("launched_at", db_time(now))
        .at(now)
        .when_in("vm_state", &[VmState::Building.as_str()])
        .apply(&db.pool)
        .await
}

/// `building → error` with a fault message.
pub async fn failed_build(db: &Db, id: &str, fault: &str) -> Result<()> {
    Guarded::new("servers", id)
        .set("vm_state", VmState::Error.as_str())
        .set_sql("task_state", "NULL")
        .set("power_state", 0)
        .set("fault", fault)
        .when_in("vm_state", &[VmState::Building.as_str()])
        .apply(&db.pool)
        .await?;
    Ok(())
}

fn names(states: &[VmState]) -> Vec<&'static str> {
    states.iter().map(|s| s.as_str()).collect()
}

/// `vm_state ∈ from` and no task ⇒ `to` (with its power state). False when the guard failed.
pub async fn transition(db: &Db, id: &str, from: &[VmState], to: VmState) -> Result<bool> {
    Guarded::new("servers", id)
        .set("vm_state", to.as_str())
        .set("power_state", to.power_state() as i64)
        .when("task_state IS NULL")
        .when_in("vm_state", &names(from))
        .apply(&db.pool)
        .await
}

/// Claims a server for a task: `task_state NULL → task` when `vm_state ∈ from` and the server
/// was launched; `snapshot_image` is set with it. False when the guard failed.
pub async fn claim_task(
    db: &Db,
    id: &str,
    from: &[VmState],
    task: &str,
    snapshot_image: Option<&str>,
    node: Option<&str>,
) -> Result<bool> {
    Guarded::new("servers", id)
        .set("task_state", task)
        .set("snapshot_image", snapshot_image)
        .set("task_node", node)
        .when("task_state IS NULL AND launched_at IS NOT NULL")
        .when_in("vm_state", &names(from))
        .apply(&db.pool)
        .await
}

/// Ends the tasks `task` (run in a node's own process, like the write-disk extension) that no
/// live node runs any more: those of nodes whose heartbeat is older than `stale_before`, and at
/// `starting` node's start-up also its own and those of no node
/// ([`crate::nodes::abandoned`]). Returns how many.
pub async fn end_abandoned_tasks(
    db: &Db,
    task: &str,
    starting: Option<&str>,
    stale_before: &str,
) -> Result<u64> {
    let sql = format!(
        "UPDATE servers SET task_state = NULL, task_node = NULL, snapshot_image = NULL \
         WHERE task_state = $1 AND {}",
        crate::nodes::abandoned("task_node", starting.is_some())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(task)
        .bind(stale_before);
    if let Some(n) = starting {
        q = q.bind(n);
    }
    Ok(q.execute(&db.pool).await?.rows_affected())
}

/// Moves a running task on (`from` → `to`; `None` ends it and clears `snapshot_image`).
/// False when the server is gone or runs another task.
pub async fn move_task(db: &Db, id: &str, from: &[&str], to: Option<&str>) -> Result<bool> {
    let change = Guarded::new("servers", id).set("task_state", to);
    let change = match to {
        None => change
            .set_sql("snapshot_image", "NULL")
            .set_sql("task_node", "NULL"),
        Some(_) => change,
    };
    change.when_in("task_state", from).apply(&db.pool).await
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

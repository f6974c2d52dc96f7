//! The SQL of the job table: enqueue (idempotent), read, claim with a lease, heartbeat,
//! progress and checkpoints, and the conditional terminal transitions. Every write by a worker
//! is guarded by `lease_owner = <me>`, so a worker whose lease expired (a zombie) can no
//! longer change the job once another worker took it over.

use chrono::{DateTime, Duration, Utc};
use glimpse_types::{db_time, now};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{JobRecord, JobState, NewJob};
use crate::db::rows::{lenient_json as json, lenient_time as time};
use crate::db::{Backend, Db, is_unique_violation};
use crate::error::{Error, Result};

const COLUMNS: &str = "id, kind, project_id, state, phase, cancel_requested, progress, params, \
     checkpoint, result, error, attempts, idempotency_key, lease_owner, lease_until, run_after, \
     created_at, updated_at, started_at, finished_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<JobRecord> {
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        project_id: row.try_get("project_id")?,
        state: JobState::parse(&state)
            .ok_or_else(|| Error::internal(format!("job state {state:?}")))?,
        phase: row.try_get("phase")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        progress: row.try_get::<i64, _>("progress")?.clamp(0, 100) as u8,
        params: json(row, "params")?.unwrap_or(serde_json::Value::Null),
        checkpoint: json(row, "checkpoint")?,
        result: json(row, "result")?,
        error: row.try_get("error")?,
        attempts: row.try_get::<i64, _>("attempts")?,
        idempotency_key: row.try_get("idempotency_key")?,
        lease_owner: row.try_get("lease_owner")?,
        created_at: time(row, "created_at")?.unwrap_or_else(now),
        updated_at: time(row, "updated_at")?.unwrap_or_else(now),
        started_at: time(row, "started_at")?,
        finished_at: time(row, "finished_at")?,
    })
}

/// Inserts a job, or returns the existing one with the same (project, kind, idempotency key).
/// The bool is true when the job was created by this call.
pub async fn enqueue(db: &Db, new: &NewJob) -> Result<(JobRecord, bool)> {
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = by_key(db, &new.project_id, &new.kind, key).await?
    {
        return Ok((existing, false));
    }
    let t = db_time(now());
    let id = new.id.clone().unwrap_or_else(glimpse_types::uuid_id);
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, kind, project_id, state, phase, params, idempotency_key, \
         run_after, created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $7, $7)",
    )
    .bind(&id)
    .bind(&new.kind)
    .bind(&new.project_id)
    .bind(&new.phase)
    .bind(new.params.to_string())
    .bind(&new.idempotency_key)
    .bind(&t)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok((
            get(db, &id)
                .await?
                .ok_or_else(|| Error::internal("job vanished"))?,
            true,
        )),
        // A concurrent request with the same key won the race: answer with its job.
        Err(e) if new.idempotency_key.is_some() && is_unique_violation(&e) => {
            let key = new.idempotency_key.as_deref().unwrap_or_default();
            let existing = by_key(db, &new.project_id, &new.kind, key).await?;
            Ok((existing.ok_or_else(|| Error::internal(e))?, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// The job of an idempotency key in a project, if any (an indexed lookup).
pub async fn by_key(db: &Db, project: &str, kind: &str, key: &str) -> Result<Option<JobRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE project_id = $1 AND kind = $2 AND idempotency_key = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(kind)
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(db: &Db, id: &str) -> Result<Option<JobRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Jobs of one kind, oldest first; `project = None` lists every project's (admin).
pub async fn list(db: &Db, kind: &str, project: Option<&str>) -> Result<Vec<JobRecord>> {
    let rows = match project {
        Some(p) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND project_id = $2 ORDER BY created_at, id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(kind)
                .bind(p)
                .fetch_all(&db.pool)
                .await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY created_at, id");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(kind)
                .fetch_all(&db.pool)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Marks a cancel request on a job that is queued or running. Returns false if the job is in
/// another state (nothing changed).
pub async fn request_cancel(db: &Db, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET cancel_requested = 1, updated_at = $1 \
         WHERE id = $2 AND state IN ('queued', 'running') AND cancel_requested = 0",
    )
    .bind(db_time(now()))
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`under_lease`] for an update whose last three parameters are the update time (now), the
/// job id and the lease owner.
async fn touch_under_lease(db: &Db, update: Update<'_>, id: &str, owner: &str) -> Result<bool> {
    under_lease(db, update.bind(db_time(now())), id, owner).await
}

/// Claims the next runnable job for `owner`: a queued job whose backoff has passed, or a job
/// whose lease expired (its worker died), respecting a per-project cap of running jobs.
pub async fn claim(
    db: &Db,
    owner: &str,
    kinds: &[&str],
    lease: Duration,
    per_project_running: i64,
) -> Result<Option<JobRecord>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let t = now();
    let kinds_sql = kinds
        .iter()
        .map(|k| format!("'{}'", k.replace('\'', "")))
        .collect::<Vec<_>>()
        .join(", ");
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // A cancel-requested queued job is claimed at once (to be wound down), ignoring the cap.
    let sql = format!(
        "UPDATE jobs SET state = CASE WHEN state = 'canceling' THEN 'canceling' ELSE 'running' END, \
         lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3, \
         started_at = COALESCE(started_at, $3) \
         WHERE id = (SELECT j.id FROM jobs j WHERE j.kind IN ({kinds_sql}) AND ( \
             (j.state = 'queued' AND (j.cancel_requested = 1 OR (j.run_after <= $3 AND \
                (SELECT COUNT(*) FROM jobs r WHERE r.project_id = j.project_id AND r.kind = j.kind \
                 AND r.state = 'running' AND r.lease_until >= $3) < $4))) \
             OR (j.state IN ('running', 'canceling') AND j.lease_until < $3)) \
           ORDER BY j.created_at, j.id LIMIT 1{lock}) \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(db_time(t + lease))
        .bind(db_time(t))
        .bind(per_project_running)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Start-up: the leases an earlier life of `node` held (owners `<node>/…`) end now, so its
/// jobs are claimed again at once instead of after their lease. Returns how many.
pub async fn release_node(db: &Db, node: &str) -> Result<u64> {
    let prefix = format!("{node}/");
    Ok(sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE state IN ('running', 'canceling') \
         AND substr(lease_owner, 1, CAST($2 AS INTEGER)) = $3 AND lease_until > $1",
    )
    .bind(db_time(now()))
    .bind(prefix.len() as i64)
    .bind(&prefix)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

/// Extends the lease; returns the job's cancel flag, or `None` if the lease was lost.
pub async fn heartbeat(db: &Db, id: &str, owner: &str, lease: Duration) -> Result<Option<bool>> {
    let t = now();
    let row = sqlx::query(
        "UPDATE jobs SET lease_until = $1, updated_at = $2 \
         WHERE id = $3 AND lease_owner = $4 AND state IN ('running', 'canceling') \
         RETURNING cancel_requested",
    )
    .bind(db_time(t + lease))
    .bind(db_time(t))
    .bind(id)
    .bind(owner)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<i64, _>("cancel_requested")? != 0),
        None => None,
    })
}

/// A worker's UPDATE of a job, still to bind its last two parameters: the job id and the
/// lease owner.
type Update<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds the job id and the lease owner to `update` and runs it; whether it applied (false:
/// the lease was lost).
async fn under_lease(db: &Db, update: Update<'_>, id: &str, owner: &str) -> Result<bool> {
    let done = update.bind(id).bind(owner).execute(&db.pool).await?;
    Ok(done.rows_affected() == 1)
}

/// Persists progress (0–100, never backwards) and the phase label.
pub async fn progress(db: &Db, id: &str, owner: &str, pct: u8, phase: &str) -> Result<bool> {
    let update = sqlx::query(
        "UPDATE jobs SET progress = CASE WHEN progress > $1 THEN progress ELSE $1 END, \
         phase = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5",
    )
    .bind(i64::from(pct.min(100)))
    .bind(phase);
    touch_under_lease(db, update, id, owner).await
}

/// Persists the resume point (and optionally a partial result, e.g. a destination image id).
pub async fn checkpoint(
    db: &Db,
    id: &str,
    owner: &str,
    checkpoint: &serde_json::Value,
    result: Option<&serde_json::Value>,
) -> Result<bool> {
    let update = sqlx::query(
        "UPDATE jobs SET checkpoint = $1, result = COALESCE($2, result), updated_at = $3 \
         WHERE id = $4 AND lease_owner = $5",
    )
    .bind(checkpoint.to_string())
    .bind(result.map(|r| r.to_string()));
    touch_under_lease(db, update, id, owner).await
}

/// Moves a job this worker holds to `state`. Terminal states release the lease and stamp
/// `finished_at`; `queued` (a retry) sets `run_after`. Returns false if the lease was lost.
pub async fn transition(
    db: &Db,
    id: &str,
    owner: &str,
    state: JobState,
    error: Option<&str>,
    result: Option<&serde_json::Value>,
    run_after: Option<DateTime<Utc>>,
) -> Result<bool> {
    let t = db_time(now());
    let terminal = state.is_terminal();
    let update = sqlx::query(
        "UPDATE jobs SET state = $1, error = COALESCE($2, error), result = COALESCE($3, result), \
         run_after = COALESCE($4, run_after), updated_at = $5, \
         finished_at = CASE WHEN $6 = 1 THEN $5 ELSE finished_at END, \
         progress = CASE WHEN $7 = 1 THEN 100 ELSE progress END, \
         lease_owner = CASE WHEN $6 = 1 OR $1 = 'queued' THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN $6 = 1 OR $1 = 'queued' THEN NULL ELSE lease_until END \
         WHERE id = $8 AND lease_owner = $9",
    )
    .bind(state.as_str())
    .bind(error)
    .bind(result.map(|r| r.to_string()))
    .bind(run_after.map(db_time))
    .bind(&t)
    .bind(i64::from(terminal))
    .bind(i64::from(state == JobState::Succeeded));
    under_lease(db, update, id, owner).await
}

/// Deletes finished jobs (succeeded, failed, canceled) that ended before `before`, with their
/// idempotency keys; returns how many. Unfinished jobs are never touched.
pub async fn purge_finished(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'canceled') \
         AND finished_at IS NOT NULL AND finished_at < $1",
    )
    .bind(db_time(before))
    .execute(&db.pool)
    .await?
    .rows_affected())
}

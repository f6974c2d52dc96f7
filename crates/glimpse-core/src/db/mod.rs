//! The metadata database: one connection pool over SQLite or PostgreSQL through sqlx's `Any`
//! driver, so every query is written once. Conventions every query follows: `$1, $2, …`
//! placeholders in ascending order of first use (SQLite binds them by number), integers as
//! BIGINT read as `i64`, booleans as 0/1 BIGINT, timestamps as fixed-width UTC text
//! ([`glimpse_types::db_time`]), JSON as text.
//!
//! Migrations are embedded in the binary and run on open, per schema and backend.
//!
//! Shared by every repo: [`rows`] (reading timestamps, JSON, enums and booleans out of a row)
//! and [`guarded`] (the one guarded state change, `UPDATE … WHERE status IN (…)`); [`caps`] bounds
//! what a list query may turn into SQL.

pub mod caps;
pub mod guarded;
pub mod rows;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::migrate::Migrator;

static IDENTITY_SQLITE: Migrator = sqlx::migrate!("../../migrations/identity/sqlite");
static IDENTITY_POSTGRES: Migrator = sqlx::migrate!("../../migrations/identity/postgres");
static REGION_SQLITE: Migrator = sqlx::migrate!("../../migrations/region/sqlite");
static REGION_POSTGRES: Migrator = sqlx::migrate!("../../migrations/region/postgres");

/// Which schema a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Identity,
    Region,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated connection pool.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://path` — created if missing — or `postgres://…`) and runs
    /// the schema's migrations.
    pub async fn open(url: &str, schema: Schema) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("database URL {url:?} must start with sqlite: or postgres:");
        };
        let pool = match backend {
            Backend::Sqlite => {
                // WAL and a busy timeout let API requests and job workers share one file.
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                                 PRAGMA busy_timeout=30000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url_create(url))
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?
            }
        };
        let migrator = match (schema, backend) {
            (Schema::Identity, Backend::Sqlite) => &IDENTITY_SQLITE,
            (Schema::Identity, Backend::Postgres) => &IDENTITY_POSTGRES,
            (Schema::Region, Backend::Sqlite) => &REGION_SQLITE,
            (Schema::Region, Backend::Postgres) => &REGION_POSTGRES,
        };
        migrator.run(&pool).await?;
        Ok(Db { pool, backend })
    }
}

/// Adds `mode=rwc` so a new SQLite file is created on first start.
fn sqlite_url_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// `SELECT {columns} FROM {table}` ordered by `order`: the rows of one project (its
/// `project_id`), or of every project for `None`.
pub async fn by_project(
    db: &Db,
    columns: &str,
    table: &str,
    project: Option<&str>,
    order: &str,
) -> crate::Result<Vec<AnyRow>> {
    let filter = if project.is_some() {
        " WHERE project_id = $1"
    } else {
        ""
    };
    let sql = format!("SELECT {columns} FROM {table}{filter} ORDER BY {order}");
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let q = match project {
        Some(p) => q.bind(p.to_string()),
        None => q,
    };
    Ok(q.fetch_all(&db.pool).await?)
}

/// 0/1 for the BIGINT booleans.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// A write's outcome with a unique-constraint violation (a racing or repeated insert of the
/// same key) answered by `conflict()`, on either backend.
pub fn unique_or(
    r: std::result::Result<AnyQueryResult, sqlx::Error>,
    conflict: impl FnOnce() -> crate::Error,
) -> crate::Result<AnyQueryResult> {
    match r {
        Err(e) if is_unique_violation(&e) => Err(conflict()),
        r => Ok(r?),
    }
}

/// `SELECT {columns} FROM {table} WHERE {col} = $1`: the one row with that key, if any.
pub async fn row_where(
    db: &Db,
    columns: &str,
    table: &str,
    col: &str,
    value: &str,
) -> crate::Result<Option<AnyRow>> {
    let sql = format!("SELECT {columns} FROM {table} WHERE {col} = $1");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value.to_string())
        .fetch_optional(&db.pool)
        .await?)
}

/// Deletes the row `id` of `table` and, in the same transaction, the rows of each
/// `(table, column)` of `dependents` that name it. `Ok(false)` (nothing deleted) when `table`
/// had no such row.
pub async fn delete_cascade(
    db: &Db,
    table: &str,
    id: &str,
    dependents: &[(&str, &str)],
) -> crate::Result<bool> {
    let mut tx = db.pool.begin().await?;
    let gone = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE id = $1"
    )))
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if gone == 0 {
        return Ok(false);
    }
    for (dependent, column) in dependents {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {dependent} WHERE {column} = $1"
        )))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// True when a database error is a unique-constraint violation (a racing duplicate insert),
/// on either backend.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

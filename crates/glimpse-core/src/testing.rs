//! Shared helpers of the unit tests: a temporary directory removed on drop, a fresh region
//! database (SQLite in that directory, or a new PostgreSQL database when
//! `GLIMPSE_TEST_POSTGRES_URL` names a server, so the same tests run on both), and a token
//! validator that accepts nothing, and a region opened as the process opens it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::auth::{Caller, TokenValidator};
use crate::config::RegionConfig;
use crate::db::{Db, Schema};
use crate::error::{Error, Result};
use crate::region::Region;

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("glimpse-{prefix}-{}", glimpse_types::hex_id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The URL of a fresh, empty region database (see the module documentation).
pub async fn region_db_url(dir: &Path, prefix: &str) -> String {
    match std::env::var("GLIMPSE_TEST_POSTGRES_URL") {
        Ok(base) => {
            use sqlx::{Connection, Executor};
            sqlx::any::install_default_drivers();
            let base = base.trim_end_matches('/');
            let name = format!("{prefix}_{}", glimpse_types::hex_id());
            let mut c = sqlx::AnyConnection::connect(&format!("{base}/postgres"))
                .await
                .unwrap();
            c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            format!("{base}/{name}")
        }
        Err(_) => format!("sqlite://{}", dir.join("region.db").display()),
    }
}

/// A fresh region database, migrated.
pub async fn region_db(dir: &Path, prefix: &str) -> Db {
    Db::open(&region_db_url(dir, prefix).await, Schema::Region)
        .await
        .unwrap()
}

/// Opens a region as the process does ([`Region::open`], then [`crate::cloud::recover`]),
/// with no tokens and no service account.
pub async fn open_region(config: &RegionConfig) -> Region {
    let region = Region::open(
        config,
        std::sync::Arc::new(NoTokens),
        std::sync::Arc::new(crate::service::ServiceAccount::none()),
    )
    .await
    .unwrap();
    crate::cloud::recover(&region).await.unwrap();
    region
}

/// A token validator for tests that never present a token.
pub struct NoTokens;

#[async_trait]
impl TokenValidator for NoTokens {
    async fn validate(&self, _: &str) -> Result<Caller> {
        Err(Error::unauthorized("no tokens in these tests"))
    }
}

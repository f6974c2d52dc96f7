//! Region records (`openstack region …`). The catalog is derived from the configured regions,
//! not from these rows; bootstrap keeps one row per configured region, and configured regions
//! cannot be deleted. Other rows are plain records (parent links are checked).
//!
//! Crash behaviour: each call is one statement.

use super::Identity;
use super::model::{RegionRecord, region_from_row};
use super::table::Table;
use crate::db::{delete_cascade, unique_or};
use crate::error::{Error, Result};

const REGIONS: Table<RegionRecord> = Table::new(
    "region",
    "regions",
    "id, description, parent_region_id",
    region_from_row,
);

fn check_region_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 255 || id.contains('/') {
        return Err(Error::bad_request(
            "Invalid input for field 'id': 1 to 255 characters, no '/'.",
        ));
    }
    Ok(())
}

impl Identity {
    /// Creates a region; with no id a random one is chosen.
    pub async fn create_region(
        &self,
        id: Option<String>,
        description: Option<String>,
        parent_region_id: Option<String>,
    ) -> Result<RegionRecord> {
        let id = id.unwrap_or_else(glimpse_types::hex_id);
        check_region_id(&id)?;
        if let Some(p) = &parent_region_id
            && self.get_region(p).await.is_err()
        {
            return Err(Error::bad_request(format!(
                "Invalid parent_region_id: could not find region: {p}."
            )));
        }
        let region = RegionRecord {
            id,
            description: description.unwrap_or_default(),
            parent_region_id,
        };
        let r = sqlx::query(
            "INSERT INTO regions (id, description, parent_region_id) VALUES ($1, $2, $3)",
        )
        .bind(&region.id)
        .bind(&region.description)
        .bind(region.parent_region_id.clone())
        .execute(&self.db.pool)
        .await;
        unique_or(r, || {
            Error::conflict(format!(
                "Conflict occurred attempting to store region - Duplicate ID, {}.",
                region.id
            ))
        })?;
        Ok(region)
    }

    pub async fn get_region(&self, id: &str) -> Result<RegionRecord> {
        REGIONS.get(&self.db, id).await
    }

    pub async fn list_regions(&self, parent_region_id: Option<&str>) -> Result<Vec<RegionRecord>> {
        let rows = match parent_region_id {
            Some(p) => {
                sqlx::query(
                    "SELECT id, description, parent_region_id FROM regions \
                     WHERE parent_region_id = $1 ORDER BY id",
                )
                .bind(p)
                .fetch_all(&self.db.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT id, description, parent_region_id FROM regions ORDER BY id")
                    .fetch_all(&self.db.pool)
                    .await?
            }
        };
        rows.iter().map(region_from_row).collect()
    }

    /// Updates the description and/or parent (`Some(None)` clears the parent).
    pub async fn update_region(
        &self,
        id: &str,
        description: Option<String>,
        parent_region_id: Option<Option<String>>,
    ) -> Result<RegionRecord> {
        let mut r = self.get_region(id).await?;
        if let Some(d) = description {
            r.description = d;
        }
        if let Some(p) = parent_region_id {
            if let Some(pid) = &p
                && (pid == id || self.get_region(pid).await.is_err())
            {
                return Err(Error::bad_request(format!(
                    "Invalid parent_region_id: {pid}."
                )));
            }
            r.parent_region_id = p;
        }
        sqlx::query("UPDATE regions SET description = $1, parent_region_id = $2 WHERE id = $3")
            .bind(&r.description)
            .bind(r.parent_region_id.clone())
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(r)
    }

    pub async fn delete_region(&self, id: &str) -> Result<()> {
        self.get_region(id).await?;
        if self.settings.regions.iter().any(|r| r.name == id) {
            return Err(Error::conflict(format!(
                "Region {id} is configured and in the catalog; remove it from the \
                 configuration instead."
            )));
        }
        if !self.list_regions(Some(id)).await?.is_empty() {
            return Err(Error::conflict(format!(
                "Region {id} has child regions and cannot be deleted."
            )));
        }
        delete_cascade(&self.db, "regions", id, &[]).await?;
        Ok(())
    }

    /// Inserts the region row if it is missing (bootstrap; safe to race).
    pub(crate) async fn ensure_region(&self, id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO regions (id, description, parent_region_id) VALUES ($1, $2, NULL) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind("")
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

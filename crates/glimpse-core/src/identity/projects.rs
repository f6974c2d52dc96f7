//! Projects: create, read, list, update, delete. Every project has a home region, one of the
//! configured regions (its images and servers live there). Disabling a project revokes its
//! tokens; deleting one removes its role assignments and tokens in one transaction.
//!
//! Crash behaviour: each call is one statement or one transaction, so a crash leaves either
//! the old or the new state.

use crate::db::{delete_cascade, unique_or};
use sqlx::Row;

use super::Identity;
use super::model::{
    DEFAULT_DOMAIN_ID, ListFilter, PROJECT_COLUMNS, Project, ProjectFields, check_name,
    project_from_row,
};
use super::table::Table;
use crate::db::flag;
use crate::error::{Error, Result};

const PROJECTS: Table<Project> =
    Table::new("project", "projects", PROJECT_COLUMNS, project_from_row);

/// Only the Default domain exists.
pub(crate) fn check_domain(domain_id: &str) -> Result<()> {
    if domain_id == DEFAULT_DOMAIN_ID {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Could not find domain: {domain_id}."
        )))
    }
}

impl Identity {
    fn check_home_region(&self, region: &str) -> Result<()> {
        if self.settings.regions.iter().any(|r| r.name == region) {
            return Ok(());
        }
        let known: Vec<&str> = self
            .settings
            .regions
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        Err(Error::bad_request(format!(
            "Invalid home_region {region:?}: it must be one of the configured regions ({}).",
            known.join(", ")
        )))
    }

    /// The first configured region: the home of projects created without one.
    pub fn default_region(&self) -> Option<&str> {
        self.settings.regions.first().map(|r| r.name.as_str())
    }

    pub async fn create_project(&self, domain_id: &str, f: ProjectFields) -> Result<Project> {
        check_domain(domain_id)?;
        let name = f
            .name
            .ok_or_else(|| Error::bad_request("Invalid input: 'name' is a required property."))?;
        check_name("project", &name, 64)?;
        let home = match f.home_region {
            Some(r) => r,
            None => self
                .default_region()
                .ok_or_else(|| Error::bad_request("No region is configured."))?
                .to_string(),
        };
        self.check_home_region(&home)?;
        if self.find_project_by_name(&name).await?.is_some() {
            return Err(PROJECTS.duplicate(&name));
        }
        let project = Project {
            id: glimpse_types::hex_id(),
            name,
            domain_id: domain_id.to_string(),
            description: f.description.unwrap_or_default(),
            enabled: f.enabled.unwrap_or(true),
            home_region: home,
            extra: f.extra,
        };
        let r = sqlx::query(
            "INSERT INTO projects (id, name, domain_id, description, enabled, home_region, \
             extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&project.id)
        .bind(&project.name)
        .bind(&project.domain_id)
        .bind(&project.description)
        .bind(flag(project.enabled))
        .bind(&project.home_region)
        .bind(serde_json::Value::Object(project.extra.clone()).to_string())
        .bind(glimpse_types::db_time(glimpse_types::now()))
        .execute(&self.db.pool)
        .await;
        unique_or(r, || PROJECTS.duplicate(&project.name))?;
        Ok(project)
    }

    pub async fn get_project(&self, id: &str) -> Result<Project> {
        PROJECTS.get(&self.db, id).await
    }

    /// A project of the Default domain by name.
    pub async fn find_project_by_name(&self, name: &str) -> Result<Option<Project>> {
        PROJECTS.find_by_name(&self.db, name).await
    }

    pub async fn list_projects(&self, filter: &ListFilter) -> Result<Vec<Project>> {
        PROJECTS.list(&self.db, filter).await
    }

    /// Projects on which the user has at least one role.
    pub async fn user_projects(&self, user_id: &str) -> Result<Vec<Project>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id IN \
             (SELECT project_id FROM role_assignments WHERE user_id = $1) ORDER BY name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(project_from_row).collect()
    }

    pub async fn update_project(&self, id: &str, f: ProjectFields) -> Result<Project> {
        let mut p = self.get_project(id).await?;
        if let Some(name) = f.name {
            check_name("project", &name, 64)?;
            if name != p.name && self.find_project_by_name(&name).await?.is_some() {
                return Err(PROJECTS.duplicate(&name));
            }
            p.name = name;
        }
        if let Some(region) = f.home_region {
            self.check_home_region(&region)?;
            p.home_region = region;
        }
        if let Some(d) = f.description {
            p.description = d;
        }
        let disabling = p.enabled && f.enabled == Some(false);
        if let Some(e) = f.enabled {
            p.enabled = e;
        }
        for (k, v) in f.extra {
            if v.is_null() {
                p.extra.remove(&k);
            } else {
                p.extra.insert(k, v);
            }
        }
        let r = sqlx::query(
            "UPDATE projects SET name = $1, description = $2, enabled = $3, home_region = $4, \
             extra = $5 WHERE id = $6",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(flag(p.enabled))
        .bind(&p.home_region)
        .bind(serde_json::Value::Object(p.extra.clone()).to_string())
        .bind(&p.id)
        .execute(&self.db.pool)
        .await;
        unique_or(r, || PROJECTS.duplicate(&p.name))?;
        if disabling {
            self.revoke_project_tokens(&p.id).await?;
        }
        self.cache.bump();
        Ok(p)
    }

    pub async fn delete_project(&self, id: &str) -> Result<()> {
        let dependents = [("role_assignments", "project_id"), ("tokens", "project_id")];
        if !delete_cascade(&self.db, "projects", id, &dependents).await? {
            return Err(PROJECTS.not_found(id));
        }
        self.cache.bump();
        Ok(())
    }

    /// Number of projects (used by bootstrap and tests).
    pub async fn project_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM projects")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

//! Roles and role assignments. The built-in roles admin, member and reader (admin ⇒ member ⇒
//! reader) cannot be deleted, since every policy depends on them; other roles may be created
//! and granted but imply nothing. Assignments are (user, project, role) triples; removing one
//! takes effect on the user's tokens at once.
//!
//! Crash behaviour: each call is one statement or one transaction.

use glimpse_types::Role;
use sqlx::Row;

use super::Identity;
use super::model::{Assignment, RoleRecord, check_name, role_from_row};
use super::table::Table;
use crate::db::{delete_cascade, is_unique_violation, row_where, unique_or};
use crate::error::{Error, Result};

const ROLE_COLUMNS: &str = "id, name, description";

const ROLES: Table<RoleRecord> = Table::new("role", "roles", ROLE_COLUMNS, role_from_row);

fn duplicate(name: &str) -> Error {
    Error::conflict(format!(
        "Conflict occurred attempting to store role - Duplicate entry found with name {name}."
    ))
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub role_id: Option<String>,
}

impl Identity {
    pub async fn create_role(&self, name: &str, description: Option<String>) -> Result<RoleRecord> {
        check_name("role", name, 255)?;
        if self.find_role_by_name(name).await?.is_some() {
            return Err(duplicate(name));
        }
        let role = RoleRecord {
            id: glimpse_types::hex_id(),
            name: name.to_string(),
            description,
        };
        let r = sqlx::query("INSERT INTO roles (id, name, description) VALUES ($1, $2, $3)")
            .bind(&role.id)
            .bind(&role.name)
            .bind(role.description.clone())
            .execute(&self.db.pool)
            .await;
        unique_or(r, || duplicate(name))?;
        Ok(role)
    }

    /// Inserts the role `name` if it is missing (bootstrap; safe to race).
    pub(super) async fn ensure_role(&self, name: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO roles (id, name, description) VALUES ($1, $2, NULL) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(glimpse_types::hex_id())
        .bind(name)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn get_role(&self, id: &str) -> Result<RoleRecord> {
        ROLES.get(&self.db, id).await
    }

    pub async fn find_role_by_name(&self, name: &str) -> Result<Option<RoleRecord>> {
        let row = row_where(&self.db, ROLE_COLUMNS, "roles", "name", name).await?;
        row.as_ref().map(role_from_row).transpose()
    }

    pub async fn list_roles(&self, name: Option<&str>) -> Result<Vec<RoleRecord>> {
        let rows = match name {
            Some(n) => {
                sqlx::query("SELECT id, name, description FROM roles WHERE name = $1")
                    .bind(n)
                    .fetch_all(&self.db.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT id, name, description FROM roles ORDER BY name")
                    .fetch_all(&self.db.pool)
                    .await?
            }
        };
        rows.iter().map(role_from_row).collect()
    }

    pub async fn delete_role(&self, id: &str) -> Result<()> {
        let role = self.get_role(id).await?;
        if Role::parse(&role.name).is_some() {
            return Err(Error::forbidden(format!(
                "The built-in role {} cannot be deleted.",
                role.name
            )));
        }
        delete_cascade(&self.db, "roles", id, &[("role_assignments", "role_id")]).await?;
        self.cache.bump();
        Ok(())
    }

    /// Grants `role_id` to the user on the project (idempotent); 404 if any of them is unknown.
    pub async fn assign_role(&self, user_id: &str, project_id: &str, role_id: &str) -> Result<()> {
        self.get_project(project_id).await?;
        self.get_user(user_id).await?;
        self.get_role(role_id).await?;
        if self.has_assignment(user_id, project_id, role_id).await? {
            return Ok(());
        }
        let r = sqlx::query(
            "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(project_id)
        .bind(role_id)
        .execute(&self.db.pool)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.cache.bump();
        Ok(())
    }

    pub async fn has_assignment(
        &self,
        user_id: &str,
        project_id: &str,
        role_id: &str,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM role_assignments \
             WHERE user_id = $1 AND project_id = $2 AND role_id = $3",
        )
        .bind(user_id)
        .bind(project_id)
        .bind(role_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Checks a grant (`HEAD/GET …/roles/{r}`): 404 naming what is missing.
    pub async fn check_assignment(
        &self,
        user_id: &str,
        project_id: &str,
        role_id: &str,
    ) -> Result<()> {
        self.get_project(project_id).await?;
        self.get_user(user_id).await?;
        self.get_role(role_id).await?;
        if self.has_assignment(user_id, project_id, role_id).await? {
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "Could not find role assignment with role: {role_id}, user or group: \
                 {user_id}, project, domain, or system: {project_id}."
            )))
        }
    }

    pub async fn unassign_role(
        &self,
        user_id: &str,
        project_id: &str,
        role_id: &str,
    ) -> Result<()> {
        self.check_assignment(user_id, project_id, role_id).await?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role_id = $3",
        )
        .bind(user_id)
        .bind(project_id)
        .bind(role_id)
        .execute(&self.db.pool)
        .await?;
        self.cache.bump();
        Ok(())
    }

    /// Roles granted directly to the user on the project.
    pub async fn project_user_roles(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> Result<Vec<RoleRecord>> {
        self.get_project(project_id).await?;
        self.get_user(user_id).await?;
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.description FROM role_assignments a \
             JOIN roles r ON r.id = a.role_id \
             WHERE a.user_id = $1 AND a.project_id = $2 ORDER BY r.name",
        )
        .bind(user_id)
        .bind(project_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(role_from_row).collect()
    }

    pub async fn list_assignments(&self, f: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        for (col, v) in [
            ("user_id", &f.user_id),
            ("project_id", &f.project_id),
            ("role_id", &f.role_id),
        ] {
            if let Some(v) = v {
                args.push(v.clone());
                clauses.push(format!("{col} = ${}", args.len()));
            }
        }
        let clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT user_id, project_id, role_id FROM role_assignments {clause} \
             ORDER BY user_id, project_id, role_id"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Assignment {
                    user_id: r.try_get("user_id")?,
                    project_id: r.try_get("project_id")?,
                    role_id: r.try_get("role_id")?,
                })
            })
            .collect()
    }
}

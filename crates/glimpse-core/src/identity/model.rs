//! The identity records (projects, users, roles, regions, assignments) as the rest of the code
//! sees them, and how they are read from database rows. Pure data: no I/O here, so nothing to
//! recover on a crash.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};

/// The one domain Glimpse knows (Keystone's `default` domain).
pub const DEFAULT_DOMAIN_ID: &str = "default";
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// A reference to the domain in a request: `{"id": "default"}` or `{"name": "Default"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

impl DomainRef {
    /// True when it names the Default domain.
    pub fn is_default(&self) -> bool {
        match self {
            DomainRef::Id(id) => id == DEFAULT_DOMAIN_ID,
            DomainRef::Name(n) => n == DEFAULT_DOMAIN_NAME,
        }
    }
}

/// A project (Keystone tenant) with the region its resources live in.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
    pub home_region: String,
    /// Extra attributes the client sent (Keystone stores and echoes them).
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub description: String,
    pub email: Option<String>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRecord {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
}

/// One (user, project, role) grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub user_id: String,
    pub project_id: String,
    pub role_id: String,
}

/// Fields a create or update may set; `None` leaves a field as it is (or at its default).
#[derive(Debug, Clone, Default)]
pub struct ProjectFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub home_region: Option<String>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFields {
    pub name: Option<String>,
    pub password: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears it.
    pub default_project_id: Option<Option<String>>,
    pub description: Option<String>,
    pub email: Option<Option<String>>,
    pub extra: Map<String, Value>,
}

/// Filters of the list calls (`?name=&enabled=&domain_id=`).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub domain_id: Option<String>,
}

/// A value bound to a filter's placeholder.
pub(crate) enum FilterArg {
    Text(String),
    Int(i64),
}

impl ListFilter {
    /// `WHERE …` (or nothing) with `$1…` placeholders, and the values to bind in order.
    pub(crate) fn sql(&self) -> (String, Vec<FilterArg>) {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        if let Some(n) = &self.name {
            args.push(FilterArg::Text(n.clone()));
            clauses.push(format!("name = ${}", args.len()));
        }
        if let Some(e) = self.enabled {
            args.push(FilterArg::Int(crate::db::flag(e)));
            clauses.push(format!("enabled = ${}", args.len()));
        }
        if let Some(d) = &self.domain_id {
            args.push(FilterArg::Text(d.clone()));
            clauses.push(format!("domain_id = ${}", args.len()));
        }
        if clauses.is_empty() {
            (String::new(), args)
        } else {
            (format!("WHERE {}", clauses.join(" AND ")), args)
        }
    }
}

/// Binds filter values to a query in order.
pub(crate) fn bind_filter<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: Vec<FilterArg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            FilterArg::Text(s) => q.bind(s),
            FilterArg::Int(i) => q.bind(i),
        };
    }
    q
}

fn extra_of(row: &AnyRow) -> Result<Map<String, Value>> {
    let text: String = row.try_get("extra")?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Error::internal(format!("corrupt extra attributes: {e}"))),
    }
}

pub(crate) const PROJECT_COLUMNS: &str =
    "id, name, domain_id, description, enabled, home_region, extra";

pub(crate) fn project_from_row(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        domain_id: row.try_get("domain_id")?,
        description: row.try_get("description")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        home_region: row.try_get("home_region")?,
        extra: extra_of(row)?,
    })
}

pub(crate) const USER_COLUMNS: &str =
    "id, name, domain_id, enabled, default_project_id, description, email, extra";

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        domain_id: row.try_get("domain_id")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        default_project_id: row.try_get("default_project_id")?,
        description: row.try_get("description")?,
        email: row.try_get("email")?,
        extra: extra_of(row)?,
    })
}

pub(crate) fn role_from_row(row: &AnyRow) -> Result<RoleRecord> {
    Ok(RoleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
    })
}

pub(crate) fn region_from_row(row: &AnyRow) -> Result<RegionRecord> {
    Ok(RegionRecord {
        id: row.try_get("id")?,
        description: row.try_get("description")?,
        parent_region_id: row.try_get("parent_region_id")?,
    })
}

/// Checks a resource name the way Keystone does: 1 to `max` characters, not blank.
pub(crate) fn check_name(kind: &str, name: &str, max: usize) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::bad_request(format!(
            "Invalid input for field 'name': a {kind} name must not be empty."
        )));
    }
    if name.chars().count() > max {
        return Err(Error::bad_request(format!(
            "Invalid input for field 'name': a {kind} name is at most {max} characters."
        )));
    }
    Ok(())
}

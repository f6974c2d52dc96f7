//! Resource types and their associations with namespaces. The catalogue is seeded by the
//! migration with Glance's common types (protected) and grows when an association names an
//! unknown type, as Glance does. Any reader lists it; associations follow their namespace's
//! visibility, are created and removed by admins only, and cannot be removed from a protected
//! namespace.
//!
//! Crash behaviour: an association and the type it may create are one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use glimpse_types::db_time;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::input::AssociationInput;
use super::{Namespace, admin_only, group, load_visible};
use crate::auth::Caller;
use crate::db::Db;
use crate::db::is_unique_violation;
use crate::db::rows::time;
use crate::error::{Error, Result};
use crate::images::policy::denied;
use crate::region::Region;

/// A resource type of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A resource type associated with a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "namespace_id, resource_type, prefix, properties_target, created_at, \
                       updated_at";

fn association_from_row(row: &AnyRow) -> Result<Association> {
    Ok(Association {
        name: row.try_get("resource_type")?,
        prefix: row.try_get("prefix")?,
        properties_target: row.try_get("properties_target")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// The whole catalogue (any reader: `list_metadef_resource_types`).
pub async fn list(region: &Region, caller: &Caller) -> Result<Vec<ResourceType>> {
    caller.project()?;
    if !caller.is_admin() && !caller.is_reader() {
        return Err(denied("list_metadef_resource_types"));
    }
    let rows = sqlx::query(
        "SELECT name, created_at, updated_at FROM metadef_resource_types \
         ORDER BY created_at, name",
    )
    .fetch_all(&region.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ResourceType {
                name: r.try_get("name")?,
                created_at: time(r, "created_at")?,
                updated_at: time(r, "updated_at")?,
            })
        })
        .collect()
}

/// Every association, by namespace id.
pub(super) async fn all_associations(db: &Db) -> Result<HashMap<String, Vec<Association>>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM metadef_resource_type_associations \
         ORDER BY created_at, resource_type"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("namespace_id")?,
                association_from_row(r)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(group(rows))
}

/// The associations of one namespace.
pub(super) async fn associations_of(db: &Db, ns_id: &str) -> Result<Vec<Association>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM metadef_resource_type_associations WHERE namespace_id = $1 \
         ORDER BY created_at, resource_type"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ns_id.to_string())
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(association_from_row).collect()
}

/// Inserts an association in a transaction, adding the resource type to the catalogue when it
/// is new (409 when the namespace already has it).
pub(super) async fn insert_association(
    tx: &mut Transaction<'_, Any>,
    ns: &Namespace,
    a: &AssociationInput,
    now: DateTime<Utc>,
) -> Result<Association> {
    sqlx::query(
        "INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) \
         VALUES ($1, 0, $2, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(a.name.clone())
    .bind(db_time(now))
    .execute(&mut **tx)
    .await?;
    let r = sqlx::query(
        "INSERT INTO metadef_resource_type_associations (namespace_id, resource_type, prefix, \
         properties_target, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(ns.id.clone())
    .bind(a.name.clone())
    .bind(a.prefix.clone())
    .bind(a.properties_target.clone())
    .bind(db_time(now))
    .execute(&mut **tx)
    .await;
    match r {
        Err(e) if is_unique_violation(&e) => Err(Error::conflict(format!(
            "The metadata definition resource-type association of resource-type={} to \
             namespace={} already exists.",
            a.name, ns.namespace
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(Association {
            name: a.name.clone(),
            prefix: a.prefix.clone(),
            properties_target: a.properties_target.clone(),
            created_at: now,
            updated_at: now,
        }),
    }
}

/// The associations of a visible namespace.
pub async fn associations(region: &Region, caller: &Caller, ns: &str) -> Result<Vec<Association>> {
    let ns = load_visible(region, caller, ns).await?;
    associations_of(&region.db, &ns.id).await
}

/// Associates a resource type with a namespace (admin only).
pub async fn associate(
    region: &Region,
    caller: &Caller,
    ns: &str,
    a: &AssociationInput,
) -> Result<Association> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, "add_metadef_resource_type_association")?;
    let mut tx = region.db.pool.begin().await?;
    let out = insert_association(&mut tx, &ns, a, glimpse_types::now()).await?;
    tx.commit().await?;
    Ok(out)
}

/// Removes an association (admin only; 404 if absent; 403 in a protected namespace).
pub async fn dissociate(
    region: &Region,
    caller: &Caller,
    ns: &str,
    resource_type: &str,
) -> Result<()> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, "remove_metadef_resource_type_association")?;
    let missing = || {
        Error::not_found(format!(
            "Failed to find resource type {resource_type} to delete"
        ))
    };
    if !associations_of(&region.db, &ns.id)
        .await?
        .iter()
        .any(|a| a.name == resource_type)
    {
        return Err(missing());
    }
    if ns.protected {
        return Err(Error::forbidden(format!(
            "Metadata definition resource-type-association {resource_type} is protected and \
             cannot be deleted."
        )));
    }
    let done = sqlx::query(
        "DELETE FROM metadef_resource_type_associations \
         WHERE namespace_id = $1 AND resource_type = $2",
    )
    .bind(ns.id.clone())
    .bind(resource_type.to_string())
    .execute(&region.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(missing());
    }
    Ok(())
}

/// The stored name of a property asked for as `name` under `?resource_type=`: the name without
/// the prefix of that resource type's association (404 unless the association exists and
/// `name` starts with its prefix), as Glance's property show does.
pub async fn unprefixed(
    region: &Region,
    caller: &Caller,
    ns: &str,
    name: &str,
    resource_type: &str,
) -> Result<String> {
    let ns = load_visible(region, caller, ns).await?;
    let assoc = associations_of(&region.db, &ns.id).await?;
    let Some(a) = assoc.iter().find(|a| a.name == resource_type) else {
        return Err(Error::not_found(format!(
            "The metadata definition resource-type association of resource-type={resource_type} \
             to namespace={}, was not found.",
            ns.namespace
        )));
    };
    match a.prefix.as_deref() {
        Some(p) if !p.is_empty() && name.starts_with(p) => Ok(name[p.len()..].to_string()),
        p => Err(Error::not_found(format!(
            "Property {name} does not start with the expected resource type association prefix \
             of '{}'.",
            p.unwrap_or("None")
        ))),
    }
}

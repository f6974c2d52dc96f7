//! Objects, properties and tags of a namespace: one row each in `metadef_items`, keyed by
//! (namespace, kind, name), with the item's document as JSON text. Reads follow the
//! namespace's visibility; writes are admin only; nothing in a protected namespace can be
//! deleted. Names are unique per namespace and kind (409), and renames keep the row.
//!
//! Crash behaviour: single statements, except the bulk tag replacement, which is one
//! transaction.

use crate::db::unique_or;
use std::collections::HashMap;

use glimpse_types::db_time;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Item, Namespace, SortKey, admin_only, group, load_visible};
use crate::auth::Caller;
use crate::db::Db;
use crate::db::rows::time;
use crate::error::{Error, Result};
use crate::region::Region;

/// What a row of `metadef_items` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Object,
    Property,
    Tag,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Object => "object",
            ItemKind::Property => "property",
            ItemKind::Tag => "tag",
        }
    }

    /// Glance's policy rules for (add, modify, delete).
    fn rules(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ItemKind::Object => (
                "add_metadef_object",
                "modify_metadef_object",
                "delete_metadef_object",
            ),
            ItemKind::Property => (
                "add_metadef_property",
                "modify_metadef_property",
                "remove_metadef_property",
            ),
            ItemKind::Tag => (
                "add_metadef_tag",
                "modify_metadef_tag",
                "delete_metadef_tag",
            ),
        }
    }

    pub fn not_found(self, name: &str, ns: &str) -> Error {
        Error::not_found(format!(
            "The metadata definition {} with name={name} was not found in namespace={ns}.",
            self.as_str()
        ))
    }

    pub fn duplicate(self, name: &str, ns: &str) -> Error {
        Error::conflict(match self {
            ItemKind::Tag => format!(
                "A metadata tag with name={name} already exists in namespace={ns}. (Please note \
                 that metadata tag names are case insensitive)."
            ),
            k => format!(
                "A metadata definition {} with name={name} already exists in namespace={ns}.",
                k.as_str()
            ),
        })
    }

    fn protected(self, name: &str) -> Error {
        Error::forbidden(format!(
            "Metadata definition {} {name} is protected and cannot be deleted.",
            self.as_str()
        ))
    }
}

/// List parameters of objects and tags (`limit`, `marker`, `sort_key`, `sort_dir`).
#[derive(Debug, Clone)]
pub struct ItemQuery {
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub sort_key: SortKey,
    pub desc: bool,
}

impl Default for ItemQuery {
    fn default() -> Self {
        ItemQuery {
            limit: None,
            marker: None,
            sort_key: SortKey::CreatedAt,
            desc: true,
        }
    }
}

fn item_from_row(row: &AnyRow) -> Result<Item> {
    let doc: String = row.try_get("doc")?;
    let doc = match serde_json::from_str(&doc) {
        Ok(Value::Object(m)) => m,
        _ => return Err(Error::internal(format!("bad metadef document {doc:?}"))),
    };
    Ok(Item {
        name: row.try_get("name")?,
        doc,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// Inserts an item in a transaction (409 when the name is taken).
pub(super) async fn insert(
    tx: &mut Transaction<'_, Any>,
    ns: &Namespace,
    kind: ItemKind,
    item: &Item,
) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO metadef_items (namespace_id, kind, name, doc, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ns.id.clone())
    .bind(kind.as_str())
    .bind(item.name.clone())
    .bind(Value::Object(item.doc.clone()).to_string())
    .bind(db_time(item.created_at))
    .bind(db_time(item.updated_at))
    .execute(&mut **tx)
    .await;
    unique_or(r, || kind.duplicate(&item.name, &ns.namespace))?;
    Ok(())
}

/// Every item of a namespace by kind (`"object"`, …), oldest first.
pub(super) async fn all_of(db: &Db, ns_id: &str) -> Result<HashMap<String, Vec<Item>>> {
    let rows = sqlx::query(
        "SELECT kind, name, doc, created_at, updated_at FROM metadef_items \
         WHERE namespace_id = $1 ORDER BY created_at, name",
    )
    .bind(ns_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    let rows = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>("kind")?, item_from_row(r)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(group(rows))
}

async fn fetch(db: &Db, ns: &Namespace, kind: ItemKind, name: &str) -> Result<Item> {
    let row = sqlx::query(
        "SELECT name, doc, created_at, updated_at FROM metadef_items \
         WHERE namespace_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(ns.id.clone())
    .bind(kind.as_str())
    .bind(name.to_string())
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(r) => item_from_row(&r),
        None => Err(kind.not_found(name, &ns.namespace)),
    }
}

/// The items of one kind in a visible namespace, sorted and paged.
pub async fn list(
    region: &Region,
    caller: &Caller,
    ns: &str,
    kind: ItemKind,
    q: &ItemQuery,
) -> Result<Vec<Item>> {
    let ns = load_visible(region, caller, ns).await?;
    let mut all = all_of(&region.db, &ns.id)
        .await?
        .remove(kind.as_str())
        .unwrap_or_default();
    all.sort_by(|a, b| {
        let ord = match q.sort_key {
            SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
            _ => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.name.cmp(&b.name));
        if q.desc { ord.reverse() } else { ord }
    });
    let start = match &q.marker {
        None => 0,
        Some(m) => {
            all.iter()
                .position(|i| &i.name == m)
                .ok_or_else(|| kind.not_found(m, &ns.namespace))?
                + 1
        }
    };
    Ok(all
        .into_iter()
        .skip(start)
        .take(q.limit.unwrap_or(usize::MAX))
        .collect())
}

/// One item of a visible namespace.
pub async fn get(
    region: &Region,
    caller: &Caller,
    ns: &str,
    kind: ItemKind,
    name: &str,
) -> Result<Item> {
    let ns = load_visible(region, caller, ns).await?;
    fetch(&region.db, &ns, kind, name).await
}

/// Adds an item (admin only; 409 when the name is taken).
pub async fn create(
    region: &Region,
    caller: &Caller,
    ns: &str,
    kind: ItemKind,
    name: &str,
    doc: Map<String, Value>,
) -> Result<Item> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, kind.rules().0)?;
    let now = glimpse_types::now();
    let item = Item {
        name: name.to_string(),
        doc,
        created_at: now,
        updated_at: now,
    };
    let mut tx = region.db.pool.begin().await?;
    insert(&mut tx, &ns, kind, &item).await?;
    tx.commit().await?;
    Ok(item)
}

/// Replaces an item's name and document (admin only; 404 if absent, 409 on a taken name).
pub async fn update(
    region: &Region,
    caller: &Caller,
    ns: &str,
    kind: ItemKind,
    name: &str,
    new_name: &str,
    doc: Map<String, Value>,
) -> Result<Item> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, kind.rules().1)?;
    let old = fetch(&region.db, &ns, kind, name).await?;
    let item = Item {
        name: new_name.to_string(),
        doc,
        created_at: old.created_at,
        updated_at: glimpse_types::now(),
    };
    let r = sqlx::query(
        "UPDATE metadef_items SET name = $1, doc = $2, updated_at = $3 \
         WHERE namespace_id = $4 AND kind = $5 AND name = $6",
    )
    .bind(item.name.clone())
    .bind(Value::Object(item.doc.clone()).to_string())
    .bind(db_time(item.updated_at))
    .bind(ns.id.clone())
    .bind(kind.as_str())
    .bind(name.to_string())
    .execute(&region.db.pool)
    .await;
    if unique_or(r, || kind.duplicate(new_name, &ns.namespace))?.rows_affected() == 0 {
        return Err(kind.not_found(name, &ns.namespace));
    }
    Ok(item)
}

/// Removes an item (admin only; 404 if absent; 403 in a protected namespace).
pub async fn delete(
    region: &Region,
    caller: &Caller,
    ns: &str,
    kind: ItemKind,
    name: &str,
) -> Result<()> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, kind.rules().2)?;
    fetch(&region.db, &ns, kind, name).await?;
    if ns.protected {
        return Err(kind.protected(name));
    }
    let done = sqlx::query(
        "DELETE FROM metadef_items WHERE namespace_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(ns.id.clone())
    .bind(kind.as_str())
    .bind(name.to_string())
    .execute(&region.db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(kind.not_found(name, &ns.namespace));
    }
    Ok(())
}

/// `POST .../tags`: creates the tags, replacing all existing ones unless `append`
/// (`X-Openstack-Append: true`). All or nothing: a duplicate name is 409 and changes nothing.
pub async fn create_tags(
    region: &Region,
    caller: &Caller,
    ns: &str,
    names: &[String],
    append: bool,
) -> Result<Vec<Item>> {
    let ns = load_visible(region, caller, ns).await?;
    admin_only(caller, "add_metadef_tags")?;
    let now = glimpse_types::now();
    let mut out = Vec::with_capacity(names.len());
    if names.is_empty() {
        return Ok(out);
    }
    let mut tx = region.db.pool.begin().await?;
    if !append {
        delete_kind(&mut *tx, &ns.id, ItemKind::Tag).await?;
    }
    for name in names {
        let item = Item {
            name: name.clone(),
            doc: Map::new(),
            created_at: now,
            updated_at: now,
        };
        insert(&mut tx, &ns, ItemKind::Tag, &item).await?;
        out.push(item);
    }
    tx.commit().await?;
    Ok(out)
}

/// Deletes every item of `kind` of the namespace `namespace_id`.
pub(super) async fn delete_kind<'c, E>(exec: E, namespace_id: &str, kind: ItemKind) -> Result<()>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    sqlx::query("DELETE FROM metadef_items WHERE namespace_id = $1 AND kind = $2")
        .bind(namespace_id.to_string())
        .bind(kind.as_str())
        .execute(exec)
        .await?;
    Ok(())
}

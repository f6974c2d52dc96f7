//! Metadata definitions (Glance "metadefs") of one region, without HTTP: namespaces (here),
//! the objects, properties and tags they hold ([`items`]), and resource types with their
//! associations to namespaces ([`resource_types`]); the typed requests they take in [`input`].
//!
//! Policy (Glance's defaults with `enforce_new_defaults`), decided in [`visible`] and
//! [`admin_only`]: a namespace is visible to admins, and to readers of any project when it is
//! public or when their project owns it; everything inside follows its namespace. Only admins
//! write. An invisible namespace is 404 to every call, a write on a visible one by a non-admin
//! 403 (`You are not authorized to complete <rule> action.`). A protected namespace, and
//! everything in it, cannot be deleted (403).
//!
//! Crash behaviour: every change is one statement or one transaction (a namespace with its
//! contents, a bulk tag replacement, a cascade delete), so a crash leaves it before or after.

pub mod input;
pub mod items;
pub mod resource_types;

use crate::db::unique_or;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use glimpse_types::db_time;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::policy::denied;
use crate::auth::Caller;
use crate::db::rows::time;
use crate::db::{Db, flag};
use crate::error::{Error, Result};
use crate::region::Region;

pub use input::{AssociationInput, NamespaceInput, ObjectInput, PropertyDoc};
pub use items::ItemKind;
pub use resource_types::{Association, ResourceType};

/// A metadata definition namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Internal key (the name can change).
    pub id: String,
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub public: bool,
    pub protected: bool,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Namespace {
    pub fn visibility(&self) -> &'static str {
        if self.public { "public" } else { "private" }
    }
}

/// An object, property or tag of a namespace: its name and document (`{}` for a tag).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub name: String,
    pub doc: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A namespace with everything it holds.
#[derive(Debug, Clone)]
pub struct NamespaceDetail {
    pub namespace: Namespace,
    pub associations: Vec<Association>,
    pub properties: Vec<Item>,
    pub objects: Vec<Item>,
    pub tags: Vec<Item>,
}

impl NamespaceDetail {
    /// Glance's `?resource_type=` view: property names (of the namespace and of its objects,
    /// and objects' `required` lists) carry the prefix of that resource type's association.
    pub fn prefixed(mut self, resource_type: &str) -> NamespaceDetail {
        let Some(prefix) = self
            .associations
            .iter()
            .find(|a| a.name == resource_type)
            .and_then(|a| a.prefix.clone())
            .filter(|p| !p.is_empty())
        else {
            return self;
        };
        for p in &mut self.properties {
            p.name = format!("{prefix}{}", p.name);
        }
        for o in &mut self.objects {
            if let Some(Value::Object(props)) = o.doc.get_mut("properties") {
                *props = std::mem::take(props)
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .collect();
            }
            if let Some(Value::Array(req)) = o.doc.get_mut("required") {
                for r in req.iter_mut() {
                    if let Value::String(s) = r {
                        *s = format!("{prefix}{s}");
                    }
                }
            }
        }
        self
    }
}

/// Sort keys of lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Name,
    DisplayName,
    Visibility,
    Owner,
}

/// `GET /v2/metadefs/namespaces` parameters.
#[derive(Debug, Clone)]
pub struct NamespaceQuery {
    pub limit: usize,
    pub marker: Option<String>,
    pub sort_key: SortKey,
    pub desc: bool,
    pub public: Option<bool>,
    pub resource_types: Option<Vec<String>>,
}

impl Default for NamespaceQuery {
    fn default() -> Self {
        NamespaceQuery {
            limit: 25,
            marker: None,
            sort_key: SortKey::CreatedAt,
            desc: true,
            public: None,
            resource_types: None,
        }
    }
}

/// One page of namespaces (each with its resource type associations) and the marker of the
/// next page, if the page is full.
#[derive(Debug, Clone)]
pub struct NamespacePage {
    pub namespaces: Vec<(Namespace, Vec<Association>)>,
    pub next: Option<String>,
}

// ---- policy ----

/// Whether the caller sees the namespace (`get_metadef_namespace`).
pub fn visible(caller: &Caller, ns: &Namespace) -> bool {
    caller.is_admin()
        || (caller.is_reader()
            && (ns.public || caller.project_id.as_deref() == Some(ns.owner.as_str())))
}

/// The admin-only rules (every metadef write).
pub fn admin_only(caller: &Caller, rule: &str) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(denied(rule))
    }
}

pub(crate) fn ns_not_found(name: &str) -> Error {
    Error::not_found(format!(
        "Metadata definition namespace={name} was not found."
    ))
}

fn ns_duplicate(name: &str) -> Error {
    Error::conflict(format!(
        "The metadata definition namespace={name} already exists."
    ))
}

// ---- namespaces ----

const COLUMNS: &str = "id, namespace, display_name, description, visibility, protected, owner, \
                       created_at, updated_at";

fn namespace_from_row(row: &AnyRow) -> Result<Namespace> {
    Ok(Namespace {
        id: row.try_get("id")?,
        namespace: row.try_get("namespace")?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        public: row.try_get::<String, _>("visibility")? == "public",
        protected: row.try_get::<i64, _>("protected")? != 0,
        owner: row.try_get("owner")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a namespace's writable fields in column order: namespace, display_name,
/// description, visibility, protected, owner.
fn bind_fields<'q>(q: Query<'q>, ns: &Namespace) -> Query<'q> {
    q.bind(ns.namespace.clone())
        .bind(ns.display_name.clone())
        .bind(ns.description.clone())
        .bind(ns.visibility())
        .bind(flag(ns.protected))
        .bind(ns.owner.clone())
}

async fn find(db: &Db, name: &str) -> Result<Option<Namespace>> {
    let sql = format!("SELECT {COLUMNS} FROM metadef_namespaces WHERE namespace = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(namespace_from_row).transpose()
}

/// The namespace named `name` if the caller sees it; 404 otherwise (403 for unscoped tokens).
pub async fn load_visible(region: &Region, caller: &Caller, name: &str) -> Result<Namespace> {
    caller.project()?;
    match find(&region.db, name).await? {
        Some(ns) if visible(caller, &ns) => Ok(ns),
        _ => Err(ns_not_found(name)),
    }
}

/// The namespaces the caller sees, filtered, sorted and paged as Glance does.
pub async fn list(region: &Region, caller: &Caller, q: &NamespaceQuery) -> Result<NamespacePage> {
    let project = caller.project()?.to_string();
    if !caller.is_admin() && !caller.is_reader() {
        return Err(denied("get_metadef_namespaces"));
    }
    let rows = if caller.is_admin() {
        let sql = format!("SELECT {COLUMNS} FROM metadef_namespaces");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&region.db.pool)
            .await?
    } else {
        let sql = format!(
            "SELECT {COLUMNS} FROM metadef_namespaces WHERE visibility = 'public' OR owner = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .fetch_all(&region.db.pool)
            .await?
    };
    let mut all = rows
        .iter()
        .map(namespace_from_row)
        .collect::<Result<Vec<_>>>()?;
    let mut assoc = resource_types::all_associations(&region.db).await?;
    if let Some(p) = q.public {
        all.retain(|ns| ns.public == p);
    }
    if let Some(types) = &q.resource_types {
        all.retain(|ns| {
            assoc
                .get(&ns.id)
                .is_some_and(|a| a.iter().any(|a| types.contains(&a.name)))
        });
    }
    all.sort_by(|a, b| {
        let ord = match q.sort_key {
            SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
            SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            SortKey::Name => std::cmp::Ordering::Equal,
            SortKey::DisplayName => a.display_name.cmp(&b.display_name),
            SortKey::Visibility => a.public.cmp(&b.public),
            SortKey::Owner => a.owner.cmp(&b.owner),
        }
        .then_with(|| a.namespace.cmp(&b.namespace));
        if q.desc { ord.reverse() } else { ord }
    });
    let start = match &q.marker {
        None => 0,
        Some(m) => {
            all.iter()
                .position(|ns| &ns.namespace == m)
                .ok_or_else(|| ns_not_found(m))?
                + 1
        }
    };
    let page: Vec<Namespace> = all.into_iter().skip(start).take(q.limit).collect();
    let next = (!page.is_empty() && page.len() == q.limit)
        .then(|| page.last().map(|ns| ns.namespace.clone()))
        .flatten();
    let namespaces = page
        .into_iter()
        .map(|ns| {
            let a = assoc.remove(&ns.id).unwrap_or_default();
            (ns, a)
        })
        .collect();
    Ok(NamespacePage { namespaces, next })
}

/// Creates a namespace with the resource type associations, properties, objects and tags of
/// its document, all in one transaction (admin only; 409 on any duplicate).
pub async fn create(
    region: &Region,
    caller: &Caller,
    input: NamespaceInput,
) -> Result<NamespaceDetail> {
    let project = caller.project()?.to_string();
    admin_only(caller, "add_metadef_namespace")?;
    let now = glimpse_types::now();
    let ns = Namespace {
        id: glimpse_types::uuid_id(),
        namespace: input.namespace.clone(),
        display_name: input.display_name.clone(),
        description: input.description.clone(),
        public: input.public.unwrap_or(false),
        protected: input.protected.unwrap_or(false),
        owner: input.owner.clone().unwrap_or(project),
        created_at: now,
        updated_at: now,
    };
    let mut tx = region.db.pool.begin().await?;
    let r = sqlx::query(
        "INSERT INTO metadef_namespaces (id, namespace, display_name, description, visibility, \
         protected, owner, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(ns.id.clone());
    let r = bind_fields(r, &ns)
        .bind(db_time(now))
        .execute(&mut *tx)
        .await;
    unique_or(r, || ns_duplicate(&ns.namespace))?;
    let mut detail = NamespaceDetail {
        namespace: ns.clone(),
        associations: Vec::new(),
        properties: Vec::new(),
        objects: Vec::new(),
        tags: Vec::new(),
    };
    for a in &input.resource_type_associations {
        detail
            .associations
            .push(resource_types::insert_association(&mut tx, &ns, a, now).await?);
    }
    let item = |name: &str, doc: Map<String, Value>| Item {
        name: name.to_string(),
        doc,
        created_at: now,
        updated_at: now,
    };
    for (name, doc) in &input.properties {
        let it = item(name, doc.clone());
        items::insert(&mut tx, &ns, ItemKind::Property, &it).await?;
        detail.properties.push(it);
    }
    for o in &input.objects {
        let it = item(&o.name, o.doc.clone());
        items::insert(&mut tx, &ns, ItemKind::Object, &it).await?;
        detail.objects.push(it);
    }
    for t in &input.tags {
        let it = item(t, Map::new());
        items::insert(&mut tx, &ns, ItemKind::Tag, &it).await?;
        detail.tags.push(it);
    }
    tx.commit().await?;
    Ok(detail)
}

/// A visible namespace with everything it holds.
pub async fn get(region: &Region, caller: &Caller, name: &str) -> Result<NamespaceDetail> {
    let ns = load_visible(region, caller, name).await?;
    let associations = resource_types::associations_of(&region.db, &ns.id).await?;
    let mut by_kind = items::all_of(&region.db, &ns.id).await?;
    let mut take = |k: ItemKind| by_kind.remove(k.as_str()).unwrap_or_default();
    Ok(NamespaceDetail {
        properties: take(ItemKind::Property),
        objects: take(ItemKind::Object),
        tags: take(ItemKind::Tag),
        namespace: ns,
        associations,
    })
}

/// Replaces a namespace's attributes as Glance's PUT does: absent `visibility` becomes private,
/// absent `protected` false, absent `owner` the caller's project (admin only; 409 on a rename
/// to a taken name). The contents of the document are ignored.
pub async fn update(
    region: &Region,
    caller: &Caller,
    name: &str,
    input: NamespaceInput,
) -> Result<Namespace> {
    let old = load_visible(region, caller, name).await?;
    admin_only(caller, "modify_metadef_namespace")?;
    let ns = Namespace {
        id: old.id.clone(),
        namespace: input.namespace,
        display_name: input.display_name,
        description: input.description,
        public: input.public.unwrap_or(false),
        protected: input.protected.unwrap_or(false),
        owner: input
            .owner
            .unwrap_or_else(|| caller.project_id.clone().unwrap_or_default()),
        created_at: old.created_at,
        updated_at: glimpse_types::now(),
    };
    let r = sqlx::query(
        "UPDATE metadef_namespaces SET namespace = $1, display_name = $2, description = $3, \
         visibility = $4, protected = $5, owner = $6, updated_at = $7 WHERE id = $8",
    );
    let r = bind_fields(r, &ns)
        .bind(db_time(ns.updated_at))
        .bind(ns.id.clone())
        .execute(&region.db.pool)
        .await;
    if unique_or(r, || ns_duplicate(&ns.namespace))?.rows_affected() == 0 {
        return Err(ns_not_found(name));
    }
    Ok(ns)
}

fn ns_protected(name: &str) -> Error {
    Error::forbidden(format!(
        "Metadata definition namespace {name} is protected and cannot be deleted."
    ))
}

/// Deletes a namespace and everything it holds (admin only; 403 while protected).
pub async fn delete(region: &Region, caller: &Caller, name: &str) -> Result<()> {
    let ns = load_visible(region, caller, name).await?;
    admin_only(caller, "delete_metadef_namespace")?;
    if ns.protected {
        return Err(ns_protected(name));
    }
    let mut tx = region.db.pool.begin().await?;
    // Conditional on `protected`, so a concurrent PUT that protects it wins.
    let done = sqlx::query("DELETE FROM metadef_namespaces WHERE id = $1 AND protected = 0")
        .bind(ns.id.clone())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Err(match find(&region.db, name).await? {
            Some(_) => ns_protected(name),
            None => ns_not_found(name),
        });
    }
    for sql in [
        "DELETE FROM metadef_items WHERE namespace_id = $1",
        "DELETE FROM metadef_resource_type_associations WHERE namespace_id = $1",
    ] {
        sqlx::query(sql)
            .bind(ns.id.clone())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes all objects, properties or tags of a namespace (`DELETE .../objects` etc.), which
/// Glance guards as a namespace delete: admin only, 403 while protected.
pub async fn delete_contents(
    region: &Region,
    caller: &Caller,
    name: &str,
    kind: ItemKind,
) -> Result<()> {
    let ns = load_visible(region, caller, name).await?;
    admin_only(caller, "delete_metadef_namespace")?;
    if ns.protected {
        return Err(ns_protected(name));
    }
    items::delete_kind(&region.db.pool, &ns.id, kind).await
}

/// Groups rows by a key, keeping their order.
pub(crate) fn group<T>(rows: Vec<(String, T)>) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for (k, v) in rows {
        out.entry(k).or_default().push(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(name: &str, doc: Value) -> Item {
        let now = glimpse_types::now();
        Item {
            name: name.into(),
            doc: doc.as_object().cloned().unwrap_or_default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn prefixed_names_follow_the_association() {
        let now = glimpse_types::now();
        let detail = NamespaceDetail {
            namespace: Namespace {
                id: "i".into(),
                namespace: "n".into(),
                display_name: None,
                description: None,
                public: true,
                protected: false,
                owner: "p".into(),
                created_at: now,
                updated_at: now,
            },
            associations: vec![Association {
                name: "OS::Glance::Image".into(),
                prefix: Some("hw_".into()),
                properties_target: None,
                created_at: now,
                updated_at: now,
            }],
            properties: vec![item("cpu", json!({"title": "t", "type": "string"}))],
            objects: vec![item(
                "o",
                json!({"required": ["a"], "properties": {"a": {"title": "A", "type": "string"}}}),
            )],
            tags: vec![],
        };
        let same = detail.clone().prefixed("OS::Nova::Flavor");
        assert_eq!(same.properties[0].name, "cpu");
        let p = detail.prefixed("OS::Glance::Image");
        assert_eq!(p.properties[0].name, "hw_cpu");
        assert_eq!(p.objects[0].doc["required"], json!(["hw_a"]));
        assert!(p.objects[0].doc["properties"].get("hw_a").is_some());
    }

    #[test]
    fn visibility_rules() {
        let now = glimpse_types::now();
        let ns = |public, owner: &str| Namespace {
            id: "i".into(),
            namespace: "n".into(),
            display_name: None,
            description: None,
            public,
            protected: false,
            owner: owner.into(),
            created_at: now,
            updated_at: now,
        };
        let caller = |roles: &[&str]| Caller {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: Some("p".into()),
            project_name: Some("p".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: now,
        };
        let reader = caller(&["reader"]);
        let admin = caller(&["admin", "member", "reader"]);
        assert!(visible(&reader, &ns(true, "other")));
        assert!(visible(&reader, &ns(false, "p")));
        assert!(!visible(&reader, &ns(false, "other")));
        assert!(!visible(&caller(&[]), &ns(true, "other")));
        assert!(visible(&admin, &ns(false, "other")));
        assert!(admin_only(&admin, "x").is_ok());
        let e = admin_only(&reader, "add_metadef_namespace").unwrap_err();
        assert_eq!(
            e.message,
            "You are not authorized to complete add_metadef_namespace action."
        );
    }
}

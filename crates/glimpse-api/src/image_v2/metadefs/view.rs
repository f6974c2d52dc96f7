//! Metadefs response bodies in Glance's shape. Glance renders them through WSME models, whose
//! attributes come out in alphabetical order with unset ones left out; `serde_json::Map` (a
//! sorted map in this build) gives the same order, and [`crate::pyjson::dumps`] Python's
//! separators.

use chrono::{DateTime, Utc};
use glimpse_core::images::metadefs::{Association, Item, Namespace, NamespaceDetail, ResourceType};
use glimpse_types::glance_time;
use serde_json::{Map, Value, json};

fn time(t: DateTime<Utc>) -> Value {
    Value::String(glance_time(t))
}

fn put_opt(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), Value::String(v.clone()));
    }
}

/// `created_at` and `updated_at`.
fn times(m: &mut Map<String, Value>, created: DateTime<Utc>, updated: DateTime<Utc>) {
    m.insert("created_at".into(), time(created));
    m.insert("updated_at".into(), time(updated));
}

/// `self` and `schema`.
fn links(m: &mut Map<String, Value>, href: String, schema: &str) {
    m.insert("self".into(), Value::String(href));
    m.insert("schema".into(), Value::String(schema.into()));
}

/// A namespace's own attributes, with `self` and `schema`.
pub fn namespace(ns: &Namespace) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".into(), Value::String(ns.namespace.clone()));
    put_opt(&mut m, "display_name", &ns.display_name);
    put_opt(&mut m, "description", &ns.description);
    m.insert("visibility".into(), Value::String(ns.visibility().into()));
    m.insert("protected".into(), Value::Bool(ns.protected));
    m.insert("owner".into(), Value::String(ns.owner.clone()));
    times(&mut m, ns.created_at, ns.updated_at);
    links(
        &mut m,
        format!("/v2/metadefs/namespaces/{}", ns.namespace),
        "/v2/schemas/metadefs/namespace",
    );
    m
}

/// A namespace in a list: its attributes and its resource type associations, if any.
pub fn namespace_in_list(ns: &Namespace, assoc: &[Association]) -> Value {
    let mut m = namespace(ns);
    if !assoc.is_empty() {
        m.insert(
            "resource_type_associations".into(),
            Value::Array(assoc.iter().map(association).collect()),
        );
    }
    Value::Object(m)
}

/// A namespace with what it holds (each part only when not empty).
pub fn namespace_detail(d: &NamespaceDetail) -> Value {
    let mut m = namespace(&d.namespace);
    let ns = &d.namespace.namespace;
    if !d.associations.is_empty() {
        m.insert(
            "resource_type_associations".into(),
            Value::Array(d.associations.iter().map(association).collect()),
        );
    }
    if !d.properties.is_empty() {
        m.insert("properties".into(), properties(&d.properties));
    }
    if !d.objects.is_empty() {
        m.insert(
            "objects".into(),
            Value::Array(d.objects.iter().map(|o| object(ns, o)).collect()),
        );
    }
    if !d.tags.is_empty() {
        m.insert("tags".into(), tag_names(&d.tags));
    }
    Value::Object(m)
}

/// A resource type association.
pub fn association(a: &Association) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(a.name.clone()));
    put_opt(&mut m, "prefix", &a.prefix);
    put_opt(&mut m, "properties_target", &a.properties_target);
    times(&mut m, a.created_at, a.updated_at);
    Value::Object(m)
}

/// `{"resource_types": [...]}`.
pub fn resource_types(types: &[ResourceType]) -> Value {
    json!({"resource_types": types.iter().map(|t| json!({
        "name": t.name,
        "created_at": glance_time(t.created_at),
        "updated_at": glance_time(t.updated_at),
    })).collect::<Vec<_>>()})
}

/// An object: its document, name, times, `self` and `schema`.
pub fn object(ns: &str, o: &Item) -> Value {
    let mut m = o.doc.clone();
    m.insert("name".into(), Value::String(o.name.clone()));
    times(&mut m, o.created_at, o.updated_at);
    links(
        &mut m,
        format!("/v2/metadefs/namespaces/{ns}/objects/{}", o.name),
        "/v2/schemas/metadefs/object",
    );
    Value::Object(m)
}

/// `{"objects": [...], "schema": …}` (Glance's list schema link has no leading slash).
pub fn objects(ns: &str, items: &[Item]) -> Value {
    json!({
        "objects": items.iter().map(|o| object(ns, o)).collect::<Vec<_>>(),
        "schema": "v2/schemas/metadefs/objects",
    })
}

/// A property shown on its own: its document with its name.
pub fn property(p: &Item) -> Value {
    let mut m = p.doc.clone();
    m.insert("name".into(), Value::String(p.name.clone()));
    Value::Object(m)
}

/// Properties by name, each its stored document.
pub fn properties(items: &[Item]) -> Value {
    Value::Object(
        items
            .iter()
            .map(|p| (p.name.clone(), Value::Object(p.doc.clone())))
            .collect(),
    )
}

/// A tag shown on its own.
pub fn tag(t: &Item) -> Value {
    json!({
        "name": t.name,
        "created_at": glance_time(t.created_at),
        "updated_at": glance_time(t.updated_at),
    })
}

/// `[{"name": …}, …]`.
pub fn tag_names(items: &[Item]) -> Value {
    Value::Array(items.iter().map(|t| json!({"name": t.name})).collect())
}

//! Request documents of the metadefs API in Glance's dialect: each body is checked against the
//! JSON schema Glance validates it with (`glance/api/v2/metadef_*.py`) — read-only attributes
//! first (403 "Attribute 'self' is read-only."), then required keys, types, lengths and enums,
//! and no keys beyond the schema's (400 "Provided object does not match schema '<name>': …") —
//! and read into the typed inputs of `glimpse_core::images::metadefs`. Property documents keep
//! only the attributes Glance's `PropertyType` model keeps. Pure functions; nothing to recover
//! after a crash.

use glimpse_core::db::caps;
use glimpse_core::images::metadefs::items::ItemQuery;
use glimpse_core::images::metadefs::{
    AssociationInput, NamespaceInput, NamespaceQuery, ObjectInput, PropertyDoc, SortKey,
};
use glimpse_core::{Error, Result};
use serde_json::{Map, Value};

/// The attributes of Glance's `PropertyType`, the only ones a property keeps.
const PROPERTY_KEEPS: &[&str] = &[
    "name",
    "type",
    "title",
    "description",
    "operators",
    "default",
    "readonly",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
];

/// The keys the property schema accepts.
const PROPERTY_SCHEMA: &[&str] = &[
    "name",
    "title",
    "description",
    "operators",
    "type",
    "required",
    "minimum",
    "maximum",
    "maxLength",
    "minLength",
    "pattern",
    "enum",
    "readonly",
    "default",
    "items",
    "maxItems",
    "minItems",
    "uniqueItems",
    "additionalItems",
];

const PROPERTY_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// Python's `repr` of a JSON value, as jsonschema's messages show it.
fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn invalid(schema: &str, reason: impl std::fmt::Display) -> Error {
    Error::bad_request(format!(
        "Provided object does not match schema '{schema}': {reason}"
    ))
}

/// A checker of one document against one schema.
struct Doc<'a> {
    schema: &'a str,
    obj: &'a Map<String, Value>,
}

impl<'a> Doc<'a> {
    /// The body as an object, after Glance's read-only check on `read_only`.
    fn new(schema: &'a str, body: &'a Value, read_only: &[&str]) -> Result<Doc<'a>> {
        if let Value::Object(obj) = body {
            for key in read_only {
                if obj.contains_key(*key) {
                    return Err(Error::forbidden(format!("Attribute '{key}' is read-only.")));
                }
            }
            Ok(Doc { schema, obj })
        } else {
            Err(invalid(
                schema,
                format!("{} is not of type 'object'", repr(body)),
            ))
        }
    }

    /// 400 for the first key outside `allowed`.
    fn only(&self, allowed: &[&str]) -> Result<()> {
        let extra: Vec<String> = self
            .obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| format!("'{k}'"))
            .collect();
        match extra.len() {
            0 => Ok(()),
            1 => Err(invalid(
                self.schema,
                format!(
                    "Additional properties are not allowed ({} was unexpected)",
                    extra[0]
                ),
            )),
            _ => Err(invalid(
                self.schema,
                format!(
                    "Additional properties are not allowed ({} were unexpected)",
                    extra.join(", ")
                ),
            )),
        }
    }

    fn required(&self, key: &str) -> Result<&'a Value> {
        self.obj
            .get(key)
            .ok_or_else(|| invalid(self.schema, format!("'{key}' is a required property")))
    }

    fn string_value(&self, v: &Value, max: Option<usize>) -> Result<String> {
        let s = v
            .as_str()
            .ok_or_else(|| invalid(self.schema, format!("{} is not of type 'string'", repr(v))))?;
        if let Some(max) = max
            && s.chars().count() > max
        {
            return Err(invalid(self.schema, format!("'{s}' is too long")));
        }
        Ok(s.to_string())
    }

    fn string(&self, key: &str, max: Option<usize>) -> Result<Option<String>> {
        self.obj
            .get(key)
            .map(|v| self.string_value(v, max))
            .transpose()
    }

    /// A required string that must not be empty (it names a resource in a URL).
    fn name(&self, key: &str, max: usize) -> Result<String> {
        let s = self.string_value(self.required(key)?, Some(max))?;
        if s.is_empty() {
            return Err(invalid(self.schema, format!("'' is too short ({key})")));
        }
        Ok(s)
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(invalid(
                self.schema,
                format!("{} is not of type 'boolean'", repr(v)),
            )),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(invalid(
                self.schema,
                format!("{} is not of type 'array'", repr(v)),
            )),
        }
    }

    fn string_array(&self, key: &str, unique: bool) -> Result<Option<Vec<String>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for v in items {
            let s = self.string_value(v, None)?;
            if unique && out.contains(&s) {
                return Err(invalid(
                    self.schema,
                    format!(
                        "{} has non-unique elements",
                        repr(&Value::Array(items.clone()))
                    ),
                ));
            }
            out.push(s);
        }
        Ok(Some(out))
    }
}

/// A namespace document (create and update).
pub fn namespace(body: &Value) -> Result<NamespaceInput> {
    let d = Doc::new(
        "namespace",
        body,
        &["self", "schema", "created_at", "updated_at"],
    )?;
    d.only(&[
        "namespace",
        "display_name",
        "description",
        "visibility",
        "protected",
        "owner",
        "resource_type_associations",
        "properties",
        "objects",
        "tags",
    ])?;
    let namespace = d.name("namespace", 80)?;
    let public = match d.string("visibility", None)?.as_deref() {
        None => None,
        Some("public") => Some(true),
        Some("private") => Some(false),
        Some(other) => {
            return Err(invalid(
                "namespace",
                format!("'{other}' is not one of ['public', 'private']"),
            ));
        }
    };
    let mut resource_type_associations = Vec::new();
    for item in d.array("resource_type_associations")?.into_iter().flatten() {
        resource_type_associations.push(association_in("namespace", item, false)?);
    }
    let mut objects = Vec::new();
    for item in d.array("objects")?.into_iter().flatten() {
        objects.push(object_in("namespace", item, false, false)?);
    }
    let mut tags = Vec::new();
    for item in d.array("tags")?.into_iter().flatten() {
        let t = Doc::new("namespace", item, &[])?;
        tags.push(t.name("name", 80)?);
    }
    let properties = match d.obj.get("properties") {
        None => Vec::new(),
        Some(v) => properties_in("namespace", v, false)?,
    };
    Ok(NamespaceInput {
        namespace,
        display_name: d.string("display_name", Some(80))?,
        description: d.string("description", Some(500))?,
        public,
        protected: d.boolean("protected")?,
        owner: d.string("owner", Some(255))?,
        resource_type_associations,
        properties,
        objects,
        tags,
    })
}

/// A map of property definitions (`"properties": {name: {...}}`). `strict` rejects keys beyond
/// the property schema (a property posted on its own, or in a new object); otherwise they are
/// dropped, as Glance's model drops them.
fn properties_in(schema: &str, v: &Value, strict: bool) -> Result<Vec<(String, PropertyDoc)>> {
    let Value::Object(map) = v else {
        return Err(invalid(
            schema,
            format!("{} is not of type 'object'", repr(v)),
        ));
    };
    map.iter()
        .map(|(name, p)| Ok((name.clone(), property_doc(schema, p, false, strict)?)))
        .collect()
}

/// One property definition: `title` and `type` required (`name` too when `needs_name`).
fn property_doc(schema: &str, body: &Value, needs_name: bool, strict: bool) -> Result<PropertyDoc> {
    let d = Doc::new(schema, body, &[])?;
    if strict {
        d.only(PROPERTY_SCHEMA)?;
    }
    if needs_name {
        d.name("name", 80)?;
    } else {
        d.string("name", Some(80))?;
    }
    d.string_value(d.required("title")?, None)?;
    let ty = d.string_value(d.required("type")?, None)?;
    if !PROPERTY_TYPES.contains(&ty.as_str()) {
        return Err(invalid(
            schema,
            format!(
                "'{ty}' is not one of ['array', 'boolean', 'integer', 'number', 'object', 'string', None]"
            ),
        ));
    }
    d.string("description", None)?;
    d.string("pattern", None)?;
    d.string_array("operators", false)?;
    d.string_array("required", true)?;
    d.array("enum")?;
    for key in ["readonly", "uniqueItems", "additionalItems"] {
        d.boolean(key)?;
    }
    for key in ["minimum", "maximum"] {
        if let Some(v) = d.obj.get(key)
            && !v.is_number()
        {
            return Err(invalid(
                schema,
                format!("{} is not of type 'number'", repr(v)),
            ));
        }
    }
    for key in ["maxLength", "minLength", "maxItems", "minItems"] {
        if let Some(v) = d.obj.get(key) {
            match v.as_i64() {
                Some(n) if n >= 0 => {}
                Some(n) => {
                    return Err(invalid(
                        schema,
                        format!("{n} is less than the minimum of 0"),
                    ));
                }
                None => {
                    return Err(invalid(
                        schema,
                        format!("{} is not of type 'integer'", repr(v)),
                    ));
                }
            }
        }
    }
    if let Some(items) = d.obj.get("items") {
        let i = Doc::new(schema, items, &[])?;
        if let Some(t) = i.string("type", None)?
            && !PROPERTY_TYPES.contains(&t.as_str())
        {
            return Err(invalid(schema, format!("'{t}' is not a valid item type")));
        }
        i.array("enum")?;
    }
    Ok(d.obj
        .iter()
        .filter(|(k, _)| PROPERTY_KEEPS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// A property posted or put on its own (`name`, `title` and `type` required).
pub fn property(body: &Value) -> Result<(String, PropertyDoc)> {
    let doc = property_doc("property", body, true, true)?;
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((name, doc))
}

/// An object document; `top_level` for a body of its own (read-only attributes 403, no keys
/// beyond the schema), otherwise an item of a namespace document (extra keys ignored).
fn object_in(schema: &str, body: &Value, top_level: bool, strict: bool) -> Result<ObjectInput> {
    let d = if top_level {
        let d = Doc::new(
            schema,
            body,
            &["self", "schema", "created_at", "updated_at"],
        )?;
        d.only(&["name", "description", "required", "properties"])?;
        d
    } else {
        Doc::new(schema, body, &[])?
    };
    let name = d.name("name", 80)?;
    let mut doc = Map::new();
    if let Some(desc) = d.string("description", None)? {
        doc.insert("description".into(), Value::String(desc));
    }
    if let Some(req) = d.string_array("required", true)? {
        doc.insert(
            "required".into(),
            Value::Array(req.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(p) = d.obj.get("properties") {
        let props = properties_in(schema, p, strict)?;
        doc.insert(
            "properties".into(),
            Value::Object(
                props
                    .into_iter()
                    .map(|(k, v)| (k, Value::Object(v)))
                    .collect(),
            ),
        );
    }
    Ok(ObjectInput { name, doc })
}

/// An object posted (`strict`: its properties are checked against the property schema) or put.
pub fn object(body: &Value, strict: bool) -> Result<ObjectInput> {
    object_in("object", body, true, strict)
}

/// An association document; `top_level` as for [`object_in`].
fn association_in(schema: &str, body: &Value, top_level: bool) -> Result<AssociationInput> {
    let d = if top_level {
        let d = Doc::new(schema, body, &["created_at", "updated_at"])?;
        d.only(&["name", "prefix", "properties_target"])?;
        d
    } else {
        Doc::new(schema, body, &[])?
    };
    Ok(AssociationInput {
        name: d.name("name", 80)?,
        prefix: d.string("prefix", Some(80))?,
        properties_target: d.string("properties_target", Some(80))?,
    })
}

/// `POST /v2/metadefs/namespaces/{ns}/resource_types`.
pub fn association(body: &Value) -> Result<AssociationInput> {
    association_in("resource_type", body, true)
}

/// A tag name from a URL (at most 80 characters).
pub fn tag_name(name: &str) -> Result<()> {
    if name.chars().count() > 80 {
        return Err(invalid("tag", format!("'{name}' is too long")));
    }
    Ok(())
}

/// `PUT .../tags/{name}` with `{"name": …}`.
pub fn tag(body: &Value) -> Result<String> {
    let d = Doc::new("tag", body, &["created_at", "updated_at"])?;
    d.only(&["name"])?;
    d.name("name", 80)
}

/// `POST .../tags` with `{"tags": [{"name": …}, …]}`.
pub fn tags(body: &Value) -> Result<Vec<String>> {
    let d = Doc::new("tags", body, &["created_at", "updated_at"])?;
    d.only(&["tags"])?;
    let mut out = Vec::new();
    for item in d.array("tags")?.into_iter().flatten() {
        let t = Doc::new("tags", item, &[])?;
        t.only(&["name"])?;
        out.push(t.name("name", 80)?);
    }
    Ok(out)
}

fn sort_dir(v: &str) -> Result<bool> {
    match v {
        "desc" => Ok(true),
        "asc" => Ok(false),
        other => Err(Error::bad_request(format!(
            "Invalid sort direction: {other}"
        ))),
    }
}

fn limit(v: &str, zero_ok: bool) -> Result<usize> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| Error::bad_request("limit param must be an integer"))?;
    if n < 0 || (n == 0 && !zero_ok) {
        return Err(Error::bad_request("limit param must be positive"));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn sort_key(v: &str, name_key: &str, more: bool) -> Result<SortKey> {
    Ok(match v {
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        k if k == name_key => SortKey::Name,
        "display_name" if more => SortKey::DisplayName,
        "visibility" if more => SortKey::Visibility,
        "owner" if more => SortKey::Owner,
        other => return Err(Error::bad_request(format!("Invalid sort key: {other}"))),
    })
}

/// `GET /v2/metadefs/namespaces` query parameters (`limit` defaults to 25, at most 1000).
pub fn namespace_query(pairs: &[(String, String)]) -> Result<NamespaceQuery> {
    let mut q = NamespaceQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => q.limit = limit(v, true)?.min(1000),
            "marker" => q.marker = Some(v.clone()),
            "sort_dir" => q.desc = sort_dir(v)?,
            "sort_key" => q.sort_key = sort_key(v, "namespace", true)?,
            "visibility" => {
                q.public = match v.as_str() {
                    "public" => Some(true),
                    "private" => Some(false),
                    "" => None,
                    other => {
                        return Err(Error::bad_request(format!(
                            "Invalid visibility value: {other}"
                        )));
                    }
                }
            }
            "resource_types" => {
                let types: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                caps::at_most(types.len(), caps::VALUES, "resource types")?;
                q.resource_types = Some(types)
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Query parameters of object and tag lists.
pub fn item_query(pairs: &[(String, String)], zero_limit_ok: bool) -> Result<ItemQuery> {
    let mut q = ItemQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "limit" if !v.is_empty() => q.limit = Some(limit(v, zero_limit_ok)?),
            "marker" if !v.is_empty() => q.marker = Some(v.clone()),
            "sort_dir" => q.desc = sort_dir(v)?,
            "sort_key" => q.sort_key = sort_key(v, "name", false)?,
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_core::Kind;
    use serde_json::json;

    #[test]
    fn namespace_reads_every_part() {
        let ns = namespace(&json!({
            "namespace": "n", "visibility": "public", "protected": true,
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
            "properties": {"p": {"title": "P", "type": "string", "junk": 1}},
            "objects": [{"name": "o", "required": ["a"]}],
            "tags": [{"name": "t"}]
        }))
        .unwrap();
        assert_eq!(ns.public, Some(true));
        assert_eq!(ns.protected, Some(true));
        assert_eq!(
            ns.resource_type_associations[0].prefix.as_deref(),
            Some("hw_")
        );
        assert_eq!(ns.properties[0].0, "p");
        assert!(!ns.properties[0].1.contains_key("junk"));
        assert_eq!(ns.objects[0].doc["required"], json!(["a"]));
        assert_eq!(ns.tags, vec!["t".to_string()]);
    }

    #[test]
    fn schema_errors_are_400_and_read_only_403() {
        let k = |v: Value| namespace(&v).unwrap_err();
        assert_eq!(k(json!({})).kind, Kind::BadRequest);
        assert_eq!(k(json!({"namespace": "n", "x": 1})).kind, Kind::BadRequest);
        assert_eq!(
            k(json!({"namespace": "n", "visibility": "shared"})).kind,
            Kind::BadRequest
        );
        assert_eq!(
            k(json!({"namespace": "x".repeat(81)})).kind,
            Kind::BadRequest
        );
        let e = k(json!({"namespace": "n", "self": "/x"}));
        assert_eq!(e.kind, Kind::Forbidden);
        assert_eq!(e.message, "Attribute 'self' is read-only.");
    }

    #[test]
    fn property_needs_name_title_and_type() {
        let (name, doc) =
            property(&json!({"name": "p", "title": "P", "type": "string", "enum": ["a"]})).unwrap();
        assert_eq!(name, "p");
        assert_eq!(doc["enum"], json!(["a"]));
        for bad in [
            json!({"title": "P", "type": "string"}),
            json!({"name": "p", "type": "string"}),
            json!({"name": "p", "title": "P", "type": "text"}),
            json!({"name": "p", "title": "P", "type": "string", "junk": 1}),
            json!({"name": "p", "title": "P", "type": "string", "minLength": -1}),
        ] {
            assert_eq!(property(&bad).unwrap_err().kind, Kind::BadRequest, "{bad}");
        }
    }

    #[test]
    fn tags_and_associations() {
        assert_eq!(
            tags(&json!({"tags": [{"name": "a"}, {"name": "b"}]})).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(tags(&json!({"tags": [{"name": "a", "x": 1}]})).is_err());
        assert!(tag(&json!({"name": ""})).is_err());
        assert_eq!(
            tag(&json!({"name": "a", "created_at": "x"}))
                .unwrap_err()
                .kind,
            Kind::Forbidden
        );
        assert!(tag_name(&"t".repeat(81)).is_err());
        let a = association(&json!({"name": "OS::Nova::Flavor", "prefix": "x:"})).unwrap();
        assert_eq!(a.prefix.as_deref(), Some("x:"));
        assert!(association(&json!({"prefix": "x:"})).is_err());
    }

    #[test]
    fn list_queries() {
        let p = |s: &str| -> Vec<(String, String)> {
            url::form_urlencoded::parse(s.as_bytes())
                .into_owned()
                .collect()
        };
        let q = namespace_query(&p(
            "limit=5000&sort_dir=asc&visibility=public&resource_types=a,b",
        ))
        .unwrap();
        assert_eq!(q.limit, 1000);
        assert!(!q.desc);
        assert_eq!(q.public, Some(true));
        assert_eq!(
            q.resource_types,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        for bad in [
            "limit=x",
            "limit=-1",
            "sort_dir=up",
            "visibility=shared",
            "sort_key=x",
        ] {
            assert!(namespace_query(&p(bad)).is_err(), "{bad}");
        }
        assert!(item_query(&p("limit=0"), false).is_err());
        assert_eq!(item_query(&p("limit=0"), true).unwrap().limit, Some(0));
        assert_eq!(
            item_query(&p("sort_key=name"), true).unwrap().sort_key,
            SortKey::Name
        );
    }
}

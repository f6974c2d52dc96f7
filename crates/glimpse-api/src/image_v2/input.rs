//! Glance's request documents read into typed domain requests: the create body
//! (`POST /v2/images`) into [`NewImage`] and the two JSON-patch dialects of `PATCH
//! /v2/images/{id}` into [`Change`]s. The checks and their answers follow Glance's
//! `RequestDeserializer` and image schema: wrong types and bad enum values are 400, read-only
//! attributes 403 ("Attribute 'status' is read-only."), reserved names and the `os_glance`
//! namespace 403, too many properties or tags 413. Pure functions; no I/O.

use glimpse_types::Visibility;
use serde_json::{Map, Value};

use glimpse_core::images::model::{
    Attr, Change, MAX_PROPERTIES, MAX_TAGS, NewImage, check_container_format, check_disk_format,
    check_id, check_len, check_min, check_tag, dedup_tags, is_base_attribute, is_read_only,
    is_reserved_property,
};
use glimpse_core::{Error, Result};

/// The JSON-patch dialects Glance accepts, by media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchDialect {
    /// `application/openstack-images-v2.0-json-patch`: `{"replace": "/name", "value": …}`.
    V20,
    /// `application/openstack-images-v2.1-json-patch`: `{"op": "replace", "path": "/name", …}`.
    V21,
}

impl PatchDialect {
    pub const V20_MEDIA_TYPE: &'static str = "application/openstack-images-v2.0-json-patch";
    pub const V21_MEDIA_TYPE: &'static str = "application/openstack-images-v2.1-json-patch";

    /// The dialect of a `Content-Type` value (parameters ignored), if it is one.
    pub fn from_media_type(content_type: &str) -> Option<PatchDialect> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        if base.eq_ignore_ascii_case(Self::V20_MEDIA_TYPE) {
            Some(PatchDialect::V20)
        } else if base.eq_ignore_ascii_case(Self::V21_MEDIA_TYPE) {
            Some(PatchDialect::V21)
        } else {
            None
        }
    }
}

fn schema_error(field: &str, detail: &str) -> Error {
    Error::bad_request(format!(
        "Provided object does not match schema 'image': {detail}\n\nOn instance['{field}']"
    ))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn not_of_type(field: &str, v: &Value, ty: &str) -> Error {
    schema_error(
        field,
        &format!("{v} is not of type {ty} (got {})", type_name(v)),
    )
}

fn opt_string(field: &str, v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(not_of_type(field, other, "'null', 'string'")),
    }
}

/// A string or null of at most 255 characters (`name`, `owner`).
fn short_string(field: &str, v: &Value) -> Result<Option<String>> {
    let s = opt_string(field, v)?;
    if let Some(s) = &s {
        check_len(field, s)?;
    }
    Ok(s)
}

fn boolean(field: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| not_of_type(field, v, "'boolean'"))
}

fn integer(field: &str, v: &Value) -> Result<i64> {
    let n = v
        .as_i64()
        .ok_or_else(|| not_of_type(field, v, "'integer'"))?;
    check_min(field, n)?;
    Ok(n)
}

fn visibility(v: &Value) -> Result<Visibility> {
    let s = v
        .as_str()
        .ok_or_else(|| not_of_type("visibility", v, "'string'"))?;
    Visibility::parse(s).ok_or_else(|| {
        schema_error(
            "visibility",
            &format!("'{s}' is not one of ['community', 'public', 'private', 'shared']"),
        )
    })
}

fn format(field: &str, v: &Value) -> Result<Option<String>> {
    let f = opt_string(field, v)?;
    if let Some(f) = &f {
        if field == "disk_format" {
            check_disk_format(f)?;
        } else {
            check_container_format(f)?;
        }
    }
    Ok(f)
}

fn tags(v: &Value) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| not_of_type("tags", v, "'array'"))?;
    let mut out = Vec::with_capacity(arr.len());
    for t in arr {
        let t = t
            .as_str()
            .ok_or_else(|| not_of_type("tags", t, "'string'"))?;
        check_tag(t)?;
        out.push(t.to_string());
    }
    let out = dedup_tags(out);
    if out.len() > MAX_TAGS {
        return Err(Error::too_large(format!(
            "Maximum number of tags exceeded: {} (the limit is {MAX_TAGS})",
            out.len()
        )));
    }
    Ok(out)
}

/// Type checks of the read-only and other schema attributes a create body may name, so that
/// a wrong type is 400 before the 403 for naming them at all (Glance validates the schema first).
fn check_schema_only(key: &str, v: &Value) -> Result<()> {
    let ok = match key {
        "status" | "created_at" | "updated_at" | "id" => v.is_string(),
        "checksum" | "os_hash_algo" | "os_hash_value" => v.is_null() || v.is_string(),
        "size" | "virtual_size" => v.is_null() || v.is_i64() || v.is_u64(),
        "locations" => v.is_array(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(not_of_type(key, v, "the schema type"))
    }
}

fn check_property(key: &str, v: &Value) -> Result<String> {
    let s = v
        .as_str()
        .ok_or_else(|| not_of_type(key, v, "'string'"))?
        .to_string();
    if key.chars().count() > 255 {
        return Err(Error::bad_request(
            "Custom property should not be greater than 255 characters.",
        ));
    }
    Ok(s)
}

/// Reads a create body (`POST /v2/images`).
pub fn new_image(body: &Value) -> Result<NewImage> {
    let obj = body.as_object().ok_or_else(|| {
        Error::bad_request(format!(
            "Provided object does not match schema 'image': {} is not of type 'object'",
            type_name(body)
        ))
    })?;
    for key in ["direct_url", "self", "file", "schema", "stores"] {
        if obj.contains_key(key) {
            return Err(Error::forbidden(format!("Attribute '{key}' is read-only.")));
        }
    }
    let mut img = NewImage::default();
    let mut props: Vec<(String, String)> = Vec::new();
    let mut read_only: Option<&str> = None;
    for (key, v) in obj {
        match key.as_str() {
            "id" => {
                let id = v.as_str().ok_or_else(|| not_of_type("id", v, "'string'"))?;
                check_id(id)?;
                img.id = Some(id.to_ascii_lowercase());
            }
            "name" => img.name = short_string("name", v)?,
            "owner" => img.owner = short_string("owner", v)?,
            "visibility" => img.visibility = Some(visibility(v)?),
            "protected" => img.protected = boolean("protected", v)?,
            "os_hidden" => img.os_hidden = boolean("os_hidden", v)?,
            "min_disk" => img.min_disk = integer("min_disk", v)?,
            "min_ram" => img.min_ram = integer("min_ram", v)?,
            "disk_format" => img.disk_format = format("disk_format", v)?,
            "container_format" => img.container_format = format("container_format", v)?,
            "tags" => img.tags = tags(v)?,
            k if is_read_only(k) || k == "locations" => {
                check_schema_only(k, v)?;
                read_only.get_or_insert(k);
            }
            k => props.push((k.to_string(), check_property(k, v)?)),
        }
    }
    for (k, _) in &props {
        if is_reserved_property(k) {
            return Err(Error::forbidden(format!("Attribute '{k}' is reserved.")));
        }
    }
    if let Some(k) = read_only {
        if k == "locations" {
            return Err(Error::forbidden("Attribute 'locations' is reserved."));
        }
        return Err(Error::forbidden(format!("Attribute '{k}' is read-only.")));
    }
    if props.len() > MAX_PROPERTIES {
        return Err(Error::too_large(format!(
            "Maximum number of properties exceeded: {} (the limit is {MAX_PROPERTIES})",
            props.len()
        )));
    }
    img.properties = props;
    Ok(img)
}

/// Decodes a JSON pointer into its parts, with Glance's restrictions.
fn decode_pointer(pointer: &str) -> Result<Vec<String>> {
    let bad = |why: &str| Error::bad_request(format!("Pointer `{pointer}` {why}"));
    if !pointer.starts_with('/') {
        return Err(bad("does not start with \"/\"."));
    }
    let rest = &pointer[1..];
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(bad("end with \"/\"."));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() > 1 && parts.iter().any(|p| p.trim().is_empty()) {
        return Err(bad("contains adjacent \"/\"."));
    }
    if rest.trim().is_empty() {
        return Err(bad("does not contains valid token."));
    }
    let mut chars = pointer.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.peek(), Some('0') | Some('1')) {
            return Err(bad(
                "contains \"~\" not part of a recognized escape sequence.",
            ));
        }
    }
    Ok(rest
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~").trim().to_string())
        .collect())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Remove => "remove",
        Op::Replace => "replace",
    }
}

fn parse_op(s: &str) -> Option<Op> {
    match s {
        "add" => Some(Op::Add),
        "remove" => Some(Op::Remove),
        "replace" => Some(Op::Replace),
        _ => None,
    }
}

fn op_and_path(raw: &Map<String, Value>, dialect: PatchDialect) -> Result<(Op, String)> {
    match dialect {
        PatchDialect::V21 => {
            let op = raw.get("op").ok_or_else(|| {
                Error::bad_request(
                    "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.",
                )
            })?;
            let op_s = op.as_str().unwrap_or("");
            let op = parse_op(op_s).ok_or_else(|| {
                Error::bad_request(format!(
                    "Invalid operation: `{}`. It must be one of the following: add, remove, replace.",
                    op.as_str().map(str::to_string).unwrap_or_else(|| op.to_string())
                ))
            })?;
            let path = raw
                .get("path")
                .ok_or_else(|| Error::bad_request("Unable to find 'path' in JSON Schema change"))?
                .as_str()
                .ok_or_else(|| Error::bad_request("The 'path' of a change must be a string."))?;
            Ok((op, path.to_string()))
        }
        PatchDialect::V20 => {
            let mut found: Option<(Op, &Value)> = None;
            for op in [Op::Add, Op::Remove, Op::Replace] {
                if let Some(v) = raw.get(op_name(op)) {
                    if found.is_some() {
                        return Err(Error::bad_request(
                            "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
                        ));
                    }
                    found = Some((op, v));
                }
            }
            let (op, path) = found.ok_or_else(|| {
                Error::bad_request(
                    "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
                )
            })?;
            let path = path
                .as_str()
                .ok_or_else(|| Error::bad_request("The path of a change must be a string."))?;
            Ok((op, path.to_string()))
        }
    }
}

fn base_change(root: &str, v: &Value) -> Result<Attr> {
    Ok(match root {
        "name" => Attr::Name(short_string("name", v)?),
        "visibility" => Attr::Visibility(visibility(v)?),
        "protected" => Attr::Protected(boolean("protected", v)?),
        "os_hidden" => Attr::OsHidden(boolean("os_hidden", v)?),
        "min_disk" => Attr::MinDisk(integer("min_disk", v)?),
        "min_ram" => Attr::MinRam(integer("min_ram", v)?),
        "disk_format" => Attr::DiskFormat(format("disk_format", v)?),
        "container_format" => Attr::ContainerFormat(format("container_format", v)?),
        "owner" => Attr::Owner(short_string("owner", v)?),
        "tags" => Attr::Tags(tags(v)?),
        other => {
            return Err(Error::forbidden(format!(
                "Attribute '{other}' is read-only."
            )));
        }
    })
}

/// Reads a PATCH body in one of the two JSON-patch dialects.
pub fn changes(body: &Value, dialect: PatchDialect) -> Result<Vec<Change>> {
    let list = body.as_array().ok_or_else(|| {
        Error::bad_request("Request body must be a JSON array of operation objects.")
    })?;
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        let raw = raw
            .as_object()
            .ok_or_else(|| Error::bad_request("Operations must be JSON objects."))?;
        let (op, pointer) = op_and_path(raw, dialect)?;
        let path = decode_pointer(&pointer)?;
        let root = path[0].clone();
        let depth_ok = if root == "locations" {
            path.len() == if op == Op::Replace { 1 } else { 2 }
        } else {
            path.len() == 1
        };
        if !depth_ok {
            return Err(Error::bad_request(format!(
                "Invalid JSON pointer for this resource: '/{}'",
                path.join("/")
            )));
        }
        let value = if op == Op::Remove {
            None
        } else {
            Some(raw.get("value").ok_or_else(|| {
                Error::bad_request(format!(
                    "Operation \"{}\" requires a member named \"value\".",
                    op_name(op)
                ))
            })?)
        };
        if is_read_only(&root) {
            return Err(Error::forbidden(format!(
                "Attribute '{root}' is read-only."
            )));
        }
        if matches!(root.as_str(), "location" | "deleted" | "deleted_at")
            || root.starts_with("os_glance")
            || root.starts_with("__system__")
        {
            return Err(Error::forbidden(format!("Attribute '{root}' is reserved.")));
        }
        if root == "locations" {
            return Err(Error::forbidden(
                "It's not allowed to update locations if locations are invisible.",
            ));
        }
        let base = is_base_attribute(&root);
        let change = match (op, value) {
            (Op::Remove, _) if base => Change::RemoveBase { name: root },
            (Op::Remove, _) => Change::RemoveProperty { name: root },
            (_, Some(v)) if base => {
                let attr = base_change(&root, v)?;
                if op == Op::Add && dialect == PatchDialect::V20 {
                    Change::AddExistingBase { name: root }
                } else {
                    Change::Set(attr)
                }
            }
            (Op::Add, Some(v)) => Change::AddProperty {
                value: check_property(&root, v)?,
                name: root,
                strict: dialect == PatchDialect::V20,
            },
            (_, Some(v)) => Change::ReplaceProperty {
                value: check_property(&root, v)?,
                name: root,
            },
            (_, None) => unreachable!("only remove has no value"),
        };
        out.push(change);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_core::Kind;
    use serde_json::json;

    #[test]
    fn create_body_with_extras() {
        let b = json!({"name": "probe", "disk_format": "raw", "container_format": "bare",
            "tags": ["t1", "t1", "t2"], "os_distro": "cirros", "visibility": "private",
            "id": "24AA2105-1b4e-4de3-af4e-0ed2b54fb214", "min_ram": 5});
        let n = new_image(&b).unwrap();
        assert_eq!(n.name.as_deref(), Some("probe"));
        assert_eq!(n.tags, vec!["t1", "t2"]);
        assert_eq!(
            n.properties,
            vec![("os_distro".to_string(), "cirros".to_string())]
        );
        assert_eq!(n.visibility, Some(Visibility::Private));
        assert_eq!(
            n.id.as_deref(),
            Some("24aa2105-1b4e-4de3-af4e-0ed2b54fb214")
        );
        assert_eq!(n.min_ram, 5);
    }

    #[test]
    fn create_body_errors() {
        let kind = |b: Value| new_image(&b).unwrap_err().kind;
        assert_eq!(
            kind(json!({"name": "x", "status": "active"})),
            Kind::Forbidden
        );
        assert_eq!(kind(json!({"self": "x"})), Kind::Forbidden);
        assert_eq!(kind(json!({"os_glance_foo": "x"})), Kind::Forbidden);
        assert_eq!(kind(json!({"locations": []})), Kind::Forbidden);
        assert_eq!(kind(json!({"disk_format": "nope"})), Kind::BadRequest);
        assert_eq!(kind(json!({"container_format": "qcow2"})), Kind::BadRequest);
        assert_eq!(kind(json!({"name": 5})), Kind::BadRequest);
        assert_eq!(kind(json!({"name": "n".repeat(256)})), Kind::BadRequest);
        assert_eq!(kind(json!({"protected": "yes"})), Kind::BadRequest);
        assert_eq!(kind(json!({"min_disk": -1})), Kind::BadRequest);
        assert_eq!(kind(json!({"min_disk": "1"})), Kind::BadRequest);
        assert_eq!(kind(json!({"tags": "a"})), Kind::BadRequest);
        assert_eq!(kind(json!({"tags": ["t".repeat(256)]})), Kind::BadRequest);
        assert_eq!(kind(json!({"foo": 1})), Kind::BadRequest);
        assert_eq!(kind(json!({"foo": null})), Kind::BadRequest);
        assert_eq!(kind(json!({"id": "x"})), Kind::BadRequest);
        assert_eq!(kind(json!(["x"])), Kind::BadRequest);
        assert_eq!(kind(json!({"status": 3})), Kind::BadRequest);
        let many: Map<String, Value> = (0..129).map(|i| (format!("p{i}"), json!("v"))).collect();
        assert_eq!(kind(Value::Object(many)), Kind::TooLarge);
        let tags: Vec<String> = (0..129).map(|i| format!("t{i}")).collect();
        assert_eq!(kind(json!({"tags": tags})), Kind::TooLarge);
    }

    #[test]
    fn patch_dialects() {
        let v21 = json!([{"op": "replace", "path": "/name", "value": "renamed"},
                         {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
                         {"op": "remove", "path": "/a~1b"}]);
        let c = changes(&v21, PatchDialect::V21).unwrap();
        assert_eq!(c[0], Change::Set(Attr::Name(Some("renamed".into()))));
        assert_eq!(
            c[1],
            Change::AddProperty {
                name: "hw_disk_bus".into(),
                value: "scsi".into(),
                strict: false
            }
        );
        assert_eq!(c[2], Change::RemoveProperty { name: "a/b".into() });
        let v20 =
            json!([{"replace": "/name", "value": "renamed-2.0"}, {"add": "/name", "value": "x"}]);
        let c = changes(&v20, PatchDialect::V20).unwrap();
        assert_eq!(c[0], Change::Set(Attr::Name(Some("renamed-2.0".into()))));
        assert_eq!(
            c[1],
            Change::AddExistingBase {
                name: "name".into()
            }
        );
    }

    #[test]
    fn patch_errors() {
        let kind = |b: Value| changes(&b, PatchDialect::V21).unwrap_err().kind;
        for (body, expected) in [
            (json!({"op": "replace"}), Kind::BadRequest),
            (json!(["x"]), Kind::BadRequest),
            (
                json!([{"op": "test", "path": "/name", "value": 1}]),
                Kind::BadRequest,
            ),
            (json!([{"path": "/name", "value": 1}]), Kind::BadRequest),
            (
                json!([{"op": "replace", "path": "name", "value": "x"}]),
                Kind::BadRequest,
            ),
            (
                json!([{"op": "replace", "path": "/a/b", "value": "x"}]),
                Kind::BadRequest,
            ),
            (
                json!([{"op": "replace", "path": "/name"}]),
                Kind::BadRequest,
            ),
            (
                json!([{"op": "replace", "path": "/status", "value": "active"}]),
                Kind::Forbidden,
            ),
            (
                json!([{"op": "add", "path": "/os_glance_x", "value": "1"}]),
                Kind::Forbidden,
            ),
            (
                json!([{"op": "replace", "path": "/protected", "value": "no"}]),
                Kind::BadRequest,
            ),
            (
                json!([{"op": "add", "path": "/foo", "value": 1}]),
                Kind::BadRequest,
            ),
            (
                json!([{"op": "replace", "path": "/locations", "value": []}]),
                Kind::Forbidden,
            ),
            (
                json!([{"op": "replace", "path": "/x~2", "value": "1"}]),
                Kind::BadRequest,
            ),
        ] {
            assert_eq!(kind(body), expected);
        }
        assert_eq!(
            changes(
                &json!([{"replace": "/name", "add": "/x", "value": "1"}]),
                PatchDialect::V20
            )
            .unwrap_err()
            .kind,
            Kind::BadRequest
        );
    }

    #[test]
    fn media_types() {
        assert_eq!(
            PatchDialect::from_media_type(
                "application/openstack-images-v2.1-json-patch; charset=UTF-8"
            ),
            Some(PatchDialect::V21)
        );
        assert_eq!(PatchDialect::from_media_type("application/json"), None);
    }
}

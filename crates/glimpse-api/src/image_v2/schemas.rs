//! `GET /v2/schemas/*`: the JSON schemas Glance serves. The image schema is Glance's own
//! (default formats, no custom property schema), the image collection wraps it as Glance's
//! `CollectionSchema.raw()` does, the member schemas are Glance's `minimal()` forms, and the
//! metadata-definition schemas (`metadefs/*`) are short documents with Glance's names and main
//! properties — Glimpse does not implement the metadefs API itself. Static; no state.

/// Glance's image schema (`glance/api/v2/images.py::get_schema().raw()`).
pub const IMAGE: &str = r##"{"name": "image", "properties": {"id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"}, "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255}, "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]}, "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": ["community", "public", "private", "shared"]}, "protected": {"type": "boolean", "description": "If true, image will not be deletable."}, "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."}, "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32}, "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}, "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128}, "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255}, "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"}, "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"}, "container_format": {"type": ["null", "string"], "description": "Format of the container", "enum": [null, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]}, "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": [null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]}, "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"}, "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"}, "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}}, "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"}, "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."}, "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."}, "self": {"type": "string", "readOnly": true, "description": "An image self url"}, "file": {"type": "string", "readOnly": true, "description": "An image file url"}, "stores": {"type": "string", "readOnly": true, "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."}, "schema": {"type": "string", "readOnly": true, "description": "An image schema url"}, "locations": {"type": "array", "items": {"type": "object", "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}, "validation_data": {"description": "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.", "type": "object", "writeOnly": true, "additionalProperties": false, "properties": {"checksum": {"type": "string", "minLength": 32, "maxLength": 32}, "os_hash_algo": {"type": "string", "maxLength": 64}, "os_hash_value": {"type": "string", "maxLength": 128}}, "required": ["os_hash_algo", "os_hash_value"]}}, "required": ["url", "metadata"]}, "description": "A set of URLs to access the image file kept in external store"}}, "additionalProperties": {"type": "string"}, "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"}, {"rel": "describedby", "href": "{schema}"}]}"##;

/// Glance's member schema properties (`glance/api/v2/image_members.py`).
const MEMBER_PROPERTIES: &str = r##"{"member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"}, "image_id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"}, "created_at": {"type": "string", "description": "Date and time of image member creation"}, "updated_at": {"type": "string", "description": "Date and time of last modification of image member"}, "status": {"type": "string", "description": "The status of this image member", "enum": ["pending", "accepted", "rejected"]}, "schema": {"readOnly": true, "type": "string"}}"##;

/// Short metadata-definition item schemas: (path name, schema name, properties).
const METADEFS: [(&str, &str, &str); 5] = [
    (
        "namespace",
        "namespace",
        r##"{"namespace": {"type": "string", "description": "The unique namespace text.", "maxLength": 80}, "display_name": {"type": "string", "description": "The user friendly name for the namespace. Used by UI if available.", "maxLength": 80}, "description": {"type": "string", "description": "Provides a user friendly description of the namespace.", "maxLength": 500}, "visibility": {"type": "string", "description": "Scope of namespace accessibility.", "enum": ["public", "private"]}, "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."}, "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255}, "created_at": {"type": "string", "readOnly": true, "description": "Date and time of namespace creation", "format": "date-time"}, "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last namespace modification", "format": "date-time"}, "schema": {"readOnly": true, "type": "string"}, "self": {"readOnly": true, "type": "string"}}"##,
    ),
    (
        "resource_type",
        "resource_type_association",
        r##"{"name": {"type": "string", "readOnly": true, "description": "Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html", "maxLength": 80}, "prefix": {"type": "string", "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :).", "maxLength": 80}, "properties_target": {"type": "string", "description": "Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.", "maxLength": 80}, "created_at": {"type": "string", "readOnly": true, "description": "Date and time of resource type association", "format": "date-time"}, "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last resource type association modification", "format": "date-time"}}"##,
    ),
    (
        "property",
        "property",
        r##"{"name": {"type": "string", "maxLength": 80}, "title": {"type": "string"}, "description": {"type": "string"}, "operators": {"type": "array", "items": {"type": "string"}}, "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object", "string", null]}, "required": {"type": "array", "items": {"type": "string"}}, "minimum": {"type": "number"}, "maximum": {"type": "number"}, "maxLength": {"type": "integer", "minimum": 0}, "minLength": {"type": "integer", "minimum": 0}, "pattern": {"type": "string", "format": "regex"}, "enum": {"type": "array"}, "readonly": {"type": "boolean"}, "default": {}, "items": {"type": "object"}, "maxItems": {"type": "integer", "minimum": 0}, "minItems": {"type": "integer", "minimum": 0}, "uniqueItems": {"type": "boolean", "default": false}, "additionalItems": {"type": "boolean"}}"##,
    ),
    (
        "object",
        "object",
        r##"{"name": {"type": "string", "maxLength": 80}, "description": {"type": "string"}, "required": {"type": "array", "items": {"type": "string"}}, "properties": {"type": "object"}, "schema": {"readOnly": true, "type": "string"}, "self": {"readOnly": true, "type": "string"}, "created_at": {"type": "string", "readOnly": true, "description": "Date and time of object creation", "format": "date-time"}, "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last object modification", "format": "date-time"}}"##,
    ),
    (
        "tag",
        "tag",
        r##"{"name": {"type": "string", "maxLength": 255}, "created_at": {"type": "string", "readOnly": true, "description": "Date and time of tag creation", "format": "date-time"}, "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last tag modification", "format": "date-time"}}"##,
    ),
];

/// Collection names of the metadefs item schemas, by path name.
fn metadef_collection(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "namespaces" => ("namespace", "namespaces"),
        "resource_types" => ("resource_type", "resource_type_associations"),
        "properties" => ("property", "properties"),
        "objects" => ("object", "objects"),
        "tags" => ("tag", "tags"),
        _ => return None,
    })
}

fn item_raw(name: &str, properties: &str) -> String {
    format!(r#"{{"name": "{name}", "properties": {properties}, "additionalProperties": false}}"#)
}

fn collection_raw(name: &str, item: &str) -> String {
    format!(
        r#"{{"name": "{name}", "properties": {{"{name}": {{"type": "array", "items": {item}}}, "first": {{"type": "string"}}, "next": {{"type": "string"}}, "schema": {{"type": "string"}}}}, "links": [{{"rel": "first", "href": "{{first}}"}}, {{"rel": "next", "href": "{{next}}"}}, {{"rel": "describedby", "href": "{{schema}}"}}]}}"#
    )
}

/// The schema document at `/v2/schemas/<path>`, if there is one.
pub fn schema(path: &str) -> Option<String> {
    match path {
        "image" => Some(IMAGE.to_string()),
        "images" => Some(collection_raw("images", IMAGE)),
        "member" => Some(format!(
            r#"{{"name": "member", "properties": {MEMBER_PROPERTIES}}}"#
        )),
        "members" => Some(format!(
            r#"{{"name": "members", "properties": {{"members": {{"type": "array", "items": {{"name": "member", "properties": {MEMBER_PROPERTIES}}}}}, "schema": {{"type": "string"}}}}, "links": [{{"rel": "describedby", "href": "{{schema}}"}}]}}"#
        )),
        _ => {
            let md = path.strip_prefix("metadefs/")?;
            if let Some((_, name, props)) = METADEFS.iter().find(|(p, _, _)| *p == md) {
                return Some(item_raw(name, props));
            }
            let (item_path, name) = metadef_collection(md)?;
            let (_, item_name, props) = METADEFS.iter().find(|(p, _, _)| *p == item_path)?;
            Some(collection_raw(name, &item_raw(item_name, props)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_json_with_its_name() {
        let cases = [
            ("image", "image"),
            ("images", "images"),
            ("member", "member"),
            ("members", "members"),
            ("metadefs/namespace", "namespace"),
            ("metadefs/namespaces", "namespaces"),
            ("metadefs/resource_type", "resource_type_association"),
            ("metadefs/resource_types", "resource_type_associations"),
            ("metadefs/property", "property"),
            ("metadefs/properties", "properties"),
            ("metadefs/object", "object"),
            ("metadefs/objects", "objects"),
            ("metadefs/tag", "tag"),
            ("metadefs/tags", "tags"),
        ];
        for (path, name) in cases {
            let doc = schema(path).unwrap_or_else(|| panic!("{path}"));
            let v: serde_json::Value =
                serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(v["name"], name, "{path}");
        }
        assert!(schema("nosuch").is_none());
        assert!(schema("metadefs/nosuch").is_none());
    }
}

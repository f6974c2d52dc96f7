//! Glance v2 image bodies as a client reads and writes them: [`Image`] (what
//! `GET /v2/images/{id}` answers) and [`ImageCreate`] (the body of `POST /v2/images`). Every
//! field Glance defines is named here once; whatever else an image carries is a custom
//! property ([`Image::properties`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ImageStatus, Visibility};

/// One image as Glance v2 shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: ImageStatus,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub os_hidden: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub virtual_size: Option<u64>,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    #[serde(default)]
    pub min_disk: Option<u64>,
    #[serde(default)]
    pub min_ram: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Read-only links and store details Glance may add (`self`, `file`, `schema`,
    /// `locations`, `direct_url`, `stores`, `deleted`, `deleted_at`): kept out of the
    /// custom properties.
    #[serde(rename = "self", default)]
    pub self_link: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub locations: Option<Value>,
    #[serde(default)]
    pub direct_url: Option<Value>,
    #[serde(default)]
    pub stores: Option<Value>,
    #[serde(default)]
    pub deleted: Option<Value>,
    #[serde(default)]
    pub deleted_at: Option<Value>,
    /// Everything else: custom properties (strings) and Glance's reserved `os_glance_*`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The fields of a Glance image that are not custom properties (those [`Image`] names).
pub const BASE_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "tags",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "locations",
    "direct_url",
    "stores",
    "deleted",
    "deleted_at",
];

impl Image {
    /// The custom (string) property `key`.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }

    /// The custom properties: string values, Glance's reserved `os_glance_*` left out.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra
            .iter()
            .filter(|(k, _)| !k.starts_with("os_glance"))
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
    }

    /// Whether this image's data has the expected hashes (an unknown expectation matches).
    pub fn has_data(&self, checksum: Option<&str>, os_hash_value: Option<&str>) -> bool {
        checksum.is_none_or(|c| self.checksum.as_deref() == Some(c))
            && os_hash_value.is_none_or(|h| self.os_hash_value.as_deref() == Some(h))
    }
}

/// The body of `POST /v2/images` (unset fields are left out, so Glance applies its defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ImageCreate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ram: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Custom properties.
    #[serde(flatten)]
    pub properties: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_glance_image_and_keeps_custom_properties_apart() {
        let img: Image = serde_json::from_value(json!({
            "id": "5c3a2f0e-0000-4000-8000-000000000001", "name": "cirros", "status": "active",
            "visibility": "private", "protected": false, "os_hidden": false, "owner": "p1",
            "size": 3, "virtual_size": null, "checksum": "c", "os_hash_algo": "sha512",
            "os_hash_value": "h", "disk_format": "raw", "container_format": "bare",
            "min_disk": 0, "min_ram": 0, "tags": ["a"], "created_at": "t", "updated_at": "t",
            "self": "/v2/images/x", "file": "/v2/images/x/file", "schema": "/v2/schemas/image",
            "os_glance_import_task": "x", "license_switch": "byol", "n": 1
        }))
        .unwrap();
        assert_eq!(img.status, ImageStatus::Active);
        assert_eq!(img.property("license_switch"), Some("byol"));
        assert_eq!(
            img.properties().collect::<Vec<_>>(),
            [("license_switch", "byol")]
        );
        assert!(img.has_data(Some("c"), None));
        assert!(!img.has_data(Some("c"), Some("other")));
    }

    #[test]
    fn base_fields_are_exactly_the_named_ones() {
        let mut doc = serde_json::Map::new();
        for f in BASE_FIELDS {
            doc.insert(f.to_string(), Value::Null);
        }
        doc.insert("id".into(), json!("i"));
        doc.insert("status".into(), json!("queued"));
        doc.insert("tags".into(), json!([]));
        doc.insert("protected".into(), json!(false));
        doc.insert("os_hidden".into(), json!(false));
        let img: Image = serde_json::from_value(Value::Object(doc)).unwrap();
        assert!(img.extra.is_empty(), "{:?}", img.extra);
    }

    #[test]
    fn a_create_body_leaves_unset_fields_out() {
        let body = ImageCreate {
            name: Some("n".into()),
            visibility: Some(Visibility::Private),
            properties: [("k".to_string(), "v".to_string())].into(),
            ..ImageCreate::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "n", "visibility": "private", "k": "v"})
        );
    }
}

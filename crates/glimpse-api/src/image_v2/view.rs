//! Image API response bodies, byte for byte in Glance's shape: an image's custom properties
//! first (in the order they were set), then the base fields in Glance's order, then `tags`,
//! `self`, `file` and `schema`; members and lists likewise. Bodies are written with Python's
//! `json.dumps` separators (`", "`, `": "`) and raw UTF-8, as Glance writes them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use glimpse_core::images::{Image, Member};
use glimpse_types::glance_time;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let mut r = (status, crate::pyjson::dumps(v)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One image as Glance shows it.
pub struct ImageView<'a>(pub &'a Image);

impl Serialize for ImageView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        let mut m = s.serialize_map(None)?;
        for (k, v) in &i.properties {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("name", &i.name)?;
        m.serialize_entry("disk_format", &i.disk_format)?;
        m.serialize_entry("container_format", &i.container_format)?;
        m.serialize_entry("visibility", i.visibility.as_str())?;
        m.serialize_entry("size", &i.size)?;
        m.serialize_entry("virtual_size", &i.virtual_size)?;
        m.serialize_entry("status", i.status.as_str())?;
        m.serialize_entry("checksum", &i.checksum)?;
        m.serialize_entry("protected", &i.protected)?;
        m.serialize_entry("min_ram", &i.min_ram)?;
        m.serialize_entry("min_disk", &i.min_disk)?;
        m.serialize_entry("owner", &i.owner)?;
        m.serialize_entry("os_hidden", &i.os_hidden)?;
        m.serialize_entry("os_hash_algo", &i.os_hash_algo)?;
        m.serialize_entry("os_hash_value", &i.os_hash_value)?;
        m.serialize_entry("id", &i.id)?;
        m.serialize_entry("created_at", &glance_time(i.created_at))?;
        m.serialize_entry("updated_at", &glance_time(i.updated_at))?;
        m.serialize_entry("tags", &i.tags)?;
        m.serialize_entry("self", &format!("/v2/images/{}", i.id))?;
        m.serialize_entry("file", &format!("/v2/images/{}/file", i.id))?;
        m.serialize_entry("schema", "/v2/schemas/image")?;
        m.end()
    }
}

/// A page of images: `{"images": […], "first", "schema", "next"?}`.
pub struct ListView<'a> {
    pub images: &'a [Image],
    pub first: String,
    pub next: Option<String>,
}

impl Serialize for ListView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let views: Vec<ImageView<'_>> = self.images.iter().map(ImageView).collect();
        m.serialize_entry("images", &views)?;
        m.serialize_entry("first", &self.first)?;
        m.serialize_entry("schema", "/v2/schemas/images")?;
        if let Some(n) = &self.next {
            m.serialize_entry("next", n)?;
        }
        m.end()
    }
}

/// One membership as Glance shows it.
pub struct MemberView<'a>(pub &'a Member);

impl Serialize for MemberView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mb = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("member_id", &mb.member_id)?;
        m.serialize_entry("image_id", &mb.image_id)?;
        m.serialize_entry("status", mb.status.as_str())?;
        m.serialize_entry("created_at", &glance_time(mb.created_at))?;
        m.serialize_entry("updated_at", &glance_time(mb.updated_at))?;
        m.serialize_entry("schema", "/v2/schemas/member")?;
        m.end()
    }
}

/// `{"members": […], "schema": "/v2/schemas/members"}`.
pub struct MembersView<'a>(pub &'a [Member]);

impl Serialize for MembersView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let views: Vec<MemberView<'_>> = self.0.iter().map(MemberView).collect();
        m.serialize_entry("members", &views)?;
        m.serialize_entry("schema", "/v2/schemas/members")?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_types::Visibility;

    #[test]
    fn image_json_matches_glance_sample_07() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T06:09:52.123456Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let img = Image {
            name: Some("probe".into()),
            visibility: Visibility::Shared,
            disk_format: Some("raw".into()),
            container_format: Some("bare".into()),
            properties: vec![("os_distro".into(), "cirros".into())],
            tags: vec!["t1".into()],
            ..Image::queued(
                "24aa2105-1b4e-4de3-af4e-0ed2b54fb214".into(),
                "9f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b".into(),
                t,
            )
        };
        let body = String::from_utf8(crate::pyjson::dumps(&ImageView(&img))).unwrap();
        let sample = r#"{"os_distro": "cirros", "name": "probe", "disk_format": "raw", "container_format": "bare", "visibility": "shared", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 0, "min_disk": 0, "owner": "9f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "24aa2105-1b4e-4de3-af4e-0ed2b54fb214", "created_at": "2026-11-22T06:09:52Z", "updated_at": "2026-11-22T06:09:52Z", "tags": ["t1"], "self": "/v2/images/24aa2105-1b4e-4de3-af4e-0ed2b54fb214", "file": "/v2/images/24aa2105-1b4e-4de3-af4e-0ed2b54fb214/file", "schema": "/v2/schemas/image"}"#;
        assert_eq!(body, sample);
    }
}

//! The image record and its parts as the domain sees them: [`Image`] (one row of `images` plus
//! its custom properties and tags), [`Member`], and the typed requests the record operations take
//! ([`NewImage`], [`Change`]). Also the limits and value rules Glance's JSON schema enforces
//! (lengths, enums, counts), so every caller of the domain — the Glance API, Nova snapshots,
//! replication — gets the same checks. Pure data: no I/O, nothing to recover after a crash.

use chrono::{DateTime, Utc};
use glimpse_types::{CONTAINER_FORMATS, DISK_FORMATS, ImageStatus, Visibility};

use crate::error::{Error, Result};

/// Most custom properties one image may carry (Glance's `image_property_quota`).
pub const MAX_PROPERTIES: usize = 128;
/// Most tags one image may carry (Glance's `image_tag_quota`).
pub const MAX_TAGS: usize = 128;
/// Most members one image may have (Glance's `image_member_quota`).
pub const MAX_MEMBERS: usize = 128;
/// Longest name, tag, owner and custom property key.
pub const MAX_STRING: usize = 255;
/// The hash algorithm behind `os_hash_value` (Glance's default `hashing_algorithm`).
pub const HASH_ALGO: &str = "sha512";

/// One image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub owner: String,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    /// Where the bytes are in the region's blob store; `None` until an upload is published.
    pub blob_key: Option<String>,
    /// How the bytes are sealed at rest (hidden columns no API shows); `None` for plain images.
    pub sealing: Option<Sealing>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Custom properties in the order they were first set.
    pub properties: Vec<(String, String)>,
    /// Tags in the order they were added.
    pub tags: Vec<String>,
}

impl Image {
    /// A `queued`, private record with no name, formats, data, properties or tags yet: what
    /// [`super::records::create`] fills in from the request.
    pub fn queued(id: String, owner: String, now: DateTime<Utc>) -> Image {
        Image {
            id,
            name: None,
            owner,
            status: ImageStatus::Queued,
            visibility: Visibility::Private,
            protected: false,
            os_hidden: false,
            disk_format: None,
            container_format: None,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: 0,
            min_ram: 0,
            blob_key: None,
            sealing: None,
            created_at: now,
            updated_at: now,
            properties: vec![],
            tags: vec![],
        }
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How an encrypted image's bytes are sealed (see docs/ims.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealing {
    pub cmk_id: String,
    /// The image's data key wrapped by the customer master key, hex.
    pub wrapped_data_key: String,
}

/// A membership's status (`pending` until the member project accepts or rejects it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<MemberStatus> {
        [
            MemberStatus::Pending,
            MemberStatus::Accepted,
            MemberStatus::Rejected,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// One project an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a new image record starts with. Defaults are Glance's (`visibility` shared, owner the
/// caller's project).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewImage {
    /// Client-chosen id (a UUID); a fresh one when `None`.
    pub id: Option<String>,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub visibility: Option<Visibility>,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub properties: Vec<(String, String)>,
    pub tags: Vec<String>,
}

/// A base attribute a change may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Name(Option<String>),
    Visibility(Visibility),
    Protected(bool),
    OsHidden(bool),
    MinDisk(i64),
    MinRam(i64),
    DiskFormat(Option<String>),
    ContainerFormat(Option<String>),
    Owner(Option<String>),
    Tags(Vec<String>),
}

/// One step of an image update (a JSON-patch operation, already validated in shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `add`/`replace` of a base attribute.
    Set(Attr),
    /// `add` of a custom property; `strict` (the v2.0 dialect) refuses an existing one (409).
    AddProperty {
        name: String,
        value: String,
        strict: bool,
    },
    /// `replace` of a custom property; it must exist (409 otherwise).
    ReplaceProperty { name: String, value: String },
    /// `remove` of a custom property; it must exist (409 otherwise).
    RemoveProperty { name: String },
    /// `remove` of a base attribute: always 403.
    RemoveBase { name: String },
    /// A v2.0-dialect `add` of a base attribute: 409, since base attributes always exist.
    AddExistingBase { name: String },
}

/// Checks a name, tag, owner or property key length (≤ 255 characters).
pub fn check_len(what: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_STRING {
        return Err(Error::bad_request(format!(
            "Provided object does not match schema 'image': '{what}' is too long (at most {MAX_STRING} characters)"
        )));
    }
    Ok(())
}

fn enum_error(field: &str, value: &str, allowed: &[&str]) -> Error {
    let list = allowed
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Error::bad_request(format!(
        "Provided object does not match schema 'image': '{value}' is not one of [None, {list}]\n\n\
         Failed validating 'enum' in schema['properties']['{field}']"
    ))
}

/// Checks `disk_format` against Glance's default list.
pub fn check_disk_format(v: &str) -> Result<()> {
    if DISK_FORMATS.contains(&v) {
        Ok(())
    } else {
        Err(enum_error("disk_format", v, &DISK_FORMATS))
    }
}

/// Checks `container_format` against Glance's default list.
pub fn check_container_format(v: &str) -> Result<()> {
    if CONTAINER_FORMATS.contains(&v) {
        Ok(())
    } else {
        Err(enum_error("container_format", v, &CONTAINER_FORMATS))
    }
}

/// Checks a `min_disk`/`min_ram` value.
pub fn check_min(field: &str, v: i64) -> Result<()> {
    if v < 0 {
        return Err(Error::bad_request(format!(
            "Invalid value '{v}' for parameter '{field}': Cannot be a negative value"
        )));
    }
    Ok(())
}

/// Checks an image id: a UUID, as Glance's schema pattern requires.
pub fn check_id(id: &str) -> Result<()> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Provided object does not match schema 'image': '{id}' does not match the UUID pattern\n\n\
             Failed validating 'pattern' in schema['properties']['id']"
        )))
    }
}

/// Checks a tag (≤ 255 characters).
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.chars().count() > MAX_STRING {
        return Err(Error::bad_request(format!(
            "Provided object does not match schema 'image': tag '{tag}' is too long (at most {MAX_STRING} characters)"
        )));
    }
    Ok(())
}

/// Names a client may not set as custom properties (Glance's reserved attributes, and the
/// `__system__*` encryption marks only an IMS copy sets, see docs/ims.md).
pub fn is_reserved_property(key: &str) -> bool {
    matches!(
        key,
        "location"
            | "locations"
            | "deleted"
            | "deleted_at"
            | "direct_url"
            | "self"
            | "file"
            | "schema"
            | "stores"
    ) || key.starts_with("os_glance")
        || key.starts_with("__system__")
}

/// Read-only base attributes (setting them is 403 "Attribute 'x' is read-only.").
pub fn is_read_only(key: &str) -> bool {
    matches!(
        key,
        "created_at"
            | "updated_at"
            | "status"
            | "checksum"
            | "size"
            | "virtual_size"
            | "direct_url"
            | "self"
            | "file"
            | "schema"
            | "id"
            | "os_hash_algo"
            | "os_hash_value"
            | "stores"
    )
}

/// Base attributes of an image (what JSON-patch paths name directly).
pub fn is_base_attribute(key: &str) -> bool {
    matches!(
        key,
        "id" | "name"
            | "status"
            | "visibility"
            | "protected"
            | "os_hidden"
            | "checksum"
            | "os_hash_algo"
            | "os_hash_value"
            | "owner"
            | "size"
            | "virtual_size"
            | "container_format"
            | "disk_format"
            | "created_at"
            | "updated_at"
            | "tags"
            | "min_ram"
            | "min_disk"
            | "locations"
            | "direct_url"
    )
}

/// Removes duplicate tags, keeping the first occurrence (tags are a set in Glance).
pub fn dedup_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_uuids() {
        assert!(check_id("24aa2105-1b4e-4de3-af4e-0ed2b54fb214").is_ok());
        assert!(check_id("24AA2105-1B4E-4DE3-AF4E-0ED2B54FB214").is_ok());
        assert!(check_id("not-a-uuid").is_err());
        assert!(check_id("24aa21051b4e4de3af4e0ed2b54fb214").is_err());
    }

    #[test]
    fn formats_follow_glance_lists() {
        assert!(check_disk_format("qcow2").is_ok());
        let e = check_disk_format("nope").unwrap_err();
        assert_eq!(e.kind, crate::Kind::BadRequest);
        assert!(e.message.contains("'nope' is not one of [None, 'ami'"));
        assert!(check_container_format("bare").is_ok());
        assert!(check_container_format("qcow2").is_err());
    }

    #[test]
    fn reserved_and_read_only_names() {
        assert!(is_reserved_property("os_glance_import_task"));
        assert!(is_reserved_property("locations"));
        assert!(!is_reserved_property("os_distro"));
        assert!(is_reserved_property("__system__encrypted"));
        assert!(is_read_only("status"));
        assert!(!is_read_only("name"));
    }

    #[test]
    fn lengths_count_characters() {
        assert!(check_len("name", &"é".repeat(255)).is_ok());
        assert!(check_len("name", &"a".repeat(256)).is_err());
        assert!(check_tag(&"t".repeat(256)).is_err());
        assert!(check_min("min_disk", -1).is_err());
    }

    #[test]
    fn tags_dedup_in_order() {
        let t = dedup_tags(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(t, vec!["b".to_string(), "a".to_string()]);
    }
}

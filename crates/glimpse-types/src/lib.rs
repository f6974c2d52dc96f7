//! Glimpse's shared vocabulary: the enums and small value types every layer speaks
//! (image status, visibility, roles) and the two timestamp formats OpenStack clients parse.
//! This crate does no I/O and knows no framework; it only names things.
//!
//! The wire modules ([`keystone`], [`glance`], [`replicator`], [`ims`], [`kms`], [`headers`])
//! are the bodies and headers the API serves and the clients (`glimpse-client`, the CLI, other
//! regions, the tests) send and read: a field is named once, here.

pub mod glance;
pub mod headers;
pub mod ims;
pub mod keystone;
pub mod kms;
pub mod replicator;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};

/// The current time, truncated to microseconds (what the databases keep).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Keystone's token time format: `2026-11-22T07:02:15.000000Z`. Tempest parses it with
/// `strptime`, so the six fraction digits and the literal `Z` are part of the contract.
pub fn keystone_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Glance's record time format: `2026-11-22T07:02:15Z`.
pub fn glance_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The storage format of timestamps in both databases: fixed width, so text order is time order.
pub fn db_time(t: DateTime<Utc>) -> String {
    keystone_time(t)
}

/// Parses [`db_time`] (and any RFC 3339 time).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A new random identifier in Keystone's style: 32 lower-case hex digits.
pub fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new random identifier in Glance's style: a hyphenated UUID.
pub fn uuid_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Roles Glimpse's policies know. Admin implies member, member implies reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    Reader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Member, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Reader => "reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The roles this one implies, itself first (Keystone's implied roles after bootstrap).
    pub fn implied(self) -> &'static [Role] {
        match self {
            Role::Admin => &[Role::Admin, Role::Member, Role::Reader],
            Role::Member => &[Role::Member, Role::Reader],
            Role::Reader => &[Role::Reader],
        }
    }
}

/// The variant of a field-less enum whose serde name (its `as_str`) is `s`.
fn by_name<T: DeserializeOwned>(s: &str) -> Option<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(s)).ok()
}

/// Glance image status (`doc/source/user/statuses.rst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    Queued,
    Saving,
    Uploading,
    Importing,
    Active,
    Deactivated,
    Killed,
    Deleted,
    PendingDelete,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Saving => "saving",
            ImageStatus::Uploading => "uploading",
            ImageStatus::Importing => "importing",
            ImageStatus::Active => "active",
            ImageStatus::Deactivated => "deactivated",
            ImageStatus::Killed => "killed",
            ImageStatus::Deleted => "deleted",
            ImageStatus::PendingDelete => "pending_delete",
        }
    }

    pub fn parse(s: &str) -> Option<ImageStatus> {
        by_name(s)
    }
}

/// Glance image visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Community,
    Shared,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Community => "community",
            Visibility::Shared => "shared",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        by_name(s)
    }
}

/// Glance's default `container_formats`.
pub const CONTAINER_FORMATS: [&str; 8] = [
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// Glance's default `disk_formats`.
pub const DISK_FORMATS: [&str; 11] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_visibilities_parse_from_their_names_only() {
        let statuses = "queued saving uploading importing active deactivated killed deleted";
        for name in statuses.split(' ').chain(["pending_delete"]) {
            assert_eq!(
                ImageStatus::parse(name).map(ImageStatus::as_str),
                Some(name)
            );
        }
        for name in ["public", "community", "shared", "private"] {
            assert_eq!(Visibility::parse(name).map(Visibility::as_str), Some(name));
        }
        assert_eq!(ImageStatus::parse("Active"), None);
        assert_eq!(ImageStatus::parse(""), None);
        assert_eq!(Visibility::parse("hidden"), None);
    }

    #[test]
    fn keystone_time_has_six_fraction_digits_and_z() {
        let t = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        assert_eq!(keystone_time(t), "2026-09-21T14:13:20.000000Z");
        assert_eq!(glance_time(t), "2026-09-21T14:13:20Z");
        assert_eq!(parse_time(&keystone_time(t)), Some(t));
    }

    #[test]
    fn roles_imply_downwards() {
        assert!(Role::Admin.implied().contains(&Role::Reader));
        assert!(!Role::Reader.implied().contains(&Role::Member));
        assert_eq!(Role::parse("member"), Some(Role::Member));
        assert_eq!(Role::parse("Member"), None);
    }
}

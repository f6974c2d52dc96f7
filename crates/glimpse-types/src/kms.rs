//! The key manager's wire vocabulary (Huawei KMS `v1.0/{project}/kms/{action}`), shared by the
//! API that renders it and the CLI that reads it. Fields are declared in alphabetical order:
//! that is the order the API has always written them in.

use serde::{Deserialize, Serialize};

/// Every field of a key's `key_info` / `key_details` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyDetails {
    /// Milliseconds since the epoch, as a string.
    pub creation_date: String,
    pub default_key_flag: String,
    pub domain_id: String,
    pub expiration_time: String,
    pub key_alias: String,
    pub key_description: String,
    pub key_id: String,
    pub key_rotation_enabled: String,
    pub key_spec: String,
    /// `"2"` enabled, `"3"` disabled, `"4"` pending deletion.
    pub key_state: String,
    pub key_type: String,
    pub key_usage: String,
    pub origin: String,
    pub realm: String,
    /// Milliseconds since the epoch as a string, or empty.
    pub scheduled_deletion_date: String,
    pub sys_enterprise_project_id: String,
}

/// `{"key_info": …}`: what create, describe, enable and disable answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo<T> {
    pub key_info: T,
}

/// The short key reference create answers in `key_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub domain_id: String,
    pub key_id: String,
}

/// A key's new state: what enable, disable (in `key_info`) and the deletion actions answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub key_id: String,
    pub key_state: String,
}

/// What `list-keys` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub key_details: Vec<KeyDetails>,
    pub keys: Vec<String>,
    pub next_marker: String,
    pub total: usize,
    /// `"true"` or `"false"`.
    pub truncated: String,
}

/// The word for a `key_state` code, with the code: `2 (enabled)`.
pub fn state_word(s: &str) -> String {
    let w = match s {
        "2" => "enabled",
        "3" => "disabled",
        "4" => "pending deletion",
        _ => "unknown",
    };
    format!("{s} ({w})")
}

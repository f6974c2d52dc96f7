//! The key manager (Huawei KMS `v1.0/{project}/kms/{action}`) of one region.

use glimpse_types::kms::{Created, KeyDetails, KeyInfo, KeyList, KeyState};
use reqwest::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::fault::{Fault, json};

/// The KMS API of one region and project, called with one token.
#[derive(Clone, Debug)]
pub struct Kms {
    http: Client,
    /// `…/kms/v1.0/{project}/kms`.
    base: String,
    token: String,
}

impl Kms {
    /// `endpoint` is the catalog's `kms` URL; `project` the token's project.
    pub fn new(http: Client, endpoint: &str, project: &str, token: &str) -> Kms {
        Kms {
            http,
            base: format!("{}/v1.0/{project}/kms", endpoint.trim_end_matches('/')),
            token: token.to_string(),
        }
    }

    /// Calls one action with a JSON body.
    pub async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        body: &impl Serialize,
    ) -> Result<T, Fault> {
        let rb = self
            .http
            .post(format!("{}/{action}", self.base))
            .header("x-auth-token", &self.token)
            .json(body);
        json(rb, action).await
    }

    /// `create-key`.
    pub async fn create(&self, alias: &str, description: &str) -> Result<Created, Fault> {
        let k: KeyInfo<Created> = self
            .call(
                "create-key",
                &json!({"key_alias": alias, "key_description": description}),
            )
            .await?;
        Ok(k.key_info)
    }

    /// `list-keys`, optionally of one `key_state`.
    pub async fn list(&self, state: Option<&str>) -> Result<KeyList, Fault> {
        let mut body = json!({});
        if let Some(s) = state {
            body["key_state"] = json!(s);
        }
        self.call("list-keys", &body).await
    }

    /// `describe-key`.
    pub async fn describe(&self, key_id: &str) -> Result<KeyDetails, Fault> {
        let k: KeyInfo<KeyDetails> = self.call("describe-key", &key(key_id)).await?;
        Ok(k.key_info)
    }

    /// `enable-key` or `disable-key`.
    pub async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<KeyState, Fault> {
        let action = if enabled { "enable-key" } else { "disable-key" };
        let k: KeyInfo<KeyState> = self.call(action, &key(key_id)).await?;
        Ok(k.key_info)
    }

    /// `schedule-key-deletion` after `days`.
    pub async fn schedule_deletion(&self, key_id: &str, days: u32) -> Result<KeyState, Fault> {
        let body = json!({"key_id": key_id, "pending_days": days.to_string()});
        self.call("schedule-key-deletion", &body).await
    }

    /// `cancel-key-deletion`.
    pub async fn cancel_deletion(&self, key_id: &str) -> Result<KeyState, Fault> {
        self.call("cancel-key-deletion", &key(key_id)).await
    }
}

fn key(id: &str) -> Value {
    json!({ "key_id": id })
}

//! The service account a region uses to act across regions (replication jobs): it logs in to
//! identity over HTTP like any client, keeps its token until shortly before expiry, and reads
//! the catalog from the token to find other regions' endpoints. Regions share nothing but HTTP.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// Credentials and a cached token.
pub struct ServiceAccount {
    pub identity_url: String,
    pub user: String,
    password: Password,
    pub project: String,
    pub http: reqwest::Client,
    cached: Mutex<Option<ServiceToken>>,
}

/// Where the password comes from: the configuration, or a file bootstrap writes (read at
/// each login, so a process can bootstrap the account after opening its regions).
#[derive(Debug, Clone)]
pub enum Password {
    Fixed(String),
    File(std::path::PathBuf),
}

impl Password {
    fn read(&self) -> Result<String> {
        match self {
            Password::Fixed(p) => Ok(p.clone()),
            Password::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    Error::unavailable(format!("service password file {}: {e}", path.display()))
                }),
        }
    }
}

/// A service token and the catalog that came with it.
#[derive(Clone, Debug)]
pub struct ServiceToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub catalog: Value,
}

impl ServiceToken {
    /// Public URL of service `kind` (e.g. `image`) in `region`, from the catalog.
    pub fn endpoint(&self, kind: &str, region: &str) -> Option<String> {
        self.catalog
            .as_array()?
            .iter()
            .filter(|s| s["type"] == kind)
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["interface"] == "public" && (e["region_id"] == region || e["region"] == region)
            })
            .and_then(|e| {
                e["url"]
                    .as_str()
                    .map(|u| u.trim_end_matches('/').to_string())
            })
    }
}

impl ServiceAccount {
    /// Whether `caller` acts as the regions' service account: a role `admin` or `service`
    /// in the service project (what replication's cross-region calls present).
    pub fn recognises(&self, caller: &crate::auth::Caller) -> bool {
        caller.project_name.as_deref() == Some(self.project.as_str())
            && caller.roles.iter().any(|r| r == "admin" || r == "service")
    }

    pub fn new(
        identity_url: &str,
        user: &str,
        password: Password,
        project: &str,
    ) -> ServiceAccount {
        ServiceAccount {
            identity_url: identity_url.trim_end_matches('/').to_string(),
            user: user.into(),
            password,
            project: project.into(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            cached: Mutex::new(None),
        }
    }

    /// An account that cannot log in (unit tests of a lone region, which never call out).
    pub fn none() -> ServiceAccount {
        ServiceAccount::new(
            "http://127.0.0.1:9/v3",
            "",
            Password::Fixed(String::new()),
            "",
        )
    }

    /// A valid service token (renewed when less than five minutes remain).
    pub async fn token(&self) -> Result<ServiceToken> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && t.expires_at - Utc::now() > chrono::Duration::minutes(5)
        {
            return Ok(t.clone());
        }
        let password = self.password.read()?;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": self.project, "domain": {"id": "default"}}}}});
        let resp = self
            .http
            .post(format!("{}/auth/tokens", self.identity_url))
            .timeout(Duration::from_secs(15))
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::unavailable(format!("identity service unreachable: {e}")))?;
        if resp.status().as_u16() != 201 {
            return Err(Error::unavailable(format!(
                "the service account cannot log in (identity answered {})",
                resp.status()
            )));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::unavailable("identity answered without a token"))?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| Error::unavailable(format!("bad identity answer: {e}")))?;
        let expires_at = v["token"]["expires_at"]
            .as_str()
            .and_then(glimpse_types::parse_time)
            .ok_or_else(|| Error::unavailable("identity answered a token without expiry"))?;
        let t = ServiceToken {
            token,
            expires_at,
            catalog: v["token"]["catalog"].clone(),
        };
        *cached = Some(t.clone());
        Ok(t)
    }

    /// Drops the cached token (after a 401, say).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

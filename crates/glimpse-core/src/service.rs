//! The service account a region uses to act across regions (replication jobs): it logs in to
//! identity over HTTP like any client, keeps its token until shortly before expiry, and reads
//! the catalog from the token to find other regions' endpoints. Regions share nothing but HTTP.

use std::time::Duration;

use chrono::{DateTime, Utc};
use glimpse_client::{Fault, Keystone};
use glimpse_types::keystone::{Catalog, Domain, Named, PasswordAuth};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// Credentials and a cached token.
pub struct ServiceAccount {
    keystone: Keystone,
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
    /// The configured `identity.service_password`, else the file bootstrap writes into the
    /// data dir.
    pub fn of(config: &crate::config::Config) -> Password {
        if config.identity.service_password.is_empty() {
            Password::File(config.data_dir.join("service-password"))
        } else {
            Password::Fixed(config.identity.service_password.clone())
        }
    }

    pub fn read(&self) -> Result<String> {
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
    /// When [`ServiceAccount::token`] logs in again.
    pub renew_at: DateTime<Utc>,
    pub catalog: Catalog,
}

impl ServiceToken {
    /// Public URL of service `kind` (e.g. `image`) in `region`, from the catalog.
    pub fn endpoint(&self, kind: &str, region: &str) -> Option<String> {
        self.catalog.endpoint(kind, Some(region), "public")
    }
}

impl ServiceAccount {
    /// Whether `caller` acts as the regions' service account: a role `admin` or `service`
    /// in the service project (what replication's cross-region calls present).
    pub fn recognises(&self, caller: &crate::auth::Caller) -> bool {
        caller.project_name.as_deref() == Some(self.project.as_str())
            && (caller.is_admin() || caller.is_service())
    }

    pub fn new(
        identity_url: &str,
        user: &str,
        password: Password,
        project: &str,
    ) -> ServiceAccount {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        ServiceAccount {
            keystone: Keystone::new(http.clone(), identity_url),
            user: user.into(),
            password,
            project: project.into(),
            http,
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

    /// A valid service token, renewed when less than a quarter of its life (at most five
    /// minutes) remains.
    pub async fn token(&self) -> Result<ServiceToken> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && Utc::now() < t.renew_at
        {
            return Ok(t.clone());
        }
        let password = self.password.read()?;
        let default = || Domain::of(Some("default"), None);
        let named = |name: &str| Named::by_id_or_name(None, Some(name), default());
        let (Some(user), Some(project)) = (named(&self.user), named(&self.project)) else {
            return Err(Error::unavailable(
                "the service account has no user or project name",
            ));
        };
        let auth = PasswordAuth::new(user, password, project);
        let login = self.keystone.login(&auth).await.map_err(|f| match f {
            Fault::Down(m) => Error::unavailable(format!("identity service unreachable: {m}")),
            refused => Error::unavailable(format!(
                "the service account cannot log in (identity answered {refused})"
            )),
        })?;
        let expires_at = glimpse_types::parse_time(&login.body.expires_at)
            .ok_or_else(|| Error::unavailable("identity answered a token without expiry"))?;
        let margin = ((expires_at - Utc::now()) / 4).min(chrono::Duration::minutes(5));
        let t = ServiceToken {
            token: login.token,
            expires_at,
            renew_at: expires_at - margin,
            catalog: login.body.catalog,
        };
        *cached = Some(t.clone());
        Ok(t)
    }

    /// The identity API the account logs in to.
    pub fn keystone(&self) -> &Keystone {
        &self.keystone
    }

    /// Drops the cached token (after a 401, say).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

//! Who is calling: a [`Caller`] is what a validated token says (user, project, roles), and a
//! [`TokenValidator`] turns a token into one. Regions never trust client headers for identity;
//! they validate every token, either in-process ([`crate::identity::Identity`] implements the
//! trait; revocation is seen at once) or against a remote identity over HTTP
//! ([`RemoteValidator`], with a short bounded cache).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use glimpse_client::{Fault, Keystone};
use glimpse_types::Role;
use glimpse_types::keystone::Token;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The identity behind a validated token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub user_name: String,
    /// `None` for an unscoped token.
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    /// Role names, implied roles included (admin ⇒ member ⇒ reader).
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.as_str())
    }
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }
    pub fn is_member(&self) -> bool {
        self.has_role(Role::Member)
    }
    pub fn is_reader(&self) -> bool {
        self.has_role(Role::Reader)
    }
    /// The project of a project-scoped token; region APIs refuse unscoped tokens with 403.
    pub fn project(&self) -> Result<&str> {
        self.project_id
            .as_deref()
            .ok_or_else(|| Error::forbidden("This API needs a project-scoped token."))
    }
}

/// Turns a token into a [`Caller`], or fails with 401.
#[async_trait]
pub trait TokenValidator: Send + Sync {
    async fn validate(&self, token: &str) -> Result<Caller>;
}

/// Validates tokens with a remote identity's `GET /v3/auth/tokens` (the token presents itself,
/// as Keystone allows) and caches answers for at most `ttl` and never past the token's expiry.
pub struct RemoteValidator {
    keystone: Keystone,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Caller, Instant)>>,
}

const CACHE_MAX: usize = 10_000;

impl RemoteValidator {
    /// `identity_v3` is the identity's `/v3` URL.
    pub fn new(identity_v3: &str, ttl: Duration) -> RemoteValidator {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        RemoteValidator {
            keystone: Keystone::new(http, identity_v3),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, token: &str) -> Option<Caller> {
        let cache = self.cache.lock().ok()?;
        let (caller, at) = cache.get(token)?;
        (at.elapsed() < self.ttl && caller.expires_at > Utc::now()).then(|| caller.clone())
    }
}

#[async_trait]
impl TokenValidator for RemoteValidator {
    async fn validate(&self, token: &str) -> Result<Caller> {
        if let Some(c) = self.cached(token) {
            return Ok(c);
        }
        let body = match self.keystone.validate(token, token).await {
            Ok(t) => t,
            Err(Fault::Refused {
                status: 401 | 403 | 404,
                ..
            }) => {
                return Err(Error::unauthorized(
                    "The request you have made requires authentication.",
                ));
            }
            Err(f) => {
                return Err(Error::unavailable(format!(
                    "identity service could not validate a token: {f}"
                )));
            }
        };
        let caller = Caller::from_token(&body)
            .ok_or_else(|| Error::unavailable("identity answered a token body we cannot read"))?;
        if self.ttl > Duration::ZERO
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(token.to_string(), (caller.clone(), Instant::now()));
        }
        Ok(caller)
    }
}

impl Caller {
    /// What a Keystone v3 token says (`None` without a readable expiry).
    pub fn from_token(t: &Token) -> Option<Caller> {
        Some(Caller {
            user_id: t.user.id.clone(),
            user_name: t.user.name.clone(),
            project_id: t.project.as_ref().map(|p| p.id.clone()),
            project_name: t.project.as_ref().map(|p| p.name.clone()),
            roles: t.roles.iter().map(|r| r.name.clone()).collect(),
            expires_at: glimpse_types::parse_time(&t.expires_at)?,
        })
    }
}

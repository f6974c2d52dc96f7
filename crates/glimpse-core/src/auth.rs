//! Who is calling: a [`Caller`] is what a validated token says (user, project, roles), and a
//! [`TokenValidator`] turns a token into one. Regions never trust client headers for identity;
//! they validate every token, either in-process ([`crate::identity::Identity`] implements the
//! trait; revocation is seen at once) or against a remote identity over HTTP
//! ([`RemoteValidator`]: Glimpse's identity in another process, or an existing Keystone),
//! as keystonemiddleware does: the region's own service token as `X-Auth-Token`, the
//! caller's as `X-Subject-Token`, answers cached for a short bounded time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use glimpse_client::Fault;
use glimpse_types::Role;
use glimpse_types::keystone::Token;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::service::ServiceAccount;

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
    /// Holds [`SERVICE_ROLE`]: may vouch for a user's expired token (`X-Service-Token`) and
    /// validate other users' tokens.
    pub fn is_service(&self) -> bool {
        self.roles.iter().any(|r| r == SERVICE_ROLE)
    }
    /// The project of a project-scoped token; region APIs refuse unscoped tokens with 403.
    pub fn project(&self) -> Result<&str> {
        self.project_id
            .as_deref()
            .ok_or_else(|| Error::forbidden("This API needs a project-scoped token."))
    }
}

/// The role a service token must carry (keystonemiddleware's `service_token_roles`).
pub const SERVICE_ROLE: &str = "service";

/// Turns a token into a [`Caller`], or fails with 401.
#[async_trait]
pub trait TokenValidator: Send + Sync {
    async fn validate(&self, token: &str) -> Result<Caller>;

    /// The same, but a token past its expiry (not revoked, not too old) is still accepted:
    /// what keystonemiddleware asks (`allow_expired`) when a valid service token comes with
    /// the request, so that work a service started for a user outlives the user's token.
    async fn validate_allow_expired(&self, token: &str) -> Result<Caller> {
        self.validate(token).await
    }
}

/// Validates tokens with a remote identity's `GET /v3/auth/tokens`, presenting the region's
/// service token as `X-Auth-Token` (a refused service token is renewed once), and caches
/// answers for at most `ttl` and never past the token's expiry.
pub struct RemoteValidator {
    service: Arc<ServiceAccount>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Caller, Instant)>>,
    /// One validation in flight per token: when a busy token's entry expires, the requests
    /// that carry it wait for one answer instead of each asking identity (which, with
    /// 32 connections on one token, stalled them all for seconds every cache period).
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

const CACHE_MAX: usize = 10_000;

fn poisoned() -> Error {
    Error::internal("the token cache lock is poisoned")
}

impl RemoteValidator {
    pub fn new(service: Arc<ServiceAccount>, ttl: Duration) -> RemoteValidator {
        RemoteValidator {
            service,
            ttl,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, token: &str, allow_expired: bool) -> Option<Caller> {
        let cache = self.cache.lock().ok()?;
        let (caller, at) = cache.get(token)?;
        (at.elapsed() < self.ttl && (allow_expired || caller.expires_at > Utc::now()))
            .then(|| caller.clone())
    }

    /// The remote answer, or 401, or 503 with `Retry-After` when identity cannot answer.
    async fn remote(&self, token: &str, allow_expired: bool) -> Result<Caller> {
        if let Some(c) = self.cached(token, allow_expired) {
            return Ok(c);
        }
        let gate = {
            let mut inflight = self.inflight.lock().map_err(|_| poisoned())?;
            if inflight.len() >= CACHE_MAX {
                inflight.retain(|_, g| Arc::strong_count(g) > 1);
            }
            inflight.entry(token.to_string()).or_default().clone()
        };
        let _turn = gate.lock().await;
        // Whoever went first may have answered for us.
        if let Some(c) = self.cached(token, allow_expired) {
            return Ok(c);
        }
        let answer = self.ask(token, allow_expired).await;
        if let Ok(mut inflight) = self.inflight.lock() {
            inflight.remove(token);
        }
        answer.map_err(|e| match e.kind {
            crate::Kind::Unavailable if e.retry_after.is_none() => {
                tracing::warn!(error = %e, "token validation: identity unavailable");
                e.retry_after(crate::error::BACKEND_RETRY_AFTER)
            }
            _ => e,
        })
    }

    async fn ask(&self, token: &str, allow_expired: bool) -> Result<Caller> {
        let keystone = self.service.keystone();
        let mut renewed = false;
        let body = loop {
            let service = self.service.token().await?;
            match keystone
                .validate(&service.token, token, allow_expired)
                .await
            {
                Ok(t) => break t,
                // Keystone: 404 for a subject token that is not (or no longer) valid.
                Err(Fault::Refused { status: 404, .. }) => {
                    return Err(Error::unauthorized(
                        "The request you have made requires authentication.",
                    ));
                }
                // Our own token refused (expired, revoked, or the role taken away): log in
                // again once, then give up as unavailable, not as the caller's fault.
                Err(Fault::Refused {
                    status: status @ (401 | 403),
                    ..
                }) => {
                    self.service.forget().await;
                    if renewed {
                        return Err(Error::unavailable(format!(
                            "identity refused the region's service token ({status}) when \
                             validating a token"
                        )));
                    }
                    renewed = true;
                }
                Err(f) => {
                    return Err(Error::unavailable(format!(
                        "identity service could not validate a token: {f}"
                    )));
                }
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

#[async_trait]
impl TokenValidator for RemoteValidator {
    async fn validate(&self, token: &str) -> Result<Caller> {
        // An expired token is neither answered from the cache nor by identity (404).
        self.remote(token, false).await
    }

    async fn validate_allow_expired(&self, token: &str) -> Result<Caller> {
        self.remote(token, true).await
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

//! Identity: a Keystone v3 subset (projects with a home region, users with argon2 password
//! hashes, roles admin ⇒ member ⇒ reader, role assignments, regions, tokens and the catalog).
//! The identity database is its own; regions reach identity only through tokens
//! ([`crate::auth::TokenValidator`]).
//!
//! Submodules: [`tokens`] (issue, validate, revoke), [`auth_request`] (the typed token request; its body is read in `glimpse-api`),
//! [`catalog`] (derived from configuration), [`projects`], [`users`], [`roles`] (and
//! assignments), [`regions`], [`policy`], [`password`], [`cache`], [`bootstrap`].
//!
//! Crash behaviour: all state is in the database, every change is one statement or one
//! transaction; the in-memory validation cache is rebuilt on demand.

pub mod auth_request;
pub mod bootstrap;
pub mod cache;
pub mod catalog;
pub mod model;
pub mod password;
pub mod policy;
pub mod projects;
pub mod regions;
pub mod roles;
mod table;
pub mod tokens;
pub mod users;

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use async_trait::async_trait;

pub use auth_request::AuthRequest;
pub use model::{
    Assignment, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, ListFilter, Project, ProjectFields,
    RegionRecord, RoleRecord, User, UserFields,
};
pub use roles::AssignmentFilter;
pub use tokens::{TokenInfo, TokenProject, TokenRole};

use crate::auth::{Caller, TokenValidator};
use crate::db::Db;
use crate::error::Result;

/// One region's entry in the catalog.
#[derive(Debug, Clone)]
pub struct CatalogRegion {
    pub name: String,
    /// The region's public base URL, e.g. `http://127.0.0.1:5000/region-one`.
    pub url: String,
    /// What it serves (`[[regions]] services`).
    pub services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub token_ttl: Duration,
    /// The public `/v3` URL of this identity service.
    pub identity_url: String,
    pub regions: Vec<CatalogRegion>,
    /// How long a validation may be answered from memory (bounds staleness across several
    /// identity processes on one database; in-process changes invalidate at once). Zero: off.
    pub validation_cache: Duration,
    pub lockout: Lockout,
    /// argon2 parameters and how many password checks run at once.
    pub passwords: password::Settings,
}

/// Keystone's account lockout (`[security_compliance] lockout_failure_attempts` and
/// `lockout_duration` there; `[identity]` here).
#[derive(Debug, Clone, Default)]
pub struct Lockout {
    /// Consecutive failed password authentications that lock a user; 0: never locked.
    pub attempts: u32,
    /// How long after the last failure the lock lasts; `None`: for good.
    pub duration: Option<Duration>,
    /// A user name never locked (the regions' service account, so that no tenant can stop
    /// replication by guessing its password wrong).
    pub exempt_user: Option<String>,
}

pub struct Identity {
    pub db: Db,
    pub settings: IdentitySettings,
    cache: cache::ValidationCache,
    passwords: password::Passwords,
    /// Unix seconds of the last prune of expired tokens.
    last_prune: AtomicI64,
}

impl Identity {
    pub async fn open(db: Db, settings: IdentitySettings) -> anyhow::Result<Identity> {
        Ok(Identity {
            db,
            cache: cache::ValidationCache::new(settings.validation_cache),
            passwords: password::Passwords::new(&settings.passwords)?,
            settings,
            last_prune: AtomicI64::new(0),
        })
    }

    /// The catalog for a token scoped to `project_id` (or the admin view with `None`).
    pub fn catalog(&self, project_id: Option<&str>) -> Vec<catalog::Service> {
        catalog::build(
            &self.settings.identity_url,
            &self.settings.regions,
            project_id,
        )
    }
}

#[async_trait]
impl TokenValidator for Identity {
    async fn validate(&self, token: &str) -> Result<Caller> {
        Ok(self.token_info(token).await?.caller())
    }

    async fn validate_allow_expired(&self, token: &str) -> Result<Caller> {
        Ok(self.token_info_allow_expired(token).await?.caller())
    }
}

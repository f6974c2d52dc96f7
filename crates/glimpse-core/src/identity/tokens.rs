//! Tokens: issue (password or token method, project-scoped or unscoped), validate, revoke.
//!
//! A token is 64 random hex characters given to the client once; the `tokens` table keeps only
//! its sha256 with the user, project, methods, audit ids, issue and expiry times and a revoked
//! flag. Validation re-reads the user, the project and the role assignments every time it
//! misses the cache, so disabling or deleting a user or project, removing a role or changing
//! a password takes effect at once. Rescoping keeps the original expiry. Expired rows are
//! pruned now and then when tokens are issued.
//!
//! Crash behaviour: a token exists once its row is committed; a crash before that leaves no
//! trace and the client simply gets no token.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use glimpse_types::{Role, db_time, now};
use sqlx::Row;

use super::auth_request::{AuthMethod, AuthRequest, ProjectRef, Scope, UserRef};
use super::model::{DEFAULT_DOMAIN_ID, Project, User};
use super::{Identity, password};
use crate::auth::Caller;
use crate::db::flag;
use crate::db::rows::{json, lenient_time, time};
use crate::error::{Error, Result};

/// Prune expired token rows at most this often (seconds).
const PRUNE_EVERY_SECS: i64 = 60;

/// How long past its expiry a token may still be validated with `allow_expired` (Keystone's
/// `[token] allow_expired_window` default, two days); rows are pruned after it.
pub const ALLOW_EXPIRED_WINDOW: chrono::Duration = chrono::Duration::days(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProject {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRole {
    pub id: String,
    pub name: String,
}

/// What a valid token stands for, as of its last validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub user_id: String,
    pub user_name: String,
    pub project: Option<TokenProject>,
    /// Effective roles on the project (implied roles included); empty when unscoped.
    pub roles: Vec<TokenRole>,
    pub methods: Vec<String>,
    pub audit_ids: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl TokenInfo {
    pub fn caller(&self) -> Caller {
        Caller {
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            project_id: self.project.as_ref().map(|p| p.id.clone()),
            project_name: self.project.as_ref().map(|p| p.name.clone()),
            roles: self.roles.iter().map(|r| r.name.clone()).collect(),
            expires_at: self.expires_at,
        }
    }
}

/// A user with what password authentication needs to know.
struct Credentials {
    user: User,
    hash: Option<String>,
    /// Consecutive failed password authentications, and when the last one was.
    failed: i64,
    failed_at: Option<DateTime<Utc>>,
}

pub(crate) fn unauthorized() -> Error {
    Error::unauthorized("The request you have made requires authentication.")
}

/// A user or project that exists and is enabled; otherwise the same bare 401 (a missing one is
/// not told apart from a disabled one), and other errors as they are.
fn enabled<T>(got: Result<T>, is_enabled: impl Fn(&T) -> bool) -> Result<T> {
    match got {
        Ok(x) if is_enabled(&x) => Ok(x),
        Ok(_) => Err(unauthorized()),
        Err(e) if e.kind == crate::Kind::NotFound => Err(unauthorized()),
        Err(e) => Err(e),
    }
}

impl Identity {
    /// Authenticates a `POST /v3/auth/tokens` request and issues a token. Every failure to
    /// authenticate or authorise the scope is the same 401, so nothing is revealed.
    pub async fn issue_token(&self, req: AuthRequest) -> Result<(String, Arc<TokenInfo>)> {
        self.prune_expired_tokens().await;
        let issued_at = now();
        let (user, methods, expires_at, audit_ids) = match req.method {
            AuthMethod::Password { user, password } => {
                let user = self.password_user(&user, &password).await?;
                let ttl = chrono::Duration::from_std(self.settings.token_ttl)
                    .map_err(|_| Error::internal("token TTL out of range"))?;
                let audit = vec![password::new_audit_id()];
                (user, vec!["password".to_string()], issued_at + ttl, audit)
            }
            AuthMethod::Token { id } => {
                let old = self.token_info(&id).await?;
                let user = self.enabled_user(&old.user_id).await?;
                let mut methods = old.methods.clone();
                if !methods.iter().any(|m| m == "token") {
                    methods.push("token".into());
                }
                let mut audit = vec![password::new_audit_id()];
                audit.extend(old.audit_ids.first().cloned());
                (user, methods, old.expires_at, audit)
            }
        };
        let project = match req.scope {
            Scope::Project(p) => {
                let project = self.scope_project(&p).await?;
                let roles = self.effective_roles(&user.id, &project.id).await?;
                if roles.is_empty() {
                    return Err(unauthorized());
                }
                Some((project, roles))
            }
            Scope::Default => self.default_scope(&user).await?,
            Scope::Unscoped => None,
            Scope::Unsupported(_) => return Err(unauthorized()),
        };
        let token = password::new_token();
        let (tp, roles) = match project {
            Some((p, roles)) => (
                Some(TokenProject {
                    id: p.id,
                    name: p.name,
                }),
                roles,
            ),
            None => (None, vec![]),
        };
        let info = TokenInfo {
            user_id: user.id,
            user_name: user.name,
            project: tp,
            roles,
            methods,
            audit_ids,
            issued_at,
            expires_at,
        };
        sqlx::query(
            "INSERT INTO tokens (hash, user_id, project_id, methods, audit_ids, issued_at, \
             expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(password::token_hash(&token))
        .bind(&info.user_id)
        .bind(info.project.as_ref().map(|p| p.id.clone()))
        .bind(serde_json::to_string(&info.methods).map_err(Error::internal)?)
        .bind(serde_json::to_string(&info.audit_ids).map_err(Error::internal)?)
        .bind(db_time(info.issued_at))
        .bind(db_time(info.expires_at))
        .bind(flag(false))
        .execute(&self.db.pool)
        .await?;
        Ok((token, Arc::new(info)))
    }

    /// What `token` stands for now; 401 when it is unknown, expired, revoked, or its user,
    /// project or roles no longer allow it.
    pub async fn token_info(&self, token: &str) -> Result<Arc<TokenInfo>> {
        self.token_info_within(token, false).await
    }

    /// [`Identity::token_info`], but a token expired less than [`ALLOW_EXPIRED_WINDOW`] ago
    /// is still answered (Keystone's `allow_expired`, asked with a service token).
    pub async fn token_info_allow_expired(&self, token: &str) -> Result<Arc<TokenInfo>> {
        self.token_info_within(token, true).await
    }

    async fn token_info_within(&self, token: &str, allow_expired: bool) -> Result<Arc<TokenInfo>> {
        let hash = password::token_hash(token);
        if let Some(info) = self.cache.get(&hash) {
            return Ok(info);
        }
        let revision = self.cache.revision();
        let row = sqlx::query(
            "SELECT user_id, project_id, methods, audit_ids, issued_at, expires_at, revoked \
             FROM tokens WHERE hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(unauthorized)?;
        if row.try_get::<i64, _>("revoked")? != 0 {
            return Err(unauthorized());
        }
        let (issued_at, expires_at) = (time(&row, "issued_at")?, time(&row, "expires_at")?);
        let oldest = if allow_expired {
            Utc::now() - ALLOW_EXPIRED_WINDOW
        } else {
            Utc::now()
        };
        if expires_at <= oldest {
            return Err(unauthorized());
        }
        let (methods, audit_ids): (Vec<String>, Vec<String>) =
            (json(&row, "methods")?, json(&row, "audit_ids")?);
        let user_id: String = row.try_get("user_id")?;
        let project_id: Option<String> = row.try_get("project_id")?;
        let user = self.enabled_user(&user_id).await?;
        let (project, roles) = match project_id {
            Some(pid) => {
                let p = self.enabled_project(&pid).await?;
                let roles = self.effective_roles(&user_id, &pid).await?;
                if roles.is_empty() {
                    return Err(unauthorized());
                }
                (
                    Some(TokenProject {
                        id: p.id,
                        name: p.name,
                    }),
                    roles,
                )
            }
            None => (None, vec![]),
        };
        let info = Arc::new(TokenInfo {
            user_id,
            user_name: user.name,
            project,
            roles,
            methods,
            audit_ids,
            issued_at,
            expires_at,
        });
        self.cache.put(hash, info.clone(), revision);
        Ok(info)
    }

    /// Revokes one token (`DELETE /v3/auth/tokens`); 404 when it is not a valid token.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        match self.token_info(token).await {
            Ok(_) => {}
            Err(e) if e.kind == crate::Kind::Unauthorized => {
                return Err(Error::not_found("Could not find token."));
            }
            Err(e) => return Err(e),
        }
        revoke_tokens(&self.db.pool, "hash", &password::token_hash(token)).await?;
        self.cache.bump();
        Ok(())
    }

    pub(crate) async fn revoke_project_tokens(&self, project_id: &str) -> Result<()> {
        revoke_tokens(&self.db.pool, "project_id", project_id).await
    }

    /// Deletes the rows of tokens expired more than [`ALLOW_EXPIRED_WINDOW`] ago, at most
    /// once a minute per process.
    async fn prune_expired_tokens(&self) {
        let now_secs = Utc::now().timestamp();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now_secs - last < PRUNE_EVERY_SECS
            || self
                .last_prune
                .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let r = sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
            .bind(db_time(now() - ALLOW_EXPIRED_WINDOW))
            .execute(&self.db.pool)
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "pruning expired tokens failed");
        }
    }

    /// The user a password names, if the password is right and the user enabled.
    /// The user a password authenticates, with Keystone's lockout: a locked user is refused
    /// before the password is checked (401 naming the lock, as Keystone's `AccountLocked`); a
    /// wrong password counts a failure; a right one clears the count. Unknown and disabled
    /// users are the plain 401.
    async fn password_user(&self, user: &UserRef, password: &str) -> Result<User> {
        let found = match user {
            UserRef::Id(id) => self.find_user_with_hash("id", id).await?,
            UserRef::Name { name, domain } if domain.is_default() => {
                self.find_user_with_hash("name", name).await?
            }
            UserRef::Name { .. } => None,
        };
        let Some(found) = found else {
            // Same work as for a real user, so timing does not tell who exists.
            self.passwords.verify(password, None).await?;
            return Err(unauthorized());
        };
        if self.locked(&found).await? {
            tracing::warn!(user = %found.user.id, "authentication refused: the account is locked");
            return Err(Error::unauthorized(format!(
                "The account is locked for user: {}.",
                found.user.id
            )));
        }
        let ok = self
            .passwords
            .verify(password, found.hash.as_deref())
            .await?;
        if !ok {
            if self.settings.lockout.attempts > 0 {
                self.record_failed_auth(&found.user.id).await?;
            }
            return Err(unauthorized());
        }
        if !found.user.enabled {
            return Err(unauthorized());
        }
        if found.failed > 0 {
            self.reset_failed_auth(&found.user.id).await?;
        }
        Ok(found.user)
    }

    /// Whether the lockout refuses this user now; an expired lock is cleared here.
    async fn locked(&self, found: &Credentials) -> Result<bool> {
        let rule = &self.settings.lockout;
        let exempt = rule.exempt_user.as_deref() == Some(found.user.name.as_str());
        if rule.attempts == 0 || exempt || found.failed < i64::from(rule.attempts) {
            return Ok(false);
        }
        let Some(duration) = rule.duration else {
            return Ok(true);
        };
        let until = found
            .failed_at
            .map(|at| at + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX));
        if until.is_some_and(|u| u > now()) {
            return Ok(true);
        }
        self.reset_failed_auth(&found.user.id).await?;
        Ok(false)
    }

    async fn find_user_with_hash(&self, column: &str, value: &str) -> Result<Option<Credentials>> {
        let sql = format!(
            "SELECT {}, password_hash, failed_auth_count, failed_auth_at FROM users \
             WHERE {column} = $1 AND domain_id = $2",
            super::model::USER_COLUMNS
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(DEFAULT_DOMAIN_ID)
            .fetch_optional(&self.db.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(Credentials {
                user: super::model::user_from_row(&row)?,
                hash: row.try_get("password_hash")?,
                failed: row.try_get("failed_auth_count")?,
                failed_at: lenient_time(&row, "failed_auth_at")?,
            })),
            None => Ok(None),
        }
    }

    async fn enabled_user(&self, id: &str) -> Result<User> {
        enabled(self.get_user(id).await, |u| u.enabled)
    }

    async fn enabled_project(&self, id: &str) -> Result<Project> {
        enabled(self.get_project(id).await, |p| p.enabled)
    }

    async fn scope_project(&self, p: &ProjectRef) -> Result<Project> {
        match p {
            ProjectRef::Id(id) => self.enabled_project(id).await,
            ProjectRef::Name { name, domain } if domain.is_default() => {
                match self.find_project_by_name(name).await? {
                    Some(p) if p.enabled => Ok(p),
                    _ => Err(unauthorized()),
                }
            }
            ProjectRef::Name { .. } => Err(unauthorized()),
        }
    }

    /// Keystone's rule for a request without scope: the user's default project when it is
    /// enabled and the user has a role there, else an unscoped token.
    async fn default_scope(&self, user: &User) -> Result<Option<(Project, Vec<TokenRole>)>> {
        let Some(pid) = &user.default_project_id else {
            return Ok(None);
        };
        let Ok(project) = self.enabled_project(pid).await else {
            return Ok(None);
        };
        let roles = self.effective_roles(&user.id, pid).await?;
        Ok((!roles.is_empty()).then_some((project, roles)))
    }

    /// The user's roles on a project with the implied ones (admin ⇒ member ⇒ reader).
    pub async fn effective_roles(&self, user_id: &str, project_id: &str) -> Result<Vec<TokenRole>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id \
             WHERE a.user_id = $1 AND a.project_id = $2 ORDER BY r.name",
        )
        .bind(user_id)
        .bind(project_id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut roles: Vec<TokenRole> = rows
            .iter()
            .map(|r| {
                Ok(TokenRole {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                })
            })
            .collect::<Result<_>>()?;
        let implied: Vec<&str> = roles
            .iter()
            .filter_map(|r| Role::parse(&r.name))
            .flat_map(|r| r.implied().iter().map(|i| i.as_str()))
            .filter(|n| !roles.iter().any(|r| r.name == *n))
            .collect();
        if !implied.is_empty() {
            for r in self.builtin_roles().await? {
                if implied.contains(&r.name.as_str()) && !roles.iter().any(|x| x.name == r.name) {
                    roles.push(r);
                }
            }
        }
        Ok(roles)
    }

    async fn builtin_roles(&self) -> Result<Vec<TokenRole>> {
        let rows =
            sqlx::query("SELECT id, name FROM roles WHERE name IN ($1, $2, $3) ORDER BY name")
                .bind(Role::Admin.as_str())
                .bind(Role::Member.as_str())
                .bind(Role::Reader.as_str())
                .fetch_all(&self.db.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRole {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }
}

/// Revokes every token whose `column` (`hash`, `user_id` or `project_id`) is `value`.
pub(super) async fn revoke_tokens<'c, E>(exec: E, column: &str, value: &str) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE tokens SET revoked = $1 WHERE {column} = $2"
    )))
    .bind(flag(true))
    .bind(value.to_string())
    .execute(exec)
    .await?;
    Ok(())
}

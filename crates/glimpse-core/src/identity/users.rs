//! Users: create, read, list, update, delete, change password. Passwords are stored only as
//! argon2id hashes. A password change or a disable revokes every token of the user; deleting
//! a user removes its assignments and tokens in one transaction.
//!
//! Crash behaviour: each call is one statement or one transaction (a password change and its
//! token revocation are one transaction), so a crash leaves the old or the new state.

use crate::db::{delete_cascade, unique_or};
use sqlx::Row;

use super::Identity;
use super::model::{ListFilter, USER_COLUMNS, User, UserFields, check_name, user_from_row};
use super::projects::check_domain;
use super::table::Table;
use crate::db::flag;
use crate::error::{Error, Result};

const USERS: Table<User> = Table::new("user", "users", USER_COLUMNS, user_from_row);

impl Identity {
    async fn check_default_project(&self, id: &Option<String>) -> Result<()> {
        if let Some(pid) = id
            && self.get_project(pid).await.is_err()
        {
            return Err(Error::bad_request(format!(
                "Invalid default_project_id: could not find project: {pid}."
            )));
        }
        Ok(())
    }

    pub async fn create_user(&self, domain_id: &str, f: UserFields) -> Result<User> {
        check_domain(domain_id)?;
        let name = f
            .name
            .ok_or_else(|| Error::bad_request("Invalid input: 'name' is a required property."))?;
        check_name("user", &name, 255)?;
        let default_project_id = f.default_project_id.flatten();
        self.check_default_project(&default_project_id).await?;
        if self.find_user_by_name(&name).await?.is_some() {
            return Err(USERS.duplicate(&name));
        }
        let hash = match &f.password {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        let user = User {
            id: glimpse_types::hex_id(),
            name,
            domain_id: domain_id.to_string(),
            enabled: f.enabled.unwrap_or(true),
            default_project_id,
            description: f.description.unwrap_or_default(),
            email: f.email.flatten(),
            extra: f.extra,
        };
        let r = sqlx::query(
            "INSERT INTO users (id, name, domain_id, password_hash, enabled, \
             default_project_id, description, email, extra, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(&user.domain_id)
        .bind(hash)
        .bind(flag(user.enabled))
        .bind(user.default_project_id.clone())
        .bind(&user.description)
        .bind(user.email.clone())
        .bind(serde_json::Value::Object(user.extra.clone()).to_string())
        .bind(glimpse_types::db_time(glimpse_types::now()))
        .execute(&self.db.pool)
        .await;
        unique_or(r, || USERS.duplicate(&user.name))?;
        Ok(user)
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        USERS.get(&self.db, id).await
    }

    /// A user of the Default domain by name.
    pub async fn find_user_by_name(&self, name: &str) -> Result<Option<User>> {
        USERS.find_by_name(&self.db, name).await
    }

    pub async fn list_users(&self, filter: &ListFilter) -> Result<Vec<User>> {
        USERS.list(&self.db, filter).await
    }

    pub async fn update_user(&self, id: &str, f: UserFields) -> Result<User> {
        let mut u = self.get_user(id).await?;
        if let Some(name) = f.name {
            check_name("user", &name, 255)?;
            if name != u.name && self.find_user_by_name(&name).await?.is_some() {
                return Err(USERS.duplicate(&name));
            }
            u.name = name;
        }
        if let Some(dp) = f.default_project_id {
            self.check_default_project(&dp).await?;
            u.default_project_id = dp;
        }
        if let Some(d) = f.description {
            u.description = d;
        }
        if let Some(e) = f.email {
            u.email = e;
        }
        let disabling = u.enabled && f.enabled == Some(false);
        if let Some(e) = f.enabled {
            u.enabled = e;
        }
        for (k, v) in f.extra {
            if v.is_null() {
                u.extra.remove(&k);
            } else {
                u.extra.insert(k, v);
            }
        }
        let hash = match &f.password {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        let mut tx = self.db.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE users SET name = $1, enabled = $2, default_project_id = $3, \
             description = $4, email = $5, extra = $6 WHERE id = $7",
        )
        .bind(&u.name)
        .bind(flag(u.enabled))
        .bind(u.default_project_id.clone())
        .bind(&u.description)
        .bind(u.email.clone())
        .bind(serde_json::Value::Object(u.extra.clone()).to_string())
        .bind(&u.id)
        .execute(&mut *tx)
        .await;
        unique_or(r, || USERS.duplicate(&u.name))?;
        // Setting `enabled: true` (even on an enabled user) or a new password is how an admin
        // unlocks an account the lockout refused (as Keystone).
        if f.enabled == Some(true) || hash.is_some() {
            sqlx::query(
                "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1",
            )
            .bind(&u.id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(h) = hash {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(h)
                .bind(&u.id)
                .execute(&mut *tx)
                .await?;
        }
        if f.password.is_some() || disabling {
            super::tokens::revoke_tokens(&mut *tx, "user_id", &u.id).await?;
        }
        tx.commit().await?;
        self.cache.bump();
        Ok(u)
    }

    /// `POST /v3/users/{id}/password`: the user proves the old password and sets a new one.
    pub async fn change_password(&self, id: &str, original: &str, new: &str) -> Result<()> {
        let row = sqlx::query("SELECT password_hash, enabled FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        let (hash, enabled) = match &row {
            Some(r) => (
                r.try_get::<Option<String>, _>("password_hash")?,
                r.try_get::<i64, _>("enabled")? != 0,
            ),
            None => (None, false),
        };
        if !self.passwords.verify(original, hash.as_deref()).await? || !enabled {
            return Err(super::tokens::unauthorized());
        }
        self.set_password(id, new).await
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        let dependents = [("role_assignments", "user_id"), ("tokens", "user_id")];
        if !delete_cascade(&self.db, "users", id, &dependents).await? {
            return Err(USERS.not_found(id));
        }
        self.cache.bump();
        Ok(())
    }

    /// Sets a user's password without the old one (bootstrap and admin use).
    pub(crate) async fn set_password(&self, id: &str, new: &str) -> Result<()> {
        self.update_user(
            id,
            UserFields {
                password: Some(new.to_string()),
                ..UserFields::default()
            },
        )
        .await
        .map(|_| ())
    }

    /// True when `password` is the user's current password.
    pub(crate) async fn password_matches(&self, id: &str, password: &str) -> Result<bool> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        let hash: Option<String> = match &row {
            Some(r) => r.try_get("password_hash")?,
            None => None,
        };
        self.passwords.verify(password, hash.as_deref()).await
    }

    /// One more failed password authentication of user `id` (for the lockout).
    pub(super) async fn record_failed_auth(&self, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_auth_count = failed_auth_count + 1, \
             failed_auth_at = $1 WHERE id = $2",
        )
        .bind(glimpse_types::db_time(glimpse_types::now()))
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Forgets user `id`'s failed authentications (a success, or an expired lock).
    pub(super) async fn reset_failed_auth(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

//! `/v3/users`: list (filters `name`, `domain_id`, `enabled`), create (with password,
//! `default_project_id`, `email`, `description`, extra attributes), show, update (a password
//! change or disable revokes the user's tokens), delete, the user's projects, and the
//! self-service password change. Writes and listing need the admin role; a user may show
//! itself and list its own projects.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use glimpse_core::Error;
use glimpse_core::identity::{DEFAULT_DOMAIN_ID, UserFields, policy};
use serde_json::{Map, Value};

use super::records;
use super::{
    Id, Reply, body_object, list_filter, no_content, nullable_string, one, opt_bool, opt_string,
    query, render, same_domain,
};
use crate::dialect::{Caller, Keystone};

const KNOWN: [&str; 10] = [
    "name",
    "password",
    "enabled",
    "domain_id",
    "default_project_id",
    "description",
    "email",
    "id",
    "links",
    "password_expires_at",
];

fn fields(m: &Map<String, Value>) -> Result<(UserFields, Option<String>), Error> {
    let extra = m
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((
        UserFields {
            name: opt_string(m, "name")?,
            password: opt_string(m, "password")?,
            enabled: opt_bool(m, "enabled")?,
            default_project_id: nullable_string(m, "default_project_id")?,
            description: opt_string(m, "description")?,
            email: nullable_string(m, "email")?,
            extra,
        },
        opt_string(m, "domain_id")?,
    ))
}

pub async fn list(State(id): State<Id>, RawQuery(q): RawQuery, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "list_users")?;
    let q = query(q.as_deref());
    let filter = list_filter(&q)?;
    let users = id.list_users(&filter).await?;
    records(&id, "users", &users, render::user, "/users")
}

pub async fn create(State(id): State<Id>, me: Caller<Keystone>, body: Bytes) -> Reply {
    policy::admin(&me, "create_user")?;
    let m = body_object(&body, "user")?;
    let (f, domain_id) = fields(&m)?;
    let u = id
        .create_user(domain_id.as_deref().unwrap_or(DEFAULT_DOMAIN_ID), f)
        .await?;
    one(StatusCode::CREATED, "user", render::user(&id, &u))
}

pub async fn show(State(id): State<Id>, Path(uid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin_or_self(&me, &uid, "get_user")?;
    let u = id.get_user(&uid).await?;
    one(StatusCode::OK, "user", render::user(&id, &u))
}

pub async fn update(
    State(id): State<Id>,
    Path(uid): Path<String>,
    me: Caller<Keystone>,
    body: Bytes,
) -> Reply {
    policy::admin(&me, "update_user")?;
    let m = body_object(&body, "user")?;
    let (f, domain_id) = fields(&m)?;
    same_domain(domain_id, "user")?;
    let u = id.update_user(&uid, f).await?;
    one(StatusCode::OK, "user", render::user(&id, &u))
}

pub async fn delete(State(id): State<Id>, Path(uid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "delete_user")?;
    id.delete_user(&uid).await?;
    Ok(no_content())
}

pub async fn projects(
    State(id): State<Id>,
    Path(uid): Path<String>,
    me: Caller<Keystone>,
) -> Reply {
    policy::admin_or_self(&me, &uid, "list_user_projects")?;
    id.get_user(&uid).await?;
    let projects = id.user_projects(&uid).await?;
    let path = format!("/users/{uid}/projects");
    records(&id, "projects", &projects, render::project, &path)
}

/// `POST /v3/users/{id}/password` `{"user": {"password", "original_password"}}` → 204. As in
/// Keystone the original password is the credential; no token is needed.
pub async fn change_password(State(id): State<Id>, Path(uid): Path<String>, body: Bytes) -> Reply {
    let m = body_object(&body, "user")?;
    let new = opt_string(&m, "password")?
        .ok_or_else(|| Error::bad_request("Invalid input: 'password' is a required property."))?;
    let original = opt_string(&m, "original_password")?.ok_or_else(|| {
        Error::bad_request("Invalid input: 'original_password' is a required property.")
    })?;
    id.change_password(&uid, &original, &new).await?;
    Ok(no_content())
}

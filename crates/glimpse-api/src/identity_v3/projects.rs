//! `/v3/projects`: list (filters `name`, `domain_id`, `enabled`), create, show, update, delete.
//! A project's `home_region` is accepted on create and update (default: the first configured
//! region; unknown → 400) and echoed, as are other extra attributes. Writes and listing need
//! the admin role; a token may show the project it is scoped to.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use glimpse_core::Error;
use glimpse_core::identity::{DEFAULT_DOMAIN_ID, ProjectFields, policy};
use serde_json::{Map, Value};

use super::records;
use super::{
    Id, Reply, body_object, list_filter, no_content, one, opt_bool, opt_string, query, query_bool,
    render, same_domain,
};
use crate::dialect::{Caller, Keystone};

const KNOWN: [&str; 9] = [
    "name",
    "description",
    "enabled",
    "domain_id",
    "home_region",
    "parent_id",
    "is_domain",
    "id",
    "links",
];

/// Reads the fields of a create or update body; returns them and the domain id asked for.
fn fields(m: &Map<String, Value>) -> Result<(ProjectFields, Option<String>), Error> {
    if opt_bool(m, "is_domain")? == Some(true) {
        return Err(Error::bad_request("Glimpse does not create domains."));
    }
    let domain_id = opt_string(m, "domain_id")?;
    if let Some(parent) = opt_string(m, "parent_id")?
        && parent != domain_id.as_deref().unwrap_or(DEFAULT_DOMAIN_ID)
    {
        return Err(Error::bad_request(
            "Invalid parent_id: Glimpse projects are top-level projects of their domain.",
        ));
    }
    let extra = m
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((
        ProjectFields {
            name: opt_string(m, "name")?,
            description: opt_string(m, "description")?,
            enabled: opt_bool(m, "enabled")?,
            home_region: opt_string(m, "home_region")?,
            extra,
        },
        domain_id,
    ))
}

pub async fn list(State(id): State<Id>, RawQuery(q): RawQuery, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "list_projects")?;
    let q = query(q.as_deref());
    let filter = list_filter(&q)?;
    let none = query_bool(&q, "is_domain")? == Some(true)
        || q.get("parent_id").is_some_and(|p| p != DEFAULT_DOMAIN_ID);
    let projects = if none {
        vec![]
    } else {
        id.list_projects(&filter).await?
    };
    records(&id, "projects", &projects, render::project, "/projects")
}

pub async fn create(State(id): State<Id>, me: Caller<Keystone>, body: Bytes) -> Reply {
    policy::admin(&me, "create_project")?;
    let m = body_object(&body, "project")?;
    let (f, domain_id) = fields(&m)?;
    let p = id
        .create_project(domain_id.as_deref().unwrap_or(DEFAULT_DOMAIN_ID), f)
        .await?;
    one(StatusCode::CREATED, "project", render::project(&id, &p))
}

pub async fn show(State(id): State<Id>, Path(pid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin_or_scoped_to(&me, &pid, "get_project")?;
    let p = id.get_project(&pid).await?;
    one(StatusCode::OK, "project", render::project(&id, &p))
}

pub async fn update(
    State(id): State<Id>,
    Path(pid): Path<String>,
    me: Caller<Keystone>,
    body: Bytes,
) -> Reply {
    policy::admin(&me, "update_project")?;
    let m = body_object(&body, "project")?;
    let (f, domain_id) = fields(&m)?;
    same_domain(domain_id, "project")?;
    let p = id.update_project(&pid, f).await?;
    one(StatusCode::OK, "project", render::project(&id, &p))
}

pub async fn delete(State(id): State<Id>, Path(pid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "delete_project")?;
    id.delete_project(&pid).await?;
    Ok(no_content())
}

//! `/v3/auth/…`: issue (`POST`, 201 + `X-Subject-Token`), validate (`GET`, 200 or 404),
//! check (`HEAD`) and revoke (`DELETE`, 204) tokens; the token's catalog, projects, domains
//! and system scopes. Validating or revoking another user's token needs the admin role.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use glimpse_core::identity::{Identity, TokenInfo};
use glimpse_core::{Error, Kind};
use serde_json::{Value, json};

use crate::dialect::{Caller, Keystone};
use std::sync::Arc;

use super::records;
use super::{Id, Reply, list_links, listing, query, query_bool, render, reply};

fn with_subject(mut resp: Response, token: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

pub async fn issue(State(id): State<Id>, RawQuery(q): RawQuery, body: Bytes) -> Reply {
    let v: Value = crate::request::json_body(&body)?;
    let req = super::auth_request::parse(&v)?;
    let (token, info) = id.issue_token(req).await?;
    let nocatalog = query_bool(&query(q.as_deref()), "nocatalog")?.unwrap_or(false);
    let body = render::token(&id, &info, !nocatalog);
    Ok(with_subject(reply(StatusCode::CREATED, body), &token))
}

/// The subject token's info, after checking who may look at it: its own user, an admin, or a
/// service (Keystone's `identity:validate_token`). `allow_expired`: also a token expired within
/// the window, as Keystone answers `?allow_expired=1`.
async fn subject(
    id: &Identity,
    me: &Caller<Keystone>,
    headers: &HeaderMap,
    allow_expired: bool,
) -> Result<(String, Arc<TokenInfo>), Error> {
    let token = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::bad_request("X-Subject-Token header is required."))?
        .to_string();
    let info = if allow_expired {
        id.token_info_allow_expired(&token).await
    } else {
        id.token_info(&token).await
    };
    let info = info.map_err(|e| match e.kind {
        Kind::Unauthorized => Error::not_found("Could not find token."),
        _ => e,
    })?;
    if !me.is_admin() && !me.is_service() && me.user_id != info.user_id {
        return Err(Error::forbidden(
            "You are not authorized to perform the requested action: identity:validate_token.",
        ));
    }
    Ok((token, info))
}

pub async fn validate(
    State(id): State<Id>,
    me: Caller<Keystone>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let q = query(q.as_deref());
    let allow_expired = query_bool(&q, "allow_expired")?.unwrap_or(false);
    let (token, info) = subject(&id, &me, &headers, allow_expired).await?;
    let nocatalog = query_bool(&q, "nocatalog")?.unwrap_or(false);
    let body = render::token(&id, &info, !nocatalog);
    Ok(with_subject(reply(StatusCode::OK, body), &token))
}

pub async fn check(State(id): State<Id>, me: Caller<Keystone>, headers: HeaderMap) -> Reply {
    let (token, _) = subject(&id, &me, &headers, false).await?;
    Ok(with_subject(StatusCode::OK.into_response(), &token))
}

pub async fn revoke(State(id): State<Id>, me: Caller<Keystone>, headers: HeaderMap) -> Reply {
    let (token, _) = subject(&id, &me, &headers, false).await?;
    id.revoke_token(&token).await?;
    Ok(super::no_content())
}

pub async fn catalog(State(id): State<Id>, me: Caller<Keystone>) -> Reply {
    let Some(project) = me.project_id.as_deref() else {
        return Err(Error::forbidden(
            "A project-scoped token is required to produce a service catalog.",
        )
        .into());
    };
    let catalog = serde_json::to_value(id.catalog(Some(project))).map_err(Error::internal)?;
    listing("catalog", json!(catalog), list_links(&id, "/auth/catalog"))
}

pub async fn projects(State(id): State<Id>, me: Caller<Keystone>) -> Reply {
    let projects = id.user_projects(&me.user_id).await?;
    let enabled = projects.iter().filter(|p| p.enabled);
    records(&id, "projects", enabled, render::project, "/auth/projects")
}

/// No domain-scoped roles exist, so no domain can be a scope.
pub async fn domains(State(id): State<Id>, _caller: Caller<Keystone>) -> Reply {
    listing("domains", json!([]), list_links(&id, "/auth/domains"))
}

/// No system-scoped roles exist.
pub async fn system(State(id): State<Id>, _caller: Caller<Keystone>) -> Reply {
    listing("system", json!([]), list_links(&id, "/auth/system"))
}

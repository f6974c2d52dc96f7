//! Regions (`/v3/regions`: CRUD; reading needs any valid token, writing the admin role),
//! the one domain (`/v3/domains`, `/v3/domains/default`), and the derived, read-only
//! `/v3/services` and `/v3/endpoints` (admin role; the same entries as a token's catalog,
//! with Cinder's URL template `$(project_id)s` left in).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use glimpse_core::Error;
use glimpse_core::identity::catalog::{Endpoint, Service};
use glimpse_core::identity::{DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Identity, policy};
use serde_json::{Value, json};

use super::records;
use super::{
    Id, Reply, body_object, list_links, listing, no_content, nullable_string, one, opt_string,
    query, query_bool, render,
};
use crate::dialect::{Caller, Keystone};

pub async fn regions(
    State(id): State<Id>,
    RawQuery(q): RawQuery,
    _caller: Caller<Keystone>,
) -> Reply {
    let q = query(q.as_deref());
    let regions = id
        .list_regions(q.get("parent_region_id").map(String::as_str))
        .await?;
    records(&id, "regions", &regions, render::region, "/regions")
}

pub async fn region(
    State(id): State<Id>,
    Path(rid): Path<String>,
    _caller: Caller<Keystone>,
) -> Reply {
    let r = id.get_region(&rid).await?;
    one(StatusCode::OK, "region", render::region(&id, &r))
}

pub async fn create_region(State(id): State<Id>, me: Caller<Keystone>, body: Bytes) -> Reply {
    policy::admin(&me, "create_region")?;
    let m = body_object(&body, "region")?;
    let r = id
        .create_region(
            opt_string(&m, "id")?,
            opt_string(&m, "description")?,
            opt_string(&m, "parent_region_id")?,
        )
        .await?;
    one(StatusCode::CREATED, "region", render::region(&id, &r))
}

pub async fn update_region(
    State(id): State<Id>,
    Path(rid): Path<String>,
    me: Caller<Keystone>,
    body: Bytes,
) -> Reply {
    policy::admin(&me, "update_region")?;
    let m = body_object(&body, "region")?;
    let r = id
        .update_region(
            &rid,
            opt_string(&m, "description")?,
            nullable_string(&m, "parent_region_id")?,
        )
        .await?;
    one(StatusCode::OK, "region", render::region(&id, &r))
}

pub async fn delete_region(
    State(id): State<Id>,
    Path(rid): Path<String>,
    me: Caller<Keystone>,
) -> Reply {
    policy::admin(&me, "delete_region")?;
    id.delete_region(&rid).await?;
    Ok(no_content())
}

pub async fn domains(
    State(id): State<Id>,
    RawQuery(q): RawQuery,
    _caller: Caller<Keystone>,
) -> Reply {
    let q = query(q.as_deref());
    let matches = q.get("name").is_none_or(|n| n == DEFAULT_DOMAIN_NAME)
        && query_bool(&q, "enabled")?.is_none_or(|e| e);
    let list = if matches {
        vec![render::domain(&id)]
    } else {
        vec![]
    };
    listing("domains", json!(list), list_links(&id, "/domains"))
}

pub async fn domain(
    State(id): State<Id>,
    Path(did): Path<String>,
    _caller: Caller<Keystone>,
) -> Reply {
    if did != DEFAULT_DOMAIN_ID {
        return Err(Error::not_found(format!("Could not find domain: {did}.")).into());
    }
    one(StatusCode::OK, "domain", render::domain(&id))
}

fn service_json(id: &Identity, s: &Service) -> Value {
    json!({
        "id": s.id,
        "type": s.service_type,
        "name": s.name,
        "description": s.description,
        "enabled": true,
        "links": {"self": format!("{}/services/{}", id.settings.identity_url, s.id)},
    })
}

fn endpoint_json(id: &Identity, e: &Endpoint) -> Value {
    json!({
        "id": e.id,
        "interface": e.interface,
        "region": e.region,
        "region_id": e.region_id,
        "service_id": e.service_id,
        "url": e.url,
        "enabled": true,
        "links": {"self": format!("{}/endpoints/{}", id.settings.identity_url, e.id)},
    })
}

pub async fn services(State(id): State<Id>, RawQuery(q): RawQuery, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "list_services")?;
    let q = query(q.as_deref());
    let list: Vec<Value> = id
        .catalog(None)
        .iter()
        .filter(|s| q.get("type").is_none_or(|t| *t == s.service_type))
        .filter(|s| q.get("name").is_none_or(|n| *n == s.name))
        .map(|s| service_json(&id, s))
        .collect();
    listing("services", json!(list), list_links(&id, "/services"))
}

pub async fn service(State(id): State<Id>, Path(sid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "get_service")?;
    let s = id
        .catalog(None)
        .into_iter()
        .find(|s| s.id == sid)
        .ok_or_else(|| Error::not_found(format!("Could not find service: {sid}.")))?;
    one(StatusCode::OK, "service", service_json(&id, &s))
}

pub async fn endpoints(State(id): State<Id>, RawQuery(q): RawQuery, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "list_endpoints")?;
    let q = query(q.as_deref());
    let region = q.get("region_id").or_else(|| q.get("region"));
    let list: Vec<Value> = id
        .catalog(None)
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| q.get("interface").is_none_or(|i| *i == e.interface))
        .filter(|e| q.get("service_id").is_none_or(|s| *s == e.service_id))
        .filter(|e| region.is_none_or(|r| *r == e.region_id))
        .map(|e| endpoint_json(&id, e))
        .collect();
    listing("endpoints", json!(list), list_links(&id, "/endpoints"))
}

pub async fn endpoint(
    State(id): State<Id>,
    Path(eid): Path<String>,
    me: Caller<Keystone>,
) -> Reply {
    policy::admin(&me, "get_endpoint")?;
    let e = id
        .catalog(None)
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .find(|e| e.id == eid)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("Could not find endpoint: {eid}.")))?;
    one(StatusCode::OK, "endpoint", endpoint_json(&id, &e))
}

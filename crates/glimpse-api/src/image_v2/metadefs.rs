//! Glance's metadata definitions API under `/v2/metadefs`: the resource type catalogue,
//! namespaces (list with `first`/`next` links, create 201 with `Location`, show with an
//! optional `?resource_type=` prefix view, full-replacement PUT, delete 204) and their
//! resource type associations here; objects, properties and tags in [`items`]. Handlers are
//! thin: authenticate, read the Glance document ([`input`]),
//! call the domain, render ([`view`]). Errors are Glance's. Stateless.

mod input;
mod items;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use glimpse_core::images::metadefs::{self, resource_types};
use glimpse_core::region::Region;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use super::ApiState;
use super::view::json_response;
use crate::dialect::{ApiResult, Body, Caller, Glance};

type RegionState = State<Arc<Region>>;

/// Routes under `/v2`.
pub(crate) fn routes() -> Router<ApiState> {
    const NS: &str = "/metadefs/namespaces/{namespace}";
    Router::new()
        .route("/metadefs/resource_types", get(list_resource_types))
        .route("/metadefs/namespaces", get(list).post(create))
        .route(NS, get(show).put(update).delete(remove))
        .route(
            &format!("{NS}/resource_types"),
            get(list_associations).post(associate),
        )
        .route(
            &format!("{NS}/resource_types/{{resource_type}}"),
            delete(dissociate),
        )
        .route(
            &format!("{NS}/objects"),
            get(items::list_objects)
                .post(items::create_object)
                .delete(items::delete_objects),
        )
        .route(
            &format!("{NS}/objects/{{object_name}}"),
            get(items::show_object)
                .put(items::update_object)
                .delete(items::delete_object),
        )
        .route(
            &format!("{NS}/properties"),
            get(items::list_properties)
                .post(items::create_property)
                .delete(items::delete_properties),
        )
        .route(
            &format!("{NS}/properties/{{property_name}}"),
            get(items::show_property)
                .put(items::update_property)
                .delete(items::delete_property),
        )
        .route(
            &format!("{NS}/tags"),
            get(items::list_tags)
                .post(items::create_tags)
                .delete(items::delete_tags),
        )
        .route(
            &format!("{NS}/tags/{{tag_name}}"),
            get(items::show_tag)
                .post(items::create_tag)
                .put(items::update_tag)
                .delete(items::delete_tag),
        )
}

/// The methods each metadefs route allows (for 405's `Allow`), by route below `/v2`.
pub(crate) fn allowed_methods(tail: &str) -> Option<&'static str> {
    let rest = tail.strip_prefix("/metadefs/namespaces/{namespace}");
    Some(match (tail, rest) {
        ("/metadefs/resource_types", _) => "GET",
        ("/metadefs/namespaces", _) => "GET, POST",
        (_, Some("")) => "GET, PUT, DELETE",
        (_, Some("/resource_types")) => "GET, POST",
        (_, Some("/resource_types/{resource_type}")) => "DELETE",
        (_, Some("/objects" | "/properties" | "/tags")) => "GET, POST, DELETE",
        (_, Some("/objects/{object_name}" | "/properties/{property_name}")) => "GET, PUT, DELETE",
        (_, Some("/tags/{tag_name}")) => "GET, POST, PUT, DELETE",
        _ => return None,
    })
}

pub(super) fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

pub(super) fn created(v: &Value) -> Response {
    json_response(StatusCode::CREATED, v)
}

pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Characters escaped in a `Location` path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `GET /v2/metadefs/resource_types`.
async fn list_resource_types(
    State(region): RegionState,
    caller: Caller<Glance>,
) -> ApiResult<Glance> {
    let types = resource_types::list(&region, &caller).await?;
    Ok(ok(&view::resource_types(&types)))
}

/// `GET /v2/metadefs/namespaces`.
async fn list(
    State(region): RegionState,
    caller: Caller<Glance>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let mut pairs = query_pairs(query);
    let q = input::namespace_query(&pairs)?;
    let page = metadefs::list(&region, &caller, &q).await?;
    pairs.retain(|(k, _)| k != "marker");
    let mut body = json!({
        "namespaces": page.namespaces.iter().map(|(ns, a)| view::namespace_in_list(ns, a)).collect::<Vec<_>>(),
        "first": if pairs.is_empty() {
            "/v2/metadefs/namespaces".to_string()
        } else {
            format!("/v2/metadefs/namespaces?{}", encode(&pairs))
        },
        "schema": "/v2/schemas/metadefs/namespaces",
    });
    if let Some(m) = page.next {
        pairs.push(("marker".into(), m));
        body["next"] = Value::String(format!("/v2/metadefs/namespaces?{}", encode(&pairs)));
    }
    Ok(ok(&body))
}

/// `POST /v2/metadefs/namespaces` (201 with `Location`).
async fn create(
    State(region): RegionState,
    caller: Caller<Glance>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let doc = input::namespace(&body)?;
    let detail = metadefs::create(&region, &caller, doc).await?;
    let mut r = created(&view::namespace_detail(&detail));
    let location = format!(
        "{}/v2/metadefs/namespaces/{}",
        region.image_url(),
        utf8_percent_encode(&detail.namespace.namespace, SEGMENT)
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /v2/metadefs/namespaces/{ns}[?resource_type=…]`.
async fn show(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let mut detail = metadefs::get(&region, &caller, &ns).await?;
    if let Some((_, rt)) = query_pairs(query)
        .into_iter()
        .find(|(k, v)| k == "resource_type" && !v.is_empty())
    {
        detail = detail.prefixed(&rt);
    }
    Ok(ok(&view::namespace_detail(&detail)))
}

/// `PUT /v2/metadefs/namespaces/{ns}`.
async fn update(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let doc = input::namespace(&body)?;
    let updated = metadefs::update(&region, &caller, &ns, doc).await?;
    Ok(ok(&Value::Object(view::namespace(&updated))))
}

/// `DELETE /v2/metadefs/namespaces/{ns}`.
async fn remove(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    metadefs::delete(&region, &caller, &ns).await?;
    Ok(no_content())
}

/// `GET /v2/metadefs/namespaces/{ns}/resource_types`.
async fn list_associations(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    let assoc = resource_types::associations(&region, &caller, &ns).await?;
    Ok(ok(&json!({
        "resource_type_associations": assoc.iter().map(view::association).collect::<Vec<_>>()
    })))
}

/// `POST /v2/metadefs/namespaces/{ns}/resource_types`.
async fn associate(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let a = input::association(&body)?;
    let out = resource_types::associate(&region, &caller, &ns, &a).await?;
    Ok(created(&view::association(&out)))
}

/// `DELETE /v2/metadefs/namespaces/{ns}/resource_types/{resource_type}`.
async fn dissociate(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, rt)): Path<(String, String)>,
) -> ApiResult<Glance> {
    resource_types::dissociate(&region, &caller, &ns, &rt).await?;
    Ok(no_content())
}

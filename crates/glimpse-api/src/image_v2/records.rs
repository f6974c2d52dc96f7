//! Handlers for image records: create (201 + `Location`), list (with `first`/`next` links),
//! show, JSON-patch update (both Glance dialects; any other media type 415 with
//! `Accept-Patch`), delete, deactivate/reactivate and tags. Stateless.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use glimpse_core::images::{self, ListQuery};

use super::input::{self, PatchDialect};
use glimpse_core::region::Region;
use glimpse_core::{Error, Kind};
use serde_json::Value;

use super::list_cache::{self, ListCache};
use super::view::{ImageView, ListView, json_response};
use crate::dialect::{ApiError, ApiResult, Body, Caller, Dialect, Glance};

type RegionState = State<Arc<Region>>;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v2/images`.
pub async fn create(
    State(region): RegionState,
    caller: Caller<Glance>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let new = input::new_image(&body)?;
    let img = images::create(&region, &caller, new).await?;
    let mut r = json_response(StatusCode::CREATED, &ImageView(&img));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2/images/{}", region.image_url(), img.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `GET /v2/images` (served from [`ListCache`] while the image generation is unchanged).
pub async fn list(
    State(region): RegionState,
    State(cache): State<Arc<ListCache>>,
    caller: Caller<Glance>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let query = query.unwrap_or_default();
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let q = ListQuery::parse(&pairs)?;
    caller.project()?;
    let generation = images::list::generation(&region).await?;
    let key = list_cache::key(&caller, &query);
    if let Some(body) = cache.get(generation, &key) {
        return Ok(json_bytes(body));
    }
    let page = images::list::list(&region, &caller, &q).await?;
    pairs.retain(|(k, _)| k != "marker");
    let first = if pairs.is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{}", encode(&pairs))
    };
    let next = page.next_marker.map(|m| {
        pairs.push(("marker".into(), m));
        format!("/v2/images?{}", encode(&pairs))
    });
    let body = Bytes::from(crate::pyjson::dumps(&ListView {
        images: &page.images,
        first,
        next,
    }));
    cache.put(generation, key, body.clone());
    Ok(json_bytes(body))
}

fn json_bytes(body: Bytes) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET /v2/images/{id}`.
pub async fn show(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    let img = images::get(&region, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &ImageView(&img)))
}

const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";

/// `PATCH /v2/images/{id}`.
pub async fn update(
    State(region): RegionState,
    caller: Caller<Glance>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Glance> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let Some(dialect) = PatchDialect::from_media_type(content_type) else {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut r = ApiError::<Glance>::new(Error::new(
            Kind::UnsupportedMedia,
            format!(
                "The request media type {media} is not supported by this server. \
                 Image PATCH expects Content-Type one of: {ACCEPT_PATCH}"
            ),
        ))
        .into_response();
        r.headers_mut()
            .insert("accept-patch", HeaderValue::from_static(ACCEPT_PATCH));
        return Ok(r);
    };
    let body: Value = Glance::json(&crate::request::body(body)?)?;
    let changes = input::changes(&body, dialect)?;
    let img = images::update(&region, &caller, &id, changes).await?;
    Ok(json_response(StatusCode::OK, &ImageView(&img)))
}

/// `DELETE /v2/images/{id}`.
pub async fn delete(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    images::delete(&region, &caller, &id).await?;
    Ok(no_content())
}

/// `POST /v2/images/{id}/actions/reactivate` (`ACTIVE`) and `.../actions/deactivate`.
pub async fn set_active<const ACTIVE: bool>(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    if ACTIVE {
        images::reactivate(&region, &caller, &id).await?;
    } else {
        images::deactivate(&region, &caller, &id).await?;
    }
    Ok(no_content())
}

/// `PUT` (add) and `DELETE` (remove) `/v2/images/{id}/tags/{tag}`.
pub async fn tag(
    method: Method,
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<Glance> {
    if method == Method::DELETE {
        images::remove_tag(&region, &caller, &id, &tag).await?;
    } else {
        images::add_tag(&region, &caller, &id, &tag).await?;
    }
    Ok(no_content())
}

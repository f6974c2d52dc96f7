//! Nova's image metadata proxy (`/images/{id}/metadata[/{key}]`, before microversion 2.39):
//! an image's custom properties as Nova's `metadata`, read and written through the region's
//! Glance records (so Glance's policy and rules apply: the owner's members write).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/metadata` | 200 `{"metadata": {...}}` |
//! | POST | `/metadata` | 200, the given items added or replaced, all returned |
//! | PUT | `/metadata` | 200, the metadata replaced by exactly the given items |
//! | GET | `/metadata/{key}` | 200 `{"meta": {key: value}}`; 404 when absent |
//! | PUT | `/metadata/{key}` | 200 `{"meta": {key: value}}`; 400 when the body names another key or several |
//! | DELETE | `/metadata/{key}` | 204; 404 when absent |
//!
//! More items than `[regions.compute] metadata_items` after a change is 403 (Nova's quota).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::images::model::Change;
use glimpse_core::images::{self, Image};
use serde_json::{Map, Value, json};

use super::images::ProxyCaller;
use super::{R, reply};
use crate::dialect::{ApiResult, Nova};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route(
            "/images/{id}/metadata",
            get(list).post(set_all::<true>).put(set_all::<false>),
        )
        .route(
            "/images/{id}/metadata/{key}",
            get(show).put(set_one).delete(remove),
        )
}

fn as_map(img: &Image) -> Map<String, Value> {
    img.properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect()
}

/// The image (404 `Image not found.`).
async fn load(region: &R, caller: &glimpse_core::auth::Caller, id: &str) -> Result<Image, Error> {
    images::get(region, caller, id)
        .await
        .map_err(super::images::image_not_found)
}

/// `{"<wrapper>": {k: "v", …}}` with string values.
fn items(
    body: Result<Bytes, BytesRejection>,
    wrapper: &str,
) -> Result<Vec<(String, String)>, Error> {
    let top = super::servers::object(&crate::request::body(body)?)?;
    match top.get(wrapper) {
        None => Err(super::servers::invalid(
            wrapper,
            &Value::Object(top.clone()),
            &format!("'{wrapper}' is a required property"),
        )),
        v => super::servers::metadata(wrapper, v, None),
    }
}

/// Applies `changes`, checking Nova's metadata quota on the result.
async fn apply(
    region: &R,
    caller: &glimpse_core::auth::Caller,
    img: &Image,
    changes: Vec<Change>,
    resulting: usize,
) -> Result<Image, Error> {
    if resulting > region.config.compute.metadata_items {
        return Err(Error::forbidden("Image metadata limit exceeded"));
    }
    images::update(region, caller, &img.id, changes)
        .await
        .map_err(super::images::image_not_found)
}

fn upserts(items: &[(String, String)]) -> Vec<Change> {
    items
        .iter()
        .map(|(k, v)| Change::AddProperty {
            name: k.clone(),
            value: v.clone(),
            strict: false,
        })
        .collect()
}

/// The metadata routes' caller (gone from 2.39, where Nova removed them).
type MetaCaller = ProxyCaller<39>;

async fn list(
    State(region): State<R>,
    ProxyCaller(caller): MetaCaller,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    let img = load(&region, &caller, &id).await?;
    Ok(reply(StatusCode::OK, json!({"metadata": as_map(&img)})))
}

/// `POST /metadata` (`MERGE`: add or replace the given items) and `PUT /metadata` (exactly
/// the given items).
async fn set_all<const MERGE: bool>(
    State(region): State<R>,
    ProxyCaller(caller): MetaCaller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let img = load(&region, &caller, &id).await?;
    let new = items(body, "metadata")?;
    let (changes, total) = if MERGE {
        let added = new
            .iter()
            .filter(|(k, _)| img.property(k).is_none())
            .count();
        (upserts(&new), img.properties.len() + added)
    } else {
        let mut changes: Vec<Change> = img
            .properties
            .iter()
            .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
            .map(|(k, _)| Change::RemoveProperty { name: k.clone() })
            .collect();
        changes.extend(upserts(&new));
        (changes, new.len())
    };
    let out = apply(&region, &caller, &img, changes, total).await?;
    Ok(reply(StatusCode::OK, json!({"metadata": as_map(&out)})))
}

fn item_not_found() -> Error {
    Error::not_found("Image metadata item not found.")
}

async fn show(
    State(region): State<R>,
    ProxyCaller(caller): MetaCaller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Nova> {
    let img = load(&region, &caller, &id).await?;
    let v = img.property(&key).ok_or_else(item_not_found)?;
    Ok(reply(StatusCode::OK, json!({"meta": { key: v }})))
}

/// `PUT /metadata/{key}` with `{"meta": {key: value}}`.
async fn set_one(
    State(region): State<R>,
    ProxyCaller(caller): MetaCaller,
    Path((id, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let img = load(&region, &caller, &id).await?;
    let new = items(body, "meta")?;
    if new.len() > 1 {
        return Err(Error::bad_request("Request body contains too many items").into());
    }
    let Some((k, v)) = new.into_iter().next() else {
        return Err(Error::bad_request("Malformed request body").into());
    };
    if k != key {
        return Err(Error::bad_request("Request body and URI mismatch").into());
    }
    let total = img.properties.len() + usize::from(img.property(&k).is_none());
    let item = vec![(k.clone(), v.clone())];
    apply(&region, &caller, &img, upserts(&item), total).await?;
    Ok(reply(StatusCode::OK, json!({"meta": { k: v }})))
}

async fn remove(
    State(region): State<R>,
    ProxyCaller(caller): MetaCaller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Nova> {
    let img = load(&region, &caller, &id).await?;
    if img.property(&key).is_none() {
        return Err(item_not_found().into());
    }
    let change = vec![Change::RemoveProperty { name: key }];
    let total = img.properties.len() - 1;
    apply(&region, &caller, &img, change, total).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

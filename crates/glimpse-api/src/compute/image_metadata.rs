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
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::images::model::Change;
use glimpse_core::images::{self, Image};
use serde_json::{Map, Value, json};

use super::{Base, R, nova, reply};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route(
            "/images/{id}/metadata",
            get(list).post(add).put(replace_all),
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

/// The caller and the image (404 `Image not found.`; 404 from 2.39, where Nova removed it).
async fn load(
    region: &R,
    base: &Base,
    headers: &HeaderMap,
    id: &str,
) -> Result<(glimpse_core::auth::Caller, Image), Response> {
    let caller = super::images::proxy_caller(region, base, headers, 39).await?;
    match images::get(region, &caller, id).await {
        Ok(img) => Ok((caller, img)),
        Err(e) => Err(nova(super::images::image_not_found(e)).into_response()),
    }
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

async fn list(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (_, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    reply(StatusCode::OK, json!({"metadata": as_map(&img)}))
}

/// `POST /metadata`: add or replace the given items.
async fn add(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (caller, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let new = tryn!(items(body, "metadata"));
    let added = new
        .iter()
        .filter(|(k, _)| img.property(k).is_none())
        .count();
    let total = img.properties.len() + added;
    let out = tryn!(apply(&region, &caller, &img, upserts(&new), total).await);
    reply(StatusCode::OK, json!({"metadata": as_map(&out)}))
}

/// `PUT /metadata`: exactly the given items.
async fn replace_all(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (caller, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let new = tryn!(items(body, "metadata"));
    let mut changes: Vec<Change> = img
        .properties
        .iter()
        .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
        .map(|(k, _)| Change::RemoveProperty { name: k.clone() })
        .collect();
    changes.extend(upserts(&new));
    let out = tryn!(apply(&region, &caller, &img, changes, new.len()).await);
    reply(StatusCode::OK, json!({"metadata": as_map(&out)}))
}

fn item_not_found() -> Error {
    Error::not_found("Image metadata item not found.")
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let (_, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match img.property(&key) {
        Some(v) => reply(StatusCode::OK, json!({"meta": { key: v }})),
        None => nova(item_not_found()).into_response(),
    }
}

/// `PUT /metadata/{key}` with `{"meta": {key: value}}`.
async fn set_one(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path((id, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (caller, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let new = tryn!(items(body, "meta"));
    if new.len() > 1 {
        return nova(Error::bad_request("Request body contains too many items")).into_response();
    }
    let Some((k, v)) = new.into_iter().next() else {
        return nova(Error::bad_request("Malformed request body")).into_response();
    };
    if k != key {
        return nova(Error::bad_request("Request body and URI mismatch")).into_response();
    }
    let total = img.properties.len() + usize::from(img.property(&k).is_none());
    let item = vec![(k.clone(), v.clone())];
    tryn!(apply(&region, &caller, &img, upserts(&item), total).await);
    reply(StatusCode::OK, json!({"meta": { k: v }}))
}

async fn remove(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let (caller, img) = match load(&region, &base, &headers, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if img.property(&key).is_none() {
        return nova(item_not_found()).into_response();
    }
    let change = vec![Change::RemoveProperty { name: key }];
    let total = img.properties.len() - 1;
    tryn!(apply(&region, &caller, &img, change, total).await);
    StatusCode::NO_CONTENT.into_response()
}

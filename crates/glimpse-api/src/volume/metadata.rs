//! `/volumes/{id}/metadata`: a volume's key/value metadata as its own resource (Cinder's
//! `volume_metadata` controller). Readers may read; writes need the member role.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use glimpse_core::volumes::{self, records::VolumeUpdate};
use serde_json::json;

use super::records::{body_object, metadata};
use super::{R, cinder, reply};
use crate::dialect::{ApiError, Caller, Cinder};

type Result<T> = std::result::Result<T, ApiError<Cinder>>;

fn not_found() -> ApiError<Cinder> {
    cinder(Error::not_found("Metadata item was not found."))
}

/// The `metadata` object of a body: strings only.
fn metadata_body(body: &[u8]) -> Result<BTreeMap<String, String>> {
    let mut outer = serde_json::Map::new();
    outer.insert(
        "metadata".into(),
        serde_json::Value::Object(body_object(body, "metadata")?),
    );
    Ok(metadata(&outer)?.unwrap_or_default())
}

async fn write(
    region: &R,
    c: &glimpse_core::auth::Caller,
    id: &str,
    meta: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let u = VolumeUpdate {
        metadata: Some(meta),
        ..VolumeUpdate::default()
    };
    Ok(volumes::update(region, c, id, u).await?.metadata)
}

pub async fn show_all(
    State(region): State<R>,
    Path((_, _, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
) -> Result<Response> {
    let v = volumes::get(&region, &c, &id).await?;
    Ok(reply(StatusCode::OK, &json!({"metadata": v.metadata})))
}

/// `POST` (`MERGE`: the given items are added to the volume's) and `PUT` (they replace them).
pub async fn set_all<const MERGE: bool>(
    State(region): State<R>,
    Path((_, _, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
    body: Bytes,
) -> Result<Response> {
    let given = metadata_body(&body)?;
    let mut meta = if MERGE {
        volumes::get(&region, &c, &id).await?.metadata
    } else {
        BTreeMap::new()
    };
    meta.extend(given);
    let now = write(&region, &c, &id, meta).await?;
    Ok(reply(StatusCode::OK, &json!({"metadata": now})))
}

pub async fn show_one(
    State(region): State<R>,
    Path((_, _, id, key)): Path<(String, String, String, String)>,
    c: Caller<Cinder>,
) -> Result<Response> {
    let v = volumes::get(&region, &c, &id).await?;
    let value = v.metadata.get(&key).ok_or_else(not_found)?;
    Ok(reply(StatusCode::OK, &json!({"meta": {key: value}})))
}

pub async fn set_one(
    State(region): State<R>,
    Path((_, _, id, key)): Path<(String, String, String, String)>,
    c: Caller<Cinder>,
    body: Bytes,
) -> Result<Response> {
    let meta = body_object(&body, "meta")?;
    if meta.len() > 1 {
        return Err(cinder(Error::bad_request(
            "Request body contains too many items.",
        )));
    }
    let Some((k, v)) = meta.iter().next() else {
        return Err(cinder(Error::bad_request("Malformed request body")));
    };
    if *k != key {
        return Err(cinder(Error::bad_request("Request body and URI mismatch")));
    }
    let Some(v) = v.as_str() else {
        return Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute meta. Value: {v}. {v} is not of type 'string'"
        ))));
    };
    let mut all = volumes::get(&region, &c, &id).await?.metadata;
    all.insert(key.clone(), v.to_string());
    write(&region, &c, &id, all).await?;
    Ok(reply(StatusCode::OK, &json!({"meta": {key: v}})))
}

pub async fn delete_one(
    State(region): State<R>,
    Path((_, _, id, key)): Path<(String, String, String, String)>,
    c: Caller<Cinder>,
) -> Result<Response> {
    let mut all = volumes::get(&region, &c, &id).await?.metadata;
    if all.remove(&key).is_none() {
        return Err(not_found());
    }
    write(&region, &c, &id, all).await?;
    Ok(StatusCode::OK.into_response())
}

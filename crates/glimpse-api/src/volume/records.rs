//! `/volumes` handlers: create, list (plain and detail), show, update, delete.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use glimpse_core::db::caps;
use glimpse_core::volumes::records::{ListQuery, VolumeUpdate};
use glimpse_core::volumes::{self, NewVolume};
use serde_json::{Map, Value, json};

use super::{R, cinder, reply, view};
use crate::dialect::{ApiError, Caller, Cinder};

type Result<T> = std::result::Result<T, ApiError<Cinder>>;

/// The JSON object under `key` of a request body (Cinder's 400s otherwise).
pub(crate) fn body_object(body: &[u8], key: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| cinder(Error::bad_request("Malformed request body")))?;
    match v.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type 'object'"
        )))),
        None => Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute body. Value: {v}. '{key}' is a required property"
        )))),
    }
}

fn opt_text(m: &Map<String, Value>, keys: &[&str]) -> Result<Option<Option<String>>> {
    for k in keys {
        match m.get(*k) {
            None => continue,
            Some(Value::Null) => return Ok(Some(None)),
            Some(Value::String(s)) => return Ok(Some(Some(s.clone()))),
            Some(other) => {
                return Err(cinder(Error::bad_request(format!(
                    "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string', 'null'"
                ))));
            }
        }
    }
    Ok(None)
}

pub(crate) fn metadata(m: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>> {
    match m.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => {
            let mut out = BTreeMap::new();
            for (k, v) in o {
                let Some(s) = v.as_str() else {
                    return Err(cinder(Error::bad_request(format!(
                        "Invalid input for field/attribute metadata. Value: {v}. {v} is not of type 'string'"
                    ))));
                };
                if k.is_empty() || k.chars().count() > 255 || s.chars().count() > 255 {
                    return Err(cinder(Error::bad_request(
                        "Invalid input received: metadata keys and values must be 1-255 characters.",
                    )));
                }
                out.insert(k.clone(), s.to_string());
            }
            Ok(Some(out))
        }
        Some(other) => Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute metadata. Value: {other}. {other} is not of type 'object'"
        )))),
    }
}

/// Cinder's `volume_size` under `key`: an integer ≥ 1, or a string of digits.
pub(crate) fn volume_size(m: &Map<String, Value>, key: &str, parent: &str) -> Result<i64> {
    let bad = |v: &Value| {
        cinder(Error::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}. {v} is not valid under any of the given schemas"
        )))
    };
    match m.get(key) {
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= 1).ok_or_else(|| bad(&json!(n))),
        Some(Value::String(s)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(&json!(s))),
        Some(other) => Err(bad(other)),
        None => Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute {parent}. '{key}' is a required property"
        )))),
    }
}

/// `POST /volumes`: 202 with the `creating` volume.
pub async fn create(
    State(region): State<R>,
    Path((api, _project)): Path<(String, String)>,
    c: Caller<Cinder>,
    body: Bytes,
) -> Result<Response> {
    let m = body_object(&body, "volume")?;
    // No snapshots, backups or groups exist here, so naming one is Cinder's 404; cloning an
    // existing volume is not supported (400).
    for (key, what) in [
        ("snapshot_id", "Snapshot"),
        ("backup_id", "Backup"),
        ("consistencygroup_id", "ConsistencyGroup"),
        ("group_id", "Group"),
    ] {
        if let Some(id) = m.get(key).filter(|v| !v.is_null()) {
            let id = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            return Err(cinder(Error::not_found(format!(
                "{what} {id} could not be found."
            ))));
        }
    }
    if let Some(src) = m.get("source_volid").filter(|v| !v.is_null()) {
        let src = src
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| src.to_string());
        volumes::get(&region, &c, &src).await?;
        return Err(cinder(Error::bad_request(
            "Invalid input received: cloning a volume (source_volid) is not supported by this \
             cloud; volumes are made blank or from an image.",
        )));
    }
    if m.get("multiattach")
        .is_some_and(|v| v.as_bool() == Some(true))
    {
        return Err(cinder(Error::bad_request(
            "Invalid input received: multiattach volumes are not supported by this cloud.",
        )));
    }
    let image = match opt_text(&m, &["imageRef", "image_id"])? {
        Some(Some(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let new = NewVolume {
        name: opt_text(&m, &["name", "display_name"])?.flatten(),
        description: opt_text(&m, &["description", "display_description"])?.flatten(),
        size_gb: volume_size(&m, "size", "volume")?,
        image_id: image,
        volume_type: opt_text(&m, &["volume_type"])?.flatten(),
        availability_zone: opt_text(&m, &["availability_zone"])?.flatten(),
        metadata: metadata(&m)?.unwrap_or_default(),
    };
    let v = volumes::create(&region, &c, new).await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        &json!({"volume": view::created(&region, &api, &v)}),
    ))
}

/// oslo's lenient boolean (`bool_from_string`, not strict): true, 1, yes, y, on, t.
fn lenient_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// `sort=k1:dir,k2` or `sort_key=k1,k2&sort_dir=dir1,dir2` (direction `desc` by default).
fn sort_keys(q: &BTreeMap<String, String>) -> Result<Vec<(String, bool)>> {
    let dir = |d: &str| match d.trim() {
        "" | "desc" => Ok(true),
        "asc" => Ok(false),
        other => Err(cinder(Error::bad_request(format!(
            "Invalid input received: Unknown sort direction {other}, must be 'desc' or 'asc'"
        )))),
    };
    if let Some(sort) = q.get("sort") {
        if q.contains_key("sort_key") || q.contains_key("sort_dir") {
            return Err(cinder(Error::bad_request(
                "Invalid input received: The 'sort_key' and/or 'sort_dir' parameters are \
                 deprecated and cannot be used with the 'sort' parameter.",
            )));
        }
        return sort
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let (k, d) = s.split_once(':').unwrap_or((s, ""));
                Ok((k.trim().to_string(), dir(d)?))
            })
            .collect();
    }
    let keys: Vec<&str> = q
        .get("sort_key")
        .map(|k| k.split(',').collect())
        .unwrap_or_default();
    let dirs: Vec<&str> = q
        .get("sort_dir")
        .map(|d| d.split(',').collect())
        .unwrap_or_default();
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            Ok((
                k.trim().to_string(),
                dir(dirs.get(i).copied().unwrap_or(""))?,
            ))
        })
        .collect()
}

/// Cinder reads `metadata=` with `ast.literal_eval`: a Python dict of strings (`{'k': 'v'}`),
/// or JSON.
fn metadata_filter(v: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(v)
        .or_else(|_| serde_json::from_str(&v.replace('\'', "\"")))
        .map_err(|_| {
            cinder(Error::bad_request(format!(
                "Invalid input received: metadata filter {v} is not a dictionary of strings"
            )))
        })
}

fn list_query(q: &BTreeMap<String, String>) -> Result<ListQuery> {
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            cinder(Error::bad_request(format!(
                "Invalid input received: limit param must be an integer (got {l})"
            )))
        })?),
    };
    let metadata = match q.get("metadata") {
        Some(m) => metadata_filter(m)?,
        None => BTreeMap::new(),
    };
    let sort = sort_keys(q)?;
    let capped = |count, cap, what| {
        caps::at_most(count, cap, what).map_err(|e| {
            cinder(Error::bad_request(format!(
                "Invalid input received: {}",
                e.message
            )))
        })
    };
    capped(sort.len(), caps::SORT_KEYS, "sort keys")?;
    capped(metadata.len(), caps::VALUES, "metadata pairs")?;
    Ok(ListQuery {
        all_tenants: q
            .get("all_tenants")
            .is_some_and(|v| v.is_empty() || lenient_bool(v)),
        name: q.get("name").cloned(),
        status: q.get("status").cloned(),
        bootable: q.get("bootable").map(|b| lenient_bool(b)),
        availability_zone: q.get("availability_zone").cloned(),
        metadata,
        sort,
        limit,
        marker: q.get("marker").cloned(),
    })
}

/// `GET /volumes` and, `DETAILED`, `GET /volumes/detail`.
pub async fn list<const DETAILED: bool>(
    State(region): State<R>,
    Path((api, project)): Path<(String, String)>,
    c: Caller<Cinder>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response> {
    let query = list_query(&q)?;
    let vols = volumes::list(&region, &c, &query).await?;
    let items: Vec<Value> = vols
        .iter()
        .map(|v| {
            if DETAILED {
                view::detail(&region, &api, &c, v)
            } else {
                view::summary(&region, &api, v)
            }
        })
        .collect();
    let mut body = json!({"volumes": items});
    if let (Some(limit), Some(last)) = (query.limit, vols.last())
        && vols.len() == limit
        && limit > 0
    {
        let path = if DETAILED {
            "volumes/detail"
        } else {
            "volumes"
        };
        body["volumes_links"] = json!([{
            "href": format!("{}/volume/{api}/{project}/{path}?limit={limit}&marker={}", region.url, last.id),
            "rel": "next",
        }]);
    }
    Ok(reply(StatusCode::OK, &body))
}

pub async fn show(
    State(region): State<R>,
    Path((api, _project, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
) -> Result<Response> {
    let v = volumes::get(&region, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"volume": view::detail(&region, &api, &c, &v)}),
    ))
}

pub async fn update(
    State(region): State<R>,
    Path((api, _project, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
    body: Bytes,
) -> Result<Response> {
    let m = body_object(&body, "volume")?;
    let u = VolumeUpdate {
        name: opt_text(&m, &["name", "display_name"])?,
        description: opt_text(&m, &["description", "display_description"])?,
        metadata: metadata(&m)?,
        bootable: None,
    };
    let v = volumes::update(&region, &c, &id, u).await?;
    Ok(reply(
        StatusCode::OK,
        &json!({"volume": view::created(&region, &api, &v)}),
    ))
}

pub async fn delete(
    State(region): State<R>,
    Path((_, _, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
) -> Result<Response> {
    volumes::delete(&region, &c, &id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

//! The small read-only documents clients ask for around volumes: the one volume type
//! (`__DEFAULT__`), the one availability zone (`nova`), absolute limits and the (empty)
//! extension list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use glimpse_core::Error;
use glimpse_core::volumes::{AVAILABILITY_ZONE, DEFAULT_TYPE, DEFAULT_TYPE_ID};
use serde_json::{Value, json};

use super::{R, cinder, reply};
use crate::dialect::{ApiError, Caller, Cinder};

fn default_type() -> Value {
    json!({
        "id": DEFAULT_TYPE_ID,
        "name": DEFAULT_TYPE,
        "description": "Default Volume Type",
        "is_public": true,
        "os-volume-type-access:is_public": true,
        "qos_specs_id": null,
        "extra_specs": {},
    })
}

pub async fn types(_caller: Caller<Cinder>) -> Result<Response, ApiError<Cinder>> {
    Ok(reply(
        StatusCode::OK,
        &json!({"volume_types": [default_type()]}),
    ))
}

pub async fn volume_type(
    Path((_, _, id)): Path<(String, String, String)>,
    _caller: Caller<Cinder>,
) -> Result<Response, ApiError<Cinder>> {
    if id != DEFAULT_TYPE_ID && id != DEFAULT_TYPE && id != "default" {
        return Err(cinder(Error::not_found(format!(
            "Volume type {id} could not be found."
        ))));
    }
    Ok(reply(
        StatusCode::OK,
        &json!({"volume_type": default_type()}),
    ))
}

pub async fn zones(_caller: Caller<Cinder>) -> Result<Response, ApiError<Cinder>> {
    Ok(reply(
        StatusCode::OK,
        &json!({"availabilityZoneInfo": [
            {"zoneName": AVAILABILITY_ZONE, "zoneState": {"available": true}}
        ]}),
    ))
}

pub async fn limits(
    State(region): State<R>,
    c: Caller<Cinder>,
) -> Result<Response, ApiError<Cinder>> {
    let q = glimpse_core::volumes::records::ListQuery::default();
    let mine = glimpse_core::volumes::list(&region, &c, &q).await?;
    let gb: i64 = mine.iter().map(|v| v.size_gb).sum();
    let max_gb = (region.config.limits.max_virtual_size >> 30) as i64;
    Ok(reply(
        StatusCode::OK,
        &json!({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": -1,
            "maxTotalSnapshots": 0,
            "maxTotalVolumeGigabytes": -1,
            "maxTotalBackups": 0,
            "maxTotalBackupGigabytes": 0,
            "totalVolumesUsed": mine.len(),
            "totalGigabytesUsed": gb,
            "totalSnapshotsUsed": 0,
            "totalBackupsUsed": 0,
            "totalBackupGigabytesUsed": 0,
            "maxVolumeSize": max_gb,
        }}}),
    ))
}

pub async fn extensions(_caller: Caller<Cinder>) -> Result<Response, ApiError<Cinder>> {
    Ok(reply(StatusCode::OK, &json!({"extensions": []})))
}

//! Handlers for image members: share (`POST`, 200 with the membership), list, show, accept or
//! reject (`PUT {"status": …}`), and unshare (`DELETE`, 204). Stateless.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use glimpse_core::images::members;
use glimpse_core::region::Region;

use super::records::{body_bytes, parse_json};
use super::view::{MemberView, MembersView, json_response};
use super::{auth, glance};
use crate::errors::ApiError;

type RegionState = State<Arc<Region>>;

/// `POST /v2/images/{id}/members` with `{"member": "<project id>"}`.
pub async fn add(
    State(region): RegionState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = auth(&region, &headers).await?;
    let body = parse_json(&body_bytes(body)?)?;
    let obj = body.as_object().ok_or_else(|| {
        glance(Error::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        ))
    })?;
    let member = obj
        .get("member")
        .ok_or_else(|| glance(Error::bad_request("Member to be added not specified")))?;
    let member = member.as_str().ok_or_else(|| {
        glance(Error::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        ))
    })?;
    if member.is_empty() {
        return Err(glance(Error::bad_request("Member can't be empty")));
    }
    let m = members::add(&region, &caller, &id, member)
        .await
        .map_err(glance)?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `GET /v2/images/{id}/members`.
pub async fn list(
    State(region): RegionState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = auth(&region, &headers).await?;
    let ms = members::list(&region, &caller, &id).await.map_err(glance)?;
    Ok(json_response(StatusCode::OK, &MembersView(&ms)))
}

/// `GET /v2/images/{id}/members/{member_id}`.
pub async fn show(
    State(region): RegionState,
    headers: HeaderMap,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let caller = auth(&region, &headers).await?;
    let m = members::get(&region, &caller, &id, &member_id)
        .await
        .map_err(glance)?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `PUT /v2/images/{id}/members/{member_id}` with `{"status": "accepted"|"rejected"|"pending"}`.
pub async fn update(
    State(region): RegionState,
    headers: HeaderMap,
    Path((id, member_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = auth(&region, &headers).await?;
    let body = parse_json(&body_bytes(body)?)?;
    let form = || {
        glance(Error::bad_request(
            "Expected a status in the form: {\"status\": \"status\"}",
        ))
    };
    let obj = body.as_object().ok_or_else(form)?;
    let status = obj
        .get("status")
        .ok_or_else(|| glance(Error::bad_request("Status not specified")))?
        .as_str()
        .ok_or_else(form)?;
    let m = members::set_status(&region, &caller, &id, &member_id, status)
        .await
        .map_err(glance)?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `DELETE /v2/images/{id}/members/{member_id}`.
pub async fn remove(
    State(region): RegionState,
    headers: HeaderMap,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let caller = auth(&region, &headers).await?;
    members::remove(&region, &caller, &id, &member_id)
        .await
        .map_err(glance)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

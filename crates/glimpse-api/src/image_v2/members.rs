//! Handlers for image members: share (`POST`, 200 with the membership), list, show, accept or
//! reject (`PUT {"status": …}`), and unshare (`DELETE`, 204). Stateless.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use glimpse_core::Error;
use glimpse_core::images::members;
use glimpse_core::region::Region;

use super::glance;
use super::view::{MemberView, MembersView, json_response};
use crate::dialect::{ApiResult, Body, Caller, Glance};

type RegionState = State<Arc<Region>>;

/// `POST /v2/images/{id}/members` with `{"member": "<project id>"}`.
pub async fn add(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
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
    let m = members::add(&region, &caller, &id, member).await?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `GET /v2/images/{id}/members`.
pub async fn list(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    let ms = members::list(&region, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &MembersView(&ms)))
}

/// `GET /v2/images/{id}/members/{member_id}`.
pub async fn show(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((id, member_id)): Path<(String, String)>,
) -> ApiResult<Glance> {
    let m = members::get(&region, &caller, &id, &member_id).await?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `PUT /v2/images/{id}/members/{member_id}` with `{"status": "accepted"|"rejected"|"pending"}`.
pub async fn update(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((id, member_id)): Path<(String, String)>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
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
    let m = members::set_status(&region, &caller, &id, &member_id, status).await?;
    Ok(json_response(StatusCode::OK, &MemberView(&m)))
}

/// `DELETE /v2/images/{id}/members/{member_id}`.
pub async fn remove(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((id, member_id)): Path<(String, String)>,
) -> ApiResult<Glance> {
    members::remove(&region, &caller, &id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

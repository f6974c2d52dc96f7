//! Huawei IMS's in-region copy and job query (seed 003), mounted at `/<region>/ims`:
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/cloudimages/{image_id}/copy` | 200 `{"job_id": "<32 hex>"}` |
//! | GET | `/v1/cloudimages/job/{job_id}` | 200 the job (B.3 shape) |
//! | GET | `/v1/{project_id}/jobs/{job_id}` | 200 the job (the older, deprecated form) |
//!
//! Errors: `{"error": {"code": "IMG.xxxx", "message": "…"}}` (401 `IMG.0401`, 403
//! `IMG.0403`, 404 `IMG.0404`, 500 `IMG.0500`, 503, and the 400 codes of
//! [`glimpse_core::ims::submit`]). A job is visible only to its project (else 404).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use glimpse_core::ims::{self, CopyRequest, codes};
use glimpse_core::jobs::JobRecord;
use glimpse_core::region::Region;
use glimpse_core::{Error, Kind};
use glimpse_types::ims::{Entities, ImsJob, ImsStatus, JobId};
use serde_json::Value;

use crate::dialect::{ApiError, ApiResult, Body, Caller, Ims};

type R = Arc<Region>;

/// Routes mounted at `/<region>/ims`.
pub fn router(region: Arc<Region>) -> Router {
    Router::new()
        .route("/v1/cloudimages/{image_id}/copy", post(copy))
        .route("/v1/cloudimages/job/{job_id}", get(job))
        .route("/v1/{project_id}/jobs/{job_id}", get(project_job))
        .fallback(fallback)
        .with_state(region)
}

fn bad(message: String) -> ApiError<Ims> {
    ApiError::new(Error::bad_request(message).with_code(codes::BAD_REQUEST))
}

/// Reads an optional string field; any other JSON type is a 400.
fn field(body: &Value, name: &str) -> Result<Option<String>, ApiError<Ims>> {
    match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(bad(format!(
            "The {name} parameter must be a string, not {other}."
        ))),
    }
}

/// `POST /v1/cloudimages/{image_id}/copy`.
async fn copy(
    State(region): State<R>,
    caller: Caller<Ims>,
    Path(image_id): Path<String>,
    Body(doc, _): Body<Ims>,
) -> ApiResult<Ims> {
    if !doc.is_object() {
        return Err(bad("The request body must be a JSON object.".into()));
    }
    let req = CopyRequest {
        name: field(&doc, "name")?,
        description: field(&doc, "description")?,
        cmk_id: field(&doc, "cmk_id")?,
    };
    if req.cmk_id.as_deref() == Some("") {
        return Err(bad("The cmk_id parameter must not be empty.".into()));
    }
    let job = ims::submit(&region, &caller, &image_id, &req)
        .await
        .map_err(|e| ApiError::new(not_found_as_image(e, &image_id)))?;
    Ok((StatusCode::OK, axum::Json(JobId { job_id: job.id })).into_response())
}

/// Glance's 404 message, in IMS words.
fn not_found_as_image(e: Error, id: &str) -> Error {
    if e.kind == Kind::NotFound && e.code.is_none() {
        Error::not_found(format!("The image {id} does not exist."))
    } else {
        e
    }
}

async fn show(
    region: &Region,
    caller: &glimpse_core::auth::Caller,
    job_id: &str,
) -> ApiResult<Ims> {
    let project = caller.project()?;
    let missing = || {
        ApiError::new(Error::not_found(format!(
            "The job {job_id} does not exist."
        )))
    };
    let job = region
        .jobs
        .get(job_id)
        .await?
        .filter(|j| j.kind == ims::KIND && j.project_id == project)
        .ok_or_else(missing)?;
    Ok((StatusCode::OK, axum::Json(view(&job))).into_response())
}

/// A copy job as IMS shows it (B.3).
fn view(job: &JobRecord) -> ImsJob {
    let p: Option<ims::Params> = serde_json::from_value(job.params.clone()).ok();
    let status = ims::status(job);
    let failed = status == ImsStatus::Fail;
    ImsJob {
        begin_time: glimpse_types::ims::time(job.created_at),
        end_time: job
            .finished_at
            .map(glimpse_types::ims::time)
            .unwrap_or_default(),
        entities: Entities {
            image_id: p.as_ref().map(|p| p.image_id.clone()),
            image_name: p.map(|p| p.name),
            process_percent: if status == ImsStatus::Success {
                100.0
            } else {
                f64::from(job.progress.min(99))
            },
        },
        error_code: failed.then(|| ims::codes::JOB_FAILED.to_string()),
        fail_reason: failed.then(|| {
            job.error
                .clone()
                .unwrap_or_else(|| "the job was canceled".into())
        }),
        job_id: job.id.clone(),
        job_type: ims::JOB_TYPE.to_string(),
        status,
    }
}

/// `GET /v1/cloudimages/job/{job_id}`.
async fn job(
    State(region): State<R>,
    caller: Caller<Ims>,
    Path(job_id): Path<String>,
) -> ApiResult<Ims> {
    show(&region, &caller, &job_id).await
}

/// `GET /v1/{project_id}/jobs/{job_id}`: the path's project must be the token's (else 404,
/// as for any job the caller may not see).
async fn project_job(
    State(region): State<R>,
    caller: Caller<Ims>,
    Path((project_id, job_id)): Path<(String, String)>,
) -> ApiResult<Ims> {
    if caller.project()? != project_id {
        return Err(ApiError::new(Error::not_found(format!(
            "The job {job_id} does not exist."
        ))));
    }
    show(&region, &caller, &job_id).await
}

async fn fallback() -> ApiError<Ims> {
    ApiError::new(Error::not_found("The requested resource was not found."))
}

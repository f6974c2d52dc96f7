//! The image replicator extension (seeds 000 and 001), mounted at
//! `/<region>/image/v2/extension`:
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/image_replicator/jobs` | 202 `{"job_id"}` (seed 000) |
//! | GET | `/image_replicator/jobs` | 200 bare array of jobs (seed 001) |
//! | GET | `/image_replicator/jobs/{job_id}` | 200 one job |
//! | DELETE | `/image_replicator/jobs/{job_id}` | 204, cancel (409 unless `replicate_requested`/`replicating`) |
//! | GET | `/license_switch/types` | 200 `{"license_switch_types": [...]}` |
//! | GET | `/image_replicator/capabilities` | 200 what this region accepts as a destination (Glimpse's own, asked by other regions) |
//! | POST | `/image_replicator/adopt` | 200 `{"adopted": bool}`: publish a queued replica from content this region holds (service account only, else 403) |
//! | GET | `/image_replicator/uploads/{image_id}?os_hash_value=…` | 200 `{"image_id", "offset"}`: bytes of a cut replication upload this region holds (service account only, else 403) |
//!
//! Errors are WebOb text bodies (`401 Unauthorized\n\nAuthentication required.`,
//! `text/plain; charset=UTF-8`); success bodies are JSON with Python's separators and
//! `application/json; charset=UTF-8`, as the seeds show. A job is visible to its project
//! (admins see all); another project's job is 404. `GET …/jobs/{id}` also carries the job's
//! phase and, for `error`, its reason in `X-Glimpse-Job-Phase` / `X-Glimpse-Job-Error`
//! headers, and the byte a cut copy resumed from in `X-Glimpse-Job-Resumed-From` (the body
//! keeps exactly the seed's fields). POST takes an optional idempotency key
//! (`Idempotency-Key` header or `client_token` field, ≤ 64 printable ASCII characters).
//! Stateless: jobs live in the region's database ([`glimpse_core::replication`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use glimpse_core::Error;
use glimpse_core::images::adopt;
use glimpse_core::jobs::JobRecord;
use glimpse_core::region::Region;
use glimpse_core::replication::{self, Capabilities, Submission};
use glimpse_types::headers;
use glimpse_types::replicator::{
    Adopted, JobCreated, LicenseSwitchTypes, ReplicationJob, ReplicationStatus, UploadOffset,
};
use serde::Serialize;
use serde_json::Value;

use crate::dialect::{ApiError, ApiResult, Caller, Replicator};

type R = Arc<Region>;

/// The seed's answer to a request without `Content-Type: application/json`.
pub const NO_CONTENT_TYPE: &str = "There is no such action: Content-Type in header";

/// Longest idempotency key.
pub const MAX_KEY: usize = 64;

/// Routes mounted at `/<region>/image/v2/extension`.
pub fn router(region: Arc<Region>) -> Router {
    Router::new()
        .route("/image_replicator/jobs", get(list).post(create))
        .route("/image_replicator/jobs/{job_id}", get(show).delete(cancel))
        .route("/image_replicator/capabilities", get(capabilities))
        .route("/image_replicator/adopt", post(adopt))
        .route("/image_replicator/uploads/{image_id}", get(upload_offset))
        .route("/license_switch/types", get(license_switch_types))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(region)
}

fn rep(e: Error) -> ApiError<Replicator> {
    ApiError::new(e)
}

/// A JSON body as the seeds' service writes it.
fn reply<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let mut r = (status, crate::pyjson::dumps(v)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// `POST /image_replicator/jobs`.
async fn create(
    State(region): State<R>,
    caller: Caller<Replicator>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Replicator> {
    if !crate::request::is_json(&headers) {
        return Err(rep(Error::bad_request(NO_CONTENT_TYPE)));
    }
    let body = crate::request::body(body)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| {
            rep(Error::bad_request(
                "The Idempotency-Key header must be ASCII.",
            ))
        })?;
    let submission = parse_submission(&body, key.as_deref())?;
    let (job, _created) = replication::submit(&region, &caller, &caller.token, &submission).await?;
    Ok(reply(StatusCode::ACCEPTED, &JobCreated { job_id: job.id }))
}

/// `GET /image_replicator/jobs`: the caller's project's jobs (an admin's: every job).
async fn list(State(region): State<R>, caller: Caller<Replicator>) -> ApiResult<Replicator> {
    let project = caller.project()?;
    let scope = if caller.is_admin() {
        None
    } else {
        Some(project)
    };
    let jobs = region
        .jobs
        .list::<replication::ReplicateHandler>(scope)
        .await?;
    let views: Vec<ReplicationJob> = jobs.iter().filter_map(replication::view).collect();
    Ok(reply(StatusCode::OK, &views))
}

/// A job of the caller's project (any for an admin), else 404.
async fn visible_job(
    region: &Region,
    caller: &glimpse_core::auth::Caller,
    id: &str,
) -> Result<(JobRecord, ReplicationJob), ApiError<Replicator>> {
    let project = caller.project()?;
    let missing = || rep(Error::not_found(format!("The job ID {id} does not exist.")));
    let job = region.jobs.get(id).await?.ok_or_else(missing)?;
    if job.kind != replication::KIND || !(caller.is_admin() || job.project_id == project) {
        return Err(missing());
    }
    let view = replication::view(&job).ok_or_else(missing)?;
    Ok((job, view))
}

/// `GET /image_replicator/jobs/{job_id}`.
async fn show(
    State(region): State<R>,
    caller: Caller<Replicator>,
    Path(id): Path<String>,
) -> ApiResult<Replicator> {
    let (job, view) = visible_job(&region, &caller, &id).await?;
    let mut r = reply(StatusCode::OK, &view);
    if let Ok(v) = HeaderValue::from_str(&header_text(&job.phase)) {
        r.headers_mut().insert(headers::JOB_PHASE, v);
    }
    // A copy cut by a crash or a lost connection went on from this byte, not from zero.
    if let Some(n) = job.result.as_ref().and_then(|r| r["resumed_from"].as_u64()) {
        r.headers_mut()
            .insert(headers::JOB_RESUMED_FROM, HeaderValue::from(n));
    }
    if view.status == ReplicationStatus::Error {
        let reason = job.error.as_deref().unwrap_or("unknown");
        if let Ok(v) = HeaderValue::from_str(&header_text(reason)) {
            r.headers_mut().insert(headers::JOB_ERROR, v);
        }
    }
    Ok(r)
}

/// `DELETE /image_replicator/jobs/{job_id}`: asks the job to cancel (204), which the worker
/// carries out asynchronously (`cancel_requested` → `canceling` → `canceled`).
async fn cancel(
    State(region): State<R>,
    caller: Caller<Replicator>,
    Path(id): Path<String>,
) -> ApiResult<Replicator> {
    let (_, view) = visible_job(&region, &caller, &id).await?;
    let refused = || {
        rep(Error::conflict(format!(
            "The status of job {id} isn't replicate_requested or replicating."
        )))
    };
    if !view.status.cancelable() {
        return Err(refused());
    }
    if !region.jobs.request_cancel(&id).await? {
        return Err(refused());
    }
    tracing::info!(job = %id, user = %caller.user_id, "replication cancel requested");
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Ok(r)
}

/// `GET /image_replicator/capabilities`.
async fn capabilities(
    State(region): State<R>,
    _caller: Caller<Replicator>,
) -> ApiResult<Replicator> {
    let caps = Capabilities::from(&region.config.replication);
    Ok(reply(StatusCode::OK, &caps))
}

/// `POST /image_replicator/adopt` (`{"image_id", "size", "checksum", "os_hash_value"}`):
/// asks this (destination) region to publish a queued replica from content it already holds
/// ([`glimpse_core::images::adopt`]); 200 `{"adopted": true|false}`, 403 unless the caller is
/// the service account.
async fn adopt(
    State(region): State<R>,
    caller: Caller<Replicator>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Replicator> {
    let body = crate::request::body(body)?;
    let (id, content) = parse_adopt(&body)?;
    let adopted = adopt::adopt(&region, &caller, &id, &content).await?;
    Ok(reply(StatusCode::OK, &Adopted { adopted }))
}

/// `GET /image_replicator/uploads/{image_id}?os_hash_value=<sha512>`: how many bytes of a
/// cut replication upload of that content this (destination) region holds, so the sender
/// continues there ([`glimpse_core::images::upload_offset`]).
async fn upload_offset(
    State(region): State<R>,
    Path(image_id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    caller: Caller<Replicator>,
) -> ApiResult<Replicator> {
    let query = query.unwrap_or_default();
    let sha = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "os_hash_value")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| rep(Error::bad_request("os_hash_value is required.")))?;
    let offset = glimpse_core::images::upload_offset(&region, &caller, &image_id, &sha).await?;
    Ok(reply(StatusCode::OK, &UploadOffset { image_id, offset }))
}

/// Reads an adopt body into the image id and the content it should hold.
fn parse_adopt(body: &[u8]) -> Result<(String, adopt::Content), Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("Malformed JSON in request body: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::bad_request("The request body must be a JSON object."))?;
    let size = obj
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::bad_request("size must be a non-negative integer."))?;
    Ok((
        field(obj, "image_id")?.to_string(),
        adopt::Content {
            size,
            checksum: field(obj, "checksum")?.to_string(),
            os_hash_value: field(obj, "os_hash_value")?.to_string(),
        },
    ))
}

/// `GET /license_switch/types`.
async fn license_switch_types(
    State(region): State<R>,
    _caller: Caller<Replicator>,
) -> ApiResult<Replicator> {
    let license_switch_types = region.config.replication.license_switch_types.clone();
    Ok(reply(
        StatusCode::OK,
        &LicenseSwitchTypes {
            license_switch_types,
        },
    ))
}

/// Unknown paths: 401 without a valid token, else 404 (behind keystonemiddleware).
async fn fallback(State(region): State<R>, req: Request) -> ApiResult<Replicator> {
    if let Err(r) =
        Caller::<Replicator>::of(req.headers(), req.extensions(), region.auth.as_ref()).await
    {
        return Ok(r);
    }
    Err(rep(Error::not_found("The resource could not be found.")))
}

async fn method_not_allowed(req: Request) -> Response {
    let msg = format!(
        "The method {} is not allowed for this resource.",
        req.method()
    );
    crate::errors::webob_text(StatusCode::METHOD_NOT_ALLOWED, &msg)
}

/// Printable ASCII only, for a header value.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(500)
        .collect()
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(Error::bad_request(format!("{name} is required."))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::bad_request(format!(
            "{name} must be a string, not {other}."
        ))),
    }
}

fn check_key(key: &str, what: &str) -> Result<String, Error> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::bad_request(format!(
            "{what} must be 1 to {MAX_KEY} printable ASCII characters."
        )));
    }
    Ok(key.to_string())
}

/// Reads a POST body (`{"image_id", "tenant_id_dst", "client_token"?}`) and the
/// `Idempotency-Key` header into a [`Submission`]; every problem is 400 with a clear message.
pub fn parse_submission(body: &[u8], header_key: Option<&str>) -> Result<Submission, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            "The request body is empty; a JSON object with image_id and tenant_id_dst was expected.",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("Malformed JSON in request body: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        Error::bad_request(
            "The request body must be a JSON object with image_id and tenant_id_dst.",
        )
    })?;
    let image_id = field(obj, "image_id")?;
    let image_id = uuid::Uuid::try_parse(image_id)
        .map_err(|_| Error::bad_request(format!("image_id {image_id:?} is not a valid UUID.")))?
        .hyphenated()
        .to_string();
    let tenant = field(obj, "tenant_id_dst")?;
    if tenant.is_empty()
        || tenant.len() > 64
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::bad_request(format!(
            "tenant_id_dst {tenant:?} is not a valid tenant ID."
        )));
    }
    let body_key = match obj.get("client_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(check_key(s, "client_token")?),
        Some(other) => {
            return Err(Error::bad_request(format!(
                "client_token must be a string, not {other}."
            )));
        }
    };
    let header_key = header_key
        .map(|k| check_key(k.trim(), "Idempotency-Key"))
        .transpose()?;
    let idempotency_key = match (header_key, body_key) {
        (Some(h), Some(b)) if h != b => {
            return Err(Error::bad_request(
                "The Idempotency-Key header and client_token differ.",
            ));
        }
        (h, b) => h.or(b),
    };
    Ok(Submission {
        image_id,
        tenant_id_dst: tenant.to_string(),
        idempotency_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: &str = "335eef3f-551d-46e1-8781-173f43209d48";
    const TENANT: &str = "91b5c7c09cbd45caa3c146fd67ae471e";

    fn parse(body: &str, key: Option<&str>) -> Result<Submission, String> {
        parse_submission(body.as_bytes(), key).map_err(|e| {
            assert_eq!(e.kind, glimpse_core::Kind::BadRequest);
            e.message
        })
    }

    #[test]
    fn the_seed_body_parses() {
        let s = parse(
            &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"{TENANT}"}}"#),
            None,
        )
        .unwrap();
        assert_eq!(s.image_id, IMG);
        assert_eq!(s.tenant_id_dst, TENANT);
        assert_eq!(s.idempotency_key, None);
        // Upper case and the simple form normalise to Glance's id.
        let s = parse(
            &format!(
                r#"{{"image_id":"{}","tenant_id_dst":"{TENANT}"}}"#,
                IMG.to_uppercase().replace('-', "")
            ),
            None,
        )
        .unwrap();
        assert_eq!(s.image_id, IMG);
    }

    #[test]
    fn bad_bodies_are_400_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("  ", "empty"),
            ("{", "Malformed JSON"),
            ("[]", "JSON object"),
            (r#"{"tenant_id_dst":"t"}"#, "image_id is required"),
            (
                r#"{"image_id":null,"tenant_id_dst":"t"}"#,
                "image_id is required",
            ),
            (
                r#"{"image_id":5,"tenant_id_dst":"t"}"#,
                "image_id must be a string",
            ),
            (
                r#"{"image_id":"nope","tenant_id_dst":"t"}"#,
                "not a valid UUID",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}"}}"#),
                "tenant_id_dst is required",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":[]}}"#),
                "tenant_id_dst must be a string",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":""}}"#),
                "not a valid tenant ID",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"a/b"}}"#),
                "not a valid tenant ID",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"t","client_token":1}}"#),
                "client_token must be a string",
            ),
            (
                &format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"t","client_token":""}}"#),
                "client_token must be",
            ),
        ];
        for (body, want) in cases {
            let msg = parse(body, None).unwrap_err();
            assert!(msg.contains(want), "{body}: {msg}");
        }
        let long = "k".repeat(MAX_KEY + 1);
        let body = format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"t"}}"#);
        assert!(
            parse(&body, Some(&long))
                .unwrap_err()
                .contains("Idempotency-Key")
        );
    }

    #[test]
    fn idempotency_key_from_header_or_body() {
        let body = |tok: &str| format!(r#"{{"image_id":"{IMG}","tenant_id_dst":"t"{tok}}}"#);
        assert_eq!(
            parse(&body(""), Some("k1"))
                .unwrap()
                .idempotency_key
                .as_deref(),
            Some("k1")
        );
        assert_eq!(
            parse(&body(r#","client_token":"k2""#), None)
                .unwrap()
                .idempotency_key
                .as_deref(),
            Some("k2")
        );
        assert_eq!(
            parse(&body(r#","client_token":"k3""#), Some("k3"))
                .unwrap()
                .idempotency_key
                .as_deref(),
            Some("k3")
        );
        assert!(
            parse(&body(r#","client_token":"a""#), Some("b"))
                .unwrap_err()
                .contains("differ")
        );
    }

    #[test]
    fn header_text_is_printable() {
        assert_eq!(header_text("a\nb é"), "a?b ?");
    }
}

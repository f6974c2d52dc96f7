//! The compute API (a Nova subset), mounted at `/<region>/compute`:
//!
//! | method | path (under `/v2.1`, `/v2.1/{project_id}` or `/v2/{project_id}`) | answer |
//! |---|---|---|
//! | GET | `/` (mount point), `/v2.1/`, `/v2/` | version documents |
//! | GET | `/flavors`, `/flavors/detail`, `/flavors/{id}` | the fixed flavors |
//! | POST | `/servers` | 202 `{"server": {id, links, OS-DCF:diskConfig, security_groups, adminPass}}` |
//! | GET | `/servers`, `/servers/detail`, `/servers/{id}` | Nova's views |
//! | DELETE | `/servers/{id}` | 204 |
//! | POST | `/servers/{id}/action` | `os-stop`, `os-start`, `pause`, `unpause`, `suspend`, `resume`, `createImage` (seed 004), `glimpse-write-disk` |
//! | GET, DELETE | `/images/{id}`; GET `/images`, `/images/detail` | Nova's image proxy over this region's Glance records (before 2.36) |
//! | GET, POST, PUT, DELETE | `/images/{id}/metadata[/{key}]` | the image metadata proxy (before 2.39) |
//! | GET, POST | `/os-keypairs`; GET, DELETE `/os-keypairs/{name}` | the caller's key pairs (`keypairs.rs`) |
//!
//! A project id in the URL must be the token's project: otherwise 400 "Malformed request
//! URL" (Nova's `wsgi.Resource`). Microversions: `OpenStack-API-Version: compute X` or
//! `X-OpenStack-Nova-API-Version: X` (2.1 to [`COMPUTE`]`.max`, `latest`), echoed back with
//! `Vary`; paths under `/v2/{project_id}` are the legacy v2.0 API and ignore them. Errors are
//! Nova's `{"<fault>": {"code", "message"}}` (`errors.rs`, [`Nova`]); a missing or
//! invalid token is keystonemiddleware's 401 `{"error": {...}}`, as in front of a real Nova.

mod attachments;
mod flavors;
mod image_metadata;
mod images;
mod keypairs;
mod servers;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::region::Region;
use serde_json::json;

use crate::dialect::{ApiError, Nova, method_not_allowed, not_found};
use crate::microversion::{COMPUTE, Version};

type R = Arc<Region>;

/// How the request named its base: the URL prefix links are built from, the project id in
/// the URL (if any) and whether it is the legacy v2.0 API.
#[derive(Debug, Clone)]
pub struct Base {
    /// `v2.1`, `v2.1/<project>` or `v2/<project>`.
    pub prefix: String,
    pub project: Option<String>,
    pub version: Version,
}

pub(crate) fn nova(e: Error) -> ApiError<Nova> {
    ApiError::new(e)
}

/// Routes mounted at `/<region>/compute`.
pub fn router(region: Arc<Region>) -> Router {
    let api = Router::new()
        .merge(flavors::routes())
        .merge(servers::routes())
        .merge(images::routes())
        .merge(image_metadata::routes())
        .merge(attachments::routes())
        .merge(keypairs::routes());
    let inner = Router::new()
        .route("/", get(versions))
        .route("/v2.1", get(version_v21))
        .route("/v2.1/", get(version_v21))
        .route("/v2", get(version_v20))
        .route("/v2/", get(version_v20))
        .nest("/v2.1", api)
        .fallback(async || not_found::<Nova>())
        .method_not_allowed_fallback(async || method_not_allowed::<Nova>())
        .with_state(region);
    // Around the whole router (not per route), so the project-stripping rewrite happens
    // before routing.
    let service = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(negotiate))
        .service(inner);
    Router::new().fallback_service(service)
}

/// True for a URL segment that is a project id rather than a collection (`servers`, …).
fn is_project_segment(s: &str) -> bool {
    !s.is_empty()
        && !matches!(
            s,
            "servers" | "flavors" | "images" | "limits" | "extensions" | "os-availability-zone"
        )
        && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Strips a project id from the path (recording it in [`Base`]), parses the microversion,
/// runs the request, and echoes the version headers.
async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let (prefix, project, rest, legacy) = match segs.as_slice() {
        ["v2", p, rest] if !p.is_empty() => (format!("v2/{p}"), Some(p.to_string()), *rest, true),
        ["v2", p] if !p.is_empty() => (format!("v2/{p}"), Some(p.to_string()), "", true),
        ["v2.1", p, rest] if is_project_segment(p) => {
            (format!("v2.1/{p}"), Some(p.to_string()), *rest, false)
        }
        ["v2.1", p] if is_project_segment(p) => {
            (format!("v2.1/{p}"), Some(p.to_string()), "", false)
        }
        _ => ("v2.1".to_string(), None, "", false),
    };
    if project.is_some() {
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let new = if rest.is_empty() {
            format!("/v2.1{query}")
        } else {
            format!("/v2.1/{rest}{query}")
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
    let version = if legacy {
        COMPUTE.min
    } else {
        match COMPUTE.requested(req.headers()) {
            Ok(v) => v,
            Err((status, message)) => return fault(status, &message),
        }
    };
    req.extensions_mut().insert(Base {
        prefix,
        project,
        version,
    });
    let mut resp = next.run(req).await;
    if !legacy {
        COMPUTE.echo(version, resp.headers_mut());
    }
    resp
}

/// A Nova fault with any status (`errors.rs` names it).
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    let name = crate::errors::fault_name(status.as_u16());
    reply(
        status,
        json!({ name: {"code": status.as_u16(), "message": message} }),
    )
}

/// The public URL of the compute base the request used (`…/compute/v2.1[/<project>]`).
pub(crate) fn base_url(region: &Region, base: &Base) -> String {
    format!("{}/compute/{}", region.url, base.prefix)
}

/// The bookmark form (no version segment), as Nova links it.
pub(crate) fn bookmark_url(region: &Region, base: &Base) -> String {
    match &base.project {
        Some(p) => format!("{}/compute/{p}", region.url),
        None => format!("{}/compute", region.url),
    }
}

/// A JSON reply.
pub(crate) fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn version_doc(
    region: &Region,
    id: &str,
    status: &str,
    version: &str,
    min: &str,
    path: &str,
) -> serde_json::Value {
    json!({
        "id": id,
        "status": status,
        "version": version,
        "min_version": min,
        "updated": if id == "v2.0" { "2011-01-21T11:33:21Z" } else { "2013-07-23T11:33:21Z" },
        "links": [{"rel": "self", "href": format!("{}/compute/{path}/", region.url)}],
        "media-types": [{
            "base": "application/json",
            "type": format!("application/vnd.openstack.compute+json;version={}", &id[1..]),
        }],
    })
}

fn v21(region: &Region) -> serde_json::Value {
    version_doc(
        region,
        "v2.1",
        "CURRENT",
        &COMPUTE.max.to_string(),
        &COMPUTE.min.to_string(),
        "v2.1",
    )
}

fn v20(region: &Region) -> serde_json::Value {
    version_doc(region, "v2.0", "SUPPORTED", "", "", "v2")
}

async fn versions(State(region): State<R>) -> Response {
    reply(
        StatusCode::OK,
        json!({"versions": [v20(&region), v21(&region)]}),
    )
}

async fn version_v21(State(region): State<R>) -> Response {
    reply(StatusCode::OK, json!({"version": v21(&region)}))
}

async fn version_v20(State(region): State<R>) -> Response {
    reply(StatusCode::OK, json!({"version": v20(&region)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_segments() {
        assert!(is_project_segment("b7a7b63e92174a95a999c95da856f143"));
        assert!(!is_project_segment("servers"));
        assert!(!is_project_segment("flavors"));
        assert!(!is_project_segment(""));
    }
}

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
//! `X-OpenStack-Nova-API-Version: X` (2.1 to [`MAX_VERSION`], `latest`), echoed back with
//! `Vary`; paths under `/v2/{project_id}` are the legacy v2.0 API and ignore them. Errors are
//! Nova's `{"<fault>": {"code", "message"}}` (`errors.rs`, [`Dialect::Nova`]); a missing or
//! invalid token is keystonemiddleware's 401 `{"error": {...}}`, as in front of a real Nova.

/// The caller of a handler (see [`auth`]), or return its 401/400 response.
macro_rules! caller {
    ($region:expr, $headers:expr, $base:expr) => {
        match auth(&$region, &$headers, &$base).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

/// The value of a domain result, or return its Nova fault.
macro_rules! tryn {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return nova(e).into_response(),
        }
    };
}

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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::auth::Caller;
use glimpse_core::region::Region;
use glimpse_core::{Error, Kind};
use serde_json::json;

use crate::errors::{ApiError, Dialect};

type R = Arc<Region>;

/// The highest microversion served (2.47: embedded flavor in server views; 2.45: createImage
/// answers `{"image_id"}`; 2.39: no Nova-side image metadata quota; 2.37: `networks`
/// required; 2.36: the image proxy answers 404).
pub const MAX_VERSION: Version = Version(2, 47);
pub const MIN_VERSION: Version = Version(2, 1);

/// A compute microversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn at_least(self, minor: u32) -> bool {
        self >= Version(2, minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// How the request named its base: the URL prefix links are built from, the project id in
/// the URL (if any) and whether it is the legacy v2.0 API.
#[derive(Debug, Clone)]
pub struct Base {
    /// `v2.1`, `v2.1/<project>` or `v2/<project>`.
    pub prefix: String,
    pub project: Option<String>,
    pub version: Version,
}

pub(crate) fn nova(e: Error) -> ApiError {
    ApiError::new(Dialect::Nova, e)
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
        .fallback(not_found)
        .method_not_allowed_fallback(bad_method)
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
        MIN_VERSION
    } else {
        match requested_version(req.headers()) {
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
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("compute {version}")) {
            h.insert("openstack-api-version", v);
        }
        if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
            h.insert("x-openstack-nova-api-version", v);
        }
        h.insert(
            header::VARY,
            HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
        );
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

/// The microversion a request asks for (2.1 when it asks for none); 400 when malformed, 406
/// when out of range.
fn requested_version(headers: &HeaderMap) -> Result<Version, (StatusCode, String)> {
    let text = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let asked = text("openstack-api-version")
        .into_iter()
        .find_map(|v| {
            let mut parts = v.split_whitespace();
            (parts.next()?.eq_ignore_ascii_case("compute"))
                .then(|| parts.next().map(str::to_string))?
        })
        .or_else(|| text("x-openstack-nova-api-version").into_iter().next());
    let Some(asked) = asked else {
        return Ok(MIN_VERSION);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let parsed = asked
        .split_once('.')
        .and_then(|(a, b)| Some(Version(a.parse().ok()?, b.parse().ok()?)))
        .filter(|_| asked.chars().all(|c| c.is_ascii_digit() || c == '.'));
    let Some(v) = parsed else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "API Version String {asked} is of invalid format. Must be of format \
                 MajorNum.MinorNum."
            ),
        ));
    };
    if v < MIN_VERSION || v > MAX_VERSION {
        return Err((
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {v} is not supported by the API. Minimum is {MIN_VERSION} and maximum \
                 is {MAX_VERSION}."
            ),
        ));
    }
    Ok(v)
}

/// The caller of a compute request: 401 (keystonemiddleware's body) without a valid token,
/// 400 when the URL's project id is not the token's.
#[allow(clippy::result_large_err)] // a finished response, returned by every handler as is
pub(crate) async fn auth(
    region: &Region,
    headers: &HeaderMap,
    base: &Base,
) -> Result<Caller, Response> {
    let caller = match crate::request::caller(headers, region.auth.as_ref()).await {
        Ok(c) => c,
        Err(e) if e.kind == Kind::Unauthorized => {
            return Err(ApiError::new(Dialect::Keystone, e).into_response());
        }
        Err(e) => return Err(nova(e).into_response()),
    };
    if let Some(p) = &base.project {
        let ctx = caller.project_id.as_deref().unwrap_or("");
        if p != ctx {
            return Err(nova(Error::bad_request(format!(
                "Malformed request URL: URL's project_id '{p}' doesn't match Context's \
                 project_id '{ctx}'"
            )))
            .into_response());
        }
    }
    Ok(caller)
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
        &MAX_VERSION.to_string(),
        &MIN_VERSION.to_string(),
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

async fn not_found() -> Response {
    nova(Error::not_found("The resource could not be found.")).into_response()
}

async fn bad_method() -> Response {
    fault(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(name: &str, value: &str) -> Result<Version, (StatusCode, String)> {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        requested_version(&h)
    }

    #[test]
    fn microversion_headers() {
        assert_eq!(requested_version(&HeaderMap::new()), Ok(MIN_VERSION));
        assert_eq!(
            asked("openstack-api-version", "compute 2.45"),
            Ok(Version(2, 45))
        );
        assert_eq!(
            asked("openstack-api-version", "volume 3.1, compute 2.9"),
            Ok(Version(2, 9))
        );
        assert_eq!(
            asked("openstack-api-version", "volume 3.1"),
            Ok(MIN_VERSION)
        );
        assert_eq!(
            asked("x-openstack-nova-api-version", "2.37"),
            Ok(Version(2, 37))
        );
        assert_eq!(
            asked("openstack-api-version", "compute latest"),
            Ok(MAX_VERSION)
        );
        assert_eq!(
            asked("openstack-api-version", "compute 2.48")
                .unwrap_err()
                .0,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            asked("openstack-api-version", "compute 2.0").unwrap_err().0,
            StatusCode::NOT_ACCEPTABLE
        );
        for bad in ["compute 2", "compute 2.x", "compute -2.1"] {
            assert_eq!(
                asked("openstack-api-version", bad).unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert!(Version(2, 10) > Version(2, 9));
    }

    #[test]
    fn project_segments() {
        assert!(is_project_segment("b7a7b63e92174a95a999c95da856f143"));
        assert!(!is_project_segment("servers"));
        assert!(!is_project_segment("flavors"));
        assert!(!is_project_segment(""));
    }
}

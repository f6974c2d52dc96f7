//! The volume API (Cinder subset), mounted at `/<region>/volume`. The catalog names
//! `/<region>/volume/v3/<project>`; the seed (002) calls `/v2/<project>/…`. Both versions
//! serve the same resources; v3 takes Cinder's microversion header
//! (`OpenStack-API-Version: volume 3.x`, 3.0 to [`MAX_VERSION`], `latest`) and answers it back.
//!
//! | method | path (below `/{v2,v3}/{project_id}`) | answer |
//! |---|---|---|
//! | GET | `/` (unversioned) | 300 versions; `/v3/`, `/v2/`: 200 |
//! | POST | `/volumes` | 202 `{"volume"}` (`creating`; a job makes the file) |
//! | GET | `/volumes`, `/volumes/detail` | 200 |
//! | GET, PUT, DELETE | `/volumes/{id}` | 200, 200, 202 |
//! | POST | `/volumes/{id}/action` | `os-volume_upload_image` (202, seed 002), `os-attach`, `os-detach`, `os-reserve`, `os-unreserve`, `os-begin_detaching`, `os-roll_detaching`, `os-extend` (202), `os-set_bootable` (200) |
//! | GET, POST, PUT | `/volumes/{id}/metadata` | 200 (POST merges, PUT replaces) |
//! | GET, PUT, DELETE | `/volumes/{id}/metadata/{key}` | 200 |
//! | GET | `/types`, `/types/{id}`, `/os-availability-zone`, `/limits`, `/extensions` | 200 |
//!
//! Errors are Cinder faults (`{"badRequest": {"code": 400, "message": …}}`); a URL project
//! that is not the token's is the seed's `400 Malformed request url`. Stateless: everything
//! lives in the region's database and volume files ([`glimpse_core::volumes`]).

mod actions;
mod metadata;
mod misc;
mod records;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use glimpse_core::Error;
use glimpse_core::auth::Caller;
use glimpse_core::region::Region;
use serde_json::json;

use crate::errors::{ApiError, Dialect};

type R = Arc<Region>;

/// The highest microversion served (3.1: `visibility` and `protected` on upload).
pub const MAX_VERSION: (u32, u32) = (3, 1);
/// Cinder's `updated` date of the version document.
const UPDATED: &str = "2023-09-01T00:00:00Z";

pub(crate) fn cinder(e: Error) -> ApiError {
    ApiError::new(Dialect::Cinder, e)
}

/// The API version of a request: `v2`, or `v3` with a microversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self.major == 3 && (self.major, self.minor) >= (major, minor)
    }
}

/// Reads `OpenStack-API-Version: volume X.Y` (v3 only); 400 for a malformed one, 406 for one
/// out of range, as Cinder.
fn microversion(api: &str, headers: &HeaderMap) -> Result<Version, Rejected> {
    if api == "v2" {
        return Ok(Version { major: 2, minor: 0 });
    }
    let asked = headers
        .get_all("openstack-api-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|v| {
            let (service, ver) = v.split_once(' ')?;
            service
                .eq_ignore_ascii_case("volume")
                .then(|| ver.trim().to_string())
        });
    let Some(asked) = asked else {
        return Ok(Version { major: 3, minor: 0 });
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(Version {
            major: MAX_VERSION.0,
            minor: MAX_VERSION.1,
        });
    }
    let parsed = asked
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .filter(|_| !asked.starts_with('0') || asked.starts_with("0."));
    let Some((major, minor)) = parsed else {
        return Err(cinder(Error::bad_request(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        )))
        .into());
    };
    if (major, minor) < (3, 0) || (major, minor) > MAX_VERSION {
        return Err(Rejected::Status(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {major}.{minor} is not supported by the API. Minimum is 3.0 and maximum is {}.{}.",
                MAX_VERSION.0, MAX_VERSION.1
            ),
        ));
    }
    Ok(Version { major, minor })
}

/// A refused microversion: a domain error, or a status the domain has no kind for (406).
enum Rejected {
    Api(ApiError),
    Status(StatusCode, String),
}

impl From<ApiError> for Rejected {
    fn from(e: ApiError) -> Rejected {
        Rejected::Api(e)
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Rejected::Api(e) => e.into_response(),
            Rejected::Status(s, m) => fault(s, &m),
        }
    }
}

/// A Cinder fault with any status (the domain has no kind for 405 and 406).
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    crate::errors::cinder_fault(status, message)
}

/// Who calls (for a `v2`/`v3` URL; 404 otherwise), checked against the URL's project: a token of another project is the seed's
/// `400 Malformed request url`.
pub(crate) async fn caller(
    region: &Region,
    headers: &HeaderMap,
    api: &str,
    project_id: &str,
) -> Result<Caller, ApiError> {
    check_api(api)?;
    if project_id.is_empty() {
        return Err(cinder(Error::not_found("The resource could not be found.")));
    }
    let c = crate::request::caller(headers, region.auth.as_ref())
        .await
        .map_err(|e| match e.kind {
            // Seed 002: 401 "unauthorized (including Keystone down)".
            glimpse_core::Kind::Unavailable => cinder(Error::unauthorized(
                "The request you have made requires authentication (the identity service \
                 cannot be reached to validate the token).",
            )),
            _ => cinder(e),
        })?;
    if c.project_id.as_deref() != Some(project_id) {
        return Err(cinder(Error::bad_request("Malformed request url")));
    }
    Ok(c)
}

/// A JSON answer as Cinder writes it (`json.dumps`: Python's separators, ASCII escapes).
pub(crate) fn reply(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = (status, crate::pyjson::dumps_ascii(v)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Routes mounted at `/<region>/volume`.
pub fn router(region: Arc<Region>) -> Router {
    let api = Router::new()
        .route("/volumes", get(records::list).post(records::create))
        .route("/volumes/detail", get(records::detail))
        .route(
            "/volumes/{id}",
            get(records::show)
                .put(records::update)
                .delete(records::delete),
        )
        .route("/volumes/{id}/action", post(actions::action))
        .route(
            "/volumes/{id}/metadata",
            get(metadata::show_all)
                .post(metadata::create)
                .put(metadata::replace),
        )
        .route(
            "/volumes/{id}/metadata/{key}",
            get(metadata::show_one)
                .put(metadata::set_one)
                .delete(metadata::delete_one),
        )
        .route("/types", get(misc::types))
        .route("/types/{id}", get(misc::volume_type))
        .route("/os-availability-zone", get(misc::zones))
        .route("/limits", get(misc::limits))
        .route("/extensions", get(misc::extensions));
    Router::new()
        .route("/", get(versions_root))
        .route("/{api}", get(versions_one))
        .route("/{api}/", get(versions_one))
        .nest("/{api}/{project_id}", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(version_header))
        .with_state(region)
}

/// Checks the microversion of v3 requests and echoes it (`OpenStack-API-Version`, `Vary`).
async fn version_header(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let api = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if api != "v3" {
        return next.run(req).await;
    }
    let v = match microversion(api, req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(v);
    let mut resp = next.run(req).await;
    if let Ok(h) = HeaderValue::from_str(&format!("volume {}.{}", v.major, v.minor)) {
        resp.headers_mut().insert("openstack-api-version", h);
    }
    resp.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("OpenStack-API-Version"),
    );
    resp
}

/// The version of a request (set by [`version_header`] for v3).
pub(crate) fn version_of(ext: &axum::http::Extensions) -> Version {
    ext.get::<Version>()
        .copied()
        .unwrap_or(Version { major: 2, minor: 0 })
}

fn version_doc(region: &Region, which: &[&str]) -> serde_json::Value {
    let base = format!("{}/volume", region.url);
    let mut out = Vec::new();
    for v in which {
        let (id, status, version, min) = match *v {
            "v3" => (
                "v3.0",
                "CURRENT",
                format!("{}.{}", MAX_VERSION.0, MAX_VERSION.1),
                "3.0",
            ),
            _ => ("v2.0", "DEPRECATED", String::new(), ""),
        };
        out.push(json!({
            "id": id,
            "status": status,
            "version": version,
            "min_version": min,
            "updated": UPDATED,
            "links": [
                {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                {"rel": "self", "href": format!("{base}/{v}/")},
            ],
            "media-types": [{
                "base": "application/json",
                "type": format!("application/vnd.openstack.volume+json;version={}", &v[1..]),
            }],
        }));
    }
    json!({ "versions": out })
}

async fn versions_root(State(region): State<R>) -> Response {
    reply(
        StatusCode::MULTIPLE_CHOICES,
        &version_doc(&region, &["v2", "v3"]),
    )
}

async fn versions_one(
    State(region): State<R>,
    axum::extract::Path(api): axum::extract::Path<String>,
) -> Response {
    match api.as_str() {
        "v2" | "v3" => reply(StatusCode::OK, &version_doc(&region, &[api.as_str()])),
        _ => not_found().await,
    }
}

async fn not_found() -> Response {
    cinder(Error::not_found("The resource could not be found.")).into_response()
}

async fn method_not_allowed() -> Response {
    fault(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

/// The `{api}` path segment must be `v2` or `v3`.
fn check_api(api: &str) -> Result<(), ApiError> {
    if api == "v2" || api == "v3" {
        Ok(())
    } else {
        Err(cinder(Error::not_found("The resource could not be found.")))
    }
}

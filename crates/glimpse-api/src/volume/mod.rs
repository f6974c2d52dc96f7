//! The volume API (Cinder subset), mounted at `/<region>/volume`. The catalog names
//! `/<region>/volume/v3/<project>`; the seed (002) calls `/v2/<project>/…`. Both versions
//! serve the same resources; v3 takes Cinder's microversion header
//! (`OpenStack-API-Version: volume 3.x`, 3.0 to [`VOLUME`]`.max`, `latest`) and answers it back.
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
mod upload;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use glimpse_core::Error;
use glimpse_core::region::Region;
use serde_json::json;

use crate::dialect::{ApiError, Cinder, method_not_allowed, not_found};
use crate::microversion::{VOLUME, Version};

type R = Arc<Region>;

/// Cinder's `updated` date of the version document.
const UPDATED: &str = "2023-09-01T00:00:00Z";

pub(crate) fn cinder(e: Error) -> ApiError<Cinder> {
    ApiError::new(e)
}

/// A Cinder fault with any status (the domain has no kind for 405 and 406).
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    crate::errors::cinder_fault(status, message)
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
        .route(
            "/volumes",
            get(records::list::<false>).post(records::create),
        )
        .route("/volumes/detail", get(records::list::<true>))
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
                .post(metadata::set_all::<true>)
                .put(metadata::set_all::<false>),
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
        .fallback(async || not_found::<Cinder>())
        .method_not_allowed_fallback(async || method_not_allowed::<Cinder>())
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
    let v = match VOLUME.requested(req.headers()) {
        Ok(v) => v,
        Err((status, message)) => return fault(status, &message),
    };
    req.extensions_mut().insert(v);
    let mut resp = next.run(req).await;
    VOLUME.echo(v, resp.headers_mut());
    resp
}

/// The version of a request (set by [`version_header`] for v3).
pub(crate) fn version_of(ext: &axum::http::Extensions) -> Version {
    ext.get::<Version>().copied().unwrap_or(Version(2, 0))
}

fn version_doc(region: &Region, which: &[&str]) -> serde_json::Value {
    let base = format!("{}/volume", region.url);
    let mut out = Vec::new();
    for v in which {
        let (id, status, version, min) = match *v {
            "v3" => ("v3.0", "CURRENT", VOLUME.max.to_string(), "3.0"),
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
        _ => not_found::<Cinder>(),
    }
}

//! Discovery: the version document at the image endpoint root (`300 Multiple Choices`, no
//! token needed, as keystoneauth expects before its first `/v2` call), `/versions` (200), the
//! schemas under `/v2/schemas/` and `/v2/info/import`. Glimpse claims API v2.0 to v2.16 (2.17,
//! the new locations API, is not implemented). Static answers; no state.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use glimpse_core::region::Region;
use serde::Serialize;

use super::glance;
use super::view::json_response;
use crate::dialect::{ApiResult, Caller, Glance};

/// The newest image API version Glimpse implements.
const CURRENT_MINOR: u32 = 16;

#[derive(Serialize)]
struct Link {
    rel: &'static str,
    href: String,
}

#[derive(Serialize)]
struct Version {
    id: String,
    status: &'static str,
    links: Vec<Link>,
}

#[derive(Serialize)]
struct Versions {
    versions: Vec<Version>,
}

fn document(region: &Region) -> Versions {
    let href = format!("{}/v2/", region.image_url());
    Versions {
        versions: (0..=CURRENT_MINOR)
            .rev()
            .map(|minor| Version {
                id: format!("v2.{minor}"),
                status: if minor == CURRENT_MINOR {
                    "CURRENT"
                } else {
                    "SUPPORTED"
                },
                links: vec![Link {
                    rel: "self",
                    href: href.clone(),
                }],
            })
            .collect(),
    }
}

/// `GET /` → 300 with every version.
pub async fn versions(State(region): State<Arc<Region>>) -> Response {
    json_response(StatusCode::MULTIPLE_CHOICES, &document(&region))
}

/// `GET /versions` → 200 with the same document.
pub async fn versions_ok(State(region): State<Arc<Region>>) -> Response {
    json_response(StatusCode::OK, &document(&region))
}

/// `GET /v2/schemas/<path>`.
pub async fn schema(_caller: Caller<Glance>, Path(path): Path<String>) -> ApiResult<Glance> {
    let doc = super::schemas::schema(&path)
        .ok_or_else(|| glance(Error::not_found("The resource could not be found.")))?;
    let mut r = (StatusCode::OK, doc).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `GET /v2/info/import`: no interoperable import methods are offered.
pub async fn info_import(_caller: Caller<Glance>) -> ApiResult<Glance> {
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"import-methods": {"description": "Import methods available.",
            "type": "array", "value": []}}),
    ))
}

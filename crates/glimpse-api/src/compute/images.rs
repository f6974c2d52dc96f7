//! Nova's image proxy (`GET`/`DELETE /images/{id}`), what Tempest polls after `createImage`
//! at microversion 2.1: this region's Glance records in Nova's image view
//! ([`views::image`]), with Glance's visibility rules. From microversion 2.36 the proxy is
//! gone (404), as in Nova.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::{Error, Kind};
use serde_json::json;

use super::{Base, R, auth, nova, reply, views};

pub(super) fn routes() -> Router<R> {
    Router::new().route("/images/{id}", get(show).delete(remove))
}

/// The caller of a proxy request: 404 from microversion 2.36 (the proxy is gone), else the
/// usual authentication.
#[allow(clippy::result_large_err)] // a finished response
async fn proxy_caller(
    region: &glimpse_core::region::Region,
    base: &Base,
    headers: &HeaderMap,
) -> Result<glimpse_core::auth::Caller, Response> {
    if base.version.at_least(36) {
        return Err(nova(Error::not_found("The resource could not be found.")).into_response());
    }
    auth(region, headers, base).await
}

fn image_not_found(e: Error) -> Error {
    if e.kind == Kind::NotFound {
        Error::not_found("Image not found.")
    } else {
        e
    }
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match proxy_caller(&region, &base, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match glimpse_core::images::get(&region, &caller, &id).await {
        Ok(img) => reply(
            StatusCode::OK,
            json!({"image": views::image(&region, &base, &img)}),
        ),
        Err(e) => nova(image_not_found(e)).into_response(),
    }
}

async fn remove(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match proxy_caller(&region, &base, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match glimpse_core::images::delete(&region, &caller, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => nova(image_not_found(e)).into_response(),
    }
}

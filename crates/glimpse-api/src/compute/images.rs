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

fn gone_from(base: &Base) -> Option<Response> {
    base.version
        .at_least(36)
        .then(|| nova(Error::not_found("The resource could not be found.")).into_response())
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
    if let Some(r) = gone_from(&base) {
        return r;
    }
    let caller = match auth(&region, &headers, &base).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
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
    if let Some(r) = gone_from(&base) {
        return r;
    }
    let caller = match auth(&region, &headers, &base).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match glimpse_core::images::delete(&region, &caller, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => nova(image_not_found(e)).into_response(),
    }
}

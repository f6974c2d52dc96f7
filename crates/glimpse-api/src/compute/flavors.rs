//! `GET /flavors`, `/flavors/detail`, `/flavors/{id}`: the fixed flavors
//! ([`glimpse_core::compute::FLAVORS`]).

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Base, R, auth, nova, reply, views};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route("/flavors", get(list))
        .route("/flavors/detail", get(detail))
        .route("/flavors/{id}", get(show))
}

async fn list(state: State<R>, base: Extension<Base>, headers: HeaderMap) -> Response {
    flavors(state, base, headers, false).await
}

async fn detail(state: State<R>, base: Extension<Base>, headers: HeaderMap) -> Response {
    flavors(state, base, headers, true).await
}

async fn flavors(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    detail: bool,
) -> Response {
    if let Err(e) = auth(&region, &headers, &base).await {
        return e.into_response();
    }
    reply(StatusCode::OK, views::flavors(&region, &base, detail))
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = auth(&region, &headers, &base).await {
        return e.into_response();
    }
    match glimpse_core::compute::flavor(&id) {
        Ok(f) => reply(
            StatusCode::OK,
            json!({"flavor": views::flavor(&region, &base, &f, true)}),
        ),
        Err(e) => nova(e).into_response(),
    }
}

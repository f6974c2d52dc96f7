//! Glimpse's HTTP edge: one axum router per OpenStack API family, mounted under the path
//! prefixes the catalog names (`/identity/v3`, `/<region>/image`, …), with the conventions of
//! [`middleware`] and the error dialects of [`errors`]. Only this crate knows axum.

pub mod compute;
pub mod dialect;
pub mod errors;
pub mod identity_v3;
pub mod image_v2;
pub mod ims;
pub mod json_guard;
pub mod kms;
pub mod microversion;
pub mod middleware;
pub mod pyjson;
pub mod replicator;
pub mod request;
pub mod volume;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::cloud::Cloud;

use crate::dialect::{Cinder, Glance, Ims, Keystone, Kms, Nova};
use crate::middleware::Metrics;

/// Builds the whole HTTP application of a [`Cloud`].
pub fn router(cloud: Arc<Cloud>) -> Router {
    let metrics = Arc::new(Metrics::new());
    let c = cloud.clone();
    let mut app = Router::new().route(
        "/healthcheck",
        get(move |headers: axum::http::HeaderMap| healthcheck(c.clone(), headers)),
    );
    let m = metrics.clone();
    app = app.route("/metrics", get(move || async move { metrics_text(&m) }));
    if let Some(identity) = &cloud.identity {
        app = app
            .nest(
                "/identity",
                identity_v3::router(identity.clone()).layer(from_fn(json_guard::guard::<Keystone>)),
            )
            // `nest` does not route the mount point's trailing slash.
            .route("/identity/", identity_v3::versions_route(identity.clone()));
    }
    for region in &cloud.regions {
        // The image endpoint: the replicator extension under /v2/extension, Glance for the
        // rest. `nest_service` (unlike `nest`) also routes the mount point's trailing slash,
        // which Tempest's version probe asks for.
        let image = Router::new()
            .nest("/v2/extension", replicator::router(region.clone()))
            .fallback_service(
                image_v2::router(region.clone()).layer(from_fn(json_guard::guard::<Glance>)),
            );
        app = app.nest_service(&format!("/{}/image", region.name), image);
        // The rest only where the region serves it (`[[regions]] services`): an operator's
        // own Nova and Cinder keep those paths out of this process.
        let serves = |s: &str| region.config.serves(s);
        if serves("compute") {
            app = app.nest_service(
                &format!("/{}/compute", region.name),
                compute::router(region.clone()).layer(from_fn(json_guard::guard::<Nova>)),
            );
        }
        if serves("volume") {
            app = app.nest_service(
                &format!("/{}/volume", region.name),
                volume::router(region.clone()).layer(from_fn(json_guard::guard::<Cinder>)),
            );
        }
        if serves("ims") {
            app = app.nest(
                &format!("/{}/ims", region.name),
                ims::router(region.clone()).layer(from_fn(json_guard::guard::<Ims>)),
            );
        }
        if serves("kms") {
            app = app.nest(
                &format!("/{}/kms", region.name),
                kms::router(region.clone()).layer(from_fn(json_guard::guard::<Kms>)),
            );
        }
    }
    app.fallback(not_found)
        .layer(DefaultBodyLimit::max(cloud.config.max_json_body))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::observe,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
}

/// `OK`, or 503 `DRAINING` while the process drains before it stops (see `[node]
/// drain_seconds`), so that a load balancer takes the node out. Asked with
/// `Accept: application/json`, the same as `{"status": …, "identity": bool, "regions":
/// {"<name>": [services…]}}`: what this process serves.
async fn healthcheck(cloud: Arc<Cloud>, headers: axum::http::HeaderMap) -> Response {
    let draining = cloud.draining.load(std::sync::atomic::Ordering::SeqCst);
    let (status, text) = if draining {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "DRAINING")
    } else {
        (axum::http::StatusCode::OK, "OK")
    };
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if !json {
        return (status, text).into_response();
    }
    let regions: serde_json::Map<String, serde_json::Value> = cloud
        .regions
        .iter()
        .map(|r| (r.name.clone(), serde_json::json!(r.config.services)))
        .collect();
    let body = serde_json::json!({
        "status": text,
        "identity": cloud.identity.is_some(),
        "regions": regions,
    });
    (status, axum::Json(body)).into_response()
}

fn metrics_text(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": {"code": 404, "title": "Not Found",
            "message": "The resource could not be found."}}),
        ),
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"error": {"code": 500, "title": "Internal Server Error",
            "message": "The server has either erred or is incapable of performing the requested operation."}})),
    )
        .into_response()
}

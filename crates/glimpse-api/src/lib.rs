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
    let mut app = Router::new().route("/healthcheck", get(move || healthcheck(c.clone())));
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
        app = app.nest_service(
            &format!("/{}/compute", region.name),
            compute::router(region.clone()).layer(from_fn(json_guard::guard::<Nova>)),
        );
        app = app.nest_service(
            &format!("/{}/volume", region.name),
            volume::router(region.clone()).layer(from_fn(json_guard::guard::<Cinder>)),
        );
        app = app
            .nest(
                &format!("/{}/ims", region.name),
                ims::router(region.clone()).layer(from_fn(json_guard::guard::<Ims>)),
            )
            .nest(
                &format!("/{}/kms", region.name),
                kms::router(region.clone()).layer(from_fn(json_guard::guard::<Kms>)),
            );
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
/// drain_seconds`), so that a load balancer takes the node out.
async fn healthcheck(cloud: Arc<Cloud>) -> Response {
    if cloud.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "DRAINING").into_response();
    }
    "OK".into_response()
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

//! The image replicator extension (seeds 000 and 001) — being written.

use std::sync::Arc;

use axum::Router;
use glimpse_core::region::Region;

/// Routes mounted at `/<region>/image/v2/extension`.
pub fn router(region: Arc<Region>) -> Router {
    let _ = region;
    Router::new()
}

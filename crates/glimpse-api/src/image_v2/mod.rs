//! Glance v2 image API of one region, mounted at `/<region>/image`: the version document at
//! the root (300), and under `/v2` images, lists, tags, actions, members, data and schemas.
//! Handlers are thin: they authenticate (`X-Auth-Token`, 401 without a valid one, 403 for an
//! unscoped token), read the request, call `glimpse_core::images`, and render Glance's bodies
//! ([`view`]). Errors are Glance's WebOb shapes, negotiated on `Accept`
//! ([`crate::errors::negotiate_glance`]); unknown paths under `/v2` are 404 (401 first without a
//! token, as behind keystonemiddleware), a wrong method on a known path 405 with `Allow`.
//! Stateless: everything lives in the region's database and store.

mod data;
pub mod input;
pub mod list_cache;
mod members;
mod metadefs;
mod records;
pub mod schemas;
mod tasks;
mod versions;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use glimpse_core::Error;
use glimpse_core::region::Region;

use crate::dialect::{ApiError, Caller, Glance, not_found};
use crate::errors::GlanceMessage;

type R = Arc<Region>;

/// The image router's state: the region, and the cache of rendered lists.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub region: Arc<Region>,
    pub lists: Arc<list_cache::ListCache>,
}

impl FromRef<ApiState> for Arc<Region> {
    fn from_ref(s: &ApiState) -> Arc<Region> {
        s.region.clone()
    }
}

impl FromRef<ApiState> for Arc<list_cache::ListCache> {
    fn from_ref(s: &ApiState) -> Arc<list_cache::ListCache> {
        s.lists.clone()
    }
}

/// A Glance-dialect error.
pub(crate) fn glance(e: Error) -> ApiError<Glance> {
    ApiError::new(e)
}

impl crate::dialect::TokenSource for ApiState {
    fn validator(&self) -> &dyn glimpse_core::auth::TokenValidator {
        self.region.auth.as_ref()
    }
}

/// Routes mounted at `/<region>/image`.
pub fn router(region: Arc<Region>) -> Router {
    let v2 = Router::<ApiState>::new()
        .route("/images", get(records::list).post(records::create))
        .route(
            "/images/{id}",
            get(records::show)
                .patch(records::update)
                .delete(records::delete),
        )
        .route(
            "/images/{id}/file",
            put(data::upload)
                .get(data::download)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/images/{id}/actions/deactivate",
            post(records::set_active::<false>),
        )
        .route(
            "/images/{id}/actions/reactivate",
            post(records::set_active::<true>),
        )
        .route(
            "/images/{id}/tags/{tag}",
            put(records::tag).delete(records::tag),
        )
        .route(
            "/images/{id}/members",
            get(members::list).post(members::add),
        )
        .route(
            "/images/{id}/members/{member_id}",
            get(members::show)
                .put(members::update)
                .delete(members::remove),
        )
        .route("/schemas/{*path}", get(versions::schema))
        .route("/info/import", get(versions::info_import))
        .merge(metadefs::routes())
        .merge(tasks::routes());
    Router::new()
        .route("/", get(versions::versions))
        .route("/versions", get(versions::versions_ok))
        .nest("/v2", v2)
        .fallback(fallback)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(axum::middleware::from_fn(crate::errors::negotiate_glance))
        .with_state(ApiState {
            region,
            lists: Arc::new(list_cache::ListCache::default()),
        })
}

/// Unknown paths: under `/v2`, 401 without a valid token and 404 with one (Glance sits behind
/// keystonemiddleware); anywhere else, the version document (Glance's root application).
async fn fallback(State(region): State<R>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/v2" || path.starts_with("/v2/") {
        if let Err(r) =
            Caller::<Glance>::of(req.headers(), req.extensions(), region.auth.as_ref()).await
        {
            return r;
        }
        return not_found::<Glance>();
    }
    versions::versions(State(region)).await
}

/// The methods each route allows, as Glance's `Allow` header names them.
fn allowed_methods(route: &str) -> &'static str {
    let tail = route.rsplit_once("/v2").map_or(route, |(_, t)| t);
    if let Some(allow) = metadefs::allowed_methods(tail).or(tasks::allowed_methods(tail)) {
        return allow;
    }
    match tail {
        "/images" | "/images/{id}/members" => "GET, POST",
        "/images/{id}" => "GET, PATCH, DELETE",
        "/images/{id}/file" => "GET, PUT",
        "/images/{id}/actions/deactivate" | "/images/{id}/actions/reactivate" => "POST",
        "/images/{id}/tags/{tag}" => "PUT, DELETE",
        "/images/{id}/members/{member_id}" => "GET, PUT, DELETE",
        _ => "GET",
    }
}

/// Renders axum's bare 405 as Glance does (WebOb body, `Allow: GET, POST`).
async fn method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED
        || resp.extensions().get::<GlanceMessage>().is_some()
    {
        return resp;
    }
    let msg = format!("The method {method} is not allowed for this resource. ");
    let body = format!(
        "<html>\n <head>\n  <title>405 Method Not Allowed</title>\n </head>\n <body>\n  \
         <h1>405 Method Not Allowed</h1>\n  {msg}<br /><br />\n\n\n\n </body>\n</html>"
    );
    let mut out = (StatusCode::METHOD_NOT_ALLOWED, body).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    out.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static(allowed_methods(&route)),
    );
    out.extensions_mut().insert(GlanceMessage(msg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;

    use axum::body::Body;
    use tower::ServiceExt;

    struct NoTokens;

    // `async_trait` spelled out (this crate does not depend on it).
    impl glimpse_core::auth::TokenValidator for NoTokens {
        fn validate<'a, 'b, 'f>(
            &'a self,
            _: &'b str,
        ) -> Pin<Box<dyn Future<Output = Result<glimpse_core::auth::Caller, Error>> + Send + 'f>>
        where
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            Box::pin(async {
                Err(Error::unauthorized(
                    "The request you have made requires authentication.",
                ))
            })
        }
    }

    /// Mounted with `nest_service`, the version document answers at the endpoint both with and
    /// without a trailing slash (Tempest asks for `<endpoint>/`).
    #[tokio::test]
    async fn root_with_and_without_slash_under_nest_service() {
        let dir =
            std::env::temp_dir().join(format!("glimpse-api-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = glimpse_core::config::RegionConfig::named("r");
        config.database = format!("sqlite://{}", dir.join("r.db").display());
        config.store = "memory://".into();
        config.url = "http://test/r".into();
        let region = Arc::new(
            Region::open(
                &config,
                Arc::new(NoTokens),
                Arc::new(glimpse_core::service::ServiceAccount::none()),
            )
            .await
            .unwrap(),
        );
        let app = Router::new().nest_service("/r/image", router(region));
        for (path, want) in [
            ("/r/image", 300),
            ("/r/image/", 300),
            ("/r/image/versions", 200),
            ("/r/image/v2/images", 401),
            ("/r/image/v2/nosuch", 401),
        ] {
            let req = Request::builder().uri(path).body(Body::empty()).unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), want, "{path}");
        }
        let req = Request::builder()
            .method("PUT")
            .uri("/r/image/v2/images")
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET, POST");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

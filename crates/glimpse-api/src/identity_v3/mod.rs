//! Keystone v3 subset, mounted at `/identity`: version discovery (`GET /` → 300,
//! `GET /v3` → 200), tokens and the catalog ([`auth`]), projects, users, roles and role
//! assignments ([`projects`], [`users`], [`roles`]), and regions, domains, services and
//! endpoints ([`catalog`]). Every error is Keystone's JSON (`{"error": {code, title,
//! message}}`), including malformed bodies (400) and unknown paths (404); no handler answers
//! with axum's plain-text rejections. Stateless over [`Identity`]: nothing to recover on a
//! crash.

mod auth;
mod auth_request;
mod catalog;
mod projects;
mod render;
mod roles;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use glimpse_core::Error;
use glimpse_core::identity::{DEFAULT_DOMAIN_ID, Identity, ListFilter};
use serde_json::{Map, Value, json};

use crate::dialect::{ApiResult, Keystone, method_not_allowed, not_found};

type Id = Arc<Identity>;

pub(crate) type Reply = ApiResult<Keystone>;

/// Routes mounted at `/identity`.
pub fn router(identity: Arc<Identity>) -> Router {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route(
            "/v3/auth/tokens",
            post(auth::issue)
                .get(auth::validate)
                .head(auth::check)
                .delete(auth::revoke),
        )
        .route("/v3/auth/catalog", get(auth::catalog))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route("/v3/projects", get(projects::list).post(projects::create))
        .route(
            "/v3/projects/{id}",
            get(projects::show)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route("/v3/projects/{p}/users/{u}/roles", get(roles::grants))
        .route(
            "/v3/projects/{p}/users/{u}/roles/{r}",
            put(roles::grant).get(roles::grant).delete(roles::grant),
        )
        .route("/v3/users", get(users::list).post(users::create))
        .route(
            "/v3/users/{id}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/v3/users/{id}/projects", get(users::projects))
        .route("/v3/users/{id}/password", post(users::change_password))
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route("/v3/roles/{id}", get(roles::show).delete(roles::delete))
        .route("/v3/role_assignments", get(roles::assignments))
        .route(
            "/v3/regions",
            get(catalog::regions).post(catalog::create_region),
        )
        .route(
            "/v3/regions/{id}",
            get(catalog::region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route("/v3/domains", get(catalog::domains))
        .route("/v3/domains/{id}", get(catalog::domain))
        .route("/v3/services", get(catalog::services))
        .route("/v3/services/{id}", get(catalog::service))
        .route("/v3/endpoints", get(catalog::endpoints))
        .route("/v3/endpoints/{id}", get(catalog::endpoint))
        .fallback(async || not_found::<Keystone>())
        .method_not_allowed_fallback(async || method_not_allowed::<Keystone>())
        .with_state(identity)
}

/// `GET /identity/` (with the trailing slash) as a route for the parent router: axum's `nest`
/// cannot express it from inside, so `lib.rs` mounts it with
/// `.route("/identity/", identity_v3::versions_route(identity))`.
pub fn versions_route(identity: Arc<Identity>) -> axum::routing::MethodRouter {
    get(versions).with_state(identity)
}

fn version_object(identity: &Identity) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/", identity.settings.identity_url)}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(axum::extract::State(identity): axum::extract::State<Id>) -> Response {
    reply(
        StatusCode::MULTIPLE_CHOICES,
        json!({"versions": {"values": [version_object(&identity)]}}),
    )
}

async fn version(axum::extract::State(identity): axum::extract::State<Id>) -> Response {
    reply(
        StatusCode::OK,
        json!({"version": version_object(&identity)}),
    )
}

/// A JSON response.
pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The `name`, `enabled` and `domain_id` filters of a list query.
pub(crate) fn list_filter(q: &HashMap<String, String>) -> Result<ListFilter, Error> {
    Ok(ListFilter {
        name: q.get("name").cloned(),
        enabled: query_bool(q, "enabled")?,
        domain_id: q.get("domain_id").cloned(),
    })
}

/// An update may name the domain only if it is the one it has (the default domain).
pub(crate) fn same_domain(domain_id: Option<String>, what: &str) -> Result<(), Error> {
    if domain_id.is_some_and(|d| d != DEFAULT_DOMAIN_ID) {
        return Err(Error::bad_request(format!(
            "A {what} cannot move to another domain."
        )));
    }
    Ok(())
}

/// `{"<key>": <value>}`.
pub(crate) fn one(status: StatusCode, key: &str, value: Value) -> Reply {
    Ok(reply(status, json!({ key: value })))
}

/// A list answer: `{"<key>": [...], "links": {...}}`.
pub(crate) fn listing(key: &str, items: Value, links: Value) -> Reply {
    Ok(reply(StatusCode::OK, json!({ key: items, "links": links })))
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Query parameters (first value of each name wins).
pub(crate) fn query(raw: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A boolean query parameter the way oslo's `bool_from_string` reads it; a bare `?name`
/// (empty value) is true, as in Keystone.
pub(crate) fn query_bool(q: &HashMap<String, String>, key: &str) -> Result<Option<bool>, Error> {
    let Some(v) = q.get(key) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "t" | "yes" | "y" | "on" => Ok(Some(true)),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(Some(false)),
        _ => Err(Error::bad_request(format!(
            "Invalid value for query parameter {key}: {v:?} is not a boolean."
        ))),
    }
}

/// The object under `key` in a JSON body (`{"project": {...}}`); 400 otherwise.
pub(crate) fn body_object(body: &[u8], key: &str) -> Result<Map<String, Value>, Error> {
    let v: Value = crate::request::json_body(body)?;
    match v {
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Object(o)) => Ok(o),
            _ => Err(Error::bad_request(format!(
                "Invalid input: '{key}' is a required property and must be an object."
            ))),
        },
        _ => Err(Error::bad_request(
            "The request body must be a JSON object.",
        )),
    }
}

/// A string field: absent or null → `None`, another type → 400.
pub(crate) fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(format!(
            "Invalid input for field '{key}': expected a string."
        ))),
    }
}

/// A string field where an explicit null means "clear": `Some(None)`.
pub(crate) fn nullable_string(
    m: &Map<String, Value>,
    key: &str,
) -> Result<Option<Option<String>>, Error> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(Error::bad_request(format!(
            "Invalid input for field '{key}': expected a string or null."
        ))),
    }
}

pub(crate) fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<Option<bool>, Error> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::bad_request(format!(
            "Invalid input for field '{key}': expected a boolean."
        ))),
    }
}

/// A list answer of records, each as `render` shows it, with the links of `path`.
pub(crate) fn records<'a, T: 'a>(
    identity: &Identity,
    key: &str,
    items: impl IntoIterator<Item = &'a T>,
    render: fn(&Identity, &T) -> Value,
    path: &str,
) -> Reply {
    let list: Vec<Value> = items.into_iter().map(|x| render(identity, x)).collect();
    listing(key, json!(list), list_links(identity, path))
}

/// `{"self": <url>, "previous": null, "next": null}` for list responses.
pub(crate) fn list_links(identity: &Identity, path: &str) -> Value {
    json!({"self": format!("{}{path}", identity.settings.identity_url),
           "previous": null, "next": null})
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use glimpse_core::db::{Db, Schema};
    use glimpse_core::identity::IdentitySettings;
    use tower::ServiceExt;

    async fn identity() -> Arc<Identity> {
        let db = Db::open("sqlite::memory:", Schema::Identity).await.unwrap();
        let settings = IdentitySettings {
            token_ttl: std::time::Duration::from_secs(60),
            identity_url: "http://h/identity/v3".into(),
            regions: vec![],
            validation_cache: std::time::Duration::ZERO,
            lockout: Default::default(),
            passwords: Default::default(),
        };
        Arc::new(Identity::open(db, settings).await.unwrap())
    }

    /// The way `lib.rs` mounts the router, plus the trailing-slash versions route.
    #[tokio::test]
    async fn versions_with_and_without_trailing_slash() {
        let id = identity().await;
        let app: Router = Router::new()
            .nest("/identity", router(id.clone()))
            .route("/identity/", versions_route(id));
        for (path, status) in [
            ("/identity", 300),
            ("/identity/", 300),
            ("/identity/v3", 200),
            ("/identity/v3/", 200),
            ("/identity/v3/nope", 404),
        ] {
            let r = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{path}");
        }
        let r = app
            .oneshot(
                Request::put("/identity/v3/auth/tokens")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
    }
}

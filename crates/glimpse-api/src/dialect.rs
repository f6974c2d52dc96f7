//! The API dialects at the HTTP edge, decided once per handler by its types: a marker type per
//! API ([`Keystone`], [`Glance`], [`Nova`], [`Cinder`], [`Replicator`], [`Ims`], [`Kms`]), the
//! [`Caller<D>`] extractor (the token validated, the caller checked against the URL, refusals in
//! the dialect's shape), [`ApiResult<D>`] (any domain error converts with `?`), the [`Body<D>`]
//! JSON extractor, and the dialect's [`not_found`] and [`method_not_allowed`] answers.

// A refusal is a finished response, returned by the extractor as is.
#![allow(clippy::result_large_err)]

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use glimpse_core::auth::TokenValidator;
use glimpse_core::identity::Identity;
use glimpse_core::region::Region;
use glimpse_core::{Error, Kind};
use serde::de::DeserializeOwned;

pub use crate::errors::ApiError;
use crate::errors::Shape;

/// A handler's result in dialect `D`.
pub type ApiResult<D, T = Response> = Result<T, ApiError<D>>;

/// The path parameters of a request (empty for a route without any).
#[derive(Default)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One API's conventions: its error shape, how it refuses a caller, how it reads JSON.
pub trait Dialect: Sized + Send + Sync + 'static {
    const SHAPE: Shape;
    /// The answer to a method a known path does not allow.
    const NOT_ALLOWED: &'static str = "The method specified is not allowed for this resource.";

    /// Checks made before the token is looked at.
    fn before(_path: &PathParams) -> Result<(), ApiError<Self>> {
        Ok(())
    }

    /// The answer to a token that did not validate.
    fn refused(e: Error) -> Response {
        ApiError::<Self>::new(e).into_response()
    }

    /// Checks of a validated caller against the request (the URL's project).
    fn admit(
        _caller: &glimpse_core::auth::Caller,
        _ext: &Extensions,
        _path: &PathParams,
    ) -> Result<(), Response> {
        Ok(())
    }

    /// Whether a token-less request passes the JSON guard untouched (the handler answers 401
    /// first, as keystonemiddleware does before any service reads a body).
    const AUTH_FIRST: bool = true;

    /// The refusal of a JSON body sent as `media` (the `Content-Type`'s media type, lower
    /// case; `None` when absent); `None` accepts it. Default (Glance, Cinder's WSGI): JSON or
    /// no type, else 415 `Invalid content type <type>.`
    fn wrong_media(media: Option<&str>) -> Option<Error> {
        match media {
            None | Some("application/json") => None,
            Some(other) => Some(Error::unsupported_media(format!(
                "Invalid content type {other}."
            ))),
        }
    }

    /// A request whose body is not JSON at all (image data): the JSON guard lets it by.
    fn exempt(_req: &axum::extract::Request) -> bool {
        false
    }

    /// A request whose handler checks the media type itself (the guard still refuses
    /// duplicate keys).
    fn own_media(_req: &axum::extract::Request) -> bool {
        false
    }

    /// A JSON request body; malformed or empty → 400 with the dialect's message.
    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
        crate::request::json_body(body)
    }
}

/// Keystone: `{"error": {"code", "title", "message"}}`.
pub struct Keystone;
/// Glance: WebOb's negotiated bodies.
pub struct Glance;
/// Nova: `{"<fault>": {"code", "message"}}`; keystonemiddleware's 401.
pub struct Nova;
/// Cinder: seed 002's faults.
pub struct Cinder;
/// The replicator extension: WebOb text bodies.
pub struct Replicator;
/// Huawei IMS: `{"error": {"code": "IMG.xxxx", "message"}}`.
pub struct Ims;
/// Huawei KMS: `{"error": {"error_code": "KMS.xxxx", "error_msg"}}`.
pub struct Kms;

impl Dialect for Keystone {
    const SHAPE: Shape = Shape::Keystone;
    /// Keystone reads the body before it authenticates.
    const AUTH_FIRST: bool = false;

    /// Keystone's `json_body` hook: JSON or no type, else 400.
    fn wrong_media(media: Option<&str>) -> Option<Error> {
        match media {
            None | Some("application/json") => None,
            Some(_) => Some(Error::bad_request(
                "Expecting to find application/json in Content-Type header - the server could \
                 not comply with the request since it is either malformed or otherwise \
                 incorrect. The client is assumed to be in error.",
            )),
        }
    }
    const NOT_ALLOWED: &'static str = "The method is not allowed for the requested URL.";
}

impl Dialect for Glance {
    const SHAPE: Shape = Shape::Glance;

    /// Image data is not JSON.
    fn exempt(req: &axum::extract::Request) -> bool {
        let path = req.uri().path();
        *req.method() == axum::http::Method::PUT
            && (path.ends_with("/file") || path.ends_with("/stage"))
    }

    /// `PATCH` takes the JSON-patch media types, checked (415) by its handler.
    fn own_media(req: &axum::extract::Request) -> bool {
        *req.method() == axum::http::Method::PATCH
    }

    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::bad_request("Body expected in request."));
        }
        serde_json::from_slice(body)
            .map_err(|_| Error::bad_request("Malformed JSON in request body."))
    }
}

impl Dialect for Nova {
    const SHAPE: Shape = Shape::Nova;

    /// Nova's WSGI layer takes a missing type or `text/plain` as JSON; seed 004's error example
    /// shows a form-encoded `createImage` answered by the action handler (400 `There is no
    /// such action: None`), so that type goes on to the handler too. Any other is 415.
    fn wrong_media(media: Option<&str>) -> Option<Error> {
        match media {
            None
            | Some("application/json" | "text/plain" | "application/x-www-form-urlencoded") => None,
            Some(other) => Some(Error::unsupported_media(format!(
                "Invalid content type {other}."
            ))),
        }
    }

    fn refused(e: Error) -> Response {
        if e.kind == Kind::Unauthorized {
            return ApiError::<Keystone>::new(e).into_response();
        }
        ApiError::<Nova>::new(e).into_response()
    }

    /// 400 when the URL's project id is not the token's.
    fn admit(
        caller: &glimpse_core::auth::Caller,
        ext: &Extensions,
        _path: &PathParams,
    ) -> Result<(), Response> {
        let Some(p) = ext
            .get::<crate::compute::Base>()
            .and_then(|b| b.project.as_deref())
        else {
            return Ok(());
        };
        let ctx = caller.project_id.as_deref().unwrap_or("");
        if p == ctx {
            return Ok(());
        }
        Err(ApiError::<Nova>::new(Error::bad_request(format!(
            "Malformed request URL: URL's project_id '{p}' doesn't match Context's \
             project_id '{ctx}'"
        )))
        .into_response())
    }
}

impl Dialect for Cinder {
    const SHAPE: Shape = Shape::Cinder;

    /// The `{api}` segment must be `v2` or `v3`, and a project must be named (404).
    fn before(path: &PathParams) -> Result<(), ApiError<Cinder>> {
        let api_ok = matches!(path.get("api"), Some("v2" | "v3"));
        if !api_ok || path.get("project_id").unwrap_or("").is_empty() {
            return Err(Error::not_found("The resource could not be found.").into());
        }
        Ok(())
    }

    /// Seed 002: 401 "unauthorized (including Keystone down)".
    fn refused(e: Error) -> Response {
        let e = match e.kind {
            Kind::Unavailable => Error::unauthorized(
                "The request you have made requires authentication (the identity service \
                 cannot be reached to validate the token).",
            ),
            _ => e,
        };
        ApiError::<Cinder>::new(e).into_response()
    }

    /// A token of another project than the URL's is the seed's `400 Malformed request url`.
    fn admit(
        caller: &glimpse_core::auth::Caller,
        _ext: &Extensions,
        path: &PathParams,
    ) -> Result<(), Response> {
        if caller.project_id.as_deref() != path.get("project_id") {
            return Err(
                ApiError::<Cinder>::new(Error::bad_request("Malformed request url"))
                    .into_response(),
            );
        }
        Ok(())
    }
}

impl Dialect for Replicator {
    const SHAPE: Shape = Shape::Replicator;

    /// 401 `Authentication required.`
    fn refused(e: Error) -> Response {
        let e = match e.kind {
            Kind::Unauthorized => Error::unauthorized("Authentication required."),
            _ => e,
        };
        ApiError::<Replicator>::new(e).into_response()
    }

    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("Malformed JSON in request body: {e}")))
    }
}

impl Dialect for Ims {
    const SHAPE: Shape = Shape::Ims;

    fn wrong_media(media: Option<&str>) -> Option<Error> {
        huawei_media(media).map(|e| e.with_code(glimpse_core::ims::codes::BAD_REQUEST))
    }

    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
        crate::request::json_body(body)
            .map_err(|e| e.with_code(glimpse_core::ims::codes::BAD_REQUEST))
    }
}

impl Dialect for Kms {
    const SHAPE: Shape = Shape::Kms;

    fn wrong_media(media: Option<&str>) -> Option<Error> {
        huawei_media(media)
    }

    /// The path's project must be the token's (403).
    fn admit(
        caller: &glimpse_core::auth::Caller,
        _ext: &Extensions,
        path: &PathParams,
    ) -> Result<(), Response> {
        let Some(project_id) = path.get("project_id") else {
            return Ok(());
        };
        let refuse = |e: Error| ApiError::<Kms>::new(e).into_response();
        if caller.project().map_err(refuse)? != project_id {
            return Err(refuse(Error::forbidden(format!(
                "The token is not scoped to project {project_id}."
            ))));
        }
        Ok(())
    }

    /// An empty body is `{}`; a malformed one 400 (`KMS.0201`).
    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
        let body = if body.is_empty() {
            b"{}".as_slice()
        } else {
            body
        };
        crate::request::json_body(body)
            .map_err(|e| e.with_code(glimpse_core::kms::codes::BAD_REQUEST))
    }
}

/// Router states that can validate a token.
pub trait TokenSource {
    fn validator(&self) -> &dyn TokenValidator;
}

impl TokenSource for Arc<Region> {
    fn validator(&self) -> &dyn TokenValidator {
        self.auth.as_ref()
    }
}

impl TokenSource for Arc<Identity> {
    fn validator(&self) -> &dyn TokenValidator {
        self.as_ref()
    }
}

/// The authenticated caller of a request to an API of dialect `D` (and its token); refused in
/// that dialect's shape. Dereferences to the domain's [`glimpse_core::auth::Caller`].
pub struct Caller<D> {
    pub caller: glimpse_core::auth::Caller,
    pub token: String,
    dialect: PhantomData<fn() -> D>,
}

impl<D> Deref for Caller<D> {
    type Target = glimpse_core::auth::Caller;

    fn deref(&self) -> &glimpse_core::auth::Caller {
        &self.caller
    }
}

impl<D: Dialect> Caller<D> {
    /// Authenticates outside an extractor (for a handler that answers something else first).
    pub async fn of(
        headers: &HeaderMap,
        ext: &Extensions,
        validator: &dyn TokenValidator,
    ) -> Result<Caller<D>, Response> {
        Self::check(headers, ext, &PathParams::default(), validator).await
    }

    async fn check(
        headers: &HeaderMap,
        ext: &Extensions,
        path: &PathParams,
        validator: &dyn TokenValidator,
    ) -> Result<Caller<D>, Response> {
        let caller = crate::request::caller(headers, validator)
            .await
            .map_err(D::refused)?;
        D::admit(&caller, ext, path)?;
        Ok(Caller {
            caller,
            token: token(headers),
            dialect: PhantomData,
        })
    }
}

fn token(headers: &HeaderMap) -> String {
    headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("")
        .to_string()
}

impl<S, D> FromRequestParts<S> for Caller<D>
where
    S: TokenSource + Send + Sync,
    D: Dialect,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let path = match RawPathParams::from_request_parts(parts, state).await {
            Ok(p) => PathParams(
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            Err(_) => PathParams::default(),
        };
        D::before(&path).map_err(IntoResponse::into_response)?;
        Caller::check(&parts.headers, &parts.extensions, &path, state.validator()).await
    }
}

/// A JSON request body read in dialect `D`: 413 past the body limit, 400 (with the dialect's
/// message) when unreadable or malformed.
pub struct Body<D, T = serde_json::Value>(pub T, pub PhantomData<fn() -> D>);

impl<S, D, T> FromRequest<S> for Body<D, T>
where
    S: Send + Sync,
    D: Dialect,
    T: DeserializeOwned,
{
    type Rejection = ApiError<D>;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError<D>> {
        let bytes = crate::request::body(axum::body::Bytes::from_request(req, state).await)?;
        Ok(Body(D::json(&bytes)?, PhantomData))
    }
}

/// IMS and KMS (Huawei's API gateway): a body that is not JSON is a bad request (400 with
/// the API's bad-request code), not a 415.
fn huawei_media(media: Option<&str>) -> Option<Error> {
    match media {
        None | Some("application/json") => None,
        Some(other) => Some(Error::bad_request(format!(
            "Invalid content type {other}: the request body must be application/json."
        ))),
    }
}

/// 404 "The resource could not be found." in dialect `D`.
pub fn not_found<D: Dialect>() -> Response {
    ApiError::<D>::new(Error::not_found("The resource could not be found.")).into_response()
}

/// 405 in dialect `D` (the domain has no kind for it).
pub fn method_not_allowed<D: Dialect>() -> Response {
    crate::errors::status_response(D::SHAPE, StatusCode::METHOD_NOT_ALLOWED, D::NOT_ALLOWED)
}

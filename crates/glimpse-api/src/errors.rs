//! One table at the HTTP edge: a domain [`Error`] rendered in the dialect of the API that was
//! called. Keystone: `{"error": {"code", "title", "message"}}`. Nova and Cinder:
//! `{"<faultName>": {"code", "message"}}`. Glance: WebOb's negotiated bodies (HTML by default,
//! JSON for `Accept: application/json`, text for `Accept: text/plain`; see [`negotiate_glance`]).
//! The replicator extension: WebOb text bodies (`401 Unauthorized\n\nAuthentication required.`).
//! IMS: `{"error": {"code": "IMG.xxxx", "message"}}`. KMS: `{"error": {"error_code":
//! "KMS.xxxx", "error_msg"}}`.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::marker::PhantomData;

use glimpse_core::{Error, Kind};

use crate::dialect::Dialect;

/// The error shapes of the APIs Glimpse speaks (one per [`crate::dialect`] marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Keystone,
    Glance,
    Nova,
    Cinder,
    Replicator,
    Ims,
    /// Huawei KMS: `{"error": {"error_code": "KMS.xxxx", "error_msg"}}`.
    Kms,
}

/// A domain error on its way out of the API of dialect `D`; `?` converts any domain
/// [`Error`] into it.
pub struct ApiError<D> {
    pub error: Error,
    dialect: PhantomData<fn() -> D>,
}

impl<D> ApiError<D> {
    pub fn new(error: Error) -> ApiError<D> {
        ApiError {
            error,
            dialect: PhantomData,
        }
    }
}

impl<D> std::fmt::Debug for ApiError<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<D> From<Error> for ApiError<D> {
    fn from(error: Error) -> ApiError<D> {
        ApiError::new(error)
    }
}

impl<D: Dialect> IntoResponse for ApiError<D> {
    fn into_response(self) -> Response {
        render(D::SHAPE, self.error)
    }
}

/// HTTP reason phrase for a status.
pub fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Nova's fault names (`nova/api/openstack/wsgi.py`), shared by Cinder.
pub fn fault_name(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// WebOb's plain-text error body: `"<status line>\n\n<message>"`.
pub fn webob_text(status: StatusCode, message: &str) -> Response {
    let body = format!("{} {}\n\n{}", status.as_u16(), reason(status), message);
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

/// A domain error rendered in one API's shape.
pub fn render(shape: Shape, error: Error) -> Response {
    let status = status_of(&error);
    let msg = error.message.clone();
    let mut resp = match shape {
        Shape::Keystone => json(
            status,
            serde_json::json!({"error": {"code": status.as_u16(), "title": reason(status), "message": msg}}),
        ),
        // Cinder's 401 comes from keystonemiddleware, in Keystone's shape.
        Shape::Cinder if status == StatusCode::UNAUTHORIZED => json(
            status,
            serde_json::json!({"error": {"code": 401, "title": reason(status), "message": msg}}),
        ),
        Shape::Cinder => cinder_fault(status, &msg),
        Shape::Nova => json(
            status,
            serde_json::json!({fault_name(status.as_u16()): {"code": status.as_u16(), "message": msg}}),
        ),
        Shape::Ims => json(
            status,
            serde_json::json!({"error": {"code": error.code.unwrap_or(default_ims_code(error.kind)), "message": msg}}),
        ),
        Shape::Kms => json(
            status,
            serde_json::json!({"error": {"error_code": error.code.unwrap_or(default_kms_code(error.kind)), "error_msg": msg}}),
        ),
        Shape::Replicator => webob_text(status, &msg),
        Shape::Glance => {
            let mut r = glance_html(status, &msg);
            r.extensions_mut().insert(GlanceMessage(msg));
            r
        }
    };
    if status == StatusCode::UNAUTHORIZED && shape != Shape::Replicator {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Keystone uri=\"/identity/v3\""),
        );
    }
    if let Some(seconds) = error.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

/// An answer with a status the domain has no [`Kind`] for (405, 406), in one API's shape.
pub fn status_response(shape: Shape, status: StatusCode, message: &str) -> Response {
    match shape {
        Shape::Cinder => cinder_fault(status, message),
        Shape::Nova => json(
            status,
            serde_json::json!({fault_name(status.as_u16()): {"code": status.as_u16(), "message": message}}),
        ),
        Shape::Keystone => json(
            status,
            serde_json::json!({"error": {"code": status.as_u16(), "title": reason(status), "message": message}}),
        ),
        Shape::Replicator | Shape::Glance => webob_text(status, message),
        Shape::Ims | Shape::Kms => json(
            status,
            serde_json::json!({"error": {"code": status.as_u16(), "message": message}}),
        ),
    }
}

/// A Cinder fault byte for byte as seed 002 shows it: Python's separators, `message` before
/// `code`, non-ASCII escaped (`json.dumps`), `application/json; charset=UTF-8`:
/// `{"badRequest": {"message": "Malformed request url", "code": 400}}`.
pub fn cinder_fault(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "{{\"{}\": {{\"message\": {}, \"code\": {}}}}}",
        fault_name(status.as_u16()),
        String::from_utf8_lossy(&crate::pyjson::dumps_ascii(&message)),
        status.as_u16()
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

fn default_ims_code(kind: Kind) -> &'static str {
    match kind {
        Kind::BadRequest => "IMG.0001",
        Kind::Unauthorized => "IMG.0401",
        Kind::Forbidden => "IMG.0403",
        Kind::NotFound => "IMG.0404",
        _ => "IMG.0500",
    }
}

fn default_kms_code(kind: Kind) -> &'static str {
    match kind {
        Kind::BadRequest => "KMS.0201",
        Kind::Unauthorized => "KMS.0401",
        Kind::Forbidden => "KMS.0403",
        Kind::NotFound => "KMS.0404",
        Kind::Unavailable => "KMS.0503",
        _ => "KMS.0500",
    }
}

/// The message of a Glance error, kept so [`negotiate_glance`] can re-render it.
#[derive(Clone, Debug)]
pub struct GlanceMessage(pub String);

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn glance_html(status: StatusCode, msg: &str) -> Response {
    let line = format!("{} {}", status.as_u16(), reason(status));
    let body = format!(
        "<html>\n <head>\n  <title>{line}</title>\n </head>\n <body>\n  <h1>{line}</h1>\n  {}<br /><br />\n\n\n\n </body>\n</html>",
        html_escape(msg)
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    r
}

/// Middleware on the image API: re-renders Glance errors in the format the `Accept` header
/// asks for, as WebOb does (JSON, plain text, or the HTML default).
pub async fn negotiate_glance(req: Request, next: Next) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let resp = next.run(req).await;
    let Some(GlanceMessage(msg)) = resp.extensions().get::<GlanceMessage>().cloned() else {
        return resp;
    };
    let status = resp.status();
    let wants_json = accept.contains("application/json");
    let wants_text = !wants_json && accept.contains("text/plain") && !accept.contains("html");
    if !wants_json && !wants_text {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let fresh = if wants_json {
        json(
            status,
            serde_json::json!({
                "message": format!("{msg}<br /><br />\n\n\n"),
                "code": format!("{} {}", status.as_u16(), reason(status)),
                "title": reason(status),
            }),
        )
    } else {
        webob_text(status, &msg)
    };
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        fresh_parts.headers[header::CONTENT_TYPE].clone(),
    );
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_follow_nova() {
        assert_eq!(fault_name(404), "itemNotFound");
        assert_eq!(fault_name(409), "conflictingRequest");
        assert_eq!(fault_name(500), "computeFault");
    }

    #[test]
    fn cinder_faults_are_written_as_seed_002_shows() {
        let py = |s: &str| String::from_utf8(crate::pyjson::dumps_ascii(&s)).unwrap();
        assert_eq!(py("a\"b\\ é\n"), r#""a\"b\\ \u00e9\n""#);
        assert_eq!(py("😀"), r#""\ud83d\ude00""#);
    }

    #[test]
    fn html_escapes_quotes_like_webob() {
        assert_eq!(html_escape("'a' <b>"), "&#x27;a&#x27; &lt;b&gt;");
    }
}

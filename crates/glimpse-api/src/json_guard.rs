//! What every JSON request body of an API must be before a handler sees it: of a JSON media
//! type by that API's rule, and without a key given twice in one object (Python's `json`,
//! behind every OpenStack service, keeps the last; a proxy or a validator that reads the first
//! would see another request than Glimpse: both are refused), and without a NUL character in
//! any string (nor in the query: PostgreSQL refuses NUL in text, SQLite stores it, so it
//! would be a 500 on one backend and a stored name on the other). One layer per API router
//! ([`guard`]), so no handler can forget it.
//!
//! The media type rules are each API's own ([`Dialect::wrong_media`]): Glance and Cinder answer
//! 415 `Invalid content type <type>.`, Nova too but, as its WSGI layer does, takes a missing
//! type or `text/plain` as JSON and hands a form-encoded body to the handler (seed 004's
//! error example: 400 `There is no such action: None`); Keystone answers 400 `Expecting to find application/json in
//! Content-Type header`; IMS and KMS answer 400 with their bad-request codes. The replicator
//! extension keeps the seed's own 400 (its handler), and image data (`PUT …/file`, `…/stage`)
//! is not JSON. A request without a token passes untouched (the handler answers 401 first, as
//! keystonemiddleware does), except on Keystone, which reads the body before authenticating.

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use serde::Deserializer;
use serde::de::{self, Deserialize, MapAccess, SeqAccess, Visitor};

use crate::dialect::{ApiError, Dialect};

/// The layer function: checks a JSON body of API `D` (read within the app's body limit).
pub async fn guard<D: Dialect>(req: Request, next: Next) -> Response {
    // A NUL reaches no database: PostgreSQL refuses it in text (a 500 there, while SQLite
    // stores it), so it is refused here for every API and both backends.
    if req
        .uri()
        .query()
        .is_some_and(|q| q.to_ascii_lowercase().contains("%00"))
    {
        return ApiError::<D>::new(Error::bad_request(
            "NUL characters are not allowed in the query.",
        ))
        .into_response();
    }
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) || D::exempt(&req) {
        return next.run(req).await;
    }
    if D::AUTH_FIRST && !req.headers().contains_key("x-auth-token") {
        return next.run(req).await;
    }
    let media = crate::request::media_type(req.headers());
    if has_body(&req)
        && !D::own_media(&req)
        && let Some(refusal) = D::wrong_media(media.as_deref())
    {
        return ApiError::<D>::new(refusal).into_response();
    }
    let (parts, body) = req.into_parts();
    // Read as the handlers' own extractor would: the app's body limit (413) travels in the
    // request's extensions.
    let mut whole = Request::new(body);
    *whole.extensions_mut() = parts.extensions.clone();
    let bytes = match crate::request::body(Bytes::from_request(whole, &()).await) {
        Ok(b) => b,
        Err(e) => return ApiError::<D>::new(e).into_response(),
    };
    if let Some(problem) = problem(&bytes) {
        return ApiError::<D>::new(Error::bad_request(problem)).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether the request carries a body (a bodiless `PUT` of an image tag has no type to check).
fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// What is wrong with `json` beyond what a handler checks: a key given twice in one object,
/// or a NUL character in a string or key. `None` when nothing is, or when the body is not JSON
/// (the handler then answers its own "malformed" message).
pub fn problem(json: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let message = Checked::deserialize(&mut de).err()?.to_string();
    // serde_json appends " at line L column C".
    let message = message
        .rsplit_once(" at line ")
        .map_or(&*message, |(m, _)| m);
    if let Some(key) = message.strip_prefix(DUPLICATE) {
        return Some(format!("Duplicate key '{key}' in the JSON request body."));
    }
    (message == NUL).then(|| "NUL characters are not allowed in the request body.".to_string())
}

const DUPLICATE: &str = "duplicate key: ";
const NUL: &str = "NUL character";

/// Walks a JSON value, failing on a key given twice in one object.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Checked, E> {
        if s.contains('\0') {
            return Err(E::custom(NUL));
        }
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(de::Error::custom(NUL));
            }
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn finds_keys_given_twice_at_any_depth_and_nul_characters() {
        let dup = |k: &str| Some(format!("Duplicate key '{k}' in the JSON request body."));
        assert_eq!(problem(br#"{"a":1,"a":2}"#), dup("a"));
        assert_eq!(
            problem(br#"{"server":{"name":"x","flavorRef":"1","name":"y"}}"#),
            dup("name")
        );
        assert_eq!(problem(br#"[{"op":"add","op":"remove"}]"#), dup("op"));
        assert_eq!(problem(br#"{"a":{"b":1},"c":{"b":2}}"#), None);
        let nul = Some("NUL characters are not allowed in the request body.".to_string());
        assert_eq!(problem(br#"{"a": [1, {"x": "\u0000"}]}"#), nul);
        assert_eq!(problem(br#"{"a\u0000": 1}"#), nul);
        assert_eq!(problem(br#"{"a": [1, {"x": null}], "b": "\u0001"}"#), None);
        assert_eq!(problem(b"not json"), None);
        assert_eq!(problem(b""), None);
    }
}

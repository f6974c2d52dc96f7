//! Request helpers shared by every API module: the token on a request, and JSON bodies parsed
//! into typed values with errors in the API's own dialect (never axum's default rejections).

use axum::http::HeaderMap;
use glimpse_core::Error;
use glimpse_core::auth::{Caller, TokenValidator};
use serde::de::DeserializeOwned;

/// Validates the request's `X-Auth-Token`; 401 when it is missing or not valid. With an
/// `X-Service-Token` beside it, as keystonemiddleware does: the service token must be valid and
/// carry the `service` role (else 401), and the user's token is then accepted past its expiry
/// (not revoked, within the identity's window), so that work a service such as Nova started
/// for a user (a snapshot's upload) outlives the user's token. The caller is the user.
pub async fn caller(headers: &HeaderMap, validator: &dyn TokenValidator) -> Result<Caller, Error> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let unauthorized = || Error::unauthorized("The request you have made requires authentication.");
    let token = header("x-auth-token").ok_or_else(unauthorized)?;
    let Some(service) = header("x-service-token") else {
        return validator.validate(token).await;
    };
    let service = validator.validate(service).await?;
    if !service.is_service() {
        tracing::info!(user = %service.user_id, "an X-Service-Token without the service role");
        return Err(unauthorized());
    }
    validator.validate_allow_expired(token).await
}

/// The bytes of a request body: 413 when it is over the app's body limit, 400 when it could
/// not be read (the client went away mid-body). Each API renders the error in its dialect.
pub fn body(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, Error> {
    body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::too_large("The request body is too large.")
        } else {
            Error::bad_request(format!("The request body could not be read: {e}"))
        }
    })
}

/// Parses a JSON body; malformed JSON, wrong types and missing fields give 400 with the
/// parser's explanation.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.is_empty() {
        return Err(Error::bad_request(
            "The request body is empty; a JSON object was expected.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("Malformed request body: {e}")))
}

/// The media type of the request's `Content-Type` (parameters dropped, lower case).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// True when the request's `Content-Type` is JSON (`application/json`, any parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).as_deref() == Some("application/json")
}

//! Handlers for image data. `PUT /v2/images/{id}/file` streams the request body (with a
//! `Content-Length` or chunked; `application/octet-stream` only, else 415) straight into the
//! domain upload ([`glimpse_core::images::upload`]), never buffering it; 204 when published.
//! `GET /v2/images/{id}/file` answers 204 for an image without data, else streams the bytes
//! with `Content-MD5`, honouring one `Range` (206, or 416 when unsatisfiable, 400 for several).
//!
//! If the client goes away mid-upload the handler future is dropped and the domain's guard puts
//! the image back to `queued`; the partial blob is left to the cleaner, or, for a replication
//! upload, kept so the next one continues from it (`X-Glimpse-Upload-Offset`,
//! docs/replication.md).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use glimpse_core::images;
use glimpse_core::region::Region;
use glimpse_core::{Error, Kind};

use super::glance;
use crate::dialect::{ApiError, ApiResult, Caller, Glance};

/// `PUT /v2/images/{id}/file`.
pub async fn upload(
    State(region): State<Arc<Region>>,
    caller: Caller<Glance>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Glance> {
    let headers = req.headers().clone();
    let content_type = crate::request::media_type(&headers);
    if content_type.as_deref() != Some("application/octet-stream") {
        let shown = content_type.unwrap_or_else(|| "None".into());
        return Err(glance(Error::unsupported_media(format!(
            "The request media type {shown} is not supported by this server. Invalid content type {shown}"
        ))));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let hex_header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    // Glimpse extension: digests the sender already knows are verified before publishing,
    // and the replication service may continue a cut upload (docs/replication.md).
    let resume_from = match headers.get(glimpse_types::headers::UPLOAD_OFFSET) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                glance(Error::bad_request(
                    "X-Glimpse-Upload-Offset must be a non-negative integer.",
                ))
            })?,
    };
    let expected = images::Expected {
        checksum: hex_header(glimpse_types::headers::EXPECTED_CHECKSUM),
        os_hash_value: hex_header(glimpse_types::headers::EXPECTED_OS_HASH),
        resume_from,
    };
    let body = req.into_body().into_data_stream();
    images::upload(&region, &caller, &id, body, declared, &expected).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A requested byte range, as parsed from `Range: bytes=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// `bytes=a-b` or `bytes=a-` (inclusive end).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

fn range_error(msg: String) -> ApiError<Glance> {
    glance(Error::new(Kind::RangeNotSatisfiable, msg))
}

fn parse_range(v: &str) -> Result<Wanted, ApiError<Glance>> {
    if v.contains(',') {
        return Err(glance(Error::bad_request(
            "Requests with multiple ranges are not supported in Glance. You may make multiple \
             single-range requests instead.",
        )));
    }
    let invalid = || range_error("Invalid Range header.".into());
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(invalid)?.trim();
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| invalid());
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(invalid());
            }
            Ok(Wanted::Suffix(n))
        }
        (false, true) => Ok(Wanted::From(num(a)?, None)),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            if end < start {
                return Err(invalid());
            }
            Ok(Wanted::From(start, Some(end)))
        }
        (true, true) => Err(invalid()),
    }
}

/// Resolves a range against the image size into `start..end` (exclusive end).
fn resolve(w: Wanted, size: u64) -> Result<(u64, u64), ApiError<Glance>> {
    match w {
        Wanted::From(start, end) => {
            if start >= size {
                return Err(range_error(format!(
                    "Invalid start position in Range header. Start position MUST be in the \
                     inclusive range [0, {}].",
                    size as i128 - 1
                )));
            }
            let end = end.map_or(size, |e| e.saturating_add(1).min(size));
            Ok((start, end))
        }
        Wanted::Suffix(n) => {
            if size == 0 {
                return Err(range_error("Invalid Range header.".into()));
            }
            Ok((size - n.min(size), size))
        }
    }
}

/// `GET /v2/images/{id}/file`.
pub async fn download(
    State(region): State<Arc<Region>>,
    caller: Caller<Glance>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    let Some(img) = images::prepare_download(&region, &caller, &id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let size = img.size.unwrap_or(0).max(0) as u64;
    let wanted = match headers.get(header::RANGE) {
        None => None,
        Some(v) => Some(parse_range(v.to_str().unwrap_or(""))?),
    };
    let range = wanted.map(|w| resolve(w, size)).transpose()?;
    let stream = images::read(&region, &img, range).await?;
    let body = Body::from_stream(stream.map_err(std::io::Error::other));
    let (status, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, e - s),
        None => (StatusCode::OK, size),
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some((s, e)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{}/{size}", e - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(md5) = img
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, size: u64) -> (u64, u64) {
        resolve(parse_range(v).unwrap(), size).unwrap()
    }

    fn status(r: Result<(u64, u64), ApiError<Glance>>) -> u16 {
        r.unwrap_err().error.kind.status()
    }

    #[test]
    fn ranges() {
        assert_eq!(ok("bytes=0-15", 100), (0, 16));
        assert_eq!(ok("bytes=90-", 100), (90, 100));
        assert_eq!(ok("bytes=90-1000", 100), (90, 100));
        assert_eq!(ok("bytes=-10", 100), (90, 100));
        assert_eq!(ok("bytes=-1000", 100), (0, 100));
        assert_eq!(
            status(resolve(parse_range("bytes=100-").unwrap(), 100)),
            416
        );
        assert_eq!(status(parse_range("bytes=5-2").map(|_| (0, 0))), 416);
        assert_eq!(status(parse_range("pages=1-2").map(|_| (0, 0))), 416);
        assert_eq!(status(parse_range("bytes=0-1,4-5").map(|_| (0, 0))), 400);
        assert_eq!(status(resolve(parse_range("bytes=-5").unwrap(), 0)), 416);
    }
}

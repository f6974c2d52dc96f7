//! The Glance v2 image API of one region (images and their data), and the region-to-region
//! calls of the image replicator's extension that live beside it.

use glimpse_types::glance::{Image, ImageCreate};
use glimpse_types::headers;
use glimpse_types::replicator::{AdoptRequest, Adopted, Capabilities, UploadOffset};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};

use crate::Replicator;
use crate::fault::{Fault, empty, json, send};

/// The Glance v2 API of one region, called with one token.
#[derive(Clone, Debug)]
pub struct Glance {
    http: Client,
    /// The image endpoint (`…/<region>/image`), without a trailing slash.
    base: String,
    token: String,
}

/// A streamed upload: the body is the content from byte `from` on, `len` bytes; the
/// destination verifies the expected md5 and sha512 (when given) before it publishes.
#[derive(Debug, Clone, Default)]
pub struct Upload<'a> {
    pub from: u64,
    pub len: u64,
    pub checksum: Option<&'a str>,
    pub os_hash_value: Option<&'a str>,
}

impl Glance {
    pub fn new(http: Client, base: &str, token: &str) -> Glance {
        Glance {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// The image endpoint.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The same API called with another token.
    pub fn with_token(&self, token: &str) -> Glance {
        Glance::new(self.http.clone(), &self.base, token)
    }

    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
    }

    /// `GET /v2/images/{id}`.
    pub async fn image(&self, id: &str) -> Result<Image, Fault> {
        json(
            self.req(Method::GET, &format!("/v2/images/{id}")),
            "reading image",
        )
        .await
    }

    /// `POST /v2/images`.
    pub async fn create(&self, body: &ImageCreate) -> Result<Image, Fault> {
        json(
            self.req(Method::POST, "/v2/images").json(body),
            "creating the destination image",
        )
        .await
    }

    /// `DELETE /v2/images/{id}`; an image that is already gone is fine.
    pub async fn delete(&self, id: &str) -> Result<(), Fault> {
        let rb = self.req(Method::DELETE, &format!("/v2/images/{id}"));
        match empty(rb, "deleting the destination image").await {
            Err(f) if f.status() == Some(404) => Ok(()),
            other => other,
        }
    }

    /// `GET /v2/images/{id}/file` from byte `from` on (`Range: bytes=from-` when not 0): the
    /// response, to stream its body (206 for a range). No data (204) is a refusal.
    pub async fn download(&self, id: &str, from: u64) -> Result<Response, Fault> {
        let mut rb = self.req(Method::GET, &format!("/v2/images/{id}/file"));
        if from > 0 {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = send(rb, "reading the source image data").await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Err(Fault::Refused {
                status: 204,
                message: "the source image has no data".into(),
                code: None,
            });
        }
        Ok(resp)
    }

    /// `PUT /v2/images/{id}/file` with a streamed body (see [`Upload`]); `from` > 0 continues
    /// a cut upload (`X-Glimpse-Upload-Offset`).
    pub async fn upload(
        &self,
        id: &str,
        body: reqwest::Body,
        up: &Upload<'_>,
    ) -> Result<(), Fault> {
        let mut rb = self
            .req(Method::PUT, &format!("/v2/images/{id}/file"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, up.len)
            .body(body);
        if up.from > 0 {
            rb = rb.header(headers::UPLOAD_OFFSET, up.from);
        }
        if let Some(c) = up.checksum {
            rb = rb.header(headers::EXPECTED_CHECKSUM, c);
        }
        if let Some(h) = up.os_hash_value {
            rb = rb.header(headers::EXPECTED_OS_HASH, h);
        }
        send(rb, "uploading to the destination").await.map(|_| ())
    }

    /// The image replicator extension of this region.
    pub fn replicator(&self) -> Replicator<'_> {
        Replicator::new(self)
    }
}

/// The region-to-region calls of the replicator extension (service account only).
impl Replicator<'_> {
    /// `GET …/capabilities`: what the region accepts.
    pub async fn capabilities(&self) -> Result<Capabilities, Fault> {
        json(
            self.req(Method::GET, "/capabilities"),
            "asking the destination region's capabilities",
        )
        .await
    }

    /// `POST …/adopt`: asks the region to publish the queued image from content it already
    /// holds; `Ok(true)` when it did.
    pub async fn adopt(&self, req: &AdoptRequest) -> Result<bool, Fault> {
        let what = "asking the destination to adopt existing content";
        let a: Adopted = self.post("/adopt", req, what).await?;
        Ok(a.adopted)
    }

    /// `GET …/uploads/{id}`: how many bytes of a cut upload of the content with sha512
    /// `os_hash_value` the region holds for image `id`.
    pub async fn upload_offset(&self, id: &str, os_hash_value: &str) -> Result<u64, Fault> {
        let o: UploadOffset = json(
            self.req(Method::GET, &format!("/uploads/{id}"))
                .query(&[("os_hash_value", os_hash_value)]),
            "asking the destination how much of the upload it holds",
        )
        .await?;
        Ok(o.offset)
    }
}

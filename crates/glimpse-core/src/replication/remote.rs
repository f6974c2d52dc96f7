//! The replicator's outbound HTTP: the public Glance v2 API of a region ([`Glance`]) and the
//! identity API ([`Keystone`]), each called with a token, classifying every failure as
//! [`Fault::Down`] (could not connect, timed out, 5xx: worth retrying, or "region is down" at
//! submission) or [`Fault::Refused`] (a 4xx answer: retrying will not help). Stateless.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::Capabilities;
use crate::jobs::JobError;

/// Time limit of a metadata call (not of a data transfer).
pub const META_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a remote call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No answer (connection refused or reset, timeout) or a 5xx answer.
    Down(String),
    /// A 4xx answer with the service's message.
    Refused { status: u16, message: String },
}

impl Fault {
    pub fn status(&self) -> Option<u16> {
        match self {
            Fault::Down(_) => None,
            Fault::Refused { status, .. } => Some(*status),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fault::Down(m) | Fault::Refused { message: m, .. } => m,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl From<Fault> for JobError {
    fn from(f: Fault) -> JobError {
        match f {
            Fault::Down(m) => JobError::Retryable(m),
            Fault::Refused { message, .. } => JobError::Permanent(message),
        }
    }
}

/// A reqwest error with its causes (reqwest's own text is terse: "error sending request").
pub fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The message of an error body: Glance's JSON `message` (asked for with `Accept`), Keystone's
/// `error.message`, or the first line of text.
pub fn error_message(body: &str) -> String {
    let msg = match serde_json::from_str::<Value>(body) {
        Ok(v) => v["message"]
            .as_str()
            .or_else(|| v["error"]["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string()),
        Err(_) => body.to_string(),
    };
    let msg = msg.replace("<br />", " ");
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    msg.chars().take(300).collect()
}

/// Sends a request; 2xx and 3xx are answers, everything else a [`Fault`] naming `what`.
pub async fn send(rb: RequestBuilder, what: &str) -> Result<Response, Fault> {
    let resp = rb
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Fault::Down(format!("{what}: {}", describe(&e))))?;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let message = format!("{what}: {} {}", status.as_u16(), error_message(&body));
    if status.is_server_error() {
        Err(Fault::Down(message))
    } else {
        Err(Fault::Refused {
            status: status.as_u16(),
            message,
        })
    }
}

async fn json(rb: RequestBuilder, what: &str) -> Result<Value, Fault> {
    send(rb.timeout(META_TIMEOUT), what)
        .await?
        .json()
        .await
        .map_err(|e| Fault::Down(format!("{what}: unreadable answer: {}", describe(&e))))
}

/// The Glance v2 API of one region, called with one token.
pub struct Glance<'a> {
    pub http: &'a Client,
    /// The image endpoint (`…/<region>/image`), without a trailing slash.
    pub base: String,
    pub token: &'a str,
}

impl Glance<'_> {
    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", self.token)
    }

    /// `GET /v2/images/{id}`.
    pub async fn image(&self, id: &str) -> Result<Value, Fault> {
        json(
            self.req(reqwest::Method::GET, &format!("/v2/images/{id}")),
            "reading image",
        )
        .await
    }

    /// `POST /v2/images`.
    pub async fn create(&self, body: &Value) -> Result<Value, Fault> {
        json(
            self.req(reqwest::Method::POST, "/v2/images").json(body),
            "creating the destination image",
        )
        .await
    }

    /// `DELETE /v2/images/{id}`; an image that is already gone is fine.
    pub async fn delete(&self, id: &str) -> Result<(), Fault> {
        let rb = self
            .req(reqwest::Method::DELETE, &format!("/v2/images/{id}"))
            .timeout(META_TIMEOUT);
        match send(rb, "deleting the destination image").await {
            Ok(_) => Ok(()),
            Err(f) if f.status() == Some(404) => Ok(()),
            Err(f) => Err(f),
        }
    }

    /// `GET /v2/images/{id}/file` from byte `from` on (`Range: bytes=from-` when not 0): the
    /// response, to stream its body (206 for a range).
    pub async fn download(&self, id: &str, from: u64) -> Result<Response, Fault> {
        let mut rb = self.req(reqwest::Method::GET, &format!("/v2/images/{id}/file"));
        if from > 0 {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = send(rb, "reading the source image data").await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Err(Fault::Refused {
                status: 204,
                message: "the source image has no data".into(),
            });
        }
        Ok(resp)
    }

    /// `PUT /v2/images/{id}/file` with a streamed body of `len` bytes, asking the destination
    /// to verify the expected md5 and sha512 before it publishes the image. `from` > 0: the
    /// body is the content from that byte on, continuing a cut upload
    /// (`X-Glimpse-Upload-Offset`).
    pub async fn upload(
        &self,
        id: &str,
        body: reqwest::Body,
        (from, len): (u64, u64),
        checksum: Option<&str>,
        os_hash_value: Option<&str>,
    ) -> Result<(), Fault> {
        let mut rb = self
            .req(reqwest::Method::PUT, &format!("/v2/images/{id}/file"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        if from > 0 {
            rb = rb.header(super::HEADER_UPLOAD_OFFSET, from);
        }
        if let Some(c) = checksum {
            rb = rb.header(super::HEADER_EXPECTED_CHECKSUM, c);
        }
        if let Some(h) = os_hash_value {
            rb = rb.header(super::HEADER_EXPECTED_OS_HASH, h);
        }
        send(rb, "uploading to the destination").await.map(|_| ())
    }

    /// `POST /v2/extension/image_replicator/adopt`: asks the region to publish the queued
    /// image `id` from content it already holds; `Ok(true)` when it did.
    pub async fn adopt(
        &self,
        id: &str,
        content: &crate::images::adopt::Content,
    ) -> Result<bool, Fault> {
        let body = serde_json::json!({
            "image_id": id,
            "size": content.size,
            "checksum": content.checksum,
            "os_hash_value": content.os_hash_value,
        });
        let v = json(
            self.req(
                reqwest::Method::POST,
                "/v2/extension/image_replicator/adopt",
            )
            .json(&body),
            "asking the destination to adopt existing content",
        )
        .await?;
        Ok(v["adopted"] == true)
    }

    /// `GET /v2/extension/image_replicator/uploads/{id}`: how many bytes of a cut upload of
    /// the content with sha512 `os_hash_value` the region holds for image `id`.
    pub async fn upload_offset(&self, id: &str, os_hash_value: &str) -> Result<u64, Fault> {
        let sha: String = url::form_urlencoded::byte_serialize(os_hash_value.as_bytes()).collect();
        let v = json(
            self.req(
                reqwest::Method::GET,
                &format!("/v2/extension/image_replicator/uploads/{id}?os_hash_value={sha}"),
            ),
            "asking the destination how much of the upload it holds",
        )
        .await?;
        v["offset"].as_u64().ok_or_else(|| Fault::Refused {
            status: 200,
            message: format!("the destination answered an unreadable offset: {v}"),
        })
    }

    /// `GET /v2/extension/image_replicator/capabilities`: what the region accepts.
    pub async fn capabilities(&self) -> Result<Capabilities, Fault> {
        let v = json(
            self.req(
                reqwest::Method::GET,
                "/v2/extension/image_replicator/capabilities",
            ),
            "asking the destination region's capabilities",
        )
        .await?;
        serde_json::from_value(v).map_err(|e| Fault::Refused {
            status: 200,
            message: format!("the destination region answered unreadable capabilities: {e}"),
        })
    }
}

/// The identity (Keystone v3) API, called with one token.
pub struct Keystone<'a> {
    pub http: &'a Client,
    /// The `/v3` URL, without a trailing slash.
    pub base: String,
    pub token: &'a str,
}

impl Keystone<'_> {
    /// `GET /v3/projects/{id}`: the `project` object.
    pub async fn project(&self, id: &str) -> Result<Value, Fault> {
        let rb = self
            .http
            .get(format!("{}/projects/{id}", self.base))
            .header("x-auth-token", self.token);
        Ok(json(rb, "looking up the destination tenant").await?["project"].take())
    }

    /// The names of the roles `user` holds on `project`, implied roles included
    /// (`GET /v3/role_assignments?effective&include_names`).
    pub async fn roles_on(&self, user: &str, project: &str) -> Result<Vec<String>, Fault> {
        let url = url::Url::parse_with_params(
            &format!("{}/role_assignments", self.base),
            &[
                ("user.id", user),
                ("scope.project.id", project),
                ("effective", "true"),
                ("include_names", "true"),
            ],
        )
        .map_err(|e| Fault::Refused {
            status: 400,
            message: format!("bad identity URL: {e}"),
        })?;
        let rb = self.http.get(url).header("x-auth-token", self.token);
        let v = json(rb, "reading the caller's roles in the destination tenant").await?;
        Ok(v["role_assignments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["role"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

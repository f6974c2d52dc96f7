//! Huawei IMS's in-region image copy (seed 003) at one region's `…/ims` endpoint.

use glimpse_types::ims::{CopyRequest, ImsJob, JobId};
use reqwest::{Client, Method, RequestBuilder};

use crate::fault::{Fault, json};

/// The IMS API of one region, called with one token.
#[derive(Clone, Debug)]
pub struct Ims {
    http: Client,
    /// The `…/ims` endpoint, without a trailing slash.
    base: String,
    token: String,
}

impl Ims {
    pub fn new(http: Client, base: &str, token: &str) -> Ims {
        Ims {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
    }

    /// `POST /v1/cloudimages/{image_id}/copy`: the job's id.
    pub async fn copy(&self, image_id: &str, req: &CopyRequest) -> Result<String, Fault> {
        let id: JobId = json(
            self.req(Method::POST, &format!("/v1/cloudimages/{image_id}/copy"))
                .json(req),
            "requesting an image copy",
        )
        .await?;
        Ok(id.job_id)
    }

    /// `GET /v1/cloudimages/job/{job_id}`.
    pub async fn job(&self, job_id: &str) -> Result<ImsJob, Fault> {
        json(
            self.req(Method::GET, &format!("/v1/cloudimages/job/{job_id}")),
            "reading a copy job",
        )
        .await
    }
}

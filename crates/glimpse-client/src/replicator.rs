//! The image replicator (`…/v2/extension/image_replicator`, seeds 000 and 001): submit, list,
//! show and cancel jobs. The region-to-region calls are in `image.rs`.

use glimpse_types::headers;
use glimpse_types::replicator::{JobCreated, ReplicateRequest, ReplicationJob};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Glance;
use crate::fault::{Fault, empty, json, read_json, send};

/// The replicator of one region, reached through its image endpoint.
pub struct Replicator<'a> {
    glance: &'a Glance,
}

/// A job with what `GET …/jobs/{id}` adds in headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub job: ReplicationJob,
    pub phase: Option<String>,
    /// Why the job ended in `error`.
    pub error: Option<String>,
    /// The byte a cut copy went on from.
    pub resumed_from: Option<u64>,
}

impl<'a> Replicator<'a> {
    pub(crate) fn new(glance: &'a Glance) -> Replicator<'a> {
        Replicator { glance }
    }

    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.glance
            .req(method, &format!("/v2/extension/image_replicator{path}"))
    }

    /// `POST …{path}` with the JSON `body`: the JSON answer.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        what: &str,
    ) -> Result<T, Fault> {
        json(self.req(Method::POST, path).json(body), what).await
    }

    /// `POST …/jobs`: the new (or, for a repeated idempotency key, the earlier) job's id.
    pub async fn submit(&self, req: &ReplicateRequest) -> Result<String, Fault> {
        let created: JobCreated = self.post("/jobs", req, "requesting a replication").await?;
        Ok(created.job_id)
    }

    /// `GET …/jobs`.
    pub async fn jobs(&self) -> Result<Vec<ReplicationJob>, Fault> {
        json(self.req(Method::GET, "/jobs"), "listing replication jobs").await
    }

    /// `GET …/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Shown, Fault> {
        let what = "reading a replication job";
        let resp = send(self.req(Method::GET, &format!("/jobs/{id}")), what).await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (phase, error) = (header(headers::JOB_PHASE), header(headers::JOB_ERROR));
        let resumed_from = header(headers::JOB_RESUMED_FROM).and_then(|n| n.parse().ok());
        let job = read_json(resp, what).await?;
        Ok(Shown {
            job,
            phase,
            error,
            resumed_from,
        })
    }

    /// `DELETE …/jobs/{id}`: asks the job to cancel.
    pub async fn cancel(&self, id: &str) -> Result<(), Fault> {
        empty(
            self.req(Method::DELETE, &format!("/jobs/{id}")),
            "canceling a replication job",
        )
        .await
    }
}

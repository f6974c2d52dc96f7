//! Small IMS and KMS clients for end-to-end tests: one caller (token + project) of a region's
//! in-region copy and key manager, copies, keys, and waiting for a copy job.
#![allow(dead_code)]

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use super::TestCloud;

/// Sends a request; returns the status and the JSON body (`Null` when the body is not JSON).
pub async fn send(rb: RequestBuilder) -> (u16, Value) {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Asserts an IMS error answer: `status` and `error.code`.
#[track_caller]
pub fn assert_ims_error(got: &(u16, Value), status: u16, code: &str) {
    assert_error(got, "code", status, code);
}

/// Asserts a KMS error answer: `status` and `error.error_code`.
#[track_caller]
pub fn assert_kms_error(got: &(u16, Value), status: u16, code: &str) {
    assert_error(got, "error_code", status, code);
}

#[track_caller]
fn assert_error((s, v): &(u16, Value), field: &str, status: u16, code: &str) {
    assert_eq!(
        (*s, v["error"][field].as_str()),
        (status, Some(code)),
        "{v}"
    );
}

/// One caller of a region's IMS endpoint (`…/<region>/ims`).
#[derive(Clone)]
pub struct Ims {
    pub http: reqwest::Client,
    /// `<base>/<region>`.
    pub region: String,
    pub token: String,
    pub project: String,
}

impl Ims {
    pub fn new(tc: &TestCloud, region: &str, token: &str, project: &str) -> Ims {
        Ims::at(&tc.http, &tc.base, region, token, project)
    }

    /// A client of a server at `base` (e.g. a [`super::process::GlimpseProcess`]).
    pub fn at(http: &reqwest::Client, base: &str, region: &str, token: &str, project: &str) -> Ims {
        Ims {
            http: http.clone(),
            region: format!("{base}/{region}"),
            token: token.to_string(),
            project: project.to_string(),
        }
    }

    /// The same caller's key manager.
    pub fn kms(&self) -> Kms {
        Kms {
            http: self.http.clone(),
            url: format!("{}/kms/v1.0/{}/kms", self.region, self.project),
            token: self.token.clone(),
        }
    }

    /// A request to `<region>/ims<path>` without any token.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/ims{path}", self.region))
    }

    /// A request to `<region>/ims<path>` with the caller's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path)
            .header("x-auth-token", &self.token)
    }

    /// `POST /v1/cloudimages/{image}/copy`.
    pub async fn copy(&self, image: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/cloudimages/{image}/copy");
        send(self.request(Method::POST, &path).json(&body)).await
    }

    /// `GET /v1/cloudimages/job/{id}`.
    pub async fn job(&self, id: &str) -> (u16, Value) {
        send(self.request(Method::GET, &format!("/v1/cloudimages/job/{id}"))).await
    }

    /// The older job form, `GET /v1/{project}/jobs/{id}`, in the caller's project.
    pub async fn project_job(&self, id: &str) -> (u16, Value) {
        let path = format!("/v1/{}/jobs/{id}", self.project);
        send(self.request(Method::GET, &path)).await
    }

    /// Polls a job (bounded) until SUCCESS or FAIL and returns it.
    pub async fn wait(&self, id: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..3000 {
            let (s, v) = self.job(id).await;
            assert_eq!(s, 200, "{v}");
            if v["status"] == "SUCCESS" || v["status"] == "FAIL" {
                return v;
            }
            last = v;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("job {id} did not finish: {last}");
    }

    /// Starts a copy (200 and a 32-hex job id); returns the job id.
    pub async fn start_copy(&self, image: &str, body: Value) -> String {
        let (s, v) = self.copy(image, body).await;
        assert_eq!(s, 200, "{v}");
        let id = v["job_id"].as_str().unwrap();
        assert_eq!(id.len(), 32, "{v}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
        id.to_string()
    }

    /// Copies and waits; returns the finished job.
    pub async fn copy_and_wait(&self, image: &str, body: Value) -> Value {
        let id = self.start_copy(image, body).await;
        self.wait(&id).await
    }

    /// Copies with `cmk_id` set to `key`, waits for SUCCESS; returns the new image's id.
    pub async fn sealed_copy(&self, image: &str, name: &str, key: &str) -> String {
        let done = self
            .copy_and_wait(image, json!({"name": name, "cmk_id": key}))
            .await;
        assert_eq!(done["status"], "SUCCESS", "{done}");
        done["entities"]["image_id"].as_str().unwrap().to_string()
    }
}

/// One caller of a project's key manager (`…/<region>/kms/v1.0/<project>/kms`).
#[derive(Clone)]
pub struct Kms {
    pub http: reqwest::Client,
    pub url: String,
    /// Sent as `X-Auth-Token` as it is, even when empty.
    pub token: String,
}

impl Kms {
    pub fn new(tc: &TestCloud, region: &str, token: &str, project: &str) -> Kms {
        Ims::new(tc, region, token, project).kms()
    }

    /// `POST …/kms/{action}`.
    pub async fn call(&self, action: &str, body: Value) -> (u16, Value) {
        let rb = self
            .http
            .post(format!("{}/{action}", self.url))
            .header("x-auth-token", &self.token)
            .json(&body);
        send(rb).await
    }

    /// `create-key` with a fresh alias; asserts 200 and returns the key's id.
    pub async fn create_key(&self) -> String {
        let alias = format!("k-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let (s, v) = self.call("create-key", json!({"key_alias": alias})).await;
        assert_eq!(s, 200, "{v}");
        v["key_info"]["key_id"].as_str().unwrap().to_string()
    }

    /// `describe-key`.
    pub async fn describe(&self, id: &str) -> (u16, Value) {
        self.call("describe-key", json!({"key_id": id})).await
    }

    /// `disable-key`.
    pub async fn disable(&self, id: &str) -> (u16, Value) {
        self.call("disable-key", json!({"key_id": id})).await
    }

    /// `enable-key`.
    pub async fn enable(&self, id: &str) -> (u16, Value) {
        self.call("enable-key", json!({"key_id": id})).await
    }

    /// `schedule-key-deletion` after `days` (a string, as the API takes it).
    pub async fn schedule_deletion(&self, id: &str, days: &str) -> (u16, Value) {
        let body = json!({"key_id": id, "pending_days": days});
        self.call("schedule-key-deletion", body).await
    }

    /// `cancel-key-deletion`.
    pub async fn cancel_deletion(&self, id: &str) -> (u16, Value) {
        self.call("cancel-key-deletion", json!({"key_id": id}))
            .await
    }

    /// `list-keys` with the given filter/paging fields.
    pub async fn list(&self, body: Value) -> (u16, Value) {
        self.call("list-keys", body).await
    }
}

/// Bytes with a recognisable marker every 4 KiB, otherwise pseudo-random.
pub fn marked_data(n: usize, marker: &[u8]) -> Vec<u8> {
    let mut d: Vec<u8> = (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut at = 0;
    while at + marker.len() <= n {
        d[at..at + marker.len()].copy_from_slice(marker);
        at += 4096;
    }
    d
}

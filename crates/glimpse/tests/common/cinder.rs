//! Minimal Cinder client calls for end-to-end tests (volumes, actions, waiting for a status).
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};

use super::TestCloud;

/// One project's view of a region's volume API.
#[derive(Clone)]
pub struct Cinder {
    pub http: reqwest::Client,
    /// `<base>/<region>/volume`.
    pub root: String,
    pub project: String,
    pub token: String,
    /// `v3` or `v2`.
    pub api: String,
}

impl Cinder {
    pub fn new(tc: &TestCloud, region: &str, project: &str, token: &str) -> Cinder {
        Cinder {
            http: tc.http.clone(),
            root: format!("{}/{region}/volume", tc.base),
            project: project.to_string(),
            token: token.to_string(),
            api: "v3".into(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}/{}{path}", self.root, self.api, self.project)
    }

    /// Sends a request; returns status and JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .header("x-auth-token", &self.token)
            .header("accept", "application/json");
        super::http::send(r, headers, body).await
    }

    /// Creates a blank volume and waits until it is `available`; returns its id.
    pub async fn create(&self, size: u64, name: &str) -> String {
        let id = self
            .post_volume(json!({"volume": {"size": size, "name": name}}))
            .await;
        self.wait(&id, "available").await;
        id
    }

    /// `POST /volumes` of `body`: asserts 202; returns the new volume's id.
    pub async fn post_volume(&self, body: Value) -> String {
        let (s, v) = self
            .call(reqwest::Method::POST, "/volumes", Some(body), &[])
            .await;
        assert_eq!(s, 202, "create volume: {v}");
        v["volume"]["id"].as_str().unwrap().to_string()
    }

    /// `GET path` (no extra headers).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None, &[]).await
    }

    /// `POST path` of `body` (no extra headers).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    /// `PUT path` of `body` (no extra headers).
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    /// `DELETE path` (no extra headers).
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None, &[]).await
    }

    pub async fn show(&self, id: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, &format!("/volumes/{id}"), None, &[])
            .await
    }

    /// Posts an action body.
    pub async fn action(&self, id: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/volumes/{id}/action"),
            Some(body),
            &[],
        )
        .await
    }

    /// Posts an action that must be accepted (202); the answer.
    pub async fn act(&self, id: &str, body: Value) -> Value {
        let (s, v) = self.action(id, body).await;
        assert_eq!(s, 202, "{v}");
        v
    }

    /// Posts an action at a microversion.
    pub async fn action_at(&self, id: &str, body: Value, version: &str) -> (u16, Value) {
        let header = format!("volume {version}");
        self.call(
            reqwest::Method::POST,
            &format!("/volumes/{id}/action"),
            Some(body),
            &[("openstack-api-version", header.as_str())],
        )
        .await
    }

    /// Polls until the volume has `status` (bounded: 60 s); returns the volume.
    pub async fn wait(&self, id: &str, status: &str) -> Value {
        let what = format!("volume {id}");
        wait_status(&what, status, Duration::from_secs(60), STEP, || async {
            let (s, v) = self.show(id).await;
            assert_eq!(s, 200, "show volume: {v}");
            v["volume"].clone()
        })
        .await
    }
}

/// How often [`wait_status`] asks, by default.
const STEP: Duration = Duration::from_millis(50);

/// A member of a new project in `region`: its view of the volume API, and its token.
pub async fn member(tc: &TestCloud, region: &str) -> (Cinder, String) {
    let (pid, token) = tc.user_in_new_project("member", region).await;
    (Cinder::new(tc, region, &pid, &token), token)
}

/// A new cloud, a [`member`] in `region-one`, and a blank 1 GiB volume of theirs named `name`:
/// (cloud, their volume API, their token, the volume id).
pub async fn cloud_and_volume(name: &str) -> (TestCloud, Cinder, String, String) {
    let tc = TestCloud::start().await;
    let (c, token) = member(&tc, "region-one").await;
    let id = c.create(1, name).await;
    (tc, c, token, id)
}

/// Polls an image until its status is `status` (bounded: 120 s).
pub async fn wait_image(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    id: &str,
    status: &str,
) -> Value {
    let what = format!("image {id}");
    wait_status(&what, status, Duration::from_secs(120), STEP, || {
        super::glance::show(http, image_url, token, id)
    })
    .await
}

/// Asks `fetch` every `every` until the answer's `status` is `want` (bounded: `limit`);
/// returns that answer.
pub async fn wait_status<F: std::future::Future<Output = Value>>(
    what: &str,
    want: &str,
    limit: Duration,
    every: Duration,
    mut fetch: impl FnMut() -> F,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let v = fetch().await;
        if v["status"] == want {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never became {want}: {v}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The file of a volume (the documented layout: `<data_dir>/<region>/disks/volumes/<id>.raw`).
pub fn volume_file(tc: &TestCloud, region: &str, id: &str) -> std::path::PathBuf {
    volume_path(&tc.data_dir, region, id)
}

/// The file of a volume under any data dir (a real process's too).
pub fn volume_path(data_dir: &std::path::Path, region: &str, id: &str) -> std::path::PathBuf {
    data_dir
        .join(region)
        .join("disks")
        .join("volumes")
        .join(format!("{id}.raw"))
}

/// The image id in an `os-volume_upload_image` answer.
pub fn upload_image_id(answer: &Value) -> String {
    answer["os-volume_upload_image"]["image_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `qemu-img compare` of the raw file `raw` with `other` in `format`: the exit code and output.
pub fn compare_to_raw(
    raw: &std::path::Path,
    format: &str,
    other: &std::path::Path,
) -> (i32, String) {
    let (raw, other) = (raw.to_str().unwrap(), other.to_str().unwrap());
    super::nova::qemu_img(&["compare", "-f", "raw", "-F", format, raw, other])
}

/// Streams an image's data into `path` (a raw volume's image is a whole GiB: never in memory).
pub async fn save_image(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    id: &str,
    path: &std::path::Path,
) {
    use std::io::Write;
    let mut r = super::http::get(http, format!("{image_url}/v2/images/{id}/file"), token).await;
    assert_eq!(r.status(), 200, "download {id}");
    let mut f = std::fs::File::create(path).unwrap();
    while let Some(chunk) = r.chunk().await.unwrap() {
        f.write_all(&chunk).unwrap();
    }
}

//! Minimal Glance v2 client calls for end-to-end tests (create, upload, show, download), and
//! [`Api`], one caller of the in-process cloud's image API, with status tables
//! ([`expect_statuses`], [`expect_all`]) for the API suites.
#![allow(dead_code)]

use serde_json::{Value, json};

use super::TestCloud;
use super::replication::{Resp, read};

/// The region the in-process API suites talk to.
pub const REGION: &str = "region-one";

/// One caller (a token, or none) of the region's image API.
pub struct Api<'a> {
    pub tc: &'a TestCloud,
    pub token: Option<String>,
}

impl<'a> Api<'a> {
    pub fn new(tc: &'a TestCloud, token: String) -> Api<'a> {
        Api {
            tc,
            token: Some(token),
        }
    }

    pub async fn admin(tc: &'a TestCloud) -> Api<'a> {
        Api::new(tc, tc.admin_token().await)
    }

    /// A request for `method path` carrying the token, if any.
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let rb = self
            .tc
            .http
            .request(m, format!("{}{path}", self.tc.image(REGION)));
        match &self.token {
            Some(t) => rb.header("x-auth-token", t),
            None => rb,
        }
    }

    /// `method path` with an optional JSON body and extra headers; the response read whole.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.request(method, path);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        read(rb.send().await.unwrap()).await
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(body)).await
    }
}

/// One row of [`expect_all`]: `method path`, the JSON body, the status expected, a label.
pub type Check<'r> = (&'r str, String, Option<Value>, u16, &'r str);

/// Sends the rows in order as `api`, asserting each one's status (the label shows on failure).
pub async fn expect_all(api: &Api<'_>, rows: impl IntoIterator<Item = Check<'_>>) {
    for (method, path, body, want, what) in rows {
        let r = api.call(method, &path, body).await;
        expect(&r, want, what);
    }
}

/// Asserts the status, showing the body when it differs.
pub fn expect(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
}

/// One request of a status table: who asks, `method path`, the JSON body, the status expected.
pub type Row<'r, 'a> = (&'r Api<'a>, &'r str, &'r str, Option<Value>, u16);

/// Sends the rows in order, asserting each one's status.
pub async fn expect_statuses<'r, 'a: 'r>(rows: impl IntoIterator<Item = Row<'r, 'a>>) {
    for (api, method, path, body, want) in rows {
        let r = api.call(method, path, body).await;
        expect(&r, want, &format!("{method} {path}"));
    }
}

/// Creates an image record; returns its id.
pub async fn create_image(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    body: Value,
) -> String {
    let r = http
        .post(format!("{image_url}/v2/images"))
        .header("x-auth-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 201, "create image: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["id"].as_str().unwrap().to_string()
}

pub async fn create_bare(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    name: &str,
    disk_format: &str,
) -> String {
    create_image(
        http,
        image_url,
        token,
        json!({"name": name, "disk_format": disk_format, "container_format": "bare"}),
    )
    .await
}

/// Uploads bytes; returns the status code and body text.
pub async fn upload(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    id: &str,
    data: Vec<u8>,
) -> (u16, String) {
    let r = http
        .put(format!("{image_url}/v2/images/{id}/file"))
        .header("x-auth-token", token)
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn show(http: &reqwest::Client, image_url: &str, token: &str, id: &str) -> Value {
    let r = super::http::get(http, format!("{image_url}/v2/images/{id}"), token).await;
    assert_eq!(r.status(), 200, "show {id}");
    r.json().await.unwrap()
}

/// Downloads the image data; returns status and bytes.
pub async fn download(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    id: &str,
) -> (u16, Vec<u8>) {
    let r = super::http::get(http, format!("{image_url}/v2/images/{id}/file"), token).await;
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// The Glance list of the images named `name`.
pub async fn images_named(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    name: &str,
) -> Value {
    super::http::get_json(http, format!("{image_url}/v2/images?name={name}"), token).await
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

pub fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

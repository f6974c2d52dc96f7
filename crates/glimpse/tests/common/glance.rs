//! Minimal Glance v2 client calls for end-to-end tests (create, upload, show, download).
#![allow(dead_code)]

use serde_json::{Value, json};

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

//! IMS and KMS calls for end-to-end tests: keys, copies, and waiting for a copy job.
#![allow(dead_code)]

use serde_json::{Value, json};

/// `POST /<region>/kms/v1.0/{project}/kms/{action}`; returns status and body.
pub async fn kms(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    project: &str,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let r = http
        .post(format!("{base}/region-one/kms/v1.0/{project}/kms/{action}"))
        .header("x-auth-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates an enabled key; returns its id.
pub async fn create_key(http: &reqwest::Client, base: &str, token: &str, project: &str) -> String {
    let alias = format!("k-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (s, v) = kms(
        http,
        base,
        token,
        project,
        "create-key",
        json!({"key_alias": alias}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["key_info"]["key_id"].as_str().unwrap().to_string()
}

/// `POST /<region>/ims/v1/cloudimages/{id}/copy`; returns status and body.
pub async fn copy(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    image: &str,
    body: Value,
) -> (u16, Value) {
    let r = http
        .post(format!("{base}/region-one/ims/v1/cloudimages/{image}/copy"))
        .header("x-auth-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET /<region>/ims/v1/cloudimages/job/{id}`.
pub async fn job(http: &reqwest::Client, base: &str, token: &str, id: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}/region-one/ims/v1/cloudimages/job/{id}"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls a job (bounded) until SUCCESS or FAIL and returns it.
pub async fn wait(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..3000 {
        let (s, v) = job(http, base, token, id).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] == "SUCCESS" || v["status"] == "FAIL" {
            return v;
        }
        last = v;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("job {id} did not finish: {last}");
}

/// Copies and waits; returns the finished job.
pub async fn copy_and_wait(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    image: &str,
    body: Value,
) -> Value {
    let (s, v) = copy(http, base, token, image, body).await;
    assert_eq!(s, 200, "{v}");
    let id = v["job_id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{v}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
    wait(http, base, token, id).await
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

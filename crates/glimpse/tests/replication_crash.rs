//! `kill -9` of the whole process in the middle of a cross-region copy, then a restart: the job
//! is taken over when its lease expires and still ends `replicated`, with exactly one
//! destination image whose bytes equal the source's, and the copy went on from the bytes the
//! destination had kept, not from zero. The copy is slowed by the region's
//! bandwidth limit so that the kill lands mid-copy.

mod common;

use common::glance::{create_bare, sha512_hex, upload};
use common::process::{GlimpseProcess, identity, temp_dir};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[[regions]]
name = "region-one"
[regions.jobs]
lease_seconds = 2
[regions.replication]
max_bytes_per_second = 12582912

[[regions]]
name = "region-two"
"#;

async fn admin(http: &reqwest::Client, base: &str, scope: Value) -> String {
    identity::token(http, base, "admin", "pw", scope).await
}

async fn job(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    http.get(format!(
        "{base}/region-one/image/v2/extension/image_replicator/jobs/{id}"
    ))
    .header("x-auth-token", token)
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_copy_then_restart_ends_replicated_with_one_copy() {
    let dir = temp_dir();
    let config = dir.join("glimpse.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let env = [("GLIMPSE_ADMIN_PASSWORD", "pw")];
    let mut server = GlimpseProcess::start(&dir, Some(&config), &env);
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let tok = admin(
        &http,
        &base,
        json!({"project": {"name": "admin", "domain": {"name": "Default"}}}),
    )
    .await;

    // Destination: a project homed in region-two with the admin as member.
    let far = identity::member_project(&http, &base, &tok, "far", "region-two", "admin").await;

    // A 36 MiB source: about three seconds at the region's 12 MiB/s limit.
    let image = format!("{base}/region-one/image");
    let data: Vec<u8> = (0..36u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let src = create_bare(&http, &image, &tok, "crash-copy", "raw").await;
    assert_eq!(upload(&http, &image, &tok, &src, data.clone()).await.0, 204);
    let r = http
        .post(format!("{image}/v2/extension/image_replicator/jobs"))
        .header("x-auth-token", &tok)
        .json(&json!({"image_id": src, "tenant_id_dst": far}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Kill once a fifth of the bytes moved.
    let mut seen = Value::Null;
    for _ in 0..2000 {
        seen = job(&http, &base, &tok, &id).await;
        if seen["copy_progress"].as_u64().unwrap_or(0) >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen["status"], "replicating", "killed mid-copy: {seen}");
    assert!(seen["copy_progress"].as_u64().unwrap() < 100, "{seen}");
    server.kill9();

    let server = GlimpseProcess::start(&dir, Some(&config), &env);
    let base = server.base.clone();
    let tok = admin(
        &http,
        &base,
        json!({"project": {"name": "admin", "domain": {"name": "Default"}}}),
    )
    .await;
    let mut last = Value::Null;
    for _ in 0..3000 {
        last = job(&http, &base, &tok, &id).await;
        if ["replicated", "error", "canceled"].contains(&last["status"].as_str().unwrap_or("")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last["status"], "replicated", "{last}");
    // The destination (in the same killed process) kept what it had written: the job went on
    // from there, not from byte zero.
    let resumed = http
        .get(format!(
            "{base}/region-one/image/v2/extension/image_replicator/jobs/{id}"
        ))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .headers()
        .get("x-glimpse-job-resumed-from")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    assert!(
        resumed.is_some_and(|n| n > 0 && n < data.len() as u64),
        "resumed from {resumed:?}"
    );

    // Exactly one destination image, with the source's bytes.
    let far_tok = admin(&http, &base, json!({"project": {"id": far}})).await;
    let list: Value = http
        .get(format!("{base}/region-two/image/v2/images?name=crash-copy"))
        .header("x-auth-token", &far_tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let images = list["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{list}");
    assert_eq!(images[0]["id"], last["destination_image_id"]);
    assert_eq!(images[0]["status"], "active");
    assert_eq!(images[0]["os_hash_value"], sha512_hex(&data));
    let got = http
        .get(format!(
            "{base}/region-two/image/v2/images/{}/file",
            images[0]["id"].as_str().unwrap()
        ))
        .header("x-auth-token", &far_tok)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha512_hex(&got), sha512_hex(&data));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

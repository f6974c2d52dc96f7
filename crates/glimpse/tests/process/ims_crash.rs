//! `kill -9` of the whole process during an encrypted in-region copy, then a restart: the job
//! is taken over when its lease expires and ends SUCCESS (or FAIL with a reason), and at no
//! point is a half-made copy visible: the copy's image either does not exist or is `active`
//! with the source's bytes.

use crate::common;

use common::glance::{download, images_named, sha512_hex};
use common::ims::{Ims, marked_data};
use common::process::{Restartable, SHORT_LEASE, identity, raw_image};
use serde_json::{Value, json};

async fn copies(http: &reqwest::Client, base: &str, tok: &str) -> Vec<Value> {
    let image = format!("{base}/region-one/image");
    let list = images_named(http, &image, tok, "crash-enc").await;
    list["images"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_an_encrypted_copy_then_restart() {
    let cloud = Restartable::new(SHORT_LEASE);
    let http = reqwest::Client::new();
    let (mut server, base, tok) = cloud.start_as_admin(&http).await;
    let pid = identity::project_of(&http, &base, &tok).await;

    let image = format!("{base}/region-one/image");
    let data = marked_data(256 << 20, b"CRASH-MARKER");
    let src = raw_image(&http, &image, &tok, "crash-src", &data).await;
    let ims = Ims::at(&http, &base, "region-one", &tok, &pid);
    let key = ims.kms().create_key().await;
    let id = ims
        .start_copy(&src, json!({"name": "crash-enc", "cmk_id": key}))
        .await;

    // Kill as soon as the copy runs.
    let mut seen = Value::Null;
    for _ in 0..2000 {
        seen = ims.job(&id).await.1;
        if seen["status"] != "INIT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(seen["status"], "RUNNING", "killed mid-copy: {seen}");
    server.kill9();

    let server = cloud.start();
    let base = server.base.clone();
    let image = server.image_one();
    let tok = server.admin_token(&http).await;
    let ims = Ims::at(&http, &base, "region-one", &tok, &pid);
    let mut last = Value::Null;
    for _ in 0..3000 {
        // Never a half-made copy: none yet, or one active copy.
        let now = copies(&http, &base, &tok).await;
        assert!(now.len() <= 1, "{now:?}");
        if let Some(c) = now.first() {
            assert_eq!(c["status"], "active", "{c}");
        }
        last = ims.job(&id).await.1;
        if last["status"] == "SUCCESS" || last["status"] == "FAIL" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let now = copies(&http, &base, &tok).await;
    match last["status"].as_str() {
        Some("SUCCESS") => {
            assert_eq!(now.len(), 1, "{now:?}");
            assert_eq!(now[0]["id"], last["entities"]["image_id"]);
            assert_eq!(now[0]["__system__encrypted"], "1");
            let copy = now[0]["id"].as_str().unwrap();
            let (_, got) = download(&http, &image, &tok, copy).await;
            assert_eq!(sha512_hex(&got), sha512_hex(&data));
        }
        Some("FAIL") => {
            assert!(now.is_empty(), "{now:?}");
            assert!(
                last["fail_reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{last}"
            );
        }
        _ => panic!("the job did not end: {last}"),
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&cloud.dir);
}

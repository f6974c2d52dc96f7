//! `kill -9` of the whole process in the middle of a cross-region copy, then a restart: the job
//! is taken over when its lease expires and still ends `replicated`, with exactly one
//! destination image whose bytes equal the source's, and the copy went on from the bytes the
//! destination had kept, not from zero. The copy is slowed by the region's
//! bandwidth limit so that the kill lands mid-copy.

use crate::common;

use common::glance::{create_bare, upload};
use common::process::{Restartable, identity, replicator};
use serde_json::json;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_copy_then_restart_ends_replicated_with_one_copy() {
    let cloud = Restartable::new(CONFIG);
    let mut server = cloud.start();
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let tok = server.admin_token(&http).await;

    // Destination: a project homed in region-two with the admin as member.
    let far = identity::member_project(&http, &base, &tok, "far", "region-two", "admin").await;

    let image = format!("{base}/region-one/image");
    let data = replicator::slow_copy_data();
    let src = create_bare(&http, &image, &tok, "crash-copy", "raw").await;
    assert_eq!(upload(&http, &image, &tok, &src, data.clone()).await.0, 204);
    let id = replicator::submit(&http, &image, &tok, &src, &far).await;

    // Kill once a fifth of the bytes moved.
    let seen = replicator::wait_progress(&http, &image, &tok, &id, 20).await;
    assert_eq!(seen["status"], "replicating", "killed mid-copy: {seen}");
    assert!(seen["copy_progress"].as_u64().unwrap() < 100, "{seen}");
    server.kill9();

    let server = cloud.start();
    let base = server.base.clone();
    let image = server.image_one();
    let tok = server.admin_token(&http).await;
    let (last, resumed) = replicator::wait_end(&http, &image, &tok, &id).await;
    assert_eq!(last["status"], "replicated", "{last}");
    // The destination (in the same killed process) kept what it had written: the job went on
    // from there, not from byte zero.
    assert!(
        resumed.is_some_and(|n| n > 0 && n < data.len() as u64),
        "resumed from {resumed:?}"
    );

    // Exactly one destination image, with the source's bytes.
    let far_tok = server
        .admin_token_in(&http, json!({"project": {"id": far}}))
        .await;
    let copy = replicator::the_copy(
        &http,
        &format!("{base}/region-two/image"),
        &far_tok,
        "crash-copy",
        &data,
    )
    .await;
    assert_eq!(copy["id"], last["destination_image_id"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&cloud.dir);
}

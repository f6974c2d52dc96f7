//! `kill -9` of the whole process in the middle of a cross-region copy, then a restart: the job
//! is taken over when its lease expires and still ends `replicated`, with exactly one
//! destination image whose bytes equal the source's, and the copy went on from the bytes the
//! destination had kept, not from zero. The copy is slowed by the region's
//! bandwidth limit so that the kill lands mid-copy.

use crate::common;

use common::process::replicator::Replicator;
use common::process::{Restartable, identity};
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
    let http = reqwest::Client::new();
    let (mut server, base, tok) = cloud.start_as_admin(&http).await;

    // Destination: a project homed in region-two with the admin as member.
    let far = identity::member_project(&http, &base, &tok, "far", "region-two", "admin").await;

    let image = format!("{base}/region-one/image");
    let rep = Replicator::new(&http, &image, &tok);
    // Kill once a fifth of the bytes moved.
    let (data, id, seen) = rep.slow_copy_at("crash-copy", &far, 20).await;
    assert_eq!(seen["status"], "replicating", "killed mid-copy: {seen}");
    assert!(seen["copy_progress"].as_u64().unwrap() < 100, "{seen}");
    server.kill9();

    let (server, base, tok) = cloud.start_as_admin(&http).await;
    let image = server.image_one();
    let rep = Replicator::new(&http, &image, &tok);
    let (last, resumed) = rep.wait_end(&id).await;
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
    let image_two = format!("{base}/region-two/image");
    let two = Replicator::new(&http, &image_two, &far_tok);
    let copy = two.the_copy("crash-copy", &data).await;
    assert_eq!(copy["id"], last["destination_image_id"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&cloud.dir);
}

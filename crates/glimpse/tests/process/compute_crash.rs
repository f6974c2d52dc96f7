//! `kill -9` of the whole process in the middle of a server snapshot, then a restart: the
//! snapshot job is taken over when its lease expires, and in the end the server is ACTIVE
//! with no task (usable: it snapshots again) and the snapshot either finished (one active
//! image, a clean qcow2 with the server's bytes) or left no image behind; no scratch file
//! stays in the disk dir.

use crate::common;

use std::time::{Duration, Instant};

use common::nova::{Nova, location_id, qemu_present};
use common::process::{GlimpseProcess, Restartable, SHORT_LEASE, raw_image};
use serde_json::{Value, json};

/// Region-one's compute API as the admin of a (re)started process.
async fn admin_nova(server: &GlimpseProcess, http: &reqwest::Client) -> Nova {
    Nova {
        http: http.clone(),
        base: format!("{}/region-one/compute/v2.1", server.base),
        token: server.admin_token(http).await,
        version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_snapshot_then_restart_leaves_a_usable_server() {
    if !qemu_present() {
        return;
    }
    let cloud = Restartable::new(SHORT_LEASE);
    let dir = &cloud.dir;
    let mut server = cloud.start();
    let http = reqwest::Client::new();
    let n = admin_nova(&server, &http).await;
    let tok = n.token.clone();

    // A 96 MiB image of incompressible bytes: flattening and uploading it takes a while.
    let image = server.image_one();
    let data: Vec<u8> = (0..96u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let src = raw_image(&http, &image, &tok, "crash-base", &data).await;
    let id = n.active_server("crash", &src).await;
    assert_eq!(
        n.write_disk(&id, 512, b"before the crash").await.status,
        202
    );

    let r = n
        .action(&id, json!({"createImage": {"name": "crash-snap"}}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let snap = location_id(&r);

    // Kill once the job is past the claim (flattening or uploading).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Value::Null;
    while Instant::now() < deadline {
        seen = n.get(&format!("/servers/{id}")).await.body["server"].clone();
        let task = seen["OS-EXT-STS:task_state"].as_str().unwrap_or("");
        if task == "image_pending_upload" || task == "image_uploading" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let task = seen["OS-EXT-STS:task_state"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(task.starts_with("image_"), "killed mid-snapshot: {seen}");
    server.kill9();

    let server = cloud.start();
    let n = admin_nova(&server, &http).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (image_state, srv) = loop {
        let s = n.get(&format!("/servers/{id}")).await.body["server"].clone();
        let img = n.get(&format!("/images/{snap}")).await;
        let img_status = if img.status == 404 {
            "gone".to_string()
        } else {
            img.body["image"]["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        if s["OS-EXT-STS:task_state"].is_null() && (img_status == "ACTIVE" || img_status == "gone")
        {
            break (img_status, s);
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {s} / {img_status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(srv["status"], "ACTIVE", "{srv}");
    eprintln!("after the crash (killed in {task}) the snapshot is {image_state}");

    // Exactly one snapshot or none: no queued/saving leftovers.
    let list =
        common::http::get_json(&http, format!("{}/v2/images", server.image_one()), &n.token).await;
    let snaps: Vec<&Value> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"] == "crash-snap")
        .collect();
    match image_state.as_str() {
        "ACTIVE" => {
            assert_eq!(snaps.len(), 1, "{list}");
            assert_eq!(snaps[0]["status"], "active");
            assert_eq!(snaps[0]["disk_format"], "qcow2");
        }
        _ => assert!(snaps.is_empty(), "{list}"),
    }
    let work = dir.join("region-one/disks/work");
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The server is usable: it takes another snapshot.
    let r = n
        .action(&id, json!({"createImage": {"name": "after"}}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let after = location_id(&r);
    n.wait_image(&after, "ACTIVE").await;
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

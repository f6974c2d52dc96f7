//! Two nodes serving one region behind HAProxy (issue 14): a node killed in the middle of an
//! upload loses only its own upload (back to `queued` once its heartbeat is stale, no half
//! image) while the other node's upload completes; a node restarted while the other uploads
//! leaves that upload alone; a rolling restart (SIGTERM, drain, start, for each node) under a
//! steady load fails no request; a replication upload cut by the kill -9 of its node resumes
//! on the other node from the bytes the shared store holds (S3: whole 8 MiB parts).

use crate::common;

use std::time::Duration;

use common::cluster::{Cluster, HeldUpload};
use common::glance::{create_bare, download, md5_hex, show, upload};

const SIZE: usize = 6 << 20;

fn pattern(seed: u8) -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

/// Starts uploads through the load balancer until one runs on each node; returns them with
/// the index of their node (the rest are abandoned).
async fn one_upload_per_node(
    c: &Cluster,
    http: &reqwest::Client,
    token: &str,
) -> Vec<(usize, HeldUpload)> {
    let image = c.image_one();
    let mut per_node: Vec<Option<HeldUpload>> = c.nodes.iter().map(|_| None).collect();
    for round in 0..16u8 {
        if per_node.iter().all(Option::is_some) {
            break;
        }
        let id = create_bare(http, &image, token, &format!("held-{round}"), "raw").await;
        let held = HeldUpload::start(http, &image, token, &id, pattern(round)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let node = loop {
            if let Some(n) = c.saving_node(0, &id).await {
                break n;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "upload {id} never saving"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let i = c.nodes.iter().position(|n| n.id == node).unwrap();
        if per_node[i].is_none() {
            per_node[i] = Some(held);
        } else {
            held.abandon().await;
            // Round robin counts requests: one more shifts the next upload to another node.
            let _ = http.get(format!("{}/healthcheck", c.lb)).send().await;
        }
    }
    per_node
        .into_iter()
        .enumerate()
        .map(|(i, h)| (i, h.expect("an upload on every node")))
        .collect()
}

/// Polls the image through the load balancer until its status is `want`.
async fn wait_status(c: &Cluster, http: &reqwest::Client, token: &str, id: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("{}/v2/images/{id}", c.image_one()))
            .header("x-auth-token", token)
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
        {
            let v: serde_json::Value = r.json().await.unwrap();
            if v["status"] == want {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} never {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_active_with(
    c: &Cluster,
    http: &reqwest::Client,
    token: &str,
    held_id: &str,
    data: &[u8],
) {
    let img = show(http, &c.image_one(), token, held_id).await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["checksum"], md5_hex(data), "{img}");
    let (status, bytes) = download(http, &c.image_one(), token, held_id).await;
    assert_eq!(status, 200);
    assert!(bytes == data, "downloaded bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_uploading_node_loses_only_its_upload() {
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = c.admin_token(&http).await;
    let mut uploads = one_upload_per_node(&c, &http, &token).await;
    let (survivor, kept) = uploads.pop().unwrap();
    let (victim, lost) = uploads.pop().unwrap();
    let (lost_id, kept_id, kept_data) = (lost.id.clone(), kept.id.clone(), kept.data.clone());

    c.kill9(victim);
    let status = lost.finish().await;
    assert_ne!(status, 204, "the killed node's upload cannot succeed");
    // The other node's upload goes on to the end.
    assert_eq!(kept.finish().await, 204);
    assert_active_with(&c, &http, &token, &kept_id, &kept_data).await;

    // Once the victim's heartbeat is stale, the survivor puts its upload back: no half image.
    wait_status(&c, &http, &token, &lost_id, "queued").await;
    let (status, _) = download(&http, &c.image_one(), &token, &lost_id).await;
    assert_eq!(status, 204, "a queued image has no data");
    assert!(c.nodes[survivor].process.is_some());

    // The victim comes back; the image takes a new upload.
    c.restart(victim);
    c.wait_all_up().await;
    let data = pattern(99);
    let (status, text) = upload(&http, &c.image_one(), &token, &lost_id, data.clone()).await;
    assert_eq!(status, 204, "{text}");
    assert_active_with(&c, &http, &token, &lost_id, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_node_leaves_the_other_nodes_upload_alone() {
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = c.admin_token(&http).await;
    let mut uploads = one_upload_per_node(&c, &http, &token).await;
    let (_, kept) = uploads.pop().unwrap();
    let (restarted, own) = uploads.pop().unwrap();
    let (own_id, kept_id, kept_data) = (own.id.clone(), kept.id.clone(), kept.data.clone());

    // kill -9 and start again: the start-up recovery resets this node's own upload only.
    c.restart(restarted);
    c.wait_all_up().await;
    assert_ne!(own.finish().await, 204);
    wait_status(&c, &http, &token, &own_id, "queued").await;
    assert_eq!(kept.finish().await, 204);
    assert_active_with(&c, &http, &token, &kept_id, &kept_data).await;
}

/// The replication service uploads into an image through the load balancer; the node that runs
/// the upload is killed (kill -9) after 2 MiB past two 8 MiB parts. Once the survivor has put
/// the image back to `queued`, it says how much the shared store holds (S3: the two parts the
/// dead node wrote whole; the filesystem: what reached the page cache), and an upload of the
/// rest from there publishes the whole content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_upload_cut_by_kill9_resumes_on_the_other_node() {
    use common::glance::sha512_hex;
    use common::process::identity;
    const PART: usize = 8 << 20;
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = c.admin_token(&http).await;
    let service = identity::token(
        &http,
        &c.lb,
        "glimpse-service",
        "cluster-service-pw",
        identity::project_named("service"),
    )
    .await;
    let data: Vec<u8> = (0..2 * PART + (3 << 20))
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 20) as u8))
        .collect();
    let (md5, sha) = (md5_hex(&data), sha512_hex(&data));
    let id = create_bare(&http, &c.image_one(), &token, "replica", "raw").await;
    let file_url = format!("{}/v2/images/{id}/file", c.image_one());
    let put = |offset: usize, body: reqwest::Body| {
        http.put(&file_url)
            .header("x-auth-token", &service)
            .header("content-type", "application/octet-stream")
            .header("x-glimpse-expected-checksum", &md5)
            .header("x-glimpse-expected-os-hash-value", &sha)
            .header("x-glimpse-upload-offset", offset.to_string())
            .body(body)
            .send()
    };

    let sent = 2 * PART + (2 << 20);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let request = tokio::spawn(put(0, body));
    for piece in data[..sent].chunks(256 << 10) {
        tx.send(Ok(piece.to_vec())).await.unwrap();
    }
    let name = format!("{id}-{}", &sha[..32]);
    let store = c.stores[0].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.partial_len(&name).await.unwrap() < 2 * PART as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two parts never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = c.saving_node(0, &id).await.expect("the upload runs");
    let victim = c.nodes.iter().position(|n| n.id == node).unwrap();
    c.kill9(victim);
    drop(tx);
    let _ = request.await.unwrap();

    wait_status(&c, &http, &token, &id, "queued").await;
    let r = http
        .get(format!(
            "{}/v2/extension/image_replicator/uploads/{id}?os_hash_value={sha}",
            c.image_one()
        ))
        .header("x-auth-token", &service)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let held = r.json::<serde_json::Value>().await.unwrap()["offset"]
        .as_u64()
        .unwrap() as usize;
    assert!(
        held >= 2 * PART && held <= sent,
        "held {held} of the {sent} sent"
    );
    if store.url().starts_with("s3://") {
        // The dead node's last, unfinished part was never written: parts are whole or absent.
        assert_eq!(held % PART, 0, "S3 holds whole parts: {held}");
    }
    println!("the survivor resumed from byte {held} of {}", data.len());
    let r = put(held, data[held..].to_vec().into()).await.unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_active_with(&c, &http, &token, &id, &data).await;
    let left: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.key)
        .filter(|k| k.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(store.partial_len(&name).await.unwrap(), 0);
}

/// Each node in turn gets SIGTERM (it drains: `/healthcheck` 503 until HAProxy takes it out,
/// still serving), exits and starts again, while four clients read through the load balancer:
/// not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_fails_no_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some(mut c) = Cluster::start(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = c.admin_token(&http).await;
    let id = common::process::raw_image(&http, &c.image_one(), &token, "steady", b"steady").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for k in 0..4 {
        let (http, stop, ok, failed) = (http.clone(), stop.clone(), ok.clone(), failed.clone());
        let url = if k % 2 == 0 {
            format!("{}/v2/images/{id}", c.image_one())
        } else {
            format!("{}/v2/images?limit=5", c.image_one())
        };
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http.get(&url).header("x-auth-token", &token).send().await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    Ok(r) => {
                        errors.push(format!("HTTP {}", r.status()));
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
            errors
        }));
    }
    for i in 0..c.nodes.len() {
        c.terminate(i);
        c.restart(i);
        c.wait_all_up().await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut errors = Vec::new();
    for client in clients {
        errors.extend(client.await.unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    println!("rolling restart of 2 nodes under load: {ok} requests answered, {failed} failed");
    assert!(ok > 100, "too little load: {ok}");
    assert_eq!(failed, 0, "{errors:?}");
}

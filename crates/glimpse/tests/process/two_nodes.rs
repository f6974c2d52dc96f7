//! Two nodes serving one region behind HAProxy (issue 14): a node killed in the middle of an
//! upload loses only its own upload (back to `queued` once its heartbeat is stale, no half
//! image) while the other node's upload completes; a node restarted while the other uploads
//! leaves that upload alone; a rolling restart (SIGTERM, drain, start, for each node) under a
//! steady load fails no request; a replication upload cut by the kill -9 of its node resumes
//! on the other node from the bytes the shared store holds (S3: whole 8 MiB parts); a node
//! killed in the middle of a replication, an IMS copy or a snapshot leaves the job to the
//! other, which finishes it; a mixed load goes on while a node is killed and restarted.

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

/// Polls the image through the load balancer until `done` holds for its status code and
/// body (an answer lost while a node goes away counts as none); the answer that ended it.
async fn poll_image(
    c: &Cluster,
    http: &reqwest::Client,
    token: &str,
    id: &str,
    done: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = fetch(c, http, token, id).await;
        if let Some((status, img)) = &answer
            && done(*status, img)
        {
            return answer.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never got there: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the image until its status is `want`.
async fn wait_status(c: &Cluster, http: &reqwest::Client, token: &str, id: &str, want: &str) {
    poll_image(c, http, token, id, |s, img| {
        s == 200 && img["status"] == want
    })
    .await;
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
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
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
    c.assert_running(survivor);

    // The victim comes back; the image takes a new upload.
    c.restart(victim);
    c.wait_all_up().await;
    let data = pattern(99);
    let (status, text) = upload(&http, &c.image_one(), &token, &lost_id, data.clone()).await;
    assert_eq!(status, 204, "{text}");
    assert_active_with(&c, &http, &token, &lost_id, &data).await;
}

/// A draining node beats until its last request ends: an upload it still serves longer than
/// `timeout_seconds` after SIGTERM is not taken over by the other node, and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_outlasting_the_drain_is_not_taken_over() {
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
    let mut uploads = one_upload_per_node(&c, &http, &token).await;
    let (_, other) = uploads.pop().unwrap();
    let (draining, held) = uploads.pop().unwrap();
    assert_eq!(other.finish().await, 204);
    let (id, data, node) = (
        held.id.clone(),
        held.data.clone(),
        c.nodes[draining].id.clone(),
    );
    let mut process = c.nodes[draining].process.take().unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The drain (2 s), the stale timeout (3 s) and a heartbeat: by then a node that stopped
    // beating at SIGTERM would have lost the upload to the other.
    let until = tokio::time::Instant::now() + Duration::from_secs(7);
    while tokio::time::Instant::now() < until {
        assert_eq!(c.saving_node(0, &id).await.as_deref(), Some(node.as_str()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(held.finish().await, 204);
    let exit = process.child.wait().unwrap();
    assert!(exit.success(), "the drained node exited with {exit}");
    assert_active_with(&c, &http, &token, &id, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_node_leaves_the_other_nodes_upload_alone() {
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
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
    use glimpse_store::PART;
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
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
    // The cut upload cannot have succeeded.
    let cut = request.await.unwrap();
    assert!(
        !matches!(&cut, Ok(r) if r.status() == 204),
        "the killed node's upload answered 204"
    );

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
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
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

/// Region-one's copies slowed to 12 MiB/s, so that a kill lands mid-copy.
const SLOW_COPIES: &str = "[regions.replication]\nmax_bytes_per_second = 12582912\n";

/// `kill -9` of the node whose worker copies an image to region-two: once the job's lease
/// expires the other node takes it over and finishes it, from the bytes the destination holds
/// (killed half-way, so that S3 holds whole 8 MiB parts too), with exactly one destination
/// image whose bytes are the source's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_copying_node_leaves_the_replication_to_the_other() {
    use common::process::identity;
    use common::process::replicator::Replicator;
    let Some(mut c) = Cluster::start_with(2, SLOW_COPIES).await else {
        return;
    };
    let http = reqwest::Client::new();
    let token = c.admin_token(&http).await;
    let far = identity::member_project(&http, &c.lb, &token, "far", "region-two", "admin").await;
    let image = c.image_one();
    let rep = Replicator::new(&http, &image, &token);
    let (data, job, seen) = rep.slow_copy_at("two-node-copy", &far, 50).await;
    assert_eq!(seen["status"], "replicating", "{seen}");
    let victim = c.job_node(0, &job).await.expect("a node runs the copy");
    c.kill9(victim);

    let (last, resumed) = rep.wait_end(&job).await;
    assert_eq!(last["status"], "replicated", "{last}");
    let survivor = 1 - victim;
    assert_eq!(
        c.job_node(0, &job).await,
        None,
        "the lease ended with the job"
    );
    assert!(
        resumed.is_some_and(|n| n > 0 && n < data.len() as u64),
        "resumed from {resumed:?}"
    );
    let far_token = identity::rescope(
        &http,
        &c.lb,
        &token,
        serde_json::json!({"project": {"id": far}}),
    )
    .await;
    let two = format!("{}/region-two/image", c.lb);
    Replicator::new(&http, &two, &far_token)
        .the_copy("two-node-copy", &data)
        .await;
    c.assert_running(survivor);
}

/// `kill -9` of the node that runs an encrypted in-region copy (IMS): the other node takes the
/// job over once its lease expires and ends it SUCCESS, with one active encrypted copy holding
/// the source's bytes; no half-made copy is ever listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_node_running_an_ims_copy_leaves_it_to_the_other() {
    use common::glance::{images_named, sha512_hex};
    use common::ims::{Ims, marked_data};
    use common::process::identity;
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
    let pid = identity::project_of(&http, &c.lb, &token).await;
    let data = marked_data(128 << 20, b"TWO-NODE-MARKER");
    let src = common::process::raw_image(&http, &c.image_one(), &token, "ims-src", &data).await;
    let ims = Ims::at(&http, &c.lb, "region-one", &token, &pid);
    let key = ims.kms().create_key().await;
    let id = ims
        .start_copy(
            &src,
            serde_json::json!({"name": "ims-two-node", "cmk_id": key}),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(n) = c.job_node(0, &id).await {
            break n;
        }
        assert!(tokio::time::Instant::now() < deadline, "the copy never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    c.kill9(victim);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let last = loop {
        let now = images_named(&http, &c.image_one(), &token, "ims-two-node").await;
        let now = now["images"].as_array().unwrap().clone();
        assert!(now.len() <= 1, "{now:?}");
        if let Some(copy) = now.first() {
            assert_eq!(copy["status"], "active", "never a half-made copy: {copy}");
        }
        let job = ims.job(&id).await.1;
        if job["status"] == "SUCCESS" || job["status"] == "FAIL" {
            break job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "copy never ended: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last["status"], "SUCCESS", "{last}");
    let copy = last["entities"]["image_id"].as_str().unwrap();
    let (status, got) = download(&http, &c.image_one(), &token, copy).await;
    assert_eq!(status, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));
}

/// `kill -9` of the node that runs a server snapshot: the disks are on storage both nodes
/// share, so the other node takes the job over once its lease expires; the server ends ACTIVE
/// with no task, and the snapshot is one active image holding the server's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_node_running_a_snapshot_leaves_it_to_the_other() {
    use common::nova::{Nova, assert_snapshot, location_id, qemu_present};
    if !qemu_present() {
        return;
    }
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
    let n = Nova {
        http: http.clone(),
        base: format!("{}/region-one/compute/v2.1", c.lb),
        token: token.clone(),
        version: None,
    };
    let data: Vec<u8> = (0..96u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let src = common::process::raw_image(&http, &c.image_one(), &token, "snap-base", &data).await;
    let id = n.active_server("two-node", &src).await;
    assert_eq!(n.write_disk(&id, 512, b"two nodes").await.status, 202);
    let r = n
        .action(
            &id,
            serde_json::json!({"createImage": {"name": "two-node-snap"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let snap = location_id(&r);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(v) = c.keyed_job_node(0, &snap).await {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the snapshot never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    c.kill9(victim);

    n.wait_image(&snap, "ACTIVE").await;
    let s = n.wait_server(&id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    let (status, bytes) = download(&http, &c.image_one(), &token, &snap).await;
    assert_eq!(status, 200);
    let file = c.root.join("snapshot.qcow2");
    std::fs::write(&file, bytes).unwrap();
    assert_snapshot(&file, &data, &[(512, b"two nodes")]);
}

/// What one client of the mixed load saw.
#[derive(Default)]
struct Tally {
    /// (operation, answer class, milliseconds) of every request.
    requests: Vec<(&'static str, &'static str, u128)>,
    /// Images whose upload answered 204, with the md5 of their bytes.
    uploaded: Vec<(String, String)>,
    /// Images whose upload did not answer 204 (cut by the kill, or refused meanwhile).
    unsure: Vec<String>,
    /// Images whose delete answered 204.
    deleted: Vec<String>,
    /// Images whose delete got no clear answer (it may have happened).
    maybe_deleted: Vec<String>,
}

fn class(r: &Result<reqwest::Response, reqwest::Error>) -> &'static str {
    match r {
        Ok(r) if r.status().is_success() => "2xx",
        Ok(r) if r.status().is_client_error() => "4xx",
        Ok(r) if r.status() == 502 || r.status() == 503 => "502/503",
        Ok(_) => "other 5xx",
        Err(_) => "no answer",
    }
}

/// What the mixed load's clients share: the stop signal and how many requests they made.
#[derive(Default)]
struct Load {
    stop: std::sync::atomic::AtomicBool,
    answered: std::sync::atomic::AtomicUsize,
}

impl Load {
    /// Waits until the clients have made `more` requests beyond those made so far.
    async fn go_on(&self, more: usize) {
        let until = self.answered.load(std::sync::atomic::Ordering::SeqCst) + more;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.answered.load(std::sync::atomic::Ordering::SeqCst) < until {
            assert!(tokio::time::Instant::now() < deadline, "the load stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One client of the mixed load: upload, list, show and delete in turn until `load.stop`.
async fn load_client(
    k: usize,
    http: reqwest::Client,
    image: String,
    token: String,
    load: std::sync::Arc<Load>,
) -> Tally {
    let mut t = Tally::default();
    let mut mine: Vec<String> = Vec::new();
    let mut round = 0usize;
    while !load.stop.load(std::sync::atomic::Ordering::SeqCst) {
        round += 1;
        let mut started = std::time::Instant::now();
        let (op, r) = match round % 4 {
            0 => {
                let name = format!("load-{k}-{round}");
                let body = serde_json::json!({"name": name, "disk_format": "raw", "container_format": "bare"});
                let r = http
                    .post(format!("{image}/v2/images"))
                    .header("x-auth-token", &token)
                    .json(&body)
                    .send()
                    .await;
                t.requests
                    .push(("create", class(&r), started.elapsed().as_millis()));
                load.answered
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(r) = r else { continue };
                if r.status() != 201 {
                    continue;
                }
                let id = r.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let data: Vec<u8> = (0..256usize << 10)
                    .map(|i| (i * 7 + k * 13 + round) as u8)
                    .collect();
                started = std::time::Instant::now();
                let r = http
                    .put(format!("{image}/v2/images/{id}/file"))
                    .header("x-auth-token", &token)
                    .header("content-type", "application/octet-stream")
                    .body(data.clone())
                    .send()
                    .await;
                if matches!(&r, Ok(r) if r.status() == 204) {
                    t.uploaded.push((id.clone(), md5_hex(&data)));
                    mine.push(id);
                } else {
                    t.unsure.push(id);
                }
                ("upload", r)
            }
            1 => (
                "list",
                http.get(format!("{image}/v2/images?limit=20"))
                    .header("x-auth-token", &token)
                    .send()
                    .await,
            ),
            2 => {
                let Some(id) = mine.last() else { continue };
                (
                    "show",
                    http.get(format!("{image}/v2/images/{id}"))
                        .header("x-auth-token", &token)
                        .send()
                        .await,
                )
            }
            _ => {
                if mine.len() < 3 {
                    continue;
                }
                let id = mine.remove(0);
                let r = http
                    .delete(format!("{image}/v2/images/{id}"))
                    .header("x-auth-token", &token)
                    .send()
                    .await;
                match &r {
                    Ok(r) if r.status() == 204 => t.deleted.push(id),
                    Ok(r) if r.status().is_client_error() => mine.push(id),
                    _ => t.maybe_deleted.push(id),
                }
                ("delete", r)
            }
        };
        t.requests
            .push((op, class(&r), started.elapsed().as_millis()));
        load.answered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    t
}

/// 32 clients upload, list, show and delete through HAProxy for a bounded time while one of
/// the two nodes is killed and started again: no uploaded image is lost (each is `active` with
/// its bytes' md5), none is duplicated, a cut upload is `queued` or complete, a deleted image
/// stays deleted; the requests, errors by class and p99 per operation are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_while_a_node_is_killed_and_restarted() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let Some((mut c, http, token)) = Cluster::start_as_admin(2).await else {
        return;
    };
    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..32)
        .map(|k| {
            tokio::spawn(load_client(
                k,
                http.clone(),
                c.image_one(),
                token.clone(),
                load.clone(),
            ))
        })
        .collect();
    // Phases by requests made, not by time: steady, node 0 dead, node 0 back.
    load.go_on(600).await;
    c.kill9(0);
    load.go_on(600).await;
    c.restart(0);
    c.wait_all_up().await;
    load.go_on(600).await;
    load.stop.store(true, Ordering::SeqCst);
    let mut all = Tally::default();
    for client in clients {
        let t = client.await.unwrap();
        all.requests.extend(t.requests);
        all.uploaded.extend(t.uploaded);
        all.unsure.extend(t.unsure);
        all.deleted.extend(t.deleted);
        all.maybe_deleted.extend(t.maybe_deleted);
    }

    // The figures.
    let mut by_class = std::collections::BTreeMap::<&str, usize>::new();
    for (_, cl, _) in &all.requests {
        *by_class.entry(cl).or_default() += 1;
    }
    println!(
        "mixed load, 32 clients, node 0 killed after 600 requests and restarted after 600 more:"
    );
    println!("  {} requests; by class: {by_class:?}", all.requests.len());
    for op in ["create", "upload", "list", "show", "delete"] {
        let mut ms: Vec<u128> = all
            .requests
            .iter()
            .filter(|r| r.0 == op)
            .map(|r| r.2)
            .collect();
        ms.sort_unstable();
        if let Some(p99) = ms.get((ms.len() * 99).div_ceil(100).saturating_sub(1)) {
            println!("  {op}: {} requests, p99 {p99} ms", ms.len());
        }
    }
    assert!(
        all.uploaded.len() > 20,
        "too little load: {} uploads",
        all.uploaded.len()
    );

    // Nothing lost, nothing half made, nothing duplicated.
    let deleted: std::collections::HashSet<_> = all.deleted.iter().cloned().collect();
    for (id, md5) in &all.uploaded {
        let (status, img) = fetch(&c, &http, &token, id).await.expect("an answer");
        if deleted.contains(id) {
            assert_eq!(status, 404, "deleted image came back: {img}");
            continue;
        }
        if status == 404 && all.maybe_deleted.contains(id) {
            continue;
        }
        assert_eq!(
            img["status"], "active",
            "uploaded image lost: HTTP {status} {img}"
        );
        assert_eq!(&img["checksum"], md5, "{img}");
    }
    for id in &all.unsure {
        wait_not_saving(&c, &http, &token, id).await;
    }
    let mut names = std::collections::HashMap::<String, usize>::new();
    let mut next = Some(format!("{}/v2/images?limit=1000", c.image_one()));
    while let Some(url) = next {
        let page: serde_json::Value = http
            .get(&url)
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for img in page["images"].as_array().unwrap() {
            *names
                .entry(img["name"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        next = page["next"]
            .as_str()
            .map(|n| format!("{}{n}", c.image_one()));
    }
    let dup: Vec<_> = names
        .iter()
        .filter(|(n, k)| n.starts_with("load-") && **k > 1)
        .collect();
    assert!(dup.is_empty(), "duplicated images: {dup:?}");
}

/// Waits until a cut upload's image is no longer `saving`: `queued` with no data, or `active`
/// (the node published it before it died, the answer was lost), or deleted.
async fn wait_not_saving(c: &Cluster, http: &reqwest::Client, token: &str, id: &str) {
    let settled = |s: u16, img: &serde_json::Value| {
        s == 404 || img["status"] == "queued" || img["status"] == "active"
    };
    let (_, img) = poll_image(c, http, token, id, settled).await;
    if img["status"] == "queued" {
        assert!(img["checksum"].is_null(), "{img}");
    }
}

/// `GET` of an image through the load balancer: its status code and body (`None`: no answer).
async fn fetch(
    c: &Cluster,
    http: &reqwest::Client,
    token: &str,
    id: &str,
) -> Option<(u16, serde_json::Value)> {
    let r = http
        .get(format!("{}/v2/images/{id}", c.image_one()))
        .header("x-auth-token", token)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

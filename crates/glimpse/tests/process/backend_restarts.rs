//! PostgreSQL restarted and the S3 server restarted in the middle of a load (issue 14): two
//! `glimpse serve` nodes behind HAProxy on the test's own PostgreSQL and radosgw
//! (`scripts/services.sh` as a command; the servers the rest of pass 2 shares are never
//! touched). Four clients upload small images (their md5 and sha512 kept), download them
//! (bytes checked), list and delete, while PostgreSQL is stopped (`-m immediate`) for three
//! seconds and started again, then radosgw and its OSD are killed (`kill -9`) and started again.
//! Then:
//! * the nodes were never restarted, and after each restart a new upload and download succeed on
//!   each node within a bounded time;
//! * every image is `active` with exactly the uploaded bytes (md5 and sha512, downloaded) or
//!   `queued` with no data; none stays `saving`; an upload answered 204 is active, one answered
//!   with an error is queued;
//! * the errors are 503s or requests without an answer, never a 500 (a panic answers 500); none
//!   in the steady phase nor once the service said it recovered.
//!
//! Runs in pass 2 of `scripts/test` (PostgreSQL and S3), skips in pass 1; skips, saying so,
//! without the PostgreSQL server binaries or radosgw, except in CI.

use crate::common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::glance::{md5_hex, sha512_hex};
use common::services::OwnServices;
use serde_json::{Value, json};

const PHASES: [&str; 5] = [
    "steady",
    "postgres down",
    "after postgres",
    "radosgw down",
    "after radosgw",
];
const OPS: [&str; 5] = ["create", "upload", "download", "list", "delete"];
const CLIENTS: u64 = 4;
/// How long the service may take to serve an upload and a download on every node again once
/// a server is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

/// Answers of one kind of request in one phase, by class.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    ok: u64,
    client_4xx: u64,
    unavailable_503: u64,
    internal_500: u64,
    other_5xx: u64,
    no_answer: u64,
}

impl Tally {
    fn errors(&self) -> u64 {
        self.client_4xx + self.unavailable_503 + self.internal_500 + self.other_5xx + self.no_answer
    }
    fn add(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.client_4xx += o.client_4xx;
        self.unavailable_503 += o.unavailable_503;
        self.internal_500 += o.internal_500;
        self.other_5xx += o.other_5xx;
        self.no_answer += o.no_answer;
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Status(u16),
    NoAnswer,
}

/// An image the test made, with the bytes it sent and what it was told.
#[derive(Debug)]
struct Made {
    data: Arc<Vec<u8>>,
    /// The phase the upload started in.
    phase: usize,
    upload: Option<Outcome>,
    delete: Option<Outcome>,
}

struct Load {
    http: reqwest::Client,
    image: String,
    token: String,
    phase: AtomicUsize,
    stop: AtomicBool,
    tallies: Mutex<HashMap<(usize, &'static str), Tally>>,
    errors: Mutex<Vec<String>>,
    made: Mutex<HashMap<String, Made>>,
    /// Downloads answered 200 whose bytes were not the uploaded ones.
    wrong_bytes: Mutex<Vec<String>>,
}

impl Load {
    /// Counts the answer of a request sent in phase `sent`: in the first outage phase its
    /// time overlapped (a request in flight when a server went down is the outage's), else in
    /// the phase it ended in.
    fn count(&self, sent: usize, op: &'static str, answer: Outcome, detail: &str) {
        let now = self.phase.load(Ordering::SeqCst);
        let phase = (sent..=now).find(|p| p % 2 == 1).unwrap_or(now);
        let mut t = self.tallies.lock().unwrap();
        let t = t.entry((phase, op)).or_default();
        match answer {
            Outcome::Ok => t.ok += 1,
            Outcome::Status(s) if (400..500).contains(&s) => t.client_4xx += 1,
            Outcome::Status(503) => t.unavailable_503 += 1,
            Outcome::Status(500) => t.internal_500 += 1,
            Outcome::Status(_) => t.other_5xx += 1,
            Outcome::NoAnswer => t.no_answer += 1,
        }
        if answer != Outcome::Ok {
            self.errors.lock().unwrap().push(format!(
                "{}: {op} {answer:?} {}",
                PHASES[phase],
                text_of(detail)
            ));
        }
    }
}

/// The text of an error page (its tags and spacing dropped), cut to 160 characters.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ").chars().take(160).collect()
}

/// xorshift64: the sizes and bytes of the images.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// 16 KiB to 512 KiB of bytes after a text header (so that no format is detected in them).
    fn image(&mut self) -> Vec<u8> {
        let len = (16 << 10) + (self.next() % (496 << 10)) as usize;
        let mut data = b"glimpse restart load\n".to_vec();
        while data.len() < len {
            data.extend_from_slice(&self.next().to_le_bytes());
        }
        data.truncate(len);
        data
    }
}

/// The answer to a request whose success is `want`, with the body text for the error list.
async fn answer(r: reqwest::Result<reqwest::Response>, want: u16) -> (Outcome, String) {
    match r {
        Err(e) => (Outcome::NoAnswer, e.to_string()),
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text().await {
                Err(e) => (Outcome::NoAnswer, e.to_string()),
                Ok(_) if status == want => (Outcome::Ok, String::new()),
                Ok(text) => (Outcome::Status(status), text),
            }
        }
    }
}

/// Creates an image and uploads `data` to it through `image` (an image endpoint); records both
/// in the ledger. The id, and whether the upload was answered 204.
async fn create_and_upload(
    load: &Load,
    image: &str,
    name: &str,
    data: Vec<u8>,
) -> (Option<String>, bool) {
    let phase = load.phase.load(Ordering::SeqCst);
    let r = load
        .http
        .post(format!("{image}/v2/images"))
        .header("x-auth-token", &load.token)
        .json(&json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await;
    let id = match r {
        Ok(r) if r.status() == 201 => match r.json::<Value>().await {
            Ok(v) => v["id"].as_str().map(str::to_string),
            Err(_) => None,
        },
        r => {
            let (a, text) = answer(r, 201).await;
            load.count(phase, "create", a, &text);
            return (None, false);
        }
    };
    let Some(id) = id else {
        load.count(phase, "create", Outcome::NoAnswer, "no id in the answer");
        return (None, false);
    };
    load.count(phase, "create", Outcome::Ok, "");
    let data = Arc::new(data);
    load.made.lock().unwrap().insert(
        id.clone(),
        Made {
            data: data.clone(),
            phase: load.phase.load(Ordering::SeqCst),
            upload: None,
            delete: None,
        },
    );
    let phase = load.phase.load(Ordering::SeqCst);
    let r = load
        .http
        .put(format!("{image}/v2/images/{id}/file"))
        .header("x-auth-token", &load.token)
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await;
    let (a, text) = answer(r, 204).await;
    load.count(phase, "upload", a, &text);
    load.made.lock().unwrap().get_mut(&id).unwrap().upload = Some(a);
    (Some(id), a == Outcome::Ok)
}

/// Downloads `id` through `image`; its status, and whether the bytes were `data`'s (an answer
/// cut in the middle counts as no answer).
async fn download_checked(load: &Load, image: &str, id: &str, data: &[u8]) -> (Outcome, String) {
    let r = load
        .http
        .get(format!("{image}/v2/images/{id}/file"))
        .header("x-auth-token", &load.token)
        .send()
        .await;
    let r = match r {
        Ok(r) => r,
        Err(e) => return (Outcome::NoAnswer, e.to_string()),
    };
    let status = r.status().as_u16();
    match r.bytes().await {
        Err(e) => (Outcome::NoAnswer, e.to_string()),
        Ok(body) if status == 200 => {
            if md5_hex(&body) != md5_hex(data) || sha512_hex(&body) != sha512_hex(data) {
                load.wrong_bytes.lock().unwrap().push(format!(
                    "{id}: {} bytes downloaded, {} uploaded",
                    body.len(),
                    data.len()
                ));
            }
            (Outcome::Ok, String::new())
        }
        Ok(body) => (
            Outcome::Status(status),
            String::from_utf8_lossy(&body).into(),
        ),
    }
}

/// One client: uploads (4 in 10), downloads of its own images (3 in 10), lists (2 in 10) and
/// deletes of its oldest image (1 in 10), until told to stop.
async fn client(load: Arc<Load>, k: u64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !load.stop.load(Ordering::SeqCst) {
        n += 1;
        let op = n % 10;
        let phase = load.phase.load(Ordering::SeqCst);
        if op < 4 || mine.is_empty() {
            let data = rng.image();
            let name = format!("load-{k}-{n}");
            if let (Some(id), true) = create_and_upload(&load, &load.image, &name, data).await {
                mine.push(id);
            }
        } else if op < 7 {
            let id = mine[(rng.next() % mine.len() as u64) as usize].clone();
            let data = load.made.lock().unwrap()[&id].data.clone();
            let (a, text) = download_checked(&load, &load.image, &id, &data).await;
            load.count(phase, "download", a, &text);
        } else if op < 9 {
            let r = load
                .http
                .get(format!("{}/v2/images?limit=20", load.image))
                .header("x-auth-token", &load.token)
                .send()
                .await;
            let (a, text) = answer(r, 200).await;
            load.count(phase, "list", a, &text);
        } else {
            let id = mine.remove(0);
            let r = load
                .http
                .delete(format!("{}/v2/images/{id}", load.image))
                .header("x-auth-token", &load.token)
                .send()
                .await;
            let (a, text) = answer(r, 204).await;
            load.count(phase, "delete", a, &text);
            load.made.lock().unwrap().get_mut(&id).unwrap().delete = Some(a);
        }
    }
}

/// Until a new image uploads and downloads on every node (straight to the node, not through
/// the balancer), at most [`RECOVERY_BOUND`]; how long that took.
async fn wait_recovered(load: &Load, c: &Cluster, what: &str) -> Duration {
    let start = Instant::now();
    let mut rng = Rng(start.elapsed().as_nanos() as u64 | 1);
    for node in &c.nodes {
        let image = format!("{}/region-one/image", node.base());
        let mut last = String::new();
        loop {
            assert!(
                start.elapsed() < RECOVERY_BOUND,
                "{} did not serve again within {RECOVERY_BOUND:?} after {what}: {last}",
                node.id
            );
            let data = rng.image();
            let name = format!("probe-{}", node.id);
            if let (Some(id), true) = create_and_upload(load, &image, &name, data.clone()).await {
                let (a, text) = download_checked(load, &image, &id, &data).await;
                if a == Outcome::Ok {
                    break;
                }
                last = format!("download {a:?} {text}");
            } else {
                last = "upload failed".into();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    start.elapsed()
}

/// Every image of the admin project, through `image`.
async fn all_images(load: &Load) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let marker = all
            .last()
            .map(|i| format!("&marker={}", i["id"].as_str().unwrap()))
            .unwrap_or_default();
        let r = load
            .http
            .get(format!("{}/v2/images?limit=200{marker}", load.image))
            .header("x-auth-token", &load.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        let page = page["images"].as_array().unwrap().clone();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_radosgw_restarted_mid_load_lose_nothing() {
    if std::env::var_os("GLIMPSE_TEST_POSTGRES_URL").is_none()
        || std::env::var_os("GLIMPSE_TEST_S3_ENDPOINT").is_none()
    {
        eprintln!(
            "skipped: runs in pass 2 (PostgreSQL + S3) of scripts/test, on servers of its own"
        );
        return;
    }
    let Some(services) = OwnServices::start() else {
        return;
    };
    let Some(mut c) = Cluster::start_on(2, &services.backends()).await else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let token = c.admin_token(&http).await;
    let load = Arc::new(Load {
        http,
        image: c.image_one(),
        token,
        phase: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        tallies: Mutex::new(HashMap::new()),
        errors: Mutex::new(Vec::new()),
        made: Mutex::new(HashMap::new()),
        wrong_bytes: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| tokio::spawn(client(load.clone(), k)))
        .collect();
    let started = Instant::now();
    let at = |what: &str| println!("{:>6.1}s {what}", started.elapsed().as_secs_f64());

    tokio::time::sleep(Duration::from_secs(4)).await;
    load.phase.store(1, Ordering::SeqCst);
    at("PostgreSQL stopped (-m immediate)");
    services.run("stop-postgres").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    services.run("start-postgres").await;
    at("PostgreSQL started again");
    let pg_recovery = wait_recovered(&load, &c, "the PostgreSQL restart").await;
    load.phase.store(2, Ordering::SeqCst);
    at(&format!(
        "upload + download on both nodes again ({pg_recovery:.1?} after)"
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;

    load.phase.store(3, Ordering::SeqCst);
    at("radosgw and the OSD killed (-9), starting again");
    services.run("restart-s3").await;
    at("radosgw answers again");
    let s3_recovery = wait_recovered(&load, &c, "the radosgw restart").await;
    load.phase.store(4, Ordering::SeqCst);
    at(&format!(
        "upload + download on both nodes again ({s3_recovery:.1?} after)"
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    at("load stopped");

    // The counts, per phase and kind of request.
    let tallies = load.tallies.lock().unwrap().clone();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{:<15} {:<9} {:>6} {:>6} {:>4} {:>4} {:>4} {:>4} {:>9}",
        "phase", "request", "sent", "ok", "4xx", "503", "500", "5xx", "no answer"
    );
    let mut per_phase = [Tally::default(); PHASES.len()];
    for (p, phase) in PHASES.iter().enumerate() {
        for op in OPS {
            let t = tallies.get(&(p, op)).copied().unwrap_or_default();
            per_phase[p].add(&t);
            let _ = writeln!(
                report,
                "{phase:<15} {op:<9} {:>6} {:>6} {:>4} {:>4} {:>4} {:>4} {:>9}",
                t.ok + t.errors(),
                t.ok,
                t.client_4xx,
                t.unavailable_503,
                t.internal_500,
                t.other_5xx,
                t.no_answer
            );
        }
    }
    println!("{report}");
    let errors = load.errors.lock().unwrap().clone();
    for e in errors.iter().take(20) {
        println!("  {e}");
    }

    // No node went down with its backends.
    for i in 0..c.nodes.len() {
        c.assert_running(i);
    }

    // No image stays `saving` once the load stopped.
    let stopped = Instant::now();
    let images = loop {
        let images = all_images(&load).await;
        let saving: Vec<&Value> = images.iter().filter(|i| i["status"] == "saving").collect();
        if saving.is_empty() {
            break images;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "images left saving: {saving:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "no image saving {:.1?} after the load stopped",
        stopped.elapsed()
    );

    // Every image is active with exactly the uploaded bytes, or queued with no data.
    let made = std::mem::take(&mut *load.made.lock().unwrap());
    let listed: HashMap<&str, &Value> = images
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i))
        .collect();
    let (mut active, mut queued) = (0, 0);
    for img in &images {
        let id = img["id"].as_str().unwrap();
        let Some(m) = made.get(id) else {
            // Created, but the answer never came: it holds no data.
            assert_eq!(img["status"], "queued", "{img}");
            assert!(img["checksum"].is_null(), "{img}");
            queued += 1;
            continue;
        };
        match img["status"].as_str().unwrap() {
            "active" => {
                active += 1;
                assert_eq!(img["checksum"], md5_hex(&m.data), "{img}");
                assert_eq!(img["os_hash_value"], sha512_hex(&m.data), "{img}");
                let (a, text) = download_checked(&load, &load.image, id, &m.data).await;
                assert_eq!(a, Outcome::Ok, "download of {id}: {text}");
                assert!(
                    !matches!(m.upload, Some(Outcome::Status(_))),
                    "{id}: upload answered {:?} ({}) but the image is active",
                    m.upload,
                    PHASES[m.phase]
                );
            }
            "queued" => {
                queued += 1;
                assert!(img["checksum"].is_null() && img["size"].is_null(), "{img}");
                let r = load
                    .http
                    .get(format!("{}/v2/images/{id}/file", load.image))
                    .header("x-auth-token", &load.token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204, "{id} is queued: no data");
                assert_ne!(
                    m.upload,
                    Some(Outcome::Ok),
                    "{id}: upload answered 204 ({}) but the image is queued",
                    PHASES[m.phase]
                );
            }
            other => panic!("{id} is {other}: {img}"),
        }
    }
    // An upload answered 204 is there unless it was deleted (a delete that failed may or may
    // not have happened: its answer can be lost after the commit).
    for (id, m) in &made {
        match (m.upload, m.delete, listed.get(id.as_str())) {
            (_, Some(Outcome::Ok), Some(img)) => panic!("{id} deleted (204) but listed: {img}"),
            (Some(Outcome::Ok), None, None) => {
                panic!("{id} uploaded (204) and never deleted, but not listed")
            }
            _ => {}
        }
    }
    println!(
        "{} images made; listed at the end: {active} active with their bytes, {queued} queued \
         with no data, none saving",
        made.len()
    );

    let wrong = load.wrong_bytes.lock().unwrap().clone();
    assert!(wrong.is_empty(), "downloads with wrong bytes: {wrong:?}");
    let total_500: u64 = per_phase.iter().map(|t| t.internal_500).sum();
    assert_eq!(total_500, 0, "500 answers: {errors:#?}");
    let other: u64 = per_phase.iter().map(|t| t.other_5xx + t.client_4xx).sum();
    assert_eq!(other, 0, "answers other than 503: {errors:#?}");
    for p in [0, 2, 4] {
        assert_eq!(
            per_phase[p].errors(),
            0,
            "errors in phase {} (the service was up): {errors:#?}",
            PHASES[p]
        );
    }
    assert!(
        per_phase.iter().all(|t| t.ok > 0),
        "a phase without load: {per_phase:?}"
    );

    // The nodes serve normally: a last upload and download without restarting them.
    wait_recovered(&load, &c, "the end of the load").await;
    drop(c);
    drop(services);
}

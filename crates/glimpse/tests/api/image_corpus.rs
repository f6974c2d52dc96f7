//! The hostile disk-image corpus through the real upload API: every file of
//! `../shared/tools/make-bad-images.sh`, and of Glimpse's own additions
//! (`scripts/make-more-bad-images.py`), is uploaded with the disk_format its MANIFEST.tsv names
//! and must get exactly the expected answer (ACCEPT → 204 and active; REJECT → 415, image back
//! to queued with no data; REJECT-LIMIT → 413). The reference targets are canary files, and no
//! stored blob may ever contain a canary.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestCloud;
use common::corpus::Row;
use common::glance::{create_bare, download, show, upload};

fn shared_dir() -> PathBuf {
    std::env::var("GLIMPSE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

const CANARY: &str = "GLIMPSE-CANARY-7f3a9c01";

/// Builds the shared corpus into `dir`; returns its manifest rows.
fn build_corpus(dir: &Path) -> Vec<Row> {
    let passwd = dir.join("canary-passwd");
    let shadow = dir.join("canary-shadow");
    std::fs::write(&passwd, format!("{CANARY} passwd\n").repeat(64)).unwrap();
    std::fs::write(&shadow, format!("{CANARY} shadow\n").repeat(64)).unwrap();
    let out = dir.join("corpus");
    let status = Command::new("bash")
        .arg(shared_dir().join("tools/make-bad-images.sh"))
        .arg(&out)
        .env("TARGET_PASSWD", &passwd)
        .env("TARGET_SHADOW", &shadow)
        .env("BOMB_MIB", "64")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run make-bad-images.sh");
    assert!(status.success(), "make-bad-images.sh failed");
    common::corpus::read_manifest(&out)
}

fn tool_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Every file under `root` (recursively).
fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_file_gets_its_manifest_answer() {
    if !tool_available("qemu-img") {
        assert!(std::env::var("CI").is_err(), "qemu-img is required in CI");
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let work = common::TempDir::new();
    let mut rows = build_corpus(&work.0);
    assert!(rows.len() > 70, "corpus has {} rows", rows.len());
    rows.extend(common::corpus::own(&work.0));
    // A 64 MiB upload cap makes the 1.1 TB sparse file a quick 413.
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            r.limits.image_size_cap = 64 << 20;
        }
    })
    .await;
    let (_, token) = tc.user_in_new_project("member", "region-one").await;
    let image = tc.image("region-one");
    let mut wrong = Vec::new();
    for row in &rows {
        let (file, claim, expected, name) = (&row.file, &row.claim, &row.expected, row.name());
        let id = create_bare(&tc.http, &image, &token, &name, claim).await;
        let data = if name.starts_with("oversize") {
            // Stream the sparse file rather than reading 1.1 TB into memory.
            None
        } else {
            Some(std::fs::read(file).unwrap())
        };
        let (status, body) = match data {
            Some(d) => upload(&tc.http, &image, &token, &id, d).await,
            None => {
                // The 1.1 TB sparse file: declare its length and send no body. The server must
                // refuse on the declared length alone, before reading a byte (a streamed body
                // would be cut off by the 413, racing the client's writes).
                let len = std::fs::metadata(file).unwrap().len();
                declared_only(
                    &tc.base,
                    &format!("/region-one/image/v2/images/{id}/file"),
                    &token,
                    len,
                )
                .await
            }
        };
        let img = show(&tc.http, &image, &token, &id).await;
        let state = img["status"].as_str().unwrap_or("?").to_string();
        let ok = match expected.as_str() {
            "ACCEPT" | "ACCEPT-NOCONVERT" => status == 204 && state == "active",
            "REJECT" => {
                status == 415
                    && state == "queued"
                    && download(&tc.http, &image, &token, &id).await.0 == 204
            }
            "REJECT-LIMIT" => status == 413 && state == "queued",
            other => panic!("unknown expectation {other}"),
        };
        if !ok {
            wrong.push(format!(
                "{name} (claim {claim}): expected {expected}, got HTTP {status} and status {state}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
    }
    // No stored object may contain a canary: nothing ever followed a reference.
    let mut stored = Vec::new();
    files_under(&tc.data_dir, &mut stored);
    for p in stored {
        if p.extension()
            .is_some_and(|e| e == "db" || e == "db-wal" || e == "db-shm")
        {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&p) {
            let hit = bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes());
            assert!(!hit, "canary found in stored file {}", p.display());
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} corpus answers wrong:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
    tc.assert_no_server_errors().await;
}

/// Sends only the head of a `PUT` declaring `len` bytes; returns the status and body text.
async fn declared_only(base: &str, path: &str, token: &str, len: u64) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

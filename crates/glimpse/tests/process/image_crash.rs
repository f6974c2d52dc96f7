//! `kill -9` of the server in the middle of an upload, then a restart: the image is `queued`
//! with no data, or `active` with exactly the bytes sent — never anything else, and it can be
//! uploaded again, and the killed writer's staging file is gone as soon as the process is back.
//! Runs the real binary at several kill points.

use crate::common;

use common::glance::{create_bare, download, md5_hex, show, upload};
use common::process::{GlimpseProcess, identity, temp_dir};

async fn admin_token(base: &str, dir: &std::path::Path) -> String {
    let password = std::fs::read_to_string(dir.join("admin-password")).unwrap();
    let http = reqwest::Client::new();
    identity::token(
        &http,
        base,
        "admin",
        password.trim(),
        identity::project_named("admin"),
    )
    .await
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_upload_leaves_queued_or_active_never_partial() {
    let dir = temp_dir();
    let http = reqwest::Client::new();
    const SIZE: usize = 24 << 20;
    let mut left_behind = 0;
    // Kill after the client has sent this many bytes (0 = right after the request head).
    for (round, kill_after) in [0usize, 1 << 20, 9 << 20, 17 << 20, 23 << 20]
        .into_iter()
        .enumerate()
    {
        let mut server = GlimpseProcess::start(&dir, None, &[]);
        let image = format!("{}/region-one/image", server.base);
        let token = admin_token(&server.base, &dir).await;
        let id = create_bare(&http, &image, &token, &format!("crash-{round}"), "raw").await;
        let data = pattern(SIZE, round as u8);

        // Stream the body in 256 KiB pieces; once `kill_after` bytes are out, SIGKILL the server.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
        let put = http
            .put(format!("{image}/v2/images/{id}/file"))
            .header("x-auth-token", &token)
            .header("content-type", "application/octet-stream")
            .header("content-length", SIZE.to_string())
            .body(body)
            .send();
        let request = tokio::spawn(put);
        let mut sent = 0usize;
        for piece in data.chunks(256 << 10) {
            if sent >= kill_after {
                break;
            }
            if tx.send(Ok(piece.to_vec())).await.is_err() {
                break;
            }
            sent += piece.len();
        }
        server.kill9();
        drop(tx);
        let _ = request.await;
        left_behind += staging_files(&dir).len();

        let server = GlimpseProcess::start(&dir, None, &[]);
        // The killed writer's staging file went at start, not an hour later.
        assert_eq!(staging_files(&dir), Vec::<String>::new(), "round {round}");
        let image = format!("{}/region-one/image", server.base);
        let token = admin_token(&server.base, &dir).await;
        let img = show(&http, &image, &token, &id).await;
        match img["status"].as_str().unwrap() {
            "queued" => {
                assert!(img["checksum"].is_null() && img["size"].is_null(), "{img}");
                assert_eq!(download(&http, &image, &token, &id).await.0, 204);
                // And the upload can simply be retried.
                let (status, body) = upload(&http, &image, &token, &id, data.clone()).await;
                assert_eq!(status, 204, "retry after crash: {body}");
                let (status, got) = download(&http, &image, &token, &id).await;
                assert_eq!(status, 200);
                assert!(got == data, "round {round}: retried upload reads back");
            }
            "active" => {
                assert_eq!(img["checksum"], md5_hex(&data), "round {round}: {img}");
                let (_, got) = download(&http, &image, &token, &id).await;
                assert!(got == data);
            }
            other => panic!("round {round}: image is {other} after kill -9 and restart: {img}"),
        }
        drop(server);
    }
    assert!(
        left_behind > 0,
        "no kill left a staging file: the start-up removal went untested"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names in region-one's blob store `.staging` directory.
fn staging_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("region-one/blobs/.staging"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

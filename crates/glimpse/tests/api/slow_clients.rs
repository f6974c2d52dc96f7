//! Slow and flooding clients, as an attacker sends them (issue 13): a request head trickled a
//! byte at a time, a connection that never sends a byte, an upload body trickled a byte at a
//! time, and more connections than the cap. Each is cut off by the listener's limits
//! (`[http]`, here set to one or two seconds), and an upload cut this way leaves its image
//! `queued`, as any failed upload does. Each test bounds its own wait: a limit that does not
//! work fails the test instead of hanging it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestCloud;
use crate::common::glance::{create_bare, show};

/// Longest any cut-off below may take before the test calls the limit broken.
const GIVE_UP: Duration = Duration::from_secs(20);

async fn cloud() -> TestCloud {
    TestCloud::start_with(|c| {
        c.http.header_timeout_seconds = 1;
        c.http.body_idle_seconds = 1;
        c.http.max_connections = 8;
    })
    .await
}

async fn connect(cloud: &TestCloud) -> TcpStream {
    let addr = cloud.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.unwrap()
}

/// Writes `head` then one byte of `drip` every 200 ms, until the server closes the
/// connection; true if it did within [`GIVE_UP`].
async fn closed_while_dripping(mut conn: TcpStream, head: &[u8], drip: &[u8]) -> bool {
    conn.write_all(head).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let reader = async move {
        let mut sink = Vec::new();
        let _ = rd.read_to_end(&mut sink).await;
        sink
    };
    let dripper = async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for b in drip.iter().cycle() {
            tick.tick().await;
            if wr.write_all(&[*b]).await.is_err() {
                // The server has gone: let the reader see the end.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::time::timeout(GIVE_UP, async {
        tokio::select! {
            answer = reader => answer,
            () = dripper => unreachable!("the drip never ends"),
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_trickled_request_head_is_cut_off() {
    let cloud = cloud().await;
    let conn = connect(&cloud).await;
    assert!(
        closed_while_dripping(
            conn,
            b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n",
            b"X-Slow: aaaaaaaaaaaaaaaaaaaa\r\n"
        )
        .await,
        "the server kept a trickled request head open"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let cloud = cloud().await;
    let mut conn = connect(&cloud).await;
    let mut sink = Vec::new();
    let ended = tokio::time::timeout(GIVE_UP, conn.read_to_end(&mut sink)).await;
    assert!(ended.is_ok(), "the server kept a silent connection open");
}

#[tokio::test]
async fn a_trickled_upload_is_cut_off_and_the_image_stays_queued() {
    let cloud = cloud().await;
    let http = reqwest::Client::new();
    let token = cloud.admin_token().await;
    let image = cloud.image("region-one");
    let id = create_bare(&http, &image, &token, "trickled", "raw").await;

    let conn = connect(&cloud).await;
    let head = format!(
        "PUT /region-one/image/v2/images/{id}/file HTTP/1.1\r\nHost: x\r\n\
         X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    let mut start = head.into_bytes();
    start.extend(std::iter::repeat_n(7u8, 65536));
    assert!(
        closed_while_dripping(conn, &start, &[7u8]).await,
        "the server kept a trickled upload open"
    );
    // The failed upload put the image back where it was, with no data.
    let shown = show(&http, &image, &token, &id).await;
    assert_eq!(shown["status"], "queued", "{shown}");
    assert_eq!(shown["size"], serde_json::Value::Null, "{shown}");
    cloud.assert_no_server_errors().await;
}

/// Past `max_connections` the listener stops accepting: with every slot held by a silent
/// client, a new request is answered only once a slot frees (here when the header timeout
/// closes the silent ones), and it is answered then.
#[tokio::test]
async fn connections_past_the_cap_wait_for_a_slot() {
    let cloud = cloud().await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect(&cloud).await);
    }
    let health = format!("{}/healthcheck", cloud.base);
    let client = reqwest::Client::new();
    let early = tokio::time::timeout(Duration::from_millis(300), client.get(&health).send()).await;
    assert!(
        early.is_err(),
        "a ninth connection was served past the cap of 8"
    );
    let later = tokio::time::timeout(GIVE_UP, client.get(&health).send())
        .await
        .expect("the ninth connection was never served")
        .unwrap();
    assert_eq!(later.status(), 200);
    drop(held);
}

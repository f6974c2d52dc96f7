//! The real binary: `glimpse serve` on an empty data dir is ready, answers health, metrics and
//! unknown paths in JSON, puts a request id on every response, and a restart on the same data
//! dir keeps everything and bootstraps nothing twice.

use crate::common;

use common::process::{GlimpseProcess, temp_dir};
use serde_json::Value;

fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    })
}

#[test]
fn serve_answers_health_metrics_and_json_404_and_restarts_cleanly() {
    let dir = temp_dir();
    let mut first = GlimpseProcess::start(&dir, None, &[]);
    let ready = first
        .stdout_lines
        .iter()
        .find(|l| l.starts_with("ready in "))
        .cloned()
        .unwrap();
    println!("first start: {ready}");

    let (status, headers, body) = get(&format!("{}/healthcheck", first.base));
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-")
    );

    let (status, headers, body) = get(&format!("{}/no/such/path", first.base));
    assert_eq!(status, 404);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], 404);

    let (status, _, metrics) = get(&format!("{}/metrics", first.base));
    assert_eq!(status, 200);
    assert!(metrics.contains("glimpse_http_requests_total"), "{metrics}");

    let password = std::fs::read_to_string(dir.join("admin-password")).unwrap();
    let clouds = std::fs::read_to_string(dir.join("clouds.yaml")).unwrap();
    for cloud in ["glimpse-admin", "glimpse-demo-one", "glimpse-demo-two"] {
        assert!(clouds.contains(cloud), "clouds.yaml names {cloud}");
    }
    first.kill9();

    let second = GlimpseProcess::start(&dir, None, &[]);
    assert_eq!(
        std::fs::read_to_string(dir.join("admin-password")).unwrap(),
        password,
        "a restart keeps the admin password"
    );
    let (status, _, _) = get(&format!("{}/healthcheck", second.base));
    assert_eq!(status, 200);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let dir = temp_dir();
    let log = dir.join("glimpse.log");
    let mut child = GlimpseProcess::start_logging_to(&dir, &log);
    let (status, _, body) = get(&format!("{}/healthcheck", child.base));
    assert_eq!(status, 200, "{body}");
    child.kill9();
    let text = std::fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&text).contains("INFO"),
        "the first start logs at info: {}",
        String::from_utf8_lossy(&text)
    );
    assert!(
        !text.contains(&0x1b),
        "no ANSI escape in a log written to a file: {}",
        String::from_utf8_lossy(&text).escape_debug()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `glimpse create-buckets --config FILE` makes the bucket of each region served from S3, and
/// running it again is fine; the store then takes a blob. Runs where the suite has its S3
/// server (pass 2).
#[tokio::test]
async fn create_buckets_makes_each_regions_bucket_once() {
    let Ok(endpoint) = std::env::var("GLIMPSE_TEST_S3_ENDPOINT") else {
        eprintln!("skipped: no GLIMPSE_TEST_S3_ENDPOINT");
        return;
    };
    let dir = common::TempDir::new();
    let bucket = format!("cb-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let create_buckets = |secret: &str| {
        let config = dir.0.join(format!("glimpse-{secret}.toml"));
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\n[[regions]]\nname = \"region-one\"\nstore = \"s3://{bucket}\"\n\
                 [regions.s3]\nendpoint = \"{endpoint}\"\naccess_key_id = \"test\"\n\
                 secret_access_key = \"{secret}\"\nallow_http = true\n",
                dir.0.display()
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_glimpse"))
            .arg("create-buckets")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    // A wrong secret is refused for good, with the server's answer.
    let refused = create_buckets("wrong");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("refused") && why.contains("HTTP 403"), "{why}");
    for _ in 0..2 {
        let out = create_buckets("test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!("bucket {bucket} is ready")),
            "{said}"
        );
    }
    let s3 = common::backends::s3_at(&endpoint);
    let store = glimpse_store::BlobStore::open(&format!("s3://{bucket}"), &s3).unwrap();
    let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"x",
    ))]);
    let written = store.write(body, |_: &[u8]| Ok(())).await.unwrap();
    assert_eq!(written.size, 1);
}

//! `kill -9` of the real binary during `os-volume_upload_image`, then a restart: the job is
//! taken over when its lease expires; the volume ends back `available`, and the image is
//! `active` with exactly the volume's content, or gone. Never a half-made image, never a
//! volume stuck `uploading`.

mod common;

use std::time::Duration;

use common::cinder::{Cinder, save_image};
use common::process::{GlimpseProcess, identity, temp_dir};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[[regions]]
name = "region-one"
[regions.jobs]
lease_seconds = 2

[[regions]]
name = "region-two"
"#;

#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Right after the 202.
    Accepted,
    /// Once the image is `saving` (the bytes are streaming into the store).
    Saving,
}

async fn image_status(http: &reqwest::Client, image: &str, token: &str, id: &str) -> (u16, Value) {
    let r = http
        .get(format!("{image}/v2/images/{id}"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn scribble(path: &std::path::Path, seed: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for off in [0u64, 1 << 20, 300 << 20, (1 << 30) - 4096] {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&[seed; 4096]).unwrap();
    }
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_upload_then_restart_leaves_volume_back_and_image_whole_or_gone() {
    let dir = temp_dir();
    let config = dir.join("glimpse.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let env = [("GLIMPSE_ADMIN_PASSWORD", "pw")];
    let http = reqwest::Client::new();
    let rounds = [
        ("raw", KillAt::Accepted),
        ("raw", KillAt::Saving),
        ("qcow2", KillAt::Accepted),
        ("vmdk", KillAt::Saving),
    ];
    for (round, (format, kill_at)) in rounds.into_iter().enumerate() {
        let mut server = GlimpseProcess::start(&dir, Some(&config), &env);
        let base = server.base.clone();
        let token = identity::token(
            &http,
            &base,
            "admin",
            "pw",
            identity::project_named("admin"),
        )
        .await;
        let project = admin_project(&http, &base, &token).await;
        let c = Cinder {
            http: http.clone(),
            root: format!("{base}/region-one/volume"),
            project,
            token: token.clone(),
            api: "v3".into(),
        };
        let vol = c.create(1, &format!("crash-{round}")).await;
        let file = dir
            .join("region-one")
            .join("disks")
            .join("volumes")
            .join(format!("{vol}.raw"));
        scribble(&file, round as u8 + 1);
        let name = format!("crash-image-{round}");
        let body = json!({"os-volume_upload_image": {"image_name": name, "disk_format": format}});
        let (s, v) = c.action(&vol, body).await;
        assert_eq!(s, 202, "{v}");
        let image_id = v["os-volume_upload_image"]["image_id"]
            .as_str()
            .unwrap()
            .to_string();
        let image = format!("{base}/region-one/image");
        if let KillAt::Saving = kill_at {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let (_, img) = image_status(&http, &image, &token, &image_id).await;
                // A raw upload streams a whole GiB: the kill must land while it saves.
                if img["status"] == "saving" || (format != "raw" && img["status"] == "active") {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never saving: {img}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        server.kill9();

        // Restart on the same data; the job's lease expires and it is taken over.
        let server = GlimpseProcess::start(&dir, Some(&config), &env);
        let base = server.base.clone();
        let token = identity::token(
            &http,
            &base,
            "admin",
            "pw",
            identity::project_named("admin"),
        )
        .await;
        let c = Cinder {
            root: format!("{base}/region-one/volume"),
            token: token.clone(),
            ..c
        };
        let image = format!("{base}/region-one/image");
        let after = c.wait(&vol, "available").await;
        assert_eq!(after["status"], "available", "round {round}");
        // The image: active and equal to the volume, or gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let img = loop {
            let (s, img) = image_status(&http, &image, &token, &image_id).await;
            if s == 404 || img["status"] == "active" {
                break (s, img);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: image stuck {img}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if img.0 == 200 {
            let out = dir.join(format!("{image_id}.{format}"));
            save_image(&http, &image, &token, &image_id, &out).await;
            let same = std::process::Command::new("qemu-img")
                .args(["compare", "-f", "raw", "-F", format])
                .arg(&file)
                .arg(&out)
                .output()
                .unwrap();
            assert!(same.status.success(), "round {round}: {same:?}");
            std::fs::remove_file(&out).unwrap();
        }
        // Exactly zero or one image of that name, never a half-made one.
        let list: Value = http
            .get(format!("{image}/v2/images?name={name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = list["images"].as_array().unwrap();
        assert!(found.len() <= 1, "{list}");
        assert!(found.iter().all(|i| i["status"] == "active"), "{list}");
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn admin_project(http: &reqwest::Client, base: &str, token: &str) -> String {
    let v: Value = http
        .get(format!("{base}/identity/v3/projects?name=admin"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["projects"][0]["id"].as_str().unwrap().to_string()
}

/// `kill -9` right after a volume-from-image request: after the restart the create job is
/// taken over and the volume ends `available` with the image's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_create_from_image_then_restart_ends_available() {
    let dir = temp_dir();
    let config = dir.join("glimpse.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let env = [("GLIMPSE_ADMIN_PASSWORD", "pw")];
    let http = reqwest::Client::new();
    let mut server = GlimpseProcess::start(&dir, Some(&config), &env);
    let base = server.base.clone();
    let token = identity::token(
        &http,
        &base,
        "admin",
        "pw",
        identity::project_named("admin"),
    )
    .await;
    let project = admin_project(&http, &base, &token).await;
    let image = format!("{base}/region-one/image");
    let data: Vec<u8> = (0..32u32 << 20).map(|i| (i % 253) as u8).collect();
    let img = common::glance::create_bare(&http, &image, &token, "src", "raw").await;
    assert_eq!(
        common::glance::upload(&http, &image, &token, &img, data.clone())
            .await
            .0,
        204
    );
    let c = Cinder {
        http: http.clone(),
        root: format!("{base}/region-one/volume"),
        project,
        token: token.clone(),
        api: "v3".into(),
    };
    let (s, v) = c
        .call(
            reqwest::Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "imageRef": img}})),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_string();
    server.kill9();

    let server = GlimpseProcess::start(&dir, Some(&config), &env);
    let base = server.base.clone();
    let token = identity::token(
        &http,
        &base,
        "admin",
        "pw",
        identity::project_named("admin"),
    )
    .await;
    let c = Cinder {
        root: format!("{base}/region-one/volume"),
        token,
        ..c
    };
    let shown = c.wait(&vol, "available").await;
    assert_eq!(shown["bootable"], "true");
    let file = dir
        .join("region-one")
        .join("disks")
        .join("volumes")
        .join(format!("{vol}.raw"));
    // Read in 1 MiB pieces: the image's bytes, then zeros to the end of the GiB.
    use std::io::Read;
    let mut f = std::fs::File::open(&file).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 1 << 30);
    let (mut buf, zeros) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0usize;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let want = match data.get(at..at + n) {
            Some(d) => d,
            None if at >= data.len() => &zeros[..n],
            None => panic!("a read across the end of the image data"),
        };
        assert!(buf[..n] == *want, "bytes {at}..{} of the volume", at + n);
        at += n;
    }
    assert_eq!(at, 1 << 30);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

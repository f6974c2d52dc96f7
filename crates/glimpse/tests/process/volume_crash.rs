//! `kill -9` of the real binary during `os-volume_upload_image`, then a restart: the job is
//! taken over when its lease expires; the volume ends back `available`, and the image is
//! `active` with exactly the volume's content, or gone. Never a half-made image, never a
//! volume stuck `uploading`.

use crate::common;

use std::time::Duration;

use common::cinder::{Cinder, save_image};
use common::glance::images_named;
use common::process::{GlimpseProcess, Restartable, SHORT_LEASE, identity, raw_image};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Right after the 202.
    Accepted,
    /// Once the image is `saving` (the bytes are streaming into the store).
    Saving,
}

async fn image_status(http: &reqwest::Client, image: &str, token: &str, id: &str) -> (u16, Value) {
    let r = common::http::get(http, format!("{image}/v2/images/{id}"), token).await;
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
    let cloud = Restartable::new(SHORT_LEASE);
    let dir = &cloud.dir;
    let http = reqwest::Client::new();
    let rounds = [
        ("raw", KillAt::Accepted),
        ("raw", KillAt::Saving),
        ("qcow2", KillAt::Accepted),
        ("vmdk", KillAt::Saving),
    ];
    for (round, (format, kill_at)) in rounds.into_iter().enumerate() {
        let mut server = cloud.start();
        let c = admin_cinder(&server, &http).await;
        let token = c.token.clone();
        let vol = c.create(1, &format!("crash-{round}")).await;
        let file = common::cinder::volume_path(dir, "region-one", &vol);
        scribble(&file, round as u8 + 1);
        let name = format!("crash-image-{round}");
        let body = json!({"os-volume_upload_image": {"image_name": name, "disk_format": format}});
        let (s, v) = c.action(&vol, body).await;
        assert_eq!(s, 202, "{v}");
        let image_id = common::cinder::upload_image_id(&v);
        let image = server.image_one();
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
        let server = cloud.start();
        let c = admin_cinder(&server, &http).await;
        let token = c.token.clone();
        let image = server.image_one();
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
        let list = images_named(&http, &image, &token, &name).await;
        let found = list["images"].as_array().unwrap();
        assert!(found.len() <= 1, "{list}");
        assert!(found.iter().all(|i| i["status"] == "active"), "{list}");
        drop(server);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Region-one's volume API for the admin project of a (re)started process.
async fn admin_cinder(server: &GlimpseProcess, http: &reqwest::Client) -> Cinder {
    let token = server.admin_token(http).await;
    Cinder {
        http: http.clone(),
        root: format!("{}/region-one/volume", server.base),
        project: identity::project_of(http, &server.base, &token).await,
        token,
        api: "v3".into(),
    }
}

/// `kill -9` right after a volume-from-image request: after the restart the create job is
/// taken over and the volume ends `available` with the image's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_create_from_image_then_restart_ends_available() {
    let cloud = Restartable::new(SHORT_LEASE);
    let dir = &cloud.dir;
    let http = reqwest::Client::new();
    let mut server = cloud.start();
    let c = admin_cinder(&server, &http).await;
    let token = c.token.clone();
    let image = server.image_one();
    let data: Vec<u8> = (0..32u32 << 20).map(|i| (i % 253) as u8).collect();
    let img = raw_image(&http, &image, &token, "src", &data).await;
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

    let server = cloud.start();
    let c = admin_cinder(&server, &http).await;
    let shown = c.wait(&vol, "available").await;
    assert_eq!(shown["bootable"], "true");
    let file = common::cinder::volume_path(dir, "region-one", &vol);
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
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads a volume's status and recorded upload image straight from the region database.
async fn volume_row(db: &glimpse_core::db::Db, id: &str) -> (String, Option<String>) {
    use sqlx::Row;
    let row = sqlx::query("SELECT status, upload_image_id FROM volumes WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (row.get("status"), row.get("upload_image_id"))
}

/// The crash the review found: the process dies after an upload's image record is made and
/// before its job is enqueued. Nothing would ever fill that `queued` image; after a restart it
/// must be gone and the volume `available` again, and nothing else touched. The crash state
/// is written as the request leaves it at that point (the volume `uploading` and naming the
/// image, in the one UPDATE that takes it; the image record made through Glance, `protected`
/// as a 3.1 upload may ask; no job), plus the earlier crash point (the volume names an image
/// whose record was never made). Runs on SQLite and, in CI, PostgreSQL.
#[tokio::test]
async fn crash_between_image_record_and_job_enqueue_leaves_no_stray_image() {
    use common::TestCloud;
    use common::cinder::wait_image;
    const REGION: &str = "region-one";
    let dir = common::TempDir::new();
    let (project, token, gap, early, stray, kept) = {
        let tc = TestCloud::start_in(dir.0.clone(), |_| {}).await;
        let (pid, token) = tc.user_in_new_project("member", REGION).await;
        let c = Cinder::new(&tc, REGION, &pid, &token);
        let gap = c.create(1, "gap").await;
        let early = c.create(1, "early").await;
        let image = tc.image(REGION);
        // The image the request made for `gap`, exactly as the upload makes it.
        let stray = common::glance::create_image(
            &tc.http,
            &image,
            &token,
            json!({"name": "gap-image", "disk_format": "qcow2", "container_format": "bare",
                   "visibility": "private", "protected": true}),
        )
        .await;
        // The user's own queued image, which no volume names: never touched.
        let kept = common::glance::create_bare(&tc.http, &image, &token, "mine", "raw").await;
        let db = &tc.cloud.regions[0].db;
        for (vol, img) in [
            (&gap, stray.clone()),
            (&early, uuid::Uuid::new_v4().to_string()),
        ] {
            sqlx::query(
                "UPDATE volumes SET previous_status = status, status = 'uploading', \
                 upload_image_id = $1 WHERE id = $2",
            )
            .bind(img)
            .bind(vol)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        (pid, token, gap, early, stray, kept)
    };

    // Restart on the same data: the region's start-up repair runs before it serves.
    let tc = TestCloud::start_in(dir.0.clone(), |_| {}).await;
    let c = Cinder::new(&tc, REGION, &project, &token);
    let image = tc.image(REGION);
    let db = &tc.cloud.regions[0].db;
    for vol in [&gap, &early] {
        assert_eq!(c.show(vol).await.1["volume"]["status"], "available");
        assert_eq!(volume_row(db, vol).await, ("available".into(), None));
    }
    let (s, img) = image_status(&tc.http, &image, &token, &stray).await;
    assert_eq!(s, 404, "the stray image survived the restart: {img}");
    let list = images_named(&tc.http, &image, &token, "gap-image").await;
    assert_eq!(list["images"], json!([]), "{list}");
    let (s, mine) = image_status(&tc.http, &image, &token, &kept).await;
    assert_eq!(
        (s, mine["status"].as_str()),
        (200, Some("queued")),
        "{mine}"
    );

    // The volume uploads normally afterwards; while uploading it names the answer's image, and
    // it forgets it when it is back.
    let body = json!({"os-volume_upload_image": {"image_name": "after", "disk_format": "qcow2"}});
    let (s, v) = c.action(&gap, body).await;
    assert_eq!(s, 202, "{v}");
    let id = common::cinder::upload_image_id(&v);
    match volume_row(db, &gap).await {
        (status, recorded) if status == "uploading" => assert_eq!(recorded, Some(id.clone())),
        (status, recorded) => assert_eq!((status.as_str(), recorded), ("available", None)),
    }
    wait_image(&tc.http, &image, &token, &id, "active").await;
    c.wait(&gap, "available").await;
    assert_eq!(volume_row(db, &gap).await, ("available".into(), None));
}

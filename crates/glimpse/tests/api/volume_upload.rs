//! `os-volume_upload_image` (seed 002): every row of the seed's response-code table, the exact
//! 202 body, and the image it makes (converted, inspected, equal to the volume).

use crate::common;

use common::TestCloud;
use common::cinder::{Cinder, cloud_and_volume, member, save_image, volume_file, wait_image};
use common::nova::{Nova, qemu_img, raw_image, reader_of};
use serde_json::{Value, json};

const REGION: &str = "region-one";

fn upload(name: &str, format: &str) -> Value {
    json!({"os-volume_upload_image": {"container_format": "bare", "force": false,
        "image_name": name, "disk_format": format}})
}

fn assert_fault(status: u16, body: &Value, code: u16, name: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body[name]["code"], code, "{body}");
    assert!(body[name]["message"].is_string(), "{body}");
}

/// Writes recognisable bytes at a few offsets of a volume's file.
fn scribble(path: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for (i, off) in [0u64, 4096, 70 << 20, (1 << 30) - 512].iter().enumerate() {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(format!("glimpse volume block {i}").as_bytes())
            .unwrap();
    }
    f.sync_all().unwrap();
}

/// `yyyy-mm-ddThh:mm:ss.ssssss`.
fn is_cinder_time(s: &str) -> bool {
    s.len() == 26 && common::identity::is_keystone_time(&format!("{s}Z"))
}

#[tokio::test]
async fn upload_makes_an_equal_image_in_each_format() {
    let (tc, c, token, id) = cloud_and_volume("v1").await;
    let file = volume_file(&tc, REGION, &id);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 30);
    scribble(&file);
    let image_url = tc.image(REGION);
    for format in ["qcow2", "vmdk", "vdi", "raw", "vhd", "vhdx"] {
        let (s, body) = c
            .action(&id, upload(&format!("img-{format}"), format))
            .await;
        assert_eq!(s, 202, "{body}");
        let b = &body["os-volume_upload_image"];
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "container_format",
                "disk_format",
                "display_description",
                "id",
                "image_id",
                "image_name",
                "size",
                "status",
                "updated_at",
                "volume_type"
            ]
        );
        assert_eq!(b["status"], "uploading");
        assert_eq!(b["id"], id.as_str());
        assert_eq!(b["size"], 1);
        assert_eq!(b["disk_format"], format);
        assert_eq!(b["container_format"], "bare");
        assert_eq!(b["display_description"], Value::Null);
        assert_eq!(b["volume_type"], "__DEFAULT__");
        let at = b["updated_at"].as_str().unwrap();
        assert!(is_cinder_time(at), "{at}");
        let image_id = b["image_id"].as_str().unwrap().to_string();
        let img = wait_image(&tc.http, &image_url, &token, &image_id, "active").await;
        assert_eq!(img["name"], format!("img-{format}"));
        assert_eq!(img["disk_format"], format);
        assert_eq!(img["visibility"], "shared", "Glance's default below 3.1");
        // No volume_* or image properties for a volume not made from an image.
        for k in img.as_object().unwrap().keys() {
            assert!(!k.starts_with("volume_") && k != "image_id", "{k}");
        }
        c.wait(&id, "available").await;

        let out = tc.data_dir.join(format!("{image_id}.{format}"));
        save_image(&tc.http, &image_url, &token, &image_id, &out).await;
        let qname = if format == "vhd" { "vpc" } else { format };
        let (code, info) = qemu_img(&["info", "--output=json", "-f", qname, out.to_str().unwrap()]);
        assert_eq!(code, 0, "{info}");
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["format"], qname);
        let (same, why) = common::cinder::compare_to_raw(&file, qname, &out);
        assert_eq!(same, 0, "{format}: {why}");
    }
}

/// An active raw image of 1 MiB and an ACTIVE server booted from it; returns the server id.
async fn server(tc: &TestCloud, token: &str) -> String {
    let img = raw_image(tc, REGION, token, "base", vec![7u8; 1 << 20]).await;
    Nova::new(tc, REGION, token).active_server("vm", &img).await
}

/// Images of the caller's project with this name (none must be left by a refused upload).
async fn images_named(tc: &TestCloud, token: &str, name: &str) -> usize {
    let v = common::glance::images_named(&tc.http, &tc.image(REGION), token, name).await;
    v["images"].as_array().unwrap().len()
}

#[tokio::test]
async fn refused_bodies_are_400_and_make_nothing() {
    let (tc, c, token, id) = cloud_and_volume("v").await;
    let long = "n".repeat(256);
    let bodies = [
        // No os-volume_upload_image element.
        json!({"os-volume_upload": {"image_name": "x"}}),
        json!({}),
        json!({"os-volume_upload_image": {"image_name": "x"}, "other": {}}),
        // image_name missing, null, 0, empty, 256 characters.
        json!({"os-volume_upload_image": {"force": false}}),
        json!({"os-volume_upload_image": {"image_name": null}}),
        json!({"os-volume_upload_image": {"image_name": 0}}),
        json!({"os-volume_upload_image": {"image_name": ""}}),
        json!({"os-volume_upload_image": {"image_name": long}}),
        // force not a boolean.
        json!({"os-volume_upload_image": {"image_name": "x", "force": "maybe"}}),
        json!({"os-volume_upload_image": {"image_name": "x", "force": 1}}),
        json!({"os-volume_upload_image": {"image_name": "x", "force": null}}),
        json!({"os-volume_upload_image": {"image_name": "x", "force": "TRUE "}}),
        // Formats outside the seed's lists.
        json!({"os-volume_upload_image": {"image_name": "x", "disk_format": "ami"}}),
        json!({"os-volume_upload_image": {"image_name": "x", "container_format": "docker"}}),
        // 3.1's fields at 3.0, and unknown fields.
        json!({"os-volume_upload_image": {"image_name": "x", "visibility": "private"}}),
        json!({"os-volume_upload_image": {"image_name": "x", "colour": "red"}}),
    ];
    for b in &bodies {
        let (s, v) = c.action(&id, b.clone()).await;
        assert_fault(s, &v, 400, "badRequest");
        let (s, v) = c.action(&uuid(), b.clone()).await;
        assert_fault(s, &v, 400, "badRequest");
    }
    // No body at all.
    let r = tc
        .http
        .post(c.url(&format!("/volumes/{id}/action")))
        .header("x-auth-token", &token)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_fault(400, &v, 400, "badRequest");
    assert_eq!(images_named(&tc, &token, "x").await, 0);
    assert_eq!(c.wait(&id, "available").await["status"], "available");
    // 255 characters are fine.
    let ok = "n".repeat(255);
    c.act(
        &id,
        json!({"os-volume_upload_image": {"image_name": ok, "disk_format": "qcow2"}}),
    )
    .await;
    c.wait(&id, "available").await;
}

/// `POST url` of the JSON `body` with `token`, past [`Cinder::call`]: the raw answer.
async fn post_raw(tc: &TestCloud, url: String, token: &str, body: &Value) -> reqwest::Response {
    let rb = tc.http.post(url).header("x-auth-token", token).json(body);
    rb.send().await.unwrap()
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn force_takes_cinders_boolean_spellings() {
    let (_tc, c, _, id) = cloud_and_volume("v").await;
    for (i, f) in [
        json!(true),
        json!("yes"),
        json!("0"),
        json!("Off"),
        json!("t"),
        json!(false),
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"os-volume_upload_image": {"image_name": format!("f{i}"), "force": f, "disk_format": "qcow2"}});
        let (s, v) = c.action(&id, body).await;
        assert_eq!(s, 202, "{f}: {v}");
        c.wait(&id, "available").await;
    }
}

#[tokio::test]
async fn status_gate_in_use_needs_force_and_busy_volumes_are_refused() {
    let (tc, c, token, id) = cloud_and_volume("v").await;
    // attaching (reserved): neither available nor in-use.
    c.act(&id, json!({"os-reserve": null})).await;
    let (s, v) = c.action(&id, upload("busy", "raw")).await;
    assert_fault(s, &v, 400, "badRequest");
    assert_eq!(
        v["badRequest"]["message"],
        format!("Invalid volume: Volume {id} status must be available")
    );
    c.act(&id, json!({"os-unreserve": {}})).await;
    // in-use: 400 without force, 202 with it, and back to in-use afterwards.
    let vm = server(&tc, &token).await;
    c.act(
        &id,
        json!({"os-attach": {"instance_uuid": vm, "mountpoint": "/dev/vdb"}}),
    )
    .await;
    let vol = c.wait(&id, "in-use").await;
    assert_eq!(vol["attachments"][0]["server_id"], vm.as_str());
    let (s, v) = c.action(&id, upload("inuse", "qcow2")).await;
    assert_fault(s, &v, 400, "badRequest");
    let body = json!({"os-volume_upload_image": {"image_name": "inuse", "force": true, "disk_format": "qcow2"}});
    let (s, v) = c.action(&id, body.clone()).await;
    assert_eq!(s, 202, "{v}");
    let image = common::cinder::upload_image_id(&v);
    // While it uploads, a second upload is refused (the volume is uploading).
    let (s2, v2) = c.action(&id, body).await;
    if s2 != 202 {
        assert_fault(s2, &v2, 400, "badRequest");
    } else {
        // The first finished already; the second is a legitimate upload.
        let second = common::cinder::upload_image_id(&v2);
        wait_image(&tc.http, &tc.image(REGION), &token, &second, "active").await;
    }
    wait_image(&tc.http, &tc.image(REGION), &token, &image, "active").await;
    c.wait(&id, "in-use").await;
    // Detach: available again.
    c.act(&id, json!({"os-begin_detaching": {}})).await;
    c.wait(&id, "detaching").await;
    c.act(&id, json!({"os-roll_detaching": {}})).await;
    c.wait(&id, "in-use").await;
    c.act(&id, json!({"os-detach": {}})).await;
    c.wait(&id, "available").await;
}

#[tokio::test]
async fn auth_project_and_visibility_rows() {
    let (tc, c, token, id) = cloud_and_volume("v").await;
    // 400: a tenant id in the URL that is not the token's (the seed's own example).
    let mut wrong = c.clone();
    wrong.project = "cb8aa2a2c7244af5aab1fa7881ba7f4".into();
    // Byte for byte the seed's error example (Content-Length 65, charset=UTF-8).
    let r = post_raw(
        &tc,
        wrong.url(&format!("/volumes/{id}/action")),
        &token,
        &upload("x", "raw"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"badRequest": {"message": "Malformed request url", "code": 400}}"#
    );
    // 404: an empty tenant id.
    let r = post_raw(
        &tc,
        format!("{}/v2//volumes/{id}/action", c.root),
        &token,
        &upload("x", "raw"),
    )
    .await;
    assert_eq!(r.status(), 404);
    // 401: no token, a bad token.
    for t in ["", "not-a-token"] {
        let mut anon = c.clone();
        anon.token = t.into();
        let (s, v) = anon.action(&id, upload("x", "raw")).await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["error"]["code"], 401);
    }
    // 404: no such volume; another project's volume.
    let (s, v) = c.action(&uuid(), upload("x", "raw")).await;
    assert_fault(s, &v, 404, "itemNotFound");
    let (other, _) = member(&tc, REGION).await;
    let theirs = other.create(1, "theirs").await;
    let (s, v) = c.action(&theirs, upload("x", "raw")).await;
    assert_fault(s, &v, 404, "itemNotFound");
    assert_eq!(other.show(&theirs).await.1["volume"]["status"], "available");
    // 403: a reader of the project sees the volume but may not upload it.
    let reader_token = reader_of(&tc, &c.project).await;
    let mut reader = c.clone();
    reader.token = reader_token;
    assert_eq!(reader.show(&id).await.0, 200);
    let (s, v) = reader.action(&id, upload("x", "raw")).await;
    assert_fault(s, &v, 403, "forbidden");
    assert_eq!(
        v["forbidden"]["message"],
        "Policy doesn't allow volume_extension:volume_actions:upload_image to be performed."
    );
    // 403 from 3.1: only an admin makes a public image; a member may make a private one.
    let public = json!({"os-volume_upload_image": {"image_name": "pub", "visibility": "public"}});
    let (s, v) = c.action_at(&id, public, "3.1").await;
    assert_fault(s, &v, 403, "forbidden");
    let private = json!({"os-volume_upload_image": {"image_name": "priv", "visibility": "private", "protected": "yes", "disk_format": "qcow2"}});
    let (s, v) = c.action_at(&id, private, "3.1").await;
    assert_eq!(s, 202, "{v}");
    let b = &v["os-volume_upload_image"];
    assert_eq!(b["visibility"], "private");
    assert_eq!(b["protected"], true);
    let img = wait_image(
        &tc.http,
        &tc.image(REGION),
        &token,
        b["image_id"].as_str().unwrap(),
        "active",
    )
    .await;
    assert_eq!(img["visibility"], "private");
    assert_eq!(img["protected"], true);
    assert_eq!(images_named(&tc, &token, "x").await, 0);
    assert_eq!(images_named(&tc, &token, "pub").await, 0);
    // A microversion above the maximum is 406.
    let (s, v) = c.action_at(&id, upload("x", "raw"), "3.99").await;
    assert_fault(s, &v, 406, "computeFault");
}

#[tokio::test]
async fn iso_is_accepted_and_makes_no_image() {
    let (tc, c, token, id) = cloud_and_volume("v").await;
    let (s, v) = c.action(&id, upload("iso-image", "iso")).await;
    assert_eq!(s, 202, "{v}");
    let b = &v["os-volume_upload_image"];
    assert_eq!(b["image_id"], Value::Null);
    assert_eq!(b["status"], "available");
    assert_eq!(b["disk_format"], "iso");
    assert_eq!(images_named(&tc, &token, "iso-image").await, 0);
    assert_eq!(c.show(&id).await.1["volume"]["status"], "available");
    // Python's json.dumps escapes non-ASCII (ensure_ascii), as Cinder's answers do.
    let r = post_raw(
        &tc,
        c.url(&format!("/volumes/{id}/action")),
        &token,
        &json!({"os-volume_upload_image": {"image_name": "disque-é", "disk_format": "iso"}}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#""image_name": "disque-\u00e9""#), "{text}");
}

/// The seed's 500 ("failed to communicate with glance-api"). In Glimpse the image service is
/// the same region's Glance, so the way it fails is its database refusing the image record:
/// a trigger makes every INSERT into `images` fail, as a broken or read-only database would.
#[tokio::test]
async fn image_service_failure_is_500_and_puts_the_volume_back() {
    use sqlx::Executor;
    let (tc, c, token, id) = cloud_and_volume("v").await;
    let db = &tc.cloud.regions[0].db;
    let postgres = db.backend == glimpse_core::db::Backend::Postgres;
    if postgres {
        db.pool
            .execute(
                "CREATE FUNCTION glance_down() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'image service unavailable'; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
        db.pool
            .execute(
                "CREATE TRIGGER glance_down BEFORE INSERT ON images \
                 FOR EACH ROW EXECUTE FUNCTION glance_down()",
            )
            .await
            .unwrap();
    } else {
        db.pool
            .execute(
                "CREATE TRIGGER glance_down BEFORE INSERT ON images \
                 BEGIN SELECT RAISE(FAIL, 'image service unavailable'); END",
            )
            .await
            .unwrap();
    }
    let (s, v) = c.action(&id, upload("down", "qcow2")).await;
    assert_fault(s, &v, 500, "computeFault");
    // The 5xx count that bad-input tests assert empty does see a 500.
    let errors = tc.server_errors().await;
    assert!(
        errors.iter().any(|e| e.contains("status=\"500\"")),
        "{errors:?}"
    );
    assert_eq!(c.show(&id).await.1["volume"]["status"], "available");
    assert_eq!(images_named(&tc, &token, "down").await, 0);
    let drop = if postgres {
        "DROP TRIGGER glance_down ON images"
    } else {
        "DROP TRIGGER glance_down"
    };
    db.pool.execute(drop).await.unwrap();
    let (s, v) = c.action(&id, upload("up", "qcow2")).await;
    assert_eq!(s, 202, "{v}");
    let image = common::cinder::upload_image_id(&v);
    wait_image(&tc.http, &tc.image(REGION), &token, &image, "active").await;
    c.wait(&id, "available").await;
}

/// Writes `bytes` at the start of a volume's file (what a guest can do to its own disk).
fn write_volume(tc: &TestCloud, id: &str, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(volume_file(tc, REGION, id))
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// A failed upload job (here: the guest wrote a qcow2 image onto its raw volume, so the bytes
/// say qcow2 while the upload reads them as raw, which the inspector refuses) puts the volume
/// back and leaves no image, whatever the target format; the same for each malformed qcow2
/// of the project's own corpus (issue 13, item 5).
#[tokio::test]
async fn failed_upload_puts_the_volume_back_and_leaves_no_image() {
    let (tc, c, token, id) = cloud_and_volume("v").await;
    let dir = common::TempDir::new();
    let q = dir.0.join("inner.qcow2");
    let (code, why) = qemu_img(&["create", "-q", "-f", "qcow2", q.to_str().unwrap(), "16M"]);
    assert_eq!(code, 0, "{why}");
    let mut attempts = vec![(
        std::fs::read(&q).unwrap(),
        "qcow2",
        "refused-qcow2".to_string(),
    )];
    attempts.push((std::fs::read(&q).unwrap(), "raw", "refused-raw".to_string()));
    for case in common::corpus::refused_qcow2(&dir.0) {
        attempts.push((std::fs::read(&case.file).unwrap(), "qcow2", case.name()));
    }
    for (bytes, format, name) in attempts {
        write_volume(&tc, &id, &bytes);
        let (s, v) = c.action(&id, upload(&name, format)).await;
        assert_eq!(s, 202, "{v}");
        let image_id = common::cinder::upload_image_id(&v);
        c.wait(&id, "available").await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let r = common::http::get(
                &tc.http,
                format!("{}/v2/images/{image_id}", tc.image(REGION)),
                &token,
            )
            .await;
            if r.status() == 404 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "image left behind");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(images_named(&tc, &token, &name).await, 0);
    }
}

/// Seed 002's own execution example, on its `/v2/{tenant_id}` path: 202, Python's JSON.
#[tokio::test]
async fn seed_example_on_the_v2_path() {
    let tc = TestCloud::start().await;
    let (mut c, token) = member(&tc, REGION).await;
    c.api = "v2".into();
    let id = c.create(1, "seed").await;
    let r = tc
        .http
        .post(c.url(&format!("/volumes/{id}/action")))
        .header("x-auth-token", &token)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(r#"{"os-volume_upload_image": {"container_format": "bare", "force": false, "image_name": "testupdateimage", "disk_format": "raw"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().get("openstack-api-version").is_none());
    let text = r.text().await.unwrap();
    assert!(text.starts_with(r#"{"os-volume_upload_image": {"container_format": "bare", "disk_format": "raw", "display_description": null, "id": ""#), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let image = common::cinder::upload_image_id(&v);
    let img = wait_image(&tc.http, &tc.image(REGION), &token, &image, "active").await;
    assert_eq!(img["name"], "testupdateimage");
    assert_eq!(img["size"], 1u64 << 30);
    c.wait(&id, "available").await;
}

/// From 3.1 an admin may make a public image (policy `upload_public`).
#[tokio::test]
async fn an_admin_uploads_a_public_image() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let url = format!("{}/projects?name=admin", tc.identity());
    let projects = common::http::get_json(&tc.http, url, &admin).await;
    let pid = projects["projects"][0]["id"].as_str().unwrap();
    let c = Cinder::new(&tc, REGION, pid, &admin);
    let id = c.create(1, "public-source").await;
    let body = json!({"os-volume_upload_image": {"image_name": "for-everyone",
        "disk_format": "qcow2", "visibility": "public"}});
    let (s, v) = c.action_at(&id, body, "3.1").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["os-volume_upload_image"]["visibility"], "public");
    let image = common::cinder::upload_image_id(&v);
    let img = wait_image(&tc.http, &tc.image(REGION), &admin, &image, "active").await;
    assert_eq!(img["visibility"], "public");
    // Another project sees it.
    let (_, other) = member(&tc, REGION).await;
    let seen = common::glance::show(&tc.http, &tc.image(REGION), &other, &image).await;
    assert_eq!(seen["name"], "for-everyone");
}

/// Racing uploads of one volume: the status change is one conditional UPDATE, so exactly one
/// request wins (202) and the others are 400; exactly one image is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_make_one_image() {
    let (tc, c, token, id) = cloud_and_volume("race").await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (c, id) = (c.clone(), id.clone());
            tokio::spawn(async move { c.action(&id, upload("raced", "qcow2")).await })
        })
        .collect();
    let mut won = Vec::new();
    for call in calls {
        let (s, v) = call.await.unwrap();
        match s {
            202 => won.push(common::cinder::upload_image_id(&v)),
            _ => assert_fault(s, &v, 400, "badRequest"),
        }
    }
    // A later request may win again once the first upload finished; never two at once.
    assert!(!won.is_empty());
    for image in &won {
        wait_image(&tc.http, &tc.image(REGION), &token, image, "active").await;
    }
    c.wait(&id, "available").await;
    assert_eq!(images_named(&tc, &token, "raced").await, won.len());
}

//! The volume API around the upload: version documents and microversions, create (blank and
//! from an image), list/show/update/delete with Cinder's rules and errors, the attach state
//! actions, and Nova's `os-volume_attachments` on the compute API.

use crate::common;

use common::TestCloud;
use common::cinder::{Cinder, cloud_and_volume, member, volume_file, wait_image};
use common::nova::{Nova, raw_image};
use reqwest::Method;
use serde_json::{Value, json};

const REGION: &str = "region-one";

fn fault(status: u16, body: &Value, code: u16, name: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body[name]["code"], code, "{body}");
}

#[tokio::test]
async fn versions_and_microversions() {
    let tc = TestCloud::start().await;
    let root = format!("{}/{REGION}/volume", tc.base);
    let r = common::http::get_public(&tc.http, format!("{root}/")).await;
    assert_eq!(r.status(), 300);
    let v: Value = r.json().await.unwrap();
    let v3 = common::http::find(&v["versions"], "id", "v3.0");
    assert_eq!(v3["status"], "CURRENT");
    assert_eq!(v3["version"], "3.1");
    assert_eq!(v3["min_version"], "3.0");
    let r = common::http::get_public(&tc.http, format!("{root}/v3/")).await;
    assert_eq!(r.status(), 200);

    let (c, _) = member(&tc, REGION).await;
    for (asked, answered) in [
        (None, "volume 3.0"),
        (Some("volume 3.1"), "volume 3.1"),
        (Some("volume latest"), "volume 3.1"),
    ] {
        let mut req = tc
            .http
            .get(c.url("/volumes"))
            .header("x-auth-token", &c.token);
        if let Some(a) = asked {
            req = req.header("openstack-api-version", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["openstack-api-version"], answered);
    }
    let (s, v) = c
        .call(
            Method::GET,
            "/volumes",
            None,
            &[("openstack-api-version", "volume 3.x")],
        )
        .await;
    fault(s, &v, 400, "badRequest");
    // The seed's v2 path serves the same volumes, without microversions.
    let mut v2 = c.clone();
    v2.api = "v2".into();
    let id = c.create(1, "both").await;
    assert_eq!(v2.show(&id).await.0, 200);
}

#[tokio::test]
async fn create_show_list_update_delete() {
    let tc = TestCloud::start().await;
    let (c, _) = member(&tc, REGION).await;
    for bad in [
        json!({"volume": {"size": 0}}),
        json!({"volume": {"size": "one"}}),
        json!({"volume": {}}),
        json!({"size": 1}),
    ] {
        let (s, v) = c.post("/volumes", bad.clone()).await;
        fault(s, &v, 400, "badRequest");
    }
    // No such type, snapshot or source volume: 404, as Cinder.
    let missing = uuid::Uuid::new_v4().to_string();
    for body in [
        json!({"volume": {"size": 1, "volume_type": "gold"}}),
        json!({"volume": {"size": 1, "snapshot_id": missing}}),
        json!({"volume": {"size": 1, "source_volid": missing}}),
    ] {
        let (s, v) = c.post("/volumes", body).await;
        fault(s, &v, 404, "itemNotFound");
    }
    let (s, v) = c
        .post("/volumes", json!({"volume": {"size": "2", "name": "v", "description": "d", "metadata": {"k": "v"}}}))
        .await;
    assert_eq!(s, 202, "{v}");
    let created = &v["volume"];
    assert_eq!(created["status"], "creating");
    assert_eq!(created["bootable"], "false");
    assert_eq!(created["volume_type"], "__DEFAULT__");
    assert!(created.get("os-vol-tenant-attr:tenant_id").is_none());
    let id = created["id"].as_str().unwrap().to_string();
    let shown = c.wait(&id, "available").await;
    assert_eq!(shown["size"], 2);
    assert_eq!(shown["metadata"]["k"], "v");
    assert_eq!(shown["os-vol-tenant-attr:tenant_id"], c.project.as_str());
    assert_eq!(
        std::fs::metadata(volume_file(&tc, REGION, &id))
            .unwrap()
            .len(),
        2 << 30
    );

    let (s, v) = c.get("/volumes").await;
    assert_eq!(s, 200);
    assert_eq!(v["volumes"][0]["id"], id.as_str());
    assert_eq!(v["volumes"][0].as_object().unwrap().len(), 3);
    let (_, v) = c.get("/volumes/detail?name=v").await;
    assert_eq!(v["volumes"][0]["description"], "d");
    let (_, v) = c.get("/volumes/detail?name=none").await;
    assert_eq!(v["volumes"], json!([]));

    let (s, v) = c
        .put(
            &format!("/volumes/{id}"),
            json!({"volume": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["volume"]["name"], "renamed");

    // Another project sees nothing; a reader may read but not write.
    let (other, _) = member(&tc, REGION).await;
    fault(
        other.show(&id).await.0,
        &other.show(&id).await.1,
        404,
        "itemNotFound",
    );
    let (s, v) = other.delete(&format!("/volumes/{id}")).await;
    fault(s, &v, 404, "itemNotFound");

    let (s, _) = c.delete(&format!("/volumes/{id}")).await;
    assert_eq!(s, 202);
    let (s, v) = c.show(&id).await;
    fault(s, &v, 404, "itemNotFound");
    assert!(!volume_file(&tc, REGION, &id).exists());
}

#[tokio::test]
async fn volume_from_image_keeps_its_metadata_and_uploads_back() {
    let tc = TestCloud::start().await;
    let (c, token) = member(&tc, REGION).await;
    let image_url = tc.image(REGION);
    // A qcow2 image with a custom property.
    let dir = common::TempDir::new();
    let raw = dir.0.join("src.raw");
    let mut bytes = vec![0u8; 8 << 20];
    bytes[..11].copy_from_slice(b"hello world");
    std::fs::write(&raw, &bytes).unwrap();
    let qcow = dir.0.join("src.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow)
        .status()
        .unwrap();
    assert!(ok.success());
    let img = common::glance::create_image(
        &tc.http,
        &image_url,
        &token,
        json!({"name": "src", "disk_format": "qcow2", "container_format": "bare", "os_distro": "debian", "min_disk": 1}),
    )
    .await;
    let (s, _) = common::glance::upload(
        &tc.http,
        &image_url,
        &token,
        &img,
        std::fs::read(&qcow).unwrap(),
    )
    .await;
    assert_eq!(s, 204);
    let id = c
        .post_volume(json!({"volume": {"size": 1, "imageRef": img}}))
        .await;
    let vol = c.wait(&id, "available").await;
    assert_eq!(vol["bootable"], "true");
    assert_eq!(vol["volume_image_metadata"]["image_id"], img.as_str());
    assert_eq!(vol["volume_image_metadata"]["os_distro"], "debian");
    let file = volume_file(&tc, REGION, &id);
    let head = std::fs::read(&file).unwrap();
    assert_eq!(head.len(), 1 << 30);
    assert_eq!(&head[..11], b"hello world");
    // Uploading it back: Cinder's image metadata rules (custom properties, no core fields).
    let v = c
        .act(
            &id,
            json!({"os-volume_upload_image": {"image_name": "back", "disk_format": "qcow2"}}),
        )
        .await;
    let back = common::cinder::upload_image_id(&v);
    let shown = wait_image(&tc.http, &image_url, &token, &back, "active").await;
    assert_eq!(shown["os_distro"], "debian");
    assert!(
        shown.get("image_id").is_none() && shown.get("image_name").is_none(),
        "{shown}"
    );
    // An image larger than the volume is refused.
    let (s, v) = c
        .post(
            "/volumes",
            json!({"volume": {"size": 1, "imageRef": uuid::Uuid::new_v4().to_string()}}),
        )
        .await;
    fault(s, &v, 400, "badRequest");
}

#[tokio::test]
async fn nova_volume_attachments() {
    let tc = TestCloud::start().await;
    let (c, token) = member(&tc, REGION).await;
    let img = raw_image(&tc, REGION, &token, "base", vec![1u8; 1 << 20]).await;
    let nova = Nova::new(&tc, REGION, &token);
    let vm = nova.active_server("vm", &img).await;
    let vol = c.create(1, "a").await;
    let att = format!("/servers/{vm}/os-volume_attachments");
    let attach = |v: &str| json!({"volumeAttachment": {"volumeId": v}});

    let r = nova.post(&att, attach(&vol)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"volumeAttachment": {"device": "/dev/vdb", "id": vol, "serverId": vm, "volumeId": vol}})
    );
    assert_eq!(c.show(&vol).await.1["volume"]["status"], "in-use");
    let r = nova.get(&att).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["volumeAttachments"].as_array().unwrap().len(), 1);
    // The same under the legacy /v2/{project_id} base.
    let legacy = Nova::v2(&tc, REGION, &c.project, &token).get(&att).await;
    assert_eq!(legacy.status, 200, "{}", legacy.text);
    assert_eq!(legacy.body, r.body);
    assert_eq!(nova.get(&format!("{att}/{vol}")).await.status, 200);
    // Attaching it again: 400. An unknown volume or server: 404. Bad bodies: 400.
    let r = nova.post(&att, attach(&vol)).await;
    fault(r.status, &r.body, 400, "badRequest");
    let r = nova
        .post(&att, attach(&uuid::Uuid::new_v4().to_string()))
        .await;
    fault(r.status, &r.body, 404, "itemNotFound");
    let nobody = format!("/servers/{}/os-volume_attachments", uuid::Uuid::new_v4());
    let r = nova.post(&nobody, attach(&vol)).await;
    fault(r.status, &r.body, 404, "itemNotFound");
    let r = nova.post(&att, attach("x")).await;
    fault(r.status, &r.body, 400, "badRequest");
    // An attached volume cannot be deleted.
    let (s, v) = c.delete(&format!("/volumes/{vol}")).await;
    fault(s, &v, 400, "badRequest");

    assert_eq!(nova.delete(&format!("{att}/{vol}")).await.status, 202);
    assert_eq!(c.show(&vol).await.1["volume"]["status"], "available");
    let r = nova.delete(&format!("{att}/{vol}")).await;
    fault(r.status, &r.body, 404, "itemNotFound");
    assert_eq!(nova.get(&att).await.body["volumeAttachments"], json!([]));

    // Deleting a server detaches its volumes (as Nova does).
    assert_eq!(nova.post(&att, attach(&vol)).await.status, 200);
    assert_eq!(c.show(&vol).await.1["volume"]["status"], "in-use");
    assert_eq!(nova.delete(&format!("/servers/{vm}")).await.status, 204);
    let shown = c.show(&vol).await.1;
    assert_eq!(shown["volume"]["status"], "available", "{shown}");
    assert_eq!(shown["volume"]["attachments"], json!([]));
}

#[tokio::test]
async fn restart_repairs_volumes_left_without_jobs() {
    use sqlx::Executor;
    let dir = common::TempDir::new();
    let (project, token, stuck, orphan) = {
        let tc = TestCloud::start_in(dir.0.clone(), |_| {}).await;
        let (c, token) = member(&tc, REGION).await;
        let stuck = c.create(1, "stuck").await;
        let orphan = c.create(1, "orphan").await;
        // As a crash between the status change and the job's enqueue would leave them.
        let db = &tc.cloud.regions[0].db;
        for (id, status) in [(&stuck, "uploading"), (&orphan, "creating")] {
            db.pool
                .execute(sqlx::AssertSqlSafe(format!(
                    "UPDATE volumes SET status = '{status}' WHERE id = '{id}'"
                )))
                .await
                .unwrap();
        }
        (c.project.clone(), token, stuck, orphan)
    };
    let tc = TestCloud::start_in(dir.0.clone(), |_| {}).await;
    let c = Cinder::new(&tc, REGION, &project, &token);
    assert_eq!(c.show(&stuck).await.1["volume"]["status"], "available");
    assert_eq!(c.show(&orphan).await.1["volume"]["status"], "error");
    let (s, _) = c.delete(&format!("/volumes/{orphan}")).await;
    assert_eq!(s, 202);
}

/// Seed 002: 401 "including Keystone down". A region whose identity cannot be reached cannot
/// validate any token: the volume API answers 401 (keystonemiddleware's body).
#[tokio::test]
async fn identity_down_is_401() {
    let dead = format!(
        "http://127.0.0.1:{}/identity/v3",
        common::process::free_port()
    );
    let tc = TestCloud::start_with(|c| {
        c.identity.enabled = false;
        c.identity.url = dead.clone();
        c.identity.validation_cache_seconds = 0;
        c.identity.service_password = "unused".into();
    })
    .await;
    let c = Cinder::new(
        &tc,
        REGION,
        "0123456789abcdef0123456789abcdef",
        "some-token",
    );
    let (s, v) = c
        .action(
            &uuid::Uuid::new_v4().to_string(),
            json!({"os-volume_upload_image": {"image_name": "x"}}),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], 401);
}

#[tokio::test]
async fn list_filters_sort_and_pages() {
    let tc = TestCloud::start().await;
    let (c, _) = member(&tc, REGION).await;
    let mut ids = Vec::new();
    for (i, kind) in ["work", "home", "work"].iter().enumerate() {
        let (s, v) = c
            .post("/volumes", json!({"volume": {"size": i + 1, "name": format!("l{i}"), "metadata": {"Type": kind}}}))
            .await;
        assert_eq!(s, 202, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_string();
        c.wait(&id, "available").await;
        ids.push(id);
    }
    let names = |v: &Value| common::http::owned_strings(&v["volumes"], "name");
    let (_, v) = c.get("/volumes/detail").await;
    assert_eq!(names(&v), ["l2", "l1", "l0"], "newest first");
    let (_, v) = c.get("/volumes/detail?sort=size:asc").await;
    assert_eq!(names(&v), ["l0", "l1", "l2"]);
    let (_, v) = c.get("/volumes?sort_key=name&sort_dir=desc").await;
    assert_eq!(names(&v), ["l2", "l1", "l0"]);
    // Tempest passes metadata as a Python dict.
    let (_, v) = c
        .get("/volumes/detail?metadata=%7B%27Type%27%3A+%27work%27%7D")
        .await;
    assert_eq!(names(&v), ["l2", "l0"]);
    let (_, v) = c
        .get("/volumes?bootable=false&availability_zone=nova")
        .await;
    assert_eq!(v["volumes"].as_array().unwrap().len(), 3);
    let (_, v) = c.get("/volumes?bootable=true").await;
    assert_eq!(v["volumes"], json!([]));
    // Pages: limit, then marker; a next link while a page is full.
    let (_, v) = c.get("/volumes?sort=name:asc&limit=2").await;
    assert_eq!(names(&v), ["l0", "l1"]);
    assert!(
        v["volumes_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=")
    );
    let (_, v) = c
        .get(&format!("/volumes?sort=name:asc&marker={}", ids[1]))
        .await;
    assert_eq!(names(&v), ["l2"]);
    let (s, v) = c.get("/volumes?sort=colour:asc").await;
    fault(s, &v, 400, "badRequest");
}

#[tokio::test]
async fn extend_grows_the_file() {
    let (tc, c, _, id) = cloud_and_volume("grow").await;
    for bad in [
        json!({"os-extend": {"new_size": 1}}),
        json!({"os-extend": {"new_size": "x"}}),
        json!({"os-extend": {}}),
    ] {
        let (s, v) = c.action(&id, bad).await;
        fault(s, &v, 400, "badRequest");
    }
    let (s, v) = c
        .action(
            &uuid::Uuid::new_v4().to_string(),
            json!({"os-extend": {"new_size": 2}}),
        )
        .await;
    fault(s, &v, 404, "itemNotFound");
    c.act(&id, json!({"os-extend": {"new_size": "3"}})).await;
    let shown = c.wait(&id, "available").await;
    assert_eq!(shown["size"], 3);
    assert_eq!(
        std::fs::metadata(volume_file(&tc, REGION, &id))
            .unwrap()
            .len(),
        3 << 30
    );
}

#[tokio::test]
async fn metadata_resource_and_set_bootable() {
    let (tc, c, _, id) = cloud_and_volume("meta").await;
    let path = format!("/volumes/{id}/metadata");
    let (s, v) = c
        .post(&path, json!({"metadata": {"a": "1", "b": "2"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"metadata": {"a": "1", "b": "2"}}));
    let (s, v) = c.post(&path, json!({"metadata": {"c": "3"}})).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"].as_object().unwrap().len(), 3, "POST merges");
    let (s, v) = c.put(&path, json!({"metadata": {"z": "9"}})).await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"metadata": {"z": "9"}}), "PUT replaces");
    let (s, v) = c
        .put(&format!("{path}/k"), json!({"meta": {"k": "v"}}))
        .await;
    assert_eq!((s, v), (200, json!({"meta": {"k": "v"}})));
    let (s, v) = c
        .put(&format!("{path}/k"), json!({"meta": {"other": "v"}}))
        .await;
    fault(s, &v, 400, "badRequest");
    let (s, v) = c.get(&format!("{path}/k")).await;
    assert_eq!((s, v), (200, json!({"meta": {"k": "v"}})));
    let (s, _) = c.delete(&format!("{path}/k")).await;
    assert_eq!(s, 200);
    let (s, v) = c.get(&format!("{path}/k")).await;
    fault(s, &v, 404, "itemNotFound");
    let (_, v) = c.show(&id).await;
    assert_eq!(v["volume"]["metadata"], json!({"z": "9"}));
    // A reader reads but does not write.
    let mut reader = c.clone();
    reader.token = common::nova::reader_of(&tc, &c.project).await;
    assert_eq!(reader.get(&path).await.0, 200);
    let (s, v) = reader.post(&path, json!({"metadata": {"x": "y"}})).await;
    fault(s, &v, 403, "forbidden");

    let (s, v) = c
        .action(&id, json!({"os-set_bootable": {"bootable": "yes"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.show(&id).await.1["volume"]["bootable"], "true");
    let (s, v) = c
        .action(&id, json!({"os-set_bootable": {"bootable": "maybe"}}))
        .await;
    fault(s, &v, 400, "badRequest");
}

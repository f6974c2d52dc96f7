//! `createImage` (seed 004) end to end: the snapshot's bytes (qcow2, `qemu-img check`, and
//! `qemu-img compare` against the source shows exactly what the write-disk extension
//! wrote), its metadata and lifecycle, both response forms (Location before 2.45,
//! `{"image_id"}` from 2.45), every error of the seed's table, and a failed snapshot that
//! leaves no image and a usable server.

use crate::common;

use common::TestCloud;
use common::compute::{create_image, message, start, start_with};
use common::nova::{Nova, assert_snapshot, location_id, pattern, raw_image, reader_of};
use glimpse_core::config::Config;
use serde_json::{Map, Value, json};

const MIB: usize = 1 << 20;

/// Downloads an image's bytes through Glance into `path`.
async fn download(tc: &TestCloud, token: &str, id: &str, path: &std::path::Path) {
    let r = common::http::get(
        &tc.http,
        format!("{}/v2/images/{id}/file", tc.image("region-one")),
        token,
    )
    .await;
    assert_eq!(r.status(), 200);
    std::fs::write(path, r.bytes().await.unwrap()).unwrap();
}

#[tokio::test]
async fn snapshot_holds_exactly_the_written_bytes() {
    let source = pattern(2 * MIB);
    let Some((tc, project, token, image, nova)) = start(source.clone()).await else {
        return;
    };
    let id = nova.active_server("s1", &image).await;

    let writes: [(u64, &[u8]); 2] = [
        (4096 + 7, b"glimpse snapshot"),
        (MIB as u64 + 3, b"\x00\x01\x02zz"),
    ];
    for (off, data) in writes {
        let r = nova.write_disk(&id, off, data).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    // Bad input: 400; the disk is 1 GiB (m1.tiny).
    assert_eq!(nova.write_disk(&id, 1 << 30, b"x").await.status, 400);
    let r = nova
        .action(
            &id,
            json!({"glimpse-write-disk": {"offset": 0, "data": "not base64!"}}),
        )
        .await;
    assert_eq!(r.status, 400);

    let r = nova
        .action(
            &id,
            json!({"createImage": {"name": "snap", "metadata": {"image_type": "test", "purpose": "seed 004"}}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.text.is_empty());
    let loc = r.headers["location"].to_str().unwrap().to_string();
    let snap = location_id(&r);
    assert_eq!(
        loc,
        format!("{}/region-one/compute/v2.1/images/{snap}", tc.base)
    );

    let img = nova.wait_image(&snap, "ACTIVE").await;
    assert_eq!(img["progress"], 100);
    assert_eq!(img["metadata"]["image_type"], "test");
    assert_eq!(img["metadata"]["purpose"], "seed 004");
    assert_eq!(img["metadata"]["instance_uuid"], id.as_str());
    assert_eq!(img["metadata"]["base_image_ref"], image.as_str());
    assert_eq!(img["server"]["id"], id.as_str());
    assert_eq!(img["minDisk"], 1);
    assert!(img["OS-EXT-IMG-SIZE:size"].as_i64().unwrap() > 0);
    let s = nova.wait_server(&id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null());

    // Glance's view: qcow2, owned by the server's project, private.
    let g = common::glance::show(&tc.http, &tc.image("region-one"), &token, &snap).await;
    assert_eq!(g["disk_format"], "qcow2");
    assert_eq!(g["container_format"], "bare");
    assert_eq!(g["owner"], project.as_str());
    assert_eq!(g["visibility"], "private");
    assert_eq!(g["status"], "active");

    // The bytes.
    let dir = common::TempDir::new();
    let file = dir.0.join("snap.qcow2");
    download(&tc, &token, &snap, &file).await;
    assert_snapshot(&file, &source, &writes);

    // The image proxy deletes it; then 404.
    assert_eq!(nova.delete(&format!("/images/{snap}")).await.status, 204);
    let r = nova.get(&format!("/images/{snap}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["itemNotFound"]["message"], "Image not found.");
}

#[tokio::test]
async fn microversion_245_answers_image_id_and_stopped_servers_snapshot() {
    let Some((tc, _, token, image, nova)) = start(pattern(MIB)).await else {
        return;
    };
    let id = nova.active_server("s", &image).await;
    assert_eq!(nova.action(&id, json!({"os-stop": null})).await.status, 202);
    nova.wait_server(&id, "SHUTOFF").await;

    let at45 = Nova::new(&tc, "region-one", &token).at("2.45");
    let r = create_image(&at45, &id, "from-stopped").await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    assert_eq!(r.headers["openstack-api-version"], "compute 2.45");
    let snap = r.body["image_id"].as_str().unwrap().to_string();
    assert_eq!(r.body.as_object().unwrap().len(), 1);
    let img = nova.wait_image(&snap, "ACTIVE").await;
    assert_eq!(img["metadata"]["image_type"], "snapshot");
    nova.wait_server(&id, "SHUTOFF").await;
    // From 2.36 the image proxy is gone.
    assert_eq!(
        Nova::new(&tc, "region-one", &token)
            .at("2.36")
            .get(&format!("/images/{snap}"))
            .await
            .status,
        404
    );
}

/// Every row of the seed's error table, through the seed's own `/v2/{project_id}` path.
#[tokio::test]
async fn seed_004_error_table() {
    let Some((tc, project, token, image, _)) = start(pattern(MIB)).await else {
        return;
    };
    let nova = Nova::v2(&tc, "region-one", &project, &token);
    let id = nova.active_server("s", &image).await;
    let act = |body: Value| {
        let nova = &nova;
        let id = id.clone();
        async move { nova.action(&id, body).await }
    };

    // 400: no createImage entity in the body.
    let r = act(json!({"createImageX": {"name": "x"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["badRequest"]["code"], 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        "There is no such action: createImageX"
    );
    // 400: the seed's form-encoded request.
    let r = tc
        .http
        .post(format!("{}/servers/{id}/action", nova.base))
        .header("x-auth-token", &token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("createImage=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"badRequest": {"message": "There is no such action: None", "code": 400}})
    );
    // 400: no name; a blank name; a name over 255 characters.
    for body in [
        json!({"createImage": {}}),
        json!({"createImage": {"metadata": {"a": "b"}}}),
        json!({"createImage": {"name": ""}}),
        json!({"createImage": {"name": "x".repeat(256)}}),
        json!({"createImage": {"name": "x", "extra": 1}}),
    ] {
        let r = act(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(message(&r.body, "badRequest").starts_with("Invalid input"));
    }
    // A 255-character name is fine (checked with the 2.45 form below).
    // 400: a blank metadata key.
    for key in ["", "   "] {
        let r = act(json!({"createImage": {"name": "x", "metadata": {key: "v"}}})).await;
        assert_eq!(r.status, 400, "{key:?}: {}", r.text);
    }
    // 400: the project id in the URL is not the token's (documented choice for both the
    // seed's "invalid project_id" 400 and "not found a specified project" 404).
    let (other, other_token) = tc.user_in_new_project("member", "region-one").await;
    let wrong = Nova::v2(&tc, "region-one", &other, &token);
    let r = create_image(&wrong, &id, "x").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        format!(
            "Malformed request URL: URL's project_id '{other}' doesn't match Context's project_id '{project}'"
        )
    );
    // 401.
    let anon = Nova::v2(&tc, "region-one", &project, "bogus");
    assert_eq!(create_image(&anon, &id, "x").await.status, 401);
    // 403: more metadata items than the quota (128) before 2.39.
    let many: Map<String, Value> = (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = act(json!({"createImage": {"name": "x", "metadata": many}})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["forbidden"]["message"],
        "Image metadata limit exceeded"
    );
    // From 2.39 Nova no longer counts; Glance's property quota answers (400).
    let at39 = Nova::new(&tc, "region-one", &token).at("2.39");
    let r = at39
        .action(&id, json!({"createImage": {"name": "x", "metadata": many}}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // 404: no such server; another project's server.
    let r = nova
        .action(
            "3f1b6a5e-0000-4000-8000-000000000000",
            json!({"createImage": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        "Instance 3f1b6a5e-0000-4000-8000-000000000000 could not be found."
    );
    let theirs = Nova::v2(&tc, "region-one", &other, &other_token);
    assert_eq!(create_image(&theirs, &id, "x").await.status, 404);
    // A reader of the project may not snapshot (Nova's policy: 403).
    let reader = reader_of(&tc, &project).await;
    let as_reader = Nova::v2(&tc, "region-one", &project, &reader);
    let r = create_image(&as_reader, &id, "x").await;
    assert_eq!(r.status, 403, "{}", r.text);
    // 128 metadata items pass Nova's quota, but with the snapshot's own properties they
    // exceed Glance's (128): 400, and no image.
    let full: Map<String, Value> = (0..128).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = act(json!({"createImage": {"name": "x", "metadata": full}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Nothing above left an image behind.
    let imgs = tc.image_list("region-one", &token).await;
    assert_eq!(imgs["images"].as_array().unwrap().len(), 1, "{imgs}");
    // 400: a metadata value over the seed's 2^16 - 1 bytes.
    let r = act(json!({"createImage": {"name": "x", "metadata": {"k": "v".repeat(65_536)}}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // 202 with a 255-character name, 100 metadata items and a 65535-byte value.
    let mut full: Map<String, Value> = (0..100).map(|i| (format!("k{i}"), json!("v"))).collect();
    full.insert("long".into(), json!("L".repeat(65_535)));
    let r = act(json!({"createImage": {"name": "n".repeat(255), "metadata": full}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let snap = location_id(&r);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .contains(&format!("/v2/{project}/images/"))
    );
    let img = nova.wait_image(&snap, "ACTIVE").await;
    assert_eq!(img["metadata"]["long"].as_str().unwrap().len(), 65_535);
}

/// 409 for a running snapshot (a second one) and for a server in ERROR; 400 when snapshots
/// are switched off.
#[tokio::test]
async fn conflicts_and_disabled_snapshots() {
    let no_snapshots_in_two = |c: &mut Config| c.regions[1].compute.snapshots = false;
    let Some((tc, _, token, image, nova)) =
        start_with(no_snapshots_in_two, "base", pattern(MIB)).await
    else {
        return;
    };
    let id = nova.active_server("s", &image).await;

    // Two snapshots at once: the conditional claim of the server's task lets exactly one in.
    let a = nova.action(&id, json!({"createImage": {"name": "one"}}));
    let b = nova.action(&id, json!({"createImage": {"name": "two"}}));
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{} / {}", a.text, b.text);
    let loser = if a.status == 409 { &a } else { &b };
    assert!(
        message(&loser.body, "conflictingRequest").starts_with(&format!(
            "Cannot 'createImage' instance {id} while it is in task_state image_"
        )),
        "{}",
        loser.text
    );
    let winner = if a.status == 202 { &a } else { &b };
    nova.wait_image(&location_id(winner), "ACTIVE").await;
    nova.wait_server(&id, "ACTIVE").await;

    // A server in ERROR (its image's bytes are not the qcow2 they claim: the build fails).
    let bogus = common::glance::create_image(
        &tc.http,
        &tc.image("region-one"),
        &token,
        json!({"name": "bogus", "disk_format": "qcow2", "container_format": "ovf"}),
    )
    .await;
    let (st, text) = common::glance::upload(
        &tc.http,
        &tc.image("region-one"),
        &token,
        &bogus,
        vec![7u8; 65536],
    )
    .await;
    assert_eq!(st, 204, "{text}");
    let broken = nova.create_server("broken", &bogus).await;
    let s = nova.wait_server(&broken, "ERROR").await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "error");
    assert!(
        message(&s, "fault").contains("cannot be used as a disk"),
        "{s}"
    );
    let r = create_image(&nova, &broken, "x").await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body["conflictingRequest"]["message"],
        format!("Cannot 'createImage' instance {broken} while it is in vm_state error")
    );

    // Snapshots off in region-two's configuration: 400.
    let (_p2, token2) = tc.user_in_new_project("member", "region-two").await;
    let image2 = raw_image(&tc, "region-two", &token2, "base", pattern(MIB)).await;
    let nova2 = Nova::new(&tc, "region-two", &token2);
    let id2 = nova2.active_server("s", &image2).await;
    let r = create_image(&nova2, &id2, "x").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(message(&r.body, "badRequest").contains("disabled"));
}

/// A snapshot that fails (its server's base copy is gone) deletes its image and leaves the
/// server ACTIVE with no task, ready for the next snapshot.
#[tokio::test]
async fn failed_snapshot_leaves_no_image_and_a_usable_server() {
    let one_attempt = |c: &mut Config| c.regions[0].jobs.max_attempts = 1;
    let Some((tc, _, _, image, nova)) = start_with(one_attempt, "base", pattern(MIB)).await else {
        return;
    };
    let id = nova.active_server("s", &image).await;
    let cache = tc.data_dir.join("region-one/disks/images");
    let base = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let hidden = base.with_extension("hidden");
    std::fs::rename(&base, &hidden).unwrap();

    snapshot_fails(&nova, &id, "doomed").await;
    std::fs::rename(&hidden, &base).unwrap();
    let r = create_image(&nova, &id, "fine").await;
    assert_eq!(r.status, 202);
    nova.wait_image(&location_id(&r), "ACTIVE").await;
}

/// Asks for a snapshot that must fail: its image goes away and the server is ACTIVE again
/// with no task.
async fn snapshot_fails(nova: &Nova, id: &str, name: &str) {
    let r = create_image(nova, id, name).await;
    assert_eq!(r.status, 202);
    let snap = location_id(&r);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = nova.get(&format!("/images/{snap}")).await;
        if r.status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: image still there: {}",
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let s = nova.wait_server(id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{name}: {s}");
}

/// A server disk altered on the host into each malformed qcow2 of the project's own corpus
/// (cut inside its data, pointers to 2^55, a crypto or bitmaps extension qemu misreads) is
/// refused by the snapshot, like an upload: no image, the server usable; the restored disk
/// snapshots again.
#[tokio::test]
async fn altered_server_disk_is_refused_at_snapshot() {
    let one_attempt = |c: &mut Config| c.regions[0].jobs.max_attempts = 1;
    let Some((tc, _, _, image, nova)) = start_with(one_attempt, "base", pattern(MIB)).await else {
        return;
    };
    let id = nova.active_server("s", &image).await;
    let disk = tc
        .data_dir
        .join("region-one/disks/servers")
        .join(format!("{id}.qcow2"));
    let original = std::fs::read(&disk).unwrap();
    let work = common::TempDir::new();
    let cases = common::corpus::refused_qcow2(&work.0);
    for case in &cases {
        std::fs::write(&disk, std::fs::read(&case.file).unwrap()).unwrap();
        snapshot_fails(&nova, &id, &case.name()).await;
    }
    std::fs::write(&disk, &original).unwrap();
    let r = create_image(&nova, &id, "restored").await;
    assert_eq!(r.status, 202);
    nova.wait_image(&location_id(&r), "ACTIVE").await;
}

/// While a snapshot runs, the server's task state only moves forward through Nova's
/// sequence and the image through Glance's, ending with no task and an active image.
#[tokio::test]
async fn task_and_image_states_move_forward() {
    let data: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let Some((tc, _, token, image, nova)) = start_with(|_| {}, "big", data).await else {
        return;
    };
    let id = nova.active_server("s", &image).await;
    let r = create_image(&nova, &id, "watched").await;
    assert_eq!(r.status, 202);
    let snap = location_id(&r);
    let tasks = [
        "image_snapshot",
        "image_pending_upload",
        "image_uploading",
        "none",
    ];
    let statuses = ["queued", "saving", "active"];
    let (mut task_seen, mut status_seen) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = nova.get(&format!("/servers/{id}")).await.body["server"].clone();
        let task = s["OS-EXT-STS:task_state"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        let g = common::glance::show(&tc.http, &tc.image("region-one"), &token, &snap).await;
        let status = g["status"].as_str().unwrap().to_string();
        let t = tasks.iter().position(|x| *x == task).expect("known task");
        let st = statuses
            .iter()
            .position(|x| *x == status)
            .expect("known status");
        if task_seen.last() != Some(&t) {
            task_seen.push(t);
        }
        if status_seen.last() != Some(&st) {
            status_seen.push(st);
        }
        if task == "none" && status == "active" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{task} / {status}");
    }
    assert!(task_seen.windows(2).all(|w| w[0] < w[1]), "{task_seen:?}");
    assert!(
        status_seen.windows(2).all(|w| w[0] < w[1]),
        "{status_seen:?}"
    );
    assert_eq!(task_seen.last(), Some(&3));
    eprintln!("task states seen: {task_seen:?}, image statuses seen: {status_seen:?}");
}

/// A server boots from an IMS copy encrypted with a customer key: the disk holds the
/// plaintext (its snapshot equals the source plus what was written). A project that sees the
/// image but may not use its key (the admin's) cannot boot from it: 403, nothing is built.
#[tokio::test]
async fn encrypted_images_boot_only_where_their_key_may_be_used() {
    let source = pattern(2 * MIB);
    let Some((tc, project, token, plain, nova)) = start(source.clone()).await else {
        return;
    };
    let ims = common::ims::Ims::new(&tc, "region-one", &token, &project);
    let key = ims.kms().create_key().await;
    let sealed = ims.sealed_copy(&plain, "sealed", &key).await;

    let id = nova.active_server("enc", &sealed).await;
    let writes: [(u64, &[u8]); 1] = [(512, b"written over a sealed base")];
    assert_eq!(
        nova.write_disk(&id, writes[0].0, writes[0].1).await.status,
        202
    );
    let r = create_image(&nova, &id, "enc-snap").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let snap = location_id(&r);
    nova.wait_image(&snap, "ACTIVE").await;
    let dir = common::TempDir::new();
    let file = dir.0.join("snap.qcow2");
    download(&tc, &token, &snap, &file).await;
    assert_snapshot(&file, &source, &writes);

    let admin = tc.admin_token().await;
    let r = Nova::new(&tc, "region-one", &admin)
        .post(
            "/servers",
            json!({"server": {"name": "x", "imageRef": sealed, "flavorRef": "1", "networks": "none"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(message(&r.body, "forbidden").contains(&key), "{}", r.text);
}

/// With several nodes, a write-disk task belongs to the node that runs it: another node's
/// start-up leaves it alone; once that node's heartbeat is stale, any node ends it and the
/// server takes snapshots again.
#[tokio::test]
async fn a_dead_nodes_disk_write_is_ended_by_the_others() {
    let Some((tc, _, _, image, nova)) = start(pattern(MIB)).await else {
        return;
    };
    let id = nova.active_server("s", &image).await;
    let region = &tc.cloud.regions[0];
    let db = &region.db.pool;
    glimpse_core::nodes::register(&region.db, "other", 1)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE servers SET task_state = 'glimpse_disk_writing', task_node = 'other' WHERE id = $1",
    )
    .bind(&id)
    .execute(db)
    .await
    .unwrap();
    glimpse_core::compute::recover(region).await.unwrap();
    let s = nova.get(&format!("/servers/{id}")).await.body["server"].clone();
    assert_eq!(s["OS-EXT-STS:task_state"], "glimpse_disk_writing", "{s}");

    sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = 'other'")
        .bind("2000-01-01T00:00:00.000000Z")
        .execute(db)
        .await
        .unwrap();
    glimpse_core::cloud::take_over(region).await;
    let s = nova.get(&format!("/servers/{id}")).await.body["server"].clone();
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    let r = create_image(&nova, &id, "after").await;
    assert_eq!(r.status, 202);
    nova.wait_image(&location_id(&r), "ACTIVE").await;
}

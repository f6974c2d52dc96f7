//! Huawei IMS in-region copy (seed 003) end to end: copies with and without a customer key,
//! job query in both forms, every validation error, isolation between projects, disabled
//! keys, tampered blobs, and deleting either image of a shared copy.

mod common;

use common::TestCloud;
use common::glance::{create_bare, create_image, download, sha512_hex, show, upload};
use common::ims::{copy, copy_and_wait, create_key, job, kms, marked_data};
use serde_json::{Value, json};

const MARKER: &[u8] = b"PLAINTEXT-MARKER-glimpse-ims-0123456789";

/// A member's project with an uploaded raw image; returns (project, token, image id, data).
async fn setup(tc: &TestCloud, n: usize) -> (String, String, String, Vec<u8>) {
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let img = tc.image("region-one");
    let id = create_bare(&tc.http, &img, &tok, "src", "raw").await;
    let data = marked_data(n, MARKER);
    assert_eq!(upload(&tc.http, &img, &tok, &id, data.clone()).await.0, 204);
    (pid, tok, id, data)
}

/// The stored blob file of an image (filesystem store only).
async fn blob_path(tc: &TestCloud, image: &str) -> Option<std::path::PathBuf> {
    let region = tc.cloud.regions.iter().find(|r| r.name == "region-one")?;
    let root = region.store.url().strip_prefix("file://")?.to_string();
    let key = sqlx::query_scalar::<_, String>("SELECT blob_key FROM images WHERE id = $1")
        .bind(image)
        .fetch_one(&region.db.pool)
        .await
        .ok()?;
    Some(std::path::Path::new(&root).join(key))
}

#[tokio::test]
async fn plain_copy_shares_the_bytes_and_survives_either_delete() {
    let tc = TestCloud::start().await;
    let (_pid, tok, src, data) = setup(&tc, 3 << 20).await;
    let img = tc.image("region-one");
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "copy-1", "description": "test copy"}),
    )
    .await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    assert_eq!(done["job_type"], "imsCopyImageInRegionJob");
    assert_eq!(done["error_code"], Value::Null);
    assert_eq!(done["fail_reason"], Value::Null);
    assert_eq!(done["entities"]["image_name"], "copy-1");
    assert!(
        done["begin_time"].as_str().unwrap().ends_with('Z'),
        "{done}"
    );
    assert!(done["end_time"].as_str().unwrap().ends_with('Z'), "{done}");
    let copy_id = done["entities"]["image_id"].as_str().unwrap().to_string();
    let c = show(&tc.http, &img, &tok, &copy_id).await;
    let s = show(&tc.http, &img, &tok, &src).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["name"], "copy-1");
    assert_eq!(c["__description"], "test copy");
    assert_eq!(c["visibility"], "private");
    for f in [
        "checksum",
        "os_hash_value",
        "size",
        "disk_format",
        "container_format",
        "owner",
    ] {
        assert_eq!(c[f], s[f], "{f}");
    }
    assert!(c.get("__system__encrypted").is_none(), "{c}");
    let (st, got) = download(&tc.http, &img, &tok, &copy_id).await;
    assert_eq!(st, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));

    // Shared blob: deleting the source keeps the copy whole, and the reverse in a second pair.
    let src_blob = blob_path(&tc, &src).await;
    let status = tc
        .http
        .delete(format!("{img}/v2/images/{src}"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    if let Some(p) = &src_blob {
        assert!(p.exists(), "the shared blob stays while the copy names it");
    }
    let (st, got) = download(&tc.http, &img, &tok, &copy_id).await;
    assert_eq!((st, sha512_hex(&got)), (200, sha512_hex(&data)));
    let status = tc
        .http
        .delete(format!("{img}/v2/images/{copy_id}"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    if let Some(p) = &src_blob {
        assert!(!p.exists(), "the last image's delete removes the blob");
    }

    let (_, tok2, src2, data2) = setup(&tc, 1 << 20).await;
    let done = copy_and_wait(&tc.http, &tc.base, &tok2, &src2, json!({"name": "copy-2"})).await;
    let copy2 = done["entities"]["image_id"].as_str().unwrap().to_string();
    let status = tc
        .http
        .delete(format!("{img}/v2/images/{copy2}"))
        .header("x-auth-token", &tok2)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let (st, got) = download(&tc.http, &img, &tok2, &src2).await;
    assert_eq!((st, got), (200, data2));
    // Nothing the cleaner may take: both blobs still named, or deleted with their last image.
    let region = tc
        .cloud
        .regions
        .iter()
        .find(|r| r.name == "region-one")
        .unwrap();
    glimpse_core::images::clean_orphans(region, std::time::Duration::ZERO)
        .await
        .unwrap();
    let (st, _) = download(&tc.http, &img, &tok2, &src2).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn encrypted_copy_round_trips_and_stores_no_plaintext() {
    let tc = TestCloud::start().await;
    let (pid, tok, src, data) = setup(&tc, (2 << 20) + 12345).await;
    let img = tc.image("region-one");
    let key = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    assert_eq!(done["entities"]["process_percent"], 100.0);
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let c = show(&tc.http, &img, &tok, &enc).await;
    let s = show(&tc.http, &img, &tok, &src).await;
    assert_eq!(c["__system__encrypted"], "1");
    assert_eq!(c["__system__cmkid"], key.as_str());
    assert_eq!(c["checksum"], s["checksum"]);
    assert_eq!(c["os_hash_value"], s["os_hash_value"]);
    assert_eq!(c["size"], s["size"]);
    let (st, got) = download(&tc.http, &img, &tok, &enc).await;
    assert_eq!(st, 200);
    assert_eq!(got, data);

    // A ranged read across a chunk boundary.
    let r = tc
        .http
        .get(format!("{img}/v2/images/{enc}/file"))
        .header("x-auth-token", &tok)
        .header("range", "bytes=524000-1049999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), data[524000..1050000]);

    if let Some(p) = blob_path(&tc, &enc).await {
        let stored = std::fs::read(&p).unwrap();
        assert!(
            !stored.windows(MARKER.len()).any(|w| w == MARKER),
            "plaintext at rest"
        );
        assert!(stored.len() > data.len());
    }

    // Copy of the encrypted copy without cmk_id: still encrypted with the same key.
    let again = copy_and_wait(&tc.http, &tc.base, &tok, &enc, json!({"name": "enc-again"})).await;
    assert_eq!(again["status"], "SUCCESS", "{again}");
    let again_id = again["entities"]["image_id"].as_str().unwrap();
    let a = show(&tc.http, &img, &tok, again_id).await;
    assert_eq!(a["__system__encrypted"], "1");
    assert_eq!(a["__system__cmkid"], key.as_str());
    assert_eq!(download(&tc.http, &img, &tok, again_id).await.1, data);

    // Re-keying an encrypted image with another key.
    let key2 = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let rekey = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &enc,
        json!({"name": "rekeyed", "cmk_id": key2}),
    )
    .await;
    assert_eq!(rekey["status"], "SUCCESS", "{rekey}");
    let rk = rekey["entities"]["image_id"].as_str().unwrap();
    assert_eq!(
        show(&tc.http, &img, &tok, rk).await["__system__cmkid"],
        key2.as_str()
    );
    assert_eq!(download(&tc.http, &img, &tok, rk).await.1, data);

    // Disabled key: downloads and copies refused; enabled again: fine.
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "disable-key",
        json!({"key_id": key}),
    )
    .await;
    assert_eq!(
        (s, v["key_info"]["key_state"].as_str()),
        (200, Some("3")),
        "{v}"
    );
    assert_eq!(download(&tc.http, &img, &tok, &enc).await.0, 403);
    let (s, v) = copy(&tc.http, &tc.base, &tok, &enc, json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("IMG.0065")),
        "{v}"
    );
    let (s, v) = copy(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "x", "cmk_id": key}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("IMG.0065")),
        "{v}"
    );
    let (s, _) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "enable-key",
        json!({"key_id": key}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(download(&tc.http, &img, &tok, &enc).await.1, data);

    // Scheduled deletion: unusable too.
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "schedule-key-deletion",
        json!({"key_id": key, "pending_days": "7"}),
    )
    .await;
    assert_eq!((s, v["key_state"].as_str()), (200, Some("4")), "{v}");
    assert_eq!(download(&tc.http, &img, &tok, &enc).await.0, 403);
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "cancel-key-deletion",
        json!({"key_id": key}),
    )
    .await;
    assert_eq!((s, v["key_state"].as_str()), (200, Some("3")), "{v}");
}

#[tokio::test]
async fn tampered_or_truncated_blobs_never_return_wrong_bytes() {
    let tc = TestCloud::start().await;
    if !tc.cloud.regions[0].store.url().starts_with("file://") {
        return; // needs the blob file
    }
    let (pid, tok, src, data) = setup(&tc, (3 << 20) + 7).await;
    let img = tc.image("region-one");
    let key = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let path = blob_path(&tc, &enc).await.unwrap();
    let original = std::fs::read(&path).unwrap();

    let fetch = async |tc: &TestCloud| -> (u16, Result<Vec<u8>, String>) {
        let r = tc
            .http
            .get(format!("{img}/v2/images/{enc}/file"))
            .header("x-auth-token", &tok)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (
            st,
            r.bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string()),
        )
    };
    // A flipped byte in the third chunk: the body is cut off, never complete.
    let mut bad = original.clone();
    bad[24 + 2 * (512 * 1024 + 16) + 100] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let (_, body) = fetch(&tc).await;
    match body {
        Err(_) => {}
        Ok(b) => {
            assert!(
                b.len() < data.len(),
                "a tampered blob must not download whole"
            );
            assert_eq!(b[..], data[..b.len()], "only authenticated bytes came out");
        }
    }
    // Truncated by one byte, and cut at a chunk boundary.
    for cut in [original.len() - 1, 24 + 3 * (512 * 1024 + 16)] {
        std::fs::write(&path, &original[..cut]).unwrap();
        let (_, body) = fetch(&tc).await;
        if let Ok(b) = body {
            assert!(
                b.len() < data.len(),
                "a truncated blob must not download whole (cut {cut})"
            );
            assert_eq!(b[..], data[..b.len()]);
        }
    }
    std::fs::write(&path, &original).unwrap();
    assert_eq!(fetch(&tc).await.1.unwrap(), data);
}

#[tokio::test]
async fn every_validation_error_of_the_seed() {
    let tc = TestCloud::start().await;
    let (pid, tok, src, _) = setup(&tc, 4096).await;
    let img = tc.image("region-one");
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 400, "IMG.0001"),
        (json!({"name": ""}), 400, "IMG.0001"),
        (json!({"name": 5}), 400, "IMG.0001"),
        (json!({"name": "x".repeat(129)}), 400, "IMG.0002"),
        (json!({"name": "bad/name"}), 400, "IMG.0002"),
        (
            json!({"name": "ok", "description": "d".repeat(1025)}),
            400,
            "IMG.0004",
        ),
        (
            json!({"name": "ok", "description": "a\rb"}),
            400,
            "IMG.0004",
        ),
        (
            json!({"name": "ok", "description": "<script>"}),
            400,
            "IMG.0004",
        ),
        (
            json!({"name": "ok", "cmk_id": "not-a-key"}),
            400,
            "IMG.0001",
        ),
        (
            json!({"name": "ok", "cmk_id": "bd66288c-9081-460a-8227-4cbd0c814cb4"}),
            404,
            "IMG.0064",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = copy(&tc.http, &tc.base, &tok, &src, body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let r = tc
        .http
        .post(format!(
            "{}/region-one/ims/v1/cloudimages/{src}/copy",
            tc.base
        ))
        .header("x-auth-token", &tok)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "IMG.0001"
    );
    // 401 without a token, 404 for an unknown image.
    let r = tc
        .http
        .post(format!(
            "{}/region-one/ims/v1/cloudimages/{src}/copy",
            tc.base
        ))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "IMG.0401"
    );
    let (s, v) = copy(
        &tc.http,
        &tc.base,
        &tok,
        "3c1f8ac8-7d6a-4b5e-9a1e-2f0d9c8b7a65",
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("IMG.0404")),
        "{v}"
    );
    // Not active (queued), ISO, whole-server images.
    let queued = create_bare(&tc.http, &img, &tok, "q", "raw").await;
    let (s, v) = copy(&tc.http, &tc.base, &tok, &queued, json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("IMG.0061")),
        "{v}"
    );
    // Made from an ISO file (Huawei marks it with __image_source_type) or an ISO itself.
    let iso = create_image(
        &tc.http,
        &img,
        &tok,
        json!({"name": "iso", "disk_format": "raw", "container_format": "bare", "__image_source_type": "iso"}),
    )
    .await;
    assert_eq!(
        upload(&tc.http, &img, &tok, &iso, vec![1u8; 4096]).await.0,
        204
    );
    let whole = create_image(&tc.http, &img, &tok, json!({"name": "w", "disk_format": "raw", "container_format": "bare", "__whole_image": "true"})).await;
    assert_eq!(
        upload(&tc.http, &img, &tok, &whole, vec![7u8; 4096])
            .await
            .0,
        204
    );
    let (s, v) = copy(&tc.http, &tc.base, &tok, &whole, json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("IMG.0063")),
        "{v}"
    );
    let (s, v) = copy(&tc.http, &tc.base, &tok, &iso, json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("IMG.0062")),
        "{v}"
    );
    // A reader may not copy.
    let admin = tc.admin_token().await;
    let p: Value = tc
        .http
        .get(format!("{}/projects/{pid}", tc.identity()))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = p["project"]["name"].as_str().unwrap();
    let reader = tc.user_with_role(&admin, &pid, name, "reader").await;
    let (s, v) = copy(&tc.http, &tc.base, &reader, &src, json!({"name": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("IMG.0403")),
        "{v}"
    );
    // Unknown path: IMS dialect 404.
    let r = tc
        .http
        .get(format!("{}/region-one/ims/v1/nothing", tc.base))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "IMG.0404"
    );
}

#[tokio::test]
async fn projects_are_isolated() {
    let tc = TestCloud::start().await;
    let (pid_a, tok_a, src_a, _) = setup(&tc, 8192).await;
    let (pid_b, tok_b, src_b, _) = setup(&tc, 8192).await;
    let img = tc.image("region-one");
    let key_a = create_key(&tc.http, &tc.base, &tok_a, &pid_a).await;

    // B cannot see A's image (404), nor use A's key (404), nor see A's key (404).
    let (s, v) = copy(&tc.http, &tc.base, &tok_b, &src_a, json!({"name": "x"})).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = copy(
        &tc.http,
        &tc.base,
        &tok_b,
        &src_b,
        json!({"name": "x", "cmk_id": key_a}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("IMG.0064")),
        "{v}"
    );
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok_b,
        &pid_b,
        "describe-key",
        json!({"key_id": key_a}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (404, Some("KMS.0207")),
        "{v}"
    );
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok_b,
        &pid_b,
        "disable-key",
        json!({"key_id": key_a}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = kms(&tc.http, &tc.base, &tok_b, &pid_a, "list-keys", json!({})).await;
    assert_eq!(s, 403, "{v}");

    // A's job is invisible to B in both forms; A sees it in both.
    let (s, v) = copy(
        &tc.http,
        &tc.base,
        &tok_a,
        &src_a,
        json!({"name": "mine", "cmk_id": key_a}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let job_id = v["job_id"].as_str().unwrap().to_string();
    assert_eq!(job(&tc.http, &tc.base, &tok_b, &job_id).await.0, 404);
    let older = |tok: &str, project: &str| {
        tc.http
            .get(format!(
                "{}/region-one/ims/v1/{project}/jobs/{job_id}",
                tc.base
            ))
            .header("x-auth-token", tok.to_string())
            .send()
    };
    assert_eq!(older(&tok_b, &pid_b).await.unwrap().status(), 404);
    assert_eq!(older(&tok_b, &pid_a).await.unwrap().status(), 404);
    let done = common::ims::wait(&tc.http, &tc.base, &tok_a, &job_id).await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    let r = older(&tok_a, &pid_a).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["job_id"], job_id.as_str());

    // A shares the encrypted copy with B: B sees it but may not read it (403).
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let r = tc
        .http
        .patch(format!("{img}/v2/images/{enc}"))
        .header("x-auth-token", &tok_a)
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(r#"[{"op":"replace","path":"/visibility","value":"shared"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = tc
        .http
        .post(format!("{img}/v2/images/{enc}/members"))
        .header("x-auth-token", &tok_a)
        .json(&json!({"member": pid_b}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(download(&tc.http, &img, &tok_b, &enc).await.0, 403);
    let (s, v) = copy(&tc.http, &tc.base, &tok_b, &enc, json!({"name": "steal"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("IMG.0065")),
        "{v}"
    );
}

#[tokio::test]
async fn encrypted_images_are_not_replicated() {
    let tc = TestCloud::start().await;
    let (pid, tok, src, _) = setup(&tc, 4096).await;
    let key = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    let enc = done["entities"]["image_id"].as_str().unwrap();
    let r = tc
        .http
        .post(format!(
            "{}/v2/extension/image_replicator/jobs",
            tc.image("region-one")
        ))
        .header("x-auth-token", &tok)
        .header("content-type", "application/json")
        .body(json!({"image_id": enc, "tenant_id_dst": pid}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("encrypted"));
}

#[tokio::test]
async fn a_source_deleted_before_the_copy_runs_fails_the_job_cleanly() {
    let tc = TestCloud::start_with(|c| c.regions[0].jobs.workers = 0).await;
    let (_, tok, src, _) = setup(&tc, 4096).await;
    let (s, v) = copy(&tc.http, &tc.base, &tok, &src, json!({"name": "late"})).await;
    assert_eq!(s, 200);
    let id = v["job_id"].as_str().unwrap().to_string();
    let (_, j) = job(&tc.http, &tc.base, &tok, &id).await;
    assert_eq!(j["status"], "INIT", "{j}");
    assert_eq!(j["end_time"], "");
    let img = tc.image("region-one");
    let st = tc
        .http
        .delete(format!("{img}/v2/images/{src}"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 204);
    // Run the job with a worker of our own.
    let region = tc.cloud.regions[0].clone();
    let runner = std::sync::Arc::new(glimpse_core::jobs::Runner::new(
        region.db.clone(),
        region.jobs.clone(),
        vec![std::sync::Arc::new(glimpse_core::ims::CopyHandler::new(
            region.clone(),
        ))],
        glimpse_core::jobs::RunnerConfig {
            workers: 1,
            ..Default::default()
        },
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    runner.spawn(stop.clone());
    let done = common::ims::wait(&tc.http, &tc.base, &tok, &id).await;
    stop.cancel();
    assert_eq!(done["status"], "FAIL", "{done}");
    assert_eq!(done["error_code"], "IMG.0066");
    assert!(
        done["fail_reason"].as_str().unwrap().contains("deleted"),
        "{done}"
    );
    let list: Value = tc
        .http
        .get(format!("{img}/v2/images?name=late"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["images"].as_array().unwrap().len(),
        0,
        "no half-made image: {list}"
    );
}

#[tokio::test]
async fn the_encryption_marks_are_the_service_s_alone() {
    let tc = TestCloud::start().await;
    let (pid, tok, src, data) = setup(&tc, 4096).await;
    let img = tc.image("region-one");
    let r = tc
        .http
        .post(format!("{img}/v2/images"))
        .header("x-auth-token", &tok)
        .json(&json!({"name": "fake", "__system__encrypted": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let key = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    let enc = done["entities"]["image_id"].as_str().unwrap();
    for patch in [
        r#"[{"op":"remove","path":"/__system__encrypted"}]"#,
        r#"[{"op":"replace","path":"/__system__cmkid","value":"x"}]"#,
    ] {
        let r = tc
            .http
            .patch(format!("{img}/v2/images/{enc}"))
            .header("x-auth-token", &tok)
            .header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(patch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{patch}");
    }
    assert_eq!(download(&tc.http, &img, &tok, enc).await.1, data);
}

/// A volume made from an encrypted copy holds the plaintext; uploading it back makes an image
/// stored in the clear, which must not inherit the copy's encryption marks.
#[tokio::test]
async fn a_volume_of_an_encrypted_copy_uploads_as_a_plain_image() {
    if !common::nova::qemu_present() {
        return;
    }
    let tc = TestCloud::start().await;
    let (pid, tok, src, data) = setup(&tc, 1 << 20).await;
    let key = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let done = copy_and_wait(
        &tc.http,
        &tc.base,
        &tok,
        &src,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let c = common::cinder::Cinder::new(&tc, "region-one", &pid, &tok);
    let (s, v) = c
        .call(
            reqwest::Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "name": "from-enc", "imageRef": enc}})),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_string();
    c.wait(&vol, "available").await;
    let (s, v) = c
        .action(
            &vol,
            json!({"os-volume_upload_image": {"container_format": "bare", "disk_format": "raw",
                "image_name": "back", "force": false}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let back = v["os-volume_upload_image"]["image_id"]
        .as_str()
        .unwrap()
        .to_string();
    let img = tc.image("region-one");
    let shown = common::cinder::wait_image(&tc.http, &img, &tok, &back, "active").await;
    assert!(shown.get("__system__encrypted").is_none(), "{shown}");
    assert!(shown.get("__system__cmkid").is_none(), "{shown}");
    let (st, got) = download(&tc.http, &img, &tok, &back).await;
    assert_eq!(st, 200);
    assert_eq!(
        &got[..data.len()],
        &data[..],
        "the volume holds the plaintext"
    );
}

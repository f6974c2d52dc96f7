//! Huawei IMS in-region copy (seed 003) end to end: copies with and without a customer key,
//! job query in both forms, every validation error, isolation between projects, disabled
//! keys, tampered blobs, and deleting either image of a shared copy.

use crate::common;

use common::TestCloud;
use common::glance::{create_bare, create_image, download, sha512_hex, show, upload};
use common::ims::{Ims, assert_ims_error, assert_kms_error, marked_data, send};
use reqwest::Method;
use serde_json::{Value, json};

const MARKER: &[u8] = b"PLAINTEXT-MARKER-glimpse-ims-0123456789";

/// A member's project with an uploaded raw image; returns its IMS client (token and project
/// of that member), the image id and its data.
async fn setup(tc: &TestCloud, n: usize) -> (Ims, String, Vec<u8>) {
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let img = tc.image("region-one");
    let id = create_bare(&tc.http, &img, &tok, "src", "raw").await;
    let data = marked_data(n, MARKER);
    assert_eq!(upload(&tc.http, &img, &tok, &id, data.clone()).await.0, 204);
    (Ims::new(tc, "region-one", &tok, &pid), id, data)
}

/// A new cloud and [`setup`] in it.
async fn cloud_and_source(n: usize) -> (TestCloud, Ims, String, Vec<u8>) {
    let tc = TestCloud::start().await;
    let (ims, src, data) = setup(&tc, n).await;
    (tc, ims, src, data)
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

/// `DELETE /v2/images/{id}` in region-one; returns the status.
async fn delete_image(tc: &TestCloud, tok: &str, id: &str) -> u16 {
    let url = format!("{}/v2/images/{id}", tc.image("region-one"));
    let r = tc.http.delete(url).header("x-auth-token", tok);
    r.send().await.unwrap().status().as_u16()
}

/// A Glance JSON patch (`application/openstack-images-v2.1-json-patch`); returns the status.
async fn patch_image(tc: &TestCloud, tok: &str, id: &str, patch: &str) -> u16 {
    let url = format!("{}/v2/images/{id}", tc.image("region-one"));
    let r = tc
        .http
        .patch(url)
        .header("x-auth-token", tok)
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(patch.to_string());
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn plain_copy_shares_the_bytes_and_survives_either_delete() {
    let (tc, ims, src, data) = cloud_and_source(3 << 20).await;
    let tok = &ims.token;
    let img = tc.image("region-one");
    let done = ims
        .copy_and_wait(&src, json!({"name": "copy-1", "description": "test copy"}))
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
    let c = show(&tc.http, &img, tok, &copy_id).await;
    let s = show(&tc.http, &img, tok, &src).await;
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
    let (st, got) = download(&tc.http, &img, tok, &copy_id).await;
    assert_eq!(st, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));

    // Shared blob: deleting the source keeps the copy whole, and the reverse in a second pair.
    let src_blob = blob_path(&tc, &src).await;
    assert_eq!(delete_image(&tc, tok, &src).await, 204);
    if let Some(p) = &src_blob {
        assert!(p.exists(), "the shared blob stays while the copy names it");
    }
    let (st, got) = download(&tc.http, &img, tok, &copy_id).await;
    assert_eq!((st, sha512_hex(&got)), (200, sha512_hex(&data)));
    assert_eq!(delete_image(&tc, tok, &copy_id).await, 204);
    if let Some(p) = &src_blob {
        assert!(!p.exists(), "the last image's delete removes the blob");
    }

    let (ims2, src2, data2) = setup(&tc, 1 << 20).await;
    let done = ims2.copy_and_wait(&src2, json!({"name": "copy-2"})).await;
    let copy2 = done["entities"]["image_id"].as_str().unwrap().to_string();
    assert_eq!(delete_image(&tc, &ims2.token, &copy2).await, 204);
    let (st, got) = download(&tc.http, &img, &ims2.token, &src2).await;
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
    let (st, _) = download(&tc.http, &img, &ims2.token, &src2).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn encrypted_copy_round_trips_and_stores_no_plaintext() {
    let (tc, ims, src, data) = cloud_and_source((2 << 20) + 12345).await;
    let (tok, kms) = (&ims.token, ims.kms());
    let img = tc.image("region-one");
    let key = kms.create_key().await;
    let done = ims
        .copy_and_wait(&src, json!({"name": "enc", "cmk_id": key}))
        .await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    assert_eq!(done["entities"]["process_percent"], 100.0);
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let c = show(&tc.http, &img, tok, &enc).await;
    let s = show(&tc.http, &img, tok, &src).await;
    assert_eq!(c["__system__encrypted"], "1");
    assert_eq!(c["__system__cmkid"], key.as_str());
    assert_eq!(c["checksum"], s["checksum"]);
    assert_eq!(c["os_hash_value"], s["os_hash_value"]);
    assert_eq!(c["size"], s["size"]);
    let (st, got) = download(&tc.http, &img, tok, &enc).await;
    assert_eq!(st, 200);
    assert_eq!(got, data);

    // A ranged read across a chunk boundary.
    let r = tc
        .http
        .get(format!("{img}/v2/images/{enc}/file"))
        .header("x-auth-token", tok)
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
    let again = ims.copy_and_wait(&enc, json!({"name": "enc-again"})).await;
    assert_eq!(again["status"], "SUCCESS", "{again}");
    let again_id = again["entities"]["image_id"].as_str().unwrap();
    let a = show(&tc.http, &img, tok, again_id).await;
    assert_eq!(a["__system__encrypted"], "1");
    assert_eq!(a["__system__cmkid"], key.as_str());
    assert_eq!(download(&tc.http, &img, tok, again_id).await.1, data);

    // Re-keying an encrypted image with another key.
    let key2 = kms.create_key().await;
    let rk = ims.sealed_copy(&enc, "rekeyed", &key2).await;
    assert_eq!(
        show(&tc.http, &img, tok, &rk).await["__system__cmkid"],
        key2.as_str()
    );
    assert_eq!(download(&tc.http, &img, tok, &rk).await.1, data);

    // Disabled key: downloads and copies refused; enabled again: fine.
    let (s, v) = kms.disable(&key).await;
    assert_eq!(
        (s, v["key_info"]["key_state"].as_str()),
        (200, Some("3")),
        "{v}"
    );
    assert_eq!(download(&tc.http, &img, tok, &enc).await.0, 403);
    let refused = ims.copy(&enc, json!({"name": "x"})).await;
    assert_ims_error(&refused, 400, "IMG.0065");
    let refused = ims.copy(&src, json!({"name": "x", "cmk_id": key})).await;
    assert_ims_error(&refused, 400, "IMG.0065");
    assert_eq!(kms.enable(&key).await.0, 200);
    assert_eq!(download(&tc.http, &img, tok, &enc).await.1, data);

    // Scheduled deletion: unusable too.
    let (s, v) = kms.schedule_deletion(&key, "7").await;
    assert_eq!((s, v["key_state"].as_str()), (200, Some("4")), "{v}");
    assert_eq!(download(&tc.http, &img, tok, &enc).await.0, 403);
    let (s, v) = kms.cancel_deletion(&key).await;
    assert_eq!((s, v["key_state"].as_str()), (200, Some("3")), "{v}");
}

#[tokio::test]
async fn tampered_or_truncated_blobs_never_return_wrong_bytes() {
    let tc = TestCloud::start().await;
    if !tc.cloud.regions[0].store.url().starts_with("file://") {
        return; // needs the blob file
    }
    let (ims, src, data) = setup(&tc, (3 << 20) + 7).await;
    let tok = &ims.token;
    let img = tc.image("region-one");
    let key = ims.kms().create_key().await;
    let enc = ims.sealed_copy(&src, "enc", &key).await;
    let path = blob_path(&tc, &enc).await.unwrap();
    let original = std::fs::read(&path).unwrap();

    let fetch = async |tc: &TestCloud| -> (u16, Result<Vec<u8>, String>) {
        let r = common::http::get(&tc.http, format!("{img}/v2/images/{enc}/file"), tok).await;
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

/// A copy body named "ok" with one more field.
fn ok_with(field: &str, value: Value) -> Value {
    json!({"name": "ok", field: value})
}

/// A well-formed key id that no key has.
const UNKNOWN_KEY: &str = "bd66288c-9081-460a-8227-4cbd0c814cb4";

#[tokio::test]
async fn every_validation_error_of_the_seed() {
    let (tc, ims, src, _) = cloud_and_source(4096).await;
    let tok = &ims.token;
    let img = tc.image("region-one");
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 400, "IMG.0001"),
        (json!({"name": ""}), 400, "IMG.0001"),
        (json!({"name": 5}), 400, "IMG.0001"),
        (json!({"name": "x".repeat(129)}), 400, "IMG.0002"),
        (json!({"name": "bad/name"}), 400, "IMG.0002"),
        (
            ok_with("description", json!("d".repeat(1025))),
            400,
            "IMG.0004",
        ),
        (ok_with("description", json!("a\rb")), 400, "IMG.0004"),
        (ok_with("description", json!("<script>")), 400, "IMG.0004"),
        (ok_with("cmk_id", json!("not-a-key")), 400, "IMG.0001"),
        (ok_with("cmk_id", json!(UNKNOWN_KEY)), 404, "IMG.0064"),
    ];
    for (body, status, code) in cases {
        let (s, v) = ims.copy(&src, body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let copy_path = format!("/v1/cloudimages/{src}/copy");
    let not_json = ims.request(Method::POST, &copy_path).body("{not json");
    assert_ims_error(&send(not_json).await, 400, "IMG.0001");
    // 401 without a token, 404 for an unknown image.
    let no_token = ims
        .anonymous(Method::POST, &copy_path)
        .json(&json!({"name": "x"}));
    assert_ims_error(&send(no_token).await, 401, "IMG.0401");
    let unknown = ims
        .copy("3c1f8ac8-7d6a-4b5e-9a1e-2f0d9c8b7a65", json!({"name": "x"}))
        .await;
    assert_ims_error(&unknown, 404, "IMG.0404");
    // Not active (queued), ISO, whole-server images.
    let queued = create_bare(&tc.http, &img, tok, "q", "raw").await;
    let refused = ims.copy(&queued, json!({"name": "x"})).await;
    assert_ims_error(&refused, 400, "IMG.0061");
    // Made from an ISO file (Huawei marks it with __image_source_type) or an ISO itself.
    let iso = create_image(
        &tc.http,
        &img,
        tok,
        json!({"name": "iso", "disk_format": "raw", "container_format": "bare", "__image_source_type": "iso"}),
    )
    .await;
    assert_eq!(
        upload(&tc.http, &img, tok, &iso, vec![1u8; 4096]).await.0,
        204
    );
    let whole = create_image(&tc.http, &img, tok, json!({"name": "w", "disk_format": "raw", "container_format": "bare", "__whole_image": "true"})).await;
    assert_eq!(
        upload(&tc.http, &img, tok, &whole, vec![7u8; 4096]).await.0,
        204
    );
    let refused = ims.copy(&whole, json!({"name": "x"})).await;
    assert_ims_error(&refused, 400, "IMG.0063");
    let refused = ims.copy(&iso, json!({"name": "x"})).await;
    assert_ims_error(&refused, 400, "IMG.0062");
    // A reader may not copy.
    let reader = Ims {
        token: common::nova::reader_of(&tc, &ims.project).await,
        ..ims.clone()
    };
    let refused = reader.copy(&src, json!({"name": "x"})).await;
    assert_ims_error(&refused, 403, "IMG.0403");
    // Unknown path: IMS dialect 404.
    let unknown = send(ims.request(Method::GET, "/v1/nothing")).await;
    assert_ims_error(&unknown, 404, "IMG.0404");
}

#[tokio::test]
async fn projects_are_isolated() {
    let (tc, a, src_a, _) = cloud_and_source(8192).await;
    let (b, src_b, _) = setup(&tc, 8192).await;
    let img = tc.image("region-one");
    let key_a = a.kms().create_key().await;

    // B cannot see A's image (404), nor use A's key (404), nor see A's key (404).
    let (s, v) = b.copy(&src_a, json!({"name": "x"})).await;
    assert_eq!(s, 404, "{v}");
    let refused = b.copy(&src_b, json!({"name": "x", "cmk_id": key_a})).await;
    assert_ims_error(&refused, 404, "IMG.0064");
    assert_kms_error(&b.kms().describe(&key_a).await, 404, "KMS.0207");
    let (s, v) = b.kms().disable(&key_a).await;
    assert_eq!(s, 404, "{v}");
    let b_in_a = Ims {
        project: a.project.clone(),
        ..b.clone()
    };
    let (s, v) = b_in_a.kms().list(json!({})).await;
    assert_eq!(s, 403, "{v}");

    // A's job is invisible to B in both forms; A sees it in both.
    let job_id = a
        .start_copy(&src_a, json!({"name": "mine", "cmk_id": key_a}))
        .await;
    assert_eq!(b.job(&job_id).await.0, 404);
    assert_eq!(b.project_job(&job_id).await.0, 404);
    assert_eq!(b_in_a.project_job(&job_id).await.0, 404);
    let done = a.wait(&job_id).await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    let (s, v) = a.project_job(&job_id).await;
    assert_eq!(s, 200);
    assert_eq!(v["job_id"], job_id.as_str());

    // A shares the encrypted copy with B: B sees it but may not read it (403).
    let enc = done["entities"]["image_id"].as_str().unwrap().to_string();
    let shared = r#"[{"op":"replace","path":"/visibility","value":"shared"}]"#;
    assert_eq!(patch_image(&tc, &a.token, &enc, shared).await, 200);
    let r = tc
        .http
        .post(format!("{img}/v2/images/{enc}/members"))
        .header("x-auth-token", &a.token)
        .json(&json!({"member": b.project}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(download(&tc.http, &img, &b.token, &enc).await.0, 403);
    let refused = b.copy(&enc, json!({"name": "steal"})).await;
    assert_ims_error(&refused, 403, "IMG.0065");
}

#[tokio::test]
async fn encrypted_images_are_not_replicated() {
    let (tc, ims, src, _) = cloud_and_source(4096).await;
    let key = ims.kms().create_key().await;
    let enc = ims.sealed_copy(&src, "enc", &key).await;
    let r = tc
        .http
        .post(format!(
            "{}/v2/extension/image_replicator/jobs",
            tc.image("region-one")
        ))
        .header("x-auth-token", &ims.token)
        .header("content-type", "application/json")
        .body(json!({"image_id": enc, "tenant_id_dst": ims.project}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("encrypted"));
}

/// How many images named `name` the caller sees in region-one.
async fn images_named(tc: &TestCloud, ims: &Ims, name: &str) -> usize {
    let image = tc.image("region-one");
    let list = common::glance::images_named(&tc.http, &image, &ims.token, name).await;
    list["images"].as_array().unwrap().len()
}

/// Runs region-one's copy jobs with a worker of the test's own (the cloud was started with
/// none, so a test can change things between the request and the run) until job `id` ends.
async fn run_to_end(tc: &TestCloud, ims: &Ims, id: &str) -> Value {
    let region = tc.cloud.regions[0].clone();
    let runner = std::sync::Arc::new(glimpse_core::jobs::Runner::new(
        region.db.clone(),
        region.jobs.clone(),
        glimpse_core::jobs::Registry::default().register(std::sync::Arc::new(
            glimpse_core::ims::CopyHandler::new(region.clone()),
        )),
        glimpse_core::jobs::RunnerConfig {
            workers: 1,
            ..Default::default()
        },
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    runner.spawn(stop.clone());
    let done = ims.wait(id).await;
    stop.cancel();
    done
}

/// The customer key is disabled between the accepted request and the run: the job fails
/// with a reason and leaves no image and no blob.
#[tokio::test]
async fn a_key_disabled_before_the_copy_runs_fails_the_job_cleanly() {
    let tc = TestCloud::start_with(|c| c.regions[0].jobs.workers = 0).await;
    let (ims, src, _) = setup(&tc, 4096).await;
    let key = ims.kms().create_key().await;
    let id = ims
        .start_copy(&src, json!({"name": "late-key", "cmk_id": key}))
        .await;
    let blobs_before = tc.cloud.regions[0].store.list().await.unwrap().len();
    let (s, _) = ims.kms().disable(&key).await;
    assert_eq!(s, 200);
    let done = run_to_end(&tc, &ims, &id).await;
    assert_eq!(done["status"], "FAIL", "{done}");
    assert!(
        done["fail_reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{done}"
    );
    assert_eq!(images_named(&tc, &ims, "late-key").await, 0, "no image");
    assert_eq!(
        tc.cloud.regions[0].store.list().await.unwrap().len(),
        blobs_before,
        "no sealed blob left"
    );
}

#[tokio::test]
async fn a_source_deleted_before_the_copy_runs_fails_the_job_cleanly() {
    let tc = TestCloud::start_with(|c| c.regions[0].jobs.workers = 0).await;
    let (ims, src, _) = setup(&tc, 4096).await;
    let id = ims.start_copy(&src, json!({"name": "late"})).await;
    let (_, j) = ims.job(&id).await;
    assert_eq!(j["status"], "INIT", "{j}");
    assert_eq!(j["end_time"], "");
    assert_eq!(delete_image(&tc, &ims.token, &src).await, 204);
    let done = run_to_end(&tc, &ims, &id).await;
    assert_eq!(done["status"], "FAIL", "{done}");
    assert_eq!(done["error_code"], "IMG.0066");
    assert!(
        done["fail_reason"].as_str().unwrap().contains("deleted"),
        "{done}"
    );
    assert_eq!(
        images_named(&tc, &ims, "late").await,
        0,
        "no half-made image"
    );
}

#[tokio::test]
async fn the_encryption_marks_are_the_service_s_alone() {
    let (tc, ims, src, data) = cloud_and_source(4096).await;
    let tok = &ims.token;
    let img = tc.image("region-one");
    let r = tc
        .http
        .post(format!("{img}/v2/images"))
        .header("x-auth-token", tok)
        .json(&json!({"name": "fake", "__system__encrypted": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let key = ims.kms().create_key().await;
    let enc = ims.sealed_copy(&src, "enc", &key).await;
    for patch in [
        r#"[{"op":"remove","path":"/__system__encrypted"}]"#,
        r#"[{"op":"replace","path":"/__system__cmkid","value":"x"}]"#,
    ] {
        assert_eq!(patch_image(&tc, tok, &enc, patch).await, 403, "{patch}");
    }
    assert_eq!(download(&tc.http, &img, tok, &enc).await.1, data);
}

/// A volume made from an encrypted copy holds the plaintext; uploading it back makes an image
/// stored in the clear, which must not inherit the copy's encryption marks.
#[tokio::test]
async fn a_volume_of_an_encrypted_copy_uploads_as_a_plain_image() {
    if !common::nova::qemu_present() {
        return;
    }
    let (tc, ims, src, data) = cloud_and_source(1 << 20).await;
    let tok = &ims.token;
    let key = ims.kms().create_key().await;
    let enc = ims.sealed_copy(&src, "enc", &key).await;
    let c = common::cinder::Cinder::new(&tc, "region-one", &ims.project, tok);
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
    let back = common::cinder::upload_image_id(&v);
    let img = tc.image("region-one");
    let shown = common::cinder::wait_image(&tc.http, &img, tok, &back, "active").await;
    assert!(shown.get("__system__encrypted").is_none(), "{shown}");
    assert!(shown.get("__system__cmkid").is_none(), "{shown}");
    let (st, got) = download(&tc.http, &img, tok, &back).await;
    assert_eq!(st, 200);
    assert_eq!(
        &got[..data.len()],
        &data[..],
        "the volume holds the plaintext"
    );
}

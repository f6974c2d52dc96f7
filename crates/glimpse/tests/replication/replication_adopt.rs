//! A copy to a region that already holds the same content moves no bytes (issue 4): the
//! replicate job asks the destination to adopt its own blob
//! (`POST /v2/extension/image_replicator/adopt`, service account only). Two regions in this
//! process; bytes moved are seen in region-two's blob store (no new blob file). Also: the
//! replication upload (service account, both digests) verifies sha512 and takes the md5 as stated.

use crate::common;

use std::time::Duration;

use common::replication::{self as rep, ONE, TWO, active_image, world};
use common::{TestCloud, glance};
use serde_json::{Value, json};

/// The blob keys of a region's store, sorted.
async fn blobs(tc: &TestCloud, region: &str) -> Vec<String> {
    let mut keys = tc.blob_keys(region).await;
    keys.sort();
    keys
}

async fn delete(tc: &TestCloud, region: &str, token: &str, id: &str) {
    let status = rep::delete_image(tc, region, token, id).await;
    assert_eq!(status, 204, "delete {id}");
}

async fn sha512_of(tc: &TestCloud, region: &str, token: &str, id: &str) -> String {
    let (status, bytes) = glance::download(&tc.http, &tc.image(region), token, id).await;
    assert_eq!(status, 200, "download {id}");
    glance::sha512_hex(&bytes)
}

async fn adopt_call(tc: &TestCloud, token: Option<&str>, body: Value) -> rep::Resp {
    let mut rb = tc
        .http
        .post(format!("{}/image_replicator/adopt", rep::ext(tc, TWO)))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    rep::read(rb.send().await.unwrap()).await
}

#[tokio::test]
async fn content_the_destination_holds_is_adopted_not_copied() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let bytes = rep::data(2 * 1024 * 1024 + 5, 41);
    let want = glance::sha512_hex(&bytes);
    let src = active_image(&tc, ONE, &w.tok_a, json!({}), bytes.clone()).await;
    // Another project of region-two already holds the same bytes.
    let (_c, tok_c) = tc.user_in_new_project("member", TWO).await;
    let theirs = active_image(&tc, TWO, &tok_c, json!({}), bytes.clone()).await;
    let before = blobs(&tc, TWO).await;

    let job1 = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let done1 = rep::wait_for(&tc, ONE, &w.tok_a, &job1, &["replicated"]).await;
    assert_eq!(done1["copy_progress"], 100);
    let job2 = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let done2 = rep::wait_for(&tc, ONE, &w.tok_a, &job2, &["replicated"]).await;
    let dst1 = done1["destination_image_id"].as_str().unwrap().to_string();
    let dst2 = done2["destination_image_id"].as_str().unwrap().to_string();
    assert_ne!(dst1, dst2);

    // No byte was stored: region-two's store holds exactly the blob it held before.
    assert_eq!(blobs(&tc, TWO).await, before);
    let orig = glance::show(&tc.http, &tc.image(ONE), &w.tok_a, &src).await;
    for dst in [&dst1, &dst2] {
        let img = glance::show(&tc.http, &tc.image(TWO), &w.tok_b, dst).await;
        assert_eq!(img["status"], "active");
        assert_eq!(img["owner"], w.b.as_str());
        for k in ["checksum", "os_hash_value", "size", "disk_format"] {
            assert_eq!(img[k], orig[k], "{k}");
        }
        assert_eq!(sha512_of(&tc, TWO, &w.tok_b, dst).await, want);
    }
    // The tenant whose image was adopted still sees only its own image.
    let listed = tc.image_list(TWO, &tok_c).await;
    let ids = common::http::strings(&listed["images"], "id");
    assert_eq!(ids, vec![theirs.as_str()]);

    // Deleting either image keeps the others readable; the blob goes with the last one.
    delete(&tc, TWO, &tok_c, &theirs).await;
    assert_eq!(sha512_of(&tc, TWO, &w.tok_b, &dst1).await, want);
    assert_eq!(blobs(&tc, TWO).await, before);
    delete(&tc, TWO, &w.tok_b, &dst1).await;
    assert_eq!(sha512_of(&tc, TWO, &w.tok_b, &dst2).await, want);
    assert_eq!(blobs(&tc, TWO).await, before);
    delete(&tc, TWO, &w.tok_b, &dst2).await;
    let after = blobs(&tc, TWO).await;
    assert!(
        before.iter().all(|k| !after.contains(k)),
        "{before:?} {after:?}"
    );
    // The source is untouched.
    assert_eq!(sha512_of(&tc, ONE, &w.tok_a, &src).await, want);
}

#[tokio::test]
async fn only_the_service_account_may_ask_for_adoption() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let bytes = rep::data(64 * 1024, 42);
    let digests = glimpse_store::hashing::digest_bytes(&bytes);
    let (_c, tok_c) = tc.user_in_new_project("member", TWO).await;
    active_image(&tc, TWO, &tok_c, json!({}), bytes.clone()).await;
    // b's own queued image, with formats set: a tenant asking would learn whether anyone in
    // the region holds these bytes.
    let queued = glance::create_image(
        &tc.http,
        &tc.image(TWO),
        &w.tok_b,
        json!({"name": "probe", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let body = json!({"image_id": queued, "size": bytes.len(), "checksum": digests.md5,
        "os_hash_value": digests.sha512});
    let admin = tc.admin_token().await;
    for token in [&w.tok_b, &tok_c, &admin] {
        let r = adopt_call(&tc, Some(token), body.clone()).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.header("content-type"), "text/plain; charset=UTF-8");
        assert!(r.text.starts_with("403 Forbidden\n\n"), "{}", r.text);
    }
    let r = adopt_call(&tc, None, body.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // Still queued, no data.
    let img = glance::show(&tc.http, &tc.image(TWO), &w.tok_b, &queued).await;
    assert_eq!(img["status"], "queued");

    // The service account may; bad bodies are 400, unknown images 404.
    let svc = tc.cloud.regions[0].service.token().await.unwrap().token;
    let r = adopt_call(&tc, Some(&svc), json!({"image_id": queued, "size": "x"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let mut short = body.clone();
    short["os_hash_value"] = json!("abc");
    let r = adopt_call(&tc, Some(&svc), short).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let mut unknown = body.clone();
    unknown["image_id"] = json!(uuid::Uuid::new_v4().to_string());
    let r = adopt_call(&tc, Some(&svc), unknown).await;
    assert_eq!(r.status, 404, "{}", r.text);
    // A wrong size matches nothing.
    let mut other = body.clone();
    other["size"] = json!(bytes.len() + 1);
    let r = adopt_call(&tc, Some(&svc), other).await;
    assert_eq!((r.status, r.json()), (200, json!({"adopted": false})));
    let r = adopt_call(&tc, Some(&svc), body.clone()).await;
    assert_eq!((r.status, r.json()), (200, json!({"adopted": true})));
    assert_eq!(sha512_of(&tc, TWO, &w.tok_b, &queued).await, digests.sha512);
    // Asked again: the image is no longer queued.
    let r = adopt_call(&tc, Some(&svc), body).await;
    assert_eq!((r.status, r.json()), (200, json!({"adopted": false})));
}

/// `POST /<region>/…` as JSON; status and body.
async fn post(tc: &TestCloud, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = tc
        .http
        .post(format!("{}/{path}", tc.base))
        .header("x-auth-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn encrypted_content_is_never_adopted() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let bytes = rep::data(300_000, 43);
    let want = glance::sha512_hex(&bytes);
    let src = active_image(&tc, ONE, &w.tok_a, json!({}), bytes.clone()).await;
    // Region-two holds the bytes only sealed: an encrypted IMS copy of a plain image, whose
    // plain original is then deleted.
    let (c, tok_c) = tc.user_in_new_project("member", TWO).await;
    let plain = active_image(&tc, TWO, &tok_c, json!({}), bytes.clone()).await;
    let (s, v) = post(
        &tc,
        &format!("{TWO}/kms/v1.0/{c}/kms/create-key"),
        &tok_c,
        json!({"key_alias": "adopt-test"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let key = v["key_info"]["key_id"].as_str().unwrap().to_string();
    let (s, v) = post(
        &tc,
        &format!("{TWO}/ims/v1/cloudimages/{plain}/copy"),
        &tok_c,
        json!({"name": "enc", "cmk_id": key}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ims_job = v["job_id"].as_str().unwrap().to_string();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut done = Value::Null;
    for _ in 0..3000 {
        tick.tick().await;
        let r = common::http::get(
            &tc.http,
            format!("{}/{TWO}/ims/v1/cloudimages/job/{ims_job}", tc.base),
            &tok_c,
        )
        .await;
        done = r.json().await.unwrap();
        if done["status"] == "SUCCESS" || done["status"] == "FAIL" {
            break;
        }
    }
    assert_eq!(done["status"], "SUCCESS", "{done}");
    delete(&tc, TWO, &tok_c, &plain).await;
    let before = blobs(&tc, TWO).await;
    assert_eq!(before.len(), 1, "only the sealed blob: {before:?}");

    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    let dst = done["destination_image_id"].as_str().unwrap();
    // The bytes were streamed into a new (plain) blob.
    let after = blobs(&tc, TWO).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(sha512_of(&tc, TWO, &w.tok_b, dst).await, want);
}

/// `PUT /file` with both expected digests; status and body.
async fn put_expecting(
    tc: &TestCloud,
    token: &str,
    id: &str,
    data: &[u8],
    md5: &str,
    sha: &str,
) -> (u16, String) {
    let r = tc
        .http
        .put(format!("{}/v2/images/{id}/file", tc.image(TWO)))
        .header("x-auth-token", token)
        .header("content-type", "application/octet-stream")
        .header("x-glimpse-expected-checksum", md5)
        .header("x-glimpse-expected-os-hash-value", sha)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The replication upload (the service account, both digests given) computes sha512 only:
/// a wrong sha512 is refused as before; the md5 is the stated one, not recomputed (equal
/// sha512 proves the source's bytes, hence the source's md5; docs/replication.md). A
/// tenant's upload still computes md5 and refuses a wrong one.
#[tokio::test]
async fn the_service_upload_verifies_sha512_and_takes_the_stated_md5() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let data = rep::data(200_000, 44);
    let (md5, sha) = (glance::md5_hex(&data), glance::sha512_hex(&data));
    let svc = tc.cloud.regions[0].service.token().await.unwrap().token;
    let image = tc.image(TWO);
    let queued = || glance::create_bare(&tc.http, &image, &w.tok_b, "verify", "raw");

    let id = queued().await;
    let mut bad_sha = sha.clone();
    bad_sha.replace_range(0..1, if sha.starts_with('0') { "1" } else { "0" });
    let (status, body) = put_expecting(&tc, &svc, &id, &data, &md5, &bad_sha).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("os_hash_value"), "{body}");
    assert_eq!(
        glance::show(&tc.http, &image, &w.tok_b, &id).await["status"],
        "queued"
    );

    let wrong_md5 = "0".repeat(32);
    let (status, body) = put_expecting(&tc, &w.tok_b, &id, &data, &wrong_md5, &sha).await;
    assert_eq!(status, 400, "a tenant's md5 is computed: {body}");
    assert!(body.contains("checksum"), "{body}");

    let (status, body) = put_expecting(&tc, &svc, &id, &data, &md5, &sha).await;
    assert_eq!(status, 204, "{body}");
    let img = glance::show(&tc.http, &image, &w.tok_b, &id).await;
    assert_eq!(
        (img["checksum"].as_str(), img["os_hash_value"].as_str()),
        (Some(md5.as_str()), Some(sha.as_str()))
    );

    // Pinned on purpose: the service's stated md5 is not recomputed.
    let id = queued().await;
    let (status, body) = put_expecting(&tc, &svc, &id, &data, &wrong_md5, &sha).await;
    assert_eq!(status, 204, "{body}");
    let img = glance::show(&tc.http, &image, &w.tok_b, &id).await;
    assert_eq!(img["checksum"], wrong_md5.as_str());
}

/// Adoption racing the delete of the image whose blob it shares: whichever wins, an adopted
/// image is readable (its blob was kept), and a refused one stays `queued`.
#[tokio::test]
async fn adoption_racing_a_delete_never_loses_the_blob() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let (_c, tok_c) = tc.user_in_new_project("member", TWO).await;
    let svc = tc.cloud.regions[0].service.token().await.unwrap().token;
    let image = tc.image(TWO);
    let (mut adopted, mut refused) = (0, 0);
    for round in 0..20u64 {
        let bytes = rep::data(8192 + round as usize, 100 + round);
        let d = glimpse_store::hashing::digest_bytes(&bytes);
        let theirs = active_image(&tc, TWO, &tok_c, json!({}), bytes.clone()).await;
        let queued = glance::create_bare(&tc.http, &image, &w.tok_b, "race", "raw").await;
        let body = json!({"image_id": queued, "size": bytes.len(), "checksum": d.md5,
            "os_hash_value": d.sha512});
        let (r, ()) = tokio::join!(
            adopt_call(&tc, Some(&svc), body),
            delete(&tc, TWO, &tok_c, &theirs)
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let img = glance::show(&tc.http, &image, &w.tok_b, &queued).await;
        if r.json()["adopted"] == true {
            adopted += 1;
            assert_eq!(img["status"], "active");
            assert_eq!(sha512_of(&tc, TWO, &w.tok_b, &queued).await, d.sha512);
        } else {
            refused += 1;
            assert_eq!(img["status"], "queued");
        }
    }
    assert_eq!(adopted + refused, 20);
}

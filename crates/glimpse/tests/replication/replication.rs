//! The image replicator extension end to end (seeds 000 and 001), over HTTP against a whole
//! cloud (identity + region-one + region-two) in this process: replicate across regions and
//! within one, the seed's list and show fields, every error of the seeds' tables, cancel in
//! the middle of a copy (held deterministically by a pause point, see
//! `glimpse_core::replication::pause`), idempotency keys, and tenant isolation.

use crate::common;

use common::replication::{self as rep, ONE, Resp, TWO, World, active_image, world};
use common::{TestCloud, glance};
use glimpse_core::jobs::NewJob;
use glimpse_core::replication::{ReplicateHandler, pause};
use serde_json::{Value, json};

const FIELDS: [&str; 10] = [
    "copy_progress",
    "destination_image_id",
    "destination_region_id",
    "destination_tenant_id",
    "job_id",
    "source_image_id",
    "source_image_name",
    "source_region_id",
    "source_tenant_id",
    "status",
];

fn assert_text_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.header("content-type"), "text/plain; charset=UTF-8");
    let line = match status {
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        409 => "409 Conflict",
        _ => panic!("status {status}"),
    };
    assert!(r.text.starts_with(&format!("{line}\n\n")), "{:?}", r.text);
    assert!(r.text.contains(message), "{:?} lacks {message:?}", r.text);
}

/// A license switch type the seed lists.
const WINDOWS_LICENSE: &str = "WindowsServer_2012R2_Standard_64bit_ComLicense";

/// Submits a copy into `tenant` of a new 10-byte active image (region-one, `w.tok_a`) with
/// the properties `props` and the bytes of `seed`.
async fn submit_small(
    tc: &TestCloud,
    w: &World,
    props: &[(&str, &str)],
    seed: u64,
    tenant: &str,
) -> Resp {
    let props = props.iter().map(|(k, v)| (k.to_string(), json!(v)));
    let props = Value::Object(props.collect());
    let id = active_image(tc, ONE, &w.tok_a, props, rep::data(10, seed)).await;
    rep::submit_copy(tc, ONE, &w.tok_a, &id, tenant).await
}

/// `GET` of `path` under region-one's replicator extension, read whole.
async fn get_ext(tc: &TestCloud, token: &str, path: &str) -> Resp {
    let url = format!("{}{path}", rep::ext(tc, ONE));
    rep::read(common::http::get(&tc.http, url, token).await).await
}

/// `POST` of a raw `body` to region-one's jobs with `token` and, if given, that
/// Content-Type; read whole.
async fn post_raw(tc: &TestCloud, token: &str, content_type: Option<&str>, body: String) -> Resp {
    let url = format!("{}/image_replicator/jobs", rep::ext(tc, ONE));
    let mut rb = tc.http.post(url).header("x-auth-token", token).body(body);
    if let Some(t) = content_type {
        rb = rb.header("content-type", t);
    }
    rep::read(rb.send().await.unwrap()).await
}

#[tokio::test]
async fn replicates_to_another_region_with_the_seed_fields() {
    let (tc, w, bytes, src) =
        rep::cloud_with_image(json!({"os_distro": "ubuntu"}), 3 * 1024 * 1024 + 17, 1).await;

    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &src, &w.b).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/json; charset=UTF-8");
    let job = r.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(r.text, format!("{{\"job_id\": \"{job}\"}}"));
    assert!(uuid::Uuid::try_parse(&job).is_ok());

    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    let dst = done["destination_image_id"]
        .as_str()
        .expect("destination id")
        .to_string();
    assert_eq!(
        done,
        json!({
            "copy_progress": 100, "destination_image_id": dst, "destination_region_id": TWO,
            "destination_tenant_id": w.b, "job_id": job, "source_image_id": src,
            "source_image_name": "Test-image-Ubuntu", "source_region_id": ONE,
            "source_tenant_id": w.a, "status": "replicated"
        })
    );

    // The list: a bare array of exactly the seed's fields, in its order and separators.
    let r = rep::list(&tc, ONE, &w.tok_a).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json; charset=UTF-8");
    assert!(
        r.text
            .starts_with("[{\"copy_progress\": 100, \"destination_image_id\": \""),
        "{}",
        r.text
    );
    let listed = r.json();
    assert_eq!(listed, json!([done]));
    let keys: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, FIELDS.iter().collect::<Vec<_>>());

    // The copy: in region-two, owned by b, same bytes, same metadata, marked with its origin.
    let url2 = tc.image(TWO);
    let (status, copied) = glance::download(&tc.http, &url2, &w.tok_b, &dst).await;
    assert_eq!(status, 200);
    assert_eq!(glance::sha512_hex(&copied), glance::sha512_hex(&bytes));
    let img = glance::show(&tc.http, &url2, &w.tok_b, &dst).await;
    let orig = glance::show(&tc.http, &tc.image(ONE), &w.tok_a, &src).await;
    assert_eq!(img["owner"], w.b.as_str());
    assert_eq!(img["visibility"], "private");
    assert_eq!(img["status"], "active");
    for k in [
        "name",
        "disk_format",
        "container_format",
        "checksum",
        "os_hash_value",
        "size",
        "os_distro",
    ] {
        assert_eq!(img[k], orig[k], "{k}");
    }
    assert_eq!(img["replicated_from_region"], ONE);
    assert_eq!(img["replicated_from_image"], src.as_str());
    assert_eq!(img["replication_job_id"], job.as_str());
    // Exactly one copy in the destination tenant.
    let r = common::http::get(&tc.http, format!("{url2}/v2/images"), &w.tok_b).await;
    let imgs: Value = r.json().await.unwrap();
    assert_eq!(imgs["images"].as_array().unwrap().len(), 1);

    // The finished job cannot be canceled.
    let r = rep::cancel(&tc, ONE, &w.tok_a, &job).await;
    assert_text_error(&r, 409, "isn't replicate_requested or replicating");
}

#[tokio::test]
async fn copies_between_tenants_of_one_region() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let (c, c_name) = rep::project(&tc, &w.admin, ONE).await;
    rep::grant(&tc, &w.admin, &c, &w.user_id, "member").await;
    let tok_c = tc.token(&w.user_name, "secret", &c_name).await;
    let bytes = rep::data(70_000, 2);
    let src = active_image(&tc, ONE, &w.tok_a, json!({}), bytes.clone()).await;
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &c).await;
    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    assert_eq!(done["destination_region_id"], ONE);
    assert_eq!(done["destination_tenant_id"], c.as_str());
    let dst = done["destination_image_id"].as_str().unwrap();
    let (status, copied) = glance::download(&tc.http, &tc.image(ONE), &tok_c, dst).await;
    assert_eq!(status, 200);
    assert_eq!(glance::sha512_hex(&copied), glance::sha512_hex(&bytes));
    // Into the caller's own tenant too (seed 001's example shows such a job).
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.a).await;
    rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
}

#[tokio::test]
async fn every_error_of_the_seed_tables() {
    let (tc, w, _, src) = rep::cloud_with_image(json!({}), 4096, 3).await;
    let jobs_url = format!("{}/image_replicator/jobs", rep::ext(&tc, ONE));
    let body = json!({"image_id": src, "tenant_id_dst": w.b}).to_string();

    // 400 without Content-Type: application/json, exactly the seed's body.
    let r = post_raw(&tc, &w.tok_a, None, body.clone()).await;
    assert_text_error(&r, 400, "");
    assert_eq!(
        r.text,
        "400 Bad Request\n\nThere is no such action: Content-Type in header"
    );
    let r = post_raw(&tc, &w.tok_a, Some("text/plain"), body.clone()).await;
    assert_text_error(&r, 400, "There is no such action: Content-Type in header");

    // 401 without a token or with a bad one, exactly the seed's body.
    for token in [None, Some("not-a-token")] {
        let mut post = tc
            .http
            .post(&jobs_url)
            .header("content-type", "application/json")
            .body(body.clone());
        let mut get = tc.http.get(&jobs_url);
        if let Some(t) = token {
            post = post.header("x-auth-token", t);
            get = get.header("x-auth-token", t);
        }
        for r in [
            rep::read(post.send().await.unwrap()).await,
            rep::read(get.send().await.unwrap()).await,
        ] {
            assert_eq!(r.status, 401);
            assert_eq!(r.text, "401 Unauthorized\n\nAuthentication required.");
            assert_eq!(r.header("content-type"), "text/plain; charset=UTF-8");
        }
    }

    // 400 for bodies that are not the seed's.
    for (bad, why) in [
        (json!({"tenant_id_dst": w.b}), "image_id is required"),
        (json!({"image_id": src}), "tenant_id_dst is required"),
        (
            json!({"image_id": "335eef3f", "tenant_id_dst": w.b}),
            "not a valid UUID",
        ),
        (
            json!({"image_id": 1, "tenant_id_dst": w.b}),
            "must be a string",
        ),
    ] {
        let r = rep::submit(&tc, ONE, &w.tok_a, bad, &[]).await;
        assert_text_error(&r, 400, why);
    }
    let malformed = "{\"image_id\":".to_string();
    let r = post_raw(&tc, &w.tok_a, Some("application/json"), malformed).await;
    assert_text_error(&r, 400, "Malformed JSON");

    // 404: unknown image, deleted image, unknown tenant.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &unknown, &w.b).await;
    assert_text_error(&r, 404, &unknown);
    let gone = active_image(&tc, ONE, &w.tok_a, json!({}), rep::data(10, 4)).await;
    assert_eq!(rep::delete_image(&tc, ONE, &w.tok_a, &gone).await, 204);
    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &gone, &w.b).await;
    assert_text_error(&r, 404, &gone);
    let nowhere = "0123456789abcdef0123456789abcdef";
    let r = rep::submit_copy(&tc, ONE, &w.admin, &src, nowhere).await;
    assert_text_error(&r, 404, &format!("Tenant {nowhere} could not be found."));
    // Another tenant's private image is as unknown as a missing one.
    let (_, other_tok) = tc.user_in_new_project("member", ONE).await;
    let r = rep::submit_copy(&tc, ONE, &other_tok, &src, &w.b).await;
    assert_text_error(&r, 404, &src);

    // 401: a destination tenant where the caller holds no role, or only reader.
    let (d_id, _) = rep::project(&tc, &w.admin, TWO).await;
    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &src, &d_id).await;
    assert_text_error(&r, 401, "not authorized to copy images into tenant");
    // To a caller without a role there, a tenant that does not exist answers alike: the
    // answer does not tell which project ids exist (only an admin is told 404, above).
    let unknown_tenant = rep::submit_copy(&tc, ONE, &w.tok_a, &src, nowhere).await;
    assert_eq!(unknown_tenant.status, r.status);
    assert_eq!(unknown_tenant.text.replace(nowhere, &d_id), r.text);
    rep::grant(&tc, &w.admin, &d_id, &w.user_id, "reader").await;
    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &src, &d_id).await;
    assert_text_error(&r, 401, "not authorized to copy images into tenant");

    // 409: a source image that is not active.
    let queued = glance::create_bare(&tc.http, &tc.image(ONE), &w.tok_a, "q", "raw").await;
    let r = rep::submit_copy(&tc, ONE, &w.tok_a, &queued, &w.b).await;
    assert_text_error(&r, 409, "is not active");

    // 404: a license switch type or official template type the destination does not list
    // (defaults: the seed's license types, no template types).
    let r = submit_small(&tc, &w, &[("license_switch", "Unknown_License")], 5, &w.b).await;
    assert_text_error(&r, 404, "license switch type Unknown_License");
    let r = submit_small(&tc, &w, &[("license_switch", WINDOWS_LICENSE)], 6, &w.b).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = submit_small(&tc, &w, &[("official_template_type", "ubuntu")], 7, &w.b).await;
    assert_text_error(&r, 404, "official template type ubuntu");

    // Jobs: unknown → 404; wrong method → 405; unknown path → 404.
    let r = rep::show(&tc, ONE, &w.tok_a, &unknown).await;
    assert_text_error(&r, 404, "does not exist");
    let r = rep::cancel(&tc, ONE, &w.tok_a, &unknown).await;
    assert_text_error(&r, 404, "does not exist");
    let r = rep::read(
        tc.http
            .put(&jobs_url)
            .header("x-auth-token", &w.tok_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_text_error(&r, 405, "PUT");
    let r = get_ext(&tc, &w.tok_a, "/nothing").await;
    assert_text_error(&r, 404, "could not be found");

    // The license switch types of the region.
    let r = get_ext(&tc, &w.tok_a, "/license_switch/types").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json; charset=UTF-8");
    let types = r.json()["license_switch_types"].as_array().unwrap().clone();
    assert!(
        types.contains(&json!("Red_Hat_Enterprise_Linux_6_64bit_BYOL")),
        "{types:?}"
    );
    let url = format!("{}/license_switch/types", rep::ext(&tc, ONE));
    let r = rep::read(common::http::get_public(&tc.http, &url).await).await;
    assert_eq!(r.text, "401 Unauthorized\n\nAuthentication required.");
}

#[tokio::test]
async fn destination_allow_lists_come_from_the_destination() {
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            if r.name == TWO {
                r.replication.accept_replicas = false;
            } else {
                r.replication.official_template_types = vec!["ubuntu-official".into()];
                r.replication.license_switch_types = vec![];
            }
        }
    })
    .await;
    let w = world(&tc).await;
    let (c, _) = rep::project(&tc, &w.admin, ONE).await;
    rep::grant(&tc, &w.admin, &c, &w.user_id, "member").await;
    let r = submit_small(&tc, &w, &[], 8, &w.b).await;
    assert_text_error(&r, 409, "does not support the image");
    let r = submit_small(
        &tc,
        &w,
        &[("official_template_type", "ubuntu-official")],
        9,
        &c,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = submit_small(&tc, &w, &[("license_switch", WINDOWS_LICENSE)], 10, &c).await;
    assert_text_error(&r, 404, "license switch type");
    let r = get_ext(&tc, &w.tok_a, "/license_switch/types").await;
    assert_eq!(r.text, "{\"license_switch_types\": []}");
}

#[tokio::test]
async fn destination_down_at_submission_is_409() {
    // region-two lives "elsewhere", at a port where nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            if r.name == TWO {
                r.serve = false;
                r.url = format!("http://127.0.0.1:{closed}/{TWO}");
            }
        }
    })
    .await;
    let w = world(&tc).await;
    let r = submit_small(&tc, &w, &[], 11, &w.b).await;
    assert_text_error(
        &r,
        409,
        "Glance of the specified region (region-two) is down.",
    );
    let r = rep::list(&tc, ONE, &w.tok_a).await;
    assert_eq!(r.text, "[]");
}

#[tokio::test]
async fn cancel_mid_copy_leaves_no_destination_image() {
    let (tc, w, _, src) = rep::cloud_with_image(json!({}), 4 * 1024 * 1024, 12).await;
    // Hold the copy once 1 MiB went out: deterministic "mid-copy", no sleeps.
    let point = pause::pause_copy(&src, 1024 * 1024);
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    tokio::time::timeout(std::time::Duration::from_secs(60), point.reached())
        .await
        .expect("the copy reaches the pause point");
    let running = rep::show(&tc, ONE, &w.tok_a, &job).await.json();
    assert_eq!(running["status"], "replicating");
    let dst = running["destination_image_id"]
        .as_str()
        .expect("destination exists")
        .to_string();
    let url2 = tc.image(TWO);
    let admin_two = w.admin.clone();
    // The held bytes reach the destination, which is now `saving` the upload.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    let mut status = Value::Null;
    for _ in 0..1500 {
        tick.tick().await;
        status = glance::show(&tc.http, &url2, &admin_two, &dst).await["status"].clone();
        if status == "saving" {
            break;
        }
    }
    assert_eq!(status, "saving");

    let r = rep::cancel(&tc, ONE, &w.tok_a, &job).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(r.header("content-type"), "application/json; charset=UTF-8");
    let now = rep::show(&tc, ONE, &w.tok_a, &job).await.json();
    assert!(
        ["cancel_requested", "canceling", "canceled"].contains(&now["status"].as_str().unwrap()),
        "{now}"
    );
    let r = rep::cancel(&tc, ONE, &w.tok_a, &job).await;
    assert_text_error(&r, 409, "isn't replicate_requested or replicating");

    let end = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["canceled"]).await;
    assert_eq!(end["destination_image_id"], Value::Null);
    let r = common::http::get(&tc.http, format!("{url2}/v2/images/{dst}"), &admin_two).await;
    assert_eq!(r.status(), 404, "the half-made copy is gone");
    pause::clear(&src);
}

/// The stored job (for what the API does not show: attempts, params).
async fn record(tc: &TestCloud, job: &str) -> glimpse_core::jobs::JobRecord {
    let region = tc.cloud.regions.iter().find(|r| r.name == ONE).unwrap();
    region.jobs.get(job).await.unwrap().expect("job row")
}

#[tokio::test]
async fn a_connection_lost_mid_copy_is_retried_then_replicated() {
    let (tc, w, bytes, src) = rep::cloud_with_image(json!({}), 2 * 1024 * 1024 + 5, 14).await;
    // The first two attempts lose their connection after 256 KiB.
    let point = pause::fail_copy(&src, 256 * 1024, 2);
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    assert_eq!(point.failures_left(), 0);
    assert_eq!(record(&tc, &job).await.attempts, 3);
    let dst = done["destination_image_id"].as_str().unwrap();
    let (status, copied) = glance::download(&tc.http, &tc.image(TWO), &w.tok_b, dst).await;
    assert_eq!(status, 200);
    assert_eq!(glance::sha512_hex(&copied), glance::sha512_hex(&bytes));
    // The retries reused the one destination image.
    let r = common::http::get(&tc.http, format!("{}/v2/images", tc.image(TWO)), &w.tok_b).await;
    let imgs: Value = r.json().await.unwrap();
    assert_eq!(imgs["images"].as_array().unwrap().len(), 1);
    pause::clear(&src);
}

#[tokio::test]
async fn a_copy_that_keeps_failing_ends_in_error_with_a_reason_and_no_image() {
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            r.jobs.max_attempts = 2;
        }
    })
    .await;
    let w = world(&tc).await;
    let src = active_image(&tc, ONE, &w.tok_a, json!({}), rep::data(1024 * 1024, 15)).await;
    let point = pause::fail_copy(&src, 64 * 1024, 10);
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let end = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["error"]).await;
    assert_eq!(point.failures_left(), 8);
    assert_eq!(end["destination_image_id"], Value::Null);
    let r = rep::show(&tc, ONE, &w.tok_a, &job).await;
    assert!(
        r.header("x-glimpse-job-error").contains("injected fault"),
        "{:?}",
        r.headers
    );
    let dst = record(&tc, &job).await.params["destination_image_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = common::http::get(
        &tc.http,
        format!("{}/v2/images/{dst}", tc.image(TWO)),
        &w.admin,
    )
    .await;
    assert_eq!(r.status(), 404, "the half-made copy is gone");
    pause::clear(&src);
}

/// A job taken over after a crash finds its destination image by the id chosen at
/// submission: already `active` with the right hashes → nothing is copied again; still
/// `queued` → the bytes go into that image, and no second image is made.
#[tokio::test]
async fn a_resumed_job_reuses_its_destination_image() {
    let (tc, w, bytes, src) =
        rep::cloud_with_image(json!({"os_distro": "ubuntu"}), 600_000, 16).await;
    let source = glance::show(&tc.http, &tc.image(ONE), &w.tok_a, &src).await;
    // Any copy attempt would break: proves whether bytes moved.
    let point = pause::fail_copy(&src, 0, 100);
    let region = tc.cloud.regions.iter().find(|r| r.name == ONE).unwrap();
    let url2 = tc.image(TWO);
    for (case, upload_first) in [("active", true), ("queued", false)] {
        let (job, dst) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        // What a crashed earlier attempt left behind, made the way the job makes it.
        glance::create_image(&tc.http, &url2, &w.admin, json!({
            "id": dst, "name": "Test-image-Ubuntu", "disk_format": "raw", "container_format": "bare",
            "owner": w.b, "visibility": "private", "replication_job_id": job})).await;
        if upload_first {
            let (status, text) =
                glance::upload(&tc.http, &url2, &w.admin, &dst, bytes.clone()).await;
            assert_eq!(status, 204, "{text}");
        }
        let params = glimpse_core::replication::Params {
            source_image_id: src.clone(),
            source_image_name: Some("Test-image-Ubuntu".into()),
            source_region_id: ONE.into(),
            source_tenant_id: w.a.clone(),
            destination_region_id: TWO.into(),
            destination_tenant_id: w.b.clone(),
            destination_image_id: dst.clone(),
            checksum: source["checksum"].as_str().map(str::to_string),
            os_hash_algo: Some("sha512".into()),
            os_hash_value: source["os_hash_value"].as_str().map(str::to_string),
            size: bytes.len() as u64,
            requested_by: w.user_id.clone(),
        };
        let new = NewJob {
            id: Some(job.clone()),
            phase: "requested".into(),
            ..NewJob::of::<ReplicateHandler>(w.a.clone(), &params).unwrap()
        };
        region.jobs.enqueue(&new).await.unwrap();
        if case == "queued" {
            pause::clear(&src);
        }
        let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
        assert_eq!(done["destination_image_id"], dst.as_str(), "{case}");
        if case == "active" {
            assert_eq!(point.failures_left(), 100, "no byte was copied again");
        }
        let (status, copied) = glance::download(&tc.http, &url2, &w.tok_b, &dst).await;
        assert_eq!(status, 200);
        assert_eq!(
            glance::sha512_hex(&copied),
            glance::sha512_hex(&bytes),
            "{case}"
        );
    }
    let r = common::http::get(&tc.http, format!("{url2}/v2/images"), &w.tok_b).await;
    let imgs: Value = r.json().await.unwrap();
    assert_eq!(
        imgs["images"].as_array().unwrap().len(),
        2,
        "one image per job"
    );
}

#[tokio::test]
async fn idempotency_keys_and_tenant_isolation() {
    let (tc, w, _, src) = rep::cloud_with_image(json!({}), 1000, 13).await;
    let body = json!({"image_id": src, "tenant_id_dst": w.b});
    // A submission with idempotency key `retry-1`.
    let keyed =
        |body: Value| rep::submit(&tc, ONE, &w.tok_a, body, &[("idempotency-key", "retry-1")]);
    let r1 = keyed(body.clone()).await;
    assert_eq!(r1.status, 202, "{}", r1.text);
    let job = r1.json()["job_id"].as_str().unwrap().to_string();
    let r2 = keyed(body.clone()).await;
    assert_eq!(
        (r2.status, r2.json()["job_id"].as_str().unwrap()),
        (202, job.as_str())
    );
    let mut with_token = body.clone();
    with_token["client_token"] = json!("retry-1");
    let r3 = rep::submit(&tc, ONE, &w.tok_a, with_token, &[]).await;
    assert_eq!(
        (r3.status, r3.json()["job_id"].as_str().unwrap()),
        (202, job.as_str())
    );
    // The same key for a different copy is refused.
    let r = keyed(json!({"image_id": src, "tenant_id_dst": w.a})).await;
    assert_text_error(&r, 409, "already used for a different request");
    rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    // After the job ended the key still answers with it, and no second copy was made.
    let r4 = keyed(body.clone()).await;
    assert_eq!(r4.json()["job_id"].as_str().unwrap(), job);
    assert_eq!(
        rep::list(&tc, ONE, &w.tok_a)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Another tenant sees none of it.
    let (_, other) = tc.user_in_new_project("member", ONE).await;
    assert_eq!(rep::list(&tc, ONE, &other).await.text, "[]");
    assert_text_error(
        &rep::show(&tc, ONE, &other, &job).await,
        404,
        "does not exist",
    );
    assert_text_error(
        &rep::cancel(&tc, ONE, &other, &job).await,
        404,
        "does not exist",
    );
    // Nor does the same user scoped to the destination project, in either region.
    assert_eq!(rep::list(&tc, ONE, &w.tok_b).await.text, "[]");
    assert_eq!(rep::list(&tc, TWO, &w.tok_a).await.text, "[]");
    // An admin sees every job of the region.
    let all = rep::list(&tc, ONE, &w.admin).await.json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == job.as_str())
    );
    assert_eq!(rep::show(&tc, ONE, &w.admin, &job).await.status, 200);
}

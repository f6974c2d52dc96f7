//! A cut replication upload resumes where the destination stopped (issue 4): the destination
//! keeps the bytes of a replication upload (service account, both digests) that lost its
//! connection, says how many it holds (`GET …/image_replicator/uploads/{id}`), and the next
//! upload sends only the rest (`X-Glimpse-Upload-Offset`), re-hashing and re-inspecting the
//! held bytes so the published image is verified over its whole content. Every store resumes:
//! the filesystem from its staging file, S3 from the 8 MiB part objects it holds (with
//! `GLIMPSE_TEST_S3_ENDPOINT`, region-two's store is a radosgw bucket).

use crate::common;

use bytes::Bytes;
use common::replication::{self as rep, ONE, TWO, active_image, world};
use common::{TestCloud, glance};
use futures::StreamExt;
use glimpse_core::replication::pause;
use serde_json::{Value, json};

/// The part size of S3 partials: a cut upload of a multiple of it is held whole on every store
/// while its writer still runs (the filesystem holds any prefix).
use glimpse_store::PART;

/// Staged partial uploads in region-two's store (`.staging/partial-…` on the filesystem,
/// `partials/…` on S3).
async fn partials(tc: &TestCloud) -> Vec<String> {
    let mut keys = tc.blob_keys(TWO).await;
    keys.retain(|k| k.contains("partial"));
    keys
}

async fn service_token(tc: &TestCloud) -> String {
    tc.cloud.regions[0].service.token().await.unwrap().token
}

/// `GET …/uploads/{id}?os_hash_value=…` in region-two.
async fn offset_call(tc: &TestCloud, token: &str, id: &str, sha: Option<&str>) -> rep::Resp {
    let mut url = format!("{}/image_replicator/uploads/{id}", rep::ext(tc, TWO));
    if let Some(s) = sha {
        url.push_str(&format!("?os_hash_value={s}"));
    }
    rep::read(common::http::get(&tc.http, url, token).await).await
}

/// A replication-style `PUT /file` of `body` (`len` bytes) into region-two, continuing at
/// `offset` when given; the status (0 when the request itself failed) and the body.
async fn put(
    tc: &TestCloud,
    token: &str,
    id: &str,
    data: &[u8],
    offset: Option<&str>,
    body: reqwest::Body,
) -> (u16, String) {
    let mut rb = tc
        .http
        .put(format!("{}/v2/images/{id}/file", tc.image(TWO)))
        .header("x-auth-token", token)
        .header("content-type", "application/octet-stream")
        .header("x-glimpse-expected-checksum", glance::md5_hex(data))
        .header("x-glimpse-expected-os-hash-value", glance::sha512_hex(data))
        .body(body);
    if let Some(o) = offset {
        rb = rb.header("x-glimpse-upload-offset", o);
    }
    match rb.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
        Err(_) => (0, String::new()),
    }
}

/// Sends `data` as a replication upload of `whole` in 256 KiB pieces, waits until
/// region-two's store holds all of it (so `data` is a multiple of [`PART`]: S3 stores whole
/// parts while the upload runs), then cuts the connection (the body fails), as a sender
/// killed mid-copy. Returns once the image is no longer `saving`.
async fn cut_upload(
    tc: &TestCloud,
    token: &str,
    owner_token: &str,
    id: &str,
    whole: &[u8],
    data: &[u8],
) {
    let name = format!("{id}-{}", &glance::sha512_hex(whole)[..32]);
    let (cut, when) = tokio::sync::oneshot::channel::<()>();
    let items: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(256 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = futures::stream::iter(items).chain(futures::stream::once(async move {
        let _ = when.await;
        Err(std::io::Error::other("cut"))
    }));
    let sending = put(tc, token, id, whole, None, reqwest::Body::wrap_stream(body));
    tokio::pin!(sending);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    let mut held = 0;
    for _ in 0..1000 {
        tokio::select! {
            r = &mut sending => panic!("the upload ended before the cut: {r:?}"),
            _ = tick.tick() => {}
        }
        // By name: the store's listing leaves out a partial its writer holds.
        held = tc.region(TWO).store.partial_len(&name).await.unwrap();
        if held >= data.len() as u64 {
            break;
        }
    }
    assert_eq!(
        held,
        data.len() as u64,
        "the destination received what was sent"
    );
    let _ = cut.send(());
    let (status, _) = sending.await;
    assert_ne!(status, 204);
    assert_eq!(settled_status(tc, owner_token, id).await, "queued");
}

/// Bytes of region-two's staged partial uploads.
async fn staged_bytes(tc: &TestCloud) -> u64 {
    tc.region(TWO)
        .store
        .list()
        .await
        .unwrap()
        .iter()
        .filter(|b| b.key.contains("partial"))
        .map(|b| b.size)
        .sum()
}

/// The image's status in region-two, once it is no longer `saving` (a cut upload is put back
/// to `queued` just after the connection drops).
async fn settled_status(tc: &TestCloud, token: &str, id: &str) -> Value {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    for _ in 0..500 {
        tick.tick().await;
        let s = glance::show(&tc.http, &tc.image(TWO), token, id).await["status"].clone();
        if s != "saving" {
            return s;
        }
    }
    panic!("image {id} stayed saving");
}

/// A cloud with its world, the service token, a new queued image of `w.tok_b` in region-two
/// and the content [`rep::data`]`(len, seed)` to upload: (cloud, world, service token, image
/// id, content).
async fn resumable_cloud(
    len: usize,
    seed: u64,
) -> (TestCloud, rep::World, String, String, Vec<u8>) {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let svc = service_token(&tc).await;
    let id = glance::create_bare(&tc.http, &tc.image(TWO), &w.tok_b, "resume", "raw").await;
    (tc, w, svc, id, rep::data(len, seed))
}

#[tokio::test]
async fn a_cut_upload_keeps_its_bytes_and_the_next_sends_only_the_rest() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let svc = service_token(&tc).await;
    let data = rep::data(2 * PART + 3 * 1024 * 1024 + 11, 71);
    let sha = glance::sha512_hex(&data);
    let id = glance::create_bare(&tc.http, &tc.image(TWO), &w.tok_b, "resume", "raw").await;
    let r = offset_call(&tc, &svc, &id, Some(&sha)).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"image_id": id, "offset": 0}))
    );

    // 8 MiB arrive, then the connection is cut.
    let cut = PART;
    cut_upload(&tc, &svc, &w.tok_b, &id, &data, &data[..cut]).await;
    let held = offset_call(&tc, &svc, &id, Some(&sha)).await.json()["offset"]
        .as_u64()
        .unwrap();
    assert_eq!(held, cut as u64, "every byte received is held");
    // Another content's upload does not see these bytes.
    let other = "ab".repeat(64);
    let r = offset_call(&tc, &svc, &id, Some(&other)).await;
    assert_eq!(r.json()["offset"], 0);

    // Continuing past what is held: 416, and the held bytes stay.
    let past = (held + 1).to_string();
    let rest = Bytes::copy_from_slice(&data[held as usize + 1..]);
    let (status, body) = put(&tc, &svc, &id, &data, Some(&past), rest.into()).await;
    assert_eq!(status, 416, "{body}");
    assert!(body.contains(&format!("holds {held} bytes")), "{body}");
    assert_eq!(settled_status(&tc, &w.tok_b, &id).await, "queued");

    // The rest, from what is held: the image is the whole content.
    let rest = Bytes::copy_from_slice(&data[held as usize..]);
    let (status, body) = put(&tc, &svc, &id, &data, Some(&held.to_string()), rest.into()).await;
    assert_eq!(status, 204, "{body}");
    let img = glance::show(&tc.http, &tc.image(TWO), &w.tok_b, &id).await;
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"], data.len());
    assert_eq!(img["os_hash_value"], sha.as_str());
    let (_, got) = glance::download(&tc.http, &tc.image(TWO), &w.tok_b, &id).await;
    assert!(got == data, "the published bytes are the whole content");
    assert!(
        partials(&tc).await.is_empty(),
        "the partial became the blob"
    );
}

/// The held prefix is re-hashed: bytes that are not the content's (here, another content's
/// prefix continued with this one's tail) are refused, never published, and dropped.
#[tokio::test]
async fn a_resume_over_wrong_bytes_is_refused_and_dropped() {
    let (tc, w, svc, id, data) = resumable_cloud(PART + 1024 * 1024, 72).await;
    let mut tampered = data.clone();
    tampered[1000] ^= 0xff;
    // The cut upload states `data`'s digests but sends a byte that differs.
    cut_upload(&tc, &svc, &w.tok_b, &id, &data, &tampered[..PART]).await;
    let sha = glance::sha512_hex(&data);
    let held = offset_call(&tc, &svc, &id, Some(&sha)).await.json()["offset"]
        .as_u64()
        .unwrap();
    assert_eq!(held, PART as u64);
    let rest = Bytes::copy_from_slice(&data[held as usize..]);
    let (status, body) = put(&tc, &svc, &id, &data, Some(&held.to_string()), rest.into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("os_hash_value"), "{body}");
    let img = glance::show(&tc.http, &tc.image(TWO), &w.tok_b, &id).await;
    assert_eq!(img["status"], "queued");
    assert_eq!(img["size"], Value::Null);
    assert!(partials(&tc).await.is_empty(), "{:?}", partials(&tc).await);
}

#[tokio::test]
async fn only_the_service_may_ask_or_resume_and_bad_requests_are_4xx() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let svc = service_token(&tc).await;
    let data = rep::data(300_000, 73);
    let sha = glance::sha512_hex(&data);
    let id = glance::create_bare(&tc.http, &tc.image(TWO), &w.tok_b, "resume", "raw").await;
    let admin = tc.admin_token().await;
    for token in [&w.tok_b, &admin] {
        let r = offset_call(&tc, token, &id, Some(&sha)).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.header("content-type"), "text/plain; charset=UTF-8");
    }
    let r = offset_call(&tc, &svc, &id, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = offset_call(&tc, &svc, &id, Some("abc")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = offset_call(&tc, &svc, &unknown, Some(&sha)).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // A tenant's upload may not continue anything; a bad offset is 400.
    let body = || reqwest::Body::from(data[10..].to_vec());
    let (status, text) = put(&tc, &w.tok_b, &id, &data, Some("10"), body()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("X-Glimpse-Upload-Offset"), "{text}");
    let (status, text) = put(&tc, &svc, &id, &data, Some("-1"), body()).await;
    assert_eq!(status, 400, "{text}");
    // Nothing is held: continuing at 10 is 416.
    let (status, text) = put(&tc, &svc, &id, &data, Some("10"), body()).await;
    assert_eq!(status, 416, "{text}");
    assert_eq!(
        glance::show(&tc.http, &tc.image(TWO), &w.tok_b, &id).await["status"],
        "queued"
    );
}

#[tokio::test]
async fn deleting_the_image_drops_its_held_bytes() {
    let (tc, w, svc, id, data) = resumable_cloud(PART + 1024 * 1024, 74).await;
    cut_upload(&tc, &svc, &w.tok_b, &id, &data, &data[..PART]).await;
    assert_eq!(partials(&tc).await.len(), 1);
    assert_eq!(rep::delete_image(&tc, TWO, &w.tok_b, &id).await, 204);
    assert!(partials(&tc).await.is_empty());
    let name = format!("{id}-{}", &glance::sha512_hex(&data)[..32]);
    assert_eq!(tc.region(TWO).store.partial_len(&name).await.unwrap(), 0);
}

/// The orphan cleaner leaves alone a partial whose upload still runs, however short its
/// grace, and one younger than its grace; an abandoned one older than the grace goes.
#[tokio::test]
async fn the_cleaner_leaves_a_partial_in_use_and_removes_an_abandoned_one() {
    let (tc, w, svc, id, data) = resumable_cloud(PART + 1024 * 1024, 76).await;
    let name = format!("{id}-{}", &glance::sha512_hex(&data)[..32]);
    let region = tc.region(TWO);
    let (cut, when) = tokio::sync::oneshot::channel::<()>();
    let body = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(data.clone()))])
        .chain(futures::stream::once(async move {
            let _ = when.await;
            Err(std::io::Error::other("cut"))
        }));
    let sending = put(
        &tc,
        &svc,
        &id,
        &data,
        None,
        reqwest::Body::wrap_stream(body),
    );
    tokio::pin!(sending);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    let mut held = 0;
    for _ in 0..3000 {
        tokio::select! {
            r = &mut sending => panic!("the upload ended before the cut: {r:?}"),
            _ = tick.tick() => {}
        }
        held = region.store.partial_len(&name).await.unwrap();
        if held >= PART as u64 {
            break;
        }
    }
    assert!(held >= PART as u64, "the first part landed: {held}");
    // In use: even a cleaner with no grace leaves it.
    glimpse_core::images::clean_orphans(region, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(region.store.partial_len(&name).await.unwrap() >= held);
    let _ = cut.send(());
    let (status, _) = sending.await;
    assert_ne!(status, 204);
    assert_eq!(settled_status(&tc, &w.tok_b, &id).await, "queued");
    let held = region.store.partial_len(&name).await.unwrap();
    assert!(held >= PART as u64, "{held}");
    // Abandoned but younger than the grace: stays.
    glimpse_core::images::clean_orphans(region, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(region.store.partial_len(&name).await.unwrap(), held);
    // Older than the grace: goes, every part of it.
    glimpse_core::images::clean_orphans(region, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(region.store.partial_len(&name).await.unwrap(), 0);
    assert!(partials(&tc).await.is_empty(), "{:?}", partials(&tc).await);
}

/// The whole job: the copy loses its connection after 4 MiB of 6; the retry asks the
/// destination what it holds and sends only the rest. The job shows where it resumed.
#[tokio::test]
async fn a_job_whose_copy_is_cut_resumes_from_the_held_bytes() {
    let (tc, w, bytes, src) = rep::cloud_with_image(json!({}), 6 * 1024 * 1024 + 7, 75).await;
    let point = pause::fail_copy(&src, 4 * 1024 * 1024, 1);
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    assert_eq!(point.failures_left(), 0);
    assert_eq!(done["copy_progress"], 100);
    let dst = done["destination_image_id"].as_str().unwrap();
    let (status, copied) = glance::download(&tc.http, &tc.image(TWO), &w.tok_b, dst).await;
    assert_eq!(status, 200);
    assert_eq!(glance::sha512_hex(&copied), glance::sha512_hex(&bytes));
    let shown = rep::show(&tc, ONE, &w.tok_a, &job).await;
    let resumed = shown.header("x-glimpse-job-resumed-from");
    let n: u64 = resumed.parse().expect("the job says where it resumed");
    // The fault strikes before the first chunk past 4 MiB; chunks are at most 1 MiB. On S3
    // too: the cut upload kept what it had received as a last, short part.
    assert!(n > 0 && n <= 5 * 1024 * 1024, "resumed from {n}");
    assert!(partials(&tc).await.is_empty());
    pause::clear(&src);
}

/// A cloud whose region-one runs one replication per project at a time, and a running copy
/// held at its start: the next job of the project waits `replicate_requested`, so a test can
/// prepare region-two's store for it before it runs. Returns the cloud, the world, the held
/// point and the blocker's source image.
async fn one_at_a_time() -> (
    TestCloud,
    rep::World,
    std::sync::Arc<pause::PausePoint>,
    String,
) {
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            r.jobs.per_project_running = 1;
        }
    })
    .await;
    let w = world(&tc).await;
    let blocker = active_image(&tc, ONE, &w.tok_a, json!({}), rep::data(1000, 80)).await;
    let point = pause::pause_copy(&blocker, 0);
    rep::submit_ok(&tc, ONE, &w.tok_a, &blocker, &w.b).await;
    tokio::time::timeout(std::time::Duration::from_secs(60), point.reached())
        .await
        .expect("the blocker runs");
    (tc, w, point, blocker)
}

/// Leaves in region-two's store what a cut upload of `content` into image `dst` would have
/// left after sending `held` (the name the destination gives it: image id and sha512).
async fn leave_partial(tc: &TestCloud, dst: &str, content: &[u8], held: &[u8]) {
    let sha = glance::sha512_hex(content);
    let name = format!("{dst}-{}", &sha[..32]);
    let cut = futures::stream::iter(vec![
        Ok(Bytes::copy_from_slice(held)),
        Err(std::io::Error::other("cut")),
    ]);
    let _ = tc
        .region(TWO)
        .store
        .write_resumable(&name, 0, cut, None, |_: &[u8]| Ok(()))
        .await;
    assert_eq!(staged_bytes(tc).await, held.len() as u64);
}

/// The destination id a queued job will use.
async fn destination_of(tc: &TestCloud, job: &str) -> String {
    let rec = tc.region(ONE).jobs.get(job).await.unwrap().unwrap();
    rec.params["destination_image_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What a job over a held partial ended with (see [`job_over_partial`]).
struct OverPartial {
    tc: TestCloud,
    /// The source's content.
    bytes: Vec<u8>,
    /// The job at its end, and the destination id chosen at submission.
    done: Value,
    dst: String,
    /// The job's `X-Glimpse-Job-Resumed-From`.
    resumed_from: String,
    /// What the destination image then serves.
    copied: Vec<u8>,
}

/// On [`one_at_a_time`]'s cloud: a job copies a new image of `rep::data(len, seed)` after
/// region-two's store was left holding `held(content)` for its destination (see
/// [`leave_partial`]); waits until it is replicated.
async fn job_over_partial(
    len: usize,
    seed: u64,
    held: impl FnOnce(&[u8]) -> Vec<u8>,
) -> OverPartial {
    let (tc, w, point, blocker) = one_at_a_time().await;
    let bytes = rep::data(len, seed);
    let src = active_image(&tc, ONE, &w.tok_a, json!({}), bytes.clone()).await;
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let dst = destination_of(&tc, &job).await;
    leave_partial(&tc, &dst, &bytes, &held(&bytes)).await;
    point.release();
    let done = rep::wait_for(&tc, ONE, &w.tok_a, &job, &["replicated"]).await;
    let shown = rep::show(&tc, ONE, &w.tok_a, &job).await;
    let resumed_from = shown.header("x-glimpse-job-resumed-from");
    let (_, copied) = glance::download(&tc.http, &tc.image(TWO), &w.tok_b, &dst).await;
    pause::clear(&blocker);
    OverPartial {
        tc,
        bytes,
        done,
        dst,
        resumed_from,
        copied,
    }
}

/// Every byte arrived before the cut; only the publication was missing: the job sends no
/// data byte, just asks the destination to publish what it holds (verified).
#[tokio::test]
async fn a_copy_whose_every_byte_arrived_is_only_published() {
    let r = job_over_partial(2 * PART + 1, 81, <[u8]>::to_vec).await;
    assert_eq!(r.done["destination_image_id"], r.dst.as_str());
    assert_eq!(r.resumed_from, r.bytes.len().to_string());
    assert!(r.copied == r.bytes);
    assert!(partials(&r.tc).await.is_empty());
}

/// The held bytes were damaged on the destination's disk: the resumed upload is refused for
/// its sha512, the destination drops them, and the job copies again from zero (not a failed
/// job), ending with the source's bytes.
#[tokio::test]
async fn a_damaged_held_prefix_makes_the_job_copy_again_from_zero() {
    let damage = |bytes: &[u8]| {
        let mut damaged = bytes[..PART + 2 * 1024 * 1024].to_vec();
        damaged[12345] ^= 0x01;
        damaged
    };
    let r = job_over_partial(PART + 3 * 1024 * 1024, 82, damage).await;
    assert_eq!(r.done["destination_image_id"], r.dst.as_str());
    assert_eq!(r.resumed_from, "", "copied from zero");
    assert!(
        r.copied == r.bytes,
        "the source's bytes, not the damaged ones"
    );
    assert!(partials(&r.tc).await.is_empty());
}

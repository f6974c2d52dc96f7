//! The Glance v2 image API end to end over HTTP, against a whole cloud started in-process on
//! 127.0.0.1:0: records, data (round trip, checksums, ranges, format enforcement, limits),
//! deactivation, tags, members, tenant isolation, reader rules, error shapes, and crash
//! recovery. Listing is covered by `image_list.rs`.

use crate::common;

use std::time::Duration;

use common::TestCloud;
use common::glance::{Api, REGION, expect, expect_statuses, md5_hex, sha512_hex};
use common::replication::{Resp, read};
use serde_json::{Value, json};

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    read(rb.send().await.unwrap()).await
}

async fn create(api: &Api<'_>, body: Value) -> Value {
    let r = api.post("/v2/images", body).await;
    assert_eq!(r.status, 201, "create: {}", r.text);
    r.json()
}

/// [`create`], the new image's id.
async fn create_id(api: &Api<'_>, body: Value) -> String {
    create(api, body).await["id"].as_str().unwrap().to_string()
}

/// The image record, whatever the status.
async fn image(api: &Api<'_>, id: &str) -> Value {
    api.get(&format!("/v2/images/{id}")).await.json()
}

/// The ids in `GET path` (an image list).
async fn listed(api: &Api<'_>, path: &str) -> Vec<String> {
    common::http::owned_strings(&api.get(path).await.json()["images"], "id")
}

async fn patch(api: &Api<'_>, id: &str, ops: Value) -> Resp {
    send(
        api.request("PATCH", &format!("/v2/images/{id}"))
            .header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(ops.to_string()),
    )
    .await
}

fn rename_to_x() -> Value {
    json!([{"op": "replace", "path": "/name", "value": "x"}])
}

async fn put_file(api: &Api<'_>, id: &str, data: Vec<u8>) -> Resp {
    let body = reqwest::Body::from(data);
    put_body(api, id, body).await
}

/// Uploads with `Transfer-Encoding: chunked` (as Tempest does).
async fn put_file_chunked(api: &Api<'_>, id: &str, data: Vec<u8>) -> Resp {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(3000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    put_body(api, id, body).await
}

async fn put_body(api: &Api<'_>, id: &str, body: reqwest::Body) -> Resp {
    send(
        api.request("PUT", &format!("/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(body),
    )
    .await
}

async fn get_bytes(
    api: &Api<'_>,
    id: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = api.request("GET", &format!("/v2/images/{id}/file"));
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let r = rb.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

/// A member of a new project.
async fn new_member(tc: &TestCloud) -> Api<'_> {
    Api::new(tc, tc.user_in_new_project("member", REGION).await.1)
}

fn anonymous(tc: &TestCloud) -> Api<'_> {
    Api { tc, token: None }
}

async fn check_versions(tc: &TestCloud, path: &str) {
    let r = anonymous(tc).get(path).await;
    assert_eq!(
        r.status,
        if path == "/versions" { 200 } else { 300 },
        "GET '{path}'"
    );
    let v = r.json();
    let ids: Vec<&str> = common::http::strings(&v["versions"], "id");
    assert_eq!(ids.first(), Some(&"v2.16"));
    assert_eq!(ids.last(), Some(&"v2.0"));
    assert_eq!(ids.len(), 17);
    assert!(!ids.contains(&"v2.17"));
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    assert_eq!(v["versions"][1]["status"], "SUPPORTED");
    assert_eq!(
        v["versions"][0]["links"][0]["href"],
        format!("{}/v2/", tc.image(REGION))
    );
}

/// Tempest's `VersionsClient` asks for the endpoint with a trailing slash.
#[tokio::test]
async fn version_document_with_trailing_slash() {
    let tc = TestCloud::start().await;
    check_versions(&tc, "/").await;
}

#[tokio::test]
async fn version_document_and_auth_errors() {
    let tc = TestCloud::start().await;
    check_versions(&tc, "").await;
    check_versions(&tc, "/versions").await;
    // No token: WebOb's 401, HTML by default, JSON on request.
    let anon = anonymous(&tc);
    let r = anon.get("/v2/images").await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("content-type").starts_with("text/html"),
        "{}",
        r.header("content-type")
    );
    assert!(r.text.contains("<h1>401 Unauthorized</h1>"));
    let json_please = [("accept", "application/json")];
    let r = anon
        .call_with("GET", "/v2/images", None, &json_please)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "401 Unauthorized");
    assert_eq!(r.json()["title"], "Unauthorized");
    // An unscoped token is valid but not enough for the image API: 403.
    let r = tc
        .http
        .post(format!("{}/auth/tokens", tc.identity()))
        .json(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": tc.admin_password()}}},
            "scope": "unscoped"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let unscoped = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    let unscoped = Api::new(&tc, unscoped);
    let bogus = Api::new(&tc, "bogus".to_string());
    let admin = Api::admin(&tc).await;
    let member = new_member(&tc).await;
    let x = || Some(json!({"name": "x"}));
    let unknown = "/v2/images/00000000-0000-0000-0000-000000000000";
    // No tasks API: refused at creation.
    let task = || {
        Some(json!({"type": "import", "input": {"import_from": "http://example.invalid/x.qcow2"}}))
    };
    expect_statuses([
        (&bogus, "GET", "/v2/images", None, 401),
        (&anon, "GET", "/v2/schemas/image", None, 401),
        (&unscoped, "GET", "/v2/images", x(), 403),
        (&unscoped, "POST", "/v2/images", x(), 403),
        (&unscoped, "GET", unknown, x(), 403),
        (&admin, "GET", "/v2/", None, 404),
        (&admin, "GET", "/v2/nosuch", None, 404),
        (&admin, "POST", "/v2/tasks", task(), 400),
        (&member, "POST", "/v2/tasks", task(), 403),
    ])
    .await;
}

#[tokio::test]
async fn create_show_patch_delete() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", REGION).await;
    let user = Api::new(&tc, tok);
    let r = user
        .post(
            "/v2/images",
            json!({"name": "probe", "disk_format": "raw", "container_format": "bare",
            "tags": ["t1"], "os_distro": "cirros", "ramdisk_id": "00000000-1111-2222-3333-444455556666"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let img = r.json();
    let id = img["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        format!("{}/v2/images/{id}", tc.image(REGION))
    );
    assert_eq!(r.header("content-type"), "application/json");
    // Glance's field order: custom properties first, then the base fields.
    assert!(r.text.starts_with(r#"{"os_distro": "cirros", "ramdisk_id": "00000000-1111-2222-3333-444455556666", "name": "probe", "disk_format": "raw""#), "{}", r.text);
    assert!(r.text.ends_with(&format!(r#""tags": ["t1"], "self": "/v2/images/{id}", "file": "/v2/images/{id}/file", "schema": "/v2/schemas/image"}}"#)));
    assert_eq!(img["status"], "queued");
    assert_eq!(img["visibility"], "shared");
    assert_eq!(img["owner"], pid.as_str());
    assert_eq!(img["size"], Value::Null);
    assert_eq!(img["checksum"], Value::Null);
    assert_eq!(img["os_hash_algo"], Value::Null);
    assert_eq!(img["protected"], false);
    assert_eq!(img["os_hidden"], false);
    assert_eq!(img["min_ram"], 0);
    assert!(img.get("locations").is_none() && img.get("direct_url").is_none());
    let created = img["created_at"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");

    let p = format!("/v2/images/{id}");
    let shown = user.get(&p).await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.json()["ramdisk_id"],
        "00000000-1111-2222-3333-444455556666"
    );

    // Client-chosen ids, and duplicates.
    let chosen = "5c1f2a9e-7d3b-4e61-9a0c-2b8f4d6e1a37";
    let c = create(&user, json!({"id": chosen, "name": "chosen"})).await;
    assert_eq!(c["id"], chosen);
    let dup = user.post("/v2/images", json!({"id": chosen})).await;
    assert_eq!(dup.status, 409);

    // PATCH, v2.1 dialect.
    let r = patch(
        &user,
        &id,
        json!([{"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
        {"op": "replace", "path": "/min_disk", "value": 2}]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["hw_disk_bus"], "scsi");
    assert_eq!(v["min_disk"], 2);
    assert!(r.text.starts_with(r#"{"os_distro": "cirros", "ramdisk_id": "00000000-1111-2222-3333-444455556666", "hw_disk_bus": "scsi", "name""#));
    // The v2.0 dialect, as Tempest sends it.
    let r = send(
        user.request("PATCH", &p)
            .header(
                "content-type",
                "application/openstack-images-v2.0-json-patch",
            )
            .body(r#"[{"replace": "/name", "value": "renamed-2.0"}]"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], "renamed-2.0");
    // Other media types: 415 with Accept-Patch.
    for ct in [Some("application/json"), None] {
        let mut rb = user
            .request("PATCH", &p)
            .body(r#"[{"op": "replace", "path": "/name", "value": "x"}]"#);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        let r = send(rb).await;
        assert_eq!(r.status, 415);
        assert_eq!(
            r.header("accept-patch"),
            "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
        );
    }
    // Glance's refusals.
    let cases = [
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            403,
        ),
        (
            json!([{"op": "add", "path": "/os_glance_foo", "value": "1"}]),
            403,
        ),
        (json!([{"op": "remove", "path": "/name"}]), 403),
        (
            json!([{"op": "replace", "path": "/nosuch", "value": "1"}]),
            409,
        ),
        (json!([{"op": "remove", "path": "/nosuch"}]), 409),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/owner", "value": "someone"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/protected", "value": "yes"}]),
            400,
        ),
        (
            json!([{"op": "replace", "path": "/name", "value": "n".repeat(256)}]),
            400,
        ),
        (
            json!([{"op": "replace", "path": "/disk_format", "value": "nope"}]),
            400,
        ),
        (json!([{"op": "move", "path": "/name", "value": "x"}]), 400),
        (json!({"op": "replace"}), 400),
    ];
    for (ops, want) in cases {
        let r = patch(&user, &id, ops.clone()).await;
        assert_eq!(r.status, want, "{ops}: {}", r.text);
    }
    let r = patch(
        &user,
        &id,
        json!([{"op": "remove", "path": "/hw_disk_bus"}]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json().get("hw_disk_bus").is_none());

    // Protected images cannot be deleted.
    let protect = |on: bool| json!([{"op": "replace", "path": "/protected", "value": on}]);
    let r = patch(&user, &id, protect(true)).await;
    assert_eq!(r.json()["protected"], true);
    let r = user.delete(&p).await;
    assert_eq!(r.status, 403);
    assert!(r.text.contains("is protected and cannot be deleted"));
    patch(&user, &id, protect(false)).await;
    // Deleted, then gone; empty ids are unknown too.
    expect_statuses([
        (&user, "DELETE", p.as_str(), None, 204),
        (&user, "GET", &p, None, 404),
        (&user, "DELETE", &p, None, 404),
        (&user, "GET", "/v2/images/", None, 404),
        (&user, "DELETE", "/v2/images/", None, 404),
    ])
    .await;
    let r = user.get("/v2/images/not-a-uuid").await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("No image found with ID not-a-uuid"));
}

#[tokio::test]
async fn create_refusals() {
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let cases = [
        (json!({"name": "x", "status": "active"}), 403),
        (json!({"name": "x", "checksum": "abc"}), 403),
        (json!({"name": "x", "self": "/x"}), 403),
        (
            json!({"name": "x", "os_glance_importing_to_stores": "a"}),
            403,
        ),
        (json!({"name": "x", "visibility": "public"}), 403),
        (json!({"name": "x", "owner": "another-project"}), 403),
        (json!({"name": "x", "disk_format": "nope"}), 400),
        (json!({"name": "x", "container_format": "nope"}), 400),
        (json!({"name": "n".repeat(256)}), 400),
        (json!({"name": 5}), 400),
        (json!({"tags": ["t".repeat(256)]}), 400),
        (json!({"tags": "t"}), 400),
        (json!({"min_ram": "1"}), 400),
        (json!({"protected": "true"}), 400),
        (json!({"custom": 1}), 400),
        (json!({"id": "not-a-uuid"}), 400),
        (json!(["a list"]), 400),
    ];
    for (body, want) in cases {
        let r = user.post("/v2/images", body.clone()).await;
        assert_eq!(r.status, want, "{body}: {}", r.text);
    }
    let r = user
        .post("/v2/images", json!({"name": "x", "status": "active"}))
        .await;
    assert!(
        r.text
            .contains("Attribute &#x27;status&#x27; is read-only."),
        "{}",
        r.text
    );
    // Malformed JSON: 400 in every negotiated shape, never 500.
    for accept in [None, Some("application/json"), Some("text/plain")] {
        let mut rb = user
            .request("POST", "/v2/images")
            .header("content-type", "application/json")
            .body(r#"{"name":"#);
        if let Some(a) = accept {
            rb = rb.header("accept", a);
        }
        let r = send(rb).await;
        assert_eq!(r.status, 400, "{accept:?}");
        assert!(
            r.text.contains("Malformed JSON in request body."),
            "{}",
            r.text
        );
        if accept == Some("application/json") {
            assert_eq!(r.json()["code"], "400 Bad Request");
        }
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = send(user.request("POST", "/v2/images").body(deep)).await;
    assert_eq!(r.status, 400);
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("p{i}"), json!("v"))).collect();
    let r = user.post("/v2/images", Value::Object(many)).await;
    assert_eq!(r.status, 413);
    let big = json!({"name": "x", "description": "d".repeat(200_000)});
    let r = user.post("/v2/images", big).await;
    assert_eq!(r.status, 413);
    // Wrong method on a known route: 405 with Allow.
    let r = user.call("PUT", "/v2/images", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "GET, POST");
    assert!(
        r.text
            .contains("The method PUT is not allowed for this resource.")
    );
}

#[tokio::test]
async fn upload_download_round_trip() {
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let id = create_id(&user, json!({"name": "data", "disk_format": "raw", "container_format": "bare", "visibility": "private"})).await;
    let (s, _, body) = get_bytes(&user, &id, None).await;
    assert_eq!((s, body.len()), (204, 0), "no data yet");
    // Only application/octet-stream.
    let r = send(
        user.request("PUT", &format!("/v2/images/{id}/file"))
            .header("content-type", "application/json")
            .body("abc"),
    )
    .await;
    assert_eq!(r.status, 415);
    let data = pattern(3 * 1024 * 1024 + 123);
    let r = put_file_chunked(&user, &id, data.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let v = image(&user, &id).await;
    assert_eq!(v["status"], "active");
    assert_eq!(v["size"], data.len());
    assert_eq!(v["virtual_size"], data.len());
    assert_eq!(v["checksum"], md5_hex(&data));
    assert_eq!(v["os_hash_algo"], "sha512");
    assert_eq!(v["os_hash_value"], sha512_hex(&data));
    // The whole thing, then a range, then an unsatisfiable range.
    let (s, h, body) = get_bytes(&user, &id, None).await;
    assert_eq!(s, 200);
    assert!(body == data, "downloaded bytes differ");
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-md5"].to_str().unwrap(), md5_hex(&data));
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    let (s, h, body) = get_bytes(&user, &id, Some("bytes=0-15")).await;
    assert_eq!(s, 206);
    assert_eq!(body, data[..16].to_vec());
    assert_eq!(
        h["content-range"].to_str().unwrap(),
        format!("bytes 0-15/{}", data.len())
    );
    let (s, _, body) = get_bytes(&user, &id, Some("bytes=-10")).await;
    assert_eq!((s, body), (206, data[data.len() - 10..].to_vec()));
    let (s, _, _) = get_bytes(&user, &id, Some("bytes=999999999999-")).await;
    assert_eq!(s, 416);
    // A second upload is a conflict.
    let r = put_file(&user, &id, b"abc".to_vec()).await;
    assert_eq!(r.status, 409);
    assert!(
        r.text
            .contains("Image status transition from active to saving is not allowed")
    );
    // Deactivated: metadata readable, data only for admins.
    let actions = format!("/v2/images/{id}/actions");
    let r = user
        .call("POST", &format!("{actions}/deactivate"), None)
        .await;
    expect(&r, 204, "deactivate");
    assert_eq!(image(&user, &id).await["status"], "deactivated");
    let (s, _, _) = get_bytes(&user, &id, None).await;
    assert_eq!(s, 403);
    let admin = Api::admin(&tc).await;
    let (s, _, body) = get_bytes(&admin, &id, None).await;
    assert_eq!(s, 200);
    assert_eq!(body.len(), data.len());
    let r = user
        .call("POST", &format!("{actions}/reactivate"), None)
        .await;
    expect(&r, 204, "reactivate");
    let (s, _, _) = get_bytes(&user, &id, None).await;
    assert_eq!(s, 200);
    // Deactivating a queued image is refused.
    let q = create_id(&user, json!({"name": "q"})).await;
    let r = user
        .call("POST", &format!("/v2/images/{q}/actions/deactivate"), None)
        .await;
    assert_eq!(r.status, 403);
    // Upload with Content-Length too, and a zero-length raw image.
    let sid = create_id(
        &user,
        json!({"name": "small", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    assert_eq!(put_file(&user, &sid, vec![]).await.status, 204);
    let v = image(&user, &sid).await;
    assert_eq!(v["size"], 0);
    assert_eq!(v["checksum"], "d41d8cd98f00b204e9800998ecf8427e");
    // Formats must be set before data.
    let bare = create_id(&user, json!({"name": "noformat"})).await;
    let r = put_file(&user, &bare, vec![1, 2, 3]).await;
    assert_eq!(r.status, 400);
    // Deleting removes the bytes.
    expect(
        &user.delete(&format!("/v2/images/{id}")).await,
        204,
        "delete",
    );
    let region = tc.region(REGION);
    let db_keys: Vec<String> =
        sqlx::query_scalar::<_, String>("SELECT blob_key FROM images WHERE blob_key IS NOT NULL")
            .fetch_all(&region.db.pool)
            .await
            .unwrap();
    let blobs: Vec<String> = tc.blob_keys(REGION).await;
    assert_eq!(
        blobs.len(),
        db_keys.len(),
        "only referenced blobs remain: {blobs:?}"
    );
}

#[tokio::test]
async fn format_enforcement() {
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let new = |name: &str, disk: &str, container: &str| json!({"name": name, "disk_format": disk, "container_format": container});
    // Random bytes claimed as qcow2: 415, image still queued with no data.
    let id = &create_id(&user, new("fake", "qcow2", "bare")).await;
    let r = put_file_chunked(&user, id, pattern(200_000)).await;
    assert_eq!(r.status, 415, "{}", r.text);
    let v = image(&user, id).await;
    assert_eq!(v["status"], "queued");
    assert_eq!(v["size"], Value::Null);
    assert_eq!(v["checksum"], Value::Null);
    assert_eq!(get_bytes(&user, id, None).await.0, 204);
    // A real qcow2 becomes active with its virtual size.
    let dir = std::env::temp_dir().join(format!("glimpse-qcow2-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ok.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg("64M")
        .status();
    match st {
        Ok(s) if s.success() => {
            let bytes = std::fs::read(&file).unwrap();
            let r = put_file(&user, id, bytes.clone()).await;
            assert_eq!(r.status, 204, "{}", r.text);
            let v = image(&user, id).await;
            assert_eq!(v["status"], "active");
            assert_eq!(v["virtual_size"], 64 * 1024 * 1024);
            assert_eq!(v["size"], bytes.len());
            // The same qcow2 claimed as raw is refused (stricter than Glance).
            let raw = create_id(&user, new("liar", "raw", "bare")).await;
            let r = put_file(&user, &raw, bytes).await;
            assert_eq!(r.status, 415);
        }
        _ => {
            eprintln!("qemu-img not available: skipping the real-qcow2 half of format_enforcement")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Non-bare containers are stored as uploaded (as Glance does).
    let ova = create_id(&user, new("ova", "vmdk", "ova")).await;
    let r = put_file(&user, &ova, pattern(5000)).await;
    assert_eq!(r.status, 204);
    assert_eq!(image(&user, &ova).await["virtual_size"], Value::Null);
}

#[tokio::test]
async fn size_cap_and_quota() {
    let tc = TestCloud::start_with(|c| {
        for r in &mut c.regions {
            r.limits.image_size_cap = 100_000;
            r.limits.project_quota_bytes = 250_000;
        }
    })
    .await;
    let user = new_member(&tc).await;
    let new = |name: &str| json!({"name": name, "disk_format": "raw", "container_format": "bare"});
    let aid = create_id(&user, new("a")).await;
    assert_eq!(
        put_file(&user, &aid, pattern(100_001)).await.status,
        413,
        "Content-Length over the cap"
    );
    assert_eq!(
        put_file_chunked(&user, &aid, pattern(100_001)).await.status,
        413,
        "chunked over the cap"
    );
    assert_eq!(image(&user, &aid).await["status"], "queued");
    assert_eq!(put_file(&user, &aid, pattern(100_000)).await.status, 204);
    let bid = create_id(&user, new("b")).await;
    let r = put_file_chunked(&user, &bid, pattern(100_000)).await;
    assert_eq!(r.status, 204);
    let cid = create_id(&user, new("c")).await;
    let r = put_file_chunked(&user, &cid, pattern(60_000)).await;
    assert_eq!(r.status, 413, "quota: {}", r.text);
    assert_eq!(image(&user, &cid).await["status"], "queued");
    assert_eq!(put_file(&user, &cid, pattern(50_000)).await.status, 204);
}

#[tokio::test]
async fn tags() {
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let id = create_id(&user, json!({"name": "tagged", "tags": ["a"]})).await;
    let tags = format!("/v2/images/{id}/tags");
    let b = format!("{tags}/b");
    let a = format!("{tags}/a");
    expect_statuses([
        (&user, "PUT", b.as_str(), None, 204),
        (&user, "PUT", &b, None, 204),
    ])
    .await;
    assert_eq!(image(&user, &id).await["tags"], json!(["a", "b"]));
    let unknown_tag = "/v2/images/00000000-0000-0000-0000-000000000000/tags/x";
    let long = "t".repeat(256);
    expect_statuses([
        (&user, "DELETE", a.as_str(), None, 204),
        (&user, "DELETE", &a, None, 404),
        (&user, "PUT", unknown_tag, None, 404),
        (&user, "PUT", &format!("{tags}/{long}"), None, 400),
    ])
    .await;
}

#[tokio::test]
async fn members_share_accept_and_revoke() {
    let tc = TestCloud::start().await;
    let owner = new_member(&tc).await;
    let (alt_pid, alt) = tc.user_in_new_project("member", REGION).await;
    let alt = Api::new(&tc, alt);
    let third = new_member(&tc).await;
    let id = create_id(
        &owner,
        json!({"name": "to-share", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let p = format!("/v2/images/{id}");
    let members = format!("{p}/members");
    expect(&alt.get(&p).await, 404, "not shared yet");
    let r = owner.post(&members, json!({"member": alt_pid})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status"], "pending");
    assert_eq!(m["member_id"], alt_pid.as_str());
    assert_eq!(m["image_id"], id.as_str());
    assert_eq!(m["schema"], "/v2/schemas/member");
    assert!(r.text.starts_with(r#"{"member_id": "#));
    // A pending member sees the image by id, not in its default list.
    let alt_member = || Some(json!({"member": alt_pid}));
    expect_statuses([
        (&owner, "POST", members.as_str(), alt_member(), 409),
        (&owner, "POST", &members, Some(json!({})), 400),
        (&alt, "POST", &members, Some(json!({"member": "x"})), 403),
        (&alt, "GET", &p, None, 200),
    ])
    .await;
    assert!(!listed(&alt, "/v2/images").await.contains(&id));
    let pending = listed(&alt, "/v2/images?member_status=pending&visibility=shared").await;
    assert_eq!(pending, vec![id.clone()]);
    // Only the member decides; bad statuses are 400.
    let member_path = format!("{members}/{alt_pid}");
    let status = |s: &str| Some(json!({"status": s}));
    expect_statuses([
        (&owner, "PUT", member_path.as_str(), status("accepted"), 403),
        (&alt, "PUT", &member_path, status("notavalidstatus"), 400),
        (&alt, "PUT", &member_path, Some(json!({})), 400),
    ])
    .await;
    let r = alt.put(&member_path, json!({"status": "accepted"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "accepted");
    assert!(listed(&alt, "/v2/images").await.contains(&id));
    // Listing and showing memberships.
    let r = owner.get(&members).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["schema"], "/v2/schemas/members");
    assert_eq!(
        alt.get(&members).await.json()["members"][0]["member_id"],
        alt_pid.as_str()
    );
    // The member may not remove itself; the owner may.
    expect_statuses([
        (&owner, "GET", member_path.as_str(), None, 200),
        (&alt, "GET", &member_path, None, 200),
        (&third, "GET", &member_path, None, 404),
        (&third, "GET", &members, None, 404),
        (&alt, "DELETE", &member_path, None, 403),
        (&owner, "DELETE", &member_path, None, 204),
        (&alt, "GET", &p, None, 404),
        (&owner, "GET", &member_path, None, 404),
    ])
    .await;
    // Only shared images have members.
    let private = create_id(&owner, json!({"name": "private", "visibility": "private"})).await;
    let r = owner
        .post(
            &format!("/v2/images/{private}/members"),
            json!({"member": alt_pid}),
        )
        .await;
    assert_eq!(r.status, 403);
    // Schemas.
    for (path, name) in [
        ("member", "member"),
        ("members", "members"),
        ("image", "image"),
        ("images", "images"),
        ("metadefs/namespace", "namespace"),
        ("metadefs/namespaces", "namespaces"),
        ("metadefs/resource_type", "resource_type_association"),
        ("metadefs/resource_types", "resource_type_associations"),
        ("metadefs/object", "object"),
        ("metadefs/objects", "objects"),
        ("metadefs/property", "property"),
        ("metadefs/properties", "properties"),
        ("metadefs/tag", "tag"),
        ("metadefs/tags", "tags"),
    ] {
        let r = alt.get(&format!("/v2/schemas/{path}")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["name"], name);
    }
}

#[tokio::test]
async fn tenant_isolation() {
    let tc = TestCloud::start().await;
    let a = new_member(&tc).await;
    let b = new_member(&tc).await;
    let admin = Api::admin(&tc).await;
    let new = |name: &str, vis: &str| json!({"name": name, "visibility": vis, "disk_format": "raw", "container_format": "bare"});
    // Another project's private and (unshared) shared images do not exist for B.
    for vis in ["private", "shared"] {
        let id = create_id(&a, new("secret", vis)).await;
        let p = format!("/v2/images/{id}");
        expect(&b.get(&p).await, 404, "GET");
        assert_eq!(patch(&b, &id, rename_to_x()).await.status, 404);
        assert_eq!(put_file(&b, &id, vec![1, 2, 3]).await.status, 404);
        assert_eq!(get_bytes(&b, &id, None).await.0, 404);
        expect_statuses([
            (&b, "DELETE", p.as_str(), None, 404),
            (&b, "POST", &format!("{p}/actions/deactivate"), None, 404),
            (&b, "PUT", &format!("{p}/tags/x"), None, 404),
            (&a, "GET", &p, None, 200),
        ])
        .await;
    }
    // Public (admin-made) and community images: readable, not writable.
    let public = create_id(&admin, new("public", "public")).await;
    assert_eq!(put_file(&admin, &public, pattern(1000)).await.status, 204);
    let community = create_id(&a, new("community", "community")).await;
    for id in [&public, &community] {
        let p = format!("/v2/images/{id}");
        expect(&b.get(&p).await, 200, "GET");
        assert_eq!(patch(&b, id, rename_to_x()).await.status, 403);
        assert_eq!(put_file(&b, id, vec![1]).await.status, 403);
        expect_statuses([
            (&b, "DELETE", p.as_str(), None, 403),
            (&b, "POST", &format!("{p}/actions/deactivate"), None, 403),
        ])
        .await;
    }
    let (s, _, body) = get_bytes(&b, &public, None).await;
    assert_eq!((s, body.len()), (200, 1000));
    // Community images are listed only for their owner unless asked for.
    assert!(!listed(&b, "/v2/images").await.contains(&community));
    assert!(listed(&a, "/v2/images").await.contains(&community));
    assert!(
        listed(&b, "/v2/images?visibility=community")
            .await
            .contains(&community)
    );
    assert!(listed(&b, "/v2/images").await.contains(&public));
    // Admins see and change everything.
    let pid = create_id(&a, new("mine", "private")).await;
    let p = format!("/v2/images/{pid}");
    expect(&admin.get(&p).await, 200, "admin GET");
    let publish = json!([{"op": "replace", "path": "/visibility", "value": "public"}]);
    assert_eq!(patch(&admin, &pid, publish).await.status, 200);
    expect(&admin.delete(&p).await, 204, "admin DELETE");
}

#[tokio::test]
async fn readers_read_but_do_not_write() {
    let tc = TestCloud::start().await;
    let (pid, member) = tc.user_in_new_project("member", REGION).await;
    let member = Api::new(&tc, member);
    let reader = Api::new(&tc, tc.user_in(&pid, "reader").await);
    let id = create_id(&member, json!({"name": "r", "disk_format": "raw", "container_format": "bare", "visibility": "private"})).await;
    assert_eq!(put_file(&member, &id, pattern(2048)).await.status, 204);
    let p = format!("/v2/images/{id}");
    let r = reader.get(&p).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["size"], 2048);
    let named_x = Some(json!({"name": "x"}));
    expect_statuses([
        (&reader, "GET", "/v2/images", None, 200),
        (&reader, "POST", "/v2/images", named_x, 403),
    ])
    .await;
    assert_eq!(patch(&reader, &id, rename_to_x()).await.status, 403);
    let (tag, deactivate) = (format!("{p}/tags/x"), format!("{p}/actions/deactivate"));
    expect_statuses([
        (&reader, "PUT", tag.as_str(), None, 403),
        (&reader, "POST", &deactivate, None, 403),
    ])
    .await;
    assert_eq!(get_bytes(&reader, &id, None).await.0, 403);
    expect(&reader.delete(&p).await, 403, "DELETE");
    let queued = create_id(
        &member,
        json!({"name": "q", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    assert_eq!(put_file(&reader, &queued, vec![1]).await.status, 403);
}

#[tokio::test]
async fn crash_recovery_and_orphan_cleaner() {
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let region = tc
        .cloud
        .regions
        .iter()
        .find(|r| r.name == REGION)
        .unwrap()
        .clone();
    let id = create_id(
        &user,
        json!({"name": "crashed", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    sqlx::query("UPDATE images SET status = 'saving' WHERE id = $1")
        .bind(id.clone())
        .execute(&region.db.pool)
        .await
        .unwrap();
    assert_eq!(image(&user, &id).await["status"], "saving");
    assert_eq!(put_file(&user, &id, vec![1]).await.status, 409);
    assert_eq!(glimpse_core::images::recover(&region).await.unwrap(), 1);
    assert_eq!(image(&user, &id).await["status"], "queued");
    // Now upload for real; then leave an orphan blob and clean it.
    let data = pattern(10_000);
    assert_eq!(put_file(&user, &id, data.clone()).await.status, 204);
    let orphan = region
        .store
        .write(
            futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
                b"orphan",
            ))]),
            |_: &[u8]| Ok(()),
        )
        .await
        .unwrap();
    assert_eq!(
        glimpse_core::images::clean_orphans(&region, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        glimpse_core::images::clean_orphans(&region, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    let keys: Vec<String> = tc.blob_keys(REGION).await;
    assert!(!keys.contains(&orphan.key));
    let (s, _, body) = get_bytes(&user, &id, None).await;
    assert_eq!(s, 200);
    assert!(body == data);
}

async fn image_status(api: &Api<'_>, id: &str) -> String {
    image(api, id).await["status"].as_str().unwrap().to_string()
}

/// A client that goes away in the middle of the body: the image goes back to `queued` and
/// nothing of the partial upload stays in the store.
#[tokio::test]
async fn interrupted_upload_goes_back_to_queued() {
    use tokio::io::AsyncWriteExt;
    let tc = TestCloud::start().await;
    let user = new_member(&tc).await;
    let tok = user.token.clone().unwrap();
    let id = create_id(
        &user,
        json!({"name": "cut", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let addr = tc.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /{REGION}/image/v2/images/{id}/file HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {tok}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 50000000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&pattern(3 << 20)).await.unwrap();
    sock.flush().await.unwrap();
    // Wait (by asking, not sleeping) until the server is saving, then hang up.
    let mut seen = String::new();
    for _ in 0..2000 {
        seen = image_status(&user, &id).await;
        if seen == "saving" {
            break;
        }
    }
    assert_eq!(seen, "saving");
    drop(sock);
    for _ in 0..2000 {
        seen = image_status(&user, &id).await;
        if seen == "queued" {
            break;
        }
    }
    assert_eq!(
        seen, "queued",
        "the interrupted upload must not stay saving"
    );
    let v = image(&user, &id).await;
    assert_eq!(v["size"], Value::Null);
    assert_eq!(v["checksum"], Value::Null);
    // A new upload works, and only its blob is stored.
    assert_eq!(put_file(&user, &id, pattern(1000)).await.status, 204);
    let mut keys: Vec<String> = Vec::new();
    for _ in 0..2000 {
        keys = tc.blob_keys(REGION).await;
        if keys.len() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
}

//! The Glance v2 image API end to end over HTTP, against a whole cloud started in-process on
//! 127.0.0.1:0: records, data (round trip, checksums, ranges, format enforcement, limits),
//! deactivation, tags, members, tenant isolation, reader rules, error shapes, and crash
//! recovery. Listing is covered by `image_list.rs`.

use crate::common;

use std::time::Duration;

use common::TestCloud;
use serde_json::{Value, json};

const REGION: &str = "region-one";

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

fn url(tc: &TestCloud, path: &str) -> String {
    format!("{}{path}", tc.image(REGION))
}

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.unwrap();
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn call(tc: &TestCloud, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = tc
        .http
        .request(m, url(tc, path))
        .header("x-auth-token", token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    send(rb).await
}

async fn create(tc: &TestCloud, token: &str, body: Value) -> Value {
    let r = call(tc, "POST", "/v2/images", token, Some(body)).await;
    assert_eq!(r.status, 201, "create: {}", r.text);
    r.json()
}

async fn patch(tc: &TestCloud, token: &str, id: &str, ops: Value) -> Resp {
    send(
        tc.http
            .patch(url(tc, &format!("/v2/images/{id}")))
            .header("x-auth-token", token)
            .header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(ops.to_string()),
    )
    .await
}

async fn put_file(tc: &TestCloud, token: &str, id: &str, data: Vec<u8>) -> Resp {
    send(
        tc.http
            .put(url(tc, &format!("/v2/images/{id}/file")))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .body(data),
    )
    .await
}

/// Uploads with `Transfer-Encoding: chunked` (as Tempest does).
async fn put_file_chunked(tc: &TestCloud, token: &str, id: &str, data: Vec<u8>) -> Resp {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(3000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    send(
        tc.http
            .put(url(tc, &format!("/v2/images/{id}/file")))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await
}

async fn get_bytes(
    tc: &TestCloud,
    token: &str,
    id: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = tc
        .http
        .get(url(tc, &format!("/v2/images/{id}/file")))
        .header("x-auth-token", token);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let r = rb.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

async fn check_versions(tc: &TestCloud, path: &str) {
    let r = send(tc.http.get(url(tc, path))).await;
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
    let r = send(tc.http.get(url(&tc, "/v2/images"))).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("content-type").starts_with("text/html"),
        "{}",
        r.header("content-type")
    );
    assert!(r.text.contains("<h1>401 Unauthorized</h1>"));
    let r = send(
        tc.http
            .get(url(&tc, "/v2/images"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "401 Unauthorized");
    assert_eq!(r.json()["title"], "Unauthorized");
    let r = send(
        tc.http
            .get(url(&tc, "/v2/images"))
            .header("x-auth-token", "bogus"),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(tc.http.get(url(&tc, "/v2/schemas/image"))).await;
    assert_eq!(r.status, 401);
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
    for (method, path) in [
        ("GET", "/v2/images"),
        ("POST", "/v2/images"),
        ("GET", "/v2/images/00000000-0000-0000-0000-000000000000"),
    ] {
        let r = call(&tc, method, path, &unscoped, Some(json!({"name": "x"}))).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
    }
    let admin = tc.admin_token().await;
    let r = call(&tc, "GET", "/v2/", &admin, None).await;
    assert_eq!(r.status, 404);
    let r = call(&tc, "GET", "/v2/nosuch", &admin, None).await;
    assert_eq!(r.status, 404);
    // No tasks API: refused at creation.
    let task =
        json!({"type": "import", "input": {"import_from": "http://example.invalid/x.qcow2"}});
    assert_eq!(
        call(&tc, "POST", "/v2/tasks", &admin, Some(task.clone()))
            .await
            .status,
        400
    );
    let (_, member) = tc.user_in_new_project("member", REGION).await;
    assert_eq!(
        call(&tc, "POST", "/v2/tasks", &member, Some(task))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn create_show_patch_delete() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", REGION).await;
    let r = call(
        &tc,
        "POST",
        "/v2/images",
        &tok,
        Some(json!({"name": "probe", "disk_format": "raw", "container_format": "bare",
            "tags": ["t1"], "os_distro": "cirros", "ramdisk_id": "00000000-1111-2222-3333-444455556666"})),
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

    let shown = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.json()["ramdisk_id"],
        "00000000-1111-2222-3333-444455556666"
    );

    // Client-chosen ids, and duplicates.
    let chosen = "5c1f2a9e-7d3b-4e61-9a0c-2b8f4d6e1a37";
    let c = create(&tc, &tok, json!({"id": chosen, "name": "chosen"})).await;
    assert_eq!(c["id"], chosen);
    let dup = call(&tc, "POST", "/v2/images", &tok, Some(json!({"id": chosen}))).await;
    assert_eq!(dup.status, 409);

    // PATCH, v2.1 dialect.
    let r = patch(
        &tc,
        &tok,
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
        tc.http
            .patch(url(&tc, &format!("/v2/images/{id}")))
            .header("x-auth-token", &tok)
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
        let mut rb = tc
            .http
            .patch(url(&tc, &format!("/v2/images/{id}")))
            .header("x-auth-token", &tok)
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
        let r = patch(&tc, &tok, &id, ops.clone()).await;
        assert_eq!(r.status, want, "{ops}: {}", r.text);
    }
    let r = patch(
        &tc,
        &tok,
        &id,
        json!([{"op": "remove", "path": "/hw_disk_bus"}]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json().get("hw_disk_bus").is_none());

    // Protected images cannot be deleted.
    let r = patch(
        &tc,
        &tok,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": true}]),
    )
    .await;
    assert_eq!(r.json()["protected"], true);
    let r = call(&tc, "DELETE", &format!("/v2/images/{id}"), &tok, None).await;
    assert_eq!(r.status, 403);
    assert!(r.text.contains("is protected and cannot be deleted"));
    patch(
        &tc,
        &tok,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    let r = call(&tc, "DELETE", &format!("/v2/images/{id}"), &tok, None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&tc, "DELETE", &format!("/v2/images/{id}"), &tok, None)
            .await
            .status,
        404
    );
    // Empty and unknown ids.
    assert_eq!(
        call(&tc, "GET", "/v2/images/", &tok, None).await.status,
        404
    );
    assert_eq!(
        call(&tc, "DELETE", "/v2/images/", &tok, None).await.status,
        404
    );
    let r = call(&tc, "GET", "/v2/images/not-a-uuid", &tok, None).await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("No image found with ID not-a-uuid"));
}

#[tokio::test]
async fn create_refusals() {
    let tc = TestCloud::start().await;
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
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
        let r = call(&tc, "POST", "/v2/images", &tok, Some(body.clone())).await;
        assert_eq!(r.status, want, "{body}: {}", r.text);
    }
    let r = call(
        &tc,
        "POST",
        "/v2/images",
        &tok,
        Some(json!({"name": "x", "status": "active"})),
    )
    .await;
    assert!(
        r.text
            .contains("Attribute &#x27;status&#x27; is read-only."),
        "{}",
        r.text
    );
    // Malformed JSON: 400 in every negotiated shape, never 500.
    for accept in [None, Some("application/json"), Some("text/plain")] {
        let mut rb = tc
            .http
            .post(url(&tc, "/v2/images"))
            .header("x-auth-token", &tok)
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
    let r = send(
        tc.http
            .post(url(&tc, "/v2/images"))
            .header("x-auth-token", &tok)
            .body(deep),
    )
    .await;
    assert_eq!(r.status, 400);
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("p{i}"), json!("v"))).collect();
    let r = call(&tc, "POST", "/v2/images", &tok, Some(Value::Object(many))).await;
    assert_eq!(r.status, 413);
    let big = json!({"name": "x", "description": "d".repeat(200_000)});
    let r = call(&tc, "POST", "/v2/images", &tok, Some(big)).await;
    assert_eq!(r.status, 413);
    // Wrong method on a known route: 405 with Allow.
    let r = call(&tc, "PUT", "/v2/images", &tok, None).await;
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
    let (pid, tok) = tc.user_in_new_project("member", REGION).await;
    let img = create(&tc, &tok, json!({"name": "data", "disk_format": "raw", "container_format": "bare", "visibility": "private"})).await;
    let id = img["id"].as_str().unwrap().to_string();
    let (s, _, body) = get_bytes(&tc, &tok, &id, None).await;
    assert_eq!((s, body.len()), (204, 0), "no data yet");
    // Only application/octet-stream.
    let r = send(
        tc.http
            .put(url(&tc, &format!("/v2/images/{id}/file")))
            .header("x-auth-token", &tok)
            .header("content-type", "application/json")
            .body("abc"),
    )
    .await;
    assert_eq!(r.status, 415);
    let data = pattern(3 * 1024 * 1024 + 123);
    let r = put_file_chunked(&tc, &tok, &id, data.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let v = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
        .await
        .json();
    assert_eq!(v["status"], "active");
    assert_eq!(v["size"], data.len());
    assert_eq!(v["virtual_size"], data.len());
    assert_eq!(v["checksum"], md5_hex(&data));
    assert_eq!(v["os_hash_algo"], "sha512");
    assert_eq!(v["os_hash_value"], sha512_hex(&data));
    // The whole thing, then a range, then an unsatisfiable range.
    let (s, h, body) = get_bytes(&tc, &tok, &id, None).await;
    assert_eq!(s, 200);
    assert!(body == data, "downloaded bytes differ");
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-md5"].to_str().unwrap(), md5_hex(&data));
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    let (s, h, body) = get_bytes(&tc, &tok, &id, Some("bytes=0-15")).await;
    assert_eq!(s, 206);
    assert_eq!(body, data[..16].to_vec());
    assert_eq!(
        h["content-range"].to_str().unwrap(),
        format!("bytes 0-15/{}", data.len())
    );
    let (s, _, body) = get_bytes(&tc, &tok, &id, Some("bytes=-10")).await;
    assert_eq!((s, body), (206, data[data.len() - 10..].to_vec()));
    let (s, _, _) = get_bytes(&tc, &tok, &id, Some("bytes=999999999999-")).await;
    assert_eq!(s, 416);
    // A second upload is a conflict.
    let r = put_file(&tc, &tok, &id, b"abc".to_vec()).await;
    assert_eq!(r.status, 409);
    assert!(
        r.text
            .contains("Image status transition from active to saving is not allowed")
    );
    // Deactivated: metadata readable, data only for admins.
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("/v2/images/{id}/actions/deactivate"),
            &tok,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
            .await
            .json()["status"],
        "deactivated"
    );
    let (s, _, _) = get_bytes(&tc, &tok, &id, None).await;
    assert_eq!(s, 403);
    let admin = tc.admin_token().await;
    let (s, _, body) = get_bytes(&tc, &admin, &id, None).await;
    assert_eq!(s, 200);
    assert_eq!(body.len(), data.len());
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("/v2/images/{id}/actions/reactivate"),
            &tok,
            None
        )
        .await
        .status,
        204
    );
    let (s, _, _) = get_bytes(&tc, &tok, &id, None).await;
    assert_eq!(s, 200);
    // Deactivating a queued image is refused.
    let q = create(&tc, &tok, json!({"name": "q"})).await;
    let r = call(
        &tc,
        "POST",
        &format!(
            "/v2/images/{}/actions/deactivate",
            q["id"].as_str().unwrap()
        ),
        &tok,
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    // Upload with Content-Length too, and a zero-length raw image.
    let small = create(
        &tc,
        &tok,
        json!({"name": "small", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let sid = small["id"].as_str().unwrap();
    assert_eq!(put_file(&tc, &tok, sid, vec![]).await.status, 204);
    let v = call(&tc, "GET", &format!("/v2/images/{sid}"), &tok, None)
        .await
        .json();
    assert_eq!(v["size"], 0);
    assert_eq!(v["checksum"], "d41d8cd98f00b204e9800998ecf8427e");
    // Formats must be set before data.
    let bare = create(&tc, &tok, json!({"name": "noformat"})).await;
    let r = put_file(&tc, &tok, bare["id"].as_str().unwrap(), vec![1, 2, 3]).await;
    assert_eq!(r.status, 400);
    // Deleting removes the bytes.
    assert_eq!(
        call(&tc, "DELETE", &format!("/v2/images/{id}"), &tok, None)
            .await
            .status,
        204
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
    let _ = pid;
}

#[tokio::test]
async fn format_enforcement() {
    let tc = TestCloud::start().await;
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
    // Random bytes claimed as qcow2: 415, image still queued with no data.
    let img = create(
        &tc,
        &tok,
        json!({"name": "fake", "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await;
    let id = img["id"].as_str().unwrap();
    let r = put_file_chunked(&tc, &tok, id, pattern(200_000)).await;
    assert_eq!(r.status, 415, "{}", r.text);
    let v = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
        .await
        .json();
    assert_eq!(v["status"], "queued");
    assert_eq!(v["size"], Value::Null);
    assert_eq!(v["checksum"], Value::Null);
    assert_eq!(get_bytes(&tc, &tok, id, None).await.0, 204);
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
            let r = put_file(&tc, &tok, id, bytes.clone()).await;
            assert_eq!(r.status, 204, "{}", r.text);
            let v = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
                .await
                .json();
            assert_eq!(v["status"], "active");
            assert_eq!(v["virtual_size"], 64 * 1024 * 1024);
            assert_eq!(v["size"], bytes.len());
            // The same qcow2 claimed as raw is refused (stricter than Glance).
            let raw = create(
                &tc,
                &tok,
                json!({"name": "liar", "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
            let r = put_file(&tc, &tok, raw["id"].as_str().unwrap(), bytes).await;
            assert_eq!(r.status, 415);
        }
        _ => {
            eprintln!("qemu-img not available: skipping the real-qcow2 half of format_enforcement")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Non-bare containers are stored as uploaded (as Glance does).
    let ova = create(
        &tc,
        &tok,
        json!({"name": "ova", "disk_format": "vmdk", "container_format": "ova"}),
    )
    .await;
    let r = put_file(&tc, &tok, ova["id"].as_str().unwrap(), pattern(5000)).await;
    assert_eq!(r.status, 204);
    let v = call(
        &tc,
        "GET",
        &format!("/v2/images/{}", ova["id"].as_str().unwrap()),
        &tok,
        None,
    )
    .await
    .json();
    assert_eq!(v["virtual_size"], Value::Null);
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
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
    let new = |name: &str| json!({"name": name, "disk_format": "raw", "container_format": "bare"});
    let a = create(&tc, &tok, new("a")).await;
    let aid = a["id"].as_str().unwrap();
    assert_eq!(
        put_file(&tc, &tok, aid, pattern(100_001)).await.status,
        413,
        "Content-Length over the cap"
    );
    assert_eq!(
        put_file_chunked(&tc, &tok, aid, pattern(100_001))
            .await
            .status,
        413,
        "chunked over the cap"
    );
    let v = call(&tc, "GET", &format!("/v2/images/{aid}"), &tok, None)
        .await
        .json();
    assert_eq!(v["status"], "queued");
    assert_eq!(put_file(&tc, &tok, aid, pattern(100_000)).await.status, 204);
    let b = create(&tc, &tok, new("b")).await;
    assert_eq!(
        put_file_chunked(&tc, &tok, b["id"].as_str().unwrap(), pattern(100_000))
            .await
            .status,
        204
    );
    let c = create(&tc, &tok, new("c")).await;
    let cid = c["id"].as_str().unwrap();
    let r = put_file_chunked(&tc, &tok, cid, pattern(60_000)).await;
    assert_eq!(r.status, 413, "quota: {}", r.text);
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{cid}"), &tok, None)
            .await
            .json()["status"],
        "queued"
    );
    assert_eq!(put_file(&tc, &tok, cid, pattern(50_000)).await.status, 204);
}

#[tokio::test]
async fn tags() {
    let tc = TestCloud::start().await;
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
    let img = create(&tc, &tok, json!({"name": "tagged", "tags": ["a"]})).await;
    let id = img["id"].as_str().unwrap();
    assert_eq!(
        call(&tc, "PUT", &format!("/v2/images/{id}/tags/b"), &tok, None)
            .await
            .status,
        204
    );
    assert_eq!(
        call(&tc, "PUT", &format!("/v2/images/{id}/tags/b"), &tok, None)
            .await
            .status,
        204
    );
    let v = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
        .await
        .json();
    assert_eq!(v["tags"], json!(["a", "b"]));
    assert_eq!(
        call(
            &tc,
            "DELETE",
            &format!("/v2/images/{id}/tags/a"),
            &tok,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(
            &tc,
            "DELETE",
            &format!("/v2/images/{id}/tags/a"),
            &tok,
            None
        )
        .await
        .status,
        404
    );
    let unknown = "00000000-0000-0000-0000-000000000000";
    assert_eq!(
        call(
            &tc,
            "PUT",
            &format!("/v2/images/{unknown}/tags/x"),
            &tok,
            None
        )
        .await
        .status,
        404
    );
    let long = "t".repeat(256);
    assert_eq!(
        call(
            &tc,
            "PUT",
            &format!("/v2/images/{id}/tags/{long}"),
            &tok,
            None
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn members_share_accept_and_revoke() {
    let tc = TestCloud::start().await;
    let (_, owner) = tc.user_in_new_project("member", REGION).await;
    let (alt_pid, alt) = tc.user_in_new_project("member", REGION).await;
    let (_, third) = tc.user_in_new_project("member", REGION).await;
    let img = create(
        &tc,
        &owner,
        json!({"name": "to-share", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = img["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &alt, None)
            .await
            .status,
        404
    );
    let r = call(
        &tc,
        "POST",
        &format!("/v2/images/{id}/members"),
        &owner,
        Some(json!({"member": alt_pid})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["status"], "pending");
    assert_eq!(m["member_id"], alt_pid.as_str());
    assert_eq!(m["image_id"], id.as_str());
    assert_eq!(m["schema"], "/v2/schemas/member");
    assert!(r.text.starts_with(r#"{"member_id": "#));
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("/v2/images/{id}/members"),
            &owner,
            Some(json!({"member": alt_pid}))
        )
        .await
        .status,
        409
    );
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("/v2/images/{id}/members"),
            &owner,
            Some(json!({}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("/v2/images/{id}/members"),
            &alt,
            Some(json!({"member": "x"}))
        )
        .await
        .status,
        403
    );
    // A pending member sees the image by id, not in its default list.
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &alt, None)
            .await
            .status,
        200
    );
    let ids = |v: Value| common::http::owned_strings(&v["images"], "id");
    assert!(!ids(call(&tc, "GET", "/v2/images", &alt, None).await.json()).contains(&id));
    let r = call(
        &tc,
        "GET",
        "/v2/images?member_status=pending&visibility=shared",
        &alt,
        None,
    )
    .await;
    assert_eq!(ids(r.json()), vec![id.clone()]);
    // Only the member decides; bad statuses are 400.
    let member_path = format!("/v2/images/{id}/members/{alt_pid}");
    assert_eq!(
        call(
            &tc,
            "PUT",
            &member_path,
            &owner,
            Some(json!({"status": "accepted"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(
            &tc,
            "PUT",
            &member_path,
            &alt,
            Some(json!({"status": "notavalidstatus"}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        call(&tc, "PUT", &member_path, &alt, Some(json!({})))
            .await
            .status,
        400
    );
    let r = call(
        &tc,
        "PUT",
        &member_path,
        &alt,
        Some(json!({"status": "accepted"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "accepted");
    assert!(ids(call(&tc, "GET", "/v2/images", &alt, None).await.json()).contains(&id));
    // Listing and showing memberships.
    let r = call(
        &tc,
        "GET",
        &format!("/v2/images/{id}/members"),
        &owner,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["schema"], "/v2/schemas/members");
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}/members"), &alt, None)
            .await
            .json()["members"][0]["member_id"],
        alt_pid.as_str()
    );
    assert_eq!(
        call(&tc, "GET", &member_path, &owner, None).await.status,
        200
    );
    assert_eq!(call(&tc, "GET", &member_path, &alt, None).await.status, 200);
    assert_eq!(
        call(&tc, "GET", &member_path, &third, None).await.status,
        404
    );
    assert_eq!(
        call(
            &tc,
            "GET",
            &format!("/v2/images/{id}/members"),
            &third,
            None
        )
        .await
        .status,
        404
    );
    // The member may not remove itself; the owner may.
    assert_eq!(
        call(&tc, "DELETE", &member_path, &alt, None).await.status,
        403
    );
    assert_eq!(
        call(&tc, "DELETE", &member_path, &owner, None).await.status,
        204
    );
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &alt, None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&tc, "GET", &member_path, &owner, None).await.status,
        404
    );
    // Only shared images have members.
    let private = create(
        &tc,
        &owner,
        json!({"name": "private", "visibility": "private"}),
    )
    .await;
    let r = call(
        &tc,
        "POST",
        &format!("/v2/images/{}/members", private["id"].as_str().unwrap()),
        &owner,
        Some(json!({"member": alt_pid})),
    )
    .await;
    assert_eq!(r.status, 403);
    // Schemas.
    for (path, name) in [
        ("member", "member"),
        ("members", "members"),
        ("image", "image"),
        ("images", "images"),
    ] {
        let r = call(&tc, "GET", &format!("/v2/schemas/{path}"), &alt, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["name"], name);
    }
    for (path, name) in [
        ("namespace", "namespace"),
        ("namespaces", "namespaces"),
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
        ("object", "object"),
        ("objects", "objects"),
        ("property", "property"),
        ("properties", "properties"),
        ("tag", "tag"),
        ("tags", "tags"),
    ] {
        let r = call(
            &tc,
            "GET",
            &format!("/v2/schemas/metadefs/{path}"),
            &alt,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["name"], name);
    }
}

#[tokio::test]
async fn tenant_isolation() {
    let tc = TestCloud::start().await;
    let (_, a) = tc.user_in_new_project("member", REGION).await;
    let (_, b) = tc.user_in_new_project("member", REGION).await;
    let admin = tc.admin_token().await;
    let new = |name: &str, vis: &str| json!({"name": name, "visibility": vis, "disk_format": "raw", "container_format": "bare"});
    // Another project's private and (unshared) shared images do not exist for B.
    for vis in ["private", "shared"] {
        let img = create(&tc, &a, new("secret", vis)).await;
        let id = img["id"].as_str().unwrap();
        let p = format!("/v2/images/{id}");
        assert_eq!(call(&tc, "GET", &p, &b, None).await.status, 404);
        assert_eq!(
            patch(
                &tc,
                &b,
                id,
                json!([{"op": "replace", "path": "/name", "value": "x"}])
            )
            .await
            .status,
            404
        );
        assert_eq!(put_file(&tc, &b, id, vec![1, 2, 3]).await.status, 404);
        assert_eq!(get_bytes(&tc, &b, id, None).await.0, 404);
        assert_eq!(call(&tc, "DELETE", &p, &b, None).await.status, 404);
        assert_eq!(
            call(&tc, "POST", &format!("{p}/actions/deactivate"), &b, None)
                .await
                .status,
            404
        );
        assert_eq!(
            call(&tc, "PUT", &format!("{p}/tags/x"), &b, None)
                .await
                .status,
            404
        );
        assert_eq!(call(&tc, "GET", &p, &a, None).await.status, 200);
    }
    // Public (admin-made) and community images: readable, not writable.
    let public = create(&tc, &admin, new("public", "public")).await;
    assert_eq!(
        put_file(&tc, &admin, public["id"].as_str().unwrap(), pattern(1000))
            .await
            .status,
        204
    );
    let community = create(&tc, &a, new("community", "community")).await;
    for img in [&public, &community] {
        let id = img["id"].as_str().unwrap();
        let p = format!("/v2/images/{id}");
        assert_eq!(call(&tc, "GET", &p, &b, None).await.status, 200);
        assert_eq!(
            patch(
                &tc,
                &b,
                id,
                json!([{"op": "replace", "path": "/name", "value": "x"}])
            )
            .await
            .status,
            403
        );
        assert_eq!(put_file(&tc, &b, id, vec![1]).await.status, 403);
        assert_eq!(call(&tc, "DELETE", &p, &b, None).await.status, 403);
        assert_eq!(
            call(&tc, "POST", &format!("{p}/actions/deactivate"), &b, None)
                .await
                .status,
            403
        );
    }
    let (s, _, body) = get_bytes(&tc, &b, public["id"].as_str().unwrap(), None).await;
    assert_eq!((s, body.len()), (200, 1000));
    // Community images are listed only for their owner unless asked for.
    let ids = |v: Value| common::http::owned_strings(&v["images"], "id");
    let cid = community["id"].as_str().unwrap().to_string();
    assert!(!ids(call(&tc, "GET", "/v2/images", &b, None).await.json()).contains(&cid));
    assert!(ids(call(&tc, "GET", "/v2/images", &a, None).await.json()).contains(&cid));
    assert!(
        ids(
            call(&tc, "GET", "/v2/images?visibility=community", &b, None)
                .await
                .json()
        )
        .contains(&cid)
    );
    assert!(
        ids(call(&tc, "GET", "/v2/images", &b, None).await.json())
            .contains(&public["id"].as_str().unwrap().to_string())
    );
    // Admins see and change everything.
    let private = create(&tc, &a, new("mine", "private")).await;
    let pid = private["id"].as_str().unwrap();
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{pid}"), &admin, None)
            .await
            .status,
        200
    );
    assert_eq!(
        patch(
            &tc,
            &admin,
            pid,
            json!([{"op": "replace", "path": "/visibility", "value": "public"}])
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(&tc, "DELETE", &format!("/v2/images/{pid}"), &admin, None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn readers_read_but_do_not_write() {
    let tc = TestCloud::start().await;
    let (pid, member) = tc.user_in_new_project("member", REGION).await;
    let reader = tc.user_in(&pid, "reader").await;
    let img = create(&tc, &member, json!({"name": "r", "disk_format": "raw", "container_format": "bare", "visibility": "private"})).await;
    let id = img["id"].as_str().unwrap();
    assert_eq!(put_file(&tc, &member, id, pattern(2048)).await.status, 204);
    let p = format!("/v2/images/{id}");
    let r = call(&tc, "GET", &p, &reader, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["size"], 2048);
    assert_eq!(
        call(&tc, "GET", "/v2/images", &reader, None).await.status,
        200
    );
    assert_eq!(
        call(
            &tc,
            "POST",
            "/v2/images",
            &reader,
            Some(json!({"name": "x"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        patch(
            &tc,
            &reader,
            id,
            json!([{"op": "replace", "path": "/name", "value": "x"}])
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(&tc, "PUT", &format!("{p}/tags/x"), &reader, None)
            .await
            .status,
        403
    );
    assert_eq!(
        call(
            &tc,
            "POST",
            &format!("{p}/actions/deactivate"),
            &reader,
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(get_bytes(&tc, &reader, id, None).await.0, 403);
    assert_eq!(call(&tc, "DELETE", &p, &reader, None).await.status, 403);
    let queued = create(
        &tc,
        &member,
        json!({"name": "q", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    assert_eq!(
        put_file(&tc, &reader, queued["id"].as_str().unwrap(), vec![1])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn crash_recovery_and_orphan_cleaner() {
    let tc = TestCloud::start().await;
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
    let region = tc
        .cloud
        .regions
        .iter()
        .find(|r| r.name == REGION)
        .unwrap()
        .clone();
    let img = create(
        &tc,
        &tok,
        json!({"name": "crashed", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = img["id"].as_str().unwrap().to_string();
    sqlx::query("UPDATE images SET status = 'saving' WHERE id = $1")
        .bind(id.clone())
        .execute(&region.db.pool)
        .await
        .unwrap();
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
            .await
            .json()["status"],
        "saving"
    );
    assert_eq!(put_file(&tc, &tok, &id, vec![1]).await.status, 409);
    assert_eq!(glimpse_core::images::recover(&region).await.unwrap(), 1);
    assert_eq!(
        call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
            .await
            .json()["status"],
        "queued"
    );
    // Now upload for real; then leave an orphan blob and clean it.
    let data = pattern(10_000);
    assert_eq!(put_file(&tc, &tok, &id, data.clone()).await.status, 204);
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
    let (s, _, body) = get_bytes(&tc, &tok, &id, None).await;
    assert_eq!(s, 200);
    assert!(body == data);
}

async fn image_status(tc: &TestCloud, tok: &str, id: &str) -> String {
    let v = call(tc, "GET", &format!("/v2/images/{id}"), tok, None)
        .await
        .json();
    v["status"].as_str().unwrap().to_string()
}

/// A client that goes away in the middle of the body: the image goes back to `queued` and
/// nothing of the partial upload stays in the store.
#[tokio::test]
async fn interrupted_upload_goes_back_to_queued() {
    use tokio::io::AsyncWriteExt;
    let tc = TestCloud::start().await;
    let (_, tok) = tc.user_in_new_project("member", REGION).await;
    let img = create(
        &tc,
        &tok,
        json!({"name": "cut", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = img["id"].as_str().unwrap().to_string();
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
        seen = image_status(&tc, &tok, &id).await;
        if seen == "saving" {
            break;
        }
    }
    assert_eq!(seen, "saving");
    drop(sock);
    for _ in 0..2000 {
        seen = image_status(&tc, &tok, &id).await;
        if seen == "queued" {
            break;
        }
    }
    assert_eq!(
        seen, "queued",
        "the interrupted upload must not stay saving"
    );
    let v = call(&tc, "GET", &format!("/v2/images/{id}"), &tok, None)
        .await
        .json();
    assert_eq!(v["size"], Value::Null);
    assert_eq!(v["checksum"], Value::Null);
    // A new upload works, and only its blob is stored.
    assert_eq!(put_file(&tc, &tok, &id, pattern(1000)).await.status, 204);
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

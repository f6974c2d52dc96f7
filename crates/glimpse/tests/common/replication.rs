//! Helpers for the replication suites (`tests/replication*.rs`): projects and users in given
//! regions, the service account (created here when bootstrap does not make it yet), and
//! small clients of the replicator extension.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};

use super::{TestCloud, glance};

pub const ONE: &str = "region-one";
pub const TWO: &str = "region-two";

/// A response read whole.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

pub async fn read(r: reqwest::Response) -> Resp {
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

/// Makes sure the regions' service account can log in: if bootstrap did not create it, the
/// admin creates project `service`, user `glimpse-service` with the admin role there, and
/// writes its password where the regions read it (`<data_dir>/service-password`).
pub async fn ensure_service_account(tc: &TestCloud) {
    let region = &tc.cloud.regions[0];
    if region.service.token().await.is_ok() {
        return;
    }
    let cfg = &tc.cloud.config.identity;
    let admin = tc.admin_token().await;
    let listed: Value = get(
        tc,
        &admin,
        &format!("/projects?name={}", cfg.service_project),
    )
    .await;
    let pid = match listed["projects"].as_array().and_then(|a| a.first()) {
        Some(p) => p["id"].as_str().unwrap().to_string(),
        None => {
            let p = post(
                tc,
                &admin,
                "/projects",
                json!({"project": {"name": cfg.service_project, "domain_id": "default"}}),
            )
            .await;
            p["project"]["id"].as_str().unwrap().to_string()
        }
    };
    let password = uuid::Uuid::new_v4().simple().to_string();
    let u = post(
        tc,
        &admin,
        "/users",
        json!({"user": {"name": cfg.service_user,
        "password": password, "domain_id": "default"}}),
    )
    .await;
    let uid = u["user"]["id"]
        .as_str()
        .expect("service user id")
        .to_string();
    grant(tc, &admin, &pid, &uid, "admin").await;
    std::fs::write(tc.data_dir.join("service-password"), &password).unwrap();
    region.service.forget().await;
    region
        .service
        .token()
        .await
        .expect("the service account logs in");
}

async fn get(tc: &TestCloud, token: &str, path: &str) -> Value {
    let r = super::http::get(&tc.http, format!("{}{path}", tc.identity()), token).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn post(tc: &TestCloud, token: &str, path: &str, body: Value) -> Value {
    let url = format!("{}{path}", tc.identity());
    super::http::post_json(&tc.http, url, token, &body, 201).await
}

/// Creates a project homed in `region`; returns (id, name).
pub async fn project(tc: &TestCloud, admin: &str, region: &str) -> (String, String) {
    let name = format!("p-{}", uuid::Uuid::new_v4().simple());
    let p = post(
        tc,
        admin,
        "/projects",
        json!({"project": {"name": name, "domain_id": "default", "home_region": region}}),
    )
    .await;
    (p["project"]["id"].as_str().unwrap().to_string(), name)
}

/// Creates a user with password `secret`; returns (id, name).
pub async fn user(tc: &TestCloud, admin: &str) -> (String, String) {
    let name = format!("u-{}", uuid::Uuid::new_v4().simple());
    let u = post(
        tc,
        admin,
        "/users",
        json!({"user": {"name": name, "password": "secret", "domain_id": "default"}}),
    )
    .await;
    (u["user"]["id"].as_str().unwrap().to_string(), name)
}

/// Grants `role` (by name) to a user on a project.
pub async fn grant(tc: &TestCloud, admin: &str, pid: &str, uid: &str, role: &str) {
    let roles = get(tc, admin, &format!("/roles?name={role}")).await;
    let rid = roles["roles"][0]["id"]
        .as_str()
        .expect("role id")
        .to_string();
    let r = tc
        .http
        .put(format!(
            "{}/projects/{pid}/users/{uid}/roles/{rid}",
            tc.identity()
        ))
        .header("x-auth-token", admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "grant {role}");
}

/// The replicator's base URL in a region.
pub fn ext(tc: &TestCloud, region: &str) -> String {
    format!("{}/v2/extension", tc.image(region))
}

/// `POST /image_replicator/jobs` with a JSON body and optional extra headers.
pub async fn submit(
    tc: &TestCloud,
    region: &str,
    token: &str,
    body: Value,
    extra: &[(&str, &str)],
) -> Resp {
    let mut rb = tc
        .http
        .post(format!("{}/image_replicator/jobs", ext(tc, region)))
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    read(rb.send().await.unwrap()).await
}

/// Submits a copy of `image_id` into `tenant` (the seed's body, no extra headers).
pub async fn submit_copy(
    tc: &TestCloud,
    region: &str,
    token: &str,
    image_id: &str,
    tenant: &str,
) -> Resp {
    let body = json!({"image_id": image_id, "tenant_id_dst": tenant});
    submit(tc, region, token, body, &[]).await
}

/// Submits and expects 202; returns the job id.
pub async fn submit_ok(
    tc: &TestCloud,
    region: &str,
    token: &str,
    image_id: &str,
    tenant: &str,
) -> String {
    let r = submit_copy(tc, region, token, image_id, tenant).await;
    assert_eq!(r.status, 202, "submit: {}", r.text);
    r.json()["job_id"].as_str().unwrap().to_string()
}

/// `GET /image_replicator/jobs{rest}`, read whole.
async fn get_jobs(tc: &TestCloud, region: &str, token: &str, rest: &str) -> Resp {
    let url = format!("{}/image_replicator/jobs{rest}", ext(tc, region));
    read(super::http::get(&tc.http, url, token).await).await
}

pub async fn list(tc: &TestCloud, region: &str, token: &str) -> Resp {
    get_jobs(tc, region, token, "").await
}

pub async fn show(tc: &TestCloud, region: &str, token: &str, job: &str) -> Resp {
    get_jobs(tc, region, token, &format!("/{job}")).await
}

pub async fn cancel(tc: &TestCloud, region: &str, token: &str, job: &str) -> Resp {
    read(
        tc.http
            .delete(format!("{}/image_replicator/jobs/{job}", ext(tc, region)))
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Polls a job (every 50 ms, at most 60 s) until its status is one of `want`; panics with
/// the last answer otherwise. Returns the job object.
pub async fn wait_for(
    tc: &TestCloud,
    region: &str,
    token: &str,
    job: &str,
    want: &[&str],
) -> Value {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = Value::Null;
    for _ in 0..1200 {
        tick.tick().await;
        let r = show(tc, region, token, job).await;
        assert_eq!(r.status, 200, "show {job}: {}", r.text);
        last = r.json();
        let status = last["status"].as_str().unwrap_or("");
        if want.contains(&status) {
            return last;
        }
        if ["replicated", "error", "canceled"].contains(&status) {
            panic!(
                "job {job} ended {status} (wanted {want:?}): {last} {}",
                r.header("x-glimpse-job-error")
            );
        }
    }
    panic!("job {job} never reached {want:?}: {last}");
}

/// Deterministic pseudo-random bytes (a xorshift stream), so copies are not trivially
/// compressible or repetitive.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A user who is member of project `a` (region-one) and project `b` (region-two), with a
/// token scoped to each (`user_name`'s password is `secret`).
pub struct World {
    pub admin: String,
    pub user_id: String,
    pub user_name: String,
    pub a: String,
    pub a_name: String,
    pub b: String,
    pub tok_a: String,
    pub tok_b: String,
}

pub async fn world(tc: &TestCloud) -> World {
    ensure_service_account(tc).await;
    let admin = tc.admin_token().await;
    let (a, a_name) = project(tc, &admin, ONE).await;
    let (b, b_name) = project(tc, &admin, TWO).await;
    let (user_id, user_name) = user(tc, &admin).await;
    grant(tc, &admin, &a, &user_id, "member").await;
    grant(tc, &admin, &b, &user_id, "member").await;
    let tok_a = tc.token(&user_name, "secret", &a_name).await;
    let tok_b = tc.token(&user_name, "secret", &b_name).await;
    World {
        admin,
        user_id,
        user_name,
        a,
        a_name,
        b,
        tok_a,
        tok_b,
    }
}

/// `DELETE /v2/images/{id}` in `region`; the status.
pub async fn delete_image(tc: &TestCloud, region: &str, token: &str, id: &str) -> u16 {
    let r = tc
        .http
        .delete(format!("{}/v2/images/{id}", tc.image(region)))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// Creates an image in `region` with extra properties and uploads `data`; returns its id.
pub async fn active_image(
    tc: &TestCloud,
    region: &str,
    token: &str,
    props: Value,
    data: Vec<u8>,
) -> String {
    let mut body =
        json!({"name": "Test-image-Ubuntu", "disk_format": "raw", "container_format": "bare"});
    body.as_object_mut()
        .unwrap()
        .extend(props.as_object().unwrap().clone());
    let url = tc.image(region);
    let id = glance::create_image(&tc.http, &url, token, body).await;
    let (status, text) = glance::upload(&tc.http, &url, token, &id, data).await;
    assert_eq!(status, 204, "upload: {text}");
    id
}

/// A started cloud, its [`World`], and an active image of `w.tok_a` in region-one with the
/// properties `props` and `len` bytes of [`data`]`(len, seed)`: (cloud, world, bytes, image id).
pub async fn cloud_with_image(
    props: Value,
    len: usize,
    seed: u64,
) -> (TestCloud, World, Vec<u8>, String) {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let bytes = data(len, seed);
    let src = active_image(&tc, ONE, &w.tok_a, props, bytes.clone()).await;
    (tc, w, bytes, src)
}

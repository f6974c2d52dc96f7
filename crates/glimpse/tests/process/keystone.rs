//! Glimpse beside an existing OpenStack (issue 15): upstream Keystone (the suite's, started by
//! `scripts/services.sh`), two image-only Glimpse regions in separate processes with identity
//! off, registered in that Keystone by `glimpse register`, and every client call through
//! Keystone's catalog. Region names are unique per test, so tests share the one Keystone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common;

use common::glance::{create_bare, download, sha512_hex, show, upload};
use common::keystone::{Keystone, OwnKeystone, TestAccount, unique};
use common::osc::{Osc, openstack_cli};
use common::process::replicator::Replicator;
use common::process::{GlimpseProcess, free_port, raw_image, temp_dir};
use serde_json::{Value, json};

const SERVICES: &str = r#"["image", "ims", "kms"]"#;

/// Two Glimpse processes, region `one` in `a` and region `two` in `b`, on a Keystone.
struct Beside {
    keystone_url: String,
    one: String,
    two: String,
    a: GlimpseProcess,
    b: GlimpseProcess,
    dir_a: PathBuf,
    dirs: Vec<PathBuf>,
    /// clouds.yaml with cloud `admin` (the Keystone's admin, in region `one`).
    clouds: PathBuf,
    admin_password: String,
    http: reqwest::Client,
    /// What `glimpse register` printed.
    registered: String,
}

impl Beside {
    /// Registers the regions in `ks` (whose admin logs in) and starts both processes, each
    /// validating tokens with `ks` and caching answers `cache_seconds`.
    async fn start(ks: &Keystone, cache_seconds: u64) -> Beside {
        let (one, two) = (unique("ks-one"), unique("ks-two"));
        let (dir_a, dir_b, home) = (temp_dir(), temp_dir(), temp_dir());
        let (port_a, port_b) = (free_port(), free_port());
        let (service_user, service_password) = (unique("glimpse"), unique("pw"));
        let config = |dir: &PathBuf, port: u16, me: &str, other: &str, other_port: u16| {
            let text = format!(
                "data_dir = {dir:?}\nlisten = \"127.0.0.1:{port}\"\n\
                 [identity]\nenabled = false\nurl = \"{url}\"\nservice_user = \"{service_user}\"\n\
                 service_password = \"{service_password}\"\nvalidation_cache_seconds = {cache_seconds}\n\
                 [[regions]]\nname = \"{me}\"\nservices = {SERVICES}\n\
                 [[regions]]\nname = \"{other}\"\nserve = false\n\
                 url = \"http://127.0.0.1:{other_port}/{other}\"\nservices = {SERVICES}\n",
                url = ks.url,
            );
            let path = dir.join("glimpse.toml");
            std::fs::write(&path, text).unwrap();
            path
        };
        let conf_a = config(&dir_a, port_a, &one, &two, port_b);
        let conf_b = config(&dir_b, port_b, &two, &one, port_a);
        let clouds = home.join("clouds.yaml");
        write_clouds(&clouds, &ks.url, &ks.admin_password, (&one, &two), &[]);
        let registered = register(&conf_a, &clouds).await;
        let a =
            GlimpseProcess::start_on(&dir_a, Some(&conf_a), &format!("127.0.0.1:{port_a}"), &[]);
        let b =
            GlimpseProcess::start_on(&dir_b, Some(&conf_b), &format!("127.0.0.1:{port_b}"), &[]);
        Beside {
            keystone_url: ks.url.clone(),
            one,
            two,
            a,
            b,
            dir_a,
            dirs: vec![dir_b, home],
            clouds,
            admin_password: ks.admin_password.clone(),
            http: reqwest::Client::new(),
            registered,
        }
    }

    fn image_one(&self) -> String {
        format!("{}/{}/image", self.a.base, self.one)
    }

    fn image_two(&self) -> String {
        format!("{}/{}/image", self.b.base, self.two)
    }

    /// clouds.yaml gains clouds named after each account's user (Keystone password login).
    fn add_clouds(&self, accounts: &[&TestAccount]) {
        let regions = (self.one.as_str(), self.two.as_str());
        write_clouds(
            &self.clouds,
            &self.keystone_url,
            &self.admin_password,
            regions,
            accounts,
        );
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.a.kill9();
        self.b.kill9();
        let _ = std::fs::remove_dir_all(&self.dir_a);
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// clouds.yaml on the Keystone at `url`, in region `one` (and `two` allowed): cloud `admin`
/// (the Keystone's admin) and one cloud per account, named after its user.
fn write_clouds(
    path: &PathBuf,
    url: &str,
    admin_password: &str,
    (one, two): (&str, &str),
    accounts: &[&TestAccount],
) {
    let admin = ("admin", "admin", admin_password, "admin");
    let users = accounts.iter().map(|a| {
        let (name, password) = (a.name.as_str(), a.password.as_str());
        (name, name, password, a.project_name.as_str())
    });
    let mut yaml = String::from("clouds:\n");
    for (cloud, user, password, project) in std::iter::once(admin).chain(users) {
        yaml.push_str(&format!(
            "  {cloud}:\n    auth:\n      auth_url: {url}\n      username: {user}\n      \
             password: {password}\n      project_name: {project}\n      \
             user_domain_id: default\n      project_domain_id: default\n    \
             identity_api_version: 3\n    region_name: {one}\n    regions: [{one}, {two}]\n"
        ));
    }
    std::fs::write(path, yaml).unwrap();
}

/// `glimpse register --config CONF --os-cloud admin`: its stdout.
async fn register(conf: &PathBuf, clouds: &PathBuf) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(["register", "--os-cloud", "admin", "--config"])
        .arg(conf)
        .env("OS_CLIENT_CONFIG_FILE", clouds)
        .env("GLIMPSE_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "glimpse register: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `METHOD url` with `headers`: status and JSON body (`null` when not JSON).
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    common::http::send(http.request(method, url), headers, body).await
}

/// The openstack CLI's image workflow through Keystone's catalog: create with a file, list,
/// show, save, share with another Keystone project, the member accepts, delete. Registration
/// again changes nothing; the image-only regions show in the catalog, routes and healthcheck.
#[tokio::test]
async fn openstack_cli_image_workflow_through_keystone() {
    let (Some(ks), Some(cli)) = (Keystone::from_env(), openstack_cli()) else {
        return;
    };
    let d = Beside::start(&ks, 10).await;
    assert!(d.registered.contains("(created)"), "{}", d.registered);
    let again = register(&d.dir_a.join("glimpse.toml"), &d.clouds).await;
    assert!(
        !again.contains("(created)") && !again.contains("(updated)"),
        "{again}"
    );
    assert_eq!(again.matches("(kept)").count(), 2 * 4 * 3, "{again}");

    let owner = TestAccount::member(&ks, &[]).await;
    let other = TestAccount::member(&ks, &[]).await;
    d.add_clouds(&[&owner, &other]);
    let home = temp_dir();
    let osc = Osc {
        cli,
        clouds: d.clouds.clone(),
        home: home.clone(),
    };
    let data: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = home.join("disk.raw");
    std::fs::write(&file, &data).unwrap();
    let name = unique("cli");
    let created = osc
        .json_as(
            &owner.name,
            &[
                "image",
                "create",
                "--file",
                file.to_str().unwrap(),
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                &name,
            ],
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "active", "{created}");
    let listed = osc.json_as(&owner.name, &["image", "list"]).await;
    assert!(
        listed.as_array().unwrap().iter().any(|i| i["ID"] == id),
        "{listed}"
    );
    let shown = osc.json_as(&owner.name, &["image", "show", &id]).await;
    assert_eq!(shown["owner"], owner.project_id.as_str());
    assert_eq!(shown["checksum"], common::glance::md5_hex(&data));
    let saved = home.join("saved.raw");
    osc.run_as(
        &owner.name,
        &["image", "save", "--file", saved.to_str().unwrap(), &id],
    )
    .await;
    assert!(std::fs::read(&saved).unwrap() == data, "saved bytes differ");
    // Region two answers through the same catalog.
    let two = osc
        .json_as(&owner.name, &["--os-region-name", &d.two, "image", "list"])
        .await;
    assert!(
        two.as_array().unwrap().iter().all(|i| i["ID"] != id),
        "{two}"
    );

    osc.run_as(&owner.name, &["image", "set", "--shared", &id])
        .await;
    osc.run_as(
        &owner.name,
        &["image", "add", "project", &id, &other.project_id],
    )
    .await;
    osc.run_as(&other.name, &["image", "set", "--accept", &id])
        .await;
    let theirs = osc.json_as(&other.name, &["image", "list"]).await;
    assert!(
        theirs.as_array().unwrap().iter().any(|i| i["ID"] == id),
        "{theirs}"
    );
    osc.run_as(&owner.name, &["image", "delete", &id]).await;
    let gone = osc.json_as(&owner.name, &["image", "list"]).await;
    assert!(
        gone.as_array().unwrap().iter().all(|i| i["ID"] != id),
        "{gone}"
    );

    // Image-only: the token's catalog lists image, ims and kms for these regions, not compute
    // or volume; those paths are not served; /healthcheck says what is.
    let token = owner.token(&ks).await;
    let body = ks.validate(&token).await.unwrap();
    let in_one = |ty: &str| {
        body["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| {
                s["type"] == ty
                    && s["endpoints"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e["region_id"] == d.one.as_str())
            })
    };
    assert!(in_one("image") && in_one("ims") && in_one("kms"));
    assert!(!in_one("compute") && !in_one("volumev3"));
    let servers = format!("{}/{}/compute/v2.1/servers", d.a.base, d.one);
    let (status, _) = call(
        &d.http,
        reqwest::Method::GET,
        &servers,
        &[("x-auth-token", &token)],
        None,
    )
    .await;
    assert_eq!(status, 404);
    let health = d
        .http
        .get(format!("{}/healthcheck", d.a.base))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let health: Value = health.json().await.unwrap();
    assert_eq!(
        health,
        json!({"status": "OK", "identity": false, "regions": {d.one.clone(): ["image", "ims", "kms"]}})
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// For projects and users made in Keystone: a replication job from region one to the region
/// the destination project's tag names, and an IMS copy sealed with a KMS key, both ending
/// right. A project without the tag has no home region (409).
#[tokio::test]
async fn replication_and_sealed_copy_for_keystone_projects() {
    let Some(ks) = Keystone::from_env() else {
        return;
    };
    let d = Beside::start(&ks, 10).await;
    let src = TestAccount::member(&ks, &[]).await;
    let tag = format!("glimpse-home-region={}", d.two);
    let (dst_id, dst_name) = ks.project("dst", &[&tag]).await;
    ks.grant(&src.user_id, &dst_id, "member").await;
    let (untagged, _) = ks.project("untagged", &[]).await;
    ks.grant(&src.user_id, &untagged, "member").await;

    let token = src.token(&ks).await;
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    let name = unique("replica");
    let one = d.image_one();
    let image = raw_image(&d.http, &one, &token, &name, &data).await;
    let jobs = format!("{one}/v2/extension/image_replicator/jobs");
    let (status, body) = call(
        &d.http,
        reqwest::Method::POST,
        &jobs,
        &[("x-auth-token", &token)],
        Some(json!({"image_id": image, "tenant_id_dst": untagged})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let rep = Replicator::new(&d.http, &one, &token);
    let job = rep.submit(&image, &dst_id).await;
    let (done, _) = rep.wait_end(&job).await;
    assert_eq!(done["status"], "replicated", "{done}");
    assert_eq!(done["destination_region_id"], d.two.as_str());
    let in_dst = ks.token(&src.name, &src.password, &dst_name).await;
    let two = d.image_two();
    let copy = Replicator::new(&d.http, &two, &in_dst)
        .the_copy(&name, &data)
        .await;
    assert_eq!(copy["owner"], dst_id.as_str());

    let ims = common::ims::Ims::at(&d.http, &d.a.base, &d.one, &token, &src.project_id);
    let key = ims.kms().create_key().await;
    let sealed = ims.sealed_copy(&image, &unique("sealed"), &key).await;
    let shown = show(&d.http, &one, &token, &sealed).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["__system__cmkid"], key.as_str(), "{shown}");
}

/// On a Keystone where only services may validate tokens: a region whose service user cannot
/// log in answers 503; a token revoked in Keystone stops
/// working within the cache window; a reader lists and shows
/// but gets Glance's 403s for create, delete, upload and download; Keystone stopped gives 503 (never 500, never 200 for a token not validated before),
/// and the same token works again once Keystone is back.
#[tokio::test]
async fn revocation_reader_and_keystone_down() {
    let Some(ks) = Keystone::from_env() else {
        return;
    };
    // A stricter identity:validate_token than Keystone's default: only a service may validate
    // (no token validates itself), as a hardened deployment may set it.
    let strict = r#""identity:validate_token": "rule:service_role""#;
    let own = OwnKeystone::start_with_policy(&ks, 3600, strict).await;
    let cache = 2;
    let d = Beside::start(&own.keystone, cache).await;
    let one = d.image_one();
    let images = format!("{one}/v2/images");
    let get = |token: String| {
        let (http, url) = (d.http.clone(), images.clone());
        async move {
            call(
                &http,
                reqwest::Method::GET,
                &url,
                &[("x-auth-token", &token)],
                None,
            )
            .await
        }
    };

    let member = TestAccount::member(&ks, &[]).await;
    let token = member.token(&ks).await;
    let by_itself = d
        .http
        .get(format!("{}/auth/tokens", own.keystone.url))
        .header("x-auth-token", &token)
        .header("x-subject-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_itself.status(), 403, "the strict policy is in force");
    assert_eq!(get(token.clone()).await.0, 200);
    ks.revoke(&token).await;
    let revoked = Instant::now();
    while get(token.clone()).await.0 == 200 {
        assert!(
            revoked.elapsed() < Duration::from_secs(cache + 3),
            "revoked token still accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(token.clone()).await.0, 401);

    // A reader of the member's project: Glance's default policy lets it read, nothing more.
    let member_token = member.token(&ks).await;
    let image = raw_image(&d.http, &one, &member_token, "readable", b"data").await;
    let (reader_id, reader_name) = ks.user("reader", "reader-pw").await;
    ks.grant(&reader_id, &member.project_id, "reader").await;
    let reader = ks
        .token(&reader_name, "reader-pw", &member.project_name)
        .await;
    let r = [("x-auth-token", reader.as_str())];
    assert_eq!(get(reader.clone()).await.0, 200);
    let h = &d.http;
    let image_url = format!("{images}/{image}");
    let (s, body) = call(
        h,
        reqwest::Method::POST,
        &images,
        &r,
        Some(json!({"name": "no"})),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    let (s, _) = call(h, reqwest::Method::DELETE, &image_url, &r, None).await;
    assert_eq!(s, 403);
    let (s, text) = upload(h, &one, &reader, &image, b"x".to_vec()).await;
    assert_eq!(s, 403, "{text}");
    // Glance's download_image needs member (PROJECT_MEMBER_OR_IMAGE_MEMBER_OR_…).
    let (s, _) = download(h, &one, &reader, &image).await;
    assert_eq!(s, 403);
    let shown = show(h, &one, &reader, &image).await;
    assert_eq!(shown["status"], "active");

    // A region whose service user cannot log in (a wrong password) cannot validate: 503.
    let wrong_dir = temp_dir();
    let wrong_conf = wrong_dir.join("glimpse.toml");
    let conf_a = std::fs::read_to_string(d.dir_a.join("glimpse.toml")).unwrap();
    let wrong: Vec<String> = conf_a
        .lines()
        .map(|l| match l.starts_with("service_password") {
            true => "service_password = \"wrong\"".to_string(),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(&wrong_conf, wrong.join("\n")).unwrap();
    let mut c = GlimpseProcess::start(&wrong_dir, Some(&wrong_conf), &[]);
    let r = d
        .http
        .get(format!("{}/{}/image/v2/images", c.base, d.one))
        .header("x-auth-token", member.token(&ks).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    c.kill9();
    let _ = std::fs::remove_dir_all(&wrong_dir);

    // Keystone away: a token never validated before gets 503 in Glance's error shape.
    let fresh = member.token(&ks).await;
    own.stop().await;
    let r = d
        .http
        .get(&images)
        .header("x-auth-token", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let text = r.text().await.unwrap();
    assert!(text.contains("503 Service Unavailable"), "{text}");
    own.start_again().await;
    assert_eq!(get(fresh).await.0, 200);
}

/// Nova's snapshot case: an image created with a user's token whose upload starts, or ends,
/// after the token expired completes when a service token (a user with the `service` role)
/// comes with it; without one, or with a token lacking the role, the expired token is refused.
#[tokio::test]
async fn an_upload_outliving_its_user_token_completes_with_a_service_token() {
    let Some(ks) = Keystone::from_env() else {
        return;
    };
    let short = OwnKeystone::start(&ks, 4).await;
    let d = Beside::start(&ks, 0).await;
    let one = d.image_one();
    let member = TestAccount::member(&ks, &[]).await;
    let (svc_project, svc_project_name) = ks.project("svc", &[]).await;
    let (nova_id, nova_name) = ks.user("nova", "nova-pw").await;
    ks.grant(&nova_id, &svc_project, "service").await;
    let service = ks.token(&nova_name, "nova-pw", &svc_project_name).await;
    let plain = member.token(&ks).await;

    let user = short
        .keystone
        .token(&member.name, &member.password, &member.project_name)
        .await;
    let during = create_bare(&d.http, &one, &user, "during", "raw").await;
    let after = create_bare(&d.http, &one, &user, "after", "raw").await;
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let put = |id: &str, token: &str, service: Option<&str>, body: reqwest::Body| {
        let mut rb = d
            .http
            .put(format!("{one}/v2/images/{id}/file"))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream");
        if let Some(s) = service {
            rb = rb.header("x-service-token", s);
        }
        rb.body(body).send()
    };

    // Upload `during`: its first MiB while the token is good, the rest once Keystone says
    // that it expired.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let request = tokio::spawn(put(&during, &user, Some(&service), body));
    tx.send(Ok(data[..1 << 20].to_vec())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ks.validate(&user).await.is_some() {
        assert!(Instant::now() < deadline, "the 4 s token never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tx.send(Ok(data[1 << 20..].to_vec())).await.unwrap();
    drop(tx);
    let r = request.await.unwrap().unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let shown = show(&d.http, &one, &plain, &during).await;
    assert_eq!(
        (shown["status"].as_str(), shown["os_hash_value"].as_str()),
        (Some("active"), Some(sha512_hex(&data).as_str()))
    );

    // Upload `after`, started with the expired token: refused alone or beside a token without
    // the service role, accepted beside the service token.
    for (service, want) in [
        (None, 401),
        (Some(plain.as_str()), 401),
        (Some(service.as_str()), 204),
    ] {
        // A refusal comes before the body is read: send little then.
        let body = if want == 204 {
            data.clone()
        } else {
            b"x".to_vec()
        };
        let r = put(&after, &user, service, body.into()).await.unwrap();
        assert_eq!(r.status(), want, "{}", r.text().await.unwrap());
    }
    let (s, bytes) = download(&d.http, &one, &plain, &after).await;
    assert!(s == 200 && bytes == data, "download {s}");
}

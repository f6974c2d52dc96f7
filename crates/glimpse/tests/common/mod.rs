//! Test harness: a whole Glimpse (identity + two regions) started in-process on 127.0.0.1:0
//! with a fresh temporary data directory, exactly as `glimpse serve` starts it. The database
//! and blob store backends come from the environment, so one suite runs on every backend:
//! `GLIMPSE_TEST_POSTGRES_URL` (a server URL; each test gets its own databases) and
//! `GLIMPSE_TEST_S3_ENDPOINT` (each test gets its own buckets). An upstream Keystone, when a
//! test needs one, is `GLIMPSE_TEST_KEYSTONE_URL` ([`keystone`]).
#![allow(dead_code)]

pub mod cinder;
pub mod cluster;
pub mod compute;
pub mod corpus;
pub mod glance;
pub mod http;
pub mod identity;
pub mod ims;
pub mod keystone;
pub mod nova;
pub mod osc;
pub mod process;
pub mod replication;
pub mod services;

use std::path::PathBuf;
use std::sync::Arc;

use glimpse_core::cloud::Cloud;
use glimpse_core::config::Config;
use serde_json::{Value, json};

pub struct TestCloud {
    pub base: String,
    pub cloud: Arc<Cloud>,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// The temporary data dir, removed on drop (`None` for [`TestCloud::start_in`]).
    _tmp: Option<TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p =
            std::env::temp_dir().join(format!("glimpse-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

/// [`osc::cloud_and_cli`] and a scratch directory; `None` (the test skips) without a CLI.
pub async fn cli_and_scratch() -> Option<(TestCloud, osc::Osc, TempDir)> {
    let (tc, osc) = osc::cloud_and_cli().await?;
    Some((tc, osc, TempDir::new()))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestCloud {
    /// The "METHOD route status" of every 5xx answer the cloud has given so far, from its
    /// own `/metrics` (bad-input tests assert there are none, on SQLite and PostgreSQL).
    pub async fn server_errors(&self) -> Vec<String> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("glimpse_http_requests_total{"),
            "no request counts: {text}"
        );
        text.lines()
            .filter(|l| l.starts_with("glimpse_http_requests_total{") && l.contains("status=\"5"))
            .filter(|l| !l.ends_with(" 0"))
            .map(str::to_string)
            .collect()
    }

    /// Fails the test if the cloud has answered any request with a 5xx.
    pub async fn assert_no_server_errors(&self) {
        let errors = self.server_errors().await;
        assert!(errors.is_empty(), "5xx answers: {errors:#?}");
    }

    pub async fn start() -> TestCloud {
        Self::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `tweak` (after backend selection).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestCloud {
        let tmp = TempDir::new();
        let mut config = local_config(tmp.0.clone());
        backends::apply(&mut config).await;
        tweak(&mut config);
        Self::launch(config, Some(tmp)).await
    }

    /// Starts on an existing data directory, which is kept on drop, so a test can start a
    /// cloud twice on the same data (restart, bootstrap idempotence). The backend choice of
    /// the first start (databases, buckets) is saved in `<dir>/test-backends.json` and
    /// reused by later starts on the same directory.
    pub async fn start_in(dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestCloud {
        std::fs::create_dir_all(&dir).unwrap();
        let saved = dir.join("test-backends.json");
        let mut config = match std::fs::read(&saved) {
            Ok(bytes) => serde_json::from_slice::<Config>(&bytes).expect("saved test config"),
            Err(_) => {
                let mut c = local_config(dir.clone());
                backends::apply(&mut c).await;
                std::fs::write(&saved, serde_json::to_vec(&c).unwrap()).unwrap();
                c
            }
        };
        tweak(&mut config);
        Self::launch(config, None).await
    }

    /// Starts Glimpse on `config`; `tmp` (if any) is removed when the cloud is dropped.
    async fn launch(config: Config, tmp: Option<TempDir>) -> TestCloud {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = glimpse::start(config, async {
            let _ = rx.await;
        })
        .await
        .expect("glimpse starts");
        TestCloud {
            base: format!("http://{}", running.addr),
            data_dir: running.cloud.config.data_dir.clone(),
            cloud: running.cloud,
            http: reqwest::Client::new(),
            _tmp: tmp,
            stop: Some(tx),
        }
    }

    pub fn identity(&self) -> String {
        format!("{}/identity/v3", self.base)
    }

    /// `METHOD /auth/tokens<query>` at identity as `auth` about the token `subject` (validate,
    /// check, revoke).
    pub async fn auth_tokens(
        &self,
        method: reqwest::Method,
        query: &str,
        auth: &str,
        subject: &str,
    ) -> reqwest::Response {
        let url = format!("{}/auth/tokens{query}", self.identity());
        let rb = self.http.request(method, url).header("x-auth-token", auth);
        rb.header("x-subject-token", subject).send().await.unwrap()
    }

    pub fn image(&self, region: &str) -> String {
        format!("{}/{region}/image", self.base)
    }

    /// The generated admin password (bootstrap writes it to the data dir).
    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-password"))
            .expect("admin-password file")
            .trim()
            .to_string()
    }

    /// A project-scoped token for `user` in `project` (Default domain).
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        process::identity::token(
            &self.http,
            &self.base,
            user,
            password,
            process::identity::project_named(project),
        )
        .await
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", &self.admin_password(), "admin").await
    }

    /// Creates (as admin) a project in `region`, a user with `role` in it, and returns
    /// (project_id, token of that user).
    pub async fn user_in_new_project(&self, role: &str, region: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let (pid, name) = replication::project(self, &admin, region).await;
        let token = self.user_with_role(&admin, &pid, &name, role).await;
        (pid, token)
    }

    /// The region named `name` of the cloud.
    pub fn region(&self, name: &str) -> &glimpse_core::region::Region {
        let found = self.cloud.regions.iter().find(|r| r.name == name);
        found.expect("region")
    }

    /// The blob keys in `region`'s store.
    pub async fn blob_keys(&self, region: &str) -> Vec<String> {
        let listed = self.region(region).store.list().await.unwrap();
        listed.into_iter().map(|b| b.key).collect()
    }

    /// `GET /v2/images` in `region` (the images `token` sees).
    pub async fn image_list(&self, region: &str, token: &str) -> Value {
        http::get_json(
            &self.http,
            format!("{}/v2/images", self.image(region)),
            token,
        )
        .await
    }

    /// A token of a new user with `role` in the existing project `pid`.
    pub async fn user_in(&self, pid: &str, role: &str) -> String {
        let admin = self.admin_token().await;
        let url = format!("{}/projects/{pid}", self.identity());
        let v = http::get_json(&self.http, url, &admin).await;
        let name = v["project"]["name"].as_str().expect("project name");
        self.user_with_role(&admin, pid, name, role).await
    }

    /// Creates a user named `<project_name>-<role>-<n>` with `role` in the project and returns
    /// its token.
    pub async fn user_with_role(
        &self,
        admin: &str,
        pid: &str,
        project_name: &str,
        role: &str,
    ) -> String {
        let uname = format!(
            "{project_name}-{role}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let body = json!({"user": {"name": uname, "password": "secret", "domain_id": "default"}});
        let url = format!("{}/users", self.identity());
        let u = http::post_json(&self.http, url, admin, &body, 201).await;
        let uid = u["user"]["id"].as_str().expect("user id");
        replication::grant(self, admin, pid, uid, role).await;
        self.token(&uname, "secret", project_name).await
    }
}

/// The default config with its data in `data_dir`, listening on a free local port.
fn local_config(data_dir: PathBuf) -> Config {
    Config {
        data_dir,
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub mod backends {
    //! Backend selection for the suite (see the module docs of the harness).
    use glimpse_core::config::Config;

    pub async fn apply(config: &mut Config) {
        if let Ok(pg) = std::env::var("GLIMPSE_TEST_POSTGRES_URL") {
            let base = pg.trim_end_matches('/').to_string();
            config.identity.database = fresh_pg_db(&base).await;
            for r in &mut config.regions {
                r.database = fresh_pg_db(&base).await;
            }
        }
        for r in &mut config.regions {
            if let Some((bucket, s3)) = fresh_bucket().await {
                r.store = format!("s3://{bucket}");
                r.s3 = s3;
            }
        }
    }

    /// Creates a uniquely named database on the server and returns its URL.
    pub async fn fresh_pg_db(base: &str) -> String {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = format!("{base}/postgres");
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        format!("{base}/{name}")
    }

    /// With `GLIMPSE_TEST_S3_ENDPOINT` (the suite's radosgw, user `test`), a new uniquely
    /// named bucket and the options that reach it.
    pub async fn fresh_bucket() -> Option<(String, glimpse_store::S3Options)> {
        let endpoint = std::env::var("GLIMPSE_TEST_S3_ENDPOINT").ok()?;
        Some(fresh_bucket_at(&endpoint).await)
    }

    /// A new uniquely named bucket on the radosgw at `endpoint` (user `test`, as
    /// `scripts/services.sh` makes it) and the options that reach it.
    pub async fn fresh_bucket_at(endpoint: &str) -> (String, glimpse_store::S3Options) {
        let endpoint = endpoint.to_string();
        let bucket = format!(
            "glimpse-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let s3 = s3_at(&endpoint);
        s3.create_bucket(&bucket)
            .await
            .expect("create a test bucket");
        (bucket, s3)
    }

    /// The suite's S3 server at `endpoint`, as user `test` (scripts/services.sh `start_s3`).
    pub fn s3_at(endpoint: &str) -> glimpse_store::S3Options {
        glimpse_store::S3Options {
            endpoint: endpoint.to_string(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            allow_http: true,
        }
    }
}

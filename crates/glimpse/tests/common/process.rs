//! The real `glimpse` binary as a child process, for tests that must kill it (`kill -9`) or run
//! regions in separate processes. The child listens on 127.0.0.1:0 and prints its address; we
//! read it from stdout and wait for `/healthcheck`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct GlimpseProcess {
    pub child: Child,
    pub base: String,
    pub stdout_lines: Vec<String>,
}

impl GlimpseProcess {
    /// Starts `glimpse serve --data-dir DIR --listen 127.0.0.1:0 [--config FILE]` and waits
    /// until it reports readiness.
    pub fn start(data_dir: &Path, config: Option<&Path>, envs: &[(&str, &str)]) -> GlimpseProcess {
        Self::start_on(data_dir, config, "127.0.0.1:0", envs)
    }

    /// Like [`GlimpseProcess::start`] on a given address (for processes that must know each
    /// other's URLs before they start).
    pub fn start_on(
        data_dir: &Path,
        config: Option<&Path>,
        listen: &str,
        envs: &[(&str, &str)],
    ) -> GlimpseProcess {
        Self::spawn(Self::command(data_dir, config, listen, envs))
    }

    /// Like [`GlimpseProcess::start_on`] inside the network namespace `netns`
    /// (`ip netns exec NETNS glimpse serve …`; `ip` execs the binary, so the child is
    /// `glimpse` itself and [`GlimpseProcess::kill9`] kills it).
    pub fn start_in_netns(
        netns: &str,
        data_dir: &Path,
        config: Option<&Path>,
        listen: &str,
        envs: &[(&str, &str)],
    ) -> GlimpseProcess {
        let cmd = Self::command(data_dir, config, listen, envs);
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", netns])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                wrapped.env(k, v);
            }
        }
        Self::spawn(wrapped)
    }

    /// Starts `glimpse serve` on 127.0.0.1:0 with info logs (stderr) written to the file `log`.
    pub fn start_logging_to(data_dir: &Path, log: &Path) -> GlimpseProcess {
        let mut cmd = Self::command(data_dir, None, "127.0.0.1:0", &[("GLIMPSE_LOG", "info")]);
        cmd.stderr(std::fs::File::create(log).expect("create the log file"));
        Self::spawn(cmd)
    }

    fn command(
        data_dir: &Path,
        config: Option<&Path>,
        listen: &str,
        envs: &[(&str, &str)],
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_glimpse"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen)
            .env("GLIMPSE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Spawns `cmd` and waits until the child reports readiness on stdout.
    fn spawn(mut cmd: Command) -> GlimpseProcess {
        let mut child = cmd.spawn().expect("spawn glimpse");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut base = None;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read child stdout");
            if n == 0 {
                let status = child.wait().expect("wait");
                panic!("glimpse exited before it was ready ({status}); output: {lines:?}");
            }
            let line = line.trim_end().to_string();
            if let Some(url) = line.strip_prefix("Glimpse is listening on ") {
                base = Some(url.to_string());
            }
            let ready = line.starts_with("ready in ");
            lines.push(line);
            if ready {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        GlimpseProcess {
            child,
            base: base.expect("listening line"),
            stdout_lines: lines,
        }
    }

    /// SIGKILL, as a power cut or OOM kill would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GlimpseProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Region-one with two-second job leases (region-two plain): a job left by a killed process is
/// taken over soon after the restart.
pub const SHORT_LEASE: &str = r#"
[[regions]]
name = "region-one"
[regions.jobs]
lease_seconds = 2

[[regions]]
name = "region-two"
"#;

/// A data dir with a configuration file, for the suites that start, `kill -9` and restart
/// `glimpse serve` on the same data. The admin password is `pw`.
pub struct Restartable {
    pub dir: PathBuf,
    config: PathBuf,
}

impl Restartable {
    pub fn new(config: &str) -> Restartable {
        let dir = temp_dir();
        let file = dir.join("glimpse.toml");
        std::fs::write(&file, config).unwrap();
        Restartable { dir, config: file }
    }

    /// Starts (or restarts) the process on the data dir.
    pub fn start(&self) -> GlimpseProcess {
        let env = [("GLIMPSE_ADMIN_PASSWORD", "pw")];
        GlimpseProcess::start(&self.dir, Some(&self.config), &env)
    }
}

impl GlimpseProcess {
    /// A token of `admin` (password `pw`) with `scope`.
    pub async fn admin_token_in(&self, http: &reqwest::Client, scope: Value) -> String {
        identity::token(http, &self.base, "admin", "pw", scope).await
    }

    /// A token of `admin` (password `pw`) in the admin project.
    pub async fn admin_token(&self, http: &reqwest::Client) -> String {
        self.admin_token_in(http, identity::project_named("admin"))
            .await
    }

    /// `{base}/region-one/image`.
    pub fn image_one(&self) -> String {
        format!("{}/region-one/image", self.base)
    }
}

impl Restartable {
    /// Starts the process and logs in as `admin`: the process, its base URL and the token.
    pub async fn start_as_admin(&self, http: &reqwest::Client) -> (GlimpseProcess, String, String) {
        let server = self.start();
        let base = server.base.clone();
        let tok = server.admin_token(http).await;
        (server, base, tok)
    }
}

/// A `raw`/`bare` image named `name` at `image_url` holding `data` (the upload must succeed);
/// its id.
pub async fn raw_image(
    http: &reqwest::Client,
    image_url: &str,
    token: &str,
    name: &str,
    data: &[u8],
) -> String {
    let id = crate::common::glance::create_bare(http, image_url, token, name, "raw").await;
    let (status, text) =
        crate::common::glance::upload(http, image_url, token, &id, data.to_vec()).await;
    assert_eq!(status, 204, "upload {name}: {text}");
    id
}

pub fn temp_dir() -> PathBuf {
    let p = std::env::temp_dir().join(format!("glimpse-proc-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Identity calls against a process's base URL (tests of real binaries, where `TestCloud`'s
/// helpers are not available).
pub mod identity {
    use serde_json::{Value, json};

    use crate::common::http::{get_json, get_json_with, post_json};

    /// A token for `user`/`password` with `scope` (a Keystone scope object).
    pub async fn token(
        http: &reqwest::Client,
        base: &str,
        user: &str,
        password: &str,
        scope: Value,
    ) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": scope}});
        issue(http, base, body, user).await
    }

    /// A token for the holder of `token`, rescoped to `scope`.
    pub async fn rescope(http: &reqwest::Client, base: &str, token: &str, scope: Value) -> String {
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
            "scope": scope}});
        issue(http, base, body, "a rescope").await
    }

    /// `POST /auth/tokens` with `body`: the new token (asserts a 201).
    async fn issue(http: &reqwest::Client, base: &str, body: Value, who: &str) -> String {
        let r = http
            .post(format!("{base}/identity/v3/auth/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "token for {who}");
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// The validation of `token` by itself (`GET /auth/tokens`): the token body.
    pub async fn validate(http: &reqwest::Client, base: &str, token: &str) -> Value {
        let url = format!("{base}/identity/v3/auth/tokens");
        get_json_with(http, url, token, &[("x-subject-token", token)]).await
    }

    /// `DELETE /auth/tokens` of `subject` with `token`: the status.
    pub async fn revoke(http: &reqwest::Client, base: &str, token: &str, subject: &str) -> u16 {
        let r = http
            .delete(format!("{base}/identity/v3/auth/tokens"))
            .header("x-auth-token", token)
            .header("x-subject-token", subject)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    /// The id of the project a token is scoped to (token validation).
    pub async fn project_of(http: &reqwest::Client, base: &str, token: &str) -> String {
        let me = validate(http, base, token).await;
        me["token"]["project"]["id"].as_str().unwrap().to_string()
    }

    /// Scope object of a project by name in the Default domain.
    pub fn project_named(name: &str) -> Value {
        json!({"project": {"name": name, "domain": {"name": "Default"}}})
    }

    /// Creates a project homed in `region` and gives `user` the member role in it; returns
    /// the project id.
    pub async fn member_project(
        http: &reqwest::Client,
        base: &str,
        admin: &str,
        name: &str,
        region: &str,
        user: &str,
    ) -> String {
        let identity = format!("{base}/identity/v3");
        let body =
            json!({"project": {"name": name, "domain_id": "default", "home_region": region}});
        let p = post_json(http, format!("{identity}/projects"), admin, &body, 201).await;
        let pid = p["project"]["id"].as_str().expect("project id").to_string();
        let role = get_json(http, format!("{identity}/roles?name=member"), admin).await;
        let me = get_json(http, format!("{identity}/users?name={user}"), admin).await;
        let r = http
            .put(format!(
                "{identity}/projects/{pid}/users/{}/roles/{}",
                me["users"][0]["id"].as_str().unwrap(),
                role["roles"][0]["id"].as_str().unwrap()
            ))
            .header("x-auth-token", admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        pid
    }
}

/// The image replicator of a real process (`<image endpoint>/v2/extension/image_replicator`),
/// for the kill -9 suites.
pub mod replicator {
    use serde_json::{Value, json};

    /// 36 MiB of pseudo-random bytes: about three seconds at a 12 MiB/s bandwidth limit, so a
    /// kill lands mid-copy.
    pub fn slow_copy_data() -> Vec<u8> {
        (0..36u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    }

    /// The replicator of one region (its image endpoint) as the holder of `token` sees it.
    pub struct Replicator<'a> {
        pub http: &'a reqwest::Client,
        pub image_url: &'a str,
        pub token: &'a str,
    }

    impl<'a> Replicator<'a> {
        pub fn new(http: &'a reqwest::Client, image_url: &'a str, token: &'a str) -> Self {
            Replicator {
                http,
                image_url,
                token,
            }
        }

        /// Submits a copy of `image` to tenant `dst`; the job id.
        pub async fn submit(&self, image: &str, dst: &str) -> String {
            let r = self
                .http
                .post(format!(
                    "{}/v2/extension/image_replicator/jobs",
                    self.image_url
                ))
                .header("x-auth-token", self.token)
                .json(&json!({"image_id": image, "tenant_id_dst": dst}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string()
        }

        /// The job, and the byte its copy resumed from (`X-Glimpse-Job-Resumed-From`), if any.
        pub async fn show(&self, job: &str) -> (Value, Option<u64>) {
            let url = format!(
                "{}/v2/extension/image_replicator/jobs/{job}",
                self.image_url
            );
            let r = crate::common::http::get(self.http, url, self.token).await;
            let resumed = r
                .headers()
                .get("x-glimpse-job-resumed-from")
                .map(|v| v.to_str().unwrap().parse().unwrap());
            (r.json().await.unwrap(), resumed)
        }

        /// Polls (10 ms, at most a minute) until `done` holds for the job; the job then and its
        /// resume point.
        async fn wait_until(
            &self,
            job: &str,
            done: impl Fn(&Value) -> bool,
        ) -> (Value, Option<u64>) {
            let mut last = (Value::Null, None);
            for _ in 0..6000 {
                last = self.show(job).await;
                if done(&last.0) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            last
        }

        /// Waits until at least `pct` % of the copy went out; the job then.
        pub async fn wait_progress(&self, job: &str, pct: u64) -> Value {
            let moved = |j: &Value| j["copy_progress"].as_u64().unwrap_or(0) >= pct;
            self.wait_until(job, moved).await.0
        }

        /// Uploads [`slow_copy_data`] as image `name`, submits its copy to tenant `dst` and
        /// waits until `pct` % of it went out: the data, the job id and the job then.
        pub async fn slow_copy_at(
            &self,
            name: &str,
            dst: &str,
            pct: u64,
        ) -> (Vec<u8>, String, Value) {
            let data = slow_copy_data();
            let src = super::raw_image(self.http, self.image_url, self.token, name, &data).await;
            let job = self.submit(&src, dst).await;
            let seen = self.wait_progress(&job, pct).await;
            (data, job, seen)
        }

        /// Waits until the job ends; the job and its resume point.
        pub async fn wait_end(&self, job: &str) -> (Value, Option<u64>) {
            let ended = |j: &Value| {
                ["replicated", "error", "canceled"].contains(&j["status"].as_str().unwrap_or(""))
            };
            self.wait_until(job, ended).await
        }

        /// The one image named `name` the token sees in this region (asserts there is exactly
        /// one), checked byte for byte against `data`.
        pub async fn the_copy(&self, name: &str, data: &[u8]) -> Value {
            let (http, image_url, token) = (self.http, self.image_url, self.token);
            let list = crate::common::glance::images_named(http, image_url, token, name).await;
            let images = list["images"].as_array().unwrap();
            assert_eq!(images.len(), 1, "{list}");
            let img = images[0].clone();
            assert_eq!(img["status"], "active");
            assert_eq!(
                img["os_hash_value"],
                crate::common::glance::sha512_hex(data)
            );
            let id = img["id"].as_str().unwrap();
            let (status, got) = crate::common::glance::download(http, image_url, token, id).await;
            assert_eq!(status, 200);
            assert!(got == data, "the copy is the source's bytes");
            img
        }
    }
}

//! The suite's upstream Keystone (`scripts/services.sh` `start_keystone`, which `scripts/test`
//! runs before both passes), driven over its API: tokens, and projects and users with unique
//! names, so that tests running in parallel on the one Keystone never collide. A test that
//! must stop its Keystone, or wants short-lived tokens, starts an [`OwnKeystone`] beside it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::process::temp_dir;

use super::services::SCRIPT;

pub struct Keystone {
    /// `http://127.0.0.1:PORT/v3`.
    pub url: String,
    /// The password of user `admin` (project `admin`, domain `default`).
    pub admin_password: String,
    pub http: reqwest::Client,
    admin: OnceCell<String>,
}

impl Keystone {
    /// The Keystone of `GLIMPSE_TEST_KEYSTONE_URL` and `GLIMPSE_TEST_KEYSTONE_PASSWORD`. `None`
    /// (the test skips, saying why) without them, except in CI (`CI` set), where it fails.
    pub fn from_env() -> Option<Keystone> {
        let url = std::env::var("GLIMPSE_TEST_KEYSTONE_URL").ok();
        let password = std::env::var("GLIMPSE_TEST_KEYSTONE_PASSWORD").ok();
        let (Some(url), Some(password)) = (url, password) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI requires a Keystone (GLIMPSE_TEST_KEYSTONE_URL and _PASSWORD; scripts/test)"
            );
            eprintln!("skipped: no Keystone (GLIMPSE_TEST_KEYSTONE_URL; scripts/test starts one)");
            return None;
        };
        Some(Keystone::at(&url, &password))
    }

    /// The Keystone at `url` (`…/v3`) whose `admin` has `admin_password`.
    pub fn at(url: &str, admin_password: &str) -> Keystone {
        Keystone {
            url: url.trim_end_matches('/').to_string(),
            admin_password: admin_password.to_string(),
            http: reqwest::Client::new(),
            admin: OnceCell::new(),
        }
    }

    /// A token of `user` (domain `default`) scoped to the project named `project`.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self
            .http
            .post(format!("{}/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let token = r.headers().get("x-subject-token").cloned();
        let text = r.text().await.unwrap();
        assert_eq!(status, 201, "token for {user} in {project}: {text}");
        token.unwrap().to_str().unwrap().to_string()
    }

    /// A token of `admin` in project `admin`, fetched once.
    pub async fn admin_token(&self) -> String {
        let get = || self.token("admin", &self.admin_password, "admin");
        self.admin.get_or_init(get).await.clone()
    }

    /// `METHOD {url}{path}` as admin with the JSON `body`: asserts the status `want`; the
    /// answer's JSON (`null` when empty).
    pub async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let admin = self.admin_token().await;
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        rb = rb.header("x-auth-token", admin);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, want, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// Creates a project named `<name>-<8 random hex digits>` with `tags` in domain `default`:
    /// its id and that name.
    pub async fn project(&self, name: &str, tags: &[&str]) -> (String, String) {
        let name = unique(name);
        let body = json!({"project": {"name": name, "domain_id": "default", "tags": tags}});
        let p = self
            .admin_call(Method::POST, "/projects", Some(body), 201)
            .await;
        (p["project"]["id"].as_str().unwrap().to_string(), name)
    }

    /// Creates a user named `<name>-<8 random hex digits>` with `password` in domain
    /// `default`: its id and that name.
    pub async fn user(&self, name: &str, password: &str) -> (String, String) {
        let name = unique(name);
        let body = json!({"user": {"name": name, "domain_id": "default", "password": password}});
        let u = self
            .admin_call(Method::POST, "/users", Some(body), 201)
            .await;
        (u["user"]["id"].as_str().unwrap().to_string(), name)
    }

    /// Gives the user the role named `role` (admin, manager, member, reader, service) in the
    /// project.
    pub async fn grant(&self, user_id: &str, project_id: &str, role: &str) {
        let roles = self
            .admin_call(Method::GET, &format!("/roles?name={role}"), None, 200)
            .await;
        let role_id = roles["roles"][0]["id"].as_str();
        let role_id = role_id.unwrap_or_else(|| panic!("no role {role}: {roles}"));
        let path = format!("/projects/{project_id}/users/{user_id}/roles/{role_id}");
        self.admin_call(Method::PUT, &path, None, 204).await;
    }

    /// Revokes `token` (`DELETE /auth/tokens`, as admin).
    pub async fn revoke(&self, token: &str) {
        let r = self
            .http
            .delete(format!("{}/auth/tokens", self.url))
            .header("x-auth-token", self.admin_token().await)
            .header("x-subject-token", token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 204, "revoke: {}", r.text().await.unwrap());
    }

    /// `token`'s body (`{"token": …}`) when Keystone (asked as admin) holds it valid, `None`
    /// when it answers 404 (expired, revoked or unknown).
    pub async fn validate(&self, token: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/auth/tokens", self.url))
            .header("x-auth-token", self.admin_token().await)
            .header("x-subject-token", token)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => Some(r.json().await.unwrap()),
            404 => None,
            s => panic!("validate: {s} {}", r.text().await.unwrap()),
        }
    }
}

/// `<name>-<8 random hex digits>`.
pub fn unique(name: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}-{}", &suffix[..8])
}

/// A user with the member role in a project of its own, both new.
pub struct TestAccount {
    pub user_id: String,
    /// The user's name.
    pub name: String,
    pub password: String,
    pub project_id: String,
    pub project_name: String,
}

impl TestAccount {
    /// A new project with `tags` and a new user with the member role in it.
    pub async fn member(k: &Keystone, tags: &[&str]) -> TestAccount {
        let (project_id, project_name) = k.project("test", tags).await;
        let password = unique("pw");
        let (user_id, name) = k.user("member", &password).await;
        k.grant(&user_id, &project_id, "member").await;
        TestAccount {
            user_id,
            name,
            password,
            project_id,
            project_name,
        }
    }

    /// A new token of the user in its project.
    pub async fn token(&self, k: &Keystone) -> String {
        k.token(&self.name, &self.password, &self.project_name)
            .await
    }
}

/// A second Keystone server of the suite's Keystone (`scripts/services.sh start-keystone`
/// with `GLIMPSE_TEST_KEYSTONE_DIR`): the same database and keys, so the same users and tokens,
/// on a port of its own, with its own token lifetime, for a test to stop and start again.
/// Dropped, it stops and its directory is removed.
pub struct OwnKeystone {
    /// The script's directory for it (`keystone/`).
    pub dir: PathBuf,
    pub token_seconds: u64,
    /// Policy overrides (YAML) of this server.
    pub policy: String,
    /// This server's API, admin password the suite's.
    pub keystone: Keystone,
}

impl OwnKeystone {
    /// Starts a server of `suite` (the Keystone of the environment) whose tokens last
    /// `token_seconds`.
    pub async fn start(suite: &Keystone, token_seconds: u64) -> OwnKeystone {
        Self::start_with_policy(suite, token_seconds, "").await
    }

    /// The same, with Keystone policy overrides (YAML; empty: none) on this server only.
    pub async fn start_with_policy(
        suite: &Keystone,
        token_seconds: u64,
        policy: &str,
    ) -> OwnKeystone {
        assert!(
            std::env::var_os("GLIMPSE_TEST_KEYSTONE_DIR").is_some(),
            "GLIMPSE_TEST_KEYSTONE_DIR (set by start_keystone) names the Keystone to share"
        );
        let mut own = OwnKeystone {
            dir: temp_dir(),
            token_seconds,
            policy: policy.to_string(),
            keystone: Keystone::at("", &suite.admin_password),
        };
        // Made before the start, so that a failed one is stopped on drop too.
        let url = own.run("start-keystone").await;
        own.keystone = Keystone::at(&url, &suite.admin_password);
        own
    }

    /// SIGTERM to its gunicorn; returns once its port is closed.
    pub async fn stop(&self) {
        self.run("stop-keystone").await;
    }

    /// Starts it again, on the same port.
    pub async fn start_again(&self) {
        let url = self.run("start-keystone").await;
        assert_eq!(url, self.keystone.url);
    }

    /// `scripts/services.sh COMMAND DIR` with this server's token lifetime and policy.
    async fn run(&self, command: &'static str) -> String {
        let env = [
            (
                "GLIMPSE_KEYSTONE_TOKEN_SECONDS",
                self.token_seconds.to_string(),
            ),
            ("GLIMPSE_KEYSTONE_POLICY", self.policy.clone()),
        ];
        super::services::script(command, &self.dir, &env).await
    }
}

impl Drop for OwnKeystone {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

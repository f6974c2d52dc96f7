//! A small Nova client for end-to-end tests: the compute endpoint of a region, servers,
//! actions, the image proxy, and bounded waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::TestCloud;

pub struct Nova {
    pub http: reqwest::Client,
    /// `…/<region>/compute/v2.1` (or another base, e.g. `…/v2/<project>`).
    pub base: String,
    pub token: String,
    /// Microversion header to send, if any.
    pub version: Option<String>,
}

/// What a call answered.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Nova {
    pub fn new(tc: &TestCloud, region: &str, token: &str) -> Nova {
        Nova {
            http: tc.http.clone(),
            base: format!("{}/{region}/compute/v2.1", tc.base),
            token: token.to_string(),
            version: None,
        }
    }

    /// The same client on the legacy `/v2/<project>` base.
    pub fn v2(tc: &TestCloud, region: &str, project: &str, token: &str) -> Nova {
        Nova {
            base: format!("{}/{region}/compute/v2/{project}", tc.base),
            ..Nova::new(tc, region, token)
        }
    }

    pub fn at(mut self, version: &str) -> Nova {
        self.version = Some(version.to_string());
        self
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
            .header("accept", "application/json");
        if let Some(v) = &self.version {
            rb = rb.header("openstack-api-version", format!("compute {v}"));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub async fn action(&self, id: &str, body: Value) -> Reply {
        self.post(&format!("/servers/{id}/action"), body).await
    }

    /// Creates a server from `image` with flavor "1"; returns its id.
    pub async fn create_server(&self, name: &str, image: &str) -> String {
        let r = self
            .post(
                "/servers",
                json!({"server": {"name": name, "imageRef": image, "flavorRef": "1"}}),
            )
            .await;
        assert_eq!(r.status, 202, "create server: {}", r.text);
        r.body["server"]["id"].as_str().unwrap().to_string()
    }

    /// Polls the server until `status` (at most 60 s); panics on ERROR or timeout.
    pub async fn wait_server(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/servers/{id}")).await;
            assert_eq!(r.status, 200, "show server: {}", r.text);
            let s = r.body["server"].clone();
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(
                s["status"] != "ERROR" || status == "ERROR",
                "server in ERROR: {s}"
            );
            assert!(Instant::now() < deadline, "server never {status}: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A server ACTIVE and ready.
    pub async fn active_server(&self, name: &str, image: &str) -> String {
        let id = self.create_server(name, image).await;
        self.wait_server(&id, "ACTIVE").await;
        id
    }

    /// Polls the image proxy until `status` (at most 60 s).
    pub async fn wait_image(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/images/{id}")).await;
            if r.status == 200 && r.body["image"]["status"] == status {
                return r.body["image"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "image never {status}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes bytes into a server's root disk through the extension.
    pub async fn write_disk(&self, id: &str, offset: u64, data: &[u8]) -> Reply {
        self.action(
            id,
            json!({"glimpse-write-disk": {"offset": offset, "data": base64(data)}}),
        )
        .await
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A raw disk image of `len` bytes with a recognisable pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Uploads `data` as an active raw image named `name`; returns its id.
pub async fn raw_image(
    tc: &TestCloud,
    region: &str,
    token: &str,
    name: &str,
    data: Vec<u8>,
) -> String {
    let url = tc.image(region);
    let id = super::glance::create_bare(&tc.http, &url, token, name, "raw").await;
    let (st, text) = super::glance::upload(&tc.http, &url, token, &id, data).await;
    assert_eq!(st, 204, "upload: {text}");
    id
}

/// The `qemu-img` tool is present (else the caller skips, except under `CI=true`).
pub fn qemu_present() -> bool {
    let ok = ["qemu-img", "qemu-io"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "compute tests need qemu-img and qemu-io"
        );
        eprintln!("skipped: compute tests need qemu-img and qemu-io");
    }
    ok
}

/// Runs `qemu-img ARGS`; returns the exit code and stdout + stderr.
pub fn qemu_img(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The image id at the end of a `createImage` answer's `Location`.
pub fn location_id(r: &Reply) -> String {
    let loc = r.headers["location"].to_str().unwrap();
    loc.rsplit('/').next().unwrap().to_string()
}

/// Checks a downloaded snapshot `file` of a server built from the raw `source` and written
/// with `writes`: `qemu-img check` clean, `qemu-img info` qcow2 with no backing file,
/// `qemu-img compare` against the source reports its first mismatch in the sector of the
/// first write, the source with exactly the writes applied is identical, and flipping one
/// written byte makes it differ again.
pub fn assert_snapshot(file: &std::path::Path, source: &[u8], writes: &[(u64, &[u8])]) {
    let f = file.to_str().unwrap();
    let (code, text) = qemu_img(&["check", "-f", "qcow2", f]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = qemu_img(&["info", "--output=json", "-f", "qcow2", f]);
    assert_eq!(code, 0, "{text}");
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none(), "{info}");
    let compare = |raw: &[u8]| {
        let path = file.with_extension(format!("cmp-{}.raw", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, raw).unwrap();
        let out = qemu_img(&[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            path.to_str().unwrap(),
            f,
        ]);
        let _ = std::fs::remove_file(&path);
        out
    };
    let sector = |off: u64| off / 512 * 512;
    let (code, text) = compare(source);
    assert_eq!(code, 1, "{text}");
    let first = writes.iter().map(|(o, _)| *o).min().unwrap();
    assert!(
        text.contains(&format!("Content mismatch at offset {}!", sector(first))),
        "{text}"
    );
    let mut expected = source.to_vec();
    for (off, data) in writes {
        expected[*off as usize..*off as usize + data.len()].copy_from_slice(data);
    }
    let (code, text) = compare(&expected);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Images are identical."), "{text}");
    let (off, _) = writes.iter().max_by_key(|(o, _)| *o).unwrap();
    expected[*off as usize] ^= 1;
    let (code, text) = compare(&expected);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("Content mismatch at offset {}!", sector(*off))),
        "{text}"
    );
}

/// A token of a new user with the reader role in `project`.
pub async fn reader_of(tc: &TestCloud, project: &str) -> String {
    tc.user_in(project, "reader").await
}

//! A test's own PostgreSQL server and radosgw (over its own one-OSD Ceph), started by
//! `scripts/services.sh` used as a command, so that the test can stop and start them again on
//! the same ports and data without touching the servers the rest of pass 2 shares. Dropped, it
//! stops them and removes their directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cluster::Backends;
use super::process::temp_dir;

/// `scripts/services.sh`.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");

/// `scripts/services.sh`'s status when the server binaries are not installed.
const MISSING: i32 = 2;

pub struct OwnServices {
    /// The script's directory for these servers (`postgres/`, `s3/`).
    pub dir: PathBuf,
    /// `postgres://postgres@127.0.0.1:PORT` (no database).
    pub postgres: String,
    /// `http://127.0.0.1:PORT` (access key and secret key `test`).
    pub s3_endpoint: String,
}

impl OwnServices {
    /// Starts both servers. `None` (the test skips, saying why) when the PostgreSQL server
    /// binaries or radosgw are not installed, except in CI (`CI` set), where it fails.
    pub fn start() -> Option<OwnServices> {
        let dir = temp_dir();
        let mut own = OwnServices {
            dir,
            postgres: String::new(),
            s3_endpoint: String::new(),
        };
        own.postgres = own.try_run("start-postgres")?;
        own.s3_endpoint = own.try_run("start-s3")?;
        Some(own)
    }

    /// The databases and buckets of a [`super::cluster::Cluster`] on these servers.
    pub fn backends(&self) -> Backends {
        Backends {
            postgres: Some(self.postgres.clone()),
            s3_endpoint: Some(self.s3_endpoint.clone()),
        }
    }

    fn try_run(&self, command: &str) -> Option<String> {
        let out = Command::new(SCRIPT)
            .arg(command)
            .arg(&self.dir)
            .output()
            .expect("run scripts/services.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(MISSING) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI requires PostgreSQL and radosgw: {stderr}"
            );
            eprintln!("skipped: {}", stderr.trim());
            return None;
        }
        assert!(
            out.status.success(),
            "services.sh {command}: {}\n{stderr}",
            out.status
        );
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs `scripts/services.sh COMMAND DIR` (it blocks until the servers answer, seconds),
    /// off the async runtime's threads; its output.
    pub async fn run(&self, command: &'static str) -> String {
        script(command, &self.dir, &[]).await
    }
}

/// `scripts/services.sh COMMAND DIR` with `envs` added, off the async runtime's threads (a
/// start takes seconds); asserts success; its stdout, trimmed.
pub async fn script(command: &'static str, dir: &Path, envs: &[(&str, String)]) -> String {
    let mut cmd = Command::new(SCRIPT);
    cmd.arg(command).arg(dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("run scripts/services.sh");
        assert!(
            out.status.success(),
            "services.sh {command}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
    .await
    .unwrap()
}

impl Drop for OwnServices {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

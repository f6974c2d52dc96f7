//! The real `glimpse` binary as a child process, for tests that must kill it (`kill -9`) or run
//! regions in separate processes. The child listens on 127.0.0.1:0 and prints its address; we
//! read it from stdout and wait for `/healthcheck`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

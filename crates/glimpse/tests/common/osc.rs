//! The real `openstack` CLI (python-openstackclient) driven as a subprocess.
#![allow(dead_code)]

use serde_json::Value;

use super::TestCloud;

/// The `openstack` CLI: `GLIMPSE_OPENSTACK_CLI`, else `openstack` on PATH. Without one the
/// caller skips (printing why), except under `CI=true`, where a missing CLI fails the test.
pub fn openstack_cli() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("GLIMPSE_OPENSTACK_CLI")
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let paths = std::env::var_os("PATH")?;
            std::env::split_paths(&paths)
                .map(|d| d.join("openstack"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no openstack CLI (set GLIMPSE_OPENSTACK_CLI or put openstack on PATH)"
        );
        eprintln!("skipped: no openstack CLI (set GLIMPSE_OPENSTACK_CLI or put openstack on PATH)");
    }
    found
}

/// The demo user of region-one in the generated clouds.yaml.
pub const DEMO: &str = "glimpse-demo-one";

/// A whole cloud and the CLI pointed at it; `None` (the test skips) without a CLI.
pub async fn cloud_and_cli() -> Option<(TestCloud, Osc)> {
    let cli = openstack_cli()?;
    let tc = TestCloud::start().await;
    let osc = Osc::new(cli, &tc);
    Some((tc, osc))
}

pub struct Osc {
    pub cli: std::path::PathBuf,
    pub clouds: std::path::PathBuf,
    pub home: std::path::PathBuf,
}

impl Osc {
    /// The CLI pointed at the cloud's generated clouds.yaml.
    pub fn new(cli: std::path::PathBuf, tc: &TestCloud) -> Osc {
        Osc {
            cli,
            clouds: tc.data_dir.join("clouds.yaml"),
            home: tc.data_dir.clone(),
        }
    }

    /// Runs `openstack ARGS` with only PATH, HOME and OS_CLIENT_CONFIG_FILE in its
    /// environment; returns stdout, or panics with the command's output (rerun with --debug).
    pub async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(&self.cli)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds)
            .output()
            .await
            .expect("run openstack");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "openstack {} failed ({}):\n{}\n{}",
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.run(&all).await;
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}"))
    }

    /// `openstack --os-cloud CLOUD ARGS`: stdout.
    pub async fn run_as(&self, cloud: &str, args: &[&str]) -> String {
        self.run(&[&["--os-cloud", cloud], args].concat()).await
    }

    /// `openstack image create` of a bare image from `file`, as the demo user.
    pub async fn create_image(
        &self,
        file: &std::path::Path,
        disk_format: &str,
        name: &str,
    ) -> Value {
        let file = file.to_str().unwrap();
        let args = [
            "image",
            "create",
            "--file",
            file,
            "--disk-format",
            disk_format,
        ];
        let bare = ["--container-format", "bare", name];
        self.json_as(DEMO, &[&args[..], &bare].concat()).await
    }

    /// `openstack --os-cloud CLOUD ARGS -f json`.
    pub async fn json_as(&self, cloud: &str, args: &[&str]) -> Value {
        self.json(&[&["--os-cloud", cloud], args].concat()).await
    }
}

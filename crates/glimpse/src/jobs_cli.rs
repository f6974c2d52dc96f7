//! `glimpse jobs list|show|watch|cancel`: the image replicator's jobs seen from the command
//! line, over HTTP like any OpenStack client. The cloud comes from clouds.yaml (the file in
//! `--clouds-file`, else `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`; the entry named by
//! `--os-cloud`/`$OS_CLOUD`, or the only one). It logs in with the entry's password, finds
//! the image endpoint of the entry's region in the token's catalog, and calls
//! `…/v2/extension/image_replicator/jobs`. `watch` follows one job with a progress bar until
//! it ends and fails (non-zero exit) unless it ends `replicated`.
//!
//! Stateless: nothing is written; a killed `watch` can simply be started again.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};

/// `glimpse jobs …`.
#[derive(Args, Debug, Clone)]
pub struct JobsArgs {
    /// The cloud of clouds.yaml to use (as `openstack --os-cloud`).
    #[arg(long, env = "OS_CLOUD", global = true)]
    pub os_cloud: Option<String>,
    /// The region whose jobs to see (default: the cloud's `region_name`).
    #[arg(long, env = "OS_REGION_NAME", global = true)]
    pub os_region_name: Option<String>,
    /// clouds.yaml to read (default: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
    /// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).
    #[arg(long, env = "OS_CLIENT_CONFIG_FILE", global = true)]
    pub clouds_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum JobsCommand {
    /// List the replication jobs of the cloud's project (an admin sees all).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job.
    Show { job_id: String },
    /// Follow a job with a progress bar until it ends; fails unless it ends `replicated`.
    Watch {
        job_id: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Cancel a job that is `replicate_requested` or `replicating`.
    Cancel { job_id: String },
}

/// Runs one `glimpse jobs` command.
pub async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let path = clouds_file(args.clouds_file.as_deref())?;
    let cloud = Cloud::load(&path, args.os_cloud.as_deref())?;
    let session = Session::connect(&cloud, args.os_region_name.as_deref()).await?;
    match args.command {
        JobsCommand::List { json } => {
            let jobs = session.jobs().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                print!("{}", jobs_table(&jobs));
            }
        }
        JobsCommand::Show { job_id } => {
            let shown = session.job(&job_id).await?;
            print!("{}", job_table(&shown));
        }
        JobsCommand::Watch { job_id, interval } => {
            let every = Duration::from_secs_f64(interval.clamp(0.05, 60.0));
            let end = watch(&session, &job_id, every).await?;
            if end.job.status != "replicated" {
                bail!("job {job_id} ended {}{}", end.job.status, reason(&end));
            }
        }
        JobsCommand::Cancel { job_id } => {
            session.cancel(&job_id).await?;
            println!("Cancel of job {job_id} requested.");
        }
    }
    Ok(())
}

/// The clouds.yaml to read.
pub fn clouds_file(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("no clouds.yaml found (set OS_CLIENT_CONFIG_FILE or --clouds-file)"))
}

#[derive(Debug, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, Cloud>,
}

/// One entry of clouds.yaml (the fields this command uses; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Cloud {
    pub auth: CloudAuth,
    #[serde(default)]
    pub region_name: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CloudAuth {
    pub auth_url: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
}

impl Cloud {
    /// Reads the entry `name` (or the only entry) of a clouds.yaml.
    pub fn load(path: &Path, name: Option<&str>) -> anyhow::Result<Cloud> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Cloud::parse(&text, name).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str, name: Option<&str>) -> anyhow::Result<Cloud> {
        let file: CloudsFile = serde_yaml_ng::from_str(text).context("not a clouds.yaml")?;
        let names = || file.clouds.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(n) => file
                .clouds
                .get(n)
                .cloned()
                .ok_or_else(|| anyhow!("no cloud {n:?} (clouds: {})", names())),
            None if file.clouds.len() == 1 => Ok(file
                .clouds
                .into_values()
                .next()
                .unwrap_or_else(|| unreachable!())),
            None => bail!(
                "name a cloud with --os-cloud or OS_CLOUD (clouds: {})",
                names()
            ),
        }
    }

    /// The Keystone password-auth request of this entry.
    pub fn auth_body(&self) -> anyhow::Result<Value> {
        let a = &self.auth;
        let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(n)) => json!({"name": n}),
            (None, None) => json!({"id": "default"}),
        };
        let user = match (&a.user_id, &a.username) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(n)) => {
                json!({"name": n, "domain": domain(&a.user_domain_id, &a.user_domain_name)})
            }
            (None, None) => bail!("the cloud has neither auth.username nor auth.user_id"),
        };
        let mut user = user;
        user["password"] = json!(
            a.password
                .clone()
                .ok_or_else(|| anyhow!("the cloud has no auth.password"))?
        );
        let project = match (&a.project_id, &a.project_name) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(n)) => {
                json!({"name": n, "domain": domain(&a.project_domain_id, &a.project_domain_name)})
            }
            (None, None) => bail!("the cloud has neither auth.project_name nor auth.project_id"),
        };
        Ok(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project}}}))
    }
}

/// A job as the API shows it (seed 001).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Job {
    pub copy_progress: u8,
    pub destination_image_id: Option<String>,
    pub destination_region_id: String,
    pub destination_tenant_id: String,
    pub job_id: String,
    pub source_image_id: String,
    pub source_image_name: Option<String>,
    pub source_region_id: String,
    pub source_tenant_id: String,
    pub status: String,
}

/// A job with what the show call adds in headers.
#[derive(Debug, Clone)]
pub struct Shown {
    pub job: Job,
    pub phase: Option<String>,
    pub error: Option<String>,
}

fn reason(s: &Shown) -> String {
    s.error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// A logged-in client of one region's replicator.
pub struct Session {
    http: reqwest::Client,
    token: String,
    /// `…/v2/extension/image_replicator`.
    base: String,
}

impl Session {
    pub async fn connect(cloud: &Cloud, region: Option<&str>) -> anyhow::Result<Session> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut url = cloud.auth.auth_url.trim_end_matches('/').to_string();
        if !url.ends_with("/v3") {
            url.push_str("/v3");
        }
        let resp = http
            .post(format!("{url}/auth/tokens"))
            .json(&cloud.auth_body()?)
            .send()
            .await
            .with_context(|| format!("cannot reach identity at {url}"))?;
        if resp.status().as_u16() != 201 {
            bail!(
                "identity refused the login: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("identity answered without a token"))?
            .to_string();
        let body: Value = resp.json().await?;
        let region = region
            .map(str::to_string)
            .or_else(|| cloud.region_name.clone());
        let interface = cloud.interface.as_deref().unwrap_or("public");
        let image = image_endpoint(&body["token"]["catalog"], region.as_deref(), interface)
            .ok_or_else(|| {
                anyhow!(
                    "the catalog has no {interface} image endpoint in region {}",
                    region.as_deref().unwrap_or("(any)")
                )
            })?;
        Ok(Session {
            http,
            token,
            base: format!("{image}/v2/extension/image_replicator"),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        checked(resp).await
    }

    pub async fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        Ok(self.get("/jobs").await?.json().await?)
    }

    pub async fn job(&self, id: &str) -> anyhow::Result<Shown> {
        let resp = self.get(&format!("/jobs/{id}")).await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (phase, error) = (header("x-glimpse-job-phase"), header("x-glimpse-job-error"));
        Ok(Shown {
            job: resp.json().await?,
            phase,
            error,
        })
    }

    pub async fn cancel(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .delete(format!("{}/jobs/{id}", self.base))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        checked(resp).await.map(|_| ())
    }
}

/// Turns an error answer (the replicator's text bodies) into an error with its message.
async fn checked(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let msg = text
        .split_once("\n\n")
        .map_or(text.as_str(), |(_, m)| m)
        .trim();
    bail!("{status}: {msg}")
}

/// The image endpoint of `region` (any region when `None`) and `interface` in a v3 catalog.
pub fn image_endpoint(catalog: &Value, region: Option<&str>, interface: &str) -> Option<String> {
    catalog
        .as_array()?
        .iter()
        .filter(|s| s["type"] == "image")
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["interface"] == interface
                && region.is_none_or(|r| e["region_id"] == r || e["region"] == r)
        })
        .and_then(|e| {
            e["url"]
                .as_str()
                .map(|u| u.trim_end_matches('/').to_string())
        })
}

/// Follows a job until it ends, with a progress bar on a terminal (status lines otherwise).
pub async fn watch(session: &Session, id: &str, every: Duration) -> anyhow::Result<Shown> {
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        indicatif::ProgressBar::new(100)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {pos:>3}% {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut last = String::new();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let shown = session.job(id).await?;
        let j = &shown.job;
        bar.set_position(u64::from(j.copy_progress.min(100)));
        let line = match &shown.phase {
            Some(p) if j.status == "replicating" && !p.is_empty() => format!("{} ({p})", j.status),
            _ => j.status.clone(),
        };
        bar.set_message(format!(
            "{line}  {} → {}",
            j.source_region_id, j.destination_region_id
        ));
        if !tty && line != last {
            eprintln!("{} {:>3}% {line}", j.job_id, j.copy_progress);
        }
        last = line;
        if ["replicated", "canceled", "error"].contains(&j.status.as_str()) {
            let msg = format!("{}{}", j.status, reason(&shown));
            if j.status == "replicated" {
                bar.finish_with_message(format!(
                    "replicated: image {} in {}",
                    j.destination_image_id.as_deref().unwrap_or("?"),
                    j.destination_region_id
                ));
            } else {
                bar.abandon_with_message(msg);
            }
            return Ok(shown);
        }
    }
}

/// A table in the openstack client's style.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = format!(
        "+{}+\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        format!("|{}|\n", parts.join("|"))
    };
    let mut out = rule.clone();
    out.push_str(&line(headers.to_vec()));
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    if !rows.is_empty() {
        out.push_str(&rule);
    }
    out
}

pub fn jobs_table(jobs: &[Job]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.job_id.clone(),
                j.status.clone(),
                format!("{}%", j.copy_progress),
                j.source_image_name
                    .clone()
                    .unwrap_or_else(|| j.source_image_id.clone()),
                format!("{} → {}", j.source_region_id, j.destination_region_id),
                j.destination_tenant_id.clone(),
                j.destination_image_id.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "Job ID",
            "Status",
            "Progress",
            "Source image",
            "Regions",
            "Destination tenant",
            "Destination image",
        ],
        &rows,
    )
}

pub fn job_table(s: &Shown) -> String {
    let j = &s.job;
    let mut rows = vec![
        ("job_id", j.job_id.clone()),
        ("status", j.status.clone()),
        ("copy_progress", j.copy_progress.to_string()),
        ("source_image_id", j.source_image_id.clone()),
        (
            "source_image_name",
            j.source_image_name.clone().unwrap_or_default(),
        ),
        ("source_region_id", j.source_region_id.clone()),
        ("source_tenant_id", j.source_tenant_id.clone()),
        (
            "destination_image_id",
            j.destination_image_id.clone().unwrap_or_default(),
        ),
        ("destination_region_id", j.destination_region_id.clone()),
        ("destination_tenant_id", j.destination_tenant_id.clone()),
    ];
    if let Some(p) = &s.phase {
        rows.push(("phase", p.clone()));
    }
    if let Some(e) = &s.error {
        rows.push(("error", e.clone()));
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    table(&["Field", "Value"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "# Written by glimpse\nclouds:\n  glimpse-demo-one:\n    auth:\n      auth_url: \"http://h:1/identity/v3\"\n      username: \"demo-one\"\n      password: \"p\\\"w\"\n      project_name: \"demo-one\"\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: \"region-one\"\n    identity_api_version: 3\n    interface: public\n  other:\n    auth:\n      auth_url: http://x/v3\n      user_id: u1\n      password: pw\n      project_id: p1\n";

    #[test]
    fn reads_the_clouds_yaml_glimpse_writes() {
        let c = Cloud::parse(YAML, Some("glimpse-demo-one")).unwrap();
        assert_eq!(c.auth.auth_url, "http://h:1/identity/v3");
        assert_eq!(c.region_name.as_deref(), Some("region-one"));
        assert_eq!(
            c.auth_body().unwrap(),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "demo-one", "domain": {"name": "Default"}, "password": "p\"w"}}},
                "scope": {"project": {"name": "demo-one", "domain": {"name": "Default"}}}}})
        );
        let o = Cloud::parse(YAML, Some("other")).unwrap();
        assert_eq!(
            o.auth_body().unwrap()["auth"]["scope"],
            json!({"project": {"id": "p1"}})
        );
        assert!(
            Cloud::parse(YAML, None)
                .unwrap_err()
                .to_string()
                .contains("glimpse-demo-one, other")
        );
        assert!(Cloud::parse(YAML, Some("nope")).is_err());
        assert!(Cloud::parse("clouds: [", None).is_err());
    }

    #[test]
    fn finds_the_image_endpoint_of_a_region() {
        let catalog = json!([
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "region-one", "url": "http://h/identity/v3"}]},
            {"type": "image", "endpoints": [
                {"interface": "public", "region_id": "region-one", "url": "http://h/region-one/image"},
                {"interface": "public", "region_id": "region-two", "url": "http://h/region-two/image/"}]}
        ]);
        assert_eq!(
            image_endpoint(&catalog, Some("region-two"), "public").unwrap(),
            "http://h/region-two/image"
        );
        assert_eq!(
            image_endpoint(&catalog, None, "public").unwrap(),
            "http://h/region-one/image"
        );
        assert!(image_endpoint(&catalog, Some("region-three"), "public").is_none());
        assert!(image_endpoint(&catalog, None, "internal").is_none());
    }

    #[test]
    fn tables_line_up() {
        let t = table(
            &["A", "Bee"],
            &[
                vec!["x".into(), "y".into()],
                vec!["long".into(), "→".into()],
            ],
        );
        assert_eq!(
            t,
            "+------+-----+\n| A    | Bee |\n+------+-----+\n| x    | y   |\n| long | →   |\n+------+-----+\n"
        );
        assert_eq!(table(&["A"], &[]), "+---+\n| A |\n+---+\n");
    }
}

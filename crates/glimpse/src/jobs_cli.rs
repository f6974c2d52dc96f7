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

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
pub use glimpse_client::Shown;
use glimpse_client::{Glance, Replicator};
use glimpse_types::replicator::{ReplicationJob, ReplicationStatus};

pub use crate::os_cli::{Cloud, CloudArgs};
use crate::os_cli::{field_table, list_table, login};

/// `glimpse jobs …`.
#[derive(Args, Debug, Clone)]
pub struct JobsArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
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
    let cloud = args.cloud.cloud()?;
    let glance = connect(&cloud, args.cloud.os_region_name.as_deref()).await?;
    let session = glance.replicator();
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
            if end.job.status != ReplicationStatus::Replicated {
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

/// A job as the API shows it (seed 001).
pub type Job = ReplicationJob;

fn reason(s: &Shown) -> String {
    s.error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// The image API of the cloud's region (its replicator is [`Glance::replicator`]), logged in
/// with the cloud's password.
pub async fn connect(cloud: &Cloud, region: Option<&str>) -> anyhow::Result<Glance> {
    login(cloud).await?.glance(cloud, region)
}

/// Follows a job until it ends, with a progress bar on a terminal (status lines otherwise).
pub async fn watch(session: &Replicator<'_>, id: &str, every: Duration) -> anyhow::Result<Shown> {
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
            Some(p) if j.status == ReplicationStatus::Replicating && !p.is_empty() => {
                format!("{} ({p})", j.status)
            }
            _ => j.status.to_string(),
        };
        bar.set_message(format!(
            "{line}  {} → {}",
            j.source_region_id, j.destination_region_id
        ));
        if !tty && line != last {
            eprintln!("{} {:>3}% {line}", j.job_id, j.copy_progress);
        }
        last = line;
        if j.status.is_final() {
            let msg = format!("{}{}", j.status, reason(&shown));
            if j.status == ReplicationStatus::Replicated {
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

pub fn jobs_table(jobs: &[Job]) -> String {
    let headers = [
        "Job ID",
        "Status",
        "Progress",
        "Source image",
        "Regions",
        "Destination tenant",
        "Destination image",
    ];
    list_table(&headers, jobs, |j| {
        vec![
            j.job_id.clone(),
            j.status.to_string(),
            format!("{}%", j.copy_progress),
            j.source_image_name
                .clone()
                .unwrap_or_else(|| j.source_image_id.clone()),
            format!("{} → {}", j.source_region_id, j.destination_region_id),
            j.destination_tenant_id.clone(),
            j.destination_image_id.clone().unwrap_or_default(),
        ]
    })
}

pub fn job_table(s: &Shown) -> String {
    let j = &s.job;
    let mut rows = vec![
        ("job_id", j.job_id.clone()),
        ("status", j.status.to_string()),
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
    if let Some(n) = &s.resumed_from {
        rows.push(("resumed_from_byte", n.to_string()));
    }
    field_table(rows)
}

//! `glimpse`: the command line. `glimpse serve` runs the all-in-one cloud (or, with a
//! configuration file, one identity and/or any set of regions of a larger deployment).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "glimpse",
    version,
    about = "A fast, safe, multi-region cloud image service"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run Glimpse. Without a configuration file: identity plus region-one and region-two on
    /// 127.0.0.1:5000, everything stored under ./glimpse-data.
    Serve {
        /// TOML configuration file (see glimpse.example.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Data directory (overrides the file's data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address, e.g. 127.0.0.1:5000 (overrides the file's listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Image copy jobs of the image replicator: list, show, watch (live progress), cancel.
    /// Talks HTTP to a cloud from clouds.yaml, like `openstack`.
    Jobs(glimpse::jobs_cli::JobsArgs),
    /// The region's key manager: customer master keys for encrypted image copies.
    Kms(glimpse::kms_cli::KmsArgs),
    /// Creates the S3 bucket of every region the configuration serves from `s3://…` (buckets
    /// that exist already are left as they are): the first step of a deployment on S3.
    CreateBuckets {
        /// TOML configuration file (see glimpse.example.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Registers the configuration's regions in an existing Keystone (regions, the services
    /// each region serves and their endpoints, the service user and its roles), idempotently.
    /// The Keystone and its admin credentials come from clouds.yaml, as for `openstack`
    /// (docs/operations.md, "Glimpse beside an existing OpenStack").
    Register {
        /// TOML configuration file of the deployment (see glimpse.example.toml).
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        cloud: glimpse::os_cli::CloudArgs,
    },
}

/// mimalloc instead of glibc's malloc: glibc keeps the 1 MiB stream chunks that many threads
/// allocate and free in per-thread arenas, so a process that moved 1 GiB kept ~120 MiB;
/// mimalloc returns freed pages and keeps memory flat whatever the image size. It is built
/// without transparent huge pages (`no_thp`, and see [`main`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // No transparent huge pages for this process (and its qemu-img children): with them a
    // freed 64 KiB stretch of a 2 MiB page stays resident, and the peak memory of a server
    // that streamed a few GiB rose from ~40 to ~70 MiB. The `no_thp` build of mimalloc stops
    // asking for them; this also covers kernels set to use them always. Best effort.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // Colour codes only on a terminal: logs sent to a file, a pipe or journald stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GLIMPSE_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        config: None,
        data_dir: None,
        listen: None,
    }) {
        Command::Serve {
            config,
            data_dir,
            listen,
        } => serve(config, data_dir, listen).await,
        Command::Jobs(args) => glimpse::jobs_cli::run(args).await,
        Command::Kms(args) => glimpse::kms_cli::run(args).await,
        Command::CreateBuckets { config } => create_buckets(&config).await,
        Command::Register { config, cloud } => {
            glimpse::register::run(&glimpse::settings::load(Some(&config))?.resolve()?, &cloud)
                .await
        }
    }
}

async fn create_buckets(file: &std::path::Path) -> anyhow::Result<()> {
    let config = glimpse::settings::load(Some(file))?;
    for r in config.regions.iter().filter(|r| r.serve) {
        if let Some(bucket) = r.store.strip_prefix("s3://") {
            r.s3.create_bucket(bucket)
                .await
                .map_err(|e| anyhow::anyhow!("region {}: bucket {bucket}: {e}", r.name))?;
            println!("region {}: bucket {bucket} is ready", r.name);
        }
    }
    Ok(())
}

async fn serve(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> anyhow::Result<()> {
    let mut config = glimpse::settings::load(file.as_deref())?;
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    if let Some(l) = listen {
        config.listen = l;
    }
    let running = glimpse::start(config, shutdown_signal()).await?;
    let cfg = &running.cloud.config;
    println!("Glimpse is listening on http://{}", running.addr);
    if cfg.identity.enabled {
        println!("  identity:  {}", cfg.identity_url());
    }
    for r in &running.cloud.regions {
        let served: Vec<String> = r
            .config
            .services
            .iter()
            .map(|s| format!("{}/{s} ({s})", r.url))
            .collect();
        println!("  region {}: {}", r.name, served.join(" "));
    }
    if cfg.identity.enabled && cfg.identity.bootstrap {
        let clouds = cfg.data_dir.join("clouds.yaml");
        println!("Use it with the OpenStack client:");
        println!("  export OS_CLIENT_CONFIG_FILE={}", clouds.display());
        println!("  openstack --os-cloud glimpse-demo-one image list");
        println!("  (clouds: glimpse-admin, glimpse-demo-one, glimpse-demo-two)");
    }
    println!("ready in {} ms", running.startup.as_millis());
    running.server.await??;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

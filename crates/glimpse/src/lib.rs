//! The `glimpse` program as a library: configuration loading and [`serve`], shared by the
//! binary and the end-to-end tests, so tests run exactly what operators run.

pub mod jobs_cli;
pub mod kms_cli;
pub mod listener;
pub mod os_cli;
pub mod register;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use glimpse_core::cloud::Cloud;
use glimpse_core::config::Config;
use tokio::net::TcpListener;

/// A started Glimpse process: its address, the cloud it serves, and the server task.
pub struct Running {
    pub addr: SocketAddr,
    pub cloud: Arc<Cloud>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Time from `start` to accepting connections.
    pub startup: std::time::Duration,
}

/// Binds the listener, opens every database and store, bootstraps identity on first start and
/// starts serving. `shutdown` resolving stops the server gracefully.
pub async fn start(
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let started = Instant::now();
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    config.listen = addr.to_string();
    let config = config.resolve()?;
    let cloud = Arc::new(Cloud::start(config).await?);
    if let Some(identity) = &cloud.identity
        && cloud.config.identity.bootstrap
    {
        glimpse_core::identity::bootstrap::bootstrap(identity, &cloud.config).await?;
    }
    // `stop`: job workers and housekeeping, which the drain already ends; `alive`: the
    // heartbeat, until the listener has finished every request (uploads included).
    let stop = tokio_util::sync::CancellationToken::new();
    let alive = tokio_util::sync::CancellationToken::new();
    cloud.start_workers(stop.clone(), alive.clone());
    let app = glimpse_api::router(cloud.clone());
    let limits = listener::Limits::from(&cloud.config.http);
    let drained = drain(cloud.clone(), stop.clone(), shutdown);
    let server = tokio::spawn(async move {
        let result = listener::serve(listener, app, limits, drained).await;
        stop.cancel();
        alive.cancel();
        result
    });
    Ok(Running {
        addr,
        cloud,
        server,
        startup: started.elapsed(),
    })
}

/// Resolves when the server should stop accepting connections: `shutdown`, then the drain
/// (`[node] drain_seconds`): `/healthcheck` answers 503 and the job workers stop (running jobs
/// go back to the queue for other nodes) while requests are still served.
async fn drain(
    cloud: Arc<Cloud>,
    workers: tokio_util::sync::CancellationToken,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    shutdown.await;
    let seconds = cloud.config.node.drain_seconds;
    if seconds == 0 {
        return;
    }
    cloud
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    workers.cancel();
    tracing::info!(
        seconds,
        "draining: /healthcheck answers 503 until the server stops"
    );
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
}

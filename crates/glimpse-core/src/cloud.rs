//! A running Glimpse process: the identity service (if this process serves it) and the regions
//! it serves, built from one [`Config`]. The binary and the test harness both start it through
//! [`Cloud::start`], so tests run exactly what operators run.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{RemoteValidator, TokenValidator};
use crate::config::Config;
use crate::db::{Db, Schema};
use crate::identity::{CatalogRegion, Identity, IdentitySettings};
use crate::jobs::{Registry, Runner, RunnerConfig};
use crate::region::Region;
use crate::service::{Password, ServiceAccount};
use tokio_util::sync::CancellationToken;

pub struct Cloud {
    pub config: Config,
    pub identity: Option<Arc<Identity>>,
    pub regions: Vec<Arc<Region>>,
    runners: Vec<Arc<Runner>>,
    /// Set when the process was asked to stop: `/healthcheck` answers 503 so that load
    /// balancers take the node out while it finishes what it serves (`[node] drain_seconds`).
    pub draining: std::sync::atomic::AtomicBool,
}

impl Cloud {
    /// Opens databases and stores and runs migrations. `config` must be resolved.
    pub async fn start(config: Config) -> anyhow::Result<Cloud> {
        let identity = if config.identity.enabled {
            let db = Db::open(&config.identity.database, Schema::Identity).await?;
            let settings = IdentitySettings {
                token_ttl: Duration::from_secs(config.identity.token_ttl_seconds),
                identity_url: config.identity_url(),
                regions: config
                    .regions
                    .iter()
                    .map(|r| CatalogRegion {
                        name: r.name.clone(),
                        url: r.url.clone(),
                        services: r.services.clone(),
                    })
                    .collect(),
                validation_cache: Duration::from_secs(config.identity.validation_cache_seconds),
                lockout: crate::identity::Lockout {
                    attempts: config.identity.lockout_failure_attempts,
                    duration: match config.identity.lockout_duration_seconds {
                        0 => None,
                        n => Some(Duration::from_secs(n)),
                    },
                    exempt_user: Some(config.identity.service_user.clone()),
                },
                passwords: crate::identity::password::Settings {
                    memory_kib: config.identity.password_hash_memory_kib,
                    passes: config.identity.password_hash_passes,
                    slots: config.identity.password_checks,
                    queue_wait: Duration::from_secs(config.identity.password_queue_seconds),
                },
            };
            Some(Arc::new(Identity::open(db, settings).await?))
        } else {
            None
        };
        let service = Arc::new(ServiceAccount::new(
            &config.identity_url(),
            &config.identity.service_user,
            Password::of(&config),
            &config.identity.service_project,
        ));
        let validator: Arc<dyn TokenValidator> = match &identity {
            Some(id) => id.clone(),
            None => Arc::new(RemoteValidator::new(
                service.clone(),
                Duration::from_secs(config.identity.validation_cache_seconds),
            )),
        };
        let node = crate::nodes::identity(&config.node, &config.data_dir)?;
        let mut regions = Vec::new();
        for rc in config.regions.iter().filter(|r| r.serve) {
            let region = Region::open(rc, validator.clone(), service.clone())
                .await?
                .on_node(&node, &config.node);
            recover(&region).await?;
            regions.push(Arc::new(region));
        }
        let runners = regions
            .iter()
            .map(|region| {
                let jc = &region.config.jobs;
                let rc = RunnerConfig {
                    workers: jc.workers,
                    lease: Duration::from_secs(jc.lease_seconds.max(1)),
                    max_attempts: jc.max_attempts.max(1),
                    per_project_running: jc.per_project_running.max(1),
                    node: region.node.clone(),
                    ..RunnerConfig::default()
                };
                Arc::new(Runner::new(
                    region.db.clone(),
                    region.jobs.clone(),
                    job_kinds(region),
                    rc,
                ))
            })
            .collect();
        Ok(Cloud {
            config,
            identity,
            regions,
            runners,
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Starts every region's job workers and its hourly housekeeping: the orphan cleaner
    /// (unreferenced blobs and staging leftovers, cut uploads included, older than
    /// [`crate::images::ORPHAN_GRACE`]), the eviction of cached image copies no server disk
    /// uses and nobody used for as long ([`crate::disks::evict_cached`]), and the purge of
    /// jobs finished more than
    /// `[regions.jobs] retention_days` ago. They stop (workers requeueing running jobs) when
    /// `shutdown` fires. The node's heartbeat goes on until `alive` fires: a draining node
    /// still serves its uploads, which other nodes must not take over meanwhile.
    pub fn start_workers(&self, shutdown: CancellationToken, alive: CancellationToken) {
        for region in &self.regions {
            crate::nodes::spawn_heartbeat(region.clone(), alive.clone());
        }
        for (runner, region) in self.runners.iter().zip(&self.regions) {
            if region.config.jobs.workers > 0 {
                runner.spawn(shutdown.clone());
            }
            let (region, stop) = (region.clone(), shutdown.clone());
            tokio::spawn(async move {
                let grace = crate::images::ORPHAN_GRACE;
                let mut every = tokio::time::interval(grace);
                // The first tick is now: the region's start-up already cleaned.
                every.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = every.tick() => {}
                    }
                    housekeeping(&region).await;
                }
            });
        }
    }
}

/// A region's start-up recovery, run by the process once the region is open and before it
/// serves: the node registers ([`crate::nodes`]) and ends the job leases its earlier life held;
/// each domain repairs what a crash left ([`crate::images::recover`]: interrupted
/// uploads back to `queued`, orphan blobs cleaned; [`crate::compute::recover`];
/// [`crate::volumes::recover`]), then a master key rotation in progress moves every customer
/// key to the current master key.
pub async fn recover(region: &Region) -> anyhow::Result<()> {
    crate::nodes::register(&region.db, &region.node, region.config.jobs.workers).await?;
    let released = crate::jobs::store::release_node(&region.db, &region.node).await?;
    if released > 0 {
        tracing::warn!(region = %region.name, node = %region.node, jobs = released,
            "jobs this node ran before it stopped are taken up again");
    }
    crate::images::recover(region).await?;
    crate::compute::recover(region).await?;
    crate::volumes::recover(region).await?;
    if !region.kms.rotating() {
        return Ok(());
    }
    let (moved, current, lost) = region.kms.rewrap().await?;
    tracing::warn!(region = %region.name, rewrapped = moved, current, unreadable = lost,
        "KMS master key rotation: customer keys re-wrapped with the current master key; \
         remove the previous key from the configuration once every node runs the new one");
    Ok(())
}

/// Takes over the in-process work of the region's nodes whose heartbeat went stale (run after
/// each of this node's heartbeats, see [`crate::nodes`]): their uploads go back to `queued`
/// ([`crate::images::take_over`]) and their write-disk tasks end
/// ([`crate::compute::take_over`]). When no node is stale (the usual case) it is one small
/// query on the `nodes` table. Each part logs its own failure.
pub async fn take_over(region: &Region) {
    let name = &region.name;
    let stale = crate::nodes::stale_before(&region.node_config);
    match crate::nodes::any_stale(&region.db, &stale).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(region = %name, error = %e, "looking for stale nodes failed");
            return;
        }
    }
    match crate::images::take_over(region, &stale).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(region = %name, images = n,
            "uploads of nodes whose heartbeat stopped put back to queued"),
        Err(e) => tracing::warn!(region = %name, error = %e, "taking over stale uploads failed"),
    }
    match crate::compute::take_over(region, &stale).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(region = %name, servers = n,
            "disk writes of nodes whose heartbeat stopped ended"),
        Err(e) => tracing::warn!(region = %name, error = %e, "ending stale disk writes failed"),
    }
}

/// One round of a region's hourly housekeeping (see [`Cloud::start_workers`]): orphan blobs
/// and staging leftovers, cached image copies nobody uses, finished jobs past retention. Each
/// part logs its own failure and the others still run.
pub async fn housekeeping(region: &Region) {
    let grace = crate::images::ORPHAN_GRACE;
    let name = &region.name;
    match crate::images::clean_orphans(region, grace).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(region = %name, blobs = n, "orphan blobs deleted"),
        Err(e) => tracing::warn!(region = %name, error = %e, "orphan blob cleaning failed"),
    }
    match crate::disks::evict_cached(region, grace).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(region = %name, files = n, "unused cached image copies evicted"),
        Err(e) => tracing::warn!(region = %name, error = %e, "cached image eviction failed"),
    }
    let days = region.config.jobs.retention_days;
    if days == 0 {
        return;
    }
    let keep = Duration::from_secs(days.saturating_mul(86_400));
    match region.jobs.purge_finished(keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(region = %name, jobs = n, "finished jobs past retention forgotten"),
        Err(e) => tracing::warn!(region = %name, error = %e, "job purge failed"),
    }
}

/// Every job kind a region runs, each under its `Job::KIND`.
fn job_kinds(region: &Arc<Region>) -> Registry {
    let r = || region.clone();
    Registry::default()
        .register(Arc::new(crate::replication::ReplicateHandler::new(r())))
        .register(Arc::new(crate::compute::BuildHandler::new(r())))
        .register(Arc::new(crate::compute::SnapshotHandler::new(r())))
        .register(Arc::new(crate::volumes::create::CreateHandler::new(r())))
        .register(Arc::new(crate::volumes::upload::UploadHandler::new(r())))
        .register(Arc::new(crate::ims::CopyHandler::new(r())))
}

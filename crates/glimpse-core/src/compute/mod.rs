//! Compute: a small Nova for one region. Servers whose root disks are real qcow2 overlays
//! over verified local copies of their images ([`crate::disks`]), Nova's states and power
//! actions, fixed flavors, and `createImage` (server snapshots, seed 004) as a durable job.
//!
//! * [`servers`]: create (then the `server_build` job in [`build`]), show, list, delete,
//!   power actions, the `glimpse-write-disk` extension, and [`get`] (what other services use
//!   to find a caller's server).
//! * [`snapshot`]: `createImage` checks and the `server_snapshot` job.
//! * [`model`]: servers, states, flavors; [`repo`]: the SQL.
//!
//! There is no hypervisor: a server's power state is a record, its disk is the real thing.
//!
//! Crash behaviour: state is in the region database and the disk dir. Jobs resume after a
//! crash (see [`build`], [`snapshot`]); [`recover`] (run at start-up by [`crate::cloud::recover`]) repairs what
//! a crash between a claim and its job's enqueue leaves: a building server with no build job
//! goes to ERROR, a snapshot task with no job is cleared and its image deleted, and a
//! write-disk task (in-process only) is cleared.

pub mod build;
pub mod keypairs;
pub mod model;
mod repo;
pub mod servers;
pub mod snapshot;

pub use build::BuildHandler;
pub use model::{FLAVORS, Flavor, PowerState, Server, VmState, flavor};
pub use servers::{
    NewServer, PowerAction, ServerUpdate, create, delete, get, list, power, update, write_disk,
};
pub use snapshot::{SnapshotHandler, SnapshotRequest, create_image};

use crate::error::Result;
use crate::region::Region;

/// The write-disk tasks of nodes whose heartbeat went stale end (run by every node after each
/// of its heartbeats, see [`crate::nodes`]). Returns how many.
pub async fn take_over(region: &Region, stale_before: &str) -> Result<u64> {
    repo::end_abandoned_tasks(&region.db, servers::DISK_WRITING, None, stale_before).await
}

/// Start-up repair of tasks whose job was never enqueued (see the module documentation), and of
/// write-disk tasks this node (or a dead one) left.
/// Returns how many servers were repaired.
pub async fn recover(region: &Region) -> Result<usize> {
    let stale = crate::nodes::stale_before(&region.node_config);
    let node = Some(region.node.as_str());
    let ended = repo::end_abandoned_tasks(&region.db, servers::DISK_WRITING, node, &stale).await?;
    let mut n = ended as usize;
    for s in repo::with_task(&region.db).await? {
        match s.task_state.as_deref() {
            Some(model::task::SPAWNING) => {
                let key = format!("build-{}", s.id);
                if region
                    .jobs
                    .by_key::<BuildHandler>(&s.project_id, &key)
                    .await?
                    .is_none()
                {
                    repo::failed_build(&region.db, &s.id, "The build was interrupted.").await?;
                    n += 1;
                }
            }
            Some(_) => {
                let Some(image) = s.snapshot_image.clone() else {
                    continue;
                };
                let job = region
                    .jobs
                    .by_key::<SnapshotHandler>(&s.project_id, &image)
                    .await?;
                if job.is_none_or(|j| j.state.is_terminal()) {
                    snapshot::abandon(region, &s.id, &image, &servers::acting_for(&s)).await;
                    n += 1;
                }
            }
            None => {}
        }
    }
    if n > 0 {
        tracing::warn!(region = %region.name, servers = n, "interrupted server tasks repaired");
    }
    Ok(n)
}

//! The nodes of a region: several `glimpse` processes may serve one region from one database
//! and one blob store. This module owns the `nodes` table.
//!
//! Each node has a stable id ([`identity`]: `[node] id`, else the data dir's `node-id` file,
//! made once), registers at start-up ([`register`]) and beats every `heartbeat_seconds`
//! ([`spawn_heartbeat`]). What a node holds in flight carries its id: an upload in `saving`
//! (`images.saving_node`) and a job lease (`jobs.lease_owner` starts with `<node>/`). So:
//! * a node's start-up recovery touches only its own past work (and work of nodes already
//!   stale), never another live node's uploads ([`crate::images::recover`]);
//! * once a node's heartbeat is older than `timeout_seconds`, the others take its work over:
//!   its uploads go back to `queued` and its write-disk tasks end at their next beat
//!   ([`crate::cloud::take_over`]), and its job leases expire on their own and are claimed
//!   again (see [`crate::jobs`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use glimpse_types::db_time;
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::db::Db;
use crate::error::Result;
use crate::region::Region;

/// This process's node id: `[node] id` when set, else the one in `<data_dir>/node-id`, which
/// is made (a random id) the first time, or again when a crash left it empty. Ids are 1 to 64
/// characters of `[A-Za-z0-9._-]`.
pub fn identity(config: &NodeConfig, data_dir: &Path) -> anyhow::Result<String> {
    let file = data_dir.join("node-id");
    let id = if config.id.is_empty() {
        let read = std::fs::read_to_string(&file).map(|s| s.trim().to_string());
        match read {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => new_node_id(data_dir, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_node_id(data_dir, &file)?,
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", file.display())),
        }
    } else {
        config.id.clone()
    };
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let source = if config.id.is_empty() {
        file.display().to_string()
    } else {
        "[node] id".to_string()
    };
    anyhow::ensure!(
        valid,
        "node id {id:?} (from {source}) must be 1 to 64 characters of letters, digits, '.', '_' \
         and '-'"
    );
    Ok(id)
}

/// A new random node id, written to `file`.
fn new_node_id(data_dir: &Path, file: &Path) -> anyhow::Result<String> {
    let id = format!("node-{}", &glimpse_types::hex_id()[..12]);
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(file, format!("{id}\n"))?;
    Ok(id)
}

/// Records this node as started now (a restart keeps its row and id).
pub async fn register(db: &Db, id: &str, workers: usize) -> Result<()> {
    let now = db_time(glimpse_types::now());
    let host = hostname();
    sqlx::query(
        "INSERT INTO nodes (id, host, workers, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (id) DO UPDATE SET host = $2, workers = $3, started_at = $4, heartbeat_at = $4",
    )
    .bind(id)
    .bind(host)
    .bind(workers as i64)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// One heartbeat of this node.
pub async fn beat(db: &Db, id: &str) -> Result<()> {
    sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
        .bind(db_time(glimpse_types::now()))
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The SQL condition "no live node runs the work whose node `column` names", for a statement
/// whose `$2` is [`stale_before`]'s time and, at a node's start-up (`starting`), whose `$3` is
/// that node's id: the work of nodes whose heartbeat is older, and at start-up also the
/// node's own (its earlier life) and that of no recorded node (rows from before nodes).
pub(crate) fn abandoned(column: &str, starting: bool) -> String {
    let stale = format!("{column} IN (SELECT id FROM nodes WHERE heartbeat_at < $2)");
    if starting {
        format!("({column} IS NULL OR {column} = $3 OR {stale})")
    } else {
        stale
    }
}

/// Whether any node's heartbeat is older than `stale_before` (one indexed-key lookup: the
/// takeover after each heartbeat touches the big tables only when there is one).
pub(crate) async fn any_stale(db: &Db, stale_before: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT id FROM nodes WHERE heartbeat_at < $1 LIMIT 1")
            .bind(stale_before)
            .fetch_optional(&db.pool)
            .await?
            .is_some(),
    )
}

/// Heartbeats older than this mean a dead node.
pub(crate) fn stale_before(config: &NodeConfig) -> String {
    let timeout = chrono::Duration::seconds(config.timeout_seconds.max(1) as i64);
    db_time(glimpse_types::now() - timeout)
}

/// Beats for this node every `heartbeat_seconds` until `stop`, and after each beat takes over
/// the work of nodes that went stale ([`crate::cloud::take_over`]). A failed beat (database down) is logged and retried at
/// the next tick; the node's work stays its own until its heartbeat is stale.
///
/// A node takes over only once its own beats have come back on time for `timeout_seconds`
/// ([`TakeOverGate`]): after the database was unreachable (a restart), every node's heartbeat
/// may be stale at once, and the first node to beat again must not put the uploads that the
/// others still run back to `queued` before they had the time to beat too.
pub fn spawn_heartbeat(region: Arc<Region>, stop: CancellationToken) {
    tokio::spawn(async move {
        let period = Duration::from_secs(region.node_config.heartbeat_seconds.max(1));
        let mut gate = TakeOverGate::new(&region.node_config);
        let mut every = tokio::time::interval(period);
        // After a stall (the database away) beat once, not once per missed period; the first
        // tick is now, and `register` has just beaten.
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = beat(&region.db, &region.node).await {
                tracing::warn!(region = %region.name, node = %region.node, error = %e,
                    "node heartbeat failed");
                gate.failed();
                continue;
            }
            if gate.succeeded(tokio::time::Instant::now()) {
                crate::cloud::take_over(&region).await;
            }
        }
    });
}

/// When a node may take over stale nodes' work: once its own beats have come back every
/// heartbeat for `timeout_seconds`, with no failure and no late one (answered more than two
/// heartbeat periods after the one before: a beat waits for a connection while the database is
/// down, and then writes the time it was sent). Every live node then had the time to beat
/// after the same outage.
#[derive(Debug)]
pub(crate) struct TakeOverGate {
    wait: Duration,
    late: Duration,
    last_beat: Option<tokio::time::Instant>,
    beating_since: Option<tokio::time::Instant>,
}

impl TakeOverGate {
    pub(crate) fn new(config: &NodeConfig) -> TakeOverGate {
        TakeOverGate {
            wait: Duration::from_secs(config.timeout_seconds.max(1)),
            late: Duration::from_secs(2 * config.heartbeat_seconds.max(1)),
            last_beat: None,
            beating_since: None,
        }
    }

    pub(crate) fn failed(&mut self) {
        self.beating_since = None;
    }

    /// A beat succeeded, answered at `at` (not sent: a beat sent during an outage may be
    /// answered only after it): whether this node may take over now.
    pub(crate) fn succeeded(&mut self, at: tokio::time::Instant) -> bool {
        if self
            .last_beat
            .is_some_and(|last| at.duration_since(last) > self.late)
        {
            self.beating_since = None;
        }
        self.last_beat = Some(at);
        let since = *self.beating_since.get_or_insert(at);
        at.duration_since(since) >= self.wait
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_come_from_the_config_or_a_file_made_once() {
        let dir = crate::testing::TempDir::new("node-id");
        let from_file = NodeConfig::default();
        let made = identity(&from_file, &dir.0).unwrap();
        assert!(made.starts_with("node-"), "{made}");
        assert_eq!(identity(&from_file, &dir.0).unwrap(), made);
        // A crash between creating and writing the file left it empty: a new id.
        std::fs::write(dir.0.join("node-id"), "\n").unwrap();
        let again = identity(&from_file, &dir.0).unwrap();
        assert!(again.starts_with("node-") && again != made, "{again}");
        std::fs::write(dir.0.join("node-id"), "no spaces\n").unwrap();
        let err = identity(&from_file, &dir.0).unwrap_err().to_string();
        assert!(
            err.contains("node-id") && err.contains("no spaces"),
            "{err}"
        );
        let named = |id: &str| NodeConfig {
            id: id.into(),
            ..NodeConfig::default()
        };
        assert_eq!(identity(&named("a.b_c-1"), &dir.0).unwrap(), "a.b_c-1");
        for bad in ["x/y", &"n".repeat(65)] {
            let err = identity(&named(bad), &dir.0).unwrap_err().to_string();
            assert!(err.contains("[node] id"), "{err}");
        }
    }

    #[test]
    fn take_over_waits_for_a_timeout_of_beats_without_a_failure_or_a_gap() {
        let config = NodeConfig {
            heartbeat_seconds: 1,
            timeout_seconds: 3,
            ..NodeConfig::default()
        };
        let mut gate = TakeOverGate::new(&config);
        let t0 = tokio::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!gate.succeeded(at(0)), "just started");
        assert!(!gate.succeeded(at(1)));
        assert!(!gate.succeeded(at(2)));
        assert!(gate.succeeded(at(3)));
        assert!(gate.succeeded(at(4)));
        // A beat that waited for the database (answered 3 s after the one before): the wait
        // starts again.
        assert!(!gate.succeeded(at(7)));
        assert!(!gate.succeeded(at(9)), "2 s apart is not late");
        assert!(gate.succeeded(at(10)));
        // A failed beat: the first good one after it starts the wait again.
        gate.failed();
        gate.failed();
        assert!(!gate.succeeded(at(11)));
        assert!(!gate.succeeded(at(12)));
        assert!(!gate.succeeded(at(13)));
        assert!(gate.succeeded(at(14)));
    }
}

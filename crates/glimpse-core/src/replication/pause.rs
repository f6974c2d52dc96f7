//! Pause points: a deterministic way for in-process tests to stop a copy in the middle
//! (cancel mid-copy) or break it there (the connection lost mid-copy), without sleeps or
//! throttles.
//!
//! A test calls [`pause_copy`] (or [`fail_copy`]) with a source image id and a byte count
//! before it submits the job; the handler looks the id up when each copy attempt starts and,
//! once that many bytes have gone out to the destination, marks the point
//! [`PausePoint::reached`] and holds the stream until [`PausePoint::release`] (or the job's
//! cancellation) — or, for a fail point, breaks the upload's body stream, which the upload
//! sees as a lost connection (a retryable fault). Nothing is registered in
//! production, where the cost is one map lookup per copy. Keyed by source image id (a fresh
//! UUID per test), so tests running in parallel never meet. Process memory only: a restart
//! forgets every point.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::watch;

static POINTS: LazyLock<Mutex<HashMap<String, Arc<PausePoint>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// One registered pause.
#[derive(Debug)]
pub struct PausePoint {
    pub after_bytes: u64,
    /// Copies still to break (fail points); a pause point has 0 and holds instead.
    failures: AtomicU32,
    holds: bool,
    reached: watch::Sender<bool>,
    released: watch::Sender<bool>,
}

impl PausePoint {
    /// Resolves once a copy has been held at this point.
    pub async fn reached(&self) {
        let mut rx = self.reached.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Whether a copy is (or was) held here.
    pub fn is_reached(&self) -> bool {
        *self.reached.borrow()
    }

    /// Lets the held copy (and every later one) go on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// Copies this fail point will still break.
    pub fn failures_left(&self) -> u32 {
        self.failures.load(Ordering::SeqCst)
    }

    /// Called by the copy with the bytes sent so far; waits while the point holds, or
    /// answers the injected fault of a fail point.
    pub(crate) async fn hold(&self, sent: u64) -> Result<(), InjectedFault> {
        if sent < self.after_bytes || *self.released.borrow() {
            return Ok(());
        }
        if !self.holds {
            let left = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if left.is_ok() {
                self.reached.send_replace(true);
                return Err(InjectedFault);
            }
            return Ok(());
        }
        self.reached.send_replace(true);
        let mut rx = self.released.subscribe();
        let _ = rx.wait_for(|v| *v).await;
        Ok(())
    }
}

/// The error a fail point puts into the upload stream.
#[derive(Debug)]
pub struct InjectedFault;

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected fault: the copy's connection broke")
    }
}

impl std::error::Error for InjectedFault {}

fn register(
    source_image_id: &str,
    after_bytes: u64,
    holds: bool,
    failures: u32,
) -> Arc<PausePoint> {
    let point = Arc::new(PausePoint {
        after_bytes,
        failures: AtomicU32::new(failures),
        holds,
        reached: watch::channel(false).0,
        released: watch::channel(false).0,
    });
    if let Ok(mut points) = POINTS.lock() {
        points.insert(source_image_id.to_string(), point.clone());
    }
    point
}

/// Registers a pause for copies of `source_image_id` after `after_bytes` bytes.
pub fn pause_copy(source_image_id: &str, after_bytes: u64) -> Arc<PausePoint> {
    register(source_image_id, after_bytes, true, 0)
}

/// Makes the next `times` copies of `source_image_id` break after `after_bytes` bytes.
pub fn fail_copy(source_image_id: &str, after_bytes: u64, times: u32) -> Arc<PausePoint> {
    register(source_image_id, after_bytes, false, times)
}

/// Removes the pause of `source_image_id` (releasing a held copy).
pub fn clear(source_image_id: &str) {
    let removed = POINTS
        .lock()
        .ok()
        .and_then(|mut p| p.remove(source_image_id));
    if let Some(p) = removed {
        p.release();
    }
}

/// The pause registered for copies of `source_image_id`, if any.
pub(crate) fn lookup(source_image_id: &str) -> Option<Arc<PausePoint>> {
    POINTS.lock().ok()?.get(source_image_id).cloned()
}

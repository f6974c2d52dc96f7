//! Runner and store behaviour on a real SQLite database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::runner::RunnerConfig;
use super::*;
use crate::db::Db;
use crate::testing::{TempDir, region_db};

/// The database and, held for its `Drop`, the directory it lives in.
struct TempDb(#[allow(dead_code)] TempDir, Db);

/// A fresh region database (SQLite, or PostgreSQL when configured: [`crate::testing`]).
async fn db() -> TempDb {
    let dir = TempDir::new("jobs");
    let db = region_db(&dir.0, "jobs").await;
    TempDb(dir, db)
}

fn new_job(project: &str, key: Option<&str>) -> NewJob {
    NewJob {
        id: None,
        kind: TestHandler::KIND.into(),
        project_id: project.into(),
        phase: "requested".into(),
        params: serde_json::json!({"n": 1}),
        idempotency_key: key.map(str::to_string),
    }
}

/// Fails retryably `fail_first` times, or waits for cancel when `block` is set.
struct TestHandler {
    fail_first: usize,
    block: bool,
    runs: AtomicUsize,
    cleanups: AtomicUsize,
}

#[async_trait]
impl Job for TestHandler {
    const KIND: &'static str = "test";
    type Params = serde_json::Value;

    async fn run(
        &self,
        ctx: &JobContext,
        _params: serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        ctx.progress(40, "working").await?;
        if self.block {
            ctx.cancel.cancelled().await;
            return Err(JobError::Interrupted);
        }
        if n < self.fail_first {
            return Err(JobError::Retryable(format!("transient {n}")));
        }
        Ok(serde_json::json!({"done": true}))
    }
    async fn cleanup(&self, _ctx: &JobContext, _params: &serde_json::Value) {
        self.cleanups.fetch_add(1, Ordering::SeqCst);
    }
}

fn fast() -> RunnerConfig {
    RunnerConfig {
        workers: 1,
        lease: Duration::from_secs(5),
        max_attempts: 3,
        per_project_running: 2,
        poll: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        node: "test-node".into(),
    }
}

/// A runner of these kinds with one fast worker, started; cancel the token to stop it.
fn start(db: &Db, kinds: Registry) -> (Arc<Runner>, CancellationToken) {
    let queue = Arc::new(Queue::new(db.clone()));
    let runner = Arc::new(Runner::new(db.clone(), queue, kinds, fast()));
    let stop = CancellationToken::new();
    runner.spawn(stop.clone());
    (runner, stop)
}

/// Waits (by polling the database, bounded) until the job reaches a terminal state.
async fn until_terminal(db: &Db, id: &str) -> JobRecord {
    for _ in 0..500 {
        let j = store::get(db, id).await.unwrap().unwrap();
        if j.state.is_terminal() {
            return j;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

fn handler(fail_first: usize, block: bool) -> Arc<TestHandler> {
    Arc::new(TestHandler {
        fail_first,
        block,
        runs: AtomicUsize::new(0),
        cleanups: AtomicUsize::new(0),
    })
}

/// A fresh database with a started runner of one [`handler`] and a job of it just enqueued:
/// (database, handler, runner, its stop token, the job, whether the enqueue created it).
async fn started(
    fail_first: usize,
    block: bool,
) -> (
    TempDb,
    Arc<TestHandler>,
    Arc<Runner>,
    CancellationToken,
    JobRecord,
    bool,
) {
    let t = db().await;
    let h = handler(fail_first, block);
    let (runner, stop) = start(&t.1, Registry::default().register(h.clone()));
    let (job, created) = store::enqueue(&t.1, &new_job("p1", None)).await.unwrap();
    (t, h, runner, stop, job, created)
}

#[tokio::test]
async fn a_job_runs_to_success_after_transient_failures() {
    let (t, h, runner, stop, job, created) = started(2, false).await;
    assert!(created);
    runner.wake();
    let done = until_terminal(&t.1, &job.id).await;
    stop.cancel();
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 3);
    assert_eq!(done.progress, 100);
    assert_eq!(done.result, Some(serde_json::json!({"done": true})));
    assert_eq!(h.cleanups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_clean_up() {
    let (t, h, _runner, stop, job, _) = started(100, false).await;
    let done = until_terminal(&t.1, &job.id).await;
    stop.cancel();
    assert_eq!(done.state, JobState::Failed);
    assert_eq!(done.error.as_deref(), Some("transient 2"));
    assert_eq!(h.cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cancel_of_a_running_job_cleans_up_and_ends_canceled() {
    let (t, h, _runner, stop, job, _) = started(0, true).await;
    // Wait until it runs, then ask for cancel.
    for _ in 0..500 {
        if store::get(&t.1, &job.id).await.unwrap().unwrap().progress == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store::request_cancel(&t.1, &job.id).await.unwrap());
    let done = until_terminal(&t.1, &job.id).await;
    stop.cancel();
    assert_eq!(done.state, JobState::Canceled);
    assert_eq!(h.cleanups.load(Ordering::SeqCst), 1);
    assert!(
        !store::request_cancel(&t.1, &job.id).await.unwrap(),
        "no cancel after the end"
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_same_job() {
    let t = db().await;
    let (a, created_a) = store::enqueue(&t.1, &new_job("p1", Some("k1")))
        .await
        .unwrap();
    let (b, created_b) = store::enqueue(&t.1, &new_job("p1", Some("k1")))
        .await
        .unwrap();
    let (c, _) = store::enqueue(&t.1, &new_job("p2", Some("k1")))
        .await
        .unwrap();
    assert!(created_a && !created_b);
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, c.id, "keys are per project");
}

/// Sets a job's state and finish time directly (as a worker that ended it `days_ago`).
async fn ended(db: &Db, id: &str, state: &str, days_ago: i64) {
    let at = glimpse_types::now() - chrono::Duration::days(days_ago);
    sqlx::query("UPDATE jobs SET state = $1, finished_at = $2 WHERE id = $3")
        .bind(state)
        .bind(glimpse_types::db_time(at))
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn finished_jobs_past_retention_are_forgotten_with_their_keys() {
    let t = db().await;
    let q = Queue::new(t.1.clone());
    let (old, _) = q.enqueue(&new_job("p1", Some("old"))).await.unwrap();
    let (failed, _) = q.enqueue(&new_job("p1", Some("failed"))).await.unwrap();
    let (recent, _) = q.enqueue(&new_job("p1", Some("recent"))).await.unwrap();
    let (waiting, _) = q.enqueue(&new_job("p1", Some("waiting"))).await.unwrap();
    ended(&t.1, &old.id, "succeeded", 40).await;
    ended(&t.1, &failed.id, "failed", 31).await;
    ended(&t.1, &recent.id, "canceled", 29).await;
    // Unfinished, however old its times: never purged.
    sqlx::query("UPDATE jobs SET created_at = $1 WHERE id = $2")
        .bind(glimpse_types::db_time(
            glimpse_types::now() - chrono::Duration::days(400),
        ))
        .bind(&waiting.id)
        .execute(&t.1.pool)
        .await
        .unwrap();
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(q.purge_finished(month).await.unwrap(), 2);
    assert!(q.get(&old.id).await.unwrap().is_none());
    assert!(q.get(&failed.id).await.unwrap().is_none());
    assert!(q.get(&recent.id).await.unwrap().is_some());
    assert!(q.get(&waiting.id).await.unwrap().is_some());
    // The key went with its job: the same key now makes a new one; a kept key still answers
    // its job.
    let (again, created) = q.enqueue(&new_job("p1", Some("old"))).await.unwrap();
    assert!(created && again.id != old.id);
    let (same, created) = q.enqueue(&new_job("p1", Some("recent"))).await.unwrap();
    assert!(!created && same.id == recent.id);
    assert_eq!(q.purge_finished(month).await.unwrap(), 0);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_zombie_cannot_finish() {
    let t = db().await;
    let (job, _) = store::enqueue(&t.1, &new_job("p1", None)).await.unwrap();
    let zero = chrono::Duration::zero();
    let a = store::claim(&t.1, "worker-a", &[TestHandler::KIND], zero, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, job.id);
    let b = store::claim(
        &t.1,
        "worker-b",
        &[TestHandler::KIND],
        chrono::Duration::seconds(30),
        2,
    )
    .await
    .unwrap()
    .expect("expired lease is claimable");
    assert_eq!(b.attempts, 2);
    let succeed =
        |owner| store::transition(&t.1, &job.id, owner, JobState::Succeeded, None, None, None);
    let zombie = succeed("worker-a").await.unwrap();
    assert!(!zombie, "the old owner's completion is refused");
    assert!(succeed("worker-b").await.unwrap());
}

/// A node that restarts ends the leases its earlier life held (owners `<node>/…`) so its jobs
/// are claimed again at once; another node's leases (even one whose id starts the same) stay.
#[tokio::test]
async fn a_restarted_node_releases_only_its_own_leases() {
    let t = db().await;
    let lease = chrono::Duration::seconds(300);
    let claim = |owner: &'static str| store::claim(&t.1, owner, &[TestHandler::KIND], lease, 9);
    store::enqueue(&t.1, &new_job("p1", None)).await.unwrap();
    store::enqueue(&t.1, &new_job("p2", None)).await.unwrap();
    let mine = claim("n1/100-w0").await.unwrap().unwrap();
    let theirs = claim("n10/200-w0").await.unwrap().unwrap();
    assert!(
        claim("n1/300-w0").await.unwrap().is_none(),
        "both leases hold"
    );
    assert_eq!(store::release_node(&t.1, "n1").await.unwrap(), 1);
    let again = claim("n1/300-w0").await.unwrap().expect("released at once");
    assert_eq!(again.id, mine.id);
    assert_ne!(again.id, theirs.id);
    assert!(claim("n1/300-w1").await.unwrap().is_none());
}

#[tokio::test]
async fn per_project_cap_queues_the_rest() {
    let t = db().await;
    for _ in 0..3 {
        store::enqueue(&t.1, &new_job("p1", None)).await.unwrap();
    }
    store::enqueue(&t.1, &new_job("p2", None)).await.unwrap();
    let lease = chrono::Duration::seconds(30);
    let mut got = Vec::new();
    while let Some(j) = store::claim(&t.1, "w", &[TestHandler::KIND], lease, 2)
        .await
        .unwrap()
    {
        got.push(j.project_id);
    }
    got.sort();
    assert_eq!(
        got,
        ["p1", "p1", "p2"],
        "the third p1 job waits for a free slot"
    );
}

/// A kind with typed parameters: records the `n` it was given.
struct Counted {
    seen: std::sync::Mutex<Vec<u32>>,
    cleanups: AtomicUsize,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct CountedParams {
    n: u32,
}

#[async_trait]
impl Job for Counted {
    const KIND: &'static str = "counted";
    type Params = CountedParams;

    async fn run(
        &self,
        _ctx: &JobContext,
        p: CountedParams,
    ) -> Result<serde_json::Value, JobError> {
        self.seen.lock().unwrap().push(p.n);
        Ok(serde_json::json!({ "n": p.n }))
    }

    async fn cleanup(&self, _ctx: &JobContext, _p: &CountedParams) {
        self.cleanups.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn typed_params_round_trip_and_a_bad_row_fails_at_once() {
    let t = db().await;
    let k = Arc::new(Counted {
        seen: std::sync::Mutex::new(Vec::new()),
        cleanups: AtomicUsize::new(0),
    });
    let (_runner, stop) = start(&t.1, Registry::default().register(k.clone()));
    let good = NewJob::of::<Counted>("p1", &CountedParams { n: 7 }).unwrap();
    assert_eq!(
        (good.kind.as_str(), &good.params),
        ("counted", &serde_json::json!({ "n": 7 }))
    );
    let (good, _) = store::enqueue(&t.1, &good).await.unwrap();
    assert_eq!(good.params_as::<Counted>(), Ok(CountedParams { n: 7 }));
    let bad = NewJob {
        params: serde_json::json!({ "n": "seven" }),
        ..NewJob::of::<Counted>("p1", &CountedParams { n: 0 }).unwrap()
    };
    let (bad, _) = store::enqueue(&t.1, &bad).await.unwrap();
    let good = until_terminal(&t.1, &good.id).await;
    let bad = until_terminal(&t.1, &bad.id).await;
    stop.cancel();
    assert_eq!(good.state, JobState::Succeeded);
    assert_eq!(good.result, Some(serde_json::json!({ "n": 7 })));
    assert_eq!(*k.seen.lock().unwrap(), vec![7]);
    assert_eq!((bad.state, bad.attempts), (JobState::Failed, 1));
    let error = bad.error.unwrap_or_default();
    assert!(error.starts_with("unreadable job parameters"), "{error}");
    assert_eq!(
        k.cleanups.load(Ordering::SeqCst),
        0,
        "no params, no cleanup"
    );
}

#[test]
fn params_are_read_only_as_their_own_kind() {
    let new = NewJob::of::<TestHandler>("p1", &serde_json::json!({ "n": 1 })).unwrap();
    let job = JobRecord {
        id: "j".into(),
        kind: new.kind,
        project_id: new.project_id,
        state: JobState::Queued,
        phase: new.phase,
        cancel_requested: false,
        progress: 0,
        params: new.params,
        checkpoint: None,
        result: None,
        error: None,
        attempts: 0,
        idempotency_key: None,
        lease_owner: None,
        created_at: glimpse_types::now(),
        updated_at: glimpse_types::now(),
        started_at: None,
        finished_at: None,
    };
    assert!(job.params_as::<TestHandler>().is_ok());
    let e = job.params_as::<Counted>().unwrap_err();
    assert_eq!(
        e,
        JobError::Permanent("a test job is not a counted job".into())
    );
}

#[test]
#[should_panic(expected = "registered twice")]
fn a_kind_registered_twice_is_refused() {
    let _ = Registry::default()
        .register(handler(0, false))
        .register(handler(0, false));
}

//! The region's hourly housekeeping ([`glimpse_core::cloud::housekeeping`], what the timer in
//! `Cloud::start_workers` runs): finished jobs past retention go with their idempotency keys,
//! running ones stay; orphan staging leftovers older than the grace go, young ones and
//! published blobs stay.

use crate::common;

use common::TestCloud;
use glimpse_core::cloud::housekeeping;
use glimpse_core::jobs::NewJob;

fn job(key: &str) -> NewJob {
    NewJob {
        id: None,
        kind: "housekeeping-test".into(),
        project_id: "p".into(),
        phase: "requested".into(),
        params: serde_json::json!({}),
        idempotency_key: Some(key.into()),
    }
}

#[tokio::test]
async fn one_round_purges_old_jobs_and_orphans_and_keeps_the_rest() {
    let tc = TestCloud::start().await;
    let r = &tc.cloud.regions[0];
    let (old, _) = r.jobs.enqueue(&job("old")).await.unwrap();
    let (open, _) = r.jobs.enqueue(&job("open")).await.unwrap();
    let long_ago =
        glimpse_types::db_time(glimpse_types::now() - std::time::Duration::from_secs(31 * 86_400));
    for (id, state) in [(&old.id, "succeeded"), (&open.id, "queued")] {
        sqlx::query("UPDATE jobs SET state = $1, finished_at = $2, created_at = $2 WHERE id = $3")
            .bind(state)
            .bind(&long_ago)
            .bind(id)
            .execute(&r.db.pool)
            .await
            .unwrap();
    }
    // An old and a young staging leftover (filesystem store only).
    let staging = r
        .store
        .url()
        .strip_prefix("file://")
        .map(|p| std::path::Path::new(p).join(".staging"));
    if let Some(dir) = &staging {
        for name in ["stale", "fresh"] {
            std::fs::write(dir.join(name), b"half an upload").unwrap();
        }
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
        std::fs::File::options()
            .write(true)
            .open(dir.join("stale"))
            .unwrap()
            .set_modified(then)
            .unwrap();
    }

    housekeeping(r).await;

    assert!(
        r.jobs.get(&old.id).await.unwrap().is_none(),
        "finished past retention"
    );
    assert!(
        r.jobs.get(&open.id).await.unwrap().is_some(),
        "unfinished: kept"
    );
    let (again, created) = r.jobs.enqueue(&job("old")).await.unwrap();
    assert!(created && again.id != old.id, "the key went with its job");
    if let Some(dir) = &staging {
        assert!(!dir.join("stale").exists());
        assert!(dir.join("fresh").exists());
    }
}

//! `glimpse jobs list|show|watch|cancel` (the library behind the command) against a whole
//! cloud in this process: it reads a clouds.yaml, logs in over HTTP, follows a job to
//! `replicated`, refuses to cancel a finished job, and fails a `watch` that ends `canceled`.

use crate::common;

use common::TestCloud;
use common::replication::{self as rep, ONE, active_image, world};
use glimpse::jobs_cli::{self, Cloud, CloudArgs, JobsArgs, JobsCommand};
use serde_json::json;

fn args(clouds: &std::path::Path, command: JobsCommand) -> JobsArgs {
    JobsArgs {
        cloud: CloudArgs {
            os_cloud: Some("replicator".into()),
            os_region_name: None,
            clouds_file: Some(clouds.to_path_buf()),
        },
        command,
    }
}

#[tokio::test]
async fn lists_watches_and_cancels_jobs_over_http() {
    let tc = TestCloud::start().await;
    let w = world(&tc).await;
    let clouds = tc.data_dir.join("replicator-clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  replicator:\n    auth:\n      auth_url: {}\n      username: {}\n      \
             password: secret\n      project_name: {}\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    region_name: {ONE}\n    interface: public\n",
            tc.identity(),
            w.user_name,
            w.a_name
        ),
    )
    .unwrap();

    let src = active_image(&tc, ONE, &w.tok_a, json!({}), rep::data(300_000, 21)).await;
    let job = rep::submit_ok(&tc, ONE, &w.tok_a, &src, &w.b).await;
    let watch = JobsCommand::Watch {
        job_id: job.clone(),
        interval: 0.05,
    };
    jobs_cli::run(args(&clouds, watch))
        .await
        .expect("watch ends replicated");
    jobs_cli::run(args(&clouds, JobsCommand::List { json: false }))
        .await
        .unwrap();
    jobs_cli::run(args(
        &clouds,
        JobsCommand::Show {
            job_id: job.clone(),
        },
    ))
    .await
    .unwrap();

    let glance = jobs_cli::connect(&Cloud::load(&clouds, Some("replicator")).unwrap(), None)
        .await
        .unwrap();
    let session = glance.replicator();
    let jobs = session.jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (
            jobs[0].job_id.as_str(),
            jobs[0].status.as_str(),
            jobs[0].copy_progress
        ),
        (job.as_str(), "replicated", 100)
    );
    assert!(jobs_cli::jobs_table(&jobs).contains(&job));

    let e = jobs_cli::run(args(
        &clouds,
        JobsCommand::Cancel {
            job_id: job.clone(),
        },
    ))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("409"), "{e}");

    // A job canceled mid-copy: `watch` fails.
    let big = active_image(
        &tc,
        ONE,
        &w.tok_a,
        json!({}),
        rep::data(2 * 1024 * 1024, 22),
    )
    .await;
    let point = glimpse_core::replication::pause::pause_copy(&big, 512 * 1024);
    let job2 = rep::submit_ok(&tc, ONE, &w.tok_a, &big, &w.b).await;
    tokio::time::timeout(std::time::Duration::from_secs(60), point.reached())
        .await
        .unwrap();
    jobs_cli::run(args(
        &clouds,
        JobsCommand::Cancel {
            job_id: job2.clone(),
        },
    ))
    .await
    .unwrap();
    let watch = JobsCommand::Watch {
        job_id: job2.clone(),
        interval: 0.05,
    };
    let e = jobs_cli::run(args(&clouds, watch)).await.unwrap_err();
    assert!(e.to_string().contains("canceled"), "{e}");
    glimpse_core::replication::pause::clear(&big);
}

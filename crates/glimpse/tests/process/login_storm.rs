//! A login storm against the real binary: 128 concurrent password logins (unknown users, then a
//! real one) must not take the memory. Each argon2 check holds its working memory (7 MiB), so
//! the checks run in a fixed number of slots; the peak resident size of the process
//! (`VmHWM` in `/proc/<pid>/status`, reset before each storm) stays under 96 MiB. With the
//! slots full for longer than the queue allows, a login gets Keystone's 503 with
//! `Retry-After`, never a 500.

use crate::common;

use common::process::{GlimpseProcess, Restartable};
use serde_json::{Value, json};

const STORM: usize = 128;
const BOUND_KIB: u64 = 96 * 1024;

fn peak_kib(server: &GlimpseProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Resets the peak to the current resident size, so the next reading is the storm's alone.
fn reset_peak(server: &GlimpseProcess) {
    std::fs::write(format!("/proc/{}/clear_refs", server.child.id()), "5").unwrap();
}

fn password_auth(user: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}})
}

/// Sends all `bodies` at once; the status, `Retry-After` and body of each answer.
async fn storm(base: &str, bodies: Vec<Value>) -> Vec<(u16, Option<String>, String)> {
    let http = reqwest::Client::new();
    let url = format!("{base}/identity/v3/auth/tokens");
    let calls = bodies.into_iter().map(|body| {
        let request = http.post(&url).json(&body).send();
        async move {
            let r = request.await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry, r.text().await.unwrap())
        }
    });
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_stays_under_the_memory_bound() {
    // A queue long enough that every login of the storm is served, however slow the machine.
    let cloud = Restartable::new("[identity]\npassword_queue_seconds = 600\n");
    let server = cloud.start();

    reset_peak(&server);
    let unknown = (0..STORM)
        .map(|i| password_auth(&format!("nobody-{i}"), "guess"))
        .collect();
    let answers = storm(&server.base, unknown).await;
    let unknown_peak = peak_kib(&server);
    for (status, _, body) in &answers {
        assert_eq!(*status, 401, "{body}");
    }

    reset_peak(&server);
    let real = (0..STORM).map(|_| password_auth("admin", "pw")).collect();
    let answers = storm(&server.base, real).await;
    let real_peak = peak_kib(&server);
    for (status, _, body) in &answers {
        assert_eq!(*status, 201, "{body}");
    }

    println!(
        "peak resident size over {STORM} concurrent logins: unknown users {} MiB, \
         a real user {} MiB (bound {} MiB)",
        unknown_peak / 1024,
        real_peak / 1024,
        BOUND_KIB / 1024
    );
    assert!(unknown_peak < BOUND_KIB, "{unknown_peak} KiB");
    assert!(real_peak < BOUND_KIB, "{real_peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_beyond_the_queue_get_503_with_retry_after() {
    // One slot and no queue: a login that finds the slot busy is refused at once.
    let cloud = Restartable::new("[identity]\npassword_checks = 1\npassword_queue_seconds = 0\n");
    let server = cloud.start();
    let answers = storm(
        &server.base,
        (0..32).map(|_| password_auth("admin", "pw")).collect(),
    )
    .await;
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        answers.iter().all(|(s, _, _)| *s == 201 || *s == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(s, _, _)| *s == 201), "{answers:?}");
    assert!(
        !refused.is_empty(),
        "no login found the slot busy: {answers:?}"
    );
    for (_, retry, body) in refused {
        assert_eq!(retry.as_deref(), Some("1"));
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], 503, "{body}");
        assert_eq!(v["error"]["title"], "Service Unavailable", "{body}");
    }
    // The refused logins did not count as failures: the account is not locked.
    let after = storm(&server.base, vec![password_auth("admin", "pw")]).await;
    assert_eq!(after[0].0, 201, "{after:?}");
}

//! Regions share nothing but HTTP: identity + region-one in one `glimpse` process, region-two
//! alone in another (its own data dir, validating tokens against the first process). A token
//! from the first works in the second, revocation reaches it, and an image replicates from
//! region-one to region-two across the two processes, verified by sha512.

use crate::common;

use common::glance::{download, sha512_hex, show};
use common::process::replicator::Replicator;
use common::process::{self, GlimpseProcess, free_port, raw_image, temp_dir};
use serde_json::json;

/// Identity + region-one in process `a`, region-two alone in process `b`.
struct Pair {
    dir_a: std::path::PathBuf,
    dir_b: std::path::PathBuf,
    port_a: u16,
    port_b: u16,
    a: GlimpseProcess,
    b: GlimpseProcess,
    url_a: String,
    url_b: String,
}

impl Pair {
    /// `region_one` is extra TOML for region-one's section (`[regions.jobs]`, …).
    fn start(region_one: &str) -> Pair {
        let (dir_a, dir_b) = (temp_dir(), temp_dir());
        let (port_a, port_b) = (free_port(), free_port());
        let url_a = format!("http://127.0.0.1:{port_a}");
        let url_b = format!("http://127.0.0.1:{port_b}");
        let identity = format!("{url_a}/identity/v3");
        std::fs::write(
            dir_a.join("glimpse.toml"),
            format!(
                "[[regions]]\nname = \"region-one\"\n{region_one}\n[[regions]]\nname = \"region-two\"\nserve = false\nurl = \"{url_b}/region-two\"\n"
            ),
        )
        .unwrap();
        let a = Self::start_a(&dir_a, port_a);
        let service_pw = std::fs::read_to_string(dir_a.join("service-password")).unwrap();
        std::fs::write(
            dir_b.join("glimpse.toml"),
            format!(
                "[identity]\nenabled = false\nurl = \"{identity}\"\nvalidation_cache_seconds = 0\nservice_password = \"{}\"\n\n[[regions]]\nname = \"region-two\"\n",
                service_pw.trim()
            ),
        )
        .unwrap();
        let b = Self::start_b(&dir_b, port_b);
        Pair {
            dir_a,
            dir_b,
            port_a,
            port_b,
            a,
            b,
            url_a,
            url_b,
        }
    }

    fn start_a(dir_a: &std::path::Path, port_a: u16) -> GlimpseProcess {
        GlimpseProcess::start_on(
            dir_a,
            Some(&dir_a.join("glimpse.toml")),
            &format!("127.0.0.1:{port_a}"),
            &[("GLIMPSE_ADMIN_PASSWORD", "admin-pw")],
        )
    }

    fn start_b(dir_b: &std::path::Path, port_b: u16) -> GlimpseProcess {
        GlimpseProcess::start_on(
            dir_b,
            Some(&dir_b.join("glimpse.toml")),
            &format!("127.0.0.1:{port_b}"),
            &[],
        )
    }

    async fn admin(&self, http: &reqwest::Client) -> String {
        process::identity::token(
            http,
            &self.url_a,
            "admin",
            "admin-pw",
            process::identity::project_named("admin"),
        )
        .await
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.a.kill9();
        self.b.kill9();
        let _ = std::fs::remove_dir_all(&self.dir_a);
        let _ = std::fs::remove_dir_all(&self.dir_b);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_only_http() {
    let pair = Pair::start("");
    let (url_a, url_b) = (pair.url_a.clone(), pair.url_b.clone());
    assert!(
        !pair.dir_b.join("identity.db").exists(),
        "region-two keeps no identity"
    );

    let http = reqwest::Client::new();
    let admin = pair.admin(&http).await;
    let image_one = format!("{url_a}/region-one/image");
    let image_two = format!("{url_b}/region-two/image");

    // The catalog of the first process names the second for region-two.
    let r = process::identity::validate(&http, &url_a, &admin).await;
    let catalog = r["token"]["catalog"].to_string();
    assert!(
        catalog.contains(&format!("{url_b}/region-two/image")),
        "{catalog}"
    );

    // A project homed in region-two, the admin a member of it (the replication destination).
    let far =
        process::identity::member_project(&http, &url_a, &admin, "far", "region-two", "admin")
            .await;

    // The second process accepts tokens the first issued.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let id = raw_image(&http, &image_one, &admin, "split", &data).await;
    assert_eq!(
        list_status(&http, &image_two, &admin).await,
        200,
        "region-two validates the token with remote identity"
    );

    // Replicate region-one → region-two, across processes.
    let one = Replicator::new(&http, &image_one, &admin);
    let job = one.submit(&id, &far).await;
    let (last, _) = one.wait_end(&job).await;
    assert_eq!(last["status"], "replicated", "{last}");
    assert_eq!(last["destination_region_id"], "region-two");
    let copy = last["destination_image_id"].as_str().unwrap().to_string();
    let far_token =
        process::identity::rescope(&http, &url_a, &admin, json!({"project": {"id": far}})).await;
    let img = show(&http, &image_two, &far_token, &copy).await;
    assert_eq!(img["owner"], far.as_str());
    assert_eq!(img["os_hash_value"], sha512_hex(&data));
    let (status, got) = download(&http, &image_two, &far_token, &copy).await;
    assert_eq!(status, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));

    // Revocation at identity reaches the other process (its cache is off in this test).
    let revoked = process::identity::revoke(&http, &url_a, &far_token, &far_token).await;
    assert_eq!(revoked, 204);
    assert_eq!(list_status(&http, &image_two, &far_token).await, 401);

    // Identity down: the region cannot validate tokens and says so (503), never 500 or 200.
    let mut pair = pair;
    pair.a.kill9();
    let r = http
        .get(format!("{image_two}/v2/images"))
        .header("x-auth-token", &admin)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
}

/// The status of `GET <image>/v2/images` with `token`.
async fn list_status(http: &reqwest::Client, image: &str, token: &str) -> u16 {
    let r = common::http::get(http, format!("{image}/v2/images"), token).await;
    r.status().as_u16()
}

/// Files under `dir` (recursively) whose name starts with `prefix`.
fn files_named(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_named(&path, prefix));
        } else if entry.file_name().to_string_lossy().starts_with(prefix) {
            out.push(path);
        }
    }
    out
}

/// Which process a test kills mid-copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Victim {
    /// identity + region-one: the job's worker and the source.
    Source,
    /// region-two: the destination, its upload in progress.
    Destination,
}

/// The source region's process is killed (`kill -9`) in the middle of a copy while the
/// destination lives on: the destination keeps the bytes that arrived, and the job, taken
/// over after the restart, sends only the rest. One destination image, the source's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_by_killing_the_source_resumes_from_the_bytes_the_destination_holds() {
    kill_mid_copy(Victim::Source).await;
}

/// The destination region's process is killed in the middle of a copy and restarted: the
/// job's attempts fail while it is down (retried with backoff), then the copy resumes from
/// the bytes the destination had written before it died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_killed_mid_copy_comes_back_and_the_copy_resumes() {
    kill_mid_copy(Victim::Destination).await;
}

async fn kill_mid_copy(victim: Victim) {
    let mut pair = Pair::start(
        "[regions.jobs]\nlease_seconds = 2\n[regions.replication]\nmax_bytes_per_second = 12582912\n",
    );
    let http = reqwest::Client::new();
    let admin = pair.admin(&http).await;
    let (url_a, url_b) = (pair.url_a.clone(), pair.url_b.clone());
    let image_one = format!("{url_a}/region-one/image");
    let far =
        process::identity::member_project(&http, &url_a, &admin, "far", "region-two", "admin")
            .await;
    let one = Replicator::new(&http, &image_one, &admin);
    // Kill once 40 % went out.
    let (data, job, seen) = one.slow_copy_at("cut-copy", &far, 40).await;
    assert_eq!(seen["status"], "replicating", "{seen}");
    let admin = match victim {
        Victim::Source => {
            pair.a.kill9();
            pair.a = Pair::start_a(&pair.dir_a, pair.port_a);
            pair.admin(&http).await
        }
        Victim::Destination => {
            pair.b.kill9();
            pair.b = Pair::start_b(&pair.dir_b, pair.port_b);
            admin
        }
    };

    let one = Replicator::new(&http, &image_one, &admin);
    let (last, resumed) = one.wait_end(&job).await;
    assert_eq!(last["status"], "replicated", "{victim:?}: {last}");
    // The destination held at least a quarter (40 % had gone out; some was in flight).
    let from = resumed.expect("the job resumed");
    assert!(
        from >= data.len() as u64 / 4 && from < data.len() as u64,
        "resumed from {from}"
    );

    let far_token = process::identity::token(
        &http,
        &url_a,
        "admin",
        "admin-pw",
        json!({"project": {"id": far}}),
    )
    .await;
    let image_two = format!("{url_b}/region-two/image");
    let two = Replicator::new(&http, &image_two, &far_token);
    let copy = two.the_copy("cut-copy", &data).await;
    assert_eq!(copy["id"], last["destination_image_id"]);
    assert!(
        files_named(&pair.dir_b, "partial-").is_empty(),
        "the held bytes became the image's blob"
    );
}

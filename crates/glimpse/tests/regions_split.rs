//! Regions share nothing but HTTP: identity + region-one in one `glimpse` process, region-two
//! alone in another (its own data dir, validating tokens against the first process). A token
//! from the first works in the second, revocation reaches it, and an image replicates from
//! region-one to region-two across the two processes, verified by sha512.

mod common;

use common::glance::{create_bare, download, sha512_hex, show, upload};
use common::process::{self, GlimpseProcess, free_port, temp_dir};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_only_http() {
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let (port_a, port_b) = (free_port(), free_port());
    let url_a = format!("http://127.0.0.1:{port_a}");
    let url_b = format!("http://127.0.0.1:{port_b}");
    let identity = format!("{url_a}/identity/v3");
    std::fs::write(
        dir_a.join("glimpse.toml"),
        format!(
            "[[regions]]\nname = \"region-one\"\n\n[[regions]]\nname = \"region-two\"\nserve = false\nurl = \"{url_b}/region-two\"\n"
        ),
    )
    .unwrap();
    let a = GlimpseProcess::start_on(
        &dir_a,
        Some(&dir_a.join("glimpse.toml")),
        &format!("127.0.0.1:{port_a}"),
        &[("GLIMPSE_ADMIN_PASSWORD", "admin-pw")],
    );
    let service_pw = std::fs::read_to_string(dir_a.join("service-password")).unwrap();
    std::fs::write(
        dir_b.join("glimpse.toml"),
        format!(
            "[identity]\nenabled = false\nurl = \"{identity}\"\nvalidation_cache_seconds = 0\nservice_password = \"{}\"\n\n[[regions]]\nname = \"region-two\"\n",
            service_pw.trim()
        ),
    )
    .unwrap();
    let b = GlimpseProcess::start_on(
        &dir_b,
        Some(&dir_b.join("glimpse.toml")),
        &format!("127.0.0.1:{port_b}"),
        &[],
    );
    assert!(
        !dir_b.join("identity.db").exists(),
        "region-two keeps no identity"
    );

    let http = reqwest::Client::new();
    let admin = process::identity::token(
        &http,
        &url_a,
        "admin",
        "admin-pw",
        process::identity::project_named("admin"),
    )
    .await;
    let image_one = format!("{url_a}/region-one/image");
    let image_two = format!("{url_b}/region-two/image");

    // The catalog of the first process names the second for region-two.
    let r: Value = http
        .get(format!("{identity}/auth/tokens"))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let id = create_bare(&http, &image_one, &admin, "split", "raw").await;
    assert_eq!(
        upload(&http, &image_one, &admin, &id, data.clone()).await.0,
        204
    );
    let r = http
        .get(format!("{image_two}/v2/images"))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "region-two validates the token with remote identity"
    );

    // Replicate region-one → region-two, across processes.
    let r = http
        .post(format!("{image_one}/v2/extension/image_replicator/jobs"))
        .header("x-auth-token", &admin)
        .json(&json!({"image_id": id, "tenant_id_dst": far}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let job = r.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut last = Value::Null;
    for _ in 0..600 {
        last = http
            .get(format!(
                "{image_one}/v2/extension/image_replicator/jobs/{job}"
            ))
            .header("x-auth-token", &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["replicated", "error", "canceled"].contains(&last["status"].as_str().unwrap_or("")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], "replicated", "{last}");
    assert_eq!(last["destination_region_id"], "region-two");
    let copy = last["destination_image_id"].as_str().unwrap().to_string();
    let far_token = {
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": admin}},
            "scope": {"project": {"id": far}}}});
        let r = http
            .post(format!("{identity}/auth/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    };
    let img = show(&http, &image_two, &far_token, &copy).await;
    assert_eq!(img["owner"], far.as_str());
    assert_eq!(img["os_hash_value"], sha512_hex(&data));
    let (status, got) = download(&http, &image_two, &far_token, &copy).await;
    assert_eq!(status, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));

    // Revocation at identity reaches the other process (its cache is off in this test).
    let r = http
        .delete(format!("{identity}/auth/tokens"))
        .header("x-auth-token", &far_token)
        .header("x-subject-token", &far_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("{image_two}/v2/images"))
        .header("x-auth-token", &far_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Identity down: the region cannot validate tokens and says so (503), never 500 or 200.
    drop(a);
    let r = http
        .get(format!("{image_two}/v2/images"))
        .header("x-auth-token", &admin)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    drop(b);
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
}

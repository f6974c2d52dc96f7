//! The compute API end to end: versions and microversions, flavors, servers whose disks are
//! real qcow2 overlays, the power actions' state rules, the write-disk extension, Nova's
//! image proxy, and `createImage` (seed 004) down to the bytes of the snapshot.

use crate::common;

use common::TestCloud;
use common::compute::{message, post_server, put, start};
use common::nova::{Nova, pattern, qemu_img, reader_of};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

async fn member(tc: &TestCloud) -> (String, String) {
    tc.user_in_new_project("member", "region-one").await
}

#[tokio::test]
async fn versions_and_microversions() {
    let tc = TestCloud::start().await;
    let (_p, token) = member(&tc).await;
    let root = common::http::get_public(&tc.http, format!("{}/region-one/compute/", tc.base)).await;
    assert_eq!(root.status(), 200);
    let v: Value = root.json().await.unwrap();
    let v21 = common::http::find(&v["versions"], "id", "v2.1");
    assert_eq!(v21["min_version"], "2.1");
    assert_eq!(v21["version"], "2.47");

    let nova = Nova::new(&tc, "region-one", &token);
    let r = nova.get("/flavors").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["openstack-api-version"], "compute 2.1");
    assert_eq!(r.headers["x-openstack-nova-api-version"], "2.1");
    assert_eq!(r.body["flavors"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["flavors"][0]["id"], "1");
    assert_eq!(r.body["flavors"][0]["name"], "m1.tiny");

    let latest = Nova::new(&tc, "region-one", &token).at("latest");
    let r = latest.get("/flavors/detail").await;
    assert_eq!(r.headers["openstack-api-version"], "compute 2.47");
    assert_eq!(r.body["flavors"][0]["disk"], 1);
    let r = Nova::new(&tc, "region-one", &token)
        .at("2.99")
        .get("/flavors")
        .await;
    assert_eq!(r.status, 406, "{}", r.text);
    assert_eq!(r.body["computeFault"]["code"], 406);
    let r = Nova::new(&tc, "region-one", &token)
        .at("two")
        .get("/flavors")
        .await;
    assert_eq!(r.status, 400);

    let r = nova.get("/flavors/42").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        "Flavor 42 could not be found."
    );
    let anon = Nova::new(&tc, "region-one", "not-a-token");
    let r = anon.get("/servers").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn server_lifecycle_power_rules_and_views() {
    let Some((tc, project, token, image, nova)) = start(pattern(MIB)).await else {
        return;
    };
    let r = post_server(&nova, "s1", &image, "1").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let keys: Vec<&String> = r.body["server"].as_object().unwrap().keys().collect();
    for k in &keys {
        assert!(
            [
                "id",
                "links",
                "OS-DCF:diskConfig",
                "security_groups",
                "adminPass"
            ]
            .contains(&k.as_str()),
            "{k}"
        );
    }
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let server = format!("/servers/{id}");
    let s = nova.wait_server(&id, "ACTIVE").await;
    assert_eq!(s["tenant_id"], project.as_str());
    assert_eq!(s["OS-EXT-STS:vm_state"], "active");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(s["image"]["id"], image.as_str());
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(s["progress"], 100);
    assert!(!s["hostId"].as_str().unwrap().is_empty());

    // The disk is a real qcow2 overlay over the cached image, sized to the flavor (1 GiB).
    let disk = tc
        .data_dir
        .join(format!("region-one/disks/servers/{id}.qcow2"));
    let (code, info) = qemu_img(&[
        "info",
        "--output=json",
        "-U",
        "-f",
        "qcow2",
        disk.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["virtual-size"], 1u64 << 30);
    assert!(
        info["backing-filename"]
            .as_str()
            .unwrap()
            .contains("/disks/images/")
    );

    // Power actions and Nova's state rules.
    let r = nova.action(&id, json!({"os-start": null})).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body["conflictingRequest"]["message"],
        format!("Cannot 'start' instance {id} while it is in vm_state active")
    );
    for (action, status, vm, power) in [
        ("os-stop", "SHUTOFF", "stopped", 4),
        ("os-start", "ACTIVE", "active", 1),
        ("pause", "PAUSED", "paused", 3),
        ("unpause", "ACTIVE", "active", 1),
        ("suspend", "SUSPENDED", "suspended", 7),
        ("resume", "ACTIVE", "active", 1),
    ] {
        let r = nova.action(&id, json!({ action: null })).await;
        assert_eq!(r.status, 202, "{action}: {}", r.text);
        let s = nova.wait_server(&id, status).await;
        assert_eq!(s["OS-EXT-STS:vm_state"], vm);
        assert_eq!(s["OS-EXT-STS:power_state"], power);
    }
    let r = nova.action(&id, json!({"unpause": null})).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        nova.action(&id, json!({"reboot-ish": {}})).await.status,
        400
    );

    // Lists, the legacy /v2/<project> base, and another project's view.
    let r = nova.get("/servers").await;
    assert_eq!(r.body["servers"][0]["id"], id.as_str());
    assert_eq!(r.body["servers"][0].as_object().unwrap().len(), 3);
    let r = nova.get("/servers/detail").await;
    assert_eq!(r.body["servers"][0]["status"], "ACTIVE");
    let v2 = Nova::v2(&tc, "region-one", &project, &token);
    assert_eq!(v2.get(&server).await.status, 200);
    let (other, other_token) = member(&tc).await;
    let wrong = Nova::v2(&tc, "region-one", &other, &token);
    let r = wrong.get(&server).await;
    assert_eq!(r.status, 400);
    assert!(message(&r.body, "badRequest").starts_with("Malformed request URL"));
    let stranger = Nova::new(&tc, "region-one", &other_token);
    assert_eq!(stranger.get(&server).await.status, 404);
    assert_eq!(stranger.delete(&server).await.status, 404);
    assert_eq!(
        stranger.action(&id, json!({"os-stop": null})).await.status,
        404
    );

    // PUT: name and access addresses; Nova's basic view back; bad addresses are 400.
    let r = put(&nova, &server, json!({"server": {"name": "renamed", "accessIPv4": "1.1.1.1", "accessIPv6": "::babe:202:202"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["server"]["name"], "renamed");
    assert_eq!(r.body["server"]["accessIPv4"], "1.1.1.1");
    assert!(r.body["server"].get("OS-EXT-STS:vm_state").is_none());
    let s = nova.wait_server(&id, "ACTIVE").await;
    assert_eq!(s["accessIPv6"], "::babe:202:202");
    let r = put(&nova, &server, json!({"server": {"accessIPv4": "::1"}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = put(&stranger, &server, json!({"server": {"name": "mine"}})).await;
    assert_eq!(r.status, 404);

    // Microversioned views.
    let r = Nova::new(&tc, "region-one", &token)
        .at("2.47")
        .get(&server)
        .await;
    assert_eq!(r.body["server"]["flavor"]["original_name"], "m1.tiny");
    assert_eq!(r.body["server"]["locked"], false);

    // Delete removes the server and its disk.
    assert_eq!(nova.delete(&server).await.status, 204);
    assert_eq!(nova.get(&server).await.status, 404);
    assert!(!disk.exists());
}

#[tokio::test]
async fn create_refusals() {
    let tc = TestCloud::start().await;
    let (_p, token) = member(&tc).await;
    let nova = Nova::new(&tc, "region-one", &token);
    let r = post_server(&nova, "s", "00000000-0000-0000-0000-000000000000", "1").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        "Image 00000000-0000-0000-0000-000000000000 could not be found."
    );
    let queued =
        common::glance::create_bare(&tc.http, &tc.image("region-one"), &token, "q", "raw").await;
    let r = post_server(&nova, "s", &queued, "1").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["badRequest"]["message"],
        format!("Image {queued} is not active.")
    );
    let r = post_server(&nova, "s", &queued, "99").await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Flavor 99 could not be found."
    );
    let r = nova
        .post(
            "/servers",
            json!({"server": {"name": "s", "imageRef": queued, "flavorRef": "1", "bogus": 1}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = nova
        .post(
            "/servers",
            json!({"server": {"imageRef": queued, "flavorRef": "1"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    // From 2.37 `networks` is required; "auto", "none" and [] are accepted (no Neutron).
    let at37 = Nova::new(&tc, "region-one", &token).at("2.37");
    let r = post_server(&at37, "s", &queued, "1").await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("networks"));
    let r = at37
        .post("/servers", json!({"server": {"name": "s", "imageRef": queued, "flavorRef": "1", "networks": [{"uuid": "n1"}]}}))
        .await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Network n1 could not be found."
    );
    // A body over max_json_body: Nova's 413.
    let r = nova
        .post(
            "/servers",
            json!({"server": {"name": "s", "imageRef": queued, "flavorRef": "1",
                "metadata": {"k": "v".repeat(200_000)}}}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["overLimit"]["code"], 413);
    // A reader may look but not create.
    let (project, _) = member(&tc).await;
    let reader = Nova::new(&tc, "region-one", &reader_of(&tc, &project).await);
    assert_eq!(reader.get("/servers").await.body["servers"], json!([]));
    let r = post_server(&reader, "s", &queued, "1").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:servers:create to be performed."
    );
}

/// Nova's image proxy: list with Nova's filters and paging, and the metadata sub-resource.
#[tokio::test]
async fn image_proxy_list_and_metadata() {
    let tc = TestCloud::start().await;
    let (_p, token) = member(&tc).await;
    let url = tc.image("region-one");
    let a = common::glance::create_image(
        &tc.http,
        &url,
        &token,
        json!({"name": "alpha", "disk_format": "raw", "container_format": "bare", "image_type": "snapshot", "instance_uuid": "srv-1"}),
    )
    .await;
    let b = common::glance::create_bare(&tc.http, &url, &token, "beta", "raw").await;
    let meta = format!("/images/{a}/metadata");
    let only = format!("{meta}/only");
    let (st, _) = common::glance::upload(&tc.http, &url, &token, &b, pattern(4096)).await;
    assert_eq!(st, 204);
    let nova = Nova::new(&tc, "region-one", &token);
    let ids = |r: &common::nova::Reply| common::http::owned_strings(&r.body["images"], "id");
    let r = nova.get("/images").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r).len(), 2);
    assert_eq!(r.body["images"][0].as_object().unwrap().len(), 3);
    assert_eq!(ids(&nova.get("/images?name=alpha").await), [a.as_str()]);
    assert_eq!(
        ids(&nova.get("/images/detail?status=ACTIVE").await),
        [b.as_str()]
    );
    assert_eq!(ids(&nova.get("/images?type=snapshot").await), [a.as_str()]);
    assert_eq!(
        ids(&nova.get("/images?server=http://x/servers/srv-1").await),
        [a.as_str()]
    );
    let r = nova.get("/images/detail?limit=1").await;
    assert_eq!(ids(&r).len(), 1);
    assert!(
        r.body["images_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=")
    );
    assert_eq!(r.body["images"][0]["status"], "ACTIVE");

    // Metadata.
    let r = nova.get(&meta).await;
    assert_eq!(r.body["metadata"]["image_type"], "snapshot");
    let r = nova
        .post(&meta, json!({"metadata": {"os_version": "1"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["metadata"]["os_version"], "1");
    assert_eq!(r.body["metadata"]["image_type"], "snapshot");
    let r = put(&nova, &meta, json!({"metadata": {"only": "this"}})).await;
    assert_eq!(r.body["metadata"], json!({"only": "this"}));
    let r = put(&nova, &only, json!({"meta": {"only": "that"}})).await;
    assert_eq!(r.body, json!({"meta": {"only": "that"}}));
    let r = put(&nova, &only, json!({"meta": {"other": "x"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(nova.get(&only).await.body["meta"]["only"], "that");
    assert_eq!(nova.delete(&only).await.status, 204);
    assert_eq!(nova.get(&only).await.status, 404);
    assert_eq!(nova.delete(&only).await.status, 404);
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = nova.post(&meta, json!({"metadata": many})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Another project sees none of it.
    let (_q, other) = member(&tc).await;
    let stranger = Nova::new(&tc, "region-one", &other);
    assert_eq!(stranger.get(&meta).await.status, 404);
    assert!(ids(&stranger.get("/images").await).is_empty());
}

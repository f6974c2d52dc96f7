//! The real `openstack` CLI against the image API: create from a file (qcow2 made by
//! qemu-img), list, show, save (bytes identical), set --property, add project (sharing),
//! delete. Skipped without the CLI, except under `CI=true`.

use crate::common;

use common::osc::DEMO;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_image_commands_work() {
    let Some((_tc, osc, dir)) = common::cli_and_scratch().await else {
        return;
    };
    let file = dir.0.join("disk.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg("64M")
        .status()
        .expect("qemu-img");
    assert!(made.success());
    let created = osc.create_image(&file, "qcow2", "cli-image").await;
    let id = created["id"].as_str().expect("id").to_string();
    let shown = osc.json_as(DEMO, &["image", "show", "cli-image"]).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["disk_format"], "qcow2");
    assert_eq!(
        shown["virtual_size"],
        64 << 20,
        "virtual size from the qcow2 header"
    );

    let listed = osc.json_as(DEMO, &["image", "list"]).await;
    assert!(common::http::any(&listed, "ID", &id), "{listed}");

    let saved = dir.0.join("saved.qcow2");
    osc.run_as(
        DEMO,
        &["image", "save", "--file", saved.to_str().unwrap(), &id],
    )
    .await;
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&file).unwrap()
    );

    osc.run_as(
        DEMO,
        &["image", "set", "--property", "os_distro=debian", &id],
    )
    .await;
    let shown = osc.json_as(DEMO, &["image", "show", &id]).await;
    let props = shown["properties"].to_string();
    assert!(props.contains("debian"), "{shown}");

    // Share with demo-two's project: `image add project` makes a membership.
    let project = osc
        .json_as("glimpse-admin", &["project", "show", "demo-two"])
        .await;
    let pid = project["id"].as_str().unwrap().to_string();
    osc.run_as(DEMO, &["image", "set", "--shared", &id]).await;
    let member = osc
        .json_as(DEMO, &["image", "add", "project", &id, &pid])
        .await;
    assert_eq!(member["status"], "pending", "{member}");

    osc.run_as(DEMO, &["image", "delete", &id]).await;
    let listed = osc.json_as(DEMO, &["image", "list"]).await;
    assert!(
        !common::http::any(&listed, "ID", &id),
        "deleted image still listed: {listed}"
    );
}

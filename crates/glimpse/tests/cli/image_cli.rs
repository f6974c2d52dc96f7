//! The real `openstack` CLI against the image API: create from a file (qcow2 made by
//! qemu-img), list, show, save (bytes identical), set --property, add project (sharing),
//! delete. Skipped without the CLI, except under `CI=true`.

use crate::common;

use common::TestCloud;
use common::osc::{Osc, openstack_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_image_commands_work() {
    let Some(cli) = openstack_cli() else {
        return;
    };
    let tc = TestCloud::start().await;
    let osc = Osc::new(cli, &tc);
    let dir = common::TempDir::new();
    let file = dir.0.join("disk.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg("64M")
        .status()
        .expect("qemu-img");
    assert!(made.success());
    let file_s = file.to_str().unwrap();
    let demo = |rest: &[&str]| -> Vec<String> {
        ["--os-cloud", "glimpse-demo-one"]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let osc = &osc;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            osc.json(&refs).await
        }
    };

    let created = run(demo(&[
        "image",
        "create",
        "--file",
        file_s,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "cli-image",
    ]))
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    let shown = run(demo(&["image", "show", "cli-image"])).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["disk_format"], "qcow2");
    assert_eq!(
        shown["virtual_size"],
        64 << 20,
        "virtual size from the qcow2 header"
    );

    let listed = run(demo(&["image", "list"])).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["ID"] == id.as_str()),
        "{listed}"
    );

    let saved = dir.0.join("saved.qcow2");
    osc.run(
        &demo(&["image", "save", "--file", saved.to_str().unwrap(), &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&file).unwrap()
    );

    osc.run(
        &demo(&["image", "set", "--property", "os_distro=debian", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let shown = run(demo(&["image", "show", &id])).await;
    let props = shown["properties"].to_string();
    assert!(props.contains("debian"), "{shown}");

    // Share with demo-two's project: `image add project` makes a membership.
    let project = run(vec![
        "--os-cloud".into(),
        "glimpse-admin".into(),
        "project".into(),
        "show".into(),
        "demo-two".into(),
    ])
    .await;
    let pid = project["id"].as_str().unwrap().to_string();
    osc.run(
        &demo(&["image", "set", "--shared", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let member = run(demo(&["image", "add", "project", &id, &pid])).await;
    assert_eq!(member["status"], "pending", "{member}");

    osc.run(
        &demo(&["image", "delete", &id])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let listed = run(demo(&["image", "list"])).await;
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["ID"] == id.as_str()),
        "deleted image still listed: {listed}"
    );
}

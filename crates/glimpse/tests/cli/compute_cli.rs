//! The real `openstack` CLI against the compute API: `server create --wait` from an image,
//! bytes written into the root disk through Glimpse's extension, `server image create
//! --wait`, `image save`; the saved snapshot is a clean qcow2 (`qemu-img check`, `info`)
//! and `qemu-img compare` against the source shows exactly the written bytes as different.
//! Skipped without the CLI, except under `CI=true`.

use crate::common;

use common::nova::{Nova, assert_snapshot, pattern, qemu_present};
use common::osc::DEMO;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_server_create_snapshot_and_save() {
    if !qemu_present() {
        return;
    }
    let Some((tc, osc, dir)) = common::cli_and_scratch().await else {
        return;
    };
    let source = pattern(3 << 20);
    let src = dir.0.join("source.raw");
    std::fs::write(&src, &source).unwrap();
    osc.create_image(&src, "raw", "cli-base").await;
    let flavors = osc.json_as(DEMO, &["flavor", "list"]).await;
    assert_eq!(flavors.as_array().unwrap().len(), 5, "{flavors}");
    // A key pair imported from a file, listed, and named by the server.
    let key = dir.0.join("id.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF9G/fjoxDBtpVnejT7vRyOXdPUZv8YEThI74xuqaCLL cli@test\n",
    )
    .unwrap();
    let key_s = key.to_str().unwrap().to_string();
    let kp = osc
        .json_as(DEMO, &["keypair", "create", "--public-key", &key_s, "kp"])
        .await;
    assert_eq!(
        kp["fingerprint"], "f5:b5:de:3d:8a:8d:50:b0:ee:e2:f3:92:98:db:42:90",
        "{kp}"
    );
    let kps = osc.json_as(DEMO, &["keypair", "list"]).await;
    assert_eq!(kps[0]["Name"], "kp", "{kps}");
    let server = osc
        .json_as(
            DEMO,
            &[
                "server",
                "create",
                "--image",
                "cli-base",
                "--flavor",
                "m1.tiny",
                "--key-name",
                "kp",
                "--wait",
                "s1",
            ],
        )
        .await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["key_name"], "kp", "{server}");
    let id = server["id"].as_str().unwrap().to_string();
    let listed = osc.json_as(DEMO, &["server", "list"]).await;
    assert_eq!(listed[0]["Name"], "s1", "{listed}");

    // Write through the extension with the demo user's token.
    let token = osc.json_as(DEMO, &["token", "issue"]).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let nova = Nova::new(&tc, "region-one", &token);
    let written: &[u8] = b"written by the CLI test";
    let offset = (2 << 20) + 5;
    let r = nova.write_disk(&id, offset, written).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let snap = osc
        .json_as(
            DEMO,
            &[
                "server", "image", "create", "--name", "snap", "--wait", "s1",
            ],
        )
        .await;
    assert_eq!(snap["name"], "snap", "{snap}");
    let shown = osc.json_as(DEMO, &["image", "show", "snap"]).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["disk_format"], "qcow2");
    let file = dir.0.join("snap.qcow2");
    let file_s = file.to_str().unwrap().to_string();
    osc.run_as(DEMO, &["image", "save", "--file", &file_s, "snap"])
        .await;

    assert_snapshot(&file, &source, &[(offset, written)]);

    osc.run_as(DEMO, &["server", "delete", "--wait", "s1"])
        .await;
    let left = osc.json_as(DEMO, &["server", "list"]).await;
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
}

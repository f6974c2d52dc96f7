//! The real `openstack` CLI against the compute API: `server create --wait` from an image,
//! bytes written into the root disk through Glimpse's extension, `server image create
//! --wait`, `image save`; the saved snapshot is a clean qcow2 (`qemu-img check`, `info`)
//! and `qemu-img compare` against the source shows exactly the written bytes as different.
//! Skipped without the CLI, except under `CI=true`.

mod common;

use std::process::Command;

use common::TestCloud;
use common::nova::{Nova, pattern, qemu_present};
use common::osc::{Osc, openstack_cli};

fn qemu_img(args: &[&str]) -> (i32, String) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_server_create_snapshot_and_save() {
    let Some(cli) = openstack_cli() else {
        return;
    };
    if !qemu_present() {
        return;
    }
    let tc = TestCloud::start().await;
    let osc = Osc::new(cli, &tc);
    let dir = common::TempDir::new();
    let source = pattern(3 << 20);
    let src = dir.0.join("source.raw");
    std::fs::write(&src, &source).unwrap();
    let src_s = src.to_str().unwrap().to_string();
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

    run(demo(&[
        "image",
        "create",
        "--file",
        &src_s,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "cli-base",
    ]))
    .await;
    let flavors = run(demo(&["flavor", "list"])).await;
    assert_eq!(flavors.as_array().unwrap().len(), 5, "{flavors}");
    let server = run(demo(&[
        "server", "create", "--image", "cli-base", "--flavor", "m1.tiny", "--wait", "s1",
    ]))
    .await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let id = server["id"].as_str().unwrap().to_string();
    let listed = run(demo(&["server", "list"])).await;
    assert_eq!(listed[0]["Name"], "s1", "{listed}");

    // Write through the extension with the demo user's token.
    let token = run(demo(&["token", "issue"])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let nova = Nova::new(&tc, "region-one", &token);
    let written: &[u8] = b"written by the CLI test";
    let offset = (2 << 20) + 5;
    let r = nova.write_disk(&id, offset, written).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let snap = run(demo(&[
        "server", "image", "create", "--name", "snap", "--wait", "s1",
    ]))
    .await;
    assert_eq!(snap["name"], "snap", "{snap}");
    let shown = run(demo(&["image", "show", "snap"])).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["disk_format"], "qcow2");
    let file = dir.0.join("snap.qcow2");
    let file_s = file.to_str().unwrap().to_string();
    osc.run(
        &demo(&["image", "save", "--file", &file_s, "snap"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;

    let (code, text) = qemu_img(&["check", "-f", "qcow2", &file_s]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = qemu_img(&["info", "-f", "qcow2", &file_s]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("file format: qcow2"), "{text}");
    assert!(!text.contains("backing file"), "{text}");
    let (code, text) = qemu_img(&["compare", "-f", "raw", "-F", "qcow2", &src_s, &file_s]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("Content mismatch at offset {}!", 2 << 20)),
        "{text}"
    );
    let mut expected = source.clone();
    let o = offset as usize;
    expected[o..o + written.len()].copy_from_slice(written);
    let exp = dir.0.join("expected.raw");
    std::fs::write(&exp, &expected).unwrap();
    let (code, text) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        exp.to_str().unwrap(),
        &file_s,
    ]);
    assert_eq!(code, 0, "{text}");

    osc.run(&[
        "--os-cloud",
        "glimpse-demo-one",
        "server",
        "delete",
        "--wait",
        "s1",
    ])
    .await;
    let left = run(demo(&["server", "list"])).await;
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
}

//! The real `openstack` CLI against volumes: `volume create`, `server add volume`,
//! `image create --volume … --force` in four formats, `image save`; each saved image is the
//! format asked for (qemu-img info) and equal to the volume (qemu-img compare). Then
//! `server remove volume` and `volume delete`. Skipped without the CLI, except under `CI=true`.

use crate::common;

use std::time::Duration;

use common::TestCloud;
use common::nova::qemu_img;
use common::osc::{Osc, openstack_cli};
use serde_json::Value;

async fn run(osc: &Osc, args: &[&str]) -> Value {
    let mut all = vec!["--os-cloud", "glimpse-demo-one"];
    all.extend_from_slice(args);
    osc.json(&all).await
}

async fn plain(osc: &Osc, args: &[&str]) -> String {
    let mut all = vec!["--os-cloud", "glimpse-demo-one"];
    all.extend_from_slice(args);
    osc.run(&all).await
}

/// Polls `openstack <what> show <name>` until `status` is `want` (bounded).
async fn wait(osc: &Osc, what: &str, name: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let v = run(osc, &[what, "show", name]).await;
        if v["status"] == want {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} {name} never {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_volume_to_image_commands_work() {
    let Some(cli) = openstack_cli() else {
        return;
    };
    let tc = TestCloud::start().await;
    let osc = Osc::new(cli, &tc);
    let dir = common::TempDir::new();
    let base = dir.0.join("base.raw");
    std::fs::write(&base, vec![0x5au8; 1 << 20]).unwrap();
    run(
        &osc,
        &[
            "image",
            "create",
            "--file",
            base.to_str().unwrap(),
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "base",
        ],
    )
    .await;
    // The server is made over HTTP (osc 10's `server create` sends a block device mapping
    // for the image, which this cloud's compute refuses); the rest goes through the CLI.
    let token = run(&osc, &["token", "issue"]).await;
    let image = run(&osc, &["image", "show", "base"]).await;
    let r = tc
        .http
        .post(format!("{}/region-one/compute/v2.1/servers", tc.base))
        .header("x-auth-token", token["id"].as_str().unwrap())
        .json(&serde_json::json!({"server": {"name": "vm", "imageRef": image["id"], "flavorRef": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    wait(&osc, "server", "vm", "ACTIVE").await;

    let vol = run(&osc, &["volume", "create", "--size", "1", "v1"]).await;
    let vol_id = vol["id"].as_str().expect("volume id").to_string();
    wait(&osc, "volume", "v1", "available").await;
    // Recognisable bytes, written into the volume's file (the documented layout).
    let file = common::cinder::volume_file(&tc, "region-one", &vol_id);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        for off in [0u64, 65536, 512 << 20] {
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(b"written by volume_cli").unwrap();
        }
        f.sync_all().unwrap();
    }

    plain(&osc, &["server", "add", "volume", "vm", "v1"]).await;
    let attached = wait(&osc, "volume", "v1", "in-use").await;
    assert!(attached.to_string().contains("/dev/vdb"), "{attached}");

    for format in ["vmdk", "qcow2", "vdi", "raw"] {
        let name = format!("img-{format}");
        run(
            &osc,
            &[
                "image",
                "create",
                "--volume",
                "v1",
                "--disk-format",
                format,
                "--force",
                &name,
            ],
        )
        .await;
        let shown = wait(&osc, "image", &name, "active").await;
        assert_eq!(shown["disk_format"], format);
        wait(&osc, "volume", "v1", "in-use").await;
        let out = dir.0.join(format!("{name}.img"));
        plain(
            &osc,
            &["image", "save", "--file", out.to_str().unwrap(), &name],
        )
        .await;
        let (code, info) =
            qemu_img(&["info", "--output=json", "-f", format, out.to_str().unwrap()]);
        assert_eq!(code, 0, "{info}");
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["format"], format);
        assert_eq!(info["virtual-size"], 1u64 << 30);
        let (same, why) = qemu_img(&[
            "compare",
            "-f",
            "raw",
            "-F",
            format,
            file.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert_eq!(same, 0, "{format}: {why}");
    }

    plain(&osc, &["server", "remove", "volume", "vm", "v1"]).await;
    wait(&osc, "volume", "v1", "available").await;
    plain(&osc, &["volume", "delete", "v1"]).await;
    assert!(!file.exists());
}

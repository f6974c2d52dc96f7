//! The real `openstack` CLI against volumes: `volume create`, `server add volume`,
//! `image create --volume … --force` in four formats, `image save`; each saved image is the
//! format asked for (qemu-img info) and equal to the volume (qemu-img compare). Then
//! `server remove volume` and `volume delete`. Skipped without the CLI, except under `CI=true`.

use crate::common;

use std::time::Duration;

use common::nova::qemu_img;
use common::osc::{DEMO, Osc};
use serde_json::Value;

/// Polls `openstack <what> show <name>` until `status` is `want` (bounded).
async fn wait(osc: &Osc, what: &str, name: &str, want: &str) -> Value {
    let every = Duration::from_millis(200);
    let subject = format!("{what} {name}");
    common::cinder::wait_status(&subject, want, Duration::from_secs(120), every, || async {
        osc.json_as(DEMO, &[what, "show", name]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_volume_to_image_commands_work() {
    let Some((tc, osc, dir)) = common::cli_and_scratch().await else {
        return;
    };
    let base = dir.0.join("base.raw");
    std::fs::write(&base, vec![0x5au8; 1 << 20]).unwrap();
    osc.create_image(&base, "raw", "base").await;
    // The server is made over HTTP (osc 10's `server create` sends a block device mapping
    // for the image, which this cloud's compute refuses); the rest goes through the CLI.
    let token = osc.json_as(DEMO, &["token", "issue"]).await;
    let image = osc.json_as(DEMO, &["image", "show", "base"]).await;
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

    let vol = osc
        .json_as(DEMO, &["volume", "create", "--size", "1", "v1"])
        .await;
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

    osc.run_as(DEMO, &["server", "add", "volume", "vm", "v1"])
        .await;
    let attached = wait(&osc, "volume", "v1", "in-use").await;
    assert!(attached.to_string().contains("/dev/vdb"), "{attached}");

    for format in ["vmdk", "qcow2", "vdi", "raw"] {
        let name = format!("img-{format}");
        osc.json_as(
            DEMO,
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
        osc.run_as(
            DEMO,
            &["image", "save", "--file", out.to_str().unwrap(), &name],
        )
        .await;
        let (code, info) =
            qemu_img(&["info", "--output=json", "-f", format, out.to_str().unwrap()]);
        assert_eq!(code, 0, "{info}");
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["format"], format);
        assert_eq!(info["virtual-size"], 1u64 << 30);
        let (same, why) = common::cinder::compare_to_raw(&file, format, &out);
        assert_eq!(same, 0, "{format}: {why}");
    }

    osc.run_as(DEMO, &["server", "remove", "volume", "vm", "v1"])
        .await;
    wait(&osc, "volume", "v1", "available").await;
    osc.run_as(DEMO, &["volume", "delete", "v1"]).await;
    assert!(!file.exists());
}

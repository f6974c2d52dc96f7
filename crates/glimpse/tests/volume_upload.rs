//! `os-volume_upload_image` (seed 002): every row of the seed's response-code table, the exact
//! 202 body, and the image it makes (converted, inspected, equal to the volume).

mod common;

use common::TestCloud;
use common::cinder::{Cinder, volume_file, wait_image};
use serde_json::{Value, json};

const REGION: &str = "region-one";

async fn member(tc: &TestCloud) -> (Cinder, String) {
    let (pid, token) = tc.user_in_new_project("member", REGION).await;
    (Cinder::new(tc, REGION, &pid, &token), token)
}

fn upload(name: &str, format: &str) -> Value {
    json!({"os-volume_upload_image": {"container_format": "bare", "force": false,
        "image_name": name, "disk_format": format}})
}

fn assert_fault(status: u16, body: &Value, code: u16, name: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body[name]["code"], code, "{body}");
    assert!(body[name]["message"].is_string(), "{body}");
}

/// Writes recognisable bytes at a few offsets of a volume's file.
fn scribble(path: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for (i, off) in [0u64, 4096, 70 << 20, (1 << 30) - 512].iter().enumerate() {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(format!("glimpse volume block {i}").as_bytes())
            .unwrap();
    }
    f.sync_all().unwrap();
}

/// `yyyy-mm-ddThh:mm:ss.ssssss`.
fn is_cinder_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 26
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn upload_makes_an_equal_image_in_each_format() {
    let tc = TestCloud::start().await;
    let (c, token) = member(&tc).await;
    let id = c.create(1, "v1").await;
    let file = volume_file(&tc, REGION, &id);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 30);
    scribble(&file);
    let image_url = tc.image(REGION);
    for format in ["qcow2", "vmdk", "vdi", "raw", "vhd", "vhdx"] {
        let (s, body) = c
            .action(&id, upload(&format!("img-{format}"), format))
            .await;
        assert_eq!(s, 202, "{body}");
        let b = &body["os-volume_upload_image"];
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "container_format",
                "disk_format",
                "display_description",
                "id",
                "image_id",
                "image_name",
                "size",
                "status",
                "updated_at",
                "volume_type"
            ]
        );
        assert_eq!(b["status"], "uploading");
        assert_eq!(b["id"], id.as_str());
        assert_eq!(b["size"], 1);
        assert_eq!(b["disk_format"], format);
        assert_eq!(b["container_format"], "bare");
        assert_eq!(b["display_description"], Value::Null);
        assert_eq!(b["volume_type"], "__DEFAULT__");
        let at = b["updated_at"].as_str().unwrap();
        assert!(is_cinder_time(at), "{at}");
        let image_id = b["image_id"].as_str().unwrap().to_string();
        let img = wait_image(&tc.http, &image_url, &token, &image_id, "active").await;
        assert_eq!(img["name"], format!("img-{format}"));
        assert_eq!(img["disk_format"], format);
        assert_eq!(img["visibility"], "shared", "Glance's default below 3.1");
        // No volume_* or image properties for a volume not made from an image.
        for k in img.as_object().unwrap().keys() {
            assert!(!k.starts_with("volume_") && k != "image_id", "{k}");
        }
        c.wait(&id, "available").await;

        let (st, data) = common::glance::download(&tc.http, &image_url, &token, &image_id).await;
        assert_eq!(st, 200);
        let out = tc.data_dir.join(format!("{image_id}.{format}"));
        std::fs::write(&out, &data).unwrap();
        let qname = if format == "vhd" { "vpc" } else { format };
        let (ok, info) = qemu_img(&["info", "--output=json", "-f", qname, out.to_str().unwrap()]);
        assert!(ok, "{info}");
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["format"], qname);
        let (same, why) = qemu_img(&[
            "compare",
            "-f",
            "raw",
            "-F",
            qname,
            file.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert!(same, "{format}: {why}");
    }
}

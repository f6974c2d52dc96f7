//! qcow2 overlays against the real qemu-img and qemu-io: create over a raw base, write
//! bytes at an offset, flatten to a self-contained qcow2, and `qemu-img compare` sees exactly
//! the written sectors as different; a base with a backing file is refused.
//!
//! Skipped with a message without qemu-img/qemu-io/prlimit (failed when `CI=true`).

use std::path::{Path, PathBuf};
use std::process::Command;

use glimpse_formats::DiskFormat;
use glimpse_formats::overlay;
use glimpse_formats::qemu::{QemuError, QemuLimits};

fn tools_present() -> bool {
    crate::tools_present(
        &["qemu-img", "qemu-io", "prlimit"],
        "overlay tests need qemu-img, qemu-io (qemu-utils) and prlimit",
    )
}

/// A fresh scratch directory for a test that needs the tools; `None` (skip) without them.
fn scratch_with_tools(name: &str) -> Option<PathBuf> {
    if !tools_present() {
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("overlay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

fn raw_of(path: &Path, fmt: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "view-{}.raw",
        path.file_name().unwrap().to_string_lossy()
    ));
    let st = Command::new("qemu-img")
        .args(["convert", "-f", fmt, "-O", "raw"])
        .arg(path)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn overlay_write_flatten_compare() {
    let Some(dir) = scratch_with_tools("flow") else {
        return;
    };
    let base = dir.join("base.raw");
    let mut bytes = vec![0u8; 1 << 20];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&base, &bytes).unwrap();
    let limits = QemuLimits::default();
    let ov = dir.join("disk.qcow2");
    let size = overlay::create(&base, DiskFormat::Raw, &ov, Some(2 << 20), &limits)
        .await
        .unwrap();
    assert_eq!(size, 2 << 20);
    let data = dir.join("data.bin");
    std::fs::write(&data, b"glimpse was here").unwrap();
    overlay::write(&ov, &base, DiskFormat::Raw, 4096 + 3, &data, 16, &limits)
        .await
        .unwrap();
    // Out of range: refused, nothing written.
    let err = overlay::write(&ov, &base, DiskFormat::Raw, 2 << 20, &data, 16, &limits)
        .await
        .unwrap_err();
    assert!(matches!(err, QemuError::Failed { .. }), "{err}");

    let snap = dir.join("snap.qcow2");
    overlay::flatten(
        &ov,
        &base,
        DiskFormat::Raw,
        &snap,
        DiskFormat::Qcow2,
        &limits,
    )
    .await
    .unwrap();
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-f", "qcow2"])
        .arg(&snap)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none());
    let cmp = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&base)
        .arg(&snap)
        .output()
        .unwrap();
    assert_eq!(cmp.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("Content mismatch at offset 4096!"));
    let view = raw_of(&snap, "qcow2", &dir);
    assert_eq!(view.len(), 2 << 20);
    let diff: Vec<usize> = (0..view.len())
        .filter(|&i| view[i] != bytes.get(i).copied().unwrap_or(0))
        .collect();
    let expected: Vec<usize> = (4099..4099 + 16)
        .filter(|&i| b"glimpse was here"[i - 4099] != bytes[i])
        .collect();
    assert_eq!(diff, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn base_with_backing_file_is_refused() {
    let Some(dir) = scratch_with_tools("backing") else {
        return;
    };
    let inner = dir.join("inner.raw");
    std::fs::write(&inner, vec![0u8; 65536]).unwrap();
    let evil = dir.join("evil.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&inner)
        .arg(&evil)
        .status()
        .unwrap();
    assert!(st.success());
    let ov = dir.join("ov.qcow2");
    let err = overlay::create(&evil, DiskFormat::Qcow2, &ov, None, &QemuLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, QemuError::InputRejected(_)), "{err}");
    assert!(!ov.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server's overlay altered on the host is refused before qemu reads it, like an upload:
/// cut inside its data clusters (qemu would read zeros), or carrying a crypto header
/// extension without encryption (qemu would not open it). Nothing is written.
#[tokio::test]
async fn altered_overlay_is_refused_before_flattening() {
    let Some(dir) = scratch_with_tools("altered") else {
        return;
    };
    let base = dir.join("base.raw");
    std::fs::write(&base, vec![7u8; 1 << 20]).unwrap();
    let limits = QemuLimits::default();
    let ov = dir.join("disk.qcow2");
    overlay::create(&base, DiskFormat::Raw, &ov, None, &limits)
        .await
        .unwrap();
    let data = dir.join("data.bin");
    std::fs::write(&data, vec![0x5a; 200_000]).unwrap();
    overlay::write(&ov, &base, DiskFormat::Raw, 0, &data, 200_000, &limits)
        .await
        .unwrap();
    let whole = std::fs::read(&ov).unwrap();
    let mut crypto = whole.clone();
    // A crypto header extension (0x0537be77, 16 bytes) where the extension area starts.
    let ext_at = u32::from_be_bytes(whole[100..104].try_into().unwrap()) as usize;
    crypto[ext_at..ext_at + 8].copy_from_slice(&[0x05, 0x37, 0xbe, 0x77, 0, 0, 0, 16]);
    crypto[ext_at + 8..ext_at + 24].fill(0);
    // The end of the extension list right after it (it overwrote the backing-format one).
    crypto[ext_at + 24..ext_at + 32].fill(0);
    for (name, bytes, says) in [
        (
            "cut",
            whole[..whole.len() - 4096].to_vec(),
            "past the end of the image",
        ),
        ("crypto", crypto, "crypto header extension without LUKS"),
    ] {
        std::fs::write(&ov, &bytes).unwrap();
        let out = dir.join(format!("{name}.qcow2"));
        let err = overlay::flatten(
            &ov,
            &base,
            DiskFormat::Raw,
            &out,
            DiskFormat::Qcow2,
            &limits,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, QemuError::InputRejected(_)), "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(!out.exists(), "{name}: output left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! The confined qemu-img runner against the real qemu-img: a byte-identical
//! raw → qcow2 → vmdk → vdi → raw round trip, and refusals that must happen
//! before qemu-img runs (backing file, mismatch, encryption) or that must
//! clean up after it (timeout, resource limit).
//!
//! Needs qemu-img and prlimit: skipped with a message without them, or failed
//! when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use glimpse_formats::qemu::{QemuError, QemuLimits, convert, info};
use glimpse_formats::{DiskFormat, Rejection};

fn tools_present() -> bool {
    crate::tools_present(
        &["qemu-img", "prlimit"],
        "qemu runner tests need qemu-img (qemu-utils) and prlimit (util-linux)",
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The scratch directory of a test that needs the tools; `None` (skip) without them.
    fn with_tools(name: &str) -> Option<Self> {
        tools_present().then(|| Scratch::new(name))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// File `name` holding [`pattern`].
    fn pattern_file(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, pattern()).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A conversion that must fail: its error.
async fn convert_err(
    src: &Path,
    from: DiskFormat,
    out: &Path,
    to: DiskFormat,
    limits: &QemuLimits,
) -> QemuError {
    convert(src, from, out, to, limits).await.unwrap_err()
}

/// `qemu-img create -q -f qcow2 <opts> <img> <size>`.
fn create_qcow2(img: &Path, opts: &[&str], size: &str) {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[img.to_str().unwrap(), size]);
    qemu_img(&args);
}

/// 4 MiB: a byte pattern, a zero hole, and a marker near the end.
fn pattern() -> Vec<u8> {
    let mut data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    data[1 << 20..2 << 20].fill(0);
    data[(4 << 20) - 9..].copy_from_slice(b"glimpse!!");
    data
}

#[tokio::test]
async fn round_trip_is_byte_identical() {
    let Some(s) = Scratch::with_tools("roundtrip") else {
        return;
    };
    let data = pattern();
    std::fs::write(s.path("a.raw"), &data).unwrap();
    let limits = QemuLimits::default();
    let steps = [
        ("a.raw", DiskFormat::Raw, "b.qcow2", DiskFormat::Qcow2),
        ("b.qcow2", DiskFormat::Qcow2, "c.vmdk", DiskFormat::Vmdk),
        ("c.vmdk", DiskFormat::Vmdk, "d.vdi", DiskFormat::Vdi),
        ("d.vdi", DiskFormat::Vdi, "e.raw", DiskFormat::Raw),
    ];
    for (src, from, dst, to) in steps {
        convert(&s.path(src), from, &s.path(dst), to, &limits)
            .await
            .unwrap_or_else(|e| panic!("{src} -> {dst}: {e}"));
        let i = info(&s.path(dst), to, &limits).await.unwrap();
        assert_eq!(i.virtual_size, data.len() as u64, "{dst}");
        assert_eq!(i.problem(to), None, "{dst}");
    }
    assert!(
        std::fs::read(s.path("e.raw")).unwrap() == data,
        "round trip changed the bytes"
    );
}

#[tokio::test]
async fn backing_file_refused_before_qemu_runs() {
    let Some(s) = Scratch::with_tools("backing") else {
        return;
    };
    let img = s.path("qcow2-backing-passwd.qcow2");
    create_qcow2(&img, &["-u", "-F", "raw", "-b", "/etc/passwd"], "64M");
    let out = s.path("out.raw");
    let limits = QemuLimits::default();
    let err = convert_err(&img, DiskFormat::Qcow2, &out, DiskFormat::Raw, &limits).await;
    assert!(
        matches!(err, QemuError::InputRejected(Rejection::Unsafe { .. })),
        "{err}"
    );
    assert!(!out.exists(), "no output may be created");
    // Claimed raw it is a mismatch, also before qemu-img.
    let err = convert_err(&img, DiskFormat::Raw, &out, DiskFormat::Qcow2, &limits).await;
    assert!(
        matches!(err, QemuError::InputRejected(Rejection::Mismatch { .. })),
        "{err}"
    );
    assert!(!out.exists());
    let err = info(&img, DiskFormat::Qcow2, &limits).await.unwrap_err();
    assert!(matches!(err, QemuError::InputRejected(_)), "{err}");
}

#[tokio::test]
async fn encrypted_and_unsupported_refused() {
    let Some(s) = Scratch::with_tools("encrypted") else {
        return;
    };
    let img = s.path("luks.qcow2");
    let secret = "secret,id=s0,data=correct-horse";
    let luks = "encrypt.format=luks,encrypt.key-secret=s0";
    create_qcow2(&img, &["--object", secret, "-o", luks], "16M");
    let out = s.path("out.raw");
    let limits = QemuLimits::default();
    let err = convert_err(&img, DiskFormat::Qcow2, &out, DiskFormat::Raw, &limits).await;
    assert!(matches!(err, QemuError::Encrypted), "{err}");
    let err = convert_err(&img, DiskFormat::Qcow2, &out, DiskFormat::Iso, &limits).await;
    assert!(
        matches!(err, QemuError::UnsupportedFormat(DiskFormat::Iso)),
        "{err}"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn limits_kill_and_clean_up() {
    let Some(s) = Scratch::with_tools("limits") else {
        return;
    };
    let a = s.pattern_file("a.raw");
    let out = s.path("out.qcow2");
    let limits = QemuLimits::default();

    let tight = QemuLimits {
        wall: Duration::from_millis(1),
        ..QemuLimits::default()
    };
    let err = convert_err(&a, DiskFormat::Raw, &out, DiskFormat::Qcow2, &tight).await;
    assert!(
        matches!(err, QemuError::Timeout(_) | QemuError::Failed { .. }),
        "{err}"
    );
    assert!(!out.exists(), "output must be removed after a failure");

    let no_memory = QemuLimits {
        address_space_bytes: 16 << 20,
        ..QemuLimits::default()
    };
    let err = convert_err(&a, DiskFormat::Raw, &out, DiskFormat::Qcow2, &no_memory).await;
    assert!(matches!(err, QemuError::Failed { .. }), "{err}");
    assert!(!out.exists());

    // qemu-img succeeds but the output is not exactly the target format
    // (plain bytes are not a GPT disk): refused, and the output is removed.
    let err = convert_err(&a, DiskFormat::Raw, &out, DiskFormat::Gpt, &limits).await;
    assert!(
        matches!(err, QemuError::OutputRejected(Rejection::Mismatch { .. })),
        "{err}"
    );
    assert!(!out.exists(), "rejected output must be removed");

    // An existing output is never overwritten.
    std::fs::write(&out, b"keep").unwrap();
    let err = convert_err(&a, DiskFormat::Raw, &out, DiskFormat::Qcow2, &limits).await;
    assert!(matches!(err, QemuError::BadPath(..)), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

/// Images qemu-img itself writes, with data, must be accepted as what they are
/// (and refused as raw, except a fixed VHD: raw bytes plus a trailing footer).
#[tokio::test]
async fn qemu_written_images_are_accepted() {
    let Some(s) = Scratch::with_tools("written") else {
        return;
    };
    let src = s.pattern_file("src.raw");
    let src = src.to_str().unwrap();
    let cases: [(&str, &str, &[&str], DiskFormat); 8] = [
        ("a.qcow2", "qcow2", &[], DiskFormat::Qcow2),
        (
            "b.qcow2",
            "qcow2",
            &["-c", "-o", "compat=0.10"],
            DiskFormat::Qcow2,
        ),
        (
            "c.vmdk",
            "vmdk",
            &["-o", "subformat=streamOptimized"],
            DiskFormat::Vmdk,
        ),
        (
            "d.vmdk",
            "vmdk",
            &["-o", "subformat=monolithicSparse"],
            DiskFormat::Vmdk,
        ),
        ("e.vdi", "vdi", &["-o", "static=on"], DiskFormat::Vdi),
        (
            "f.vhd",
            "vpc",
            &["-o", "subformat=dynamic,force_size=on"],
            DiskFormat::Vhd,
        ),
        (
            "g.vhd",
            "vpc",
            &["-o", "subformat=fixed,force_size=on"],
            DiskFormat::Vhd,
        ),
        ("h.vhdx", "vhdx", &[], DiskFormat::Vhdx),
    ];
    for (name, driver, opts, format) in cases {
        let out = s.path(name);
        let mut args = vec!["convert", "-q", "-f", "raw", "-O", driver];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[src, out.to_str().unwrap()]);
        qemu_img(&args);
        let report = glimpse_formats::inspect_file(&out).unwrap();
        let ok = report
            .verdict(format, &glimpse_formats::Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ok.virtual_size, 4 << 20, "{name}");
        assert!(
            report
                .verdict(DiskFormat::Raw, &glimpse_formats::Limits::default())
                .is_err()
                || name == "g.vhd",
            "{name} accepted as raw"
        );
    }
}

/// Every qcow2 layout qemu-img writes passes the reference walk (compressed clusters, the
/// smallest and largest clusters, an L1 table moved past its L2 tables by a resize, a
/// persistent bitmap, LUKS encryption), and the same files cut inside their data are refused.
#[tokio::test]
async fn qemu_written_qcow2_layouts_pass_the_reference_walk() {
    let Some(s) = Scratch::with_tools("layouts") else {
        return;
    };
    let src = s.pattern_file("src.raw");
    let src = src.to_str().unwrap();
    let secret = "secret,id=sec0,data=glimpse-test-passphrase";
    let layouts: [(&str, &[&str]); 5] = [
        ("compressed", &["-c"]),
        ("small-clusters", &["-o", "cluster_size=512"]),
        ("large-clusters", &["-o", "cluster_size=2M"]),
        ("plain", &[]),
        (
            "luks",
            &[
                "--object",
                secret,
                "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0",
            ],
        ),
    ];
    let limits = glimpse_formats::Limits::default();
    for (name, opts) in layouts {
        let out = s.path(&format!("{name}.qcow2"));
        let mut args = vec!["convert", "-q", "-f", "raw", "-O", "qcow2"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[src, out.to_str().unwrap()]);
        qemu_img(&args);
        let report = glimpse_formats::inspect_file(&out).unwrap();
        report
            .verdict(DiskFormat::Qcow2, &limits)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "luks" {
            continue;
        }
        // Cut 64 KiB short (the last data is the pattern's marker): refused.
        let bytes = std::fs::read(&out).unwrap();
        let cut = s.path(&format!("{name}-cut.qcow2"));
        std::fs::write(&cut, &bytes[..bytes.len() - (64 << 10)]).unwrap();
        let err = glimpse_formats::inspect_file(&cut)
            .unwrap()
            .verdict(DiskFormat::Qcow2, &limits)
            .expect_err(name);
        assert!(
            err.to_string().contains("past the end of the image"),
            "{name}: {err}"
        );
    }
    // A resize that outgrows the L1 table moves it past the L2 tables; a bitmap adds the
    // bitmaps extension and its directory.
    let grown = s.path("grown.qcow2");
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=4096",
        src,
        grown.to_str().unwrap(),
    ]);
    qemu_img(&[
        "resize",
        "-q",
        "-f",
        "qcow2",
        grown.to_str().unwrap(),
        "64G",
    ]);
    qemu_img(&[
        "bitmap",
        "--add",
        "-f",
        "qcow2",
        grown.to_str().unwrap(),
        "b0",
    ]);
    let report = glimpse_formats::inspect_file(&grown).unwrap();
    let ok = report
        .verdict(DiskFormat::Qcow2, &limits)
        .unwrap_or_else(|e| panic!("grown: {e}"));
    assert_eq!(ok.virtual_size, 64 << 30);
}

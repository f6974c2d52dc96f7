//! The hostile-image corpus (`shared/tools/make-bad-images.sh`, security.md
//! section 2) through the inspector: every MANIFEST row must get its expected
//! verdict, whatever the chunking, and mutated corpus bytes must never panic.
//!
//! The corpus is built once per test binary into `CARGO_TARGET_TMPDIR` (and
//! reused while the script is unchanged). Needs qemu-img, qemu-io and python3:
//! without them the tests are skipped with a message, or fail when `CI=true`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use glimpse_formats::{Accepted, DiskFormat, Inspector, Limits, Rejection, Report, inspect_file};

use crate::{Rng, tools_present};

/// Transport-only row: a sparse file of OVERSIZE_GIB (1100 GiB) whose 413 is
/// decided by the upload byte cap while streaming, not by content. Reading it
/// here would mean reading 1.1 TB of zeros, so the inspector does not see it.
const TRANSPORT_ONLY: &[&str] = &["oversize-sparse.raw"];

fn shared_dir() -> PathBuf {
    match std::env::var_os("GLIMPSE_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Builds the corpus once; `None` (after a message) when the tools are missing.
fn corpus() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let tools = ["qemu-img", "qemu-io", "python3"];
        let msg = format!("corpus tests need {tools:?} (apt install qemu-utils python3)");
        if !tools_present(&tools, &msg) {
            return None;
        }
        let script = shared_dir().join("tools/make-bad-images.sh");
        let script_text = std::fs::read(&script).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e} (set GLIMPSE_SHARED_DIR)",
                script.display()
            )
        });
        // Tests run as separate processes (nextest) that may build at the same time: each
        // builds into its own directory and publishes it with an atomic rename; a process
        // that finds a fresh corpus already published uses it.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-corpus");
        let fresh = |d: &Path| {
            std::fs::read(d.join(".script")).is_ok_and(|s| s == script_text)
                && d.join("MANIFEST.tsv").exists()
        };
        if !fresh(&dir) {
            let mine = dir.with_extension(format!("building-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&mine);
            let out = Command::new("bash")
                .arg(&script)
                .arg(&mine)
                .env("OVERSIZE_GIB", "1100")
                .output()
                .expect("run make-bad-images.sh");
            assert!(
                out.status.success(),
                "make-bad-images.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(mine.join(".script"), &script_text).expect("write stamp");
            // rename() refuses to replace a non-empty directory, so a corpus another process
            // published first is never touched; only a stale one (an older script) is.
            if std::fs::rename(&mine, &dir).is_err() && !fresh(&dir) {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::rename(&mine, &dir);
            }
            let _ = std::fs::remove_dir_all(&mine);
            assert!(fresh(&dir), "corpus not published at {}", dir.display());
        }
        Some(dir)
    })
    .as_deref()
}

struct Row {
    file: String,
    claim: DiskFormat,
    expected: String,
    why: String,
}

fn rows(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "bad manifest line {l:?}");
            Row {
                file: f[0].to_string(),
                claim: DiskFormat::parse(f[1]).unwrap_or_else(|| panic!("unknown claim {}", f[1])),
                expected: f[2].to_string(),
                why: f[3].to_string(),
            }
        })
        .collect()
}

fn agrees(expected: &str, v: &Result<Accepted, Rejection>) -> bool {
    match (expected, v) {
        ("ACCEPT" | "ACCEPT-NOCONVERT", Ok(_)) => true,
        ("REJECT", Err(e)) => !e.is_limit(),
        ("REJECT-LIMIT", Err(e)) => e.is_limit(),
        _ => false,
    }
}

fn show(v: &Result<Accepted, Rejection>) -> String {
    match v {
        Ok(a) => format!("ACCEPT {} vsize={}", a.format, a.virtual_size),
        Err(e) if e.is_limit() => format!("413 {e}"),
        Err(e) => format!("415 {e}"),
    }
}

/// Feeds `data` in a cycle of odd chunk sizes.
fn feed_chunked(data: &[u8], sizes: &[usize]) -> Report {
    let mut ins = Inspector::new();
    let mut rest = data;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at(n.min(rest.len()));
        ins.feed(a);
        rest = b;
    }
    assert_eq!(ins.bytes_seen(), data.len() as u64);
    ins.finish()
}

#[test]
fn corpus_verdicts_match_manifest() {
    let Some(dir) = corpus() else { return };
    let limits = Limits::default();
    let rows = rows(dir);
    assert!(rows.len() >= 70, "only {} manifest rows", rows.len());
    let mut bad = String::new();
    let (mut checked, mut agreed) = (0, 0);
    for row in &rows {
        if TRANSPORT_ONLY.contains(&row.file.as_str()) {
            eprintln!("skip {} (transport case: {})", row.file, row.why);
            continue;
        }
        checked += 1;
        let path = dir.join(&row.file);
        let report = inspect_file(&path).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let verdict = report.verdict(row.claim, &limits);
        let data = std::fs::read(&path).unwrap();
        let chunked = feed_chunked(&data, &[1, 7, 4096, 1 << 20, 3, 65537]);
        let mut ok = agrees(&row.expected, &verdict);
        if chunked != report {
            ok = false;
            let _ = writeln!(bad, "  {}: chunked feeding changed the report", row.file);
        }
        if row.expected == "ACCEPT-NOCONVERT" && !report.is_encrypted() {
            ok = false;
            let _ = writeln!(bad, "  {}: not flagged encrypted", row.file);
        }
        if ok {
            agreed += 1;
        } else {
            let _ = writeln!(
                bad,
                "  {:<36} {:<6} want {:<16} got {}  [detected {:?}]",
                row.file,
                row.claim,
                row.expected,
                show(&verdict),
                report.formats()
            );
        }
        eprintln!(
            "{:<36} {:<6} {:<16} {}",
            row.file,
            row.claim,
            row.expected,
            show(&verdict)
        );
    }
    eprintln!(
        "corpus: {agreed}/{checked} rows agree ({} transport-only skipped)",
        rows.len() - checked
    );
    assert!(bad.is_empty(), "corpus disagreements:\n{bad}");
}

#[test]
fn corpus_single_byte_feeding_of_small_files() {
    let Some(dir) = corpus() else { return };
    for row in rows(dir) {
        let path = dir.join(&row.file);
        if TRANSPORT_ONLY.contains(&row.file.as_str())
            || std::fs::metadata(&path).unwrap().len() > 256 * 1024
        {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        assert_eq!(
            feed_chunked(&data, &[1]),
            inspect_file(&path).unwrap(),
            "{}",
            row.file
        );
    }
}

#[test]
fn corpus_mutations_never_panic() {
    let Some(dir) = corpus() else { return };
    let seeds: Vec<Vec<u8>> = rows(dir)
        .iter()
        .filter(|r| !TRANSPORT_ONLY.contains(&r.file.as_str()))
        .map(|r| {
            let mut d = std::fs::read(dir.join(&r.file)).unwrap();
            d.truncate(1 << 20);
            d
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let interesting: [u64; 8] = [
        0,
        1,
        0x1ff,
        0x200,
        0x7fff_ffff,
        0xffff_ffff,
        u64::MAX,
        1 << 63,
    ];
    for _ in 0..1500 {
        let mut data = seeds[rng.below(seeds.len())].clone();
        let times = 1 + rng.below(8);
        rng.mutate(&mut data, times, 1024, |rng, data, at| match rng.below(4) {
            0 => data[at] = rng.next() as u8,
            1 => {
                let v = interesting[rng.below(interesting.len())].to_le_bytes();
                let n = [2usize, 4, 8][rng.below(3)];
                let end = (at + n).min(data.len());
                let src = if rng.below(2) == 0 {
                    &v[..n]
                } else {
                    &v[8 - n..]
                };
                data[at..end].copy_from_slice(&src[..end - at]);
            }
            2 => data.truncate(at),
            _ => data[at] ^= 1 << rng.below(8),
        });
        let sizes = [1 + rng.below(5000), 1 + rng.below(70_000), 1 + rng.below(3)];
        let report = feed_chunked(&data, &sizes);
        let _ = report.detected();
        for claim in DiskFormat::ALL {
            let _ = report.verdict(claim, &Limits::default());
        }
    }
}

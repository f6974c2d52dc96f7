//! The hostile disk-image corpora: `../shared/tools/make-bad-images.sh` and Glimpse's own
//! additions (`scripts/make-more-bad-images.py`), each built into a directory with a
//! MANIFEST.tsv of (file, disk_format to claim, expected answer, why).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One manifest row: the file's path, the claimed disk_format, the expected answer.
pub struct Row {
    pub file: PathBuf,
    pub claim: String,
    pub expected: String,
}

impl Row {
    pub fn name(&self) -> String {
        self.file.file_name().unwrap().to_string_lossy().to_string()
    }
}

/// Builds Glimpse's own additions into `dir/own-corpus`; returns the manifest rows.
pub fn own(dir: &Path) -> Vec<Row> {
    let out = dir.join("own-corpus");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-more-bad-images.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(&out)
        .status()
        .expect("run make-more-bad-images.py");
    assert!(status.success(), "make-more-bad-images.py failed");
    let rows = read_manifest(&out);
    assert!(!rows.is_empty(), "the own corpus is empty");
    rows
}

/// The rows of a corpus directory's MANIFEST.tsv.
pub fn read_manifest(out: &Path) -> Vec<Row> {
    let manifest = std::fs::read_to_string(out.join("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                file: out.join(f[0]),
                claim: f[1].to_string(),
                expected: f[2].to_string(),
            }
        })
        .collect()
}

/// The own corpus's qcow2 files that must be refused (issue 13, item 5).
pub fn refused_qcow2(dir: &Path) -> Vec<Row> {
    let rows: Vec<Row> = own(dir)
        .into_iter()
        .filter(|r| r.claim == "qcow2" && r.expected == "REJECT" && r.name().starts_with("qcow2-"))
        .collect();
    assert!(rows.len() >= 6, "{} malformed qcow2 cases", rows.len());
    rows
}

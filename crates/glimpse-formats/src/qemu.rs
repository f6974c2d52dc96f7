//! The confined `qemu-img` runner: `info` and `convert`.
//!
//! Rules (security.md section 0): our [`Inspector`](crate::Inspector) reads
//! the input first and it must match the claimed format and be safe; every
//! call names the formats (`-f`, `-O`); qemu-img runs under `prlimit --as
//! --cpu` with a wall-clock timeout, `kill_on_drop`, a cleared environment
//! (`LC_ALL=C`) and absolute paths (so no `protocol:` or `json:` parsing of a
//! file name); qcow2/vmdk inputs are opened with `"backing": null`; the
//! conversion output is inspected again and must be exactly the target
//! format, or it is removed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::sandbox::{self, Access};
use crate::{DiskFormat, Limits, Rejection, Report, inspect_file};

/// Resource limits for one qemu-img child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuLimits {
    /// RLIMIT_AS in bytes (default 2 GiB, Nova's value: qemu-img's I/O thread pool reserves
    /// an 8 MiB stack per thread, and under 1 GiB a busy machine saw thread creation fail).
    pub address_space_bytes: u64,
    /// RLIMIT_CPU in seconds (default 60).
    pub cpu_seconds: u64,
    /// Wall-clock limit; the child is killed when it expires (default 300 s).
    pub wall: Duration,
}

impl Default for QemuLimits {
    fn default() -> Self {
        QemuLimits {
            address_space_bytes: 2 << 30,
            cpu_seconds: 60,
            wall: Duration::from_secs(300),
        }
    }
}

/// What `qemu-img info --output=json` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuInfo {
    /// qemu's driver name (`vpc` for vhd).
    pub format: String,
    pub virtual_size: u64,
    pub backing_filename: Option<String>,
    pub data_file: Option<String>,
    pub vmdk_create_type: Option<String>,
}

impl QemuInfo {
    /// `true` if qemu's driver is the one for `format`.
    pub fn matches(&self, format: DiskFormat) -> bool {
        qemu_name(format) == Some(self.format.as_str())
    }

    /// The second-layer check Glance and Nova apply to `qemu-img info`:
    /// the format must be the expected one, with no backing file, no data
    /// file, and for VMDK an allowed create type. `None` when fine.
    pub fn problem(&self, expected: DiskFormat) -> Option<String> {
        if !self.matches(expected) {
            return Some(format!(
                "qemu-img reads the image as {}, expected {expected}",
                self.format
            ));
        }
        if let Some(b) = &self.backing_filename {
            return Some(format!("qemu-img reports a backing file ({b})"));
        }
        if let Some(f) = &self.data_file {
            return Some(format!("qemu-img reports an external data file ({f})"));
        }
        match self.vmdk_create_type.as_deref() {
            None | Some("monolithicSparse" | "streamOptimized") => None,
            Some(t) => Some(format!("VMDK create type {t} is not allowed")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("input refused before running qemu-img: {0}")]
    InputRejected(#[source] Rejection),
    #[error("conversion output refused: {0}")]
    OutputRejected(#[source] Rejection),
    #[error("qemu-img info refused the image: {0}")]
    InfoRejected(String),
    #[error("qemu-img cannot handle disk format {0}")]
    UnsupportedFormat(DiskFormat),
    #[error("encrypted images cannot be converted")]
    Encrypted,
    #[error("unusable path {0}: {1}")]
    BadPath(PathBuf, &'static str),
    #[error("qemu-img did not finish within {0:?}")]
    Timeout(Duration),
    #[error("qemu-img failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("cannot run qemu-img under prlimit: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    #[error("cannot parse qemu-img info output: {0}")]
    BadInfo(String),
}

/// Most stderr kept in an error message.
const STDERR_MAX: usize = 4096;
/// Most bytes kept from a child's stdout or stderr (info JSON is a few KiB).
const OUTPUT_MAX: u64 = 1 << 20;

/// qemu-img's driver name for a Glance disk format, if qemu-img handles it.
pub fn qemu_name(format: DiskFormat) -> Option<&'static str> {
    match format {
        DiskFormat::Raw | DiskFormat::Ami | DiskFormat::Ari | DiskFormat::Aki | DiskFormat::Gpt => {
            Some("raw")
        }
        DiskFormat::Qcow2 => Some("qcow2"),
        DiskFormat::Vmdk => Some("vmdk"),
        DiskFormat::Vdi => Some("vdi"),
        DiskFormat::Vhd => Some("vpc"),
        DiskFormat::Vhdx => Some("vhdx"),
        DiskFormat::Iso | DiskFormat::Qed | DiskFormat::Luks | DiskFormat::Ploop => None,
    }
}

/// Creates `path` empty (it must not exist), so that the sandbox can bind it as the one
/// writable file before qemu-img writes it.
pub(crate) async fn create_new(path: &Path) -> Result<(), QemuError> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map(drop)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                QemuError::BadPath(path.to_path_buf(), "output already exists")
            }
            _ => QemuError::Io(e),
        })
}

pub(crate) fn absolute(path: &Path) -> Result<PathBuf, QemuError> {
    let abs = std::path::absolute(path).map_err(QemuError::Io)?;
    if abs.to_str().is_none() {
        return Err(QemuError::BadPath(abs, "not valid UTF-8"));
    }
    Ok(abs)
}

/// Inspects a file off the async runtime and applies the verdict.
pub(crate) async fn inspect(
    path: &Path,
    claimed: DiskFormat,
    limits: Limits,
) -> Result<Report, Rejection> {
    let report = read_report(path, claimed).await?;
    report.verdict(claimed, &limits)?;
    Ok(report)
}

/// The inspection of a server's or volume's own qcow2 overlay before qemu reads it
/// ([`Report::overlay_verdict`]).
pub(crate) async fn inspect_overlay(path: &Path) -> Result<(), Rejection> {
    read_report(path, DiskFormat::Qcow2)
        .await?
        .overlay_verdict()
}

/// Reads the whole file at `path` through the [`Inspector`](crate::Inspector) off the async
/// threads; a read failure is a `Malformed` rejection of `claimed`.
async fn read_report(path: &Path, claimed: DiskFormat) -> Result<Report, Rejection> {
    let p = path.to_path_buf();
    let report = tokio::task::spawn_blocking(move || inspect_file(&p))
        .await
        .map_err(|e| Rejection::Malformed {
            format: claimed,
            reason: format!("inspection task failed: {e}"),
        })?
        .map_err(|e| Rejection::Malformed {
            format: claimed,
            reason: format!("cannot read image: {e}"),
        })?;
    Ok(report)
}

/// Runs `program ARGS` (`qemu-img` or `qemu-io`) in the [`sandbox`] (touching only what
/// `access` names) under prlimit, with a cleared environment, a timeout and output caps;
/// returns stdout (and stderr) on success.
pub(crate) async fn run_program(
    program: &str,
    args: &[&str],
    access: &Access,
    limits: &QemuLimits,
) -> Result<(Vec<u8>, Vec<u8>), QemuError> {
    let prlimits = [
        format!("--as={}", limits.address_space_bytes),
        format!("--cpu={}", limits.cpu_seconds),
    ];
    sandbox::probe().await;
    let mut cmd = sandbox::command(program, &prlimits, access);
    cmd.args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let mut child = cmd.spawn().map_err(QemuError::Spawn)?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(QemuError::Io(std::io::Error::other("child pipes missing")));
    };
    let collect = async {
        let (stdout, stderr, status) = tokio::join!(slurp(stdout), slurp(stderr), child.wait());
        Ok::<_, std::io::Error>((stdout?, stderr?, status?))
    };
    let out = match tokio::time::timeout(limits.wall, collect).await {
        Ok(r) => r.map_err(QemuError::Io)?,
        Err(_) => {
            // SIGKILL and reap, so nothing is still writing when the caller cleans up.
            let _ = child.kill().await;
            return Err(QemuError::Timeout(limits.wall));
        }
    };
    let (stdout, stderr, status) = out;
    if status.success() {
        return Ok((stdout, stderr));
    }
    let status = {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(9)) => "killed by SIGKILL (resource limit?)".to_string(),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "unknown status".to_string(),
        }
    };
    Err(QemuError::Failed {
        status,
        stderr: lossy(&stderr),
    })
}

/// Reads a child's pipe, keeping at most [`OUTPUT_MAX`] bytes (the rest is drained).
async fn slurp(mut pipe: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    (&mut pipe).take(OUTPUT_MAX).read_to_end(&mut kept).await?;
    tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await?;
    Ok(kept)
}

pub(crate) fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(STDERR_MAX)]);
    s.trim().to_string()
}

fn parse_info(json: &[u8]) -> Result<QemuInfo, QemuError> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| QemuError::BadInfo(e.to_string()))?;
    let text = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    Ok(QemuInfo {
        format: text("/format").ok_or_else(|| QemuError::BadInfo("no format".into()))?,
        virtual_size: v
            .pointer("/virtual-size")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| QemuError::BadInfo("no virtual-size".into()))?,
        backing_filename: text("/backing-filename").or_else(|| text("/full-backing-filename")),
        data_file: text("/format-specific/data/data-file"),
        vmdk_create_type: text("/format-specific/data/create-type"),
    })
}

/// `qemu-img info` without our inspection (callers inspect first).
pub(crate) async fn raw_info(
    path: &Path,
    format: DiskFormat,
    limits: &QemuLimits,
) -> Result<QemuInfo, QemuError> {
    raw_info_with(path, format, &[], limits).await
}

/// [`raw_info`] of an image that may also read `backing` (an overlay's base).
pub(crate) async fn raw_info_with(
    path: &Path,
    format: DiskFormat,
    backing: &[&Path],
    limits: &QemuLimits,
) -> Result<QemuInfo, QemuError> {
    let name = qemu_name(format).ok_or(QemuError::UnsupportedFormat(format))?;
    let path = absolute(path)?;
    let p = path.to_str().unwrap_or_default();
    let mut access = Access::reads(&[&path]);
    for b in backing {
        access.read.push(absolute(b)?);
    }
    let (stdout, stderr) = run_program(
        "qemu-img",
        &["info", "--output=json", "--force-share", "-f", name, p],
        &access,
        limits,
    )
    .await?;
    if !stderr.iter().all(u8::is_ascii_whitespace) {
        return Err(QemuError::InfoRejected(format!(
            "qemu-img info wrote to stderr: {}",
            lossy(&stderr)
        )));
    }
    parse_info(&stdout)
}

/// Inspects `path` (must be `format` and safe; no virtual-size cap), then runs
/// `qemu-img info -f <format> --output=json` under the limits.
pub async fn info(
    path: &Path,
    format: DiskFormat,
    limits: &QemuLimits,
) -> Result<QemuInfo, QemuError> {
    qemu_name(format).ok_or(QemuError::UnsupportedFormat(format))?;
    inspect(
        path,
        format,
        Limits {
            max_virtual_size: u64::MAX,
        },
    )
    .await
    .map_err(QemuError::InputRejected)?;
    raw_info(path, format, limits).await
}

/// Converts `input` (claimed `from`) into a new file `output` of format `to`,
/// with the default virtual-size cap ([`Limits::default`]) on the input.
pub async fn convert(
    input: &Path,
    from: DiskFormat,
    output: &Path,
    to: DiskFormat,
    limits: &QemuLimits,
) -> Result<(), QemuError> {
    convert_with_limits(input, from, output, to, limits, &Limits::default()).await
}

/// [`convert`] with an explicit virtual-size cap for the input.
///
/// Steps: inspect the input (must be `from`, safe, within `inspect_limits`,
/// not encrypted); `qemu-img info` must agree (Glance's second layer);
/// `qemu-img convert -f <from> -O <to>`; inspect the output (must be exactly
/// `to`, safe, and not larger than the input's virtual size plus rounding).
/// `output` must not exist; on any failure after it may have been created it
/// is removed.
pub async fn convert_with_limits(
    input: &Path,
    from: DiskFormat,
    output: &Path,
    to: DiskFormat,
    limits: &QemuLimits,
    inspect_limits: &Limits,
) -> Result<(), QemuError> {
    let src = qemu_name(from).ok_or(QemuError::UnsupportedFormat(from))?;
    let dst = qemu_name(to).ok_or(QemuError::UnsupportedFormat(to))?;
    let input = absolute(input)?;
    let output = absolute(output)?;
    if tokio::fs::symlink_metadata(&output).await.is_ok() {
        return Err(QemuError::BadPath(output, "output already exists"));
    }

    let report = inspect(&input, from, *inspect_limits)
        .await
        .map_err(QemuError::InputRejected)?;
    if report.is_encrypted() {
        return Err(QemuError::Encrypted);
    }
    let in_size = report
        .verdict(from, inspect_limits)
        .map_err(QemuError::InputRejected)?
        .virtual_size;
    let qinfo = raw_info(&input, from, limits).await?;
    if let Some(p) = qinfo.problem(from) {
        return Err(QemuError::InfoRejected(p));
    }

    let result = async {
        let in_str = input.to_str().unwrap_or_default();
        // Defence in depth: never let qemu open a backing file, whatever the header says.
        let source = if matches!(from, DiskFormat::Qcow2 | DiskFormat::Vmdk) {
            let spec = serde_json::json!({
                "driver": src,
                "backing": null,
                "file": { "driver": "file", "filename": in_str },
            });
            format!("json:{spec}")
        } else {
            in_str.to_string()
        };
        let out_str = output.to_str().unwrap_or_default();
        create_new(&output).await?;
        run_program(
            "qemu-img",
            &["convert", "-f", src, "-O", dst, &source, out_str],
            &Access::reads(&[&input]).writes(&output),
            limits,
        )
        .await?;
        // Allow the target format's size rounding, nothing more.
        let slack = in_size / 16 + (4 << 20);
        let out_limits = Limits {
            max_virtual_size: in_size.saturating_add(slack),
        };
        inspect(&output, to, out_limits)
            .await
            .map_err(QemuError::OutputRejected)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        // Best effort: the conversion error is the one worth reporting.
        let _ = tokio::fs::remove_file(&output).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_json() {
        let j =
            br#"{"virtual-size": 67108864, "format": "qcow2", "backing-filename": "/etc/passwd",
                    "format-specific": {"type": "qcow2", "data": {"data-file": "x"}}}"#;
        let i = parse_info(j).unwrap();
        assert_eq!(i.virtual_size, 64 << 20);
        assert_eq!(i.backing_filename.as_deref(), Some("/etc/passwd"));
        assert_eq!(i.data_file.as_deref(), Some("x"));
        assert!(i.problem(DiskFormat::Qcow2).unwrap().contains("backing"));
        assert!(parse_info(b"not json").is_err());
    }

    #[test]
    fn info_problems() {
        let mut i = QemuInfo {
            format: "vmdk".into(),
            virtual_size: 1,
            backing_filename: None,
            data_file: None,
            vmdk_create_type: Some("monolithicSparse".into()),
        };
        assert_eq!(i.problem(DiskFormat::Vmdk), None);
        assert!(i.problem(DiskFormat::Qcow2).is_some());
        i.vmdk_create_type = Some("monolithicFlat".into());
        assert!(i.problem(DiskFormat::Vmdk).is_some());
    }

    #[test]
    fn names() {
        assert_eq!(qemu_name(DiskFormat::Vhd), Some("vpc"));
        assert_eq!(qemu_name(DiskFormat::Iso), None);
        assert_eq!(qemu_name(DiskFormat::Ami), Some("raw"));
    }
}

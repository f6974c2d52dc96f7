//! qcow2 overlays over a trusted base image: the writable disks of servers (and volumes).
//!
//! A base is a local, already verified copy of an image. [`create`] checks it once more
//! (our inspector, then `qemu-img info`: the claimed format, no backing file, no data file)
//! and makes `qemu-img create -f qcow2 -F <base format> -b <base> <overlay> [size]`.
//! Every later use of the overlay ([`write`], [`flatten`]) names the whole chain in a
//! `json:` spec (`qcow2` over `file`, with `backing` = the base with ITS backing null), so
//! qemu never follows a file name read from an image header: the overlay's recorded backing
//! name is informative only. As everywhere in this crate, formats are always explicit and
//! every child runs under prlimit with a timeout ([`crate::qemu`]).
//!
//! Crash behaviour: [`create`] and [`flatten`] write a new file; on failure it is removed.
//! [`write`] changes the overlay in place through qemu's own qcow2 driver (metadata updates
//! are ordered by qemu; `flush` runs before it exits), so a kill leaves a consistent qcow2
//! with or without the write.

use std::path::Path;

#[cfg(doc)]
use crate::Report;
use crate::qemu::{
    QemuError, QemuLimits, absolute, create_new, inspect, inspect_overlay, lossy, qemu_name,
    raw_info, raw_info_with, run_program,
};
use crate::sandbox::Access;
use crate::{DiskFormat, Limits};

/// The `json:` node of a trusted base: its driver, its file, and never a backing of its own.
fn base_node(base: &str, format: &str) -> serde_json::Value {
    let mut node = serde_json::json!({
        "driver": format,
        "file": { "driver": "file", "filename": base },
    });
    if matches!(format, "qcow2" | "vmdk") {
        node["backing"] = serde_json::Value::Null;
    }
    node
}

/// The `json:` spec of `overlay` over `base` (see the module documentation).
fn chain(overlay: &str, base: &str, base_format: &str) -> String {
    let spec = serde_json::json!({
        "driver": "qcow2",
        "file": { "driver": "file", "filename": overlay },
        "backing": base_node(base, base_format),
    });
    format!("json:{spec}")
}

fn utf8(p: &Path) -> Result<String, QemuError> {
    let abs = absolute(p)?;
    Ok(abs.to_str().unwrap_or_default().to_string())
}

/// Checks `base` (inspector and `qemu-img info`: exactly `format`, safe, no backing, no data
/// file) and returns its virtual size.
pub async fn check_base(
    base: &Path,
    format: DiskFormat,
    limits: &QemuLimits,
) -> Result<u64, QemuError> {
    qemu_name(format).ok_or(QemuError::UnsupportedFormat(format))?;
    let report = inspect(
        base,
        format,
        Limits {
            max_virtual_size: u64::MAX,
        },
    )
    .await
    .map_err(QemuError::InputRejected)?;
    if report.is_encrypted() {
        return Err(QemuError::Encrypted);
    }
    let info = raw_info(base, format, limits).await?;
    if let Some(p) = info.problem(format) {
        return Err(QemuError::InfoRejected(p));
    }
    Ok(info.virtual_size)
}

/// Creates the qcow2 `overlay` over `base` (checked by [`check_base`] first). `size` is the
/// guest-visible size in bytes; `None` (or a size below the base's) keeps the base's size.
/// Returns the overlay's virtual size. `overlay` must not exist; it is removed on failure.
pub async fn create(
    base: &Path,
    base_format: DiskFormat,
    overlay: &Path,
    size: Option<u64>,
    limits: &QemuLimits,
) -> Result<u64, QemuError> {
    let base_size = check_base(base, base_format, limits).await?;
    let fmt = qemu_name(base_format).ok_or(QemuError::UnsupportedFormat(base_format))?;
    let (base_s, overlay_s) = (utf8(base)?, utf8(overlay)?);
    if tokio::fs::symlink_metadata(&overlay_s).await.is_ok() {
        return Err(QemuError::BadPath(overlay.into(), "output already exists"));
    }
    let virtual_size = size.unwrap_or(0).max(base_size);
    let size_arg = virtual_size.to_string();
    create_new(Path::new(&overlay_s)).await?;
    let result = async {
        run_program(
            "qemu-img",
            &[
                "create", "-q", "-f", "qcow2", "-F", fmt, "-b", &base_s, &overlay_s, &size_arg,
            ],
            &Access::reads(&[Path::new(&base_s)]).writes(Path::new(&overlay_s)),
            limits,
        )
        .await?;
        let info = raw_info_with(overlay, DiskFormat::Qcow2, &[base], limits).await?;
        if info.format != "qcow2" || info.data_file.is_some() {
            return Err(QemuError::InfoRejected(format!(
                "the new overlay reads as {} (data file {:?})",
                info.format, info.data_file
            )));
        }
        if info.backing_filename.as_deref() != Some(base_s.as_str()) {
            return Err(QemuError::InfoRejected(format!(
                "the new overlay's backing file is {:?}, expected {base_s}",
                info.backing_filename
            )));
        }
        Ok(info.virtual_size)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&overlay_s).await;
    }
    result
}

/// Writes the contents of the file `data` (`len` bytes) at guest offset `offset` of
/// `overlay` (over `base`), through `qemu-io`'s qcow2 driver, and flushes. Fails (nothing
/// written) when the range leaves the disk.
pub async fn write(
    overlay: &Path,
    base: &Path,
    base_format: DiskFormat,
    offset: u64,
    data: &Path,
    len: u64,
    limits: &QemuLimits,
) -> Result<(), QemuError> {
    let fmt = qemu_name(base_format).ok_or(QemuError::UnsupportedFormat(base_format))?;
    let spec = chain(&utf8(overlay)?, &utf8(base)?, fmt);
    let command = format!("write -s {} {offset} {len}", utf8(data)?);
    if command.contains(['"', '\'', '\n']) {
        return Err(QemuError::BadPath(data.into(), "quote or newline in path"));
    }
    let (stdout, stderr) = run_program(
        "qemu-io",
        &["-f", "qcow2", &spec, "-c", &command, "-c", "flush"],
        &Access::reads(&[base, data]).writes(&absolute(overlay)?),
        limits,
    )
    .await?;
    let out = String::from_utf8_lossy(&stdout);
    let expect = format!("wrote {len}/{len} bytes at offset {offset}");
    if !out.contains(&expect) {
        return Err(QemuError::Failed {
            status: "qemu-io did not confirm the write".into(),
            stderr: format!("{} {}", lossy(&stdout), lossy(&stderr)),
        });
    }
    Ok(())
}

/// Writes a new, self-contained image `output` of format `to` with the guest's view of
/// `overlay` over `base` (`qemu-img convert -f qcow2 -O <to>`). The overlay is inspected
/// first like an upload, its backing file aside ([`Report::overlay_verdict`]), so a host
/// file cut short or altered is refused rather than read as zeros. The output is inspected
/// after: exactly
/// `to`, safe, no larger than the overlay's virtual size plus the format's rounding.
/// `output` must not exist; it is removed on failure.
pub async fn flatten(
    overlay: &Path,
    base: &Path,
    base_format: DiskFormat,
    output: &Path,
    to: DiskFormat,
    limits: &QemuLimits,
) -> Result<(), QemuError> {
    let fmt = qemu_name(base_format).ok_or(QemuError::UnsupportedFormat(base_format))?;
    let dst = qemu_name(to).ok_or(QemuError::UnsupportedFormat(to))?;
    let out_s = utf8(output)?;
    if tokio::fs::symlink_metadata(&out_s).await.is_ok() {
        return Err(QemuError::BadPath(output.into(), "output already exists"));
    }
    let spec = chain(&utf8(overlay)?, &utf8(base)?, fmt);
    let result = async {
        inspect_overlay(overlay)
            .await
            .map_err(QemuError::InputRejected)?;
        let size = raw_info_with(overlay, DiskFormat::Qcow2, &[base], limits)
            .await?
            .virtual_size;
        create_new(Path::new(&out_s)).await?;
        run_program(
            "qemu-img",
            &["convert", "-f", "qcow2", "-O", dst, &spec, &out_s],
            &Access::reads(&[&absolute(overlay)?, &absolute(base)?]).writes(Path::new(&out_s)),
            limits,
        )
        .await?;
        let slack = size / 16 + (4 << 20);
        inspect(
            output,
            to,
            Limits {
                max_virtual_size: size.saturating_add(slack),
            },
        )
        .await
        .map_err(QemuError::OutputRejected)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&out_s).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_the_base_without_its_backing() {
        let s = chain("/d/o.qcow2", "/d/b", "qcow2");
        let v: serde_json::Value = serde_json::from_str(s.strip_prefix("json:").unwrap()).unwrap();
        assert_eq!(v["backing"]["file"]["filename"], "/d/b");
        assert!(v["backing"]["backing"].is_null());
        assert!(v["backing"].as_object().unwrap().contains_key("backing"));
        let raw = chain("/d/o.qcow2", "/d/b", "raw");
        assert!(!raw.contains("\"backing\":null"));
    }
}

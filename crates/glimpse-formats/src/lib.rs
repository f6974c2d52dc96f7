//! Disk-image format inspection and a confined `qemu-img` runner.
//!
//! This crate owns the question "what is this upload, really, and is it safe
//! to hand to qemu-img?" (see `reference/security.md`, sections 0, 1.3, 1.6).
//!
//! * [`Inspector`] is a streaming, bounded-memory inspector: it is fed every
//!   byte of an image once, in order, in chunks of any size, runs every format
//!   detector in parallel and produces a [`Report`].
//! * [`Report::verdict`] turns that report into the upload decision for a
//!   claimed `disk_format`: [`Accepted`] or a [`Rejection`] (HTTP 415, or 413
//!   when [`Rejection::is_limit`]).
//! * [`qemu`] runs `qemu-img info` / `convert` under `prlimit`, always with
//!   explicit formats, inspecting the input before and the output after.
//!
//! Everything parsed here is untrusted: no `unsafe`, checked arithmetic, and no
//! allocation sized by a header field beyond a fixed cap (about 1.1 MiB per
//! stream in the worst case, the VMDK descriptor cap being 1 MiB).

mod bytes;
mod capture;
mod foreign;
mod gpt;
mod inspector;
mod iso;
pub mod overlay;
mod qcow2;
mod qcow2_refs;
pub mod qemu;
mod report;
pub mod sandbox;
mod simple;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;

use std::fmt;
use std::io::Read;
use std::path::Path;

pub use inspector::Inspector;
pub use qemu::{QemuError, QemuInfo, QemuLimits};
pub use report::{Accepted, Detection, Finding, FindingKind, Rejection, Report};

/// A disk format as Glance names it (lower-case [`DiskFormat::as_str`]), plus
/// the ones we only detect in order to refuse them (`qed`, `luks`, `gpt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vdi,
    Vhd,
    Vhdx,
    Iso,
    Qed,
    Luks,
    Gpt,
    Ami,
    Ari,
    Aki,
    Ploop,
}

impl DiskFormat {
    /// Every variant, in declaration order.
    pub const ALL: [DiskFormat; 14] = [
        DiskFormat::Raw,
        DiskFormat::Qcow2,
        DiskFormat::Vmdk,
        DiskFormat::Vdi,
        DiskFormat::Vhd,
        DiskFormat::Vhdx,
        DiskFormat::Iso,
        DiskFormat::Qed,
        DiskFormat::Luks,
        DiskFormat::Gpt,
        DiskFormat::Ami,
        DiskFormat::Ari,
        DiskFormat::Aki,
        DiskFormat::Ploop,
    ];

    /// The Glance `disk_format` string.
    pub fn as_str(&self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vdi => "vdi",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
            DiskFormat::Iso => "iso",
            DiskFormat::Qed => "qed",
            DiskFormat::Luks => "luks",
            DiskFormat::Gpt => "gpt",
            DiskFormat::Ami => "ami",
            DiskFormat::Ari => "ari",
            DiskFormat::Aki => "aki",
            DiskFormat::Ploop => "ploop",
        }
    }

    /// Parses the exact (lower-case) Glance name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        DiskFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Claims whose content must simply be raw bytes (a GPT/MBR disk counts).
    pub(crate) fn is_raw_like(self) -> bool {
        matches!(
            self,
            DiskFormat::Raw
                | DiskFormat::Ami
                | DiskFormat::Ari
                | DiskFormat::Aki
                | DiskFormat::Ploop
        )
    }
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Default cap on the virtual (guest-visible) size: 1 TiB.
pub const DEFAULT_MAX_VIRTUAL_SIZE: u64 = 1 << 40;

/// Limits applied by [`Report::verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest acceptable virtual size in bytes; above it the verdict is
    /// [`Rejection::VirtualSizeTooLarge`] (HTTP 413).
    pub max_virtual_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_virtual_size: DEFAULT_MAX_VIRTUAL_SIZE,
        }
    }
}

/// Size of the read buffer used by [`inspect_file`].
const FILE_BUFFER: usize = 1 << 20;

/// Convenience: inspect a whole file on disk (reads it once with a 1 MiB buffer).
pub fn inspect_file(path: &Path) -> std::io::Result<Report> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; FILE_BUFFER];
    let mut inspector = Inspector::new();
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => inspector.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(inspector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in DiskFormat::ALL {
            assert_eq!(DiskFormat::parse(f.as_str()), Some(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!(DiskFormat::parse("QCOW2"), None);
        assert_eq!(DiskFormat::parse(""), None);
        assert_eq!(DiskFormat::parse("vpc"), None);
    }

    #[test]
    fn default_limit_is_one_tib() {
        assert_eq!(Limits::default().max_virtual_size, 1u64 << 40);
    }
}

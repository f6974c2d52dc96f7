//! VHD (Virtual PC, qemu "vpc") detection: the `conectix` footer copy at
//! offset 0 of dynamic and differencing disks (what qemu probes), plus the
//! trailing footer of fixed disks, which only counts when the claim is `vhd`.
//! Differencing disks name a parent and are refused.

use crate::DiskFormat;
use crate::bytes::{be32, be64, has_at};
use crate::capture::Head;
use crate::inspector::{Detector, End};
use crate::report::Detection;

const COOKIE: &[u8; 8] = b"conectix";
const FOOTER: usize = 512;
const TYPE_FIXED: u32 = 2;
const TYPE_DYNAMIC: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;

pub(crate) struct Vhd(Head);

impl Vhd {
    pub(crate) fn new() -> Self {
        Vhd(Head::new(COOKIE, FOOTER))
    }
}

impl Detector for Vhd {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.0.feed(pos, chunk);
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let h = self.0.matched()?;
        let mut d = Detection::new(DiskFormat::Vhd);
        if h.len() < FOOTER {
            d.malformed("footer truncated");
            return Some(d);
        }
        d.virtual_size = Some(be64(h, 48));
        match be32(h, 60) {
            TYPE_FIXED => {}
            TYPE_DYNAMIC => {
                // The dynamic disk header (1 KiB) must be inside the file.
                let dyn_header = be64(h, 16);
                if dyn_header.checked_add(1024).is_none_or(|e| e > end.len) {
                    d.truncated(format!(
                        "dynamic disk header at {dyn_header:#x} lies past the end of the image"
                    ));
                }
            }
            TYPE_DIFFERENCING => d.unsafe_("differencing VHD (names a parent disk)"),
            t => d.malformed(format!("unknown disk type {t}")),
        }
        Some(d)
    }
}

/// A fixed VHD: raw data followed by a 512-byte footer.
pub(crate) fn fixed_footer(end: &End<'_>) -> Option<Detection> {
    if end.tail.len() < FOOTER {
        return None;
    }
    let f = &end.tail[end.tail.len() - FOOTER..];
    if !has_at(f, 0, COOKIE) {
        return None;
    }
    let mut d = Detection::new(DiskFormat::Vhd);
    let size = be64(f, 48);
    d.virtual_size = Some(size);
    if be32(f, 60) != TYPE_FIXED {
        d.malformed("trailing VHD footer without a header copy is not a fixed disk");
    } else if size > end.len - FOOTER as u64 {
        d.truncated(format!(
            "fixed disk of {size} bytes but only {} bytes of data",
            end.len - FOOTER as u64
        ));
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use crate::{DiskFormat, Inspector, Limits, Rejection};

    fn footer(disk_type: u32, size: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(super::COOKIE);
        f[16..24].copy_from_slice(&512u64.to_be_bytes());
        f[48..56].copy_from_slice(&size.to_be_bytes());
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        f
    }

    fn report(img: &[u8]) -> crate::Report {
        let mut i = Inspector::new();
        i.feed(img);
        i.finish()
    }

    #[test]
    fn dynamic() {
        let mut img = footer(3, 16 << 20);
        img.extend_from_slice(&[0u8; 2048]);
        let r = report(&img);
        assert_eq!(r.detected(), DiskFormat::Vhd);
        assert_eq!(
            r.verdict(DiskFormat::Vhd, &Limits::default())
                .unwrap()
                .virtual_size,
            16 << 20
        );
        assert!(r.verdict(DiskFormat::Raw, &Limits::default()).is_err());
    }

    #[test]
    fn differencing_refused() {
        let mut img = footer(4, 16 << 20);
        img.extend_from_slice(&[0u8; 2048]);
        assert!(matches!(
            report(&img).verdict(DiskFormat::Vhd, &Limits::default()),
            Err(Rejection::Unsafe { .. })
        ));
    }

    #[test]
    fn fixed_only_as_vhd() {
        let mut img = vec![7u8; 4096];
        img.extend_from_slice(&footer(2, 4096));
        let r = report(&img);
        assert_eq!(r.detected(), DiskFormat::Raw);
        assert_eq!(
            r.verdict(DiskFormat::Vhd, &Limits::default())
                .unwrap()
                .virtual_size,
            4096
        );
        assert!(r.verdict(DiskFormat::Raw, &Limits::default()).is_ok());
        let mut short = vec![7u8; 1024];
        short.extend_from_slice(&footer(2, 4096));
        assert!(
            report(&short)
                .verdict(DiskFormat::Vhd, &Limits::default())
                .is_err()
        );
    }
}

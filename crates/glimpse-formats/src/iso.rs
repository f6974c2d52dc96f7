//! ISO 9660 / UDF detection: a volume descriptor identifier (`CD001`,
//! `NSR02`, `NSR03`) at 32 KiB + 1, or a UDF `BEA01` extended area followed
//! by an `NSR0x` descriptor.
//!
//! An ISO's virtual size is the number of bytes actually present; the size
//! claimed by the primary volume descriptor is never trusted. The 32 KiB
//! system area is not read here: any other format's header hidden there is
//! caught by that format's own detector (a multiple match).

use crate::DiskFormat;
use crate::capture::Capture;
use crate::inspector::{Detector, End};
use crate::report::Detection;

/// First volume descriptor: sector 16 of 2048 bytes.
const VD_START: u64 = 16 * 2048;
/// Descriptors read: sectors 16, 17 and 18.
const VD_LEN: usize = 3 * 2048;

pub(crate) struct Iso {
    vd: Capture,
}

impl Iso {
    pub(crate) fn new() -> Self {
        Iso {
            vd: Capture::new(VD_START, VD_LEN),
        }
    }
}

fn ident(vd: &[u8], sector: usize) -> Option<&[u8]> {
    vd.get(sector * 2048 + 1..sector * 2048 + 6)
}

impl Detector for Iso {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.vd.feed(pos, chunk);
        if let Some(id) = ident(self.vd.data(), 0)
            && !matches!(id, b"CD001" | b"NSR02" | b"NSR03" | b"BEA01")
        {
            self.vd.release();
        }
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let vd = self.vd.data();
        let matched = match ident(vd, 0)? {
            b"CD001" | b"NSR02" | b"NSR03" => true,
            b"BEA01" => (1..3).any(|s| matches!(ident(vd, s), Some(b"NSR02" | b"NSR03"))),
            _ => false,
        };
        matched.then(|| {
            let mut d = Detection::new(DiskFormat::Iso);
            d.virtual_size = Some(end.len);
            d
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DiskFormat, Limits};

    fn iso(id: &[u8], claimed_blocks: u32) -> Vec<u8> {
        let mut img = vec![0u8; 21 * 2048];
        img[0x8000] = 1;
        img[0x8001..0x8006].copy_from_slice(id);
        img[0x8000 + 80..0x8000 + 84].copy_from_slice(&claimed_blocks.to_le_bytes());
        img
    }

    fn report(img: &[u8]) -> crate::Report {
        crate::inspector::report_in_chunks(img, 1000)
    }

    #[test]
    fn detects_iso_and_uses_real_length() {
        let img = iso(b"CD001", u32::MAX);
        let r = report(&img);
        assert_eq!(r.detected(), DiskFormat::Iso);
        let ok = r.verdict(DiskFormat::Iso, &Limits::default()).unwrap();
        assert_eq!(ok.virtual_size, img.len() as u64);
        assert!(r.verdict(DiskFormat::Raw, &Limits::default()).is_err());
    }

    #[test]
    fn udf() {
        assert_eq!(report(&iso(b"NSR03", 1)).detected(), DiskFormat::Iso);
        let mut img = iso(b"BEA01", 1);
        assert_eq!(report(&img).detected(), DiskFormat::Raw);
        img[0x8801..0x8806].copy_from_slice(b"NSR02");
        assert_eq!(report(&img).detected(), DiskFormat::Iso);
    }

    #[test]
    fn short_file_is_not_iso() {
        let img = iso(b"CD001", 1);
        assert_eq!(report(&img[..0x8003]).detected(), DiskFormat::Raw);
    }
}

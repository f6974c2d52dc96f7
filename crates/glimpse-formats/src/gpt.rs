//! GPT / MBR detection (`0x55AA` at 510, not a FAT boot sector) and the MBR
//! safety checks of oslo.utils: valid boot flags, a protective `0xEE` entry
//! (start CHS 0/2/0, start LBA 1) must be the only entry, and at least one
//! partition must exist.
//!
//! A GPT/MBR disk counts as raw for raw-like claims; these checks still apply.

use crate::DiskFormat;
use crate::bytes::le32;
use crate::capture::Capture;
use crate::inspector::{Detector, End};
use crate::report::Detection;

const PTE_START: usize = 446;

pub(crate) struct Gpt {
    mbr: Capture,
}

impl Gpt {
    pub(crate) fn new() -> Self {
        Gpt {
            mbr: Capture::new(0, 512),
        }
    }
}

/// A FAT volume boot record also ends in 0x55AA: two FATs on a fixed disk.
fn is_fat(mbr: &[u8]) -> bool {
    mbr[0x10] == 2 && mbr[0x15] == 0xf8
}

impl Detector for Gpt {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.mbr.feed(pos, chunk);
    }

    fn finish(&self, _end: &End<'_>) -> Option<Detection> {
        let mbr = self.mbr.data();
        if mbr.len() < 512 || mbr[510..512] != [0x55, 0xaa] || is_fat(mbr) {
            return None;
        }
        let mut d = Detection::new(DiskFormat::Gpt);
        check_mbr(&mut d, mbr);
        Some(d)
    }
}

fn check_mbr(d: &mut Detection, mbr: &[u8]) {
    let mut used = Vec::new();
    let mut protective = false;
    for i in 0..4 {
        let e = &mbr[PTE_START + 16 * i..PTE_START + 16 * (i + 1)];
        let (boot, chs, ostype, start_lba) = (e[0], [e[1], e[2], e[3]], e[4], le32(e, 8));
        if boot != 0x00 && boot != 0x80 {
            d.unsafe_(format!(
                "MBR partition {i} has invalid boot flag {boot:#04x}"
            ));
        }
        if ostype != 0 {
            used.push(i);
        }
        if ostype == 0xee {
            protective = true;
            if chs != [0, 2, 0] {
                d.unsafe_("protective MBR entry has an invalid start CHS");
            }
            if start_lba != 1 {
                d.unsafe_(format!(
                    "protective MBR entry starts at LBA {start_lba}, not 1"
                ));
            }
        }
    }
    if protective && used != [0] {
        d.unsafe_("protective MBR defines extra partitions (hybrid MBR)");
    }
    if used.is_empty() {
        d.unsafe_("boot signature present but no partitions defined");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Inspector, Limits};

    fn entry(boot: u8, chs: [u8; 3], ostype: u8, lba: u32, n: u32) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[0] = boot;
        e[1..4].copy_from_slice(&chs);
        e[4] = ostype;
        e[8..12].copy_from_slice(&lba.to_le_bytes());
        e[12..16].copy_from_slice(&n.to_le_bytes());
        e
    }

    fn disk(entries: &[[u8; 16]]) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        for (i, e) in entries.iter().enumerate() {
            img[PTE_START + 16 * i..PTE_START + 16 * (i + 1)].copy_from_slice(e);
        }
        img[510] = 0x55;
        img[511] = 0xaa;
        img
    }

    fn verdict(img: &[u8]) -> Result<crate::Accepted, crate::Rejection> {
        let mut i = Inspector::new();
        i.feed(img);
        i.finish().verdict(DiskFormat::Raw, &Limits::default())
    }

    #[test]
    fn good_tables() {
        assert!(verdict(&disk(&[entry(0, [0, 2, 0], 0xee, 1, 7)])).is_ok());
        assert!(verdict(&disk(&[entry(0x80, [0x20, 0x21, 0], 0x83, 2048, 7)])).is_ok());
    }

    #[test]
    fn bad_tables() {
        for img in [
            disk(&[
                entry(0, [0, 2, 0], 0xee, 1, 7),
                entry(0, [0, 0, 0], 0x83, 2048, 7),
            ]),
            disk(&[entry(0, [0, 2, 0], 0xee, 2, 7)]),
            disk(&[entry(0, [0, 3, 0], 0xee, 1, 7)]),
            disk(&[entry(0x7f, [0, 0, 0], 0x83, 2048, 7)]),
            disk(&[]),
        ] {
            let e = verdict(&img).unwrap_err();
            assert!(
                matches!(
                    e,
                    crate::Rejection::Unsafe {
                        format: DiskFormat::Gpt,
                        ..
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn fat_is_not_mbr() {
        let mut img = disk(&[]);
        img[0x10] = 2;
        img[0x15] = 0xf8;
        assert!(verdict(&img).is_ok());
    }
}

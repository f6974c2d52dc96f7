//! VirtualBox VDI detection (magic `0xbeda107f` at 0x40) and header checks
//! mirroring qemu's `block/vdi.c`: version 1.1, 512-byte sectors, 1 MiB
//! blocks, disk size covered by the block map, no parent/link UUID
//! (differencing images), block map and data inside the file.

use crate::DiskFormat;
use crate::bytes::{le32, le64};
use crate::capture::Capture;
use crate::inspector::{Detector, End};
use crate::report::Detection;

const MAGIC: u32 = 0xbeda_107f;
const MAGIC_AT: usize = 0x40;
/// End of the v1.1 header fields we read (uuid_parent ends at 0x1c8).
const HEADER_END: usize = 0x1c8;
const VERSION_1_1: u32 = 0x0001_0001;
const BLOCK_SIZE: u32 = 1 << 20;
/// qemu's VDI_BLOCKS_IN_IMAGE_MAX.
const MAX_BLOCKS: u32 = 0x3fff_ffff;

pub(crate) struct Vdi {
    head: Capture,
    dead: bool,
}

impl Vdi {
    pub(crate) fn new() -> Self {
        Vdi {
            head: Capture::new(0, 512),
            dead: false,
        }
    }
}

impl Detector for Vdi {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        if self.dead {
            return;
        }
        self.head.feed(pos, chunk);
        if self.head.data().len() >= MAGIC_AT + 4 && le32(self.head.data(), MAGIC_AT) != MAGIC {
            self.dead = true;
            self.head.release();
        }
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let h = self.head.data();
        if self.dead || h.len() < MAGIC_AT + 4 || le32(h, MAGIC_AT) != MAGIC {
            return None;
        }
        Some(check(h, end.len))
    }
}

fn check(h: &[u8], len: u64) -> Detection {
    let mut d = Detection::new(DiskFormat::Vdi);
    if h.len() < HEADER_END {
        d.malformed(format!(
            "header truncated: {} bytes, need {HEADER_END}",
            h.len()
        ));
        return d;
    }
    let version = le32(h, 0x44);
    let image_type = le32(h, 0x4c);
    let offset_bmap = le32(h, 0x154);
    let offset_data = le32(h, 0x158);
    let sector_size = le32(h, 0x168);
    let disk_size = le64(h, 0x170);
    let block_size = le32(h, 0x178);
    let block_extra = le32(h, 0x17c);
    let blocks = le32(h, 0x180);
    let allocated = le32(h, 0x184);
    d.virtual_size = Some(disk_size);

    if h[0x1a8..0x1c8].iter().any(|&b| b != 0) {
        d.unsafe_("references a parent image (non-null link or parent UUID)");
    }
    match image_type {
        1 | 2 => {}
        4 => d.unsafe_("differencing image (has a parent)"),
        t => d.malformed(format!("unsupported image type {t}")),
    }
    if version != VERSION_1_1 {
        d.malformed(format!("unsupported version {version:#x} (need 1.1)"));
        return d;
    }
    if sector_size != 512 {
        d.malformed(format!("sector size {sector_size} (need 512)"));
    }
    if block_size != BLOCK_SIZE || block_extra != 0 {
        d.malformed(format!(
            "block size {block_size} + {block_extra} (need 1 MiB + 0)"
        ));
    }
    if !offset_bmap.is_multiple_of(512) || !offset_data.is_multiple_of(512) {
        d.malformed("block map or data offset not sector aligned");
    }
    if blocks > MAX_BLOCKS {
        d.malformed(format!("{blocks} blocks (max {MAX_BLOCKS})"));
    }
    if allocated > blocks {
        d.malformed(format!("{allocated} blocks allocated of {blocks}"));
    }
    let room = u64::from(blocks) * u64::from(BLOCK_SIZE);
    if disk_size > room {
        d.malformed(format!(
            "disk size {disk_size} exceeds the {room} bytes its {blocks} blocks can hold"
        ));
    }
    let bmap_end = u64::from(offset_bmap) + u64::from(blocks) * 4;
    if u64::from(offset_bmap) < HEADER_END as u64 || bmap_end > u64::from(offset_data) {
        d.malformed("block map overlaps the header or the data area");
    }
    // Fixed images have every block present; dynamic ones `allocated` blocks.
    let present = if image_type == 2 { blocks } else { allocated };
    let data_end = u64::from(offset_data) + u64::from(present) * u64::from(BLOCK_SIZE);
    if bmap_end > len || data_end > len {
        d.truncated(format!(
            "block map or data ends at {:#x}, past the end of the image ({len:#x})",
            bmap_end.max(data_end)
        ));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FindingKind;

    fn image() -> Vec<u8> {
        let mut h = vec![0u8; 1024];
        h[..0x22].copy_from_slice(b"<<< QEMU VM Virtual Disk Image >>>");
        let mut put = |off: usize, v: u32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put(0x40, MAGIC);
        put(0x44, VERSION_1_1);
        put(0x48, 0x180);
        put(0x4c, 1);
        put(0x154, 0x200);
        put(0x158, 0x400);
        put(0x168, 512);
        put(0x178, BLOCK_SIZE);
        put(0x180, 64);
        h[0x170..0x178].copy_from_slice(&(64u64 << 20).to_le_bytes());
        h[0x188] = 0x45; // image uuid
        h
    }

    fn kinds(img: &[u8]) -> Vec<FindingKind> {
        check(&img[..512.min(img.len())], img.len() as u64)
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn clean() {
        let img = image();
        let d = check(&img[..512], 1024);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.virtual_size, Some(64 << 20));
    }

    #[test]
    fn size_mismatch_is_malformed() {
        let mut img = image();
        img[0x170..0x178].copy_from_slice(&0x4000_0000_0000_0000u64.to_le_bytes());
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
    }

    #[test]
    fn parent_is_unsafe() {
        let mut img = image();
        img[0x1b8] = 1;
        assert_eq!(kinds(&img), vec![FindingKind::Unsafe]);
        let mut img = image();
        img[0x4c] = 4;
        assert_eq!(kinds(&img), vec![FindingKind::Unsafe]);
    }

    #[test]
    fn truncated_and_bad_fields() {
        let img = image();
        assert_eq!(
            check(&img[..0x100], 0x100).findings[0].kind,
            FindingKind::Malformed
        );
        let mut img = image();
        img[0x184] = 1; // one allocated block, not present
        assert_eq!(kinds(&img), vec![FindingKind::Truncated]);
        let mut img = image();
        img[0x169] = 0; // sector size 0
        assert!(kinds(&img).contains(&FindingKind::Malformed));
    }
}

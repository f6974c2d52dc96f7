//! VHDX detection (`vhdxfile` at 0) and metadata parsing: region table at
//! 192 KiB → metadata region → metadata table → virtual disk size, file
//! parameters and parent locator items. Differencing disks (a parent locator
//! or the HasParent flag) are refused. Every table is capped at 2047 entries
//! (64 KiB) as in qemu and oslo.utils.

use crate::DiskFormat;
use crate::bytes::{has_at, le16, le32, le64};
use crate::capture::Capture;
use crate::inspector::{Detector, End};
use crate::report::Detection;

const IDENT: &[u8; 8] = b"vhdxfile";
const REGION_TABLE: u64 = 192 * 1024;
const MAX_ENTRIES: usize = 2047;

/// A Microsoft GUID in on-disk (mixed-endian) byte order.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

// The GUIDs of the regions and metadata items this inspector reads (one per line).
#[rustfmt::skip]
mod ids {
    use super::guid;
    pub(super) const METADATA_REGION: [u8; 16] = guid(0x8B7CA206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]);
    pub(super) const VIRTUAL_DISK_SIZE: [u8; 16] = guid(0x2FA54224, 0xCD1B, 0x4876, [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]);
    pub(super) const FILE_PARAMETERS: [u8; 16] = guid(0xCAA16737, 0xFA36, 0x4D43, [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B]);
    pub(super) const PARENT_LOCATOR: [u8; 16] = guid(0xA8D35F2D, 0xB30B, 0x454D, [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C]);
}
use ids::{FILE_PARAMETERS, METADATA_REGION, PARENT_LOCATOR, VIRTUAL_DISK_SIZE};

#[derive(Default)]
struct Items {
    size: Option<Capture>,
    params: Option<Capture>,
    parent_locator: bool,
}

pub(crate) struct Vhdx {
    ident: Capture,
    regions: Capture,
    meta: Option<Capture>,
    items: Option<Items>,
    error: Option<String>,
    dead: bool,
}

impl Vhdx {
    pub(crate) fn new() -> Self {
        Vhdx {
            ident: Capture::new(0, IDENT.len()),
            regions: Capture::new(REGION_TABLE, 16),
            meta: None,
            items: None,
            error: None,
            dead: false,
        }
    }

    fn fail(&mut self, why: String) {
        self.error = Some(why);
        self.regions.release();
        self.meta = None;
        self.items = None;
    }

    /// Region table complete: locate the metadata region.
    fn parse_regions(&mut self, pos: u64, chunk: &[u8]) {
        let t = self.regions.data();
        if !has_at(t, 0, b"regi") {
            return self.fail("region table signature missing".into());
        }
        let count = le32(t, 8) as usize;
        if count > MAX_ENTRIES {
            return self.fail(format!("{count} region table entries (max {MAX_ENTRIES})"));
        }
        if t.len() < 16 + count * 32 {
            self.regions.set_len(16 + count * 32);
            self.regions.feed(pos, chunk);
            if !self.regions.is_complete() {
                return;
            }
        }
        let t = self.regions.data();
        let found = (0..count)
            .map(|i| &t[16 + i * 32..16 + (i + 1) * 32])
            .find(|e| e[..16] == METADATA_REGION)
            .map(|e| le64(e, 16));
        match found {
            Some(off) => {
                let mut meta = Capture::new(off, 32);
                meta.feed(pos, chunk);
                self.meta = Some(meta);
            }
            None => self.fail("no metadata region".into()),
        }
    }

    /// Metadata table complete: locate the items we need.
    fn parse_meta(&mut self, pos: u64, chunk: &[u8]) {
        let Some(meta) = self.meta.as_mut() else {
            return;
        };
        let (base, t) = (meta.start(), meta.data());
        if !has_at(t, 0, b"metadata") {
            return self.fail("metadata table signature missing".into());
        }
        let count = usize::from(le16(t, 10));
        if count > MAX_ENTRIES {
            return self.fail(format!("{count} metadata entries (max {MAX_ENTRIES})"));
        }
        if t.len() < 32 + count * 32 {
            meta.set_len(32 + count * 32);
            meta.feed(pos, chunk);
            if !meta.is_complete() {
                return;
            }
        }
        let t = meta.data();
        let mut items = Items::default();
        for e in (0..count).map(|i| &t[32 + i * 32..32 + (i + 1) * 32]) {
            let at = base.checked_add(u64::from(le32(e, 16)));
            let slot = match &e[..16] {
                id if id == VIRTUAL_DISK_SIZE => &mut items.size,
                id if id == FILE_PARAMETERS => &mut items.params,
                id if id == PARENT_LOCATOR => {
                    items.parent_locator = true;
                    continue;
                }
                _ => continue,
            };
            let Some(at) = at else {
                return self.fail("metadata item offset overflows".into());
            };
            let mut cap = Capture::new(at, 8);
            cap.feed(pos, chunk);
            *slot = Some(cap);
        }
        self.items = Some(items);
    }
}

impl Detector for Vhdx {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        if self.dead {
            return;
        }
        self.ident.feed(pos, chunk);
        let id = self.ident.data();
        if id[..] != IDENT[..id.len()] {
            self.dead = true;
            return self.fail(String::new());
        }
        if self.error.is_some() {
            return;
        }
        self.regions.feed(pos, chunk);
        if self.meta.is_none() && self.regions.is_complete() {
            self.parse_regions(pos, chunk);
        }
        if let Some(meta) = self.meta.as_mut() {
            meta.feed(pos, chunk);
            if self.items.is_none() && meta.is_complete() {
                self.parse_meta(pos, chunk);
            }
        }
        if let Some(items) = self.items.as_mut() {
            for cap in [&mut items.size, &mut items.params].into_iter().flatten() {
                cap.feed(pos, chunk);
            }
        }
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        if self.dead || !self.ident.is_complete() {
            return None;
        }
        let mut d = Detection::new(DiskFormat::Vhdx);
        if let Some(e) = &self.error {
            d.malformed(e.clone());
            return Some(d);
        }
        let Some(items) = &self.items else {
            let missed = self.meta.as_ref().is_some_and(Capture::missed);
            if missed {
                d.malformed("metadata region precedes the region table");
            } else {
                d.truncated(format!(
                    "region or metadata table missing in {} bytes",
                    end.len
                ));
            }
            return Some(d);
        };
        if items.parent_locator {
            d.unsafe_("differencing VHDX (parent locator)");
        }
        match &items.params {
            Some(p) if p.is_complete() => {
                if le32(p.data(), 4) & 2 != 0 {
                    d.unsafe_("differencing VHDX (HasParent flag)");
                }
            }
            _ => d.malformed("file parameters item missing or unreadable"),
        }
        match &items.size {
            Some(s) if s.is_complete() => d.virtual_size = Some(le64(s.data(), 0)),
            _ => d.malformed("virtual disk size item missing or unreadable"),
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Rejection};

    fn image(parent: bool) -> Vec<u8> {
        let mut img = vec![0u8; 0x30_0000 + 0x2_0000];
        img[..8].copy_from_slice(IDENT);
        let rt = REGION_TABLE as usize;
        img[rt..rt + 4].copy_from_slice(b"regi");
        img[rt + 8] = 1;
        img[rt + 16..rt + 32].copy_from_slice(&METADATA_REGION);
        img[rt + 32..rt + 40].copy_from_slice(&0x30_0000u64.to_le_bytes());
        let m = 0x30_0000;
        img[m..m + 8].copy_from_slice(b"metadata");
        img[m + 10] = 3;
        let entries: [([u8; 16], u32); 3] = [
            (FILE_PARAMETERS, 0x10000),
            (VIRTUAL_DISK_SIZE, 0x10008),
            (PARENT_LOCATOR, 0x10010),
        ];
        for (i, (id, off)) in entries.iter().enumerate().take(if parent { 3 } else { 2 }) {
            let e = m + 32 + i * 32;
            img[e..e + 16].copy_from_slice(id);
            img[e + 16..e + 20].copy_from_slice(&off.to_le_bytes());
        }
        img[m + 0x10008..m + 0x10010].copy_from_slice(&(16u64 << 20).to_le_bytes());
        img
    }

    use crate::inspector::report_in_chunks as report;

    #[test]
    fn reads_virtual_size() {
        for chunk in [4096, 65536 + 3, 1 << 20, 4 << 20] {
            let r = report(&image(false), chunk);
            assert_eq!(r.detected(), DiskFormat::Vhdx);
            assert_eq!(
                r.verdict(DiskFormat::Vhdx, &Limits::default())
                    .unwrap()
                    .virtual_size,
                16 << 20
            );
        }
    }

    #[test]
    fn parent_refused() {
        let r = report(&image(true), 8192);
        assert!(matches!(
            r.verdict(DiskFormat::Vhdx, &Limits::default()),
            Err(Rejection::Unsafe { .. })
        ));
    }

    #[test]
    fn truncated_or_bad() {
        let img = image(false);
        let r = report(&img[..0x40000], 4096);
        assert!(matches!(
            r.verdict(DiskFormat::Vhdx, &Limits::default()),
            Err(Rejection::Malformed { .. })
        ));
        let mut bad = img.clone();
        bad[REGION_TABLE as usize + 8..REGION_TABLE as usize + 12]
            .copy_from_slice(&5000u32.to_le_bytes());
        assert!(
            report(&bad, 4096)
                .verdict(DiskFormat::Vhdx, &Limits::default())
                .is_err()
        );
        // Metadata region pointing backwards cannot be read in stream order.
        let mut back = img;
        let rt = REGION_TABLE as usize;
        back[rt + 32..rt + 40].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(
            report(&back, 4096)
                .verdict(DiskFormat::Vhdx, &Limits::default())
                .is_err()
        );
    }
}

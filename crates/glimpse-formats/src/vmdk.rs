//! VMDK detection and validation: hosted sparse extents (`KDMV` header with
//! an embedded descriptor at sector 1, at most 1 MiB), stream-optimized
//! footers (gdOffset = GD_AT_END), legacy `COWD` extents, and all-text
//! descriptor files.
//!
//! Only `monolithicSparse` and `streamOptimized` are acceptable, with exactly
//! one SPARSE extent, no path in any extent line, no `parentFileNameHint`
//! (a backing file), and every descriptor line a comment, a `ddb…` line, a
//! `key=value` pair or an extent line (the oslo.utils allow-list). A text-only
//! descriptor always refers to external extent files and is always refused.

use crate::DiskFormat;
use crate::bytes::{has_at, le16, le32, le64, printable};
use crate::capture::{Capture, MAX_CAPTURE};
use crate::inspector::{Detector, End};
use crate::report::Detection;

const MAGIC: &[u8; 4] = b"KDMV";
const COWD: &[u8; 4] = b"COWD";
const SECTOR: u64 = 512;
const HEADER: usize = 512;
/// Largest embedded or text descriptor we read (qemu and oslo: 1 MiB).
const DESC_MAX: usize = 1 << 20;
const GD_AT_END: u64 = u64::MAX;
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not enough bytes yet to tell.
    Undecided,
    /// `KDMV` sparse header; the capture covers header + descriptor.
    Sparse,
    /// Leading bytes are text: maybe a descriptor file (capture up to 1 MiB).
    Text,
    /// Legacy VMDK3 / ESX `COWD` sparse extent (only the magic matters).
    Cowd,
    Dead,
}

pub(crate) struct Vmdk {
    cap: Capture,
    mode: Mode,
    /// Bytes of `cap` already checked to be text.
    scanned: usize,
}

impl Vmdk {
    pub(crate) fn new() -> Self {
        Vmdk {
            cap: Capture::new(0, HEADER),
            mode: Mode::Undecided,
            scanned: 0,
        }
    }

    fn die(&mut self) {
        self.mode = Mode::Dead;
        self.cap.release();
    }

    /// Checks newly captured bytes for text; returns the offset of a NUL if any.
    fn scan_text(&mut self) -> Result<Option<usize>, ()> {
        let d = self.cap.data();
        for (i, &c) in d.iter().enumerate().skip(self.scanned) {
            if c == 0 {
                return Ok(Some(i));
            }
            if !is_text(c) && i < HEADER {
                return Err(());
            }
        }
        self.scanned = d.len();
        Ok(None)
    }
}

/// Printable ASCII or ASCII whitespace (as oslo.utils' text heuristic).
fn is_text(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl Detector for Vmdk {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.cap.feed(pos, chunk);
        if self.mode == Mode::Undecided {
            let d = self.cap.data();
            if has_at(d, 0, MAGIC) {
                self.mode = Mode::Sparse;
                self.cap.set_len(HEADER);
            } else if has_at(d, 0, COWD) {
                self.mode = Mode::Cowd;
                self.cap.set_len(4);
            } else if d.len() >= 4 || !(MAGIC.starts_with(d) || COWD.starts_with(d)) {
                self.mode = Mode::Text;
                self.cap.set_len(DESC_MAX);
                self.cap.feed(pos, chunk);
            }
        }
        match self.mode {
            Mode::Sparse if self.cap.data().len() == HEADER => {
                // Header complete: extend the window over a sane descriptor.
                let h = self.cap.data();
                let (desc_sec, desc_num) = (le64(h, 28), le64(h, 36));
                if desc_sec == 1 && (1..=(DESC_MAX as u64 / SECTOR)).contains(&desc_num) {
                    self.cap
                        .set_len(HEADER + desc_num as usize * SECTOR as usize);
                    self.cap.feed(pos, chunk);
                }
            }
            Mode::Text => match self.scan_text() {
                Err(()) => self.die(),
                // The descriptor ends at the first NUL.
                Ok(Some(nul)) => self.cap.set_len(nul),
                Ok(None) => {}
            },
            _ => {}
        }
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        match self.mode {
            Mode::Sparse => Some(check_sparse(self.cap.data(), self.cap.is_complete(), end)),
            Mode::Text => check_text(self.cap.data()),
            Mode::Cowd => {
                let mut d = Detection::new(DiskFormat::Vmdk);
                d.unsafe_("legacy COWD (VMDK3/ESX) sparse extents are not allowed");
                Some(d)
            }
            Mode::Undecided | Mode::Dead => None,
        }
    }
}

fn check_sparse(buf: &[u8], complete: bool, end: &End<'_>) -> Detection {
    let mut d = Detection::new(DiskFormat::Vmdk);
    if buf.len() < HEADER {
        d.malformed(format!(
            "sparse header truncated: {} bytes, need 512",
            buf.len()
        ));
        return d;
    }
    let h = &buf[..HEADER];
    let version = le32(h, 4);
    let capacity = le64(h, 12);
    let grain = le64(h, 20);
    let (desc_sec, desc_num) = (le64(h, 28), le64(h, 36));
    let gtes = le32(h, 44);
    let rgd = le64(h, 48);
    let gd = le64(h, 56);
    match capacity.checked_mul(SECTOR) {
        Some(v) => d.virtual_size = Some(v),
        None => d.malformed(format!("capacity {capacity} sectors overflows")),
    }
    if !(1..=3).contains(&version) {
        d.malformed(format!("unsupported sparse extent version {version}"));
    }
    if grain == 0 || !grain.is_power_of_two() {
        d.malformed(format!("grain size {grain} is not a power of two"));
    }
    if gtes == 0 || gtes > 512 {
        d.malformed(format!("{gtes} grain table entries per table (1..=512)"));
    }
    if desc_sec != 1 {
        d.malformed(format!(
            "embedded descriptor must start at sector 1, not {desc_sec}"
        ));
        return d;
    }
    if desc_num == 0 || desc_num > DESC_MAX as u64 / SECTOR {
        d.malformed(format!(
            "embedded descriptor size {desc_num} sectors (allowed 1..=2048)"
        ));
        return d;
    }
    if !complete {
        d.truncated("embedded descriptor runs past the end of the image");
        return d;
    }
    check_descriptor(&mut d, &buf[HEADER..], true);
    for (what, sector) in [("redundant grain directory", rgd), ("grain directory", gd)] {
        if sector != 0 && sector != GD_AT_END {
            check_inside(&mut d, what, sector, end.len);
        }
    }
    if gd == GD_AT_END {
        check_footer(&mut d, h, end);
    }
    d
}

fn check_inside(d: &mut Detection, what: &str, sector: u64, len: u64) {
    match sector.checked_mul(SECTOR) {
        Some(off) if off < len => {}
        _ => d.truncated(format!(
            "{what} at sector {sector} lies past the end of the image"
        )),
    }
}

/// Stream-optimized footer: footer marker, footer (a header copy), end-of-stream marker.
fn check_footer(d: &mut Detection, h: &[u8], end: &End<'_>) {
    let t = end.tail;
    if t.len() < 1536 || end.len < 2048 {
        d.truncated("footer expected (grain directory at end) but the image is too short");
        return;
    }
    let t = &t[t.len() - 1536..];
    let (marker, footer, eos) = (&t[..512], &t[512..1024], &t[1024..]);
    let pad_zero = |m: &[u8]| m[16..].iter().all(|&b| b == 0);
    if le32(marker, 8) != 0 || le32(marker, 12) != MARKER_FOOTER || !pad_zero(marker) {
        d.malformed("footer marker is invalid");
    }
    if le64(eos, 0) != 0 || le32(eos, 8) != 0 || le32(eos, 12) != MARKER_EOS || !pad_zero(eos) {
        d.malformed("end-of-stream marker is invalid");
    }
    if !has_at(footer, 0, MAGIC) {
        d.malformed("footer has no KDMV signature");
        return;
    }
    // Everything before gdOffset (magic .. rgdOffset) must mirror the header.
    if footer[..56] != h[..56] || le64(footer, 64) != le64(h, 64) || le16(footer, 77) != le16(h, 77)
    {
        d.malformed("footer does not mirror the header");
    }
    let fgd = le64(footer, 56);
    if fgd == GD_AT_END {
        d.malformed("footer points to another footer");
    } else if fgd == 0 {
        d.malformed("footer has no grain directory");
    } else {
        check_inside(d, "footer grain directory", fgd, end.len);
    }
}

/// A text-only descriptor file: detected when it has a `createType`.
fn check_text(buf: &[u8]) -> Option<Detection> {
    let text = buf.split(|&b| b == 0).next().unwrap_or_default();
    if !text
        .to_ascii_lowercase()
        .windows(12)
        .any(|w| w == b"createtype=\"")
    {
        return None;
    }
    let mut d = Detection::new(DiskFormat::Vmdk);
    check_descriptor(&mut d, text, false);
    d.unsafe_("descriptor-only VMDK: its extents are always external files");
    Some(d)
}

/// The oslo.utils allow-list parse, plus createType, extent and parent checks.
fn check_descriptor(d: &mut Detection, raw: &[u8], embedded: bool) {
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    if !raw.is_ascii() {
        d.malformed("descriptor is not ASCII text");
        return;
    }
    let text = String::from_utf8_lossy(raw);
    let mut create_type = None;
    let mut extents = 0usize;
    // Keywords are case-insensitive; messages quote the original line.
    for line in text.lines().map(str::trim) {
        let lower = line.to_ascii_lowercase();
        if line.is_empty() || line.starts_with('#') || lower.starts_with("ddb") {
            continue;
        }
        let first = lower.split(' ').next().unwrap_or_default();
        if let Some((key, value)) = line.split_once('=').filter(|(k, _)| !k.contains(' ')) {
            let value = value.trim().trim_matches('"');
            match key.to_ascii_lowercase().as_str() {
                "createtype" => create_type = Some(value.to_string()),
                "parentfilenamehint" => {
                    d.unsafe_(format!(
                        "parentFileNameHint names a backing file ({})",
                        printable(value.as_bytes(), 200)
                    ));
                }
                _ => {}
            }
        } else if matches!(first, "rw" | "rdonly" | "noaccess") {
            extents += 1;
            if line.contains('/') {
                d.unsafe_(format!(
                    "extent line names a path: {}",
                    printable(line.as_bytes(), 200)
                ));
            }
            let kind = lower.split_whitespace().nth(2).unwrap_or_default();
            if embedded && kind != "sparse" {
                d.unsafe_(format!(
                    "extent type {} in a sparse VMDK",
                    printable(kind.as_bytes(), 40)
                ));
            }
        } else {
            d.unsafe_(format!(
                "descriptor line not understood: {}",
                printable(line.as_bytes(), 80)
            ));
        }
    }
    match create_type
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("monolithicsparse" | "streamoptimized") => {}
        Some(_) => d.unsafe_(format!(
            "createType {} is not allowed (only monolithicSparse and streamOptimized)",
            printable(create_type.as_deref().unwrap_or_default().as_bytes(), 64)
        )),
        None => d.malformed("descriptor has no createType"),
    }
    if extents != 1 {
        d.unsafe_(format!(
            "descriptor has {extents} extents, exactly one is allowed"
        ));
    }
}

/// Length cap sanity: the window never exceeds the global capture cap.
const _: () = assert!(HEADER + DESC_MAX <= MAX_CAPTURE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FindingKind;
    use crate::{Inspector, Limits};

    const DESC: &str = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 131072 SPARSE \"disk.vmdk\"\n\n#DDB\nddb.adapterType = \"ide\"\n";

    fn sparse(desc: &str) -> Vec<u8> {
        let mut img = vec![0u8; 0x10000];
        img[0..4].copy_from_slice(MAGIC);
        img[4..8].copy_from_slice(&1u32.to_le_bytes());
        img[12..20].copy_from_slice(&131072u64.to_le_bytes());
        img[20..28].copy_from_slice(&128u64.to_le_bytes());
        img[28..36].copy_from_slice(&1u64.to_le_bytes());
        img[36..44].copy_from_slice(&20u64.to_le_bytes());
        img[44..48].copy_from_slice(&512u32.to_le_bytes());
        img[48..56].copy_from_slice(&21u64.to_le_bytes());
        img[56..64].copy_from_slice(&30u64.to_le_bytes());
        img[512..512 + desc.len()].copy_from_slice(desc.as_bytes());
        img
    }

    fn inspect(img: &[u8]) -> Option<Detection> {
        crate::inspector::report_in_chunks(img, 333)
            .detections()
            .iter()
            .find(|d| d.format == DiskFormat::Vmdk)
            .cloned()
    }

    fn first_kind(img: &[u8]) -> Option<FindingKind> {
        inspect(img).unwrap().findings.first().map(|f| f.kind)
    }

    #[test]
    fn clean_sparse() {
        let d = inspect(&sparse(DESC)).unwrap();
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.virtual_size, Some(64 << 20));
    }

    #[test]
    fn descriptor_refusals() {
        for (from, to) in [
            (
                "RW 131072 SPARSE \"disk.vmdk\"",
                "RW 131072 SPARSE \"/etc/passwd\"",
            ),
            (
                "createType=\"monolithicSparse\"",
                "createType=\"monolithicFlat\"",
            ),
            (
                "parentCID=ffffffff",
                "parentCID=ffffffff\nparentFileNameHint=\"parent.vmdk\"",
            ),
            ("version=1", "version=1\nthis is junk"),
            (
                "RW 131072 SPARSE \"disk.vmdk\"",
                "RW 131072 FLAT \"disk-flat.vmdk\" 0",
            ),
            ("#DDB", "RW 1 SPARSE \"b.vmdk\""),
        ] {
            let desc = DESC.replace(from, to);
            assert_eq!(
                first_kind(&sparse(&desc)),
                Some(FindingKind::Unsafe),
                "{to}"
            );
        }
        let desc = DESC.replace("createType=\"monolithicSparse\"", "");
        assert_eq!(first_kind(&sparse(&desc)), Some(FindingKind::Malformed));
    }

    #[test]
    fn bad_descriptor_location() {
        let mut img = sparse(DESC);
        img[28..36].copy_from_slice(&0x7_ffff_ffffu64.to_le_bytes());
        assert_eq!(first_kind(&img), Some(FindingKind::Malformed));
        let mut img = sparse(DESC);
        img[36..44].copy_from_slice(&0xffff_ffff_ffffu64.to_le_bytes());
        assert_eq!(first_kind(&img), Some(FindingKind::Malformed));
        let img = sparse(DESC);
        assert_eq!(first_kind(&img[..2000]), Some(FindingKind::Truncated));
    }

    fn with_footer(marker_size: u32, footer_gd: u64) -> Vec<u8> {
        let mut img = sparse(DESC);
        let header = img[..512].to_vec();
        img[56..64].copy_from_slice(&GD_AT_END.to_le_bytes());
        let mut marker = vec![0u8; 512];
        marker[0..8].copy_from_slice(&1u64.to_le_bytes());
        marker[8..12].copy_from_slice(&marker_size.to_le_bytes());
        marker[12..16].copy_from_slice(&MARKER_FOOTER.to_le_bytes());
        let mut footer = header;
        footer[56..64].copy_from_slice(&footer_gd.to_le_bytes());
        img.extend_from_slice(&marker);
        img.extend_from_slice(&footer);
        img.extend_from_slice(&[0u8; 512]);
        img
    }

    #[test]
    fn footers() {
        assert!(inspect(&with_footer(0, 30)).unwrap().findings.is_empty());
        assert_eq!(
            first_kind(&with_footer(7, 30)),
            Some(FindingKind::Malformed)
        );
        assert_eq!(
            first_kind(&with_footer(0, GD_AT_END)),
            Some(FindingKind::Malformed)
        );
        let mut img = with_footer(0, 30);
        let n = img.len();
        img[n - 1024 + 12] ^= 1; // capacity differs
        assert_eq!(first_kind(&img), Some(FindingKind::Malformed));
    }

    #[test]
    fn text_descriptors_are_refused_and_detected() {
        let flat = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n";
        let d = inspect(flat.as_bytes()).unwrap();
        assert_eq!(d.findings[0].kind, FindingKind::Unsafe);
        // Even an "allowed" createType in a text file names an external extent.
        let d = inspect(DESC.as_bytes()).unwrap();
        assert!(
            d.findings
                .iter()
                .any(|f| f.reason.contains("descriptor-only"))
        );
        // Plain text without createType is raw.
        assert!(inspect(b"hello world\n").is_none());
        // Binary data is not a descriptor.
        let mut bin = b"createType=\"x\"".to_vec();
        bin.push(0xff);
        assert!(inspect(&bin).is_none() || bin.len() < 512);
        let mut i = Inspector::new();
        i.feed(flat.as_bytes());
        assert!(
            i.finish()
                .verdict(DiskFormat::Raw, &Limits::default())
                .is_err()
        );
    }

    #[test]
    fn cowd_is_refused() {
        let mut img = vec![0u8; 1024];
        img[..4].copy_from_slice(COWD);
        assert_eq!(first_kind(&img), Some(FindingKind::Unsafe));
    }

    #[test]
    fn text_capture_stops_at_nul_and_binary() {
        let mut v = Vmdk::new();
        let mut data = vec![b'a'; 600];
        data.extend_from_slice(&[0u8; 4000]);
        v.feed(0, &data);
        assert!(v.cap.data().len() <= 600);
        let mut v = Vmdk::new();
        v.feed(0, &[0x90u8; 100]);
        assert_eq!(v.mode, Mode::Dead);
        assert_eq!(v.cap.data().len(), 0);
    }
}

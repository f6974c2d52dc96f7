//! qcow2 (and legacy qcow v1, same magic) detection and header validation.
//!
//! Captures at most the first 64 KiB of a stream that starts with `QFI\xfb`
//! and checks, following qemu's `docs/interop/qcow2.txt` and `block/qcow2.c`:
//! version 2/3, backing file, external data file (incompatible bit 2 and the
//! data-file name extension), the corrupt bit, unknown incompatible bits
//! (>= 4, so extended L2 is refused), legacy AES encryption, cluster_bits,
//! header_length, L1 size vs virtual size, table alignment, refcount table
//! size, snapshot table, and (once the length is known) that the tables lie
//! inside the file.

use crate::DiskFormat;
use crate::bytes::{be32, be64, div_ceil, printable};
use crate::capture::Head;
use crate::inspector::{Detector, End};
use crate::report::Detection;

const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Bytes captured from the start of the file: header, extensions, backing name.
const HEAD_CAP: usize = 64 * 1024;
/// qemu's QCOW_MAX_L1_SIZE (bytes).
const MAX_L1_BYTES: u64 = 32 << 20;
/// qemu's QCOW_MAX_REFTABLE_SIZE (bytes).
const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// qemu's QCOW_MAX_SNAPSHOTS.
const MAX_SNAPSHOTS: u32 = 65536;
/// qemu's limit on the backing file name length.
const MAX_BACKING_NAME: u32 = 1023;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN_OK: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION;

const EXT_DATA_FILE: u32 = 0x4441_5441;

pub(crate) struct Qcow2(Head);

impl Qcow2 {
    pub(crate) fn new() -> Self {
        Qcow2(Head::new(MAGIC, HEAD_CAP))
    }
}

impl Detector for Qcow2 {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.0.feed(pos, chunk);
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let h = self.0.matched()?;
        Some(check(h, end.len))
    }
}

/// The fields of a qcow2 header (version 2, or 3 with its extra fields).
struct Header {
    version: u32,
    backing_offset: u64,
    backing_size: u32,
    cluster_bits: u32,
    size: u64,
    crypt_method: u32,
    l1_size: u32,
    l1_offset: u64,
    refcount_offset: u64,
    refcount_clusters: u32,
    nb_snapshots: u32,
    snapshots_offset: u64,
    incompat: u64,
    refcount_order: u32,
    header_length: u32,
}

impl Header {
    /// Reads a header of at least 72 bytes (104 for version 3).
    fn read(h: &[u8], version: u32) -> Header {
        let (incompat, refcount_order, header_length) = if version == 3 {
            (be64(h, 72), be32(h, 96), be32(h, 100))
        } else {
            (0, 4, 72)
        };
        Header {
            version,
            backing_offset: be64(h, 8),
            backing_size: be32(h, 16),
            cluster_bits: be32(h, 20),
            size: be64(h, 24),
            crypt_method: be32(h, 32),
            l1_size: be32(h, 36),
            l1_offset: be64(h, 40),
            refcount_offset: be64(h, 48),
            refcount_clusters: be32(h, 56),
            nb_snapshots: be32(h, 60),
            snapshots_offset: be64(h, 64),
            incompat,
            refcount_order,
            header_length,
        }
    }
}

/// Validates a qcow2 header (`h` = the first up-to-64 KiB, `len` = file length).
fn check(h: &[u8], len: u64) -> Detection {
    let mut d = Detection::new(DiskFormat::Qcow2);
    if h.len() < 72 {
        d.malformed(format!("header truncated: {} bytes, need 72", h.len()));
        return d;
    }
    let version = be32(h, 4);
    if version != 2 && version != 3 {
        d.unsafe_(format!(
            "qcow version {version} is not supported (only 2 and 3)"
        ));
        return d;
    }
    if version == 3 && h.len() < 104 {
        d.malformed(format!(
            "version 3 header truncated: {} bytes, need 104",
            h.len()
        ));
        return d;
    }
    let hdr = Header::read(h, version);
    d.virtual_size = Some(hdr.size);
    check_features(&mut d, h, &hdr);
    let Some(cluster) = check_sanity(&mut d, &hdr) else {
        return d;
    };
    check_tables(&mut d, &hdr, cluster, len);
    check_extensions(&mut d, h, hdr.header_length, hdr.backing_offset, cluster);
    d
}

/// References and features: a backing file, an external data file, extended L2 entries,
/// unknown incompatible features and legacy encryption are unsafe.
fn check_features(d: &mut Detection, h: &[u8], hdr: &Header) {
    let (backing_offset, backing_size, incompat) =
        (hdr.backing_offset, hdr.backing_size, hdr.incompat);
    if backing_offset != 0 {
        let name = usize::try_from(backing_offset)
            .ok()
            .filter(|_| backing_size <= MAX_BACKING_NAME)
            .and_then(|o| h.get(o..o.checked_add(backing_size as usize)?))
            .map_or_else(|| "<unreadable>".to_string(), |n| printable(n, 200));
        d.unsafe_(format!("has a backing file ({name})"));
    }
    if incompat & INCOMPAT_DATA_FILE != 0 {
        d.unsafe_("uses an external data file (incompatible feature bit 2)");
    }
    if incompat & INCOMPAT_EXTL2 != 0 {
        d.unsafe_("extended L2 entries (incompatible feature bit 4) are not allowed");
    }
    if incompat & !(INCOMPAT_KNOWN_OK | INCOMPAT_EXTL2) != 0 {
        d.unsafe_(format!(
            "unknown incompatible feature bits {:#x}",
            incompat & !INCOMPAT_KNOWN_OK
        ));
    }
    match hdr.crypt_method {
        0 => {}
        1 => d.unsafe_("legacy AES-CBC encryption (crypt_method 1) is not allowed"),
        2 => d.encrypted = true,
        m => d.malformed(format!("unknown crypt_method {m}")),
    }
}

/// Header sanity (malformed); the cluster size, or `None` when the header is too broken to
/// look further.
fn check_sanity(d: &mut Detection, hdr: &Header) -> Option<u64> {
    let (version, cluster_bits, header_length) = (hdr.version, hdr.cluster_bits, hdr.header_length);
    if hdr.incompat & INCOMPAT_CORRUPT != 0 {
        d.malformed("image is marked corrupt (incompatible feature bit 1)");
    }
    if hdr.backing_offset != 0 && hdr.backing_size > MAX_BACKING_NAME {
        d.malformed(format!(
            "backing file name length {} exceeds {MAX_BACKING_NAME}",
            hdr.backing_size
        ));
    }
    if !(9..=21).contains(&cluster_bits) {
        d.malformed(format!("cluster_bits {cluster_bits} outside 9..=21"));
        return None;
    }
    let cluster = 1u64 << cluster_bits;
    if version == 3 && (header_length < 104 || u64::from(header_length) > cluster) {
        d.malformed(format!(
            "header_length {header_length} must be within 104..={cluster}"
        ));
        return None;
    }
    if version == 3 && hdr.refcount_order > 6 {
        d.malformed(format!("refcount_order {} exceeds 6", hdr.refcount_order));
    }
    Some(cluster)
}

/// The L1, refcount and snapshot tables: sizes within limits, placed inside the file.
fn check_tables(d: &mut Detection, hdr: &Header, cluster: u64, len: u64) {
    let (size, l1_size, refcount_clusters, nb_snapshots) = (
        hdr.size,
        hdr.l1_size,
        hdr.refcount_clusters,
        hdr.nb_snapshots,
    );
    // L1 table: one entry maps cluster * (cluster / 8) bytes.
    let per_l1 = 1u64 << (2 * hdr.cluster_bits - 3);
    let l1_needed = div_ceil(size, per_l1);
    let l1_bytes = u64::from(l1_size) * 8;
    if u64::from(l1_size) < l1_needed {
        d.malformed(format!(
            "L1 table too small: {l1_size} entries for {l1_needed} needed by virtual size {size}"
        ));
    }
    if l1_bytes > MAX_L1_BYTES {
        d.malformed(format!(
            "L1 table too large: {l1_bytes} bytes (max {MAX_L1_BYTES})"
        ));
    }
    check_table(d, "L1 table", hdr.l1_offset, l1_bytes, cluster, len);

    let reftable_bytes = u64::from(refcount_clusters) * cluster;
    if refcount_clusters == 0 {
        d.malformed("no refcount table");
    } else if reftable_bytes > MAX_REFTABLE_BYTES {
        d.malformed(format!(
            "refcount table too large: {reftable_bytes} bytes (max {MAX_REFTABLE_BYTES})"
        ));
    }
    let refcount_offset = hdr.refcount_offset;
    check_table(
        d,
        "refcount table",
        refcount_offset,
        reftable_bytes,
        cluster,
        len,
    );

    if nb_snapshots > MAX_SNAPSHOTS {
        d.malformed(format!("{nb_snapshots} snapshots (max {MAX_SNAPSHOTS})"));
    } else if nb_snapshots > 0 {
        // Snapshot headers are at least 40 bytes each.
        let bytes = u64::from(nb_snapshots) * 40;
        check_table(
            d,
            "snapshot table",
            hdr.snapshots_offset,
            bytes,
            cluster,
            len,
        );
    }
}

/// A table of `bytes` at `offset`: cluster aligned, not in cluster 0, inside the file.
fn check_table(d: &mut Detection, what: &str, offset: u64, bytes: u64, cluster: u64, len: u64) {
    if bytes == 0 {
        return;
    }
    if !offset.is_multiple_of(cluster) {
        d.malformed(format!("{what} offset {offset:#x} is not cluster aligned"));
    } else if offset == 0 {
        d.malformed(format!("{what} overlaps the header"));
    } else {
        match offset.checked_add(bytes) {
            None => d.malformed(format!("{what} offset {offset:#x} overflows")),
            Some(end) if end > len => d.truncated(format!(
                "{what} ends at {end:#x}, past the end of the image ({len:#x})"
            )),
            Some(_) => {}
        }
    }
}

/// Walks the header extensions in cluster 0 (up to the backing file name).
fn check_extensions(
    d: &mut Detection,
    h: &[u8],
    header_length: u32,
    backing_offset: u64,
    cluster: u64,
) {
    let mut end = cluster;
    if backing_offset != 0 {
        end = end.min(backing_offset);
    }
    let end = usize::try_from(end).unwrap_or(usize::MAX);
    let mut off = header_length as usize;
    while off.saturating_add(8) <= end {
        if off + 8 > h.len() {
            if h.len() < HEAD_CAP {
                d.truncated("header extensions run past the end of the image");
            } else {
                d.malformed("header extensions extend beyond the first 64 KiB");
            }
            return;
        }
        let typ = be32(h, off);
        let ext_len = be32(h, off + 4) as usize;
        if typ == 0 {
            return;
        }
        let data = off + 8;
        let Some(data_end) = data.checked_add(ext_len).filter(|e| *e <= end) else {
            d.malformed(format!("header extension {typ:#010x} overruns cluster 0"));
            return;
        };
        if typ == EXT_DATA_FILE {
            let name = h.get(data..data_end.min(h.len())).unwrap_or_default();
            d.unsafe_(format!(
                "names an external data file ({})",
                printable(name, 200)
            ));
        }
        // Extensions are padded to 8 bytes.
        off = data_end.saturating_add(7) & !7;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::FindingKind;

    /// A minimal valid qcow2 v3 file: 64 KiB clusters, 64 MiB virtual size.
    pub(crate) fn image() -> Vec<u8> {
        let mut h = vec![0u8; 0x40000];
        h[0..4].copy_from_slice(MAGIC);
        put32(&mut h, 4, 3);
        put32(&mut h, 20, 16);
        put64(&mut h, 24, 64 << 20);
        put32(&mut h, 36, 1);
        put64(&mut h, 40, 0x30000);
        put64(&mut h, 48, 0x10000);
        put32(&mut h, 56, 1);
        put32(&mut h, 96, 4);
        put32(&mut h, 100, 112);
        h
    }

    pub(crate) fn put32(h: &mut [u8], off: usize, v: u32) {
        h[off..off + 4].copy_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn put64(h: &mut [u8], off: usize, v: u64) {
        h[off..off + 8].copy_from_slice(&v.to_be_bytes());
    }

    fn kinds(img: &[u8]) -> Vec<FindingKind> {
        check(&img[..img.len().min(HEAD_CAP)], img.len() as u64)
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn clean_image_has_no_findings() {
        let img = image();
        let d = check(&img[..HEAD_CAP], img.len() as u64);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.virtual_size, Some(64 << 20));
    }

    #[test]
    fn backing_file_is_unsafe() {
        let mut img = image();
        put64(&mut img, 8, 0x200);
        put32(&mut img, 16, 11);
        img[0x200..0x20b].copy_from_slice(b"/etc/passwd");
        let d = check(&img[..HEAD_CAP], img.len() as u64);
        assert_eq!(d.findings[0].kind, FindingKind::Unsafe);
        assert!(d.findings[0].reason.contains("/etc/passwd"));
    }

    #[test]
    fn feature_bits() {
        for (bits, kind) in [
            (INCOMPAT_DATA_FILE, FindingKind::Unsafe),
            (INCOMPAT_EXTL2, FindingKind::Unsafe),
            (1 << 40, FindingKind::Unsafe),
            (INCOMPAT_CORRUPT, FindingKind::Malformed),
        ] {
            let mut img = image();
            put64(&mut img, 72, bits);
            assert_eq!(kinds(&img), vec![kind], "bits {bits:#x}");
        }
        for ok in [INCOMPAT_DIRTY, INCOMPAT_COMPRESSION] {
            let mut img = image();
            put64(&mut img, 72, ok);
            assert!(kinds(&img).is_empty());
        }
    }

    #[test]
    fn crypt_methods() {
        let mut img = image();
        put32(&mut img, 32, 1);
        assert_eq!(kinds(&img), vec![FindingKind::Unsafe]);
        put32(&mut img, 32, 2);
        let d = check(&img[..HEAD_CAP], img.len() as u64);
        assert!(d.encrypted && d.findings.is_empty());
        put32(&mut img, 32, 3);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
    }

    #[test]
    fn geometry_checks() {
        let cases: [(usize, u64, bool); 7] = [
            (20, 31, false),             // cluster_bits
            (24, u64::MAX - 511, false), // 16 EiB: L1 too small
            (36, 0xffff_ffff, false),    // l1_size too large
            (36, 0, false),              // l1_size too small
            (40, 0x30001, false),        // unaligned
            (56, 0xffff_ffff, false),    // refcount table huge
            (100, 0xffff_fff8, false),   // header_length huge
        ];
        for (off, value, _) in cases {
            let mut img = image();
            if matches!(off, 24 | 40) {
                put64(&mut img, off, value);
            } else {
                put32(&mut img, off, value as u32);
            }
            let k = kinds(&img);
            assert!(k.contains(&FindingKind::Malformed), "field {off}: {k:?}");
        }
    }

    #[test]
    fn tables_past_end_are_truncated_not_malformed() {
        let img = image();
        let d = check(&img[..HEAD_CAP], HEAD_CAP as u64);
        assert!(
            d.findings.iter().all(|f| f.kind == FindingKind::Truncated),
            "{:?}",
            d.findings
        );
        assert!(!d.findings.is_empty());
    }

    #[test]
    fn versions_and_truncation() {
        let mut img = image();
        put32(&mut img, 4, 1);
        assert_eq!(kinds(&img), vec![FindingKind::Unsafe]);
        put32(&mut img, 4, 4);
        assert_eq!(kinds(&img), vec![FindingKind::Unsafe]);
        let d = check(&image()[..40], 40);
        assert_eq!(d.findings[0].kind, FindingKind::Malformed);
        let mut v2 = image();
        put32(&mut v2, 4, 2);
        v2[72..112].fill(0);
        assert!(kinds(&v2).is_empty());
    }

    #[test]
    fn data_file_extension_is_unsafe_even_without_bit() {
        let mut img = image();
        put32(&mut img, 112, EXT_DATA_FILE);
        put32(&mut img, 116, 11);
        img[120..131].copy_from_slice(b"/etc/passwd");
        let d = check(&img[..HEAD_CAP], img.len() as u64);
        assert_eq!(d.findings.len(), 1);
        assert!(d.findings[0].reason.contains("/etc/passwd"));
        // An extension whose length overruns the cluster is malformed.
        put32(&mut img, 116, 0xffff_fff0);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
    }

    #[test]
    fn bomb_is_limit_not_malformed() {
        // 1 EiB with 2 MiB clusters, file cut before the L1 table.
        let mut img = image();
        put32(&mut img, 20, 21);
        put64(&mut img, 24, 1 << 60);
        put32(&mut img, 36, 1 << 21);
        put64(&mut img, 40, 0x60_0000);
        put64(&mut img, 48, 0x20_0000);
        let d = check(&img[..HEAD_CAP], 0x60_0000);
        assert!(
            d.findings.iter().all(|f| f.kind == FindingKind::Truncated),
            "{:?}",
            d.findings
        );
    }
}

//! qcow2 (and legacy qcow v1, same magic) detection and header validation.
//!
//! Captures at most the first 64 KiB of a stream that starts with `QFI\xfb`
//! and checks, following qemu's `docs/interop/qcow2.txt` and `block/qcow2.c`:
//! version 2/3, backing file, external data file (incompatible bit 2 and the
//! data-file name extension), the corrupt bit, unknown incompatible bits
//! (>= 4, so extended L2 is refused), legacy AES encryption, cluster_bits,
//! header_length, L1 size vs virtual size, table alignment, refcount table
//! size, snapshot table, the header extensions qemu reads (data file, crypto
//! header, bitmaps), and (once the length is known) that the tables lie inside
//! the file. Every pointer in the tables is walked by [`crate::qcow2_refs`].

use crate::DiskFormat;
use crate::bytes::{be32, be64, div_ceil, printable};
use crate::capture::Head;
use crate::inspector::{Detector, End};
use crate::qcow2_refs::{Layout, Refs};
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

/// Autoclear feature bit 0: the bitmaps extension is consistent.
const AUTOCLEAR_BITMAPS: u64 = 1 << 0;

const EXT_DATA_FILE: u32 = 0x4441_5441;
const EXT_CRYPTO: u32 = 0x0537_be77;
const EXT_BITMAPS: u32 = 0x2385_2875;
/// qemu's QCOW2_MAX_BITMAPS and QCOW2_MAX_BITMAP_DIRECTORY_SIZE.
const MAX_BITMAPS: u32 = 65535;
const MAX_BITMAP_DIRECTORY: u64 = 1024 * MAX_BITMAPS as u64;

pub(crate) struct Qcow2 {
    head: Head,
    /// The reference walk, started once the header has been read and looks sane.
    refs: Option<Refs>,
    header_read: bool,
}

impl Qcow2 {
    pub(crate) fn new() -> Self {
        Qcow2 {
            head: Head::new(MAGIC, HEAD_CAP),
            refs: None,
            header_read: false,
        }
    }
}

impl Detector for Qcow2 {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.head.feed(pos, chunk);
        if !self.header_read
            && let Some(h) = self.head.matched()
            && h.len() >= 104
        {
            self.header_read = true;
            self.refs = layout(h).map(|l| Refs::new(&l));
        }
        if let Some(r) = &mut self.refs {
            r.feed(pos, chunk);
        }
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let h = self.head.matched()?;
        let mut d = check(h, end.len);
        if let Some(r) = &self.refs {
            r.finish(&mut d, end.len);
        }
        Some(d)
    }
}

/// Where the tables whose entries [`Refs`] walks lie, if the header is sane enough to say.
fn layout(h: &[u8]) -> Option<Layout> {
    let version = be32(h, 4);
    if !(version == 2 || version == 3 && h.len() >= 104) {
        return None;
    }
    let hdr = Header::read(h, version);
    let l1_bytes = u64::from(hdr.l1_size) * 8;
    let cluster_bits = hdr.cluster_bits;
    if !(9..=21).contains(&cluster_bits)
        || hdr.incompat & INCOMPAT_EXTL2 != 0
        || l1_bytes > MAX_L1_BYTES
    {
        return None;
    }
    let reftable_bytes = u64::from(hdr.refcount_clusters) << cluster_bits;
    (reftable_bytes <= MAX_REFTABLE_BYTES).then_some(Layout {
        cluster_bits,
        l1_offset: hdr.l1_offset,
        l1_bytes,
        reftable_offset: hdr.refcount_offset,
        reftable_bytes,
    })
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
    autoclear: u64,
    refcount_order: u32,
    header_length: u32,
}

impl Header {
    /// Reads a header of at least 72 bytes (104 for version 3).
    fn read(h: &[u8], version: u32) -> Header {
        let (incompat, autoclear, refcount_order, header_length) = if version == 3 {
            (be64(h, 72), be64(h, 88), be32(h, 96), be32(h, 100))
        } else {
            (0, 0, 4, 72)
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
            autoclear,
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
    check_extensions(&mut d, h, &hdr, cluster, len);
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
        d.backing(format!("has a backing file ({name})"));
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

/// Walks the header extensions in cluster 0 (up to the backing file name), checking those
/// qemu reads as `block/qcow2.c` does: an external data file is unsafe; a crypto header only
/// with LUKS encryption (which needs one), 16 bytes, cluster aligned, inside the file; a
/// bitmaps extension of 24 bytes and, when the autoclear bit says it is in use, with 1 to
/// 65535 bitmaps and a cluster-aligned directory of at most qemu's size inside the file.
fn check_extensions(d: &mut Detection, h: &[u8], hdr: &Header, cluster: u64, len: u64) {
    let mut end = cluster;
    if hdr.backing_offset != 0 {
        end = end.min(hdr.backing_offset);
    }
    let end = usize::try_from(end).unwrap_or(usize::MAX);
    let mut off = hdr.header_length as usize;
    let mut crypto = false;
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
            break;
        }
        let data = off + 8;
        let Some(data_end) = data.checked_add(ext_len).filter(|e| *e <= end) else {
            d.malformed(format!("header extension {typ:#010x} overruns cluster 0"));
            return;
        };
        let body = h.get(data..data_end.min(h.len())).unwrap_or_default();
        match typ {
            EXT_DATA_FILE => d.unsafe_(format!(
                "names an external data file ({})",
                printable(body, 200)
            )),
            EXT_CRYPTO => {
                crypto = true;
                check_crypto_extension(d, hdr, body, cluster, len);
            }
            EXT_BITMAPS => check_bitmaps_extension(d, hdr, body, cluster, len),
            _ => {}
        }
        // Extensions are padded to 8 bytes.
        off = data_end.saturating_add(7) & !7;
    }
    if hdr.crypt_method == 2 && !crypto {
        d.malformed("LUKS encryption (crypt_method 2) without a crypto header extension");
    }
}

/// The crypto header extension: where the LUKS header lies.
fn check_crypto_extension(d: &mut Detection, hdr: &Header, body: &[u8], cluster: u64, len: u64) {
    if hdr.crypt_method != 2 {
        d.malformed("crypto header extension without LUKS encryption (crypt_method 2)");
    } else if body.len() != 16 {
        d.malformed(format!(
            "crypto header extension of {} bytes, not 16",
            body.len()
        ));
    } else {
        let (offset, length) = (be64(body, 0), be64(body, 8));
        if !offset.is_multiple_of(cluster) {
            d.malformed(format!(
                "crypto header offset {offset:#x} is not cluster aligned"
            ));
        } else if offset.checked_add(length).is_none_or(|e| e > len) {
            d.truncated(format!(
                "crypto header ({length} bytes at {offset:#x}) lies past the end of the image"
            ));
        }
    }
}

/// The bitmaps extension: where the persistent dirty bitmaps' directory lies.
fn check_bitmaps_extension(d: &mut Detection, hdr: &Header, body: &[u8], cluster: u64, len: u64) {
    if body.len() != 24 {
        d.malformed(format!("bitmaps extension of {} bytes, not 24", body.len()));
        return;
    }
    if hdr.autoclear & AUTOCLEAR_BITMAPS == 0 {
        // qemu ignores (and drops) a bitmaps extension the autoclear bit disowns.
        return;
    }
    let (nb, reserved, size, offset) =
        (be32(body, 0), be32(body, 4), be64(body, 8), be64(body, 16));
    if reserved != 0 {
        d.malformed("bitmaps extension: reserved field is not zero");
    } else if nb == 0 || nb > MAX_BITMAPS {
        d.malformed(format!(
            "bitmaps extension: {nb} bitmaps (must be 1 to {MAX_BITMAPS})"
        ));
    } else if !offset.is_multiple_of(cluster) {
        d.malformed(format!(
            "bitmaps extension: directory offset {offset:#x} is not cluster aligned"
        ));
    } else if size > MAX_BITMAP_DIRECTORY || size < u64::from(nb) * 24 {
        d.malformed(format!(
            "bitmaps extension: a directory of {size} bytes for {nb} bitmaps"
        ));
    } else if offset == 0 || offset.checked_add(size).is_none_or(|e| e > len) {
        d.truncated(format!(
            "bitmaps directory ({size} bytes at {offset:#x}) lies outside the image"
        ));
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
        // LUKS needs its crypto header extension.
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
        crypto_extension(&mut img, 0x20000, 0x1000);
        let d = check(&img[..HEAD_CAP], img.len() as u64);
        assert!(d.encrypted && d.findings.is_empty(), "{:?}", d.findings);
        put32(&mut img, 32, 3);
        // An unknown method, and a crypto header without LUKS.
        assert_eq!(kinds(&img), vec![FindingKind::Malformed; 2]);
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

    /// Adds a crypto header extension (LUKS header of `length` bytes at `offset`).
    fn crypto_extension(img: &mut [u8], offset: u64, length: u64) {
        put32(img, 112, EXT_CRYPTO);
        put32(img, 116, 16);
        put64(img, 120, offset);
        put64(img, 128, length);
    }

    /// The findings of the whole detector (header checks and reference walk), fed in
    /// chunks of `chunk` bytes.
    fn walk(img: &[u8], chunk: usize) -> Vec<crate::Finding> {
        let r = crate::inspector::report_in_chunks(img, chunk);
        r.detections()[0].findings.clone()
    }

    /// [`image`] with an L2 table at 0x40000 (named by L1 entry 0) whose entry 5 maps a data
    /// cluster at 0x50000, and the whole cluster present: 0x60000 bytes.
    fn mapped() -> Vec<u8> {
        let mut img = image();
        img.resize(0x60000, 0xa5);
        img[0x40000..0x50000].fill(0);
        put64(&mut img, 0x30000, 0x40000 | 1 << 63);
        put64(&mut img, 0x40000 + 5 * 8, 0x50000 | 1 << 63);
        put64(&mut img, 0x10000, 0x20000);
        img
    }

    #[test]
    fn every_reference_inside_the_file_is_clean_in_any_chunking() {
        for chunk in [1, 7, 4096, 1 << 20] {
            assert!(walk(&mapped(), chunk).is_empty(), "chunk {chunk}");
        }
    }

    #[test]
    fn cut_inside_the_data_clusters_is_refused() {
        let img = mapped();
        for cut in [0x58000, 0x50001, 0x5ffff] {
            for chunk in [7, 65536] {
                let f = walk(&img[..cut], chunk);
                assert_eq!(f.len(), 1, "cut {cut:#x}: {f:?}");
                assert_eq!(f[0].kind, FindingKind::Truncated);
                assert!(f[0].reason.contains("data cluster"), "{}", f[0].reason);
                assert!(f[0].reason.contains("0x50000"), "{}", f[0].reason);
            }
        }
    }

    #[test]
    fn pointers_past_any_sane_offset_are_refused() {
        for (at, what) in [
            (0x30000, "L1 entry 0"),
            (0x10008, "refcount table entry 1"),
            (0x40000, "L2 entry (0)"),
        ] {
            let mut img = mapped();
            put64(&mut img, at, 1 << 55);
            let f = walk(&img, 4096);
            assert_eq!(f.len(), 1, "{what}: {f:?}");
            assert!(f[0].reason.contains(what), "{}", f[0].reason);
            assert!(f[0].reason.contains("0x80000000000000"), "{}", f[0].reason);
        }
    }

    #[test]
    fn reserved_bits_and_unaligned_pointers_are_malformed() {
        for (at, value) in [
            (0x30000, 0x40000 | 1 << 56),
            (0x30000, 0x40000 | 1 << 3),
            (0x30000, 0x40200),
            (0x10000, 0x20001),
            (0x10000, 0x20200),
            (0x40000 + 5 * 8, 0x50200),
        ] {
            let mut img = mapped();
            put64(&mut img, at, value);
            let f = walk(&img, 4096);
            assert!(
                f.iter().any(|f| f.kind == FindingKind::Malformed),
                "{at:#x}={value:#x}: {f:?}"
            );
        }
    }

    #[test]
    fn compressed_runs_may_round_up_to_the_sector_but_no_further() {
        // 64 KiB clusters: x = 54 offset bits, then the count of additional sectors.
        let entry = |offset: u64, extra: u64| 1 << 62 | extra << 54 | offset;
        let mut img = mapped();
        img.truncate(0x50000 + 700);
        put64(&mut img, 0x40000 + 5 * 8, entry(0x50000, 1)); // two sectors: 1024 bytes
        assert!(walk(&img, 4096).is_empty());
        put64(&mut img, 0x40000 + 5 * 8, entry(0x50000, 2)); // three sectors: past the end
        let f = walk(&img, 4096);
        assert!(f[0].reason.contains("compressed"), "{f:?}");
    }

    #[test]
    fn an_l2_table_before_the_l1_table_is_named_but_not_walked() {
        // A resized image's layout: the L2 table at 0x20000 precedes the L1 table.
        let mut img = mapped();
        put64(&mut img, 0x10000, 0);
        put64(&mut img, 0x30000, 0x20000);
        put64(&mut img, 0x20000 + 8, 1 << 55);
        assert!(walk(&img, 4096).is_empty());
    }

    #[test]
    fn crypto_extension_only_with_luks() {
        let mut img = image();
        crypto_extension(&mut img, 0x20000, 0x1000);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
        put32(&mut img, 32, 2);
        assert!(kinds(&img).is_empty());
        put64(&mut img, 120, 0x20200);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
        put64(&mut img, 120, 0x30000);
        put64(&mut img, 128, 0x20000);
        assert_eq!(kinds(&img), vec![FindingKind::Truncated]);
        put32(&mut img, 116, 8);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
    }

    #[test]
    fn bitmaps_extension_as_qemu_reads_it() {
        let bitmaps = |nb: u32, reserved: u32, size: u64, offset: u64, autoclear: u64| {
            let mut img = image();
            put64(&mut img, 88, autoclear);
            put32(&mut img, 112, EXT_BITMAPS);
            put32(&mut img, 116, 24);
            put32(&mut img, 120, nb);
            put32(&mut img, 124, reserved);
            put64(&mut img, 128, size);
            put64(&mut img, 136, offset);
            kinds(&img)
        };
        assert!(bitmaps(1, 0, 64, 0x20000, 1).is_empty());
        // Disowned by the autoclear bit: qemu ignores it.
        assert!(bitmaps(0, 7, 1 << 40, 3, 0).is_empty());
        for bad in [
            bitmaps(0, 0, 64, 0x20000, 1),
            bitmaps(70000, 0, 64, 0x20000, 1),
            bitmaps(1, 1, 64, 0x20000, 1),
            bitmaps(1, 0, 64, 0x20200, 1),
            bitmaps(1, 0, 1 << 40, 0x20000, 1),
            bitmaps(4, 0, 64, 0x20000, 1),
        ] {
            assert_eq!(bad, vec![FindingKind::Malformed]);
        }
        assert_eq!(bitmaps(1, 0, 64, 0x70000, 1), vec![FindingKind::Truncated]);
        let mut img = image();
        put32(&mut img, 112, EXT_BITMAPS);
        put32(&mut img, 116, 16);
        assert_eq!(kinds(&img), vec![FindingKind::Malformed]);
    }
}

//! Disk formats that qemu probes and opens but Glance does not list: Parallels (and ploop,
//! which shares its header), Bochs and cloop. Content that qemu would read as one of them is
//! not raw, whatever the upload claims, so it is refused on every ingest path (issue 13):
//! a server built from a "raw" image that is really a Bochs disk would see another disk than
//! the one that was checked. The probes are qemu's own (`block/parallels.c`, `bochs.c`,
//! `cloop.c`), read as widely as qemu reads them: the magic alone is enough to refuse.

/// Bytes of the stream's head the probes need.
pub(crate) const HEAD: usize = 128;

/// Parallels/ploop header magics (qemu also checks the version; any of them is refused).
const PARALLELS: [&[u8]; 2] = [b"WithoutFreeSpace", b"WithouFreSpacExt"];
/// Bochs's header: the magic field as qemu's `strcmp` compares it.
const BOCHS: &[u8] = b"Bochs Virtual HD Image\0";
/// cloop v2's shell header, whole (qemu's probe buffer is zero-padded, so a file shorter than
/// the header is never cloop to it).
const CLOOP: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

/// The foreign format `head` (the first [`HEAD`] bytes, or the whole stream when shorter)
/// starts with, if any.
pub(crate) fn probe(head: &[u8]) -> Option<&'static str> {
    if PARALLELS.iter().any(|m| head.starts_with(m)) {
        return Some("Parallels");
    }
    if head.starts_with(BOCHS) {
        return Some("Bochs");
    }
    head.starts_with(CLOOP).then_some("cloop")
}

#[cfg(test)]
mod tests {
    use crate::inspector::report_in_chunks;
    use crate::{DiskFormat, Limits, Rejection};

    fn with_head(head: &[u8]) -> Vec<u8> {
        let mut img = head.to_vec();
        img.resize(1 << 20, 0);
        img
    }

    #[test]
    fn parallels_bochs_and_cloop_are_not_raw() {
        let mut parallels = b"WithoutFreeSpace".to_vec();
        parallels.extend(2u32.to_le_bytes());
        let cases = [
            (with_head(&parallels), "Parallels"),
            (with_head(b"WithouFreSpacExt"), "Parallels"),
            (
                with_head(b"Bochs Virtual HD Image\0\0\0\0\0\0\0\0\0\0Redolog\0"),
                "Bochs",
            ),
            (with_head(super::CLOOP), "cloop"),
        ];
        for (img, name) in cases {
            for chunk in [1, 7, 4096] {
                let report = report_in_chunks(&img, chunk);
                for claim in [DiskFormat::Raw, DiskFormat::Qcow2, DiskFormat::Iso] {
                    let refused = report.verdict(claim, &Limits::default()).unwrap_err();
                    assert_eq!(
                        refused,
                        Rejection::Foreign {
                            claimed: claim,
                            name
                        },
                        "{name}"
                    );
                    assert!(!refused.is_limit());
                    assert!(refused.to_string().contains(name), "{refused}");
                }
            }
        }
    }

    #[test]
    fn near_misses_stay_raw() {
        for head in [
            &b"WithoutFreeSpac"[..],
            b"Bochs Virtual HD Imagf",
            b"#!/bin/sh\necho hello\n",
            b"#!/bin/sh\n#V2.0 Format\n",
            b"",
        ] {
            let img = if head.is_empty() {
                Vec::new()
            } else {
                with_head(head)
            };
            let report = report_in_chunks(&img, 5);
            assert!(report.verdict(DiskFormat::Raw, &Limits::default()).is_ok());
        }
    }
}

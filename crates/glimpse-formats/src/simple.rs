//! Detect-only formats: QED (`QED\0`, always refused) and LUKS v1
//! (`LUKS\xba\xbe`, encrypted payload; only version 1 is understood).

use crate::DiskFormat;
use crate::bytes::{be16, be32};
use crate::capture::Head;
use crate::inspector::{Detector, End};
use crate::report::Detection;

pub(crate) struct Qed(Head);

impl Qed {
    pub(crate) fn new() -> Self {
        Qed(Head::new(b"QED\0", 4))
    }
}

impl Detector for Qed {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.0.feed(pos, chunk);
    }

    fn finish(&self, _end: &End<'_>) -> Option<Detection> {
        self.0.matched()?;
        let mut d = Detection::new(DiskFormat::Qed);
        d.unsafe_("QED images are not allowed");
        Some(d)
    }
}

/// LUKS v1 header: payload offset (sectors) at byte 104.
const LUKS_HEADER: usize = 108;

pub(crate) struct Luks(Head);

impl Luks {
    pub(crate) fn new() -> Self {
        Luks(Head::new(b"LUKS\xba\xbe", LUKS_HEADER))
    }
}

impl Detector for Luks {
    fn feed(&mut self, pos: u64, chunk: &[u8]) {
        self.0.feed(pos, chunk);
    }

    fn finish(&self, end: &End<'_>) -> Option<Detection> {
        let h = self.0.matched()?;
        let mut d = Detection::new(DiskFormat::Luks);
        d.encrypted = true;
        if h.len() < LUKS_HEADER {
            d.malformed("header truncated");
            return Some(d);
        }
        let version = be16(h, 6);
        if version != 1 {
            d.unsafe_(format!("LUKS version {version} is not supported"));
        }
        let payload = u64::from(be32(h, 104)) * 512;
        match end.len.checked_sub(payload) {
            Some(v) => d.virtual_size = Some(v),
            None => d.truncated(format!(
                "payload offset {payload} is past the end of the image"
            )),
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DiskFormat, Limits, Rejection};

    fn report(img: &[u8]) -> crate::Report {
        crate::inspector::report_in_chunks(img, 3)
    }

    #[test]
    fn qed_always_refused() {
        let r = report(b"QED\0 and then some");
        assert_eq!(r.detected(), DiskFormat::Qed);
        assert!(matches!(
            r.verdict(DiskFormat::Qed, &Limits::default()),
            Err(Rejection::Unsafe { .. })
        ));
        assert!(matches!(
            r.verdict(DiskFormat::Qcow2, &Limits::default()),
            Err(Rejection::Mismatch { .. })
        ));
    }

    #[test]
    fn luks() {
        let mut img = vec![0u8; 8192];
        img[..6].copy_from_slice(b"LUKS\xba\xbe");
        img[7] = 1;
        img[104..108].copy_from_slice(&8u32.to_be_bytes());
        let r = report(&img);
        assert_eq!(r.detected(), DiskFormat::Luks);
        assert!(r.is_encrypted());
        assert_eq!(
            r.verdict(DiskFormat::Luks, &Limits::default())
                .unwrap()
                .virtual_size,
            4096
        );
        assert!(r.verdict(DiskFormat::Raw, &Limits::default()).is_err());
        img[7] = 2;
        assert!(
            report(&img)
                .verdict(DiskFormat::Luks, &Limits::default())
                .is_err()
        );
        assert!(
            report(&img[..50])
                .verdict(DiskFormat::Luks, &Limits::default())
                .is_err()
        );
    }
}

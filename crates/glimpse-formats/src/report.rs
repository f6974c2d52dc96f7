//! The inspection result ([`Report`]) and the upload decision it yields
//! ([`Report::verdict`] → [`Accepted`] or [`Rejection`]).
//!
//! Verdict rules (security.md section 0 and 1.6):
//! * exactly one non-raw format may match; the only allowed double match is
//!   ISO + GPT/MBR when the claim is `iso`;
//! * the detected format must equal the claim, for every format including
//!   `raw`; a GPT/MBR disk counts as raw for raw-like claims (raw, ami, ari,
//!   aki, ploop), with its MBR checks still applied; an empty body is only
//!   acceptable as `raw`;
//! * findings are then applied in a fixed order: unsafe, malformed header,
//!   virtual-size limit (413), and last the "structure lies past the end of
//!   the data" findings, so that a bomb whose metadata was cut off reads as
//!   the limit breach it is.

use std::fmt;

use crate::{DiskFormat, Limits};

/// How serious a [`Finding`] is and when it is applied by the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A reference to something outside the image, a banned format or
    /// feature: the image must never reach qemu-img.
    Unsafe,
    /// A header field is invalid or out of range.
    Malformed,
    /// A structure named by the header lies (partly) past the end of the data.
    /// Checked after the virtual-size limit.
    Truncated,
}

/// One problem found in a detected format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub reason: String,
}

/// One format whose signature was found in the stream, with what its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub format: DiskFormat,
    /// Virtual size from the format's header; `None` when the format has none
    /// (raw-like formats, ISO, GPT: the stream length is used) or it could not
    /// be read.
    pub virtual_size: Option<u64>,
    /// Safety and sanity problems, in the order they were found.
    pub findings: Vec<Finding>,
    /// The payload is encrypted (qcow2 LUKS, LUKS): storable, not convertible.
    pub encrypted: bool,
    /// Which of `findings` is the (unsafe) backing file reference, which only an overlay
    /// whose backing the caller pins may have ([`Report::overlay_verdict`]).
    pub backing_finding: Option<usize>,
}

impl Detection {
    pub(crate) fn new(format: DiskFormat) -> Self {
        Detection {
            format,
            virtual_size: None,
            findings: Vec::new(),
            encrypted: false,
            backing_finding: None,
        }
    }

    fn add(&mut self, kind: FindingKind, reason: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            reason: reason.into(),
        });
    }

    pub(crate) fn unsafe_(&mut self, reason: impl Into<String>) {
        self.add(FindingKind::Unsafe, reason);
    }

    /// The image names a backing file: unsafe, except in an overlay.
    pub(crate) fn backing(&mut self, reason: impl Into<String>) {
        self.backing_finding = Some(self.findings.len());
        self.unsafe_(reason);
    }

    pub(crate) fn malformed(&mut self, reason: impl Into<String>) {
        self.add(FindingKind::Malformed, reason);
    }

    pub(crate) fn truncated(&mut self, reason: impl Into<String>) {
        self.add(FindingKind::Truncated, reason);
    }

    fn first(&self, kind: FindingKind) -> Option<&Finding> {
        self.findings.iter().find(|f| f.kind == kind)
    }
}

/// What the inspector saw in one complete stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    len: u64,
    /// Non-raw formats whose signature matched, in a fixed priority order.
    detections: Vec<Detection>,
    /// A fixed-size VHD footer found in the last 512 bytes. qemu never probes
    /// it, so it only matters when the claim is `vhd`.
    fixed_vhd: Option<Detection>,
    /// A format qemu probes but Glance does not list ([`crate::foreign`]): always refused.
    foreign: Option<&'static str>,
}

/// A successful verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The disk format to record: the claim (e.g. `raw` for a GPT disk, `ami`).
    pub format: DiskFormat,
    /// Guest-visible size in bytes (the stream length for raw-like and ISO).
    pub virtual_size: u64,
}

/// Why an upload is refused. `Display` is the human reason for the HTTP body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("image content is {detected} but disk_format is {claimed}")]
    Mismatch {
        claimed: DiskFormat,
        detected: DiskFormat,
    },
    #[error("image content matches several disk formats ({}); ambiguous images are refused", FormatList(.0))]
    MultipleFormats(Vec<DiskFormat>),
    #[error("unsafe {format} image: {reason}")]
    Unsafe { format: DiskFormat, reason: String },
    #[error("malformed {format} image: {reason}")]
    Malformed { format: DiskFormat, reason: String },
    #[error("virtual size {virtual_size} bytes exceeds the limit of {limit} bytes")]
    VirtualSizeTooLarge { virtual_size: u64, limit: u64 },
    #[error(
        "image content is a {name} disk image (qemu would open it as {name}) but disk_format is {claimed}"
    )]
    Foreign {
        claimed: DiskFormat,
        name: &'static str,
    },
}

impl Rejection {
    /// `true` → HTTP 413 (a size limit), otherwise 415.
    pub fn is_limit(&self) -> bool {
        matches!(self, Rejection::VirtualSizeTooLarge { .. })
    }
}

struct FormatList<'a>(&'a [DiskFormat]);

impl fmt::Display for FormatList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(d.as_str())?;
        }
        Ok(())
    }
}

impl Report {
    pub(crate) fn new(len: u64, detections: Vec<Detection>, fixed_vhd: Option<Detection>) -> Self {
        Report {
            len,
            detections,
            fixed_vhd,
            foreign: None,
        }
    }

    /// The report with the foreign format the stream's head matched, if any.
    pub(crate) fn with_foreign(mut self, foreign: Option<&'static str>) -> Self {
        self.foreign = foreign;
        self
    }

    /// Total number of bytes inspected.
    pub fn total_len(&self) -> u64 {
        self.len
    }

    /// Every non-raw format whose signature matched (empty: plain raw).
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }

    /// The formats of [`Report::detections`].
    pub fn formats(&self) -> Vec<DiskFormat> {
        self.detections.iter().map(|d| d.format).collect()
    }

    /// `true` if any detected format carries an encrypted payload.
    pub fn is_encrypted(&self) -> bool {
        self.detections.iter().any(|d| d.encrypted)
    }

    /// Best single reading of the content: `Raw` if nothing matched, `Iso` for
    /// the ISO+GPT hybrid, otherwise the highest-priority match.
    pub fn detected(&self) -> DiskFormat {
        if self.is_iso_hybrid() {
            return DiskFormat::Iso;
        }
        self.detections
            .first()
            .map_or(DiskFormat::Raw, |d| d.format)
    }

    fn is_iso_hybrid(&self) -> bool {
        let f = self.formats();
        f.len() == 2 && f.contains(&DiskFormat::Iso) && f.contains(&DiskFormat::Gpt)
    }

    /// The verdict on a qcow2 overlay of Glimpse's own (a server's or volume's disk) before
    /// qemu reads it: the content is exactly qcow2 and has no finding but its backing file,
    /// which the caller replaces by the trusted base (so a host file cut short, or carrying
    /// extensions qemu would misread, is refused like an upload).
    pub fn overlay_verdict(&self) -> Result<(), Rejection> {
        let mut pinned = self.clone();
        for d in &mut pinned.detections {
            if let Some(i) = d.backing_finding.take() {
                d.findings.remove(i);
            }
        }
        // No size limit: the overlay is the server's own disk, already as large as it is.
        let unlimited = Limits {
            max_virtual_size: u64::MAX,
        };
        pinned.verdict(DiskFormat::Qcow2, &unlimited).map(drop)
    }

    /// The upload verdict: does the content match `claimed` and pass every
    /// safety check and limit?
    pub fn verdict(&self, claimed: DiskFormat, limits: &Limits) -> Result<Accepted, Rejection> {
        if let Some(name) = self.foreign {
            return Err(Rejection::Foreign { claimed, name });
        }
        let chosen: Option<&Detection> = match self.detections.as_slice() {
            [] => None,
            [one] => Some(one),
            _ if claimed == DiskFormat::Iso && self.is_iso_hybrid() => {
                self.detections.iter().find(|d| d.format == DiskFormat::Iso)
            }
            _ => return Err(Rejection::MultipleFormats(self.formats())),
        };
        let detected = chosen.map_or(DiskFormat::Raw, |d| d.format);

        let matches = if claimed.is_raw_like() {
            matches!(detected, DiskFormat::Raw | DiskFormat::Gpt)
        } else {
            detected == claimed
        };
        // A fixed VHD only has its footer at the end; it counts only for a vhd
        // claim. Its data is a raw disk, so a partition table in it is fine
        // (and checked like one).
        let chosen = match (chosen, claimed, &self.fixed_vhd) {
            (None, DiskFormat::Vhd, Some(v)) => Some(v),
            (Some(g), DiskFormat::Vhd, Some(v)) if g.format == DiskFormat::Gpt => {
                if let Some(f) = g.first(FindingKind::Unsafe) {
                    return Err(Rejection::Unsafe {
                        format: DiskFormat::Gpt,
                        reason: f.reason.clone(),
                    });
                }
                Some(v)
            }
            _ if !matches => {
                return Err(Rejection::Mismatch { claimed, detected });
            }
            (c, _, _) => c,
        };
        if self.len == 0 && claimed != DiskFormat::Raw {
            return Err(Rejection::Mismatch {
                claimed,
                detected: DiskFormat::Raw,
            });
        }

        let virtual_size = match chosen {
            None => self.len,
            Some(d) => {
                let format = d.format;
                if let Some(f) = d.first(FindingKind::Unsafe) {
                    return Err(Rejection::Unsafe {
                        format,
                        reason: f.reason.clone(),
                    });
                }
                if let Some(f) = d.first(FindingKind::Malformed) {
                    return Err(Rejection::Malformed {
                        format,
                        reason: f.reason.clone(),
                    });
                }
                match (format, d.virtual_size) {
                    (DiskFormat::Gpt | DiskFormat::Iso, _) => self.len,
                    (_, Some(v)) => v,
                    (_, None) => {
                        return Err(Rejection::Malformed {
                            format,
                            reason: "virtual size could not be determined".into(),
                        });
                    }
                }
            }
        };
        if virtual_size > limits.max_virtual_size {
            return Err(Rejection::VirtualSizeTooLarge {
                virtual_size,
                limit: limits.max_virtual_size,
            });
        }
        if let Some(d) = chosen
            && let Some(f) = d.first(FindingKind::Truncated)
        {
            return Err(Rejection::Malformed {
                format: d.format,
                reason: f.reason.clone(),
            });
        }
        Ok(Accepted {
            format: claimed,
            virtual_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(format: DiskFormat, vsize: Option<u64>) -> Detection {
        let mut d = Detection::new(format);
        d.virtual_size = vsize;
        d
    }

    #[test]
    fn an_overlay_may_name_a_backing_file_and_nothing_else() {
        let overlay = |findings: &dyn Fn(&mut Detection)| {
            let mut d = det(DiskFormat::Qcow2, Some(1 << 30));
            findings(&mut d);
            Report::new(1 << 20, vec![d], None)
        };
        let backed = overlay(&|d| d.backing("backing file /base"));
        assert_eq!(backed.overlay_verdict(), Ok(()));
        assert!(
            backed
                .verdict(DiskFormat::Qcow2, &Limits::default())
                .is_err()
        );
        let more = overlay(&|d| {
            d.backing("backing file /base");
            d.unsafe_("external data file");
        });
        assert!(matches!(
            more.overlay_verdict(),
            Err(Rejection::Unsafe { reason, .. }) if reason == "external data file"
        ));
        let cut = overlay(&|d| d.malformed("an L2 entry points past the end"));
        assert!(matches!(
            cut.overlay_verdict(),
            Err(Rejection::Malformed { .. })
        ));
        let vmdk = Report::new(1 << 20, vec![det(DiskFormat::Vmdk, Some(1))], None);
        assert!(matches!(
            vmdk.overlay_verdict(),
            Err(Rejection::Mismatch { .. })
        ));
        let two = Report::new(
            1 << 20,
            vec![
                det(DiskFormat::Qcow2, Some(1)),
                det(DiskFormat::Vmdk, Some(1)),
            ],
            None,
        );
        assert!(matches!(
            two.overlay_verdict(),
            Err(Rejection::MultipleFormats(_))
        ));
    }

    #[test]
    fn empty_stream() {
        let r = Report::new(0, vec![], None);
        let ok = r.verdict(DiskFormat::Raw, &Limits::default()).unwrap();
        assert_eq!(ok.virtual_size, 0);
        for claim in DiskFormat::ALL {
            if claim != DiskFormat::Raw {
                assert_eq!(
                    r.verdict(claim, &Limits::default()),
                    Err(Rejection::Mismatch {
                        claimed: claim,
                        detected: DiskFormat::Raw
                    })
                );
            }
        }
    }

    #[test]
    fn raw_like_claims_accept_raw_and_gpt() {
        let raw = Report::new(4096, vec![], None);
        let gpt = Report::new(4096, vec![det(DiskFormat::Gpt, None)], None);
        for claim in [
            DiskFormat::Raw,
            DiskFormat::Ami,
            DiskFormat::Ari,
            DiskFormat::Aki,
            DiskFormat::Ploop,
        ] {
            assert_eq!(
                raw.verdict(claim, &Limits::default()).unwrap().format,
                claim
            );
            assert_eq!(
                gpt.verdict(claim, &Limits::default()).unwrap().virtual_size,
                4096
            );
        }
        assert!(raw.verdict(DiskFormat::Qcow2, &Limits::default()).is_err());
        assert!(gpt.verdict(DiskFormat::Gpt, &Limits::default()).is_ok());
        assert!(raw.verdict(DiskFormat::Gpt, &Limits::default()).is_err());
    }

    #[test]
    fn iso_hybrid_only_as_iso() {
        let r = Report::new(
            43008,
            vec![det(DiskFormat::Iso, None), det(DiskFormat::Gpt, None)],
            None,
        );
        assert_eq!(r.detected(), DiskFormat::Iso);
        assert_eq!(
            r.verdict(DiskFormat::Iso, &Limits::default())
                .unwrap()
                .virtual_size,
            43008
        );
        assert!(matches!(
            r.verdict(DiskFormat::Raw, &Limits::default()),
            Err(Rejection::MultipleFormats(_))
        ));
    }

    #[test]
    fn order_unsafe_malformed_limit_truncated() {
        let mut d = det(DiskFormat::Qcow2, Some(1 << 60));
        d.truncated("l1 past end");
        let r = Report::new(100, vec![d.clone()], None);
        let e = r
            .verdict(DiskFormat::Qcow2, &Limits::default())
            .unwrap_err();
        assert!(e.is_limit(), "{e}");
        let e = r
            .verdict(
                DiskFormat::Qcow2,
                &Limits {
                    max_virtual_size: u64::MAX,
                },
            )
            .unwrap_err();
        assert!(matches!(e, Rejection::Malformed { .. }));

        d.malformed("bad field");
        d.unsafe_("backing file");
        let r = Report::new(100, vec![d], None);
        let e = r
            .verdict(DiskFormat::Qcow2, &Limits::default())
            .unwrap_err();
        assert!(matches!(e, Rejection::Unsafe { .. }), "{e}");
        assert!(!e.is_limit());
    }

    #[test]
    fn display_is_human() {
        let e = Rejection::MultipleFormats(vec![DiskFormat::Iso, DiskFormat::Qcow2]);
        assert!(e.to_string().contains("iso, qcow2"));
        let e = Rejection::Mismatch {
            claimed: DiskFormat::Raw,
            detected: DiskFormat::Qcow2,
        };
        assert_eq!(
            e.to_string(),
            "image content is qcow2 but disk_format is raw"
        );
    }

    #[test]
    fn fixed_vhd_only_for_vhd_claim() {
        let r = Report::new(1024, vec![], Some(det(DiskFormat::Vhd, Some(512))));
        assert_eq!(r.detected(), DiskFormat::Raw);
        assert_eq!(
            r.verdict(DiskFormat::Vhd, &Limits::default())
                .unwrap()
                .virtual_size,
            512
        );
        assert!(r.verdict(DiskFormat::Raw, &Limits::default()).is_ok());
        // A fixed VHD of a partitioned disk: MBR at 0, footer at the end.
        let r = Report::new(
            1024,
            vec![det(DiskFormat::Gpt, None)],
            Some(det(DiskFormat::Vhd, Some(512))),
        );
        assert_eq!(
            r.verdict(DiskFormat::Vhd, &Limits::default())
                .unwrap()
                .virtual_size,
            512
        );
        let mut bad_mbr = det(DiskFormat::Gpt, None);
        bad_mbr.unsafe_("no partitions");
        let r = Report::new(1024, vec![bad_mbr], Some(det(DiskFormat::Vhd, Some(512))));
        assert!(matches!(
            r.verdict(DiskFormat::Vhd, &Limits::default()),
            Err(Rejection::Unsafe {
                format: DiskFormat::Gpt,
                ..
            })
        ));
    }
}

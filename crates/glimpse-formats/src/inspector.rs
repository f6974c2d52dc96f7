//! The streaming [`Inspector`]: fans every chunk out to all format detectors
//! (each with its own bounded capture windows), keeps the stream's tail, and
//! assembles the [`Report`] at the end of the stream.

use crate::capture::{Capture, Tail};
use crate::report::{Detection, Report};
use crate::{foreign, gpt, iso, qcow2, simple, vdi, vhd, vhdx, vmdk};

/// What a detector learns about the end of the stream.
pub(crate) struct End<'a> {
    /// Total stream length.
    pub(crate) len: u64,
    /// The last `min(len, TAIL_LEN)` bytes.
    pub(crate) tail: &'a [u8],
}

/// One format detector. `feed` sees every chunk with its absolute offset;
/// `finish` returns a detection when the format's signature was present.
pub(crate) trait Detector: Send {
    fn feed(&mut self, pos: u64, chunk: &[u8]);
    fn finish(&self, end: &End<'_>) -> Option<Detection>;
}

/// Streaming inspector: fed every byte of the image once, in order, in chunks
/// of any size (1 byte to several MiB). Runs every format detector in parallel
/// with bounded capture buffers; memory does not grow with the image.
pub struct Inspector {
    pos: u64,
    tail: Tail,
    /// The stream's first bytes, for the [`foreign`] probes.
    head: Capture,
    /// In priority order: the first detection is the "best reading".
    detectors: Vec<Box<dyn Detector>>,
}

impl Default for Inspector {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("bytes_seen", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Inspector {
    pub fn new() -> Self {
        Inspector {
            pos: 0,
            tail: Tail::new(),
            head: Capture::new(0, foreign::HEAD),
            detectors: vec![
                Box::new(qcow2::Qcow2::new()),
                Box::new(simple::Qed::new()),
                Box::new(vmdk::Vmdk::new()),
                Box::new(vdi::Vdi::new()),
                Box::new(vhd::Vhd::new()),
                Box::new(vhdx::Vhdx::new()),
                Box::new(simple::Luks::new()),
                Box::new(iso::Iso::new()),
                Box::new(gpt::Gpt::new()),
            ],
        }
    }

    /// Presents the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        for d in &mut self.detectors {
            d.feed(self.pos, chunk);
        }
        self.tail.feed(chunk);
        self.head.feed(self.pos, chunk);
        self.pos = self.pos.saturating_add(chunk.len() as u64);
    }

    /// Number of bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.pos
    }

    /// Ends the stream and returns what was found.
    pub fn finish(self) -> Report {
        let tail = self.tail.to_vec();
        let end = End {
            len: self.pos,
            tail: &tail,
        };
        let detections: Vec<Detection> = self
            .detectors
            .iter()
            .filter_map(|d| d.finish(&end))
            .collect();
        let fixed_vhd = vhd::fixed_footer(&end);
        Report::new(self.pos, detections, fixed_vhd).with_foreign(foreign::probe(self.head.data()))
    }
}

/// The report on `img` fed in chunks of `chunk` bytes (tests of every detector).
#[cfg(test)]
pub(crate) fn report_in_chunks(img: &[u8], chunk: usize) -> Report {
    let mut i = Inspector::new();
    for c in img.chunks(chunk) {
        i.feed(c);
    }
    i.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DiskFormat, Limits};

    #[test]
    fn plain_bytes_are_raw() {
        let mut i = Inspector::new();
        i.feed(&[0u8; 100_000]);
        i.feed(b"hello");
        assert_eq!(i.bytes_seen(), 100_005);
        let r = i.finish();
        assert_eq!(r.detected(), DiskFormat::Raw);
        assert_eq!(
            r.verdict(DiskFormat::Raw, &Limits::default())
                .unwrap()
                .virtual_size,
            100_005
        );
    }

    #[test]
    fn nothing_fed() {
        let r = Inspector::new().finish();
        assert_eq!(r.total_len(), 0);
        assert!(r.detections().is_empty());
    }
}

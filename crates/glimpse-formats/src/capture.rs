//! Bounded capture buffers: a window `[start, start+len)` of the stream that
//! fills itself as chunks pass by, and a ring buffer holding the stream's tail.
//!
//! These are the only places the inspector stores image bytes. Every window
//! has a hard length cap chosen by its detector, never by a header field.

use crate::bytes::has_at;

/// Hard cap on any single capture window (the VMDK descriptor needs 1 MiB + header).
pub(crate) const MAX_CAPTURE: usize = (1 << 20) + 512;

/// The first `n` bytes of a stream that must start with `magic`: given up (and released) at
/// the first byte that disagrees, so a detector that reads a header keeps nothing of
/// streams of other formats.
pub(crate) struct Head {
    cap: Capture,
    magic: &'static [u8],
    dead: bool,
}

impl Head {
    pub(crate) fn new(magic: &'static [u8], n: usize) -> Self {
        Head {
            cap: Capture::new(0, n),
            magic,
            dead: false,
        }
    }

    pub(crate) fn feed(&mut self, pos: u64, chunk: &[u8]) {
        if self.dead {
            return;
        }
        self.cap.feed(pos, chunk);
        let d = self.cap.data();
        let n = d.len().min(self.magic.len());
        if d[..n] != self.magic[..n] {
            self.dead = true;
            self.cap.release();
        }
    }

    /// The captured head, if the stream started with the magic.
    pub(crate) fn matched(&self) -> Option<&[u8]> {
        (!self.dead && has_at(self.cap.data(), 0, self.magic)).then(|| self.cap.data())
    }
}

/// A window of the stream collected as it passes. Feeding is position based
/// and idempotent: presenting the same chunk twice does not duplicate bytes.
#[derive(Debug)]
pub(crate) struct Capture {
    start: u64,
    len: usize,
    buf: Vec<u8>,
    /// The stream was already past `start + buf.len()` when bytes were needed.
    missed: bool,
}

impl Capture {
    pub(crate) fn new(start: u64, len: usize) -> Self {
        Capture {
            start,
            len: len.min(MAX_CAPTURE),
            buf: Vec::new(),
            missed: false,
        }
    }

    /// Offset of the first byte of the window.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Changes the wanted length (capped); shrinking drops surplus bytes.
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len.min(MAX_CAPTURE);
        if self.buf.len() > self.len {
            self.buf.truncate(self.len);
            self.buf.shrink_to_fit();
        }
    }

    /// Gives up on this window and frees its memory.
    pub(crate) fn release(&mut self) {
        self.len = 0;
        self.buf = Vec::new();
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.buf.len() >= self.len
    }

    /// `true` if part of the window went by before the window existed.
    pub(crate) fn missed(&self) -> bool {
        self.missed
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf
    }

    /// Offers the chunk that starts at absolute stream offset `pos`.
    pub(crate) fn feed(&mut self, pos: u64, chunk: &[u8]) {
        if self.is_complete() || self.missed || chunk.is_empty() {
            return;
        }
        // Next absolute offset this window needs.
        let Some(want) = self.start.checked_add(self.buf.len() as u64) else {
            return;
        };
        let chunk_end = pos.saturating_add(chunk.len() as u64);
        if want >= chunk_end {
            return;
        }
        if want < pos {
            self.missed = true;
            return;
        }
        // want - pos < chunk.len() here, so it fits in usize.
        let Ok(off) = usize::try_from(want - pos) else {
            return;
        };
        let take = (self.len - self.buf.len()).min(chunk.len() - off);
        let needed = self.buf.len() + take;
        if needed > self.buf.capacity() {
            // Grow geometrically, but never beyond the window length.
            let target = needed
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.len);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(&chunk[off..off + take]);
    }
}

/// Bytes kept from the end of the stream (VMDK footer + markers, VHD footer).
pub(crate) const TAIL_LEN: usize = 1536;

/// Ring buffer of the last [`TAIL_LEN`] bytes seen.
#[derive(Debug)]
pub(crate) struct Tail {
    ring: Box<[u8; TAIL_LEN]>,
    /// Next write position.
    head: usize,
    filled: usize,
}

impl Tail {
    pub(crate) fn new() -> Self {
        Tail {
            ring: Box::new([0u8; TAIL_LEN]),
            head: 0,
            filled: 0,
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > TAIL_LEN {
            &chunk[chunk.len() - TAIL_LEN..]
        } else {
            chunk
        };
        let first = chunk.len().min(TAIL_LEN - self.head);
        self.ring[self.head..self.head + first].copy_from_slice(&chunk[..first]);
        let rest = &chunk[first..];
        self.ring[..rest.len()].copy_from_slice(rest);
        self.head = (self.head + chunk.len()) % TAIL_LEN;
        self.filled = (self.filled + chunk.len()).min(TAIL_LEN);
    }

    /// The last `min(stream length, TAIL_LEN)` bytes, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.filled);
        let start = (self.head + TAIL_LEN - self.filled) % TAIL_LEN;
        if start + self.filled <= TAIL_LEN {
            out.extend_from_slice(&self.ring[start..start + self.filled]);
        } else {
            out.extend_from_slice(&self.ring[start..]);
            out.extend_from_slice(&self.ring[..self.head]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_in(cap: &mut Capture, data: &[u8], size: usize) {
        let mut pos = 0u64;
        for c in data.chunks(size) {
            cap.feed(pos, c);
            pos += c.len() as u64;
        }
    }

    #[test]
    fn capture_any_chunking() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for size in [1, 2, 7, 100, 4096, 10_000] {
            let mut c = Capture::new(1000, 300);
            feed_in(&mut c, &data, size);
            assert!(c.is_complete());
            assert_eq!(c.data(), &data[1000..1300]);
            assert!(c.data().len() <= c.buf.capacity());
            assert!(c.buf.capacity() <= 300);
        }
    }

    #[test]
    fn capture_refeed_is_idempotent_and_missed_is_reported() {
        let data = [7u8; 64];
        let mut c = Capture::new(10, 20);
        c.feed(0, &data[..15]);
        c.feed(0, &data[..15]);
        assert_eq!(c.data().len(), 5);
        c.feed(15, &data[15..]);
        assert!(c.is_complete());

        let mut late = Capture::new(10, 20);
        late.feed(32, &data[32..]);
        assert!(late.missed());
        assert!(!late.is_complete());
    }

    #[test]
    fn capture_huge_start_does_not_overflow() {
        let mut c = Capture::new(u64::MAX - 1, 100);
        c.feed(u64::MAX - 10, &[1u8; 64]);
        assert!(c.data().len() <= 100);
        let mut c = Capture::new(u64::MAX, 100);
        c.feed(u64::MAX - 1, &[1u8; 64]);
        assert!(c.data().len() <= 100);
    }

    #[test]
    fn tail_keeps_last_bytes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        for size in [1, 5, 1535, 1536, 1537, 9999] {
            let mut t = Tail::new();
            for c in data.chunks(size) {
                t.feed(c);
            }
            assert_eq!(t.to_vec(), &data[data.len() - TAIL_LEN..], "size {size}");
        }
        let mut t = Tail::new();
        t.feed(b"abc");
        assert_eq!(t.to_vec(), b"abc");
    }
}

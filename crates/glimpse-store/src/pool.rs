//! Reused chunk buffers. A stream of blob bytes used to allocate one fresh buffer per chunk
//! (512 KiB up, 1 MiB down) and free it on another thread once the hashers, the writer or the
//! socket were done with it; the allocator kept such freed memory resident for a while, so the
//! peak memory of a server moving a few GiB wandered by 10–20 MiB from run to run. A [`Pool`]
//! hands the same few buffers round instead: a chunk made by [`Pool::share`] gives its buffer
//! back when its last copy is dropped, whatever thread that happens on.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

type FreeList = Arc<Mutex<Vec<Vec<u8>>>>;

/// Buffers of one capacity for one stream; dropped with the stream and its last chunk.
pub(crate) struct Pool {
    free: FreeList,
    capacity: usize,
    keep: usize,
}

impl Pool {
    /// Buffers of `capacity` bytes, at most `keep` of them kept for reuse.
    pub(crate) fn new(capacity: usize, keep: usize) -> Pool {
        Pool {
            free: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            capacity,
            keep,
        }
    }

    /// An empty buffer of the pool's capacity: a returned one if any, else a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// The bytes of `buf` as a chunk that returns `buf` to the pool when its last copy drops.
    pub(crate) fn share(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            free: self.free.clone(),
            capacity: self.capacity,
            keep: self.keep,
        })
    }
}

struct Pooled {
    buf: Vec<u8>,
    free: FreeList,
    capacity: usize,
    keep: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() != self.capacity {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < self.keep
        {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_chunk_gives_its_buffer_back() {
        let pool = Pool::new(1024, 2);
        let mut buf = pool.take();
        buf.extend_from_slice(b"abc");
        let addr = buf.as_ptr();
        let chunk = pool.share(buf);
        let copy = chunk.clone();
        assert_eq!(&copy[..], b"abc");
        drop(chunk);
        // Still in use by `copy`: a new buffer.
        let fresh = pool.take();
        assert_ne!(fresh.as_ptr(), addr);
        drop(copy);
        let again = pool.take();
        assert_eq!(again.as_ptr(), addr);
        assert!(again.is_empty() && again.capacity() == 1024);
    }
}

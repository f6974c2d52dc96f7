//! A cache of rendered `GET /v2/images` bodies, so that repeated lists (clients polling, the
//! dashboard, the list benchmark) cost one one-value query instead of the page queries and the
//! rendering. Entries are keyed by what decides a page — the caller's project, its admin and
//! reader roles, and the raw query string — and tagged with the region's image generation
//! ([`glimpse_core::images::list::generation`]), which triggers move in the same commit as any
//! change to images, properties, tags or members, on any node. A page is served from the cache
//! only while the generation it was computed under is still current, so the cache never shows
//! what the database would not (the generation is read before the page is computed).
//!
//! Bounded: at most [`MAX_BYTES`] of bodies; past it, the cache starts over. In memory only;
//! nothing to recover after a crash.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use glimpse_core::auth::Caller;

/// Most bytes of cached bodies.
pub const MAX_BYTES: usize = 8 << 20;
/// Largest body worth caching (a page of 1,000 images is not).
const MAX_ENTRY: usize = 256 << 10;

#[derive(Default)]
struct Inner {
    generation: i64,
    bytes: usize,
    entries: HashMap<String, Bytes>,
}

/// See the module documentation.
#[derive(Default)]
pub struct ListCache {
    inner: Mutex<Inner>,
}

/// The cache key of a list request.
pub fn key(caller: &Caller, query: &str) -> String {
    format!(
        "{}\u{1f}{}{}\u{1f}{query}",
        caller.project_id.as_deref().unwrap_or(""),
        u8::from(caller.is_admin()),
        u8::from(caller.is_reader()),
    )
}

impl ListCache {
    /// The body cached for `key` under `generation`, if any.
    pub fn get(&self, generation: i64, key: &str) -> Option<Bytes> {
        let inner = self.inner.lock().ok()?;
        if inner.generation != generation {
            return None;
        }
        inner.entries.get(key).cloned()
    }

    /// Remembers `body` for `key`, computed after reading `generation`.
    pub fn put(&self, generation: i64, key: String, body: Bytes) {
        if body.len() > MAX_ENTRY {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if generation < inner.generation {
            return; // computed under an older generation: already stale
        }
        if generation > inner.generation || inner.bytes + body.len() > MAX_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
            inner.generation = generation;
        }
        let added = body.len() + key.len();
        inner.bytes += added;
        if let Some(old) = inner.entries.insert(key.clone(), body) {
            inner.bytes -= old.len() + key.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_the_current_generation() {
        let c = ListCache::default();
        c.put(5, "k".into(), Bytes::from_static(b"five"));
        assert_eq!(c.get(5, "k").as_deref(), Some(&b"five"[..]));
        assert_eq!(c.get(6, "k"), None);
        c.put(4, "k".into(), Bytes::from_static(b"four"));
        assert_eq!(
            c.get(5, "k").as_deref(),
            Some(&b"five"[..]),
            "older pages are not stored"
        );
        c.put(6, "j".into(), Bytes::from_static(b"six"));
        assert_eq!(c.get(5, "k"), None);
        assert_eq!(c.get(6, "j").as_deref(), Some(&b"six"[..]));
    }

    #[test]
    fn bounded() {
        let c = ListCache::default();
        let body = Bytes::from(vec![0u8; MAX_ENTRY]);
        for i in 0..(MAX_BYTES / MAX_ENTRY + 2) {
            c.put(1, format!("k{i}"), body.clone());
        }
        assert!(c.inner.lock().unwrap().bytes <= MAX_BYTES);
        c.put(1, "huge".into(), Bytes::from(vec![0u8; MAX_ENTRY + 1]));
        assert_eq!(c.get(1, "huge"), None);
    }
}

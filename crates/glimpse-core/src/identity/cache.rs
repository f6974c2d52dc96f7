//! The in-memory token validation cache. Entries are keyed by the token's hash and stamped
//! with the identity's revision counter as read *before* the database was consulted; every
//! change that could revoke or alter a token (role removal, password change, disable, delete,
//! revoke) bumps the counter *after* its write commits, so a stamped entry from before the
//! change can never be served again in this process. Entries also age out after `ttl`
//! (bounding staleness across several identity processes sharing one database) and never
//! outlive the token. Bounded in size. Lost on a crash, which is harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::tokens::TokenInfo;

const MAX_ENTRIES: usize = 10_000;

struct Entry {
    info: Arc<TokenInfo>,
    revision: u64,
    at: Instant,
}

pub struct ValidationCache {
    revision: AtomicU64,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ValidationCache {
    /// `ttl` zero disables caching.
    pub fn new(ttl: Duration) -> ValidationCache {
        ValidationCache {
            revision: AtomicU64::new(0),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The current revision; read it before consulting the database.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// Invalidates every cached answer; call after a revoking change commits.
    pub fn bump(&self) {
        self.revision.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self, hash: &str) -> Option<Arc<TokenInfo>> {
        if self.ttl.is_zero() {
            return None;
        }
        let current = self.revision();
        let entries = self.entries.lock().ok()?;
        let e = entries.get(hash)?;
        let fresh = e.revision == current
            && e.at.elapsed() < self.ttl
            && e.info.expires_at > chrono::Utc::now();
        fresh.then(|| e.info.clone())
    }

    pub fn put(&self, hash: String, info: Arc<TokenInfo>, revision: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let current = self.revision();
            let now = chrono::Utc::now();
            entries.retain(|_, e| {
                e.revision == current && e.at.elapsed() < self.ttl && e.info.expires_at > now
            });
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash,
            Entry {
                info,
                revision,
                at: Instant::now(),
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn info(expires_in: i64) -> Arc<TokenInfo> {
        Arc::new(TokenInfo {
            user_id: "u".into(),
            user_name: "u".into(),
            project: None,
            roles: vec![],
            methods: vec!["password".into()],
            audit_ids: vec!["a".into()],
            issued_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::seconds(expires_in),
        })
    }

    #[test]
    fn bump_invalidates() {
        let c = ValidationCache::new(Duration::from_secs(60));
        let r = c.revision();
        c.put("h".into(), info(60), r);
        assert!(c.get("h").is_some());
        c.bump();
        assert!(c.get("h").is_none());
    }

    #[test]
    fn stale_revision_never_served() {
        let c = ValidationCache::new(Duration::from_secs(60));
        let r = c.revision();
        c.bump(); // a revoking change lands while we were reading the database
        c.put("h".into(), info(60), r);
        assert!(c.get("h").is_none());
    }

    #[test]
    fn expired_and_disabled() {
        let c = ValidationCache::new(Duration::from_secs(60));
        c.put("h".into(), info(-1), c.revision());
        assert!(c.get("h").is_none());
        let off = ValidationCache::new(Duration::ZERO);
        off.put("h".into(), info(60), off.revision());
        assert!(off.get("h").is_none());
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn bounded() {
        let c = ValidationCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES + 5) {
            c.put(format!("h{i}"), info(60), c.revision());
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}

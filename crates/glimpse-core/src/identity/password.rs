//! Password hashing (argon2id, random salt, PHC string) and generation of random passwords and
//! token secrets. Passwords are never stored or logged in the clear. Stateless: nothing to
//! recover on a crash.
//!
//! Every hash and every check runs in [`Passwords`]: a fixed number of slots (as Keystone bounds
//! its password checks with a fixed worker pool), each with argon2's working memory allocated
//! once and reused, on the blocking pool so a hash never stalls the async workers. A login storm
//! therefore holds `slots × memory` and no more; a caller that waits longer than the queue
//! allows gets 503 with `Retry-After` instead of a slot.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Longest password accepted (Keystone's limit is 4096 characters; argon2 does not care, but
/// hashing megabytes on request would be a cheap denial of service).
pub const MAX_PASSWORD_LEN: usize = 4096;

/// Largest argon2 memory a stored hash may ask a check to spend (1 GiB); a hash beyond it
/// never matches.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// How passwords are hashed and how many checks run at once (`[identity] password_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// argon2id memory per hash, KiB. 7 MiB and 5 passes is one of OWASP's equivalent
    /// parameter sets (as strong as the crate default of 19 MiB and 2 passes), chosen because
    /// every check in flight holds that memory and the service aims to stay small.
    pub memory_kib: u32,
    pub passes: u32,
    /// Hashes and checks at once; 0: one per core, at most four.
    pub slots: usize,
    /// How long a check may wait for a slot before the caller gets 503.
    pub queue_wait: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            memory_kib: 7 * 1024,
            passes: 5,
            slots: 0,
            queue_wait: Duration::from_secs(10),
        }
    }
}

/// The bounded password hasher and checker (one per identity service).
pub struct Passwords {
    slots: Semaphore,
    queue_wait: Duration,
    work: Arc<Work>,
}

/// What a blocking hash needs: the parameters for new hashes, the reusable working memory of
/// idle slots, and the stand-in hash checked for unknown users.
struct Work {
    params: Params,
    memory: Mutex<Vec<Vec<Block>>>,
    dummy: OnceLock<String>,
}

impl Passwords {
    pub fn new(settings: &Settings) -> Result<Passwords> {
        let params = Params::new(settings.memory_kib, settings.passes, 1, None)
            .map_err(|e| Error::bad_request(format!("argon2 parameters: {e}")))?;
        let slots = match settings.slots {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            n => n,
        };
        Ok(Passwords {
            slots: Semaphore::new(slots),
            queue_wait: settings.queue_wait,
            work: Arc::new(Work {
                params,
                memory: Mutex::new(Vec::new()),
                dummy: OnceLock::new(),
            }),
        })
    }

    /// Hashes `password` to a PHC string (`$argon2id$v=19$…`).
    pub async fn hash(&self, password: &str) -> Result<String> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(Error::bad_request(format!(
                "Invalid input for field 'password': at most {MAX_PASSWORD_LEN} characters."
            )));
        }
        let password = password.to_string();
        self.in_slot(move |work, memory| work.hash(&password, memory))
            .await?
    }

    /// True when `password` matches the stored PHC string. With no stored hash (unknown user
    /// or a user without password) it still spends one hash's time, so timing does not reveal
    /// which. Err only when no slot came free in time (503).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        if password.len() > MAX_PASSWORD_LEN {
            return Ok(false);
        }
        let password = password.to_string();
        let stored = stored.map(str::to_string);
        self.in_slot(move |work, memory| match &stored {
            Some(s) => work.matches(&password, s, memory),
            None => {
                let dummy = work
                    .dummy
                    .get_or_init(|| work.hash(&generate(), memory).unwrap_or_default());
                let _ = work.matches(&password, dummy, memory);
                false
            }
        })
        .await
    }

    /// Runs `f` on the blocking pool in a free slot with that slot's working memory.
    async fn in_slot<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Work, &mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let _slot = match tokio::time::timeout(self.queue_wait, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                tracing::debug!("password check refused: every slot busy for the whole queue wait");
                return Err(Error::unavailable(
                    "Too many authentications are in progress; try again shortly.",
                )
                .retry_after(self.queue_wait.as_secs().max(1)));
            }
        };
        let work = self.work.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = work.take_memory();
            let out = f(&work, &mut memory);
            work.put_memory(memory);
            out
        })
        .await
        .map_err(Error::internal)
    }
}

impl Work {
    fn take_memory(&self) -> Vec<Block> {
        self.memory
            .lock()
            .map(|mut idle| idle.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn put_memory(&self, memory: Vec<Block>) {
        if let Ok(mut idle) = self.memory.lock() {
            idle.push(memory);
        }
    }

    fn hash(&self, password: &str, memory: &mut Vec<Block>) -> Result<String> {
        let salt = Salt::new(uuid::Uuid::new_v4().as_bytes()).map_err(Error::internal)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut out,
                sized(memory, &self.params),
            )
            .map_err(|e| Error::internal(format!("argon2: {e}")))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(Error::internal)?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(Error::internal)?),
        };
        Ok(phc.to_string())
    }

    /// Recomputes the stored hash's function (its own algorithm and parameters, so older
    /// hashes keep working) over `password` and compares in constant time.
    fn matches(&self, password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
        let Ok(phc) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            return false;
        };
        let algorithm = Algorithm::try_from(phc.algorithm.as_str());
        let version = phc
            .version
            .map_or(Ok(Version::default()), Version::try_from);
        let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&phc))
        else {
            return false;
        };
        if params.m_cost() > MAX_MEMORY_KIB {
            return false;
        }
        let mut out = vec![0u8; expected.len()];
        let computed = Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                sized(memory, &params),
            );
        computed.is_ok() && Output::new(&out).is_ok_and(|o| &o == expected)
    }
}

/// The first `block_count` blocks of a slot's memory, growing it when a hash asks for more.
fn sized<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, Block::default());
    }
    &mut memory[..need]
}

/// A random password for generated accounts: 32 hex characters (128 bits).
pub fn generate() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new opaque token: 64 hex characters from two random v4 UUIDs (244 random bits).
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A Keystone-style audit id: 22 characters of URL-safe base64 (16 random bytes, no padding).
pub fn new_audit_id() -> String {
    base64url(uuid::Uuid::new_v4().as_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The sha256 (lower-case hex) under which a token is stored.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_are_22_url_safe_chars() {
        let a = new_audit_id();
        assert_eq!(a.len(), 22);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
    }

    #[test]
    fn tokens_are_64_hex() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(token_hash(&t).len(), 64);
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(&Settings::default()).unwrap();
        let h = p.hash("s3cret").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(p.verify("s3cret", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong", Some(&h)).await.unwrap());
        assert!(!p.verify("s3cret", None).await.unwrap());
        assert!(!p.verify("s3cret", Some("garbage")).await.unwrap());
    }

    /// Hashes made by the argon2 crate's own hasher (other parameters, as stored before the
    /// parameters became configurable) still verify.
    #[tokio::test]
    async fn verifies_hashes_of_other_parameters() {
        use argon2::password_hash::PasswordHasher;
        let older = Argon2::default().hash_password(b"old").unwrap().to_string();
        assert!(older.contains("m=19456"), "{older}");
        let p = Passwords::new(&Settings {
            memory_kib: 64,
            passes: 1,
            ..Settings::default()
        })
        .unwrap();
        assert!(p.verify("old", Some(&older)).await.unwrap());
        assert!(!p.verify("new", Some(&older)).await.unwrap());
        let h = p.hash("new").await.unwrap();
        assert!(h.contains("m=64,t=1,p=1"), "{h}");
        assert!(p.verify("new", Some(&h)).await.unwrap());
    }

    /// With every slot taken for longer than the queue wait, a check is refused with 503 and a
    /// Retry-After, instead of piling up another hash's memory.
    #[tokio::test]
    async fn a_full_queue_answers_unavailable() {
        let p = Passwords::new(&Settings {
            slots: 1,
            queue_wait: Duration::from_millis(1),
            ..Settings::default()
        })
        .unwrap();
        let _held = p.slots.acquire().await.unwrap();
        let e = p.verify("x", None).await.unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Unavailable);
        assert_eq!(e.retry_after, Some(1));
    }
}

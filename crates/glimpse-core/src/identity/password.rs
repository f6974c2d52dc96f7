//! Password hashing (argon2id, random salt, PHC string) on the blocking
//! pool so a hash never stalls the async workers, and generation of random passwords and
//! token secrets. Passwords are never stored or logged in the clear. Stateless: nothing to
//! recover on a crash.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

/// Longest password accepted (Keystone's limit is 4096 characters; argon2 does not care, but
/// hashing megabytes on request would be a cheap denial of service).
pub const MAX_PASSWORD_LEN: usize = 4096;

/// Hashes `password` to a PHC string (`$argon2id$v=19$…`).
pub async fn hash(password: &str) -> Result<String> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::bad_request(format!(
            "Invalid input for field 'password': at most {MAX_PASSWORD_LEN} characters."
        )));
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(Error::internal)?
}

/// argon2id with 7 MiB of memory and 5 passes: one of OWASP's equivalent parameter sets
/// (as strong as the crate default of 19 MiB and 2 passes), chosen because every concurrent
/// login holds that memory and the service aims to stay small. Verification reads the
/// parameters from the stored hash, so older hashes keep working.
fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// True when `password` matches the stored PHC string. With no stored hash (unknown user or a
/// user without password) it still spends one hash's time, so timing does not reveal which.
pub async fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let password = password.to_string();
    let stored = stored.map(str::to_string);
    tokio::task::spawn_blocking(move || match stored {
        Some(s) => verify_blocking(&password, &s),
        None => {
            let _ = verify_blocking(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("no such user").unwrap_or_default())
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
        let h = hash("s3cret").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", Some(&h)).await);
        assert!(!verify("wrong", Some(&h)).await);
        assert!(!verify("s3cret", None).await);
        assert!(!verify("s3cret", Some("garbage")).await);
    }
}

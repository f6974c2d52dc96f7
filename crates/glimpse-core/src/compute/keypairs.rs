//! Nova key pairs (`os-keypairs`): named SSH public keys of a user (not of a project), which a
//! server may name at creation (`key_name`). A key pair is imported (`public_key` given) or
//! generated here: an Ed25519 key whose private half, in OpenSSH's own format, is returned
//! once and never stored (Nova generates RSA; any SSH client takes either).
//!
//! Validation follows Nova's before microversion 2.92: a name of 1 to 255 characters of
//! letters, digits, spaces, `_` and `-` (400); a public key whose type and base64 blob an SSH
//! client would accept (400 "Keypair data is invalid"); one name per user (409); at most
//! [`MAX_PER_USER`] key pairs per user (403, Nova's default `key_pairs` quota). The
//! fingerprint is Nova's: the md5 of the key blob in colon-separated hex.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use glimpse_types::{db_time, now};
use sqlx::Row;

use crate::auth::Caller;
use crate::db::is_unique_violation;
use crate::db::rows::lenient_time;
use crate::error::{Error, Result};
use crate::region::Region;

/// Key pairs one user may hold (Nova's default quota).
pub const MAX_PER_USER: i64 = 100;

/// SSH public key types accepted on import.
const SSH_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-ed25519",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A stored key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keypair {
    /// Nova's integer id (shown by `GET /os-keypairs/{name}`).
    pub id: i64,
    pub user_id: String,
    pub name: String,
    /// `ssh` (the only type here).
    pub kind: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

/// What `POST /os-keypairs` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKeypair {
    pub name: String,
    /// Import this key; `None`: generate one.
    pub public_key: Option<String>,
    /// `ssh` or `x509` (microversion 2.2); `None`: `ssh`.
    pub kind: Option<String>,
}

fn invalid_data() -> Error {
    Error::bad_request("Keypair data is invalid: failed to generate fingerprint")
}

/// Checks a key pair name as Nova's schema does (before 2.92).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-')
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Invalid input for field/attribute name. Value: {name}. '{name}' is not a \
             'keypair_name_20'"
        )))
    }
}

/// Reads one SSH wire-format `string` (u32 length + bytes) from `data` at `*at`.
fn ssh_string<'a>(data: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(data.get(*at..*at + 4)?.try_into().ok()?) as usize;
    let s = data.get(*at + 4..(*at + 4).checked_add(len)?)?;
    *at += 4 + len;
    Some(s)
}

/// Appends an SSH wire-format `string`.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The fingerprint of an OpenSSH public key line (`<type> <base64 blob> [comment]`), after
/// checking that the blob is well-formed and names the same type; 400 otherwise.
pub fn fingerprint(public_key: &str) -> Result<String> {
    let mut parts = public_key.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(invalid_data());
    };
    if !SSH_TYPES.contains(&kind) {
        return Err(invalid_data());
    }
    let blob = STANDARD.decode(b64).map_err(|_| invalid_data())?;
    let mut at = 0;
    let inner = ssh_string(&blob, &mut at).ok_or_else(invalid_data)?;
    // The blob's own type, then at least one more field (the key itself).
    if inner != kind.as_bytes() || ssh_string(&blob, &mut at).is_none() {
        return Err(invalid_data());
    }
    let md5 = glimpse_store::digest_bytes(&blob).md5;
    Ok(md5
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// A new Ed25519 key pair: the OpenSSH public key line and the private key in OpenSSH's
/// format (`-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted).
fn generate(comment: &str) -> Result<(String, String)> {
    let seed: [u8; 32] = glimpse_store::sealed::random();
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| Error::internal(format!("key generation failed: {e}")))?;
    let public: &[u8] = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref();
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, public);
    let public_line = format!("ssh-ed25519 {} {comment}", STANDARD.encode(&blob));

    // openssh-key-v1: no cipher, no KDF, one key; the private section is padded to 8 bytes.
    let check = u32::from_be_bytes(glimpse_store::sealed::random::<4>());
    let mut private = Vec::new();
    private.extend_from_slice(&check.to_be_bytes());
    private.extend_from_slice(&check.to_be_bytes());
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, public);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(public);
    put_string(&mut private, &secret);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut doc = b"openssh-key-v1\0".to_vec();
    put_string(&mut doc, b"none");
    put_string(&mut doc, b"none");
    put_string(&mut doc, b"");
    doc.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut doc, &blob);
    put_string(&mut doc, &private);
    let body = STANDARD.encode(&doc);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let pem = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    );
    Ok((public_line, pem))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Keypair> {
    Ok(Keypair {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        kind: row.try_get("type")?,
        public_key: row.try_get("public_key")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: lenient_time(row, "created_at")?.unwrap_or_else(now),
    })
}

fn not_found(caller: &Caller, name: &str) -> Error {
    Error::not_found(format!(
        "Keypair {name} not found for user {}",
        caller.user_id
    ))
}

/// Imports or generates a key pair of the caller; the private key when generated.
pub async fn create(
    region: &Region,
    caller: &Caller,
    new: NewKeypair,
) -> Result<(Keypair, Option<String>)> {
    check_name(&new.name)?;
    match new.kind.as_deref() {
        None | Some("ssh") => {}
        Some("x509") => {
            return Err(Error::bad_request(
                "x509 key pairs are not supported here: only ssh.",
            ));
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "Invalid input for field/attribute type. Value: {other}. '{other}' is not one \
                 of ['ssh', 'x509']"
            )));
        }
    }
    let (public_key, private_key) = match new.public_key {
        Some(k) => (k.trim().to_string(), None),
        None => {
            let (public, private) = generate("Generated-by-Glimpse")?;
            (public, Some(private))
        }
    };
    let fingerprint = fingerprint(&public_key)?;
    let mut tx = region.db.pool.begin().await?;
    let held: i64 = sqlx::query("SELECT COUNT(*) AS n FROM keypairs WHERE user_id = $1")
        .bind(&caller.user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if held >= MAX_PER_USER {
        return Err(Error::forbidden("Quota exceeded, too many key pairs."));
    }
    let created_at = now();
    let inserted = sqlx::query(
        "INSERT INTO keypairs (user_id, name, type, public_key, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&caller.user_id)
    .bind(&new.name)
    .bind("ssh")
    .bind(&public_key)
    .bind(&fingerprint)
    .bind(db_time(created_at))
    .fetch_one(&mut *tx)
    .await;
    let id: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::conflict(format!(
                "Key pair '{}' already exists.",
                new.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok((
        Keypair {
            id,
            user_id: caller.user_id.clone(),
            name: new.name,
            kind: "ssh".into(),
            public_key,
            fingerprint,
            created_at,
        },
        private_key,
    ))
}

/// The caller's key pairs, by name.
pub async fn list(region: &Region, caller: &Caller) -> Result<Vec<Keypair>> {
    sqlx::query("SELECT * FROM keypairs WHERE user_id = $1 ORDER BY name")
        .bind(&caller.user_id)
        .fetch_all(&region.db.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One of the caller's key pairs (404 for any other user's).
pub async fn get(region: &Region, caller: &Caller, name: &str) -> Result<Keypair> {
    let row = sqlx::query("SELECT * FROM keypairs WHERE user_id = $1 AND name = $2")
        .bind(&caller.user_id)
        .bind(name)
        .fetch_optional(&region.db.pool)
        .await?;
    match row {
        Some(r) => from_row(&r),
        None => Err(not_found(caller, name)),
    }
}

/// Deletes one of the caller's key pairs (404 if it has none by that name). Servers keep the
/// name they were created with, as in Nova.
pub async fn delete(region: &Region, caller: &Caller, name: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM keypairs WHERE user_id = $1 AND name = $2")
        .bind(&caller.user_id)
        .bind(name)
        .execute(&region.db.pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(not_found(caller, name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_md5_of_the_blob_and_bad_keys_are_refused() {
        let (public, private) = generate("c").unwrap();
        assert!(public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA"));
        let fp = fingerprint(&public).unwrap();
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.matches(':').count(), 15);
        for bad in [
            "",
            "ssh-rsa",
            "ssh-rsa not-base64!",
            "ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQ==",
            // The blob says ssh-ed25519, the line says ssh-rsa.
            &public.replacen("ssh-ed25519", "ssh-rsa", 1),
            // The type alone, no key.
            &format!("ssh-ed25519 {}", STANDARD.encode(b"\0\0\0\x0bssh-ed25519")),
        ] {
            assert!(fingerprint(bad).is_err(), "{bad:?}");
        }
        for bad in ["", " lead", "trail ", "bad/char", &"x".repeat(256)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("my key_1-2").unwrap();
    }

    /// OpenSSH itself reads the generated private key back to the same public key, and
    /// computes the same md5 fingerprint (skipped where ssh-keygen is missing, except in CI).
    #[test]
    fn ssh_keygen_accepts_the_generated_pair() {
        let present = std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_ok();
        if !present {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "needs ssh-keygen"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("glimpse-kp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (public, private) = generate("Generated-by-Glimpse").unwrap();
        let key = dir.join("id");
        std::fs::write(&key, &private).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .args(["-y", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let derived = String::from_utf8(out.stdout).unwrap();
        let two = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(two(&derived), two(&public));
        std::fs::write(dir.join("id.pub"), format!("{public}\n")).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-E", "md5", "-f"])
            .arg(dir.join("id.pub"))
            .output()
            .unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(
            line.contains(&format!("MD5:{}", fingerprint(&public).unwrap())),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The operator's master key: the one secret that wraps every customer master key of a
//! region. It comes from `GLIMPSE_KMS_MASTER_KEY` (64 hex characters) or from the file
//! `[regions.kms] master_key_file` (64 hex characters; refused when group or others may read
//! it). When the file is the default one under the data directory and missing, a random key is
//! written there with mode 0600: convenient for development, but a key stored beside the data
//! it protects protects nothing against someone who copies the data directory.

use std::io::Write;
use std::path::Path;

use glimpse_store::sealed::{Key, random};

use crate::config::KmsConfig;

/// The environment variable that overrides the master key file.
pub const ENV: &str = "GLIMPSE_KMS_MASTER_KEY";
/// The environment variable that overrides the previous master key file (a rotation).
pub const PREVIOUS_ENV: &str = "GLIMPSE_KMS_PREVIOUS_MASTER_KEY";

fn parse(text: &str, from: &str) -> anyhow::Result<Key> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| anyhow::anyhow!("{from}: the KMS master key must be 64 hex characters"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{from}: the KMS master key must be 64 hex characters"))
}

/// Loads (or, for the default file, creates) the master key.
pub fn load(config: &KmsConfig) -> anyhow::Result<Key> {
    if let Ok(v) = std::env::var(ENV)
        && !v.trim().is_empty()
    {
        return parse(&v, ENV);
    }
    if config.master_key_file.is_empty() {
        // Only an unresolved configuration (a test building a region by hand) gets here:
        // `Config::resolve` always names a file.
        tracing::warn!("no KMS master key configured: using a throwaway key for this process");
        return Ok(random());
    }
    let path = Path::new(&config.master_key_file);
    match read_key_file(path) {
        Ok(key) => Ok(key),
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                && config.generate =>
        {
            let key: Key = random();
            write_new(path, &hex::encode(key))?;
            tracing::warn!(file = %path.display(),
                "generated a development KMS master key in the data directory; \
                 set [regions.kms] master_key_file or GLIMPSE_KMS_MASTER_KEY in production");
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// The master key being rotated out, if a rotation is in progress
/// (`GLIMPSE_KMS_PREVIOUS_MASTER_KEY`, else `[regions.kms] previous_master_key_file`).
pub fn load_previous(config: &KmsConfig) -> anyhow::Result<Option<Key>> {
    if let Ok(v) = std::env::var(PREVIOUS_ENV)
        && !v.trim().is_empty()
    {
        return parse(&v, PREVIOUS_ENV).map(Some);
    }
    if config.previous_master_key_file.is_empty() {
        return Ok(None);
    }
    read_key_file(Path::new(&config.previous_master_key_file)).map(Some)
}

/// A key file: 64 hex characters, readable by its owner only. A missing file's error keeps
/// its `std::io::Error` (NotFound) for the caller to tell apart.
fn read_key_file(path: &Path) -> anyhow::Result<Key> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = format!("cannot read the KMS master key file {}", path.display());
        anyhow::Error::new(e).context(what)
    })?;
    check_mode(path)?;
    parse(&text, &path.display().to_string())
}

#[cfg(unix)]
fn check_mode(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the KMS master key file {} must not be readable by group or others (chmod 600)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Creates `path` with mode 0600 (failing if it appeared meanwhile) and fsyncs it.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_only_the_default_file_and_refuses_loose_modes() {
        let dir = std::env::temp_dir().join(format!("glimpse-kms-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k");
        let named = KmsConfig {
            master_key_file: file.display().to_string(),
            previous_master_key_file: String::new(),
            generate: false,
        };
        assert!(load(&named).is_err(), "a named missing file is an error");
        let default = KmsConfig {
            generate: true,
            ..named.clone()
        };
        let k1 = load(&default).unwrap();
        assert_eq!(load(&named).unwrap(), k1, "the generated key is reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(load(&named).is_err());
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // The previous key of a rotation: none unless named; a named one must exist.
        assert_eq!(load_previous(&named).unwrap(), None);
        let rotating = KmsConfig {
            previous_master_key_file: file.display().to_string(),
            ..named.clone()
        };
        assert_eq!(load_previous(&rotating).unwrap(), Some(k1));
        let missing = KmsConfig {
            previous_master_key_file: dir.join("nope").display().to_string(),
            ..named
        };
        assert!(load_previous(&missing).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

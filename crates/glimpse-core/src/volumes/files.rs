//! Volume files: a volume is the raw file `<disks>/volumes/<volume id>.raw` (under the region's
//! local disk directory, [`crate::disks::dir`]), sparse, exactly `size_gb` GiB long.
//! Conversions (upload to an image, creation from an image) work in `<disks>/work/`, on files
//! named after the volume or image, removed when the job ends.
//!
//! Crash behaviour: a blank file is created under a temporary name, sized, fsynced and renamed
//! into place, so a volume's path either does not exist or holds a whole volume. Leftover
//! temporary files of a killed job are removed by the job's next attempt (same names).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::region::Region;

/// The volume directory of a region.
pub fn dir(region: &Region) -> PathBuf {
    crate::disks::dir(region).join("volumes")
}

/// Where temporary conversion files live.
pub fn tmp_dir(region: &Region) -> PathBuf {
    crate::disks::dir(region).join("work")
}

/// The path of a volume's file. Ids are UUIDs we generated; anything else is refused so a
/// path can never leave the directory.
pub fn path(region: &Region, id: &str) -> Result<PathBuf> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(Error::internal(format!("unusable volume id {id:?}")));
    }
    Ok(dir(region).join(format!("{id}.raw")))
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("{what} {}: {e}", p.display()))
}

/// Creates (or re-creates) a blank sparse volume file of `bytes` bytes.
pub async fn create_blank(region: &Region, id: &str, bytes: u64) -> Result<PathBuf> {
    let target = path(region, id)?;
    let tmp = tmp_dir(region).join(format!("{id}.blank"));
    let (t, p) = (target.clone(), tmp.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let parent = t.parent().unwrap_or(Path::new("."));
        for d in [parent, p.parent().unwrap_or(parent)] {
            std::fs::create_dir_all(d).map_err(|e| io("mkdir", d, e))?;
        }
        let f = std::fs::File::create(&p).map_err(|e| io("create", &p, e))?;
        f.set_len(bytes).map_err(|e| io("size", &p, e))?;
        f.sync_all().map_err(|e| io("fsync", &p, e))?;
        std::fs::rename(&p, &t).map_err(|e| io("rename", &t, e))?;
        sync_dir(parent).map_err(|e| io("fsync", parent, e))?;
        Ok(())
    })
    .await
    .map_err(|e| Error::internal(format!("volume file task: {e}")))??;
    Ok(target)
}

/// Moves a finished file (e.g. a conversion's output) into place as the volume's file, after
/// giving it exactly `bytes` bytes.
pub async fn install(region: &Region, id: &str, from: PathBuf, bytes: u64) -> Result<PathBuf> {
    let target = path(region, id)?;
    let t = target.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        if let Some(parent) = t.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("mkdir", parent, e))?;
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&from)
            .map_err(|e| io("open", &from, e))?;
        f.set_len(bytes).map_err(|e| io("size", &from, e))?;
        f.sync_all().map_err(|e| io("fsync", &from, e))?;
        std::fs::rename(&from, &t).map_err(|e| io("rename", &t, e))?;
        let parent = t.parent().unwrap_or(Path::new("."));
        sync_dir(parent).map_err(|e| io("fsync", parent, e))?;
        Ok(())
    })
    .await
    .map_err(|e| Error::internal(format!("volume file task: {e}")))??;
    Ok(target)
}

/// Sets a volume file's length (growing adds zeros without using space).
pub async fn resize(region: &Region, id: &str, bytes: u64) -> Result<()> {
    let p = path(region, id)?;
    tokio::task::spawn_blocking(move || -> Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .map_err(|e| io("open", &p, e))?;
        f.set_len(bytes).map_err(|e| io("size", &p, e))?;
        f.sync_all().map_err(|e| io("fsync", &p, e))
    })
    .await
    .map_err(|e| Error::internal(format!("volume file task: {e}")))?
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes a volume's file (already gone is fine).
pub async fn remove(region: &Region, id: &str) -> Result<()> {
    remove_path(&path(region, id)?).await
}

/// Removes a file; a missing one is fine.
pub async fn remove_path(p: &Path) -> Result<()> {
    match tokio::fs::remove_file(p).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", p, e)),
    }
}

/// A fresh temporary path for a job's conversion output (a leftover of an earlier attempt
/// with the same name is removed first).
pub async fn scratch(region: &Region, name: &str) -> Result<PathBuf> {
    let d = tmp_dir(region);
    tokio::fs::create_dir_all(&d)
        .await
        .map_err(|e| io("mkdir", &d, e))?;
    let p = d.join(name);
    remove_path(&p).await?;
    Ok(p)
}

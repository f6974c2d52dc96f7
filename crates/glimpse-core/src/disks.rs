//! Local disks of one region: the directory server (and volume) disks live in, verified local
//! copies of images to build them on, and the way back from a local file to a published image.
//!
//! Layout under [`dir`] (`[regions] disks`, default `<data_dir>/<region>/disks`):
//!
//! * `images/<image id>-<sha512 prefix>`: a cached copy of an active image's bytes
//!   ([`cached_image`]), downloaded once from the region's blob store, its sha512 and size
//!   checked against the image record, and checked as a safe base in its `disk_format`
//!   (inspector + `qemu-img info`, no backing or data file). Never changed after it appears.
//! * `servers/<server id>.qcow2`, `volumes/…`: writable qcow2 overlays over a cached copy
//!   ([`create_overlay`]), owned by the compute and volume modules.
//! * `work/`: scratch files of running jobs (flattened snapshots before upload).
//!
//! Crash behaviour: a cached copy is written to `<name>.part-<uuid>`, fsynced, checked, then
//! renamed and the directory fsynced, so the final name only ever holds a complete, verified
//! copy; leftover `.part-*` files are removed the next time the same copy is fetched.
//! Concurrent callers in one process share one download (a lock per copy). Copies are
//! immutable, so an image deleted from Glance keeps its cached copy while disks use it.
//!
//! Eviction ([`evict_cached`], run by the region's hourly housekeeping): a copy no server
//! disk sits on (`servers.base_path`) and that nobody fetched or reused for the idle time (its
//! mtime, refreshed on every reuse) is deleted, with leftover `.part-*` files as old; a later
//! use downloads it again. A copy in use by a running conversion (a volume being made) may be
//! unlinked under it harmlessly: the open file stays readable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use futures::StreamExt;
use glimpse_formats::qemu::{QemuError, QemuLimits};
use glimpse_formats::{DiskFormat, overlay};
use glimpse_types::ImageStatus;
use tokio::io::AsyncWriteExt;

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::images::{Expected, Image};
use crate::region::Region;

/// The region's local disk directory (created on first use).
pub fn dir(region: &Region) -> PathBuf {
    PathBuf::from(&region.config.disks)
}

/// A subdirectory of [`dir`], created if missing.
pub async fn subdir(region: &Region, name: &str) -> Result<PathBuf> {
    let d = dir(region).join(name);
    tokio::fs::create_dir_all(&d)
        .await
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", d.display())))?;
    Ok(d)
}

/// The limits every qemu child of a disk operation runs under.
pub fn qemu_limits() -> QemuLimits {
    QemuLimits {
        cpu_seconds: 600,
        wall: std::time::Duration::from_secs(1800),
        ..QemuLimits::default()
    }
}

/// The format of an image's bytes as a disk, if qemu can use it as one (400 otherwise).
pub fn disk_format(image: &Image) -> Result<DiskFormat> {
    let claimed = image.disk_format.as_deref().unwrap_or("");
    DiskFormat::parse(claimed)
        .filter(|f| glimpse_formats::qemu::qemu_name(*f).is_some())
        .ok_or_else(|| {
            Error::bad_request(format!(
                "Image {} has disk format {claimed:?}, which cannot be used as a disk.",
                image.id
            ))
        })
}

/// A qemu runner error as a domain error: refusals of the input are the caller's (400),
/// everything else is ours (500, retryable in a job).
pub fn qemu_error(what: &str, e: QemuError) -> Error {
    match e {
        QemuError::InputRejected(_)
        | QemuError::InfoRejected(_)
        | QemuError::Encrypted
        | QemuError::UnsupportedFormat(_) => Error::bad_request(format!("{what}: {e}")),
        e => Error::internal(format!("{what}: {e}")),
    }
}

static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The in-process lock of one cached copy; dropping the guard forgets the lock once nobody
/// else holds or waits for it, so the table does not grow with every image ever used.
struct CopyLock {
    path: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl CopyLock {
    fn new(path: &Path) -> CopyLock {
        let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        let lock = locks.entry(path.to_path_buf()).or_default().clone();
        CopyLock {
            path: path.to_path_buf(),
            lock,
        }
    }
}

impl Drop for CopyLock {
    fn drop(&mut self) {
        let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        // The table's reference and ours: nobody else is waiting.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.path);
        }
    }
}

/// A verified local copy of `image`'s bytes (see the module documentation), downloading it
/// if this region has none yet. The image must be `active` with data (409 otherwise); the
/// caller has already checked that it may use the image. Its `disk_format` must be one qemu
/// can use as a disk, and the bytes must pass the inspector and `qemu-img info` as a safe
/// image of that format (400 otherwise). Safe to call concurrently for the same image.
pub async fn cached_image(region: &Region, image: &Image) -> Result<PathBuf> {
    let format = disk_format(image)?;
    let (Some(_), Some(hash), Some(size)) = (
        image.blob_key.as_deref(),
        image.os_hash_value.as_deref(),
        image.size,
    ) else {
        return Err(Error::conflict(format!(
            "Image {} is not active (its status is {}).",
            image.id,
            image.status.as_str()
        )));
    };
    if image.status != ImageStatus::Active {
        return Err(Error::conflict(format!(
            "Image {} is not active (its status is {}).",
            image.id,
            image.status.as_str()
        )));
    }
    let cache = subdir(region, "images").await?;
    let name = format!("{}-{}", image.id, &hash[..hash.len().min(16)]);
    let path = cache.join(&name);
    let copy = CopyLock::new(&path);
    let _held = copy.lock.lock().await;
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        if meta.len() == size as u64 {
            touch(&path).await;
            return Ok(path);
        }
        tracing::warn!(path = %path.display(), "cached image has the wrong size; fetching again");
        let _ = tokio::fs::remove_file(&path).await;
    }
    remove_partials(&cache, &name).await;
    let part = cache.join(format!("{name}.part-{}", uuid::Uuid::new_v4().simple()));
    let fetched = fetch(region, image, &part, hash, size as u64).await;
    let checked = match fetched {
        Ok(()) => overlay::check_base(&part, format, &qemu_limits())
            .await
            .map(|_| ())
            .map_err(|e| qemu_error(&format!("Image {} cannot be used as a disk", image.id), e)),
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, &path)
        .await
        .map_err(|e| Error::internal(format!("cannot publish {}: {e}", path.display())))?;
    sync_dir(&cache).await;
    Ok(path)
}

/// Marks a cached copy as used now (its mtime), so eviction leaves it alone for a while.
async fn touch(path: &Path) {
    let p = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
    })
    .await;
}

/// Deletes the cached image copies no server disk sits on and nobody has used for `idle`
/// (and `.part-*` leftovers as old); returns how many files went. See the module
/// documentation.
pub async fn evict_cached(region: &Region, idle: std::time::Duration) -> Result<usize> {
    use sqlx::Row;
    let cache = dir(region).join("images");
    let in_use: std::collections::HashSet<PathBuf> =
        sqlx::query("SELECT DISTINCT base_path FROM servers WHERE base_path IS NOT NULL")
            .fetch_all(&region.db.pool)
            .await?
            .iter()
            .map(|r| {
                r.try_get::<String, _>("base_path")
                    .map(|p| dir(region).join(p))
            })
            .collect::<std::result::Result<_, _>>()?;
    let Ok(mut entries) = tokio::fs::read_dir(&cache).await else {
        return Ok(0);
    };
    let old = |meta: &std::fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > idle)
    };
    let mut evicted = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if in_use.contains(&path) {
            continue;
        }
        // The same lock a fetch or reuse takes, so a copy handed out just now stays.
        let copy = CopyLock::new(&path);
        let _held = copy.lock.lock().await;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() && old(&meta) => {}
            _ => continue,
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                evicted += 1;
                tracing::info!(region = %region.name, path = %path.display(), "evicted an unused cached image copy");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not evict a cached image copy")
            }
        }
    }
    Ok(evicted)
}

/// Removes `.part-*` leftovers of an interrupted download of `name`.
async fn remove_partials(cache: &Path, name: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(cache).await else {
        return;
    };
    let prefix = format!("{name}.part-");
    while let Ok(Some(e)) = entries.next_entry().await {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}

/// Streams blob `key` into `part`, checking sha512 and size, and fsyncs it.
async fn fetch(region: &Region, image: &Image, part: &Path, sha512: &str, size: u64) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("writing {}: {e}", part.display()));
    let mut file = tokio::fs::File::create(part).await.map_err(io)?;
    // Through the image data path, so an encrypted image's bytes arrive decrypted (and a
    // tampered blob fails here).
    let mut stream = crate::images::read(region, image, None).await?;
    // The store's SHA-512 (aws-lc, on its own thread while this one writes): the one
    // implementation that also computed `os_hash_value` at upload.
    let mut hasher = glimpse_store::hashing::Sha512Hasher::new();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
        hasher.update(chunk).await;
    }
    file.sync_all().await.map_err(io)?;
    let got = hasher
        .finish()
        .await
        .map_err(|e| Error::internal(format!("hashing image {}: {e}", image.id)))?;
    if seen != size || !got.eq_ignore_ascii_case(sha512) {
        return Err(Error::internal(format!(
            "the bytes of image {} do not match its record ({seen} bytes, sha512 {got})",
            image.id
        )));
    }
    Ok(())
}

/// fsyncs a directory so a rename in it survives a crash (best effort).
pub async fn sync_dir(dir: &Path) {
    let d = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await;
}

/// Uploads the local file `path` as the data of the `queued` image `image_id` through the
/// one upload pipeline ([`crate::images::data::upload`]): streamed in 1 MiB chunks, hashed,
/// inspected against the image's `disk_format`, checked against `expected`, published
/// `saving → active` only when all of that passed. `caller` must be allowed to upload to the
/// image. On failure the image is back to `queued` with no data (the caller decides whether
/// to delete it); the file is left for the caller to remove.
pub async fn publish_file(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    path: &Path,
    expected: &Expected,
) -> Result<Image> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| Error::internal(format!("cannot stat {}: {e}", path.display())))?
        .len();
    let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
    crate::images::upload(region, caller, image_id, body, Some(len), expected).await
}

/// Creates the qcow2 overlay `overlay` over the cached copy `base` (of `base_format`), of at
/// least `size` bytes (the base's size when smaller or `None`). Returns its virtual size.
pub async fn create_overlay(
    base: &Path,
    base_format: DiskFormat,
    overlay_path: &Path,
    size: Option<u64>,
) -> Result<u64> {
    if let Some(parent) = overlay_path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", parent.display())))?;
    }
    overlay::create(base, base_format, overlay_path, size, &qemu_limits())
        .await
        .map_err(|e| qemu_error("Cannot create the disk", e))
}

/// Writes the guest's view of `overlay_path` over `base` into the new file `output` in format
/// `to`, inspected after conversion (see [`glimpse_formats::overlay::flatten`]).
pub async fn flatten(
    overlay_path: &Path,
    base: &Path,
    base_format: DiskFormat,
    output: &Path,
    to: DiskFormat,
) -> Result<()> {
    overlay::flatten(overlay_path, base, base_format, output, to, &qemu_limits())
        .await
        .map_err(|e| qemu_error("Cannot flatten the disk", e))
}

/// Writes `data` at guest offset `offset` of `overlay_path` (over `base`). The caller checks
/// that the range lies inside the disk; qemu-io refusing it is an internal error here.
pub async fn write_at(
    region: &Region,
    overlay_path: &Path,
    base: &Path,
    base_format: DiskFormat,
    offset: u64,
    data: &[u8],
) -> Result<()> {
    let work = subdir(region, "work").await?;
    let tmp = work.join(format!("write-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&tmp, data)
        .await
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", tmp.display())))?;
    let r = overlay::write(
        overlay_path,
        base,
        base_format,
        offset,
        &tmp,
        data.len() as u64,
        &qemu_limits(),
    )
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    r.map_err(|e| qemu_error("Cannot write to the disk", e))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::RegionConfig;
    use crate::images::model::NewImage;

    async fn region(dir: &Path) -> Region {
        let mut config = RegionConfig::named("r");
        config.database = format!("sqlite://{}", dir.join("region.db").display());
        config.store = format!("file://{}", dir.join("blobs").display());
        config.disks = dir.join("disks").display().to_string();
        config.url = "http://test/r".into();
        crate::testing::open_region(&config).await
    }

    fn member() -> Caller {
        Caller {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: Some("p".into()),
            project_name: Some("p".into()),
            roles: vec!["member".into(), "reader".into()],
            expires_at: glimpse_types::now() + chrono::Duration::hours(1),
        }
    }

    async fn image(r: &Region, disk: &str, container: &str, data: Vec<u8>) -> Image {
        let img = crate::images::create(
            r,
            &member(),
            NewImage {
                name: Some("i".into()),
                disk_format: Some(disk.into()),
                container_format: Some(container.into()),
                ..NewImage::default()
            },
        )
        .await
        .unwrap();
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(data))]);
        crate::images::upload(r, &member(), &img.id, body, None, &Expected::default())
            .await
            .unwrap()
    }

    fn qemu_present() -> bool {
        std::process::Command::new("qemu-img")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// A scratch directory and a region in it; `None` (skip) without qemu-img, except in CI.
    async fn scratch() -> Option<(PathBuf, Region)> {
        if !qemu_present() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "needs qemu-img"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("glimpse-disks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = region(&dir).await;
        Some((dir, r))
    }

    #[tokio::test]
    async fn cached_copies_are_shared_verified_and_published_back() {
        let Some((dir, r)) = scratch().await else {
            return;
        };
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let img = image(&r, "raw", "bare", data.clone()).await;

        // Four concurrent callers, one copy, no partial file left.
        let (a, b, c, d) = tokio::join!(
            cached_image(&r, &img),
            cached_image(&r, &img),
            cached_image(&r, &img),
            cached_image(&r, &img)
        );
        let path = a.unwrap();
        for p in [b, c, d] {
            assert_eq!(p.unwrap(), path);
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let names: Vec<_> = std::fs::read_dir(dir.join("disks/images"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            !LOCKS.lock().unwrap().contains_key(&path),
            "the lock is forgotten"
        );

        // A copy of the wrong size is fetched again.
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(cached_image(&r, &img).await.unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), data);

        // Bytes whose sha512 is not the record's (a blob changed under its record) are
        // refused, and no partial copy stays in the cache.
        let mut forged = img.clone();
        forged.os_hash_value = Some("ab".repeat(64));
        let e = cached_image(&r, &forged).await.unwrap_err();
        assert_eq!(e.kind, crate::Kind::Internal, "{e}");
        assert_eq!(
            std::fs::read_dir(dir.join("disks/images")).unwrap().count(),
            1
        );

        // Bytes that are not the format they claim (an uninspected container) are refused,
        // and nothing stays in the cache.
        let liar = image(&r, "qcow2", "ovf", vec![7u8; 65536]).await;
        let e = cached_image(&r, &liar).await.unwrap_err();
        assert_eq!(e.kind, crate::Kind::BadRequest, "{e}");
        assert_eq!(
            std::fs::read_dir(dir.join("disks/images")).unwrap().count(),
            1
        );

        // publish_file: the upload pipeline, hashes included.
        let fresh = crate::images::create(
            &r,
            &member(),
            NewImage {
                disk_format: Some("raw".into()),
                container_format: Some("bare".into()),
                ..NewImage::default()
            },
        )
        .await
        .unwrap();
        let out = publish_file(&r, &member(), &fresh.id, &path, &Expected::default())
            .await
            .unwrap();
        assert_eq!(out.status, ImageStatus::Active);
        assert_eq!(out.os_hash_value, img.os_hash_value);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Sets a file's mtime `secs` seconds back.
    fn age(path: &Path, secs: u64) {
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }

    #[tokio::test]
    async fn unused_cached_copies_are_evicted_and_used_ones_kept() {
        let Some((dir, r)) = scratch().await else {
            return;
        };
        let hour = std::time::Duration::from_secs(3600);
        let a = image(&r, "raw", "bare", vec![1u8; 65536]).await;
        let b = image(&r, "raw", "bare", vec![2u8; 65536]).await;
        let (pa, pb) = (
            cached_image(&r, &a).await.unwrap(),
            cached_image(&r, &b).await.unwrap(),
        );
        let leftover = pa.with_extension("part-0123");
        std::fs::write(&leftover, b"half").unwrap();
        // Fresh: nothing goes.
        assert_eq!(evict_cached(&r, hour).await.unwrap(), 0);

        // Idle for two hours; `b` is a server's base; `a` is reused just before the sweep.
        for p in [&pa, &pb, &leftover] {
            age(p, 7200);
        }
        let now = glimpse_types::db_time(glimpse_types::now());
        sqlx::query(
            "INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, vm_state, \
             power_state, metadata, image_meta, base_path, created_at, updated_at) \
             VALUES ('s1', 'p', 'u', 's', $1, '1', 'active', 1, '{}', '{}', $2, $3, $3)",
        )
        .bind(&b.id)
        .bind(
            pb.strip_prefix(super::dir(&r))
                .unwrap()
                .display()
                .to_string(),
        )
        .bind(now)
        .execute(&r.db.pool)
        .await
        .unwrap();
        assert_eq!(cached_image(&r, &a).await.unwrap(), pa);
        assert_eq!(
            evict_cached(&r, hour).await.unwrap(),
            1,
            "only the old leftover"
        );
        assert!(pa.exists() && pb.exists() && !leftover.exists());

        // Idle again and no longer reused: `a` goes, `b` stays under its server.
        age(&pa, 7200);
        assert_eq!(evict_cached(&r, hour).await.unwrap(), 1);
        assert!(!pa.exists() && pb.exists());
        // A later use fetches it again, verified.
        assert_eq!(cached_image(&r, &a).await.unwrap(), pa);
        assert_eq!(std::fs::read(&pa).unwrap(), vec![1u8; 65536]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

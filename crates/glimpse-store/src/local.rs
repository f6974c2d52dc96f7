//! The filesystem backend, written by hand because object_store's `LocalFileSystem` neither
//! fsyncs by default nor reads in more than 8 KiB chunks. Layout under the root:
//! `blobs/<id>` for published blobs and `.staging/<id>` for blobs being written.
//!
//! Crash behaviour: a blob is written under `.staging/`, fsynced, renamed into `blobs/` and the
//! directory fsynced, so after a crash a key under `blobs/` is either absent or complete. Files
//! left in `.staging/` are garbage that [`LocalStore::list`] reports for the cleaner, except a
//! resumable partial (below), which is kept for a later write until the cleaner finds it old
//! and unlocked.
//!
//! Resumable writes ([`LocalStore::resume`]) stage under a name the caller chooses,
//! `.staging/partial-<name>`, and keep what they wrote when the body fails, so a later write
//! of the same name can continue from any offset up to the partial's length. The writer holds
//! an exclusive lock (`flock`) on the partial for its whole life, so two writers never
//! interleave; the partial is always a prefix of the bytes sent, in order.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{BlobInfo, StoreError};

const READ_CHUNK: usize = 1 << 20;
/// Chunks the download reader may read ahead of the socket.
const READ_AHEAD: usize = 4;
/// A blob being written is flushed to disk in the background every this many bytes, so the
/// fsync that ends the write waits for the last stretch only, not for the whole blob.
const SYNC_EVERY: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn open(root: &Path) -> Result<LocalStore, StoreError> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join(".staging"))?;
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        // Keys are ours ("blobs/<uuid>"), but never let one climb out of the root.
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    /// Starts a durable write of `key` on a blocking thread fed through a bounded channel.
    pub fn writer(&self, key: &str) -> Result<LocalWriter, StoreError> {
        let target = self.path(key)?;
        let staging = self
            .root
            .join(".staging")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let path = staging.clone();
        // Locked while it is written, so that start-up can tell a dead writer's file (lock
        // free) from a live one's, in this process or another on the same directory. It is
        // made and locked under a `new-` name that start-up leaves alone, then renamed (the
        // lock stays with the file), so it is never under its staging name unlocked.
        let open = move || {
            let fresh = path.with_file_name(format!(
                "new-{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            let file = File::create(&fresh)?;
            file.lock()?;
            std::fs::rename(&fresh, &path)?;
            Ok(file)
        };
        Ok(spawn_writer(open, staging, target))
    }

    /// Where the resumable partial `name` lives (see the module documentation).
    fn partial_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        crate::check_partial_name(name)?;
        Ok(self.root.join(".staging").join(format!("partial-{name}")))
    }

    /// Continues the resumable partial `name` at byte `offset` (creating it when `offset` is
    /// 0), publishing it as `key` when finished. Waits for any earlier writer of the same
    /// partial to end, then cuts the partial to `offset`; [`StoreError::Gap`] if it holds
    /// fewer bytes. The caller re-reads `0..offset` through [`LocalStore::read_partial`].
    pub async fn resume(
        &self,
        name: &str,
        offset: u64,
        key: &str,
    ) -> Result<LocalWriter, StoreError> {
        let target = self.path(key)?;
        let path = self.partial_path(name)?;
        let opened = path.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<File, StoreError> {
            loop {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(offset == 0)
                    .truncate(false)
                    .open(&opened)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => StoreError::Gap { held: 0 },
                        _ => e.into(),
                    })?;
                file.lock()?;
                // The name may have been renamed into `blobs/` (published) or removed while
                // we waited for the lock: only the file still under the name will do.
                let (held, now) = (file.metadata()?, std::fs::metadata(&opened));
                match now {
                    Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {}
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && offset == 0 => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StoreError::Gap { held: 0 });
                    }
                    Err(e) => return Err(e.into()),
                }
                if held.len() < offset {
                    return Err(StoreError::Gap { held: held.len() });
                }
                file.set_len(offset)?;
                // In use from now on: the cleaner judges partials by age (and skips locked
                // ones); `set_len` to the same length leaves the mtime as it was.
                file.set_modified(std::time::SystemTime::now())?;
                let mut file = file;
                file.seek(SeekFrom::Start(offset))?;
                return Ok(file);
            }
        })
        .await
        .map_err(std::io::Error::other)??;
        let writes = file.try_clone()?;
        let mut w = spawn_writer(move || Ok(writes), path, target);
        w.lock = Some(file);
        Ok(w)
    }

    /// Streams `0..end` of the partial `name` (what a resumed write re-reads).
    pub async fn read_partial(
        &self,
        name: &str,
        end: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let path = self.partial_path(name)?;
        let file = tokio::task::spawn_blocking(move || File::open(path))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| not_found(e, name))?;
        Ok(stream_file(file, 0, end))
    }

    /// How many bytes the partial `name` holds (0 if there is none), after an fsync: what a
    /// resumed write may continue from.
    pub async fn partial_len(&self, name: &str) -> Result<u64, StoreError> {
        let path = self.partial_path(name)?;
        tokio::task::spawn_blocking(move || match File::open(&path) {
            Ok(f) => {
                f.sync_data()?;
                Ok(f.metadata()?.len())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Removes every partial whose name starts with `prefix`; returns how many.
    pub async fn drop_partials(&self, prefix: &str) -> Result<usize, StoreError> {
        let want = format!("partial-{prefix}");
        self.remove_staging(move |path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&want))
        })
        .await
    }

    /// Removes every staging file whose writer is gone (its lock is free): what a killed
    /// upload or copy left, at once rather than after the cleaner's grace. Resumable partials
    /// stay: they are what a resumed replication continues from. Returns how many went.
    pub async fn clear_abandoned_staging(&self) -> Result<usize, StoreError> {
        self.remove_staging(|path| !is_partial(path) && !is_new(path) && !in_use(path))
            .await
    }

    /// Removes the staging files `doomed` picks (one already gone counts as removed by
    /// someone else); returns how many this call removed.
    async fn remove_staging(
        &self,
        doomed: impl Fn(&Path) -> bool + Send + 'static,
    ) -> Result<usize, StoreError> {
        let dir = self.root.join(".staging");
        tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if !doomed(&path) {
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(n)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Streams `start..end` of a blob ([`stream_file`]).
    pub async fn read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let path = self.path(key)?;
        let owned_key = key.to_string();
        let (file, len) = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, len))
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| not_found(e, &owned_key))?;
        let (start, end) = range.unwrap_or((0, len));
        Ok(stream_file(file, start, end))
    }

    pub async fn size(&self, key: &str) -> Result<u64, StoreError> {
        let meta = tokio::fs::metadata(self.path(key)?)
            .await
            .map_err(|e| not_found(e, key))?;
        Ok(meta.len())
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every published blob and every staging leftover (keys `.staging/<name>`), with mtimes.
    pub async fn list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for dir in ["blobs", ".staging"] {
                let rd = match std::fs::read_dir(root.join(dir)) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for entry in rd {
                    let entry = entry?;
                    if dir == ".staging" && in_use(&entry.path()) {
                        continue;
                    }
                    let meta = entry.metadata()?;
                    let modified: DateTime<Utc> = meta.modified()?.into();
                    out.push(BlobInfo {
                        key: format!("{dir}/{}", entry.file_name().to_string_lossy()),
                        size: meta.len(),
                        modified,
                    });
                }
            }
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// Streams `start..end` of an open file. A dedicated blocking thread reads straight into the
/// chunks it sends (one copy, no per-read task hop), at most [`READ_AHEAD`] chunks ahead.
fn stream_file(file: File, start: u64, end: u64) -> BoxStream<'static, Result<Bytes, StoreError>> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, StoreError>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        // The chunks queued, one in the socket's hands and one being read.
        let pool = crate::pool::Pool::new(READ_CHUNK, READ_AHEAD + 2);
        if start > 0
            && let Err(e) = file.seek(SeekFrom::Start(start))
        {
            let _ = tx.blocking_send(Err(e.into()));
            return;
        }
        let mut left = end.saturating_sub(start);
        while left > 0 {
            let want = READ_CHUNK.min(usize::try_from(left).unwrap_or(READ_CHUNK));
            // `read_to_end` on a `take` fills the vector's spare capacity directly (no
            // zeroing first), up to `want` bytes.
            let mut buf = pool.take();
            let item = match (&mut file).take(want as u64).read_to_end(&mut buf) {
                Ok(0) => Err(StoreError::Truncated),
                Ok(n) => {
                    left -= n as u64;
                    Ok(pool.share(buf))
                }
                Err(e) => Err(e.into()),
            };
            let failed = item.is_err();
            // A closed channel means the reader went away (client disconnect): stop.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    stream.boxed()
}

/// A staging file being made (see [`LocalStore::writer`]): left to the cleaner's grace.
fn is_new(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("new-"))
}

fn is_partial(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("partial-"))
}

/// Whether a writer holds `path` locked right now (a staging file being written or a
/// resumable partial being continued): the cleaner must not take it, however old its last
/// write.
fn in_use(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

fn not_found(e: std::io::Error, key: &str) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(key.to_string())
    } else {
        e.into()
    }
}

/// Writes a blob on a blocking thread fed through a bounded channel: the file `open` gives,
/// then `staging` renamed to `target` by [`LocalWriter::finish`].
fn spawn_writer<F>(open: F, staging: PathBuf, target: PathBuf) -> LocalWriter
where
    F: FnOnce() -> std::io::Result<File> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let handle = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let mut file = open()?;
        // A second thread fdatasyncs what is written so far while this one goes on
        // writing. Its errors are the write's errors: the two descriptors share one open
        // file, so an error it consumed would not be reported to the final fsync.
        let flusher = file.try_clone()?;
        let (kick, kicked) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::scope(|scope| {
            let syncer = scope.spawn(move || -> std::io::Result<()> {
                while kicked.recv().is_ok() {
                    flusher.sync_data()?;
                }
                Ok(())
            });
            let written = (|| -> std::io::Result<()> {
                let mut unsynced = 0u64;
                while let Some(chunk) = rx.blocking_recv() {
                    file.write_all(&chunk)?;
                    unsynced += chunk.len() as u64;
                    // Skipped while a flush runs; the next chunk asks again.
                    if unsynced >= SYNC_EVERY && kick.try_send(()).is_ok() {
                        unsynced = 0;
                    }
                }
                Ok(())
            })();
            drop(kick);
            let synced = syncer.join().unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the background flush thread panicked",
                ))
            });
            written.and(synced)
        })?;
        file.sync_all()?;
        Ok(())
    });
    LocalWriter {
        tx: Some(tx),
        handle: Some(handle),
        staging,
        target,
        lock: None,
    }
}

/// A blob being written; see [`LocalStore::writer`] and [`LocalStore::resume`].
pub struct LocalWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    /// The writing thread; `None` once its end has been read (a JoinHandle must not be
    /// awaited twice: the thread that stopped early on a full disk is read by `write`, and
    /// `abort` then must not read it again).
    handle: Option<JoinHandle<Result<(), StoreError>>>,
    staging: PathBuf,
    target: PathBuf,
    /// A resumable write's lock on its partial, held until the partial is published or left.
    lock: Option<File>,
}

impl LocalWriter {
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        if tx.send(chunk).await.is_err() {
            // The thread stopped early: report its error.
            self.tx = None;
            return Err(match self.ended().await {
                Err(e) => e,
                Ok(()) => StoreError::Closed,
            });
        }
        Ok(())
    }

    /// How the writing thread ended (waiting for it); `Closed` when that was already read.
    async fn ended(&mut self) -> Result<(), StoreError> {
        match self.handle.take() {
            Some(h) => h
                .await
                .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(e)))),
            None => Err(StoreError::Closed),
        }
    }

    /// Makes the blob durable and visible under its key.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.tx = None;
        let written = self.ended().await;
        let (staging, target) = (self.staging.clone(), self.target.clone());
        let published = match written {
            Ok(()) => tokio::task::spawn_blocking(move || publish(&staging, &target))
                .await
                .map_err(std::io::Error::other)?,
            Err(e) => Err(e),
        };
        if published.is_err() {
            let _ = tokio::fs::remove_file(&self.staging).await;
        }
        published
    }

    /// Ends the write without publishing: the partial blob is removed, unless `keep` and the
    /// write is resumable (then what was written stays, durable, for a later resume).
    pub async fn abort(mut self, keep: bool) {
        self.tx = None;
        let written = self.ended().await;
        if !(keep && self.lock.is_some() && written.is_ok()) {
            let _ = tokio::fs::remove_file(&self.staging).await;
        }
    }
}

/// Renames the staging file into place and fsyncs the directory, so the name is durable.
fn publish(staging: &Path, target: &Path) -> Result<(), StoreError> {
    let dir = target.parent().ok_or(StoreError::Closed)?;
    std::fs::create_dir_all(dir)?;
    std::fs::rename(staging, target)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

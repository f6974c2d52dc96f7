//! One contract, every backend: the filesystem and memory stores always, and an S3-compatible
//! server when `GLIMPSE_TEST_S3_ENDPOINT` names one (scripts/test starts Ceph's radosgw for this).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use glimpse_store::{BlobStore, BoxError, S3Options, WriteError, digest_bytes};

struct Backend {
    store: BlobStore,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn backends() -> Vec<(&'static str, Backend)> {
    let dir = std::env::temp_dir().join(format!("glimpse-store-{}", uuid::Uuid::new_v4().simple()));
    let mut out = vec![
        (
            "file",
            Backend {
                store: BlobStore::open(&format!("file://{}", dir.display()), &S3Options::default())
                    .unwrap(),
                _dir: Some(TempDir(dir)),
            },
        ),
        (
            "memory",
            Backend {
                store: BlobStore::open("memory://", &S3Options::default()).unwrap(),
                _dir: None,
            },
        ),
    ];
    if let Ok(endpoint) = std::env::var("GLIMPSE_TEST_S3_ENDPOINT") {
        let bucket = format!(
            "contract-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let opts = S3Options {
            endpoint,
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            allow_http: true,
        };
        opts.create_bucket(&bucket)
            .await
            .expect("create the bucket");
        out.push((
            "s3",
            Backend {
                store: BlobStore::open(&format!("s3://{bucket}"), &opts).unwrap(),
                _dir: None,
            },
        ));
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

/// Splits data into uneven chunks, like a network body.
fn body(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + use<> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(100_003)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

async fn read_all(store: &BlobStore, key: &str, range: Option<(u64, u64)>) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .read(key, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

#[tokio::test]
async fn write_read_range_delete_on_every_backend() {
    // 20 MiB: several S3 multipart parts and many 1 MiB chunks.
    let data = pattern(20 * 1024 * 1024 + 17);
    for (name, b) in backends().await {
        let mut seen = 0usize;
        let w = b
            .store
            .write(body(&data), |c: &[u8]| {
                seen += c.len();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(seen, data.len(), "{name}: observer saw every byte");
        assert_eq!(w.size, data.len() as u64, "{name}");
        assert_eq!(w.digests, digest_bytes(&data), "{name}");
        assert_eq!(
            b.store.size(&w.key).await.unwrap(),
            data.len() as u64,
            "{name}"
        );
        assert!(
            read_all(&b.store, &w.key, None).await == data,
            "{name}: full read"
        );
        let part = read_all(&b.store, &w.key, Some((1_000_000, 3_000_001))).await;
        assert!(part == data[1_000_000..3_000_001], "{name}: range read");
        assert!(
            b.store.list().await.unwrap().iter().any(|i| i.key == w.key),
            "{name}: listed"
        );
        b.store.delete(&w.key).await.unwrap();
        b.store.delete(&w.key).await.unwrap(); // idempotent
        assert!(b.store.read(&w.key, None).await.is_err(), "{name}: gone");
    }
}

#[tokio::test]
async fn empty_body_gives_an_empty_blob() {
    for (name, b) in backends().await {
        let w = b.store.write(body(b""), |_: &[u8]| Ok(())).await.unwrap();
        assert_eq!(w.size, 0, "{name}");
        assert_eq!(w.digests.md5, "d41d8cd98f00b204e9800998ecf8427e", "{name}");
        assert!(read_all(&b.store, &w.key, None).await.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn aborted_or_failed_writes_leave_nothing() {
    let data = pattern(6 * 1024 * 1024);
    for (name, b) in backends().await {
        let before = b.store.list().await.unwrap().len();
        // The observer refuses after 2 MiB.
        let mut seen = 0usize;
        let err = b
            .store
            .write(body(&data), |c: &[u8]| {
                seen += c.len();
                if seen > 2 << 20 {
                    Err(BoxError::from("too big"))
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, WriteError::Aborted(ref e) if e.to_string() == "too big"),
            "{name}: {err}"
        );
        // The body fails half way (a client disconnect).
        let broken = body(&data[..3 << 20]).chain(stream::iter(vec![Err(std::io::Error::other(
            "connection reset",
        ))]));
        let err = b.store.write(broken, |_: &[u8]| Ok(())).await.unwrap_err();
        assert!(matches!(err, WriteError::Source(_)), "{name}: {err}");
        assert_eq!(
            b.store.list().await.unwrap().len(),
            before,
            "{name}: nothing left behind"
        );
    }
}

#[tokio::test]
async fn bad_urls_and_keys_are_refused() {
    assert!(BlobStore::open("ftp://x", &S3Options::default()).is_err());
    assert!(BlobStore::open("file://", &S3Options::default()).is_err());
    assert!(BlobStore::open("s3://", &S3Options::default()).is_err());
    let dir = std::env::temp_dir().join(format!("glimpse-store-{}", uuid::Uuid::new_v4().simple()));
    let _guard = TempDir(dir.clone());
    let s = BlobStore::open(&format!("file://{}", dir.display()), &S3Options::default()).unwrap();
    assert!(s.read("blobs/../../etc/passwd", None).await.is_err());
    assert!(s.delete("../x").await.is_err());
}

/// A body that delivers `data` and then fails, as a connection cut by a killed sender.
fn cut_after(
    data: &[u8],
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + use<> {
    body(data).chain(stream::iter(vec![Err(std::io::Error::other(
        "connection reset",
    ))]))
}

/// A resumable write of `data` into partial `name` from byte 0, cut after `data`: its error.
async fn cut_write(store: &BlobStore, name: &str, data: &[u8]) -> WriteError {
    store
        .write_resumable(name, 0, cut_after(data), None, |_: &[u8]| Ok(()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_resumed_write_continues_where_the_cut_one_stopped() {
    let data = pattern(9 * 1024 * 1024 + 5);
    let name = "image-1-abc";
    for (which, b) in backends().await {
        // The first write is cut after 5 MiB + 3 bytes (not a chunk boundary).
        let cut = (5 << 20) + 3;
        let err = cut_write(&b.store, name, &data[..cut]).await;
        assert!(matches!(err, WriteError::Source(_)), "{which}: {err}");
        let held = b.store.partial_len(name).await.unwrap();
        if !b.store.resumable() {
            assert_eq!(held, 0, "{which}: nothing to resume from");
            let err = b
                .store
                .write_resumable(name, 1, body(&data[1..]), None, |_: &[u8]| Ok(()))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    WriteError::Store(glimpse_store::StoreError::Gap { held: 0 })
                ),
                "{which}: {err}"
            );
            continue;
        }
        assert_eq!(held, cut as u64, "{which}: every received byte is held");
        // Asking for more than is held is refused, and keeps what is held.
        let err = b
            .store
            .write_resumable(
                name,
                held + 1,
                body(&data[cut + 1..]),
                None,
                |_: &[u8]| Ok(()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, WriteError::Store(glimpse_store::StoreError::Gap { held: h }) if h == held),
            "{which}: {err}"
        );
        // Resume a little before the end of what is held: the observer and the hashes see
        // every byte once, in order, and only the rest is sent.
        let from = held - 1000;
        let mut seen = Vec::new();
        let w = b
            .store
            .write_resumable(
                name,
                from,
                body(&data[from as usize..]),
                None,
                |c: &[u8]| {
                    seen.extend_from_slice(c);
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert!(seen == data, "{which}: the observer saw the whole content");
        assert_eq!(w.size, data.len() as u64, "{which}");
        assert_eq!(w.digests, digest_bytes(&data), "{which}");
        assert!(read_all(&b.store, &w.key, None).await == data, "{which}");
        assert_eq!(
            b.store.partial_len(name).await.unwrap(),
            0,
            "{which}: published"
        );
    }
}

#[tokio::test]
async fn refused_resumable_writes_and_dropped_partials_leave_nothing() {
    let data = pattern(3 * 1024 * 1024);
    for (which, b) in backends().await {
        let before = b.store.list().await.unwrap().len();
        let _ = cut_write(&b.store, "img-2-x", &data[..1 << 20]).await;
        // The observer refuses the resumed bytes: the partial goes.
        let held = b.store.partial_len("img-2-x").await.unwrap();
        let err = b
            .store
            .write_resumable(
                "img-2-x",
                held,
                body(&data[held as usize..]),
                None,
                |_: &[u8]| Err(BoxError::from("too big")),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::Aborted(_)), "{which}: {err}");
        assert_eq!(b.store.partial_len("img-2-x").await.unwrap(), 0, "{which}");
        // Cut again, then dropped by name prefix (an image delete).
        let _ = cut_write(&b.store, "img-3-y", &data[..1 << 20]).await;
        b.store.drop_partials("img-3-").await.unwrap();
        assert_eq!(b.store.partial_len("img-3-y").await.unwrap(), 0, "{which}");
        assert_eq!(
            b.store.list().await.unwrap().len(),
            before,
            "{which}: nothing left"
        );
        assert!(
            b.store
                .write_resumable("../x", 0, body(b""), None, |_: &[u8]| Ok(()))
                .await
                .is_err()
                || !b.store.resumable(),
            "{which}: names cannot climb out of the store"
        );
    }
}

/// The cleaner's listing leaves out a partial while a writer holds it, however old it looks,
/// and shows it again once the writer is gone.
#[tokio::test]
async fn a_partial_in_use_is_not_listed_for_the_cleaner() {
    for (which, b) in backends().await {
        if !b.store.resumable() {
            continue;
        }
        let (cut, when) = tokio::sync::oneshot::channel::<()>();
        let body = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(pattern(1 << 20)))])
            .chain(stream::once(async move {
                let _ = when.await;
                Err(std::io::Error::other("cut"))
            }));
        let store = b.store.clone();
        let writing = tokio::spawn(async move {
            store
                .write_resumable("busy-1", 0, body, None, |_: &[u8]| Ok(()))
                .await
        });
        let landed = async {
            while b.store.partial_len("busy-1").await.unwrap() < 1 << 20 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), landed)
            .await
            .expect("the first megabyte lands");
        let listed = |l: Vec<glimpse_store::BlobInfo>| l.iter().any(|i| i.key.contains("busy-1"));
        assert!(!listed(b.store.list().await.unwrap()), "{which}: in use");
        let _ = cut.send(());
        assert!(writing.await.unwrap().is_err());
        assert!(
            listed(b.store.list().await.unwrap()),
            "{which}: left for later"
        );
    }
}

/// A filesystem store in a fresh directory (removed when the guard drops).
fn file_store() -> (std::path::PathBuf, TempDir, BlobStore) {
    let dir = std::env::temp_dir().join(format!("glimpse-store-{}", uuid::Uuid::new_v4().simple()));
    let store =
        BlobStore::open(&format!("file://{}", dir.display()), &S3Options::default()).unwrap();
    (dir.clone(), TempDir(dir), store)
}

/// At start a store removes the staging files of writers that died (a killed upload's
/// leftover), but not one a live writer holds, nor a resumable partial (a resumed replication
/// continues from it).
#[tokio::test]
async fn abandoned_staging_goes_live_writes_and_partials_stay() {
    let (dir, _cleanup, store) = file_store();
    let staging = dir.join(".staging");
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&staging)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // A partial left by a cut resumable write (its writer gone, lock free).
    let cut = stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from(pattern(1000))),
        Err(std::io::Error::other("cut")),
    ]);
    assert!(
        store
            .write_resumable("held-1", 0, cut, None, |_: &[u8]| Ok(()))
            .await
            .is_err()
    );
    // What a killed process left: a staging file nobody holds.
    std::fs::write(staging.join("0123456789abcdef"), b"half an image").unwrap();
    // A write in progress: its staging file is locked until it ends.
    let (go, when) = tokio::sync::oneshot::channel::<()>();
    let body = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(pattern(1 << 20)))]).chain(
        stream::once(async move {
            let _ = when.await;
            Ok(Bytes::from(pattern(10)))
        }),
    );
    let writer = store.clone();
    let writing = tokio::spawn(async move { writer.write(body, |_: &[u8]| Ok(())).await });
    let started = async {
        while names().len() < 3 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), started)
        .await
        .expect("the write starts its staging file");

    assert_eq!(store.clear_abandoned_staging().await.unwrap(), 1);
    let left = names();
    assert!(!left.contains(&"0123456789abcdef".to_string()), "{left:?}");
    assert!(left.contains(&"partial-held-1".to_string()), "{left:?}");
    assert_eq!(left.len(), 2, "the live write's file stays: {left:?}");
    assert_eq!(store.partial_len("held-1").await.unwrap(), 1000);

    let _ = go.send(());
    let written = writing.await.unwrap().unwrap();
    assert_eq!(written.size, (1 << 20) + 10);
    assert_eq!(names(), vec!["partial-held-1".to_string()]);
}

/// A disk that fills mid-write ends the write with an error, never a panic. (A full disk in a
/// CI run once turned an upload into "JoinHandle polled after completion": the writer's end
/// was read by `write` and again by `abort`. `LocalWriter` now reads it once by construction;
/// this test checks the error, not that exact interleaving.)
#[tokio::test]
async fn a_full_disk_fails_the_write_cleanly() {
    let (dir, _cleanup, store) = file_store();
    // The partial is /dev/full: every write to it fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", dir.join(".staging/partial-full-1")).unwrap();
    let chunks = (0..16).map(|_| Ok::<_, std::io::Error>(Bytes::from(pattern(1 << 20))));
    let written = store
        .write_resumable("full-1", 0, stream::iter(chunks), None, |_: &[u8]| Ok(()))
        .await;
    assert!(written.is_err(), "a write to a full disk succeeded");
}

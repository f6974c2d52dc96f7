//! One contract, every backend: the filesystem and memory stores always, and an S3-compatible
//! server when `GLIMPSE_TEST_S3_ENDPOINT` names one (scripts/test starts Ceph's radosgw for this).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use glimpse_store::{BlobStore, BoxError, CHUNK, PART, S3Options, WriteError, digest_bytes};

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

/// The partials the cleaner's listing shows whose key names `name`: (key, size).
async fn listed_partials(store: &BlobStore, name: &str) -> Vec<(String, u64)> {
    let listed = store.list().await.unwrap();
    listed
        .into_iter()
        .filter(|b| b.key.contains(name))
        .map(|b| (b.key, b.size))
        .collect()
}

#[tokio::test]
async fn a_resumed_write_continues_where_the_cut_one_stopped() {
    // Three parts and a bit.
    let data = pattern(3 * PART + 5);
    let name = "image-1-abc";
    for (which, b) in backends().await {
        // The first write is cut inside the third part, 3 MiB + 3 bytes into it (not a chunk
        // boundary either).
        let cut = 2 * PART + (3 << 20) + 3;
        let err = cut_write(&b.store, name, &data[..cut]).await;
        assert!(matches!(err, WriteError::Source(_)), "{which}: {err}");
        let held = b.store.partial_len(name).await.unwrap();
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
        assert_eq!(b.store.partial_len(name).await.unwrap(), held, "{which}");

        // Resume well before the end of what is held, inside the second part, and be cut
        // again after 2 MiB: what followed the resume point is gone, the rest is held.
        let from = PART + 12_345;
        let sent = 2 << 20;
        let mut seen = 0usize;
        let err = b
            .store
            .write_resumable(
                name,
                from as u64,
                cut_after(&data[from..from + sent]),
                None,
                |c: &[u8]| {
                    seen += c.len();
                    Ok(())
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::Source(_)), "{which}: {err}");
        assert_eq!(seen, from + sent, "{which}: the held prefix was observed");
        let held = b.store.partial_len(name).await.unwrap();
        assert_eq!(
            held,
            (from + sent) as u64,
            "{which}: cut at the resume point"
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
        assert_eq!(
            listed_partials(&b.store, name).await,
            vec![],
            "{which}: nothing of the partial is left"
        );
    }
}

/// A resume at a part boundary, and one at the very end of what is held (every byte arrived,
/// only the publication is missing): both publish the whole content.
#[tokio::test]
async fn resumes_at_a_part_boundary_and_at_the_end() {
    let data = pattern(2 * PART + 77);
    for (which, b) in backends().await {
        let _ = cut_write(&b.store, "edge-1", &data[..PART + 10]).await;
        let w = b
            .store
            .write_resumable(
                "edge-1",
                PART as u64,
                body(&data[PART..]),
                None,
                |_: &[u8]| Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(w.digests, digest_bytes(&data), "{which}: from a boundary");
        assert!(read_all(&b.store, &w.key, None).await == data, "{which}");

        let _ = cut_write(&b.store, "edge-2", &data).await;
        assert_eq!(
            b.store.partial_len("edge-2").await.unwrap(),
            data.len() as u64,
            "{which}"
        );
        let w = b
            .store
            .write_resumable(
                "edge-2",
                data.len() as u64,
                body(b""),
                None,
                |_: &[u8]| Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(w.digests, digest_bytes(&data), "{which}: all held");
        assert!(read_all(&b.store, &w.key, None).await == data, "{which}");
        // An empty resumable write is an empty blob.
        let w = b
            .store
            .write_resumable("edge-3", 0, body(b""), None, |_: &[u8]| Ok(()))
            .await
            .unwrap();
        assert_eq!(w.size, 0, "{which}");
        assert!(read_all(&b.store, &w.key, None).await.is_empty(), "{which}");
        // One chunk across a part boundary, then the cut: every byte of it is held.
        let one = stream::iter(vec![
            Ok(Bytes::copy_from_slice(&data[..PART + 5])),
            Err(std::io::Error::other("cut")),
        ]);
        let cut = b
            .store
            .write_resumable("edge-4", 0, one, None, |_: &[u8]| Ok(()))
            .await;
        assert!(matches!(cut, Err(WriteError::Source(_))), "{which}");
        assert_eq!(
            b.store.partial_len("edge-4").await.unwrap(),
            PART as u64 + 5,
            "{which}"
        );
        b.store.drop_partials("edge-4").await.unwrap();
        for name in ["edge-1", "edge-2", "edge-3", "edge-4"] {
            assert_eq!(listed_partials(&b.store, name).await, vec![], "{which}");
        }
    }
}

#[tokio::test]
async fn refused_resumable_writes_and_dropped_partials_leave_nothing() {
    let data = pattern(2 * PART + (3 << 20));
    for (which, b) in backends().await {
        let before = b.store.list().await.unwrap().len();
        let _ = cut_write(&b.store, "img-2-x", &data[..PART + (1 << 20)]).await;
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
        // Cut again, then dropped by name prefix (an image delete); another image's partial
        // stays.
        let _ = cut_write(&b.store, "img-3-y", &data[..2 * PART + 1]).await;
        let _ = cut_write(&b.store, "img-3-z", &data[..1 << 20]).await;
        let _ = cut_write(&b.store, "img-4-y", &data[..1 << 20]).await;
        assert_eq!(b.store.drop_partials("img-3-").await.unwrap(), 2, "{which}");
        assert_eq!(b.store.partial_len("img-3-y").await.unwrap(), 0, "{which}");
        assert_eq!(b.store.partial_len("img-3-z").await.unwrap(), 0, "{which}");
        assert_eq!(
            b.store.partial_len("img-4-y").await.unwrap(),
            1 << 20,
            "{which}"
        );
        b.store.drop_partials("img-4-").await.unwrap();
        assert_eq!(
            b.store.list().await.unwrap().len(),
            before,
            "{which}: nothing left"
        );
        assert!(
            b.store
                .write_resumable("../x", 0, body(b""), None, |_: &[u8]| Ok(()))
                .await
                .is_err(),
            "{which}: names cannot climb out of the store"
        );
        assert!(b.store.partial_len("a/b").await.is_err(), "{which}");
    }
}

/// The cleaner's listing leaves out a partial while a writer holds it, however old it looks,
/// and shows it again once the writer is gone: one entry per partial, with the bytes it
/// holds, which the cleaner's delete removes whole.
#[tokio::test]
async fn a_partial_in_use_is_not_listed_for_the_cleaner() {
    for (which, b) in backends().await {
        let (cut, when) = tokio::sync::oneshot::channel::<()>();
        let first = PART + (1 << 20);
        let body = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(pattern(first)))]).chain(
            stream::once(async move {
                let _ = when.await;
                Err(std::io::Error::other("cut"))
            }),
        );
        let store = b.store.clone();
        let writing = tokio::spawn(async move {
            store
                .write_resumable("busy-1", 0, body, None, |_: &[u8]| Ok(()))
                .await
        });
        let landed = async {
            // The object stores hold whole parts only while the writer runs.
            while b.store.partial_len("busy-1").await.unwrap() < PART as u64 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), landed)
            .await
            .expect("the first part lands");
        assert_eq!(
            listed_partials(&b.store, "busy-1").await,
            vec![],
            "{which}: in use"
        );
        let _ = cut.send(());
        assert!(writing.await.unwrap().is_err());
        let listed = listed_partials(&b.store, "busy-1").await;
        assert_eq!(listed.len(), 1, "{which}: left for later: {listed:?}");
        assert_eq!(listed[0].1, first as u64, "{which}: every byte received");
        b.store.delete(&listed[0].0).await.unwrap();
        assert_eq!(b.store.partial_len("busy-1").await.unwrap(), 0, "{which}");
        assert_eq!(listed_partials(&b.store, "busy-1").await, vec![], "{which}");
    }
}

/// A write dropped in the middle of its body (the server let go of a request whose client
/// vanished) keeps what it had received, as a cut one does, and a resume continues from it.
#[tokio::test]
async fn a_dropped_resumable_write_keeps_its_bytes() {
    let data = pattern(2 * PART + 99);
    for (which, b) in backends().await {
        let sent = PART + (2 << 20);
        let stalled = body(&data[..sent]).chain(stream::pending());
        let store = b.store.clone();
        let writing = tokio::spawn(async move {
            store
                .write_resumable("dropped-1", 0, stalled, None, |_: &[u8]| Ok(()))
                .await
        });
        let landed = async {
            while b.store.partial_len("dropped-1").await.unwrap() < PART as u64 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), landed)
            .await
            .expect("the first part lands");
        // Give the writer the rest of what was sent, then drop it.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        writing.abort();
        let _ = writing.await;
        // The dropped writer finishes keeping its bytes in the background.
        let mut held = 0;
        for _ in 0..600 {
            held = b.store.partial_len("dropped-1").await.unwrap();
            if held >= sent as u64 - CHUNK as u64 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            held >= PART as u64 && held <= sent as u64,
            "{which}: held {held} of {sent}"
        );
        let w = b
            .store
            .write_resumable(
                "dropped-1",
                held,
                body(&data[held as usize..]),
                None,
                |_: &[u8]| Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(w.digests, digest_bytes(&data), "{which}");
        assert!(read_all(&b.store, &w.key, None).await == data, "{which}");
    }
}

/// Two writers of one partial at once (two nodes that both think they own an upload) never
/// make a blob whose bytes are not the ones its writer hashed: the filesystem runs them one
/// after the other (flock); the object stores let the second go ahead and the first, whose
/// parts it replaced, fails.
#[tokio::test]
async fn a_second_writer_of_the_same_partial_never_corrupts_the_first() {
    let a = pattern(3 * PART + 1);
    let mut other = pattern(3 * PART + 1);
    other.iter_mut().for_each(|x| *x = x.wrapping_add(1));
    for (which, b) in backends().await {
        // The second writer either finishes (its own bytes) or is cut after two parts and a
        // bit, leaving its parts where the first writer's were.
        for second_is_cut in [false, true] {
            let name = format!("twice-{second_is_cut}");
            let (go, when) = tokio::sync::oneshot::channel::<()>();
            let half = 2 * PART + (1 << 20);
            let first_body = body(&a[..half])
                .chain(stream::once(async move {
                    let _ = when.await;
                    Ok(Bytes::new())
                }))
                .chain(body(&a[half..]));
            let (store, n) = (b.store.clone(), name.clone());
            let first = tokio::spawn(async move {
                store
                    .write_resumable(&n, 0, first_body, None, |_: &[u8]| Ok(()))
                    .await
            });
            let landed = async {
                while b.store.partial_len(&name).await.unwrap() < 2 * PART as u64 {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(60), landed)
                .await
                .expect("the first writer's parts land");
            let (store, n, o) = (b.store.clone(), name.clone(), other.clone());
            let mut second = tokio::spawn(async move {
                let body: std::pin::Pin<Box<dyn futures::Stream<Item = _> + Send>> =
                    if second_is_cut {
                        Box::pin(cut_after(&o[..2 * PART + 5]))
                    } else {
                        Box::pin(body(&o))
                    };
                store
                    .write_resumable(&n, 0, body, None, |_: &[u8]| Ok(()))
                    .await
            });
            // The filesystem's second writer waits for the first; the others' run to their
            // end now.
            let wait = if which == "file" { 3 } else { 300 };
            let second_done =
                tokio::time::timeout(std::time::Duration::from_secs(wait), &mut second).await;
            let _ = go.send(());
            let first = first.await.unwrap();
            let second = match second_done {
                Ok(r) => r.unwrap(),
                Err(_) => second.await.unwrap(),
            };
            for (who, result, want) in [("first", &first, &a), ("second", &second, &other)] {
                if let Ok(w) = result {
                    assert_eq!(w.digests, digest_bytes(want), "{which} {name}: {who}");
                    assert!(
                        read_all(&b.store, &w.key, None).await == *want,
                        "{which} {name}: the {who} writer's blob holds its own bytes"
                    );
                }
            }
            if which == "file" {
                assert!(first.is_ok(), "{which} {name}: the first finishes");
            } else {
                assert!(first.is_err(), "{which} {name}: the first was overtaken");
                assert_eq!(second.is_ok(), !second_is_cut, "{which} {name}");
            }
            b.store.drop_partials(&name).await.unwrap();
        }
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

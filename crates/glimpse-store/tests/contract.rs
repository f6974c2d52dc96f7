//! One contract, every backend: the filesystem and memory stores always, and an S3-compatible
//! server when `GLIMPSE_TEST_S3_ENDPOINT` names one (scripts/test starts moto for this).

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
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
            .send()
            .await
            .expect("S3 endpoint");
        assert!(r.status().is_success());
        let opts = S3Options {
            endpoint,
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            allow_http: true,
        };
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

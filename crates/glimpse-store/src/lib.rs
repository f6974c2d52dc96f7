//! The blob store: where image bytes live. One [`BlobStore`] per region, opened from a URL:
//! `file:///abs/path` (our own durable filesystem backend, [`local`]), `s3://bucket` (any
//! S3-compatible server through object_store), or `memory://` (object_store's in-memory store,
//! for tests).
//!
//! Blobs are immutable and named by fresh keys (`blobs/<uuid>`). [`BlobStore::write`] streams a
//! body into a new blob while hashing it (md5 + sha512 in parallel, [`hashing`]) and showing
//! every chunk to an observer (the format inspector, size caps) that may abort the write.
//! A write that fails or is aborted removes what it wrote. A blob only becomes part of an image
//! when the metadata database says so, so a crash leaves at worst an unreferenced blob, which
//! the region's cleaner lists with [`BlobStore::list`] and deletes.
//!
//! Resumable writes ([`BlobStore::write_resumable`], every store) keep what they received when
//! the body fails, under a name the caller chooses, and a later write of that name continues
//! at any offset up to what it holds: it re-reads the held prefix through the hashers and the
//! observer (so digests and verdicts always cover every byte) and appends the rest. The
//! filesystem keeps them as one flock'd staging file ([`local`]); S3 as 8 MiB part objects
//! under `partials/<name>/`, composed into the blob at the end, with conditional PUTs and
//! e-tag-checked reads so that two writers of one name never mix their bytes ([`parts`]).

pub mod hashing;
pub mod local;
mod parts;
mod pool;
pub mod sealed;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};

pub use hashing::{Digests, StreamHasher, digest_bytes};

/// Chunks handed to hashers, observers and backends are coalesced to this size.
pub const CHUNK: usize = 512 << 10;
/// S3 multipart part size (S3 requires at least 5 MiB for all but the last part), and the
/// size of the part objects of a resumable write on an object store.
pub const PART: usize = 8 << 20;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("invalid blob key {0:?}")]
    BadKey(String),
    #[error("blob store URL {0:?} is not supported (use file:///path, s3://bucket or memory://)")]
    BadUrl(String),
    #[error("blob ended before its recorded size")]
    Truncated,
    #[error("blob writer closed")]
    Closed,
    /// A resumed write asked to continue past what its partial holds.
    #[error("the partial upload holds {held} bytes")]
    Gap { held: u64 },
    /// Another writer of the same resumable write (or a drop of it) changed the parts this
    /// one held or wrote; the partial is left to the other.
    #[error("another writer of the resumable write changed its part {0}")]
    Conflict(String),
    /// The object store refused a request for good (bad credentials, a bad bucket name).
    #[error("object store refused: {0}")]
    Refused(String),
    /// A sealed blob failed authentication (tampered, truncated, wrong key).
    #[error("sealed blob: {0}")]
    Integrity(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
}

impl StoreError {
    /// Whether the store could not be reached, or kept failing through object_store's retries
    /// (a server down or restarting, a full or failing disk), rather than a blob being missing,
    /// bad or refused: a later try may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Io(_)
                | StoreError::Object(
                    object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
                )
        )
    }
}

/// Why [`BlobStore::write`] did not produce a blob. Nothing was kept in any case.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The body stream failed (client disconnect, remote region error).
    #[error("reading the data failed: {0}")]
    Source(BoxError),
    /// The observer refused the data (format, size cap); the error is the observer's own.
    #[error("{0}")]
    Aborted(BoxError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`BlobStore::write_sealed`] produced.
#[derive(Debug, Clone)]
pub struct SealedWritten {
    pub key: String,
    /// Plaintext bytes sealed.
    pub plain_size: u64,
    /// Stored bytes ([`sealed::sealed_len`] of `plain_size`).
    pub stored_size: u64,
    /// sha512 of the plaintext, lower-case hex.
    pub sha512: String,
}

/// S3 connection settings for `s3://bucket` URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Options {
    /// e.g. `http://127.0.0.1:9000`; empty means AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow plain HTTP endpoints (loopback test servers).
    pub allow_http: bool,
}

impl S3Options {
    fn region_or_default(&self) -> &str {
        if self.region.is_empty() {
            "us-east-1"
        } else {
            &self.region
        }
    }

    /// Creates `bucket` on the endpoint (a SigV4-signed path-style `PUT /<bucket>`); a bucket
    /// that the same account already owns is fine. For tests and first setups: object_store
    /// has no bucket calls.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        use object_store::aws::{AwsAuthorizer, AwsCredential};
        use object_store::client::{
            ClientOptions, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector,
        };
        let bad = || StoreError::BadUrl(format!("{}/{bucket}", self.endpoint));
        let url = format!("{}/{bucket}", self.endpoint.trim_end_matches('/'));
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() = "PUT".parse().map_err(|_| bad())?;
        *request.uri_mut() = url.parse().map_err(|_| bad())?;
        let credential = AwsCredential {
            key_id: self.access_key_id.clone(),
            secret_key: self.secret_access_key.clone(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", self.region_or_default())
            .try_authorize(&mut request, None)?;
        let client = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(self.allow_http))?;
        let response = client
            .execute(request)
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        let status = response.status();
        // 409: the bucket exists (BucketAlreadyOwnedByYou; a name another account holds
        // fails at the first write).
        let why = || format!("creating bucket {bucket}: HTTP {status}");
        if status.is_success() || status.as_u16() == 409 {
            Ok(())
        } else if status.is_server_error() {
            Err(StoreError::Io(std::io::Error::other(why())))
        } else {
            // Refused (credentials, a bad name): not something a retry mends.
            Err(StoreError::Refused(why()))
        }
    }
}

/// One stored blob, as listed for the cleaner.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub key: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// What [`BlobStore::write`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub key: String,
    pub size: u64,
    pub digests: Digests,
}

#[derive(Clone)]
enum Backend {
    Local(local::LocalStore),
    Object(Arc<dyn ObjectStore>),
}

#[derive(Clone)]
pub struct BlobStore {
    backend: Backend,
    url: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("url", &self.url).finish()
    }
}

impl BlobStore {
    /// Opens (and for `file://`, creates) the store named by `url`.
    pub fn open(url: &str, s3: &S3Options) -> Result<BlobStore, StoreError> {
        let bad = || StoreError::BadUrl(url.to_string());
        let backend = if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad());
            }
            Backend::Local(local::LocalStore::open(std::path::Path::new(path))?)
        } else if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(bad());
            }
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(s3.region_or_default())
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key)
                .with_allow_http(s3.allow_http);
            if !s3.endpoint.is_empty() {
                b = b
                    .with_endpoint(&s3.endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            Backend::Object(Arc::new(b.build()?))
        } else if url == "memory://" {
            Backend::Object(Arc::new(object_store::memory::InMemory::new()))
        } else {
            return Err(bad());
        };
        Ok(BlobStore {
            backend,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh key for a new blob.
    pub fn new_key() -> String {
        format!("blobs/{}", uuid::Uuid::new_v4().simple())
    }

    /// Streams `body` into a new blob under a fresh key, hashing as it goes. `observe` sees
    /// every chunk, in order, before it is stored, and may abort the write with its own error.
    pub async fn write<S, E, O>(&self, body: S, observe: O) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
        O: FnMut(&[u8]) -> Result<(), BoxError> + Send,
    {
        self.write_hashed(body, observe, StreamHasher::new()).await
    }

    /// How many bytes of the resumable write `name` the store holds, durably (0 if none).
    pub async fn partial_len(&self, name: &str) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.partial_len(name).await,
            Backend::Object(o) => parts::partial_len(&**o, name).await,
        }
    }

    /// Removes staging files whose writer is gone (filesystem stores; an object store has
    /// none): run at start, so a killed upload's leftover does not wait for the cleaner.
    pub async fn clear_abandoned_staging(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.clear_abandoned_staging().await,
            Backend::Object(_) => Ok(0),
        }
    }

    /// Removes the held bytes of every resumable write whose name starts with `prefix`;
    /// returns how many writes.
    pub async fn drop_partials(&self, prefix: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.drop_partials(prefix).await,
            Backend::Object(o) => parts::drop_partials(&**o, prefix).await,
        }
    }

    /// [`BlobStore::write`] that continues the resumable write `name` at byte `offset`: bytes `0..offset` come from what
    /// an earlier write of `name` left (hashed and observed again, not re-sent), then `body`.
    /// If `body` fails, what arrived is kept for the next resume (also when the caller drops
    /// the write); any other failure drops it, except [`StoreError::Conflict`] (S3: another
    /// writer of `name` changed its parts), which leaves them to the other writer.
    /// With `md5` given, only the sha512 is computed and the md5 is taken as stated: only for
    /// a caller that compares the sha512 with one a trusted party computed together with
    /// `md5` over the same content ([`StreamHasher::with_known_md5`]).
    /// `offset` past what is held gives [`StoreError::Gap`].
    pub async fn write_resumable<S, E, O>(
        &self,
        name: &str,
        offset: u64,
        body: S,
        md5: Option<String>,
        observe: O,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
        O: FnMut(&[u8]) -> Result<(), BoxError> + Send,
    {
        let hasher = match md5 {
            Some(m) => StreamHasher::with_known_md5(m),
            None => StreamHasher::new(),
        };
        let key = Self::new_key();
        let local = match &self.backend {
            Backend::Local(local) => local,
            Backend::Object(o) => {
                let (writer, prefix) = parts::resume(o.clone(), name, offset, &key).await?;
                return self
                    .write_into(key, Sink::Parts(writer), prefix, body, observe, hasher)
                    .await;
            }
        };
        let sink = Sink::Local(local.resume(name, offset, &key).await?);
        let prefix = match offset {
            0 => None,
            n => match local.read_partial(name, n).await {
                Ok(p) => Some(p),
                Err(e) => {
                    // The held bytes may be fine (a transient error): keep them.
                    sink.abort(true).await;
                    return Err(e.into());
                }
            },
        };
        self.write_into(key, sink, prefix, body, observe, hasher)
            .await
    }

    async fn write_hashed<S, E, O>(
        &self,
        body: S,
        observe: O,
        hasher: StreamHasher,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
        O: FnMut(&[u8]) -> Result<(), BoxError> + Send,
    {
        let key = Self::new_key();
        let sink = self.sink(&key).await?;
        self.write_into(key, sink, None, body, observe, hasher)
            .await
    }

    /// Hashes and observes `prefix` (bytes the sink already holds), then streams `body` through
    /// the hashers and the observer into `sink`, in [`CHUNK`]s.
    async fn write_into<S, E, O>(
        &self,
        key: String,
        mut sink: Sink,
        prefix: Option<BoxStream<'static, Result<Bytes, StoreError>>>,
        body: S,
        mut observe: O,
        mut hasher: StreamHasher,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
        O: FnMut(&[u8]) -> Result<(), BoxError> + Send,
    {
        let mut size = 0u64;
        // Chunks in flight: queued for the hashers and the writer, plus the one being filled.
        let pool = pool::Pool::new(CHUNK, 2 * hashing::QUEUE + 2);
        let mut pending = pool.take();
        let mut body = std::pin::pin!(body);
        // A held prefix that cannot be read back now (the store briefly away) is still held:
        // it stays for the next resume.
        let mut prefix_unread = false;
        let outcome: Result<(), WriteError> = async {
            if let Some(mut held) = prefix {
                while let Some(chunk) = held.next().await {
                    let chunk = chunk.inspect_err(|_| prefix_unread = true)?;
                    observe(&chunk).map_err(WriteError::Aborted)?;
                    size += chunk.len() as u64;
                    hasher.update(chunk).await;
                }
            }
            while let Some(item) = body.next().await {
                let mut bytes = item.map_err(|e| WriteError::Source(e.into()))?;
                if pending.is_empty() && bytes.len() >= CHUNK {
                    self::emit(bytes, &mut observe, &mut hasher, &mut sink, &mut size).await?;
                    continue;
                }
                while !bytes.is_empty() {
                    let take = (CHUNK - pending.len()).min(bytes.len());
                    pending.extend_from_slice(&bytes.split_to(take));
                    if pending.len() == CHUNK {
                        let chunk = pool.share(std::mem::replace(&mut pending, pool.take()));
                        self::emit(chunk, &mut observe, &mut hasher, &mut sink, &mut size).await?;
                    }
                }
            }
            if !pending.is_empty() {
                let chunk = pool.share(std::mem::take(&mut pending));
                self::emit(chunk, &mut observe, &mut hasher, &mut sink, &mut size).await?;
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                sink.finish().await?;
                let digests = hasher.finish().await.map_err(StoreError::from)?;
                Ok(Written { key, size, digests })
            }
            Err(e) => {
                // What arrived before the sender failed is kept for a resume (if resumable),
                // as is a held prefix that could not be read back; bytes refused by the
                // observer or a failing store are not, and a partial another writer changed
                // is left to it.
                let keep = matches!(e, WriteError::Source(_)) || prefix_unread;
                if let (WriteError::Store(StoreError::Conflict(_)), Sink::Parts(w)) =
                    (&e, &mut sink)
                {
                    w.yield_to_other();
                }
                if keep && !pending.is_empty() {
                    // The coalescing buffer holds received bytes the sink has not seen yet.
                    let chunk = pool.share(std::mem::take(&mut pending));
                    if sink.write(chunk).await.is_err() {
                        sink.abort(false).await;
                        return Err(e);
                    }
                }
                sink.abort(keep).await;
                Err(e)
            }
        }
    }

    /// Streams plaintext `body` into a new blob sealed with `data_key` ([`sealed`]), hashing
    /// the plaintext with sha512 on another thread. Nothing is kept if the body or the store
    /// fails.
    pub async fn write_sealed<S, E>(
        &self,
        body: S,
        data_key: &sealed::Key,
    ) -> Result<SealedWritten, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let key = Self::new_key();
        let mut sink = self.sink(&key).await?;
        let mut sealer = sealed::Sealer::new(data_key);
        let mut hasher = hashing::Sha512Hasher::new();
        let (mut plain, mut stored) = (0u64, 0u64);
        let mut body = std::pin::pin!(body);
        let outcome: Result<(), WriteError> = async {
            let header = sealer.header();
            stored += header.len() as u64;
            sink.write(header).await?;
            let mut pending = BytesMut::with_capacity(sealed::SEAL_CHUNK);
            // A full chunk waits until we know whether another one follows (the last flag).
            let mut held: Option<Bytes> = None;
            let mut emit = async |chunk: Bytes, last: bool| -> Result<(), WriteError> {
                let out = sealer.seal(&chunk, last)?;
                plain += chunk.len() as u64;
                stored += out.len() as u64;
                hasher.update(chunk).await;
                sink.write(out).await?;
                Ok(())
            };
            loop {
                match body.next().await {
                    Some(item) => {
                        let mut bytes = item.map_err(|e| WriteError::Source(e.into()))?;
                        while !bytes.is_empty() {
                            let take = (sealed::SEAL_CHUNK - pending.len()).min(bytes.len());
                            pending.extend_from_slice(&bytes.split_to(take));
                            if pending.len() == sealed::SEAL_CHUNK {
                                if let Some(h) = held.take() {
                                    emit(h, false).await?;
                                }
                                held = Some(pending.split().freeze());
                            }
                        }
                    }
                    None => {
                        match (held.take(), pending.is_empty()) {
                            (Some(h), true) => emit(h, true).await?,
                            (Some(h), false) => {
                                emit(h, false).await?;
                                emit(pending.split().freeze(), true).await?;
                            }
                            (None, _) => emit(pending.split().freeze(), true).await?,
                        }
                        return Ok(());
                    }
                }
            }
        }
        .await;
        match outcome {
            Ok(()) => {
                sink.finish().await?;
                let sha512 = hasher.finish().await.map_err(StoreError::from)?;
                Ok(SealedWritten {
                    key,
                    plain_size: plain,
                    stored_size: stored,
                    sha512,
                })
            }
            Err(e) => {
                sink.abort(false).await;
                Err(e)
            }
        }
    }

    /// Streams the plaintext `start..end` (all of it when `None`) of a blob sealed with
    /// `data_key` that holds `plain` bytes. A tampered or truncated blob ends the stream with
    /// [`StoreError::Integrity`] before any unauthenticated byte is released.
    pub async fn read_sealed(
        &self,
        key: &str,
        data_key: &sealed::Key,
        plain: u64,
        range: Option<(u64, u64)>,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let mut header = Vec::with_capacity(sealed::HEADER_LEN);
        let mut hs = self.read(key, Some((0, sealed::HEADER_LEN as u64))).await?;
        while let Some(b) = hs.next().await {
            header.extend_from_slice(&b?);
        }
        let (start, end) = range.unwrap_or((0, plain));
        let r = sealed::sealed_range(plain, start, end);
        let body = self.read(key, Some((r.start, r.end))).await?;
        sealed::open_stream(data_key, &header, plain, (start, end), body)
    }

    async fn sink(&self, key: &str) -> Result<Sink, StoreError> {
        Ok(match &self.backend {
            Backend::Local(l) => Sink::Local(l.writer(key)?),
            Backend::Object(o) => {
                let upload = o.put_multipart(&ObjPath::from(key)).await?;
                Sink::Object(WriteMultipart::new_with_chunk_size(upload, PART))
            }
        })
    }

    /// Streams a blob, or the byte range `start..end` of it.
    pub async fn read(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.read(key, range).await,
            Backend::Object(o) => {
                let opts = GetOptions {
                    range: range.map(|(s, e)| GetRange::Bounded(s..e)),
                    ..Default::default()
                };
                let got = o
                    .get_opts(&ObjPath::from(key), opts)
                    .await
                    .map_err(|e| obj_not_found(e, key))?;
                Ok(got.into_stream().map_err(StoreError::from).boxed())
            }
        }
    }

    /// The stored size of a blob.
    pub async fn size(&self, key: &str) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.size(key).await,
            Backend::Object(o) => Ok(o
                .head(&ObjPath::from(key))
                .await
                .map_err(|e| obj_not_found(e, key))?
                .size),
        }
    }

    /// Deletes a blob; deleting a missing blob succeeds. A key [`BlobStore::list`] gave for a
    /// resumable write's partial deletes all of it (on S3 unless a writer took it up again
    /// since it was listed).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Local(l) => l.delete(key).await,
            Backend::Object(o) => match key
                .strip_prefix(parts::ROOT)
                .and_then(|k| k.strip_prefix('/'))
            {
                Some(name) => parts::delete(&**o, name).await,
                None => parts::gone_is_done(o.delete(&ObjPath::from(key)).await),
            },
        }
    }

    /// Every blob in the store, and the partials of resumable writes no writer is using
    /// (one entry each: `.staging/partial-<name>` on the filesystem, with its other staging
    /// leftovers; `partials/<name>` on S3, dated by its newest part).
    pub async fn list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.list().await,
            Backend::Object(o) => {
                let prefix = ObjPath::from("blobs");
                let mut blobs: Vec<BlobInfo> = o
                    .list(Some(&prefix))
                    .map_ok(|m| BlobInfo {
                        key: m.location.to_string(),
                        size: m.size,
                        modified: m.last_modified,
                    })
                    .map_err(StoreError::from)
                    .try_collect()
                    .await?;
                blobs.extend(parts::list(&**o).await?);
                Ok(blobs)
            }
        }
    }
}

/// Refuses a resumable write's name that is not made of ASCII letters, digits, `-` and `_`
/// (it becomes part of a file name or an object key).
fn check_partial_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadKey(name.to_string()))
    }
}

fn obj_not_found(e: object_store::Error, key: &str) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound(key.to_string()),
        e => e.into(),
    }
}

async fn emit<O>(
    chunk: Bytes,
    observe: &mut O,
    hasher: &mut StreamHasher,
    sink: &mut Sink,
    size: &mut u64,
) -> Result<(), WriteError>
where
    O: FnMut(&[u8]) -> Result<(), BoxError>,
{
    observe(&chunk).map_err(WriteError::Aborted)?;
    *size += chunk.len() as u64;
    hasher.update(chunk.clone()).await;
    sink.write(chunk).await?;
    Ok(())
}

enum Sink {
    Local(local::LocalWriter),
    Object(WriteMultipart),
    Parts(parts::PartWriter),
}

impl Sink {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        match self {
            Sink::Local(w) => w.write(chunk).await,
            Sink::Object(w) => {
                w.wait_for_capacity(2).await?;
                w.put(chunk);
                Ok(())
            }
            Sink::Parts(w) => w.write(chunk).await,
        }
    }

    async fn finish(self) -> Result<(), StoreError> {
        match self {
            Sink::Local(w) => w.finish().await,
            Sink::Object(w) => w.finish().await.map(|_| ()).map_err(Into::into),
            Sink::Parts(w) => w.finish().await,
        }
    }

    /// Ends a failed write; `keep`: a resumable write keeps what it wrote.
    async fn abort(self, keep: bool) {
        match self {
            Sink::Local(w) => w.abort(keep).await,
            Sink::Object(w) => {
                let _ = w.abort().await;
            }
            Sink::Parts(w) => w.abort(keep).await,
        }
    }
}

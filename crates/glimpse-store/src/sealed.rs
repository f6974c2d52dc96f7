//! Sealed blobs: image bytes encrypted at rest with a per-image data key, in authenticated
//! chunks (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár over AES-256-GCM,
//! from aws-lc-rs, which uses AES-NI/VAES and CLMUL when the CPU has them).
//!
//! Layout: a [`HEADER_LEN`]-byte header (`GLSEAL` magic, version, chunk size, a random 7-byte
//! nonce prefix), then the plaintext cut into [`SEAL_CHUNK`]-byte chunks (the last one may be
//! shorter, or empty for an empty image), each stored as ciphertext followed by its 16-byte tag.
//! Chunk `i` is sealed with the nonce `prefix ‖ i (u32 BE) ‖ last-flag` and the header as
//! associated data, so a reordered, swapped, flipped or dropped chunk fails to open, and so does
//! a blob cut at a chunk boundary (the new last chunk was not sealed as the last).
//!
//! Reading ([`open_stream`]) never releases a chunk's plaintext before its tag verified: a
//! tampered blob ends the stream with [`StoreError::Integrity`] instead of returning wrong
//! bytes. Data keys are wrapped by a key-encryption key with [`wrap_key`] (AES-256-GCM, random
//! nonce, caller-chosen associated data).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::StoreError;

/// Plaintext bytes per sealed chunk.
pub const SEAL_CHUNK: usize = crate::CHUNK;
/// Bytes of the blob header.
pub const HEADER_LEN: usize = 24;
/// Bytes of one chunk's tag.
pub const TAG_LEN: usize = 16;
/// Length of a wrapped 32-byte key: nonce, ciphertext, tag.
pub const WRAPPED_LEN: usize = 12 + 32 + TAG_LEN;

const MAGIC: &[u8; 7] = b"GLSEAL\x01";

/// A 256-bit key (data key, customer master key or operator master key).
pub type Key = [u8; 32];

/// Fresh random bytes from the operating system's generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("the system random generator failed");
    out
}

fn aead(key: &Key) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Wraps (encrypts and authenticates) `key` under `kek`; `aad` binds it to its use.
pub fn wrap_key(kek: &Key, key: &Key, aad: &[u8]) -> Vec<u8> {
    let nonce: [u8; 12] = random();
    let mut body = key.to_vec();
    let tag = aead(kek)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .expect("sealing 32 bytes");
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    out
}

/// Unwraps a key made by [`wrap_key`]; `None` if the KEK, the AAD or the bytes are wrong.
pub fn unwrap_key(kek: &Key, wrapped: &[u8], aad: &[u8]) -> Option<Key> {
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&wrapped[..12]).ok()?;
    let mut body = wrapped[12..].to_vec();
    let plain = aead(kek)
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .ok()?;
    plain.try_into().ok()
}

/// Stored size of a sealed blob holding `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    HEADER_LEN as u64 + plain + TAG_LEN as u64 * chunks(plain)
}

/// Number of chunks of a sealed blob (an empty image still has one, empty, chunk).
pub fn chunks(plain: u64) -> u64 {
    plain.div_ceil(SEAL_CHUNK as u64).max(1)
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts the chunks of one blob, in order.
pub struct Sealer {
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
    index: u32,
    done: bool,
}

impl Sealer {
    pub fn new(data_key: &Key) -> Sealer {
        let prefix: [u8; 7] = random();
        let mut header = [0u8; HEADER_LEN];
        header[..7].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&(SEAL_CHUNK as u32).to_be_bytes());
        header[12..19].copy_from_slice(&prefix);
        Sealer {
            key: aead(data_key),
            header,
            prefix,
            index: 0,
            done: false,
        }
    }

    /// The blob's first bytes.
    pub fn header(&self) -> Bytes {
        Bytes::copy_from_slice(&self.header)
    }

    /// Seals the next chunk (`SEAL_CHUNK` bytes, except the last, which may be shorter).
    pub fn seal(&mut self, plain: &[u8], last: bool) -> Result<Bytes, StoreError> {
        if self.done || plain.len() > SEAL_CHUNK || (!last && plain.len() != SEAL_CHUNK) {
            return Err(StoreError::Integrity("sealing out of order".into()));
        }
        let mut out = BytesMut::with_capacity(plain.len() + TAG_LEN);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(&self.prefix, self.index, last),
                Aad::from(&self.header),
                &mut out,
            )
            .map_err(|_| StoreError::Integrity("sealing failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| StoreError::Integrity("too many chunks".into()))?;
        self.done = last;
        Ok(out.freeze())
    }
}

/// Decrypts the chunks of one blob.
struct Opener {
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
}

impl Opener {
    fn new(data_key: &Key, header: &[u8]) -> Result<Opener, StoreError> {
        if header.len() != HEADER_LEN
            || &header[..7] != MAGIC
            || header[8..12] != (SEAL_CHUNK as u32).to_be_bytes()
        {
            return Err(StoreError::Integrity(
                "the blob is not a sealed blob of this version".into(),
            ));
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(header);
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&header[12..19]);
        Ok(Opener {
            key: aead(data_key),
            header: h,
            prefix,
        })
    }

    fn open(&self, index: u64, sealed: &mut [u8], last: bool) -> Result<usize, StoreError> {
        let bad = || {
            StoreError::Integrity(format!(
                "chunk {index} of the sealed blob failed authentication"
            ))
        };
        if sealed.len() < TAG_LEN {
            return Err(bad());
        }
        let index = u32::try_from(index).map_err(|_| bad())?;
        let n = sealed.len() - TAG_LEN;
        let (data, tag) = sealed.split_at_mut(n);
        self.key
            .open_in_place_separate_tag(
                nonce(&self.prefix, index, last),
                Aad::from(&self.header),
                tag,
                data,
            )
            .map_err(|_| bad())?;
        Ok(n)
    }
}

/// Where the chunks covering a plaintext range are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedRange {
    pub first_chunk: u64,
    pub last_chunk: u64,
    /// Stored bytes `start..end` holding those chunks.
    pub start: u64,
    pub end: u64,
}

fn chunk_plain_len(plain: u64, i: u64) -> u64 {
    let c = SEAL_CHUNK as u64;
    plain.saturating_sub(i * c).min(c)
}

/// The stored byte range of the chunks covering plaintext `start..end` (`end > start`, or
/// the whole empty chunk for an empty image).
pub fn sealed_range(plain: u64, start: u64, end: u64) -> SealedRange {
    let c = SEAL_CHUNK as u64;
    let first = start / c;
    let last = if end > start { (end - 1) / c } else { first };
    let last = last.min(chunks(plain) - 1);
    let at = |i: u64| HEADER_LEN as u64 + i * (c + TAG_LEN as u64);
    SealedRange {
        first_chunk: first,
        last_chunk: last,
        start: at(first),
        end: at(last) + chunk_plain_len(plain, last) + TAG_LEN as u64,
    }
}

/// Decrypts `body` (the stored bytes `r.start..r.end` of a blob sealed with `data_key`, whose
/// header is `header`) and yields the plaintext `start..end`. Every chunk is authenticated
/// before any of its bytes is released; a bad or missing chunk ends the stream with
/// [`StoreError::Integrity`].
pub fn open_stream<S>(
    data_key: &Key,
    header: &[u8],
    plain: u64,
    (start, end): (u64, u64),
    body: S,
) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError>
where
    S: Stream<Item = Result<Bytes, StoreError>> + Send + 'static,
{
    let opener = std::sync::Arc::new(Opener::new(data_key, header)?);
    let r = sealed_range(plain, start, end);
    let c = SEAL_CHUNK as u64;
    let total_chunks = chunks(plain);
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        buf: BytesMut,
        index: u64,
        ended: bool,
    }
    let state = State {
        body: Box::pin(body),
        buf: BytesMut::new(),
        index: r.first_chunk,
        ended: false,
    };
    let s = futures::stream::try_unfold(state, move |mut st| {
        let opener = opener.clone();
        async move {
            loop {
                if st.index > r.last_chunk {
                    return Ok(None);
                }
                let want = (chunk_plain_len(plain, st.index) + TAG_LEN as u64) as usize;
                if st.buf.len() >= want {
                    let mut sealed = st.buf.split_to(want);
                    let last = st.index + 1 == total_chunks;
                    let n = opener.open(st.index, &mut sealed, last)?;
                    sealed.truncate(n);
                    // Trim to the asked range.
                    let chunk_start = st.index * c;
                    let from = start.saturating_sub(chunk_start).min(n as u64) as usize;
                    let to = (end.saturating_sub(chunk_start)).min(n as u64) as usize;
                    st.index += 1;
                    let piece = sealed.freeze().slice(from..to.max(from));
                    if piece.is_empty() {
                        continue;
                    }
                    return Ok(Some((piece, st)));
                }
                if st.ended {
                    return Err(StoreError::Integrity(format!(
                        "the sealed blob ends inside chunk {}",
                        st.index
                    )));
                }
                match st.body.next().await {
                    Some(b) => st.buf.extend_from_slice(&b?),
                    None => st.ended = true,
                }
            }
        }
    });
    Ok(s.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlobStore, S3Options};
    use futures::TryStreamExt;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    async fn put(store: &BlobStore, key: &Key, bytes: &[u8]) -> crate::SealedWritten {
        let parts: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(100_003)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        store
            .write_sealed(futures::stream::iter(parts), key)
            .await
            .unwrap()
    }

    async fn get(
        store: &BlobStore,
        blob: &str,
        key: &Key,
        plain: u64,
        range: Option<(u64, u64)>,
    ) -> Result<Vec<u8>, StoreError> {
        let s = store.read_sealed(blob, key, plain, range).await?;
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok(parts.concat())
    }

    #[tokio::test]
    async fn round_trips_every_size_and_range() {
        let store = BlobStore::open("memory://", &S3Options::default()).unwrap();
        let key: Key = random();
        for n in [
            0,
            1,
            SEAL_CHUNK - 1,
            SEAL_CHUNK,
            SEAL_CHUNK + 1,
            3 * SEAL_CHUNK + 17,
        ] {
            let bytes = data(n);
            let w = put(&store, &key, &bytes).await;
            assert_eq!(w.plain_size, n as u64);
            assert_eq!(w.stored_size, sealed_len(n as u64));
            assert_eq!(store.size(&w.key).await.unwrap(), w.stored_size);
            assert_eq!(w.sha512, crate::digest_bytes(&bytes).sha512);
            assert_eq!(
                get(&store, &w.key, &key, n as u64, None).await.unwrap(),
                bytes
            );
            if n > 10 {
                let (a, b) = (n as u64 / 3, n as u64 - 3);
                let got = get(&store, &w.key, &key, n as u64, Some((a, b)))
                    .await
                    .unwrap();
                assert_eq!(got, bytes[a as usize..b as usize]);
            }
        }
    }

    #[tokio::test]
    async fn tampering_truncation_and_a_wrong_key_fail_closed() {
        let dir = std::env::temp_dir().join(format!("glimpse-sealed-{}", uuid::Uuid::new_v4()));
        let store =
            BlobStore::open(&format!("file://{}", dir.display()), &S3Options::default()).unwrap();
        let key: Key = random();
        let n = 2 * SEAL_CHUNK + 5;
        let bytes = data(n);
        let w = put(&store, &key, &bytes).await;
        let path = dir.join(&w.key);
        let original = std::fs::read(&path).unwrap();
        assert!(!original.windows(64).any(|win| win == &bytes[1000..1064]));

        let other: Key = random();
        assert!(matches!(
            get(&store, &w.key, &other, n as u64, None).await,
            Err(StoreError::Integrity(_))
        ));

        // A flipped byte in the second chunk: the first chunk comes out, then an error.
        let mut flipped = original.clone();
        flipped[HEADER_LEN + SEAL_CHUNK + TAG_LEN + 10] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let mut s = store
            .read_sealed(&w.key, &key, n as u64, None)
            .await
            .unwrap();
        let first = s.try_next().await.unwrap().unwrap();
        assert_eq!(&first[..], &bytes[..SEAL_CHUNK]);
        assert!(matches!(s.try_next().await, Err(StoreError::Integrity(_))));

        // Cut at a chunk boundary (two whole chunks left) and cut mid-chunk.
        for cut in [HEADER_LEN + 2 * (SEAL_CHUNK + TAG_LEN), original.len() - 1] {
            std::fs::write(&path, &original[..cut]).unwrap();
            let got = get(&store, &w.key, &key, n as u64, None).await;
            assert!(got.is_err(), "cut at {cut} must fail");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrapped_keys_need_the_kek_and_the_aad() {
        let (kek, key): (Key, Key) = (random(), random());
        let w = wrap_key(&kek, &key, b"cmk-1");
        assert_eq!(w.len(), WRAPPED_LEN);
        assert_eq!(unwrap_key(&kek, &w, b"cmk-1"), Some(key));
        assert_eq!(unwrap_key(&kek, &w, b"cmk-2"), None);
        assert_eq!(unwrap_key(&random(), &w, b"cmk-1"), None);
    }
}

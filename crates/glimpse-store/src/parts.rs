//! Resumable writes on an object store (S3; memory in tests). Layout under the bucket:
//!
//! * `partials/<name>/<index>`: the bytes of the resumable write `name`, as ordinary objects of
//!   exactly [`PART`] bytes each but the last (index zero-padded to 8 digits, from 0). Each is
//!   written by one PUT once complete, so whatever happens to a writer, a part object is whole.
//! * `partials/<name>/writer-<id>`: an empty mark each live writer re-PUTs every 20 s, so the
//!   cleaner's listing can tell a partial in use (a mark younger than 90 s) from an abandoned
//!   one, however old its parts.
//!
//! What the store holds of `name` ([`partial_len`]) is the sum of the sizes of the parts from
//! index 0 on, contiguous, each full but the last: a gap, or a short part that is not the last,
//! ends it (what follows is a stray a later resume deletes). A write resumed at byte `X`
//! ([`resume`]) deletes the parts past `X`, rewrites the part `X` cuts to its first bytes,
//! re-reads the parts below `X` (the caller streams them through its hashers and observer),
//! then appends the body as new parts; at the end the parts are composed, streamed in order
//! into a new multipart object `blobs/<uuid>`, and deleted.
//!
//! Several nodes may share the bucket, so two writers of one name can meet (a node that hung
//! past its heartbeat while another took its upload over). No lock: a part of a new index is
//! PUT with `If-None-Match: *`, so a writer never overwrites a part another created (the cut
//! part a resume rewrites is deleted first, then created the same way), and every read of a
//! part, when re-reading the held bytes and when composing, carries `If-Match` with the e-tag
//! this writer listed or got from its own PUT. A writer whose parts another replaced or
//! deleted therefore fails with [`StoreError::Conflict`] instead of composing bytes it did
//! not hash, and leaves the partial to the other. (radosgw 16 honours `If-None-Match: *` on
//! PUT and `If-Match` on GET, but refuses an `If-Match` PUT whose e-tag is quoted, which is
//! why the rewrite of a cut part is a delete and a create, not a conditional overwrite.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutPayload,
    PutPayloadMut, WriteMultipart,
};
use tokio::task::JoinHandle;

use crate::{BlobInfo, CHUNK, PART, StoreError, check_partial_name};

/// Where partials live in the bucket.
pub(crate) const ROOT: &str = "partials";
/// Digits of a part's index.
const DIGITS: usize = 8;
/// A live writer re-marks its partial this often.
const BEAT: Duration = Duration::from_secs(20);
/// A partial marked more recently than this is in use.
const IN_USE: Duration = Duration::from_secs(90);
/// Part PUTs a writer has in flight at most.
const IN_FLIGHT: usize = 2;

/// One part object as a writer knows it: its size and the e-tag its reads must match.
#[derive(Debug, Clone)]
struct Part {
    size: u64,
    e_tag: Option<String>,
}

fn dir(name: &str) -> ObjPath {
    ObjPath::from_iter([ROOT, name])
}

fn part_path(name: &str, index: u64) -> ObjPath {
    ObjPath::from_iter([
        ROOT.to_string(),
        name.to_string(),
        format!("{index:0DIGITS$}"),
    ])
}

/// The index of a part object, `None` for anything else (a writer's mark).
fn index_of(meta: &ObjectMeta) -> Option<u64> {
    let file = meta.location.filename()?;
    if file.len() == DIGITS && file.bytes().all(|b| b.is_ascii_digit()) {
        file.parse().ok()
    } else {
        None
    }
}

fn is_mark(meta: &ObjectMeta) -> bool {
    meta.location
        .filename()
        .is_some_and(|f| f.starts_with("writer-"))
}

/// The name of the partial an object under [`ROOT`] belongs to.
fn name_of(meta: &ObjectMeta) -> Option<String> {
    let mut parts = meta.location.parts();
    (parts.next()?.as_ref() == ROOT).then_some(())?;
    Some(parts.next()?.as_ref().to_string())
}

/// Whether a writer marked the partial of `objects` less than [`IN_USE`] before `now`.
fn fresh_mark(objects: &[ObjectMeta], now: DateTime<Utc>) -> bool {
    let since = now - chrono::Duration::from_std(IN_USE).unwrap_or_default();
    objects
        .iter()
        .any(|o| is_mark(o) && o.last_modified > since)
}

/// Errors of a conditional PUT or GET of a part that mean another writer (or a drop)
/// changed the partial under this one: [`StoreError::Conflict`] naming the part.
fn conflict(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::AlreadyExists { path, .. }
        | object_store::Error::Precondition { path, .. }
        | object_store::Error::NotModified { path, .. }
        | object_store::Error::NotFound { path, .. } => StoreError::Conflict(path),
        e => e.into(),
    }
}

/// Every object of the partial `name`, and the held parts among them.
struct Scan {
    /// Parts 0.. that make the held bytes: contiguous, each full but the last.
    held: Vec<Part>,
    objects: Vec<ObjectMeta>,
}

impl Scan {
    fn len(&self) -> u64 {
        self.held.iter().map(|p| p.size).sum()
    }
}

async fn scan(store: &dyn ObjectStore, name: &str) -> Result<Scan, StoreError> {
    check_partial_name(name)?;
    let objects: Vec<ObjectMeta> = store.list(Some(&dir(name))).try_collect().await?;
    let parts: BTreeMap<u64, Part> = objects
        .iter()
        .filter_map(|o| {
            let part = Part {
                size: o.size,
                e_tag: o.e_tag.clone(),
            };
            Some((index_of(o)?, part))
        })
        .collect();
    let mut held = Vec::new();
    for (index, part) in parts {
        if index != held.len() as u64 || part.size > PART as u64 {
            break;
        }
        let full = part.size == PART as u64;
        held.push(part);
        if !full {
            break;
        }
    }
    Ok(Scan { held, objects })
}

/// How many bytes of the resumable write `name` the store holds.
pub(crate) async fn partial_len(store: &dyn ObjectStore, name: &str) -> Result<u64, StoreError> {
    Ok(scan(store, name).await?.len())
}

/// Deletes `paths`; ones already gone count as deleted.
async fn delete_all(store: &dyn ObjectStore, paths: Vec<ObjPath>) -> Result<(), StoreError> {
    if paths.is_empty() {
        return Ok(());
    }
    let paths = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
    store
        .delete_stream(paths)
        .map(|r| gone_is_done(r.map(drop)))
        .try_collect::<()>()
        .await
}

/// Deletes every object of every partial whose name starts with `prefix`; returns how many
/// partials.
pub(crate) async fn drop_partials(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<usize, StoreError> {
    let objects: Vec<ObjectMeta> = store.list(Some(&ObjPath::from(ROOT))).try_collect().await?;
    let mut names = std::collections::BTreeSet::new();
    let mut doomed = Vec::new();
    for o in objects {
        if let Some(name) = name_of(&o).filter(|n| n.starts_with(prefix)) {
            names.insert(name);
            doomed.push(o.location);
        }
    }
    delete_all(store, doomed).await?;
    Ok(names.len())
}

/// The partials, one entry each (key `partials/<name>`, the bytes of all its objects, the
/// newest object's time), for the cleaner; partials a writer marked lately are left out.
pub(crate) async fn list(store: &dyn ObjectStore) -> Result<Vec<BlobInfo>, StoreError> {
    list_at(store, Utc::now()).await
}

async fn list_at(store: &dyn ObjectStore, now: DateTime<Utc>) -> Result<Vec<BlobInfo>, StoreError> {
    let objects: Vec<ObjectMeta> = store.list(Some(&ObjPath::from(ROOT))).try_collect().await?;
    let mut by_name: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for o in objects {
        if let Some(name) = name_of(&o) {
            by_name.entry(name).or_default().push(o);
        }
    }
    Ok(by_name
        .into_iter()
        .filter(|(_, objects)| !fresh_mark(objects, now))
        .filter_map(|(name, objects)| {
            Some(BlobInfo {
                key: format!("{ROOT}/{name}"),
                size: objects.iter().map(|o| o.size).sum(),
                modified: objects.iter().map(|o| o.last_modified).max()?,
            })
        })
        .collect())
}

/// The cleaner's delete of the partial `name`: every object of it, unless a writer marked it
/// since it was listed (then it is in use again and stays).
pub(crate) async fn delete(store: &dyn ObjectStore, name: &str) -> Result<(), StoreError> {
    let s = scan(store, name).await?;
    if fresh_mark(&s.objects, Utc::now()) {
        return Ok(());
    }
    delete_all(store, s.objects.into_iter().map(|o| o.location).collect()).await
}

/// Streams `0..end` of part `index` (all of it when `end` is `None`), which must still be the
/// object `part` describes; in [`CHUNK`]s.
async fn read_part(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    index: u64,
    part: &Part,
    end: Option<u64>,
) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
    let want = end.unwrap_or(part.size);
    let opts = GetOptions {
        if_match: part.e_tag.clone(),
        range: end.map(|e| GetRange::Bounded(0..e)),
        ..Default::default()
    };
    let got = store
        .get_opts(&part_path(name, index), opts)
        .await
        .map_err(conflict)?;
    if got.meta.size != part.size {
        return Err(StoreError::Conflict(got.meta.location.to_string()));
    }
    Ok(coalesce(
        got.into_stream().map_err(StoreError::from).boxed(),
        want,
    ))
}

/// Regroups `stream` into [`CHUNK`]s; ends with [`StoreError::Truncated`] unless it brings
/// exactly `want` bytes.
fn coalesce(
    stream: BoxStream<'static, Result<Bytes, StoreError>>,
    want: u64,
) -> BoxStream<'static, Result<Bytes, StoreError>> {
    futures::stream::try_unfold(
        (stream, BytesMut::new(), 0u64, false),
        move |(mut s, mut buf, mut seen, ended)| async move {
            if ended {
                return Ok(None);
            }
            while buf.len() < CHUNK {
                match s.next().await.transpose()? {
                    Some(b) => {
                        seen += b.len() as u64;
                        if seen > want {
                            return Err(StoreError::Truncated);
                        }
                        buf.extend_from_slice(&b);
                    }
                    None if seen == want => {
                        return Ok(
                            (!buf.is_empty()).then(|| (buf.split().freeze(), (s, buf, seen, true)))
                        );
                    }
                    None => return Err(StoreError::Truncated),
                }
            }
            let chunk = buf.split_to(CHUNK).freeze();
            Ok(Some((chunk, (s, buf, seen, false))))
        },
    )
    .boxed()
}

/// Starts a write of partial `name` at byte `offset`, to be composed into the blob `key`: the
/// writer, and (when `offset` > 0) the stream of the held bytes `0..offset` for the caller's
/// hashers and observer. [`StoreError::Gap`] when the store holds fewer than `offset` bytes.
pub(crate) async fn resume(
    store: Arc<dyn ObjectStore>,
    name: &str,
    offset: u64,
    key: &str,
) -> Result<
    (
        PartWriter,
        Option<BoxStream<'static, Result<Bytes, StoreError>>>,
    ),
    StoreError,
> {
    let s = scan(&*store, name).await?;
    let held = s.len();
    if offset > held {
        return Err(StoreError::Gap { held });
    }
    let mark = ObjPath::from_iter([
        ROOT.to_string(),
        name.to_string(),
        format!("writer-{}", uuid::Uuid::new_v4().simple()),
    ]);
    store.put(&mark, PutPayload::default()).await?;
    let beat = {
        let (store, mark) = (store.clone(), mark.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(BEAT).await;
                let _ = store.put(&mark, PutPayload::default()).await;
            }
        })
    };
    let (k, within) = (offset / PART as u64, offset % PART as u64);
    let mut writer = PartWriter(Some(State {
        store: store.clone(),
        name: name.to_string(),
        key: key.to_string(),
        mark,
        beat,
        parts: s.held[..k as usize].to_vec(),
        flying: VecDeque::new(),
        pending: PutPayloadMut::new(),
        unsaved: false,
        replace: false,
        conflict: false,
    }));
    match writer.start(&s, within).await {
        Ok(carry) => {
            let prefix = (offset > 0).then(|| {
                let (store, name) = (store.clone(), name.to_string());
                let held: Vec<Part> = s.held[..k as usize].to_vec();
                futures::stream::iter(held.into_iter().enumerate())
                    .then(move |(i, part)| {
                        let (store, name) = (store.clone(), name.clone());
                        async move { read_part(&store, &name, i as u64, &part, None).await }
                    })
                    .try_flatten()
                    .chain(futures::stream::iter(carry.map(Ok)))
                    .boxed()
            });
            Ok((writer, prefix))
        }
        Err(e) => {
            if let Some(state) = writer.0.take() {
                state.leave().await;
            }
            Err(e)
        }
    }
}

/// A resumable write's parts (see the module documentation). Dropped before its end (the
/// caller's future dropped), it keeps what it received, as [`PartWriter::abort`]`(true)`, in
/// the background.
pub(crate) struct PartWriter(Option<State>);

struct State {
    store: Arc<dyn ObjectStore>,
    name: String,
    /// The blob the parts are composed into.
    key: String,
    /// This writer's mark, and the task that renews it.
    mark: ObjPath,
    beat: JoinHandle<()>,
    /// Parts `0..parts.len()`, held or written, with the e-tags the composition checks.
    parts: Vec<Part>,
    /// PUTs in flight of the parts that follow, in order.
    flying: VecDeque<JoinHandle<Result<Part, StoreError>>>,
    /// The bytes so far of the part being filled ([`State::next`]), and whether some of them
    /// are not in the store yet (the start of a cut part is).
    pending: PutPayloadMut,
    unsaved: bool,
    /// Whether the part at index [`State::next`] exists already (the part the resume point cut, now
    /// its first bytes) and its PUT replaces it.
    replace: bool,
    /// Another writer changed the partial: it is theirs now.
    conflict: bool,
}

impl PartWriter {
    fn state(&mut self) -> Result<&mut State, StoreError> {
        self.0.as_mut().ok_or(StoreError::Closed)
    }

    /// Deletes what lies past byte `next · PART + within`, rewrites the cut part `next` to its
    /// first `within` bytes and takes them as the start of the part being filled; returns them.
    async fn start(&mut self, s: &Scan, within: u64) -> Result<Option<Bytes>, StoreError> {
        let st = self.state()?;
        let keep_below = st.next() + u64::from(within > 0);
        let past: Vec<ObjPath> = s
            .objects
            .iter()
            .filter(|o| index_of(o).is_some_and(|i| i >= keep_below))
            .map(|o| o.location.clone())
            .collect();
        delete_all(&*st.store, past).await?;
        if within == 0 {
            return Ok(None);
        }
        let cut = &s.held[st.next() as usize];
        let mut read = read_part(&st.store, &st.name, st.next(), cut, Some(within)).await?;
        let mut carry = BytesMut::with_capacity(within as usize);
        while let Some(b) = read.next().await {
            carry.extend_from_slice(&b?);
        }
        let carry = carry.freeze();
        if cut.size > within {
            put_part(&st.store, &st.name, st.next(), carry.clone().into(), true).await?;
        }
        st.replace = true;
        st.pending.push(carry.clone());
        Ok(Some(carry))
    }

    pub(crate) async fn write(&mut self, mut chunk: Bytes) -> Result<(), StoreError> {
        let st = self.state()?;
        while !chunk.is_empty() {
            let room = PART - st.pending.content_length();
            if chunk.len() < room {
                st.pending.push(chunk);
                st.unsaved = true;
                return Ok(());
            }
            st.pending.push(chunk.split_to(room));
            st.ship();
            while st.flying.len() > IN_FLIGHT {
                st.land().await?;
            }
        }
        Ok(())
    }

    /// Writes the last part, composes the blob from the parts, then deletes everything under
    /// the partial's name (its parts, and the marks of writers that died on it). If the
    /// composition fails the parts stay (a later resume, or the cleaner, takes them).
    pub(crate) async fn finish(mut self) -> Result<(), StoreError> {
        let mut st = self.0.take().ok_or(StoreError::Closed)?;
        // If this future is dropped midway (the request went away), the mark's renewal stops
        // with it: the cleaner may then take the parts after its grace.
        let _renewal = AbortOnDrop(st.beat.abort_handle());
        let composed = async {
            if !st.pending.is_empty() {
                st.ship();
            }
            while !st.flying.is_empty() {
                st.land().await?;
            }
            compose(&st.store, &st.name, &st.key, &st.parts).await
        }
        .await;
        if composed.is_ok()
            && let Ok(s) = scan(&*st.store, &st.name).await
        {
            let objects = s.objects.into_iter().map(|o| o.location);
            let _ = delete_all(&*st.store, objects.collect()).await;
        }
        st.leave().await;
        composed
    }

    /// The write failed because another writer changed the partial (the caller saw
    /// [`StoreError::Conflict`]): [`PartWriter::abort`] leaves the partial to the other.
    pub(crate) fn yield_to_other(&mut self) {
        if let Some(st) = self.0.as_mut() {
            st.conflict = true;
        }
    }

    /// Ends a failed write; `keep`: the bytes received so far stay as the partial (the last,
    /// short part written now), else the partial goes. A writer that met another leaves the
    /// partial to it either way.
    pub(crate) async fn abort(mut self, keep: bool) {
        if let Some(st) = self.0.take() {
            st.abort(keep).await;
        }
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        let Some(st) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(st.abort(true));
            }
            Err(_) => st.beat.abort(),
        }
    }
}

/// Writes part `index` with `If-None-Match: *` (another writer's part of that index is never
/// overwritten: [`StoreError::Conflict`]); the part's e-tag. `replace` (the part a resume
/// point cut) deletes the part first and creates it anew: not an `If-Match` PUT, which
/// radosgw 16 refuses (412) whenever the e-tag is quoted as RFC 9110 and S3 have it. A crash
/// in between loses that part, which only moves the resume point back; a writer whose part
/// this was fails when it composes (its `If-Match` read).
async fn put_part(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    index: u64,
    payload: PutPayload,
    replace: bool,
) -> Result<Part, StoreError> {
    let path = part_path(name, index);
    if replace {
        gone_is_done(store.delete(&path).await)?;
    }
    let size = payload.content_length() as u64;
    let put = store
        .put_opts(&path, payload, PutMode::Create.into())
        .await
        .map_err(conflict)?;
    Ok(Part {
        size,
        e_tag: put.e_tag,
    })
}

/// A delete's answer: an object that is not there counts as deleted.
pub(crate) fn gone_is_done(r: Result<(), object_store::Error>) -> Result<(), StoreError> {
    match r {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl State {
    /// The index of the part being filled: every part before it is held or in flight.
    fn next(&self) -> u64 {
        (self.parts.len() + self.flying.len()) as u64
    }

    /// Starts the PUT of the part being filled.
    fn ship(&mut self) {
        let payload = std::mem::take(&mut self.pending).freeze();
        let (store, name, index) = (self.store.clone(), self.name.clone(), self.next());
        let replace = std::mem::take(&mut self.replace);
        self.unsaved = false;
        self.flying.push_back(tokio::spawn(async move {
            put_part(&store, &name, index, payload, replace).await
        }));
    }

    /// Waits for the oldest PUT in flight.
    async fn land(&mut self) -> Result<(), StoreError> {
        let Some(put) = self.flying.pop_front() else {
            return Ok(());
        };
        let landed = put
            .await
            .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(e))));
        match landed {
            Ok(part) => {
                self.parts.push(part);
                Ok(())
            }
            Err(e) => {
                self.conflict |= matches!(e, StoreError::Conflict(_));
                Err(e)
            }
        }
    }

    async fn abort(mut self, keep: bool) {
        let mut failed = false;
        while !self.flying.is_empty() {
            failed |= self.land().await.is_err();
        }
        if self.conflict {
            // The partial is another writer's now.
        } else if keep && !failed {
            if self.unsaved {
                self.ship();
                let _ = self.land().await;
            }
        } else if let Ok(s) = scan(&*self.store, &self.name).await {
            let parts = s.objects.iter().filter(|o| index_of(o).is_some());
            let _ = delete_all(&*self.store, parts.map(|o| o.location.clone()).collect()).await;
        }
        self.leave().await;
    }

    /// Stops marking the partial as in use.
    async fn leave(self) {
        self.beat.abort();
        let _ = self.beat.await;
        let _ = self.store.delete(&self.mark).await;
    }
}

/// Streams the parts, each still the object this writer knows, into a new multipart object
/// `key`.
async fn compose(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    key: &str,
    parts: &[Part],
) -> Result<(), StoreError> {
    let upload = store.put_multipart(&ObjPath::from(key)).await?;
    let mut blob = WriteMultipart::new_with_chunk_size(upload, PART);
    match copy_parts(store, name, parts, &mut blob).await {
        Ok(()) => {
            blob.finish().await?;
            Ok(())
        }
        Err(e) => {
            let _ = blob.abort().await;
            Err(e)
        }
    }
}

async fn copy_parts(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    parts: &[Part],
    blob: &mut WriteMultipart,
) -> Result<(), StoreError> {
    for (i, part) in parts.iter().enumerate() {
        let mut read = read_part(store, name, i as u64, part, None).await?;
        while let Some(chunk) = read.next().await {
            let chunk = chunk?;
            blob.wait_for_capacity(2).await?;
            blob.put(chunk);
        }
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, BlobStore, digest_bytes};

    fn memory() -> (Arc<dyn ObjectStore>, BlobStore) {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let blobs = BlobStore {
            backend: Backend::Object(store.clone()),
            url: "memory://".into(),
        };
        (store, blobs)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    async fn put(store: &Arc<dyn ObjectStore>, name: &str, index: u64, bytes: &[u8]) {
        store
            .put(
                &part_path(name, index),
                Bytes::copy_from_slice(bytes).into(),
            )
            .await
            .unwrap();
    }

    async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
        let listed: Vec<ObjectMeta> = store.list(None).try_collect().await.unwrap();
        let mut keys: Vec<String> = listed.into_iter().map(|o| o.location.to_string()).collect();
        keys.sort();
        keys
    }

    /// Only parts from 0 on, contiguous, each full but the last, are held: a gap or a short
    /// part ends them, and a resume deletes what follows.
    #[tokio::test]
    async fn held_bytes_end_at_a_gap_or_a_short_part() {
        let (store, blobs) = memory();
        let data = pattern(4 * PART, 7);
        put(&store, "gap", 0, &data[..PART]).await;
        put(&store, "gap", 1, &data[PART..2 * PART]).await;
        put(&store, "gap", 3, &data[3 * PART..]).await;
        assert_eq!(blobs.partial_len("gap").await.unwrap(), 2 * PART as u64);

        put(&store, "short", 0, &data[..100]).await;
        put(&store, "short", 1, &data[PART..2 * PART]).await;
        assert_eq!(blobs.partial_len("short").await.unwrap(), 100);
        assert_eq!(blobs.partial_len("none").await.unwrap(), 0);

        // Resumed at the gap: the stray part 3 goes, the content is whole.
        let rest = Bytes::copy_from_slice(&data[2 * PART..]);
        let w = blobs
            .write_resumable(
                "gap",
                2 * PART as u64,
                futures::stream::iter([Ok::<_, std::io::Error>(rest)]),
                None,
                |_: &[u8]| Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(w.digests, digest_bytes(&data));
        let blob = store.get(&ObjPath::from(w.key.as_str())).await.unwrap();
        assert!(blob.bytes().await.unwrap() == data);
        assert!(
            !keys(&store).await.iter().any(|k| k.contains("/gap/")),
            "{:?}",
            keys(&store).await
        );
    }

    /// The cleaner's listing shows one entry per partial, dated by its newest object, and
    /// leaves out a partial whose writer marked it lately, until the mark is stale (a writer
    /// killed without a word).
    #[tokio::test]
    async fn a_partial_is_listed_once_its_writers_marks_are_stale() {
        let (store, _) = memory();
        put(&store, "dead", 0, &pattern(PART, 1)).await;
        put(&store, "dead", 1, &pattern(10, 2)).await;
        let mark = dir("dead").join("writer-0123");
        store.put(&mark, PutPayload::default()).await.unwrap();
        put(&store, "idle", 0, &pattern(5, 3)).await;
        let now = Utc::now();
        let listed = list_at(&*store, now).await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, vec!["partials/idle"]);
        let later = now + chrono::Duration::from_std(IN_USE + BEAT).unwrap();
        let listed = list_at(&*store, later).await.unwrap();
        let dead = listed.iter().find(|b| b.key == "partials/dead").unwrap();
        assert_eq!(dead.size, PART as u64 + 10);
        assert!(dead.modified <= now);
        // The cleaner's delete of a partial in use does nothing; a drop takes all.
        delete(&*store, "dead").await.unwrap();
        assert_eq!(
            partial_len(&*store, "dead").await.unwrap(),
            PART as u64 + 10
        );
        assert_eq!(drop_partials(&*store, "de").await.unwrap(), 1);
        assert_eq!(keys_of(&store, "dead").await, Vec::<String>::new());
    }

    async fn keys_of(store: &Arc<dyn ObjectStore>, name: &str) -> Vec<String> {
        let mut k = keys(store).await;
        k.retain(|k| k.contains(&format!("/{name}/")));
        k
    }

    /// A live writer marks its partial and removes the mark when it ends; the parts it wrote
    /// are whole objects of [`PART`] bytes and a last, short one.
    #[tokio::test]
    async fn a_writer_marks_its_partial_and_writes_whole_parts() {
        let (store, blobs) = memory();
        let (go, when) = tokio::sync::oneshot::channel::<()>();
        let data = pattern(PART + 5, 9);
        let first = Bytes::copy_from_slice(&data);
        let body = futures::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
            futures::stream::once(async move {
                let _ = when.await;
                Err(std::io::Error::other("cut"))
            }),
        );
        let writer = blobs.clone();
        let writing = tokio::spawn(async move {
            writer
                .write_resumable("live", 0, body, None, |_: &[u8]| Ok(()))
                .await
        });
        while partial_len(&*store, "live").await.unwrap() < PART as u64 {
            tokio::task::yield_now().await;
        }
        let objects = || async {
            let listed: Vec<ObjectMeta> =
                store.list(Some(&dir("live"))).try_collect().await.unwrap();
            listed
        };
        assert!(objects().await.iter().any(is_mark), "marked while it runs");
        let _ = go.send(());
        assert!(writing.await.unwrap().is_err());
        let left = objects().await;
        assert!(!left.iter().any(is_mark), "the mark goes with the writer");
        let mut sizes: Vec<(u64, u64)> = left
            .iter()
            .filter_map(|o| Some((index_of(o)?, o.size)))
            .collect();
        sizes.sort();
        assert_eq!(sizes, vec![(0, PART as u64), (1, 5)]);
    }
}

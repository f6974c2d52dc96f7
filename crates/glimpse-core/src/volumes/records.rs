//! Volume record operations as a caller performs them: create (enqueues the `volume_create`
//! job), show, list, update and delete. Each one asks [`policy`] first.
//!
//! Crash behaviour: creation inserts the `creating` row and enqueues its job keyed by the
//! volume id (a crash between the two leaves a `creating` row that [`super::recover`] turns
//! into `error`); deletion marks the row `deleting`, removes the file, then the row, and
//! [`super::recover`] finishes a deletion a crash interrupted.

use std::collections::BTreeMap;

use glimpse_types::ImageStatus;

use super::policy::{self, Action};
use super::{
    AVAILABILITY_ZONE, DEFAULT_TYPE, MAX_NAME, Volume, VolumeStatus, create as job, files, repo,
};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::jobs::NewJob;
use crate::region::Region;

/// What a create request asks for.
#[derive(Debug, Clone, Default)]
pub struct NewVolume {
    pub name: Option<String>,
    pub description: Option<String>,
    pub size_gb: i64,
    /// Make the volume from this image (converted to raw).
    pub image_id: Option<String>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

const GIB: u64 = 1 << 30;

fn check_text(what: &str, v: &Option<String>) -> Result<()> {
    if v.as_ref().is_some_and(|s| s.chars().count() > MAX_NAME) {
        return Err(Error::bad_request(format!(
            "Invalid input received: {what} has more than {MAX_NAME} characters."
        )));
    }
    Ok(())
}

/// Creates a volume: the `creating` row now, the file by the `volume_create` job.
pub async fn create(region: &Region, caller: &Caller, new: NewVolume) -> Result<Volume> {
    policy::authorize(caller, Action::Create)?;
    let project = caller.project()?.to_string();
    check_text("name", &new.name)?;
    check_text("description", &new.description)?;
    let max = (region.config.limits.max_virtual_size >> 30) as i64;
    if new.size_gb <= 0 {
        return Err(Error::bad_request(format!(
            "Invalid input received: Volume size '{}' must be an integer and greater than 0.",
            new.size_gb
        )));
    }
    if new.size_gb > max {
        return Err(Error::bad_request(format!(
            "Invalid input received: Volume size {} GB exceeds the largest volume this region \
             makes ({max} GB).",
            new.size_gb
        )));
    }
    if let Some(t) = new.volume_type.as_deref()
        && t != DEFAULT_TYPE
        && t != super::DEFAULT_TYPE_ID
    {
        return Err(Error::not_found(format!(
            "Volume type with name {t} could not be found."
        )));
    }
    if let Some(z) = new.availability_zone.as_deref()
        && z != AVAILABILITY_ZONE
    {
        return Err(Error::bad_request(format!(
            "Invalid input received: Availability zone '{z}' is invalid."
        )));
    }
    if let Some(image_id) = new.image_id.as_deref() {
        check_image(region, caller, image_id, new.size_gb).await?;
    }
    let now = glimpse_types::now();
    let v = Volume {
        id: glimpse_types::uuid_id(),
        project_id: project.clone(),
        user_id: caller.user_id.clone(),
        name: new.name,
        description: new.description,
        size_gb: new.size_gb,
        status: VolumeStatus::Creating,
        previous_status: None,
        volume_type: DEFAULT_TYPE.into(),
        availability_zone: AVAILABILITY_ZONE.into(),
        bootable: false,
        source_image_id: new.image_id.clone(),
        image_metadata: BTreeMap::new(),
        metadata: new.metadata,
        created_at: now,
        updated_at: None,
        upload_image_id: None,
        attachments: Vec::new(),
    };
    repo::insert(&region.db, &v).await?;
    let params = job::Params {
        volume_id: v.id.clone(),
        image_id: new.image_id,
        caller: caller.clone(),
    };
    let queued = region
        .jobs
        .enqueue(&NewJob {
            idempotency_key: Some(v.id.clone()),
            ..NewJob::of::<job::CreateHandler>(project, &params)?
        })
        .await;
    if let Err(e) = queued {
        return back_out(
            region,
            &v.id,
            VolumeStatus::Creating,
            VolumeStatus::Error,
            e,
        )
        .await;
    }
    Ok(v)
}

/// The image a volume is made from: visible, readable by the caller (an encrypted image's key
/// included), active, and not larger than the volume.
async fn check_image(region: &Region, caller: &Caller, id: &str, size_gb: i64) -> Result<()> {
    let img = crate::images::load_for_use(region, caller, id)
        .await
        .map_err(|e| {
            if e.kind == crate::Kind::NotFound {
                Error::bad_request(format!(
                    "Invalid image identifier or unable to access requested image. (image {id})"
                ))
            } else {
                e
            }
        })?;
    if img.status != ImageStatus::Active {
        return Err(Error::bad_request(format!(
            "Invalid input received: Image {id} is not active."
        )));
    }
    let bytes = img.virtual_size.or(img.size).unwrap_or(0).max(0) as u64;
    let need = bytes.div_ceil(GIB) as i64;
    if need > size_gb {
        return Err(Error::bad_request(format!(
            "Invalid input received: Size of specified image {need} GB is larger than volume size {size_gb} GB."
        )));
    }
    if img.min_disk > size_gb {
        return Err(Error::bad_request(format!(
            "Invalid input received: Volume size {size_gb} GB cannot be smaller than the image minDisk size {} GB.",
            img.min_disk
        )));
    }
    Ok(())
}

/// A volume the caller may see (404 otherwise) and act on (403 otherwise).
pub async fn load_for(
    region: &Region,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<Volume> {
    caller.project()?;
    let mut v = repo::load(&region.db, id)
        .await?
        .filter(|v| policy::visible(caller, v))
        .ok_or_else(|| policy::not_found(id))?;
    policy::authorize(caller, Action::Get)?;
    policy::authorize(caller, action)?;
    super::attach::release_deleted_servers(region, caller, &mut v).await?;
    Ok(v)
}

/// Shows one volume.
pub async fn get(region: &Region, caller: &Caller, id: &str) -> Result<Volume> {
    load_for(region, caller, id, Action::Get).await
}

/// Filters, order and page of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Admins only: every project's volumes.
    pub all_tenants: bool,
    pub name: Option<String>,
    pub status: Option<String>,
    pub bootable: Option<bool>,
    pub availability_zone: Option<String>,
    /// Every pair must be in the volume's metadata.
    pub metadata: BTreeMap<String, String>,
    /// `(key, descending)`, first key first; empty: `created_at` then `id`, descending.
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// Keys a list may be sorted by.
pub const SORT_KEYS: [&str; 8] = [
    "id",
    "name",
    "size",
    "status",
    "created_at",
    "updated_at",
    "availability_zone",
    "bootable",
];

fn compare(a: &Volume, b: &Volume, key: &str) -> std::cmp::Ordering {
    match key {
        "id" => a.id.cmp(&b.id),
        "name" => a.name.cmp(&b.name),
        "size" => a.size_gb.cmp(&b.size_gb),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "availability_zone" => a.availability_zone.cmp(&b.availability_zone),
        "bootable" => a.bootable.cmp(&b.bootable),
        _ => a.created_at.cmp(&b.created_at),
    }
}

/// The caller's project's volumes (every project's for an admin asking `all_tenants`),
/// filtered, sorted (newest first by default), after `marker`, at most `limit`. Lists are
/// built in memory from the project's rows (a small Cinder: no keyset paging in SQL).
pub async fn list(region: &Region, caller: &Caller, q: &ListQuery) -> Result<Vec<Volume>> {
    policy::authorize(caller, Action::Get)?;
    let project = caller.project()?;
    if let Some((k, _)) = q
        .sort
        .iter()
        .find(|(k, _)| !SORT_KEYS.contains(&k.as_str()))
    {
        return Err(Error::bad_request(format!(
            "Invalid input received: Invalid sort key {k}"
        )));
    }
    let scope = if q.all_tenants && caller.is_admin() {
        None
    } else {
        Some(project)
    };
    let mut all = repo::list(&region.db, scope).await?;
    for v in all.iter_mut().filter(|v| !v.attachments.is_empty()) {
        super::attach::release_deleted_servers(region, caller, v).await?;
    }
    let mut all: Vec<Volume> = all
        .into_iter()
        .filter(|v| q.name.as_ref().is_none_or(|n| v.name.as_ref() == Some(n)))
        .filter(|v| q.status.as_ref().is_none_or(|s| v.status.as_str() == s))
        .filter(|v| q.bootable.is_none_or(|b| v.bootable == b))
        .filter(|v| {
            q.availability_zone
                .as_ref()
                .is_none_or(|z| &v.availability_zone == z)
        })
        .filter(|v| {
            q.metadata
                .iter()
                .all(|(k, val)| v.metadata.get(k) == Some(val))
        })
        .collect();
    let default = [("created_at".to_string(), true), ("id".to_string(), true)];
    let keys: &[(String, bool)] = if q.sort.is_empty() { &default } else { &q.sort };
    all.sort_by(|a, b| {
        keys.iter()
            .map(|(k, desc)| {
                let o = compare(a, b, k);
                if *desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| b.id.cmp(&a.id))
    });
    if let Some(m) = &q.marker {
        let pos = all.iter().position(|v| &v.id == m).ok_or_else(|| {
            Error::bad_request(format!("Invalid input received: marker [{m}] not found"))
        })?;
        all.drain(..=pos);
    }
    if let Some(l) = q.limit {
        all.truncate(l);
    }
    Ok(all)
}

/// What an update sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct VolumeUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// `os-set_bootable`.
    pub bootable: Option<bool>,
}

/// Updates name, description or metadata.
pub async fn update(region: &Region, caller: &Caller, id: &str, u: VolumeUpdate) -> Result<Volume> {
    let mut v = load_for(region, caller, id, Action::Update).await?;
    if let Some(n) = u.name {
        check_text("name", &n)?;
        v.name = n;
    }
    if let Some(d) = u.description {
        check_text("description", &d)?;
        v.description = d;
    }
    if let Some(m) = u.metadata {
        v.metadata = m;
    }
    if let Some(b) = u.bootable {
        v.bootable = b;
    }
    repo::update_fields(&region.db, &v).await?;
    get(region, caller, id).await
}

/// `os-extend`: grows an `available` volume to `new_size_gb` (Cinder's 400 unless larger than
/// now; extending an attached volume needs 3.42, beyond the microversions served).
pub async fn extend(region: &Region, caller: &Caller, id: &str, new_size_gb: i64) -> Result<()> {
    let v = load_for(region, caller, id, Action::Update).await?;
    if new_size_gb <= v.size_gb {
        return Err(Error::bad_request(format!(
            "Invalid input received: New size for extend must be greater than current size. \
             (current: {}, extended: {new_size_gb}).",
            v.size_gb
        )));
    }
    let max = (region.config.limits.max_virtual_size >> 30) as i64;
    if new_size_gb > max {
        return Err(Error::bad_request(format!(
            "Invalid input received: Volume size {new_size_gb} GB exceeds the largest volume \
             this region makes ({max} GB)."
        )));
    }
    if !repo::step(
        &region.db,
        id,
        VolumeStatus::Available,
        VolumeStatus::Extending,
    )
    .await?
    {
        return Err(Error::bad_request(format!(
            "Invalid volume: Volume {id} status must be available to extend, but current \
             status is: {}.",
            v.status.as_str()
        )));
    }
    let grown = files::resize(region, id, (new_size_gb as u64) << 30).await;
    if let Err(e) = grown {
        files::resize(region, id, v.size_bytes()).await.ok();
        return back_out(
            region,
            id,
            VolumeStatus::Extending,
            VolumeStatus::Available,
            e,
        )
        .await;
    }
    if !repo::finish_extend(&region.db, id, new_size_gb).await? {
        // Another node's start-up repair took the volume out of `extending` meanwhile (its
        // file was put back to the recorded size): the extend did not happen.
        return Err(Error::conflict(format!(
            "Volume {id} changed while it was being extended; try again."
        )));
    }
    Ok(())
}

/// Deletes a volume that is not attached nor busy (Cinder's 400 otherwise): `deleting`, the
/// file, then the row.
pub async fn delete(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    load_for(region, caller, id, Action::Delete).await?;
    let ok = repo::transition(
        &region.db,
        id,
        &[
            VolumeStatus::Available,
            VolumeStatus::Error,
            VolumeStatus::ErrorDeleting,
        ],
        VolumeStatus::Deleting,
    )
    .await?;
    if !ok {
        return Err(Error::bad_request(
            "Invalid volume: Volume status must be available or error or error_restoring or \
             error_extending or error_managing and must not be migrating, attached, belong to a \
             group, have snapshots, awaiting a transfer, or be disassociated from snapshots \
             after volume transfer.",
        ));
    }
    if let Err(e) = files::remove(region, id).await {
        return back_out(
            region,
            id,
            VolumeStatus::Deleting,
            VolumeStatus::ErrorDeleting,
            e,
        )
        .await;
    }
    repo::delete_row(&region.db, id).await
}

/// After a failed step of an operation that put the volume `during`: the volume goes `after`
/// and the step's error is the answer (or the database's, if the status could not be set).
async fn back_out<T>(
    region: &Region,
    id: &str,
    during: VolumeStatus,
    after: VolumeStatus,
    e: Error,
) -> Result<T> {
    repo::step(&region.db, id, during, after).await?;
    Err(e)
}

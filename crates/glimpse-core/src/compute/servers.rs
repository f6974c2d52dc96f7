//! Server operations as a caller performs them: create (record, then a `server_build` job
//! makes the disk), show, list, delete, the power actions with Nova's state rules, and the
//! `glimpse-write-disk` extension. Visibility: a server is visible to its project and to
//! admins; anything else is 404 "Instance X could not be found." Changes need the member
//! role (403 with Nova's policy message otherwise).
//!
//! Crash behaviour: create inserts the row (`building`/`spawning`) and then enqueues its build
//! job; a crash in between leaves a building server with no job, which [`super::recover`]
//! puts in `error`. Delete removes the row first and the disk file after; a crash in between
//! leaves a file no row names (harmless, under the disk dir).

use std::path::PathBuf;

use glimpse_types::ImageStatus;
use serde_json::json;

use super::model::{Flavor, Server, VmState, flavor, task};
use super::repo;
use crate::auth::Caller;
use crate::disks;
use crate::error::{Error, Kind, Result};
use crate::jobs::NewJob;
use crate::region::Region;

/// What `POST /servers` asks for (already parsed).
#[derive(Debug, Clone, Default)]
pub struct NewServer {
    pub name: String,
    pub image_ref: String,
    pub flavor_ref: String,
    pub metadata: Vec<(String, String)>,
    pub access_ipv4: String,
    pub access_ipv6: String,
    /// A key pair of the caller (`key_name`; 400 if it has none by that name).
    pub key_name: Option<String>,
}

/// What `PUT /servers/{id}` changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ServerUpdate {
    pub name: Option<String>,
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
}

/// Updates a server's name and access addresses (member role).
pub async fn update(region: &Region, caller: &Caller, id: &str, u: ServerUpdate) -> Result<Server> {
    let mut s = get(region, caller, id).await?;
    require_member(caller, "servers:update")?;
    if let Some(n) = u.name {
        s.name = n;
    }
    if let Some(v) = u.access_ipv4 {
        s.access_ipv4 = v;
    }
    if let Some(v) = u.access_ipv6 {
        s.access_ipv6 = v;
    }
    s.updated_at = glimpse_types::now();
    if !repo::update_fields(&region.db, &s).await? {
        return Err(not_found(id));
    }
    Ok(s)
}

/// Nova's 404 for a server.
pub fn not_found(id: &str) -> Error {
    Error::not_found(format!("Instance {id} could not be found."))
}

/// Nova's 403 for a policy rule.
pub fn policy_denied(rule: &str) -> Error {
    Error::forbidden(format!(
        "Policy doesn't allow os_compute_api:{rule} to be performed."
    ))
}

/// Nova's 409 for a state check (`raise_http_conflict_for_instance_invalid_state`).
pub fn invalid_state(action: &str, s: &Server) -> Error {
    let (attr, state) = match &s.task_state {
        Some(t) => ("task_state", t.clone()),
        None => ("vm_state", s.vm_state.as_str().to_string()),
    };
    Error::conflict(format!(
        "Cannot '{action}' instance {} while it is in {attr} {state}",
        s.id
    ))
}

/// The caller's project's member (or an admin), for changes.
pub(crate) fn require_member(caller: &Caller, rule: &str) -> Result<()> {
    caller.project()?;
    if caller.is_member() || caller.is_admin() {
        Ok(())
    } else {
        Err(policy_denied(rule))
    }
}

/// A server the caller may see (404 otherwise). This is what other services (volume
/// attachments) use to check that a server exists for the caller.
pub async fn get(region: &Region, caller: &Caller, id: &str) -> Result<Server> {
    let project = caller.project()?;
    match repo::load(&region.db, id).await? {
        Some(s) if s.project_id == project || caller.is_admin() => Ok(s),
        _ => Err(not_found(id)),
    }
}

/// The caller's project's servers, newest first.
pub async fn list(region: &Region, caller: &Caller) -> Result<Vec<Server>> {
    let project = caller.project()?;
    repo::list(&region.db, Some(project)).await
}

/// A caller acting for the server's creator in the server's project (member role): what the
/// compute service's own jobs use to read the server's image and write its snapshots, so
/// image policy applies to them exactly as to the user.
pub fn acting_for(server: &Server) -> Caller {
    Caller {
        user_id: server.user_id.clone(),
        user_name: String::new(),
        project_id: Some(server.project_id.clone()),
        project_name: None,
        roles: vec!["member".into(), "reader".into()],
        expires_at: glimpse_types::now() + chrono::Duration::days(1),
    }
}

/// Creates a server: checks the flavor and image (Nova's 400s), inserts it `building` and
/// enqueues its build job.
pub async fn create(region: &Region, caller: &Caller, new: NewServer) -> Result<Server> {
    require_member(caller, "servers:create")?;
    let project = caller.project()?.to_string();
    let flavor = flavor(&new.flavor_ref).map_err(|_| {
        Error::bad_request(format!("Flavor {} could not be found.", new.flavor_ref))
    })?;
    // The caller boots from the image's bytes: they must be theirs to read (an encrypted
    // image's key included), as a download would require.
    let image = match crate::images::load_for_use(region, caller, &new.image_ref).await {
        Ok(i) => i,
        Err(e) if e.kind == Kind::NotFound => {
            return Err(Error::bad_request(format!(
                "Image {} could not be found.",
                new.image_ref
            )));
        }
        Err(e) => return Err(e),
    };
    if image.status != ImageStatus::Active {
        return Err(Error::bad_request(format!(
            "Image {} is not active.",
            image.id
        )));
    }
    disks::disk_format(&image)?;
    check_flavor_fits(&flavor, &image)?;
    if let Some(k) = &new.key_name {
        match super::keypairs::get(region, caller, k).await {
            Ok(_) => {}
            Err(e) if e.kind == Kind::NotFound => {
                return Err(Error::bad_request("Invalid key_name provided."));
            }
            Err(e) => return Err(e),
        }
    }
    let now = glimpse_types::now();
    let props: serde_json::Map<String, serde_json::Value> = image
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let server = Server {
        id: glimpse_types::uuid_id(),
        project_id: project.clone(),
        user_id: caller.user_id.clone(),
        name: new.name,
        image_id: image.id.clone(),
        flavor_id: flavor.id.to_string(),
        vm_state: VmState::Building,
        task_state: Some(task::SPAWNING.to_string()),
        power_state: 0,
        metadata: new.metadata,
        access_ipv4: new.access_ipv4,
        access_ipv6: new.access_ipv6,
        key_name: new.key_name,
        base_path: None,
        base_format: None,
        disk_path: None,
        disk_size: None,
        snapshot_image: None,
        fault: None,
        image_meta: json!({
            "name": image.name,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk.max(flavor.disk),
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "owner_project_name": caller.project_name,
            "owner_user_name": caller.user_name,
            "properties": props,
        }),
        created_at: now,
        updated_at: now,
        launched_at: None,
    };
    repo::insert(&region.db, &server).await?;
    let params = super::build::Params {
        server_id: server.id.clone(),
    };
    let job = NewJob {
        idempotency_key: Some(format!("build-{}", server.id)),
        ..NewJob::of::<super::BuildHandler>(project, &params)?
    };
    if let Err(e) = region.jobs.enqueue(&job).await {
        let _ = repo::delete(&region.db, &server.id).await;
        return Err(e);
    }
    Ok(server)
}

/// Nova's flavor checks against the image (`_check_requested_image`).
fn check_flavor_fits(flavor: &Flavor, image: &crate::images::Image) -> Result<()> {
    let gib = 1i64 << 30;
    if image.min_ram > flavor.ram {
        return Err(Error::bad_request(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if flavor.disk > 0 {
        let disk = flavor.disk * gib;
        if let Some(v) = image.virtual_size.or(image.size)
            && v > disk
        {
            return Err(Error::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 image is {v} bytes."
            )));
        }
        if image.min_disk * gib > disk {
            return Err(Error::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, \
                 minimum size is {} bytes.",
                image.min_disk * gib
            )));
        }
    }
    Ok(())
}

/// The absolute path of a server's disk file (or base copy), given its stored relative path.
pub fn disk_file(region: &Region, rel: &str) -> PathBuf {
    disks::dir(region).join(rel)
}

/// Deletes a server (any state; a running snapshot then fails and removes its image) and
/// its disk file.
pub async fn delete(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let server = get(region, caller, id).await?;
    require_member(caller, "servers:delete")?;
    if !repo::delete(&region.db, id).await? {
        return Err(not_found(id));
    }
    remove_disk(region, &server).await;
    Ok(())
}

/// Removes a server's disk file (best effort: a leftover is harmless).
pub(crate) async fn remove_disk(region: &Region, server: &Server) {
    let rel = server
        .disk_path
        .clone()
        .unwrap_or_else(|| disk_rel(&server.id));
    let path = disk_file(region, &rel);
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(server = %server.id, path = %path.display(), error = %e, "disk not removed");
    }
}

/// Where a server's overlay lives, relative to the disk dir.
pub fn disk_rel(id: &str) -> String {
    format!("servers/{id}.qcow2")
}

/// A power action of the servers API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Stop,
    Start,
    Pause,
    Unpause,
    Suspend,
    Resume,
}

impl PowerAction {
    /// The action's name in Nova's 409 message and the states it goes from and to
    /// (`nova/compute/api.py` `check_instance_state` of each).
    fn rule(self) -> (&'static str, &'static str, &'static [VmState], VmState) {
        use VmState::*;
        match self {
            PowerAction::Stop => ("stop", "servers:stop", &[Active, Error], Stopped),
            PowerAction::Start => ("start", "servers:start", &[Stopped], Active),
            PowerAction::Pause => ("pause", "os-pause-server:pause", &[Active], Paused),
            PowerAction::Unpause => ("unpause", "os-pause-server:unpause", &[Paused], Active),
            PowerAction::Suspend => ("suspend", "os-suspend-server:suspend", &[Active], Suspended),
            PowerAction::Resume => ("resume", "os-suspend-server:resume", &[Suspended], Active),
        }
    }
}

/// Runs a power action: 404 if invisible, 403 for readers, 409 (Nova's message) unless the
/// server is in one of the action's states with no task running.
pub async fn power(region: &Region, caller: &Caller, id: &str, action: PowerAction) -> Result<()> {
    get(region, caller, id).await?;
    let (name, rule, from, to) = action.rule();
    require_member(caller, rule)?;
    if repo::transition(&region.db, id, from, to).await? {
        return Ok(());
    }
    let now = repo::load(&region.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Err(invalid_state(name, &now))
}

/// The Glimpse task state held while the write-disk extension writes.
pub const DISK_WRITING: &str = "glimpse_disk_writing";

/// The `glimpse-write-disk` extension: writes `data` at guest offset `offset` of the root
/// disk. 409 unless the server is ACTIVE with no task; 400 when the range leaves the disk.
/// Holds the task state [`DISK_WRITING`] meanwhile, so no snapshot reads a half-written disk.
pub async fn write_disk(
    region: &Region,
    caller: &Caller,
    id: &str,
    offset: u64,
    data: &[u8],
) -> Result<()> {
    let server = get(region, caller, id).await?;
    require_member(caller, "glimpse:write-disk")?;
    let size = server.disk_size.unwrap_or(0) as u64;
    if data.is_empty() {
        return Err(Error::bad_request("'data' must not be empty."));
    }
    if server.vm_state == VmState::Active
        && server.task_state.is_none()
        && offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > size)
    {
        return Err(Error::bad_request(format!(
            "Cannot write {} bytes at offset {offset}: the disk has {size} bytes.",
            data.len()
        )));
    }
    let node = Some(region.node.as_str());
    if !repo::claim_task(&region.db, id, &[VmState::Active], DISK_WRITING, None, node).await? {
        let now = repo::load(&region.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        return Err(invalid_state("glimpse-write-disk", &now));
    }
    let result = async {
        let (Some(disk), Some(base), Some(fmt)) = (
            server.disk_path.as_deref(),
            server.base_path.as_deref(),
            server.base_format.as_deref(),
        ) else {
            return Err(Error::internal(format!("server {id} has no disk")));
        };
        let fmt = glimpse_formats::DiskFormat::parse(fmt)
            .ok_or_else(|| Error::internal(format!("bad base format {fmt}")))?;
        disks::write_at(
            region,
            &disk_file(region, disk),
            &disk_file(region, base),
            fmt,
            offset,
            data,
        )
        .await
    }
    .await;
    repo::move_task(&region.db, id, &[DISK_WRITING], None).await?;
    result
}

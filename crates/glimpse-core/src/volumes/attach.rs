//! Attaching volumes to servers. Cinder's actions are cheap state changes of the volume and
//! its one attachment row (no multiattach): `os-reserve` (`available → attaching`),
//! `os-unreserve` (back), `os-attach` (`available|attaching → in-use`, to a server of the same
//! project), `os-begin_detaching` (`in-use → detaching`), `os-roll_detaching` (back) and
//! `os-detach` (`in-use|detaching → available`). Nova's `os-volume_attachments` uses
//! [`attach`] and [`detach`] too, and [`of_server`] for its list.
//!
//! No data moves: a volume file is "attached" only in the database. Crash behaviour: each step
//! is one transaction (status change and attachment row together).

use super::policy::{self, Action};
use super::records::load_for;
use super::repo::{self, AttachStep};
use super::{Attachment, Volume, VolumeStatus};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::region::Region;

fn invalid(v: &Volume, want: &str) -> Error {
    Error::bad_request(format!(
        "Invalid volume: Volume {} status must be {want}, but current status is: {}.",
        v.id,
        v.status.as_str()
    ))
}

/// `os-reserve`.
pub async fn reserve(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let v = load_for(region, caller, id, Action::Attach).await?;
    let aid = glimpse_types::uuid_id();
    if !repo::attach_step(
        &region.db,
        id,
        &v.project_id,
        AttachStep::Reserve {
            attachment_id: &aid,
        },
    )
    .await?
    {
        return Err(invalid(&v, "available"));
    }
    Ok(())
}

/// `os-unreserve`.
pub async fn unreserve(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let v = load_for(region, caller, id, Action::Attach).await?;
    if !repo::attach_step(&region.db, id, &v.project_id, AttachStep::Unreserve).await? {
        return Err(invalid(&v, "attaching"));
    }
    Ok(())
}

/// `os-begin_detaching`.
pub async fn begin_detaching(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let v = load_for(region, caller, id, Action::Attach).await?;
    if !repo::step(&region.db, id, VolumeStatus::InUse, VolumeStatus::Detaching).await? {
        return Err(invalid(&v, "in-use"));
    }
    Ok(())
}

/// `os-roll_detaching`: back to `in-use` (a volume not detaching is left as it is, as Cinder).
pub async fn roll_detaching(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    load_for(region, caller, id, Action::Attach).await?;
    repo::step(&region.db, id, VolumeStatus::Detaching, VolumeStatus::InUse).await?;
    Ok(())
}

/// Attaches a volume to a server of the caller's project (`os-attach`, Nova's POST).
/// The server must exist for the caller (the compute service's 404 otherwise).
pub async fn attach(
    region: &Region,
    caller: &Caller,
    id: &str,
    server_id: &str,
    mountpoint: Option<&str>,
) -> Result<Attachment> {
    let v = load_for(region, caller, id, Action::Attach).await?;
    let server = crate::compute::get(region, caller, server_id).await?;
    if server.project_id != v.project_id {
        return Err(Error::bad_request(format!(
            "Invalid volume: Volume {id} and server {server_id} belong to different projects."
        )));
    }
    if v.attachments
        .iter()
        .any(|a| a.server_id.as_deref() == Some(server_id) && a.attach_status == "attached")
    {
        return Err(Error::bad_request(format!(
            "Invalid volume: Volume {id} is already attached to server {server_id}."
        )));
    }
    let aid = glimpse_types::uuid_id();
    let step = AttachStep::Attach {
        attachment_id: &aid,
        server_id,
        mountpoint,
    };
    if !repo::attach_step(&region.db, id, &v.project_id, step).await? {
        return Err(invalid(&v, "available"));
    }
    let now = repo::load(&region.db, id)
        .await?
        .ok_or_else(|| policy::not_found(id))?;
    now.attachments
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal(format!("volume {id} lost its attachment")))
}

/// Detaches a volume (`os-detach`, Nova's DELETE). With `server_id`, the volume must be
/// attached to that server (404 otherwise, as Nova).
pub async fn detach(
    region: &Region,
    caller: &Caller,
    id: &str,
    server_id: Option<&str>,
) -> Result<()> {
    let v = load_for(region, caller, id, Action::Attach).await?;
    if let Some(s) = server_id
        && !v
            .attachments
            .iter()
            .any(|a| a.server_id.as_deref() == Some(s))
    {
        return Err(Error::not_found(format!("volume_id not found: {id}")));
    }
    if !repo::attach_step(&region.db, id, &v.project_id, AttachStep::Detach).await? {
        return Err(invalid(&v, "in-use"));
    }
    Ok(())
}

/// The attachments of a server (its project's volumes only).
pub async fn of_server(
    region: &Region,
    caller: &Caller,
    server_id: &str,
) -> Result<Vec<Attachment>> {
    policy::authorize(caller, Action::Get)?;
    repo::attachments_of_server(&region.db, server_id).await
}

/// Nova detaches a server's volumes when it deletes the server; our compute service keeps no
/// volume state, so a volume still attached to a server that no longer exists is detached here,
/// the next time it is read (its status then reads `available`).
pub(crate) async fn release_deleted_servers(
    region: &Region,
    caller: &Caller,
    v: &mut Volume,
) -> Result<()> {
    let gone: Vec<String> = {
        let mut gone = Vec::new();
        for a in &v.attachments {
            if let Some(s) = a.server_id.as_deref()
                && a.attach_status == "attached"
            {
                match crate::compute::get(region, caller, s).await {
                    Err(e) if e.kind == crate::Kind::NotFound => gone.push(s.to_string()),
                    _ => {}
                }
            }
        }
        gone
    };
    if gone.is_empty() {
        return Ok(());
    }
    if repo::attach_step(&region.db, &v.id, &v.project_id, AttachStep::Detach).await? {
        tracing::info!(volume = %v.id, servers = ?gone, "detached from deleted servers");
        if let Some(now) = repo::load(&region.db, &v.id).await? {
            *v = now;
        }
    }
    Ok(())
}

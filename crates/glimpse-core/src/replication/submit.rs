//! Accepting a replication request (`POST /v2/extension/image_replicator/jobs`): every check
//! of seed 000's error table, in this order, then one enqueue.
//!
//! 1. An idempotency key already used by this project answers with its job (same image and
//!    destination tenant), or 409 when the key was used for a different request.
//! 2. The source image, read over HTTP from this region's image API WITH THE CALLER'S TOKEN,
//!    so visibility is exactly Glance's: not found or deleted → 404; not `active` → 409. The
//!    caller needs the member role (Glance's download rule) → else 401.
//! 3. The destination tenant, read from identity with the service token: the caller must hold
//!    member (admin implies it) in it → else 401 (the seed's table answers 401 for
//!    `tenant_id_dst`); unknown or disabled → 404. The role is checked first, so a caller
//!    without one gets the same 401 whether the tenant exists or not (the answer must not
//!    tell which project ids exist); an admin, who may list projects anyway, gets the 404.
//! 4. The destination region is the tenant's home region (Glimpse identity's `home_region`, or
//!    on a plain Keystone the project tag `glimpse-home-region=<region>`); its image endpoint comes from the
//!    service token's catalog; its capabilities are asked over HTTP: no answer or 5xx → 409
//!    "Glance of the specified region is down"; `accept_replicas = false` → 409; an image
//!    `license_switch` or `official_template_type` the destination does not list → 404.
//!
//! Same-region copies between tenants (and into the caller's own tenant) are allowed, as seed
//! 001's example shows. Nothing here writes anything but the job row, so a crash mid-check
//! leaves nothing behind.

use glimpse_client::{Fault, Glance};
use glimpse_types::ImageStatus;
use glimpse_types::glance::Image;

use super::{Capabilities, Params, ReplicateHandler};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::jobs::{JobRecord, NewJob};
use crate::region::Region;

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// A lowercase hyphenated UUID.
    pub image_id: String,
    pub tenant_id_dst: String,
    /// `Idempotency-Key` header or `client_token` field (≤ 64 characters).
    pub idempotency_key: Option<String>,
}

/// Checks the request and enqueues the job; the bool is false when an earlier request with
/// the same idempotency key already created it.
pub async fn submit(
    region: &Region,
    caller: &Caller,
    caller_token: &str,
    req: &Submission,
) -> Result<(JobRecord, bool)> {
    let project = caller.project()?.to_string();
    if let Some(key) = &req.idempotency_key
        && let Some(job) = region
            .jobs
            .by_key::<ReplicateHandler>(&project, key)
            .await?
    {
        return same_request(job, req, key).map(|j| (j, false));
    }

    let source = source_image(region, caller_token, &req.image_id).await?;
    if source.property(crate::ims::PROP_ENCRYPTED) == Some("1") {
        // Regions share nothing: no other region (nor another project) may use this region's
        // customer keys, so an encrypted image cannot be replicated (docs/ims.md).
        return Err(Error::conflict(format!(
            "Image {} is encrypted with a key of region {}'s key manager; encrypted images \
             cannot be replicated.",
            req.image_id, region.name
        )));
    }
    if !(caller.is_member() || caller.is_admin()) {
        return Err(Error::unauthorized(format!(
            "You are not authorized to copy image {}.",
            req.image_id
        )));
    }

    let svc = region.service.token().await.map_err(|e| {
        tracing::warn!(error = %e, "replication: the service account cannot log in");
        Error::unavailable("The replicator cannot reach the identity service; try again later.")
    })?;
    let http = &region.service.http;
    let keystone = region.service.keystone().with_token(&svc.token);
    let tenant = &req.tenant_id_dst;
    let project_doc = destination_tenant(region, &keystone, caller, tenant).await?;

    let dst_region = project_doc
        .home_region()
        .map(str::to_string)
        .ok_or_else(|| Error::conflict(format!("Tenant {tenant} has no home region.")))?;
    let down = || {
        Error::conflict(format!(
            "Glance of the specified region ({dst_region}) is down."
        ))
    };
    let dst_url = svc.endpoint("image", &dst_region).ok_or_else(down)?;
    let glance = Glance::new(http.clone(), &dst_url, &svc.token);
    let caps = match glance.replicator().capabilities().await {
        Ok(c) => c,
        Err(Fault::Down(m)) => {
            tracing::warn!(region = %dst_region, error = %m, "replication: destination is down");
            return Err(down());
        }
        Err(f) => {
            tracing::warn!(region = %dst_region, error = %f, "replication: no capabilities");
            return Err(Error::conflict(format!(
                "The destination region {dst_region} does not support image replication."
            )));
        }
    };
    check_capabilities(&caps, &source, &dst_region)?;

    let params = Params {
        source_image_id: req.image_id.clone(),
        source_image_name: source.name.clone(),
        source_region_id: region.name.clone(),
        source_tenant_id: project.clone(),
        destination_region_id: dst_region,
        destination_tenant_id: tenant.clone(),
        destination_image_id: glimpse_types::uuid_id(),
        checksum: source.checksum.clone(),
        os_hash_algo: source.os_hash_algo.clone(),
        os_hash_value: source.os_hash_value.clone(),
        size: source.size.unwrap_or(0),
        requested_by: caller.user_id.clone(),
    };
    let new = NewJob {
        phase: "requested".into(),
        idempotency_key: req.idempotency_key.clone(),
        ..NewJob::of::<ReplicateHandler>(project, &params)?
    };
    let (job, created) = region.jobs.enqueue(&new).await?;
    if created {
        tracing::info!(job = %job.id, image = %params.source_image_id,
            to_region = %params.destination_region_id, to_tenant = %params.destination_tenant_id,
            "replication requested");
        Ok((job, true))
    } else {
        // A concurrent request with the same key won the race.
        let key = req.idempotency_key.as_deref().unwrap_or_default();
        same_request(job, req, key).map(|j| (j, false))
    }
}

/// The earlier job of an idempotency key, if it was asked for the same copy.
fn same_request(job: JobRecord, req: &Submission, key: &str) -> Result<JobRecord> {
    match job.params_as::<ReplicateHandler>().ok() {
        Some(p)
            if p.source_image_id == req.image_id
                && p.destination_tenant_id == req.tenant_id_dst =>
        {
            Ok(job)
        }
        _ => Err(Error::conflict(format!(
            "The idempotency key {key:?} was already used for a different request."
        ))),
    }
}

/// The source image as the caller sees it, which must be `active`.
async fn source_image(region: &Region, caller_token: &str, id: &str) -> Result<Image> {
    let glance = Glance::new(
        region.service.http.clone(),
        &region.image_url(),
        caller_token,
    );
    let image = glance.image(id).await.map_err(|f| match f.status() {
        Some(404) | Some(403) => Error::not_found(format!("No image found with ID {id}")),
        Some(401) => Error::unauthorized("Authentication required."),
        _ => {
            tracing::warn!(error = %f, "replication: the source image service did not answer");
            Error::conflict(format!(
                "Glance of the source region ({}) is down.",
                region.name
            ))
        }
    })?;
    // Glance v2 hides deleted images; a `deleted` status would only show to special callers.
    match image.status {
        ImageStatus::Active => Ok(image),
        ImageStatus::Deleted | ImageStatus::PendingDelete => {
            Err(Error::not_found(format!("No image found with ID {id}")))
        }
        other => Err(Error::conflict(format!(
            "Image {id} is not active (its status is {}).",
            other.as_str()
        ))),
    }
}

/// The destination tenant, if the caller may copy into it. The caller's roles there come
/// first: to a caller without one, a tenant that does not exist and one that does answer alike
/// (401), so the answer tells no one which project ids exist. An admin may list projects
/// anyway and is told 404; so is a member of a disabled tenant.
async fn destination_tenant(
    region: &Region,
    keystone: &glimpse_client::WithToken<'_>,
    caller: &Caller,
    tenant: &str,
) -> Result<glimpse_types::keystone::Project> {
    let not_authorized = || {
        Error::unauthorized(format!(
            "You are not authorized to copy images into tenant {tenant}."
        ))
    };
    let roles = match keystone.roles_on(&caller.user_id, tenant).await {
        Ok(r) => r,
        Err(f) if f.status() == Some(404) => Vec::new(),
        Err(f) => return Err(identity_fault(region, f, tenant).await),
    };
    let writer = may_write(&roles);
    if !writer && !caller.is_admin() {
        return Err(not_authorized());
    }
    let project_doc = match keystone.project(tenant).await {
        Ok(p) => p,
        Err(f) => return Err(identity_fault(region, f, tenant).await),
    };
    if !project_doc.enabled || project_doc.id != tenant {
        return Err(tenant_not_found(tenant));
    }
    if !writer {
        return Err(not_authorized());
    }
    Ok(project_doc)
}

fn tenant_not_found(tenant: &str) -> Error {
    Error::not_found(format!("Tenant {tenant} could not be found."))
}

/// Maps a failed identity call: 404 is an unknown tenant; a refused service token is dropped
/// (a later request logs in again); anything else is the identity service being down.
async fn identity_fault(region: &Region, f: Fault, tenant: &str) -> Error {
    match f.status() {
        Some(404) => tenant_not_found(tenant),
        Some(401) | Some(403) => {
            region.service.forget().await;
            tracing::warn!(error = %f, "replication: identity refused the service token");
            Error::unavailable("The replicator cannot reach the identity service; try again later.")
        }
        _ => {
            tracing::warn!(error = %f, "replication: identity call failed");
            Error::unavailable("The replicator cannot reach the identity service; try again later.")
        }
    }
}

/// Whether these role names allow writing images in a project (member, or a role implying it).
pub fn may_write(roles: &[String]) -> bool {
    roles.iter().any(|r| {
        glimpse_types::Role::parse(r)
            .is_some_and(|role| role.implied().contains(&glimpse_types::Role::Member))
    })
}

/// The destination's allow-lists against the source image's properties.
pub fn check_capabilities(caps: &Capabilities, image: &Image, region: &str) -> Result<()> {
    let id = image.id.as_str();
    if !caps.accept_replicas {
        return Err(Error::conflict(format!(
            "The destination region {region} does not support the image {id}."
        )));
    }
    if let Some(t) = image.property("license_switch").filter(|t| !t.is_empty())
        && !caps.license_switch_types.iter().any(|x| x == t)
    {
        return Err(Error::not_found(format!(
            "The license switch type {t} of image {id} is not supported at the destination region {region}."
        )));
    }
    if let Some(t) = image
        .property("official_template_type")
        .filter(|t| !t.is_empty())
        && !caps.official_template_types.iter().any(|x| x == t)
    {
        return Err(Error::not_found(format!(
            "The official template type {t} of image {id} is not supported at the destination region {region}."
        )));
    }
    Ok(())
}

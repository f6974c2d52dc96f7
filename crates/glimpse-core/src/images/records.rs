//! Image record operations as a caller performs them: create, show, update (a list of
//! [`Change`]s), delete, deactivate/reactivate and tags. Each one loads the record, asks
//! [`policy`] (404 for the invisible, 403 for the forbidden), applies Glance's rules, and writes
//! through [`lifecycle`].
//!
//! Crash behaviour: each write is one transaction. A delete removes the rows first and the blob
//! after, so a crash in between leaves an unreferenced blob for the cleaner
//! ([`super::data::clean_orphans`]), never a record pointing at missing bytes.

use glimpse_types::{ImageStatus, Visibility};

use super::model::{
    Attr, Change, Image, MAX_PROPERTIES, MAX_TAGS, MemberStatus, NewImage, check_tag,
};
use super::policy::{self, Action, Target};
use super::{lifecycle, repo};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::region::Region;

/// An image the caller may see, with the caller project's membership of it.
pub struct Loaded {
    pub image: Image,
    pub membership: Option<MemberStatus>,
}

impl Loaded {
    pub fn target(&self) -> Target<'_> {
        Target {
            id: &self.image.id,
            owner: &self.image.owner,
            visibility: self.image.visibility,
            membership: self.membership,
        }
    }
}

/// Loads an image and checks `action` on it (404 if missing or invisible, 403 if not allowed).
pub async fn load_for(
    region: &Region,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<Loaded> {
    let project = caller.project()?;
    let Some((image, membership)) = repo::load(&region.db, id, project).await? else {
        return Err(policy::not_found(id));
    };
    let loaded = Loaded { image, membership };
    policy::authorize(caller, &loaded.target(), action, None)?;
    Ok(loaded)
}

/// Creates a `queued` image record.
pub async fn create(region: &Region, caller: &Caller, new: NewImage) -> Result<Image> {
    let project = caller.project()?;
    let owner = new.owner.clone().unwrap_or_else(|| project.to_string());
    let visibility = new.visibility.unwrap_or(Visibility::Shared);
    policy::authorize_create(caller, &owner, visibility)?;
    let id = new.id.unwrap_or_else(glimpse_types::uuid_id);
    let image = Image {
        name: new.name,
        visibility,
        protected: new.protected,
        os_hidden: new.os_hidden,
        disk_format: new.disk_format,
        container_format: new.container_format,
        min_disk: new.min_disk,
        min_ram: new.min_ram,
        properties: new.properties,
        tags: new.tags,
        ..Image::queued(id, owner, glimpse_types::now())
    };
    lifecycle::create(&region.db, &image).await?;
    Ok(image)
}

/// Shows one image.
pub async fn get(region: &Region, caller: &Caller, id: &str) -> Result<Image> {
    Ok(load_for(region, caller, id, Action::Get).await?.image)
}

/// What a list of changes touched.
#[derive(Default)]
struct Touched {
    properties: bool,
    tags: bool,
    formats: bool,
}

/// Sets one attribute of `img` (a format only while it may still change).
fn set_attr(caller: &Caller, img: &mut Image, attr: Attr, touched: &mut Touched) -> Result<()> {
    let format_change_allowed = matches!(img.status, ImageStatus::Queued | ImageStatus::Importing);
    let format_locked = |name: &str| {
        Error::forbidden(format!(
            "Attribute {name} can be only replaced for a queued image."
        ))
    };
    match attr {
        Attr::Name(v) => img.name = v,
        Attr::Visibility(v) => {
            policy::authorize_visibility(caller, v)?;
            img.visibility = v;
        }
        Attr::Protected(v) => img.protected = v,
        Attr::OsHidden(v) => img.os_hidden = v,
        Attr::MinDisk(v) => img.min_disk = v,
        Attr::MinRam(v) => img.min_ram = v,
        Attr::DiskFormat(v) => {
            if !format_change_allowed {
                return Err(format_locked("disk_format"));
            }
            touched.formats |= img.disk_format != v;
            img.disk_format = v;
        }
        Attr::ContainerFormat(v) => {
            if !format_change_allowed {
                return Err(format_locked("container_format"));
            }
            touched.formats |= img.container_format != v;
            img.container_format = v;
        }
        Attr::Owner(v) => {
            policy::authorize_owner_change(caller)?;
            img.owner = v.ok_or_else(|| {
                Error::bad_request("An image must have an owner; owner cannot be null.")
            })?;
        }
        Attr::Tags(v) => {
            touched.tags = true;
            img.tags = v;
        }
    }
    Ok(())
}

/// Applies one change to `img`.
fn apply(caller: &Caller, img: &mut Image, change: Change, touched: &mut Touched) -> Result<()> {
    let props = &mut img.properties;
    match change {
        Change::Set(attr) => return set_attr(caller, img, attr, touched),
        Change::AddProperty {
            name,
            value,
            strict,
        } => match props.iter_mut().find(|(k, _)| *k == name) {
            Some(_) if strict => {
                return Err(Error::conflict(format!("Property {name} already present.")));
            }
            Some((_, v)) => *v = value,
            None => props.push((name, value)),
        },
        Change::ReplaceProperty { name, value } => {
            let Some((_, v)) = props.iter_mut().find(|(k, _)| *k == name) else {
                return Err(Error::conflict(format!("Property {name} does not exist.")));
            };
            *v = value;
        }
        Change::RemoveProperty { name } => {
            let before = props.len();
            props.retain(|(k, _)| *k != name);
            if props.len() == before {
                return Err(Error::conflict(format!("Property {name} does not exist.")));
            }
        }
        Change::RemoveBase { name } => {
            return Err(Error::forbidden(format!(
                "Property {name} may not be removed."
            )));
        }
        Change::AddExistingBase { name } => {
            return Err(Error::conflict(format!("Property {name} already present.")));
        }
    }
    touched.properties = true;
    Ok(())
}

/// 413 when an image holds more properties or tags than allowed.
fn check_counts(img: &Image) -> Result<()> {
    if img.properties.len() > MAX_PROPERTIES {
        return Err(Error::too_large(format!(
            "Maximum number of properties exceeded: {} (the limit is {MAX_PROPERTIES})",
            img.properties.len()
        )));
    }
    if img.tags.len() > MAX_TAGS {
        return Err(Error::too_large(format!(
            "Maximum number of tags exceeded: {} (the limit is {MAX_TAGS})",
            img.tags.len()
        )));
    }
    Ok(())
}

/// Applies `changes` in order (all or nothing) and returns the updated image.
pub async fn update(
    region: &Region,
    caller: &Caller,
    id: &str,
    changes: Vec<Change>,
) -> Result<Image> {
    let loaded = load_for(region, caller, id, Action::Modify).await?;
    let mut img = loaded.image;
    if changes.is_empty() {
        return Ok(img);
    }
    let mut touched = Touched::default();
    for change in changes {
        apply(caller, &mut img, change, &mut touched)?;
    }
    check_counts(&img)?;
    img.updated_at = glimpse_types::now();
    let written = lifecycle::update(
        &region.db,
        lifecycle::Update {
            image: &img,
            properties_changed: touched.properties,
            tags_changed: touched.tags,
            formats_changed: touched.formats,
        },
    )
    .await?;
    if !written {
        // Deleted meanwhile, or an upload started while the formats were being changed.
        return match repo::load(&region.db, id, caller.project()?).await? {
            None => Err(policy::not_found(id)),
            Some(_) => Err(Error::forbidden(
                "Attribute disk_format can be only replaced for a queued image.",
            )),
        };
    }
    // Re-read so the answer shows what is stored (status and hashes may have moved meanwhile).
    get(region, caller, id).await.or(Ok(img))
}

/// Deletes an image: its rows, then its bytes.
pub async fn delete(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let missing = || Error::not_found(format!("Failed to find image {id} to delete"));
    let loaded = match load_for(region, caller, id, Action::Delete).await {
        Err(e) if e.kind == crate::Kind::NotFound => return Err(missing()),
        other => other?,
    };
    if loaded.image.protected {
        return Err(protected(id));
    }
    match lifecycle::delete(&region.db, id).await? {
        lifecycle::Deleted::Done { blob_key } => {
            super::data::drop_partials(region, id).await;
            if let Some(key) = blob_key
                && let Err(e) = region.store.delete(&key).await
            {
                // The row is gone; the cleaner removes the blob later.
                tracing::warn!(image = id, blob = key, error = %e, "blob delete failed");
            }
            Ok(())
        }
        lifecycle::Deleted::Protected => Err(protected(id)),
        lifecycle::Deleted::Missing => Err(missing()),
    }
}

fn protected(id: &str) -> Error {
    Error::forbidden(format!("Image {id} is protected and cannot be deleted."))
}

/// `active → deactivated` (a no-op when already deactivated; 403 from other states).
pub async fn deactivate(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let loaded = load_for(region, caller, id, Action::Deactivate).await?;
    transition(
        region,
        &loaded.image,
        ImageStatus::Active,
        ImageStatus::Deactivated,
        "deactivate",
    )
    .await
}

/// `deactivated → active` (a no-op when already active; 403 from other states).
pub async fn reactivate(region: &Region, caller: &Caller, id: &str) -> Result<()> {
    let loaded = load_for(region, caller, id, Action::Reactivate).await?;
    transition(
        region,
        &loaded.image,
        ImageStatus::Deactivated,
        ImageStatus::Active,
        "reactivate",
    )
    .await
}

async fn transition(
    region: &Region,
    img: &Image,
    from: ImageStatus,
    to: ImageStatus,
    verb: &str,
) -> Result<()> {
    let refuse = |s: ImageStatus| {
        Error::forbidden(format!(
            "Not allowed to {verb} image in status '{}'",
            s.as_str()
        ))
    };
    if img.status == to {
        return Ok(());
    }
    if img.status != from {
        return Err(refuse(img.status));
    }
    if lifecycle::set_status(&region.db, &img.id, from, to).await? {
        return Ok(());
    }
    // Lost a race: answer from what is stored now.
    match repo::load(&region.db, &img.id, &img.owner).await? {
        Some((now, _)) if now.status == to => Ok(()),
        Some((now, _)) => Err(refuse(now.status)),
        None => Err(policy::not_found(&img.id)),
    }
}

/// Adds a tag to an image (204 even when present; 413 past the tag limit).
pub async fn add_tag(region: &Region, caller: &Caller, id: &str, tag: &str) -> Result<()> {
    check_tag(tag)?;
    load_for(region, caller, id, Action::Modify)
        .await
        .map_err(|e| tag_error(e, id))?;
    if !lifecycle::add_tag(&region.db, id, tag, MAX_TAGS).await? {
        return Err(Error::too_large(format!(
            "Image tag limit exceeded for image {id}: the limit is {MAX_TAGS}"
        )));
    }
    Ok(())
}

/// Removes a tag (404 when the image has no such tag).
pub async fn remove_tag(region: &Region, caller: &Caller, id: &str, tag: &str) -> Result<()> {
    load_for(region, caller, id, Action::Modify)
        .await
        .map_err(|e| tag_error(e, id))?;
    if !lifecycle::remove_tag(&region.db, id, tag).await? {
        return Err(Error::not_found(format!(
            "Tag {tag} not found on image {id}."
        )));
    }
    Ok(())
}

fn tag_error(e: Error, id: &str) -> Error {
    match e.kind {
        crate::Kind::NotFound => Error::not_found(format!("Image {id} not found.")),
        _ => e,
    }
}

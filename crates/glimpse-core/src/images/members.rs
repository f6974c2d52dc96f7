//! Image sharing: the members of a `shared` image and their status, with Glance's rules —
//! only shared images have members (403 otherwise); the owner (or an admin) adds and removes
//! members; only the member project accepts or rejects (the owner gets 403); a member sees only
//! its own membership, the owner all of them; at most [`MAX_MEMBERS`] per image (413).
//!
//! Crash behaviour: each change is one statement; nothing spans two.

use crate::db::unique_or;
use glimpse_types::{Visibility, db_time};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{MAX_MEMBERS, Member, MemberStatus};
use super::policy::{self, Action};
use super::records::{Loaded, load_for};
use crate::auth::Caller;
use crate::db::rows::time;
use crate::error::{Error, Result};
use crate::region::Region;

fn member_from_row(row: &AnyRow) -> Result<Member> {
    let status: String = row.try_get("status")?;
    Ok(Member {
        image_id: row.try_get("image_id")?,
        member_id: row.try_get("member_id")?,
        status: MemberStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("bad member status {status:?}")))?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn only_shared(loaded: &Loaded) -> Result<()> {
    if loaded.image.visibility != Visibility::Shared {
        return Err(Error::forbidden("Only shared images have members."));
    }
    Ok(())
}

fn not_a_member(member_id: &str, image_id: &str) -> Error {
    Error::not_found(format!(
        "{member_id} not found in the member list of the image {image_id}."
    ))
}

/// An image the caller may see, whose members may be listed (a shared image).
async fn load_shared(region: &Region, caller: &Caller, image_id: &str) -> Result<Loaded> {
    let loaded = load_for(region, caller, image_id, Action::Get).await?;
    only_shared(&loaded)?;
    Ok(loaded)
}

async fn fetch(region: &Region, image_id: &str, member_id: &str) -> Result<Option<Member>> {
    let row = sqlx::query(
        "SELECT image_id, member_id, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 AND member_id = $2",
    )
    .bind(image_id)
    .bind(member_id)
    .fetch_optional(&region.db.pool)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Shares an image with project `member_id` (status `pending`).
pub async fn add(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    member_id: &str,
) -> Result<Member> {
    let loaded = load_shared(region, caller, image_id).await?;
    policy::authorize(caller, &loaded.target(), Action::AddMember, Some(member_id))?;
    if member_id.is_empty() || member_id.chars().count() > 255 {
        return Err(Error::bad_request("Member can't be empty"));
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM image_members WHERE image_id = $1")
        .bind(image_id)
        .fetch_one(&region.db.pool)
        .await?
        .try_get("n")?;
    if count as usize >= MAX_MEMBERS {
        return Err(Error::too_large(format!(
            "Image member limit exceeded for image {image_id}: the limit is {MAX_MEMBERS}"
        )));
    }
    let now = glimpse_types::now();
    let member = Member {
        image_id: image_id.to_string(),
        member_id: member_id.to_string(),
        status: MemberStatus::Pending,
        created_at: now,
        updated_at: now,
    };
    let r = sqlx::query(
        "INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(image_id)
    .bind(member_id)
    .bind(member.status.as_str())
    .bind(db_time(now))
    .bind(db_time(now))
    .execute(&region.db.pool)
    .await;
    unique_or(r, || {
        Error::conflict(format!(
            "Member {member_id} is duplicated for image {image_id}"
        ))
    })?;
    Ok(member)
}

/// The memberships the caller may see: all of them for the owner and admins, its own otherwise.
pub async fn list(region: &Region, caller: &Caller, image_id: &str) -> Result<Vec<Member>> {
    let loaded = load_shared(region, caller, image_id).await?;
    policy::authorize(caller, &loaded.target(), Action::GetMembers, None)?;
    let rows = if policy::sees_all_members(caller, &loaded.image.owner) {
        sqlx::query(
            "SELECT image_id, member_id, status, created_at, updated_at FROM image_members \
             WHERE image_id = $1 ORDER BY created_at, member_id",
        )
        .bind(image_id)
        .fetch_all(&region.db.pool)
        .await?
    } else {
        sqlx::query(
            "SELECT image_id, member_id, status, created_at, updated_at FROM image_members \
             WHERE image_id = $1 AND member_id = $2",
        )
        .bind(image_id)
        .bind(caller.project()?)
        .fetch_all(&region.db.pool)
        .await?
    };
    rows.iter().map(member_from_row).collect()
}

/// One membership (404 unless the caller is the owner, an admin, or that member).
pub async fn get(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    member_id: &str,
) -> Result<Member> {
    let loaded = load_for(region, caller, image_id, Action::Get).await?;
    let hidden = |e: Error| Error::not_found(e.message);
    only_shared(&loaded).map_err(hidden)?;
    policy::authorize(caller, &loaded.target(), Action::GetMembers, None).map_err(hidden)?;
    if !policy::sees_all_members(caller, &loaded.image.owner) && caller.project()? != member_id {
        return Err(not_a_member(member_id, image_id));
    }
    fetch(region, image_id, member_id)
        .await?
        .ok_or_else(|| not_a_member(member_id, image_id))
}

/// Sets a membership's status; only the member project (or an admin) may.
pub async fn set_status(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    member_id: &str,
    status: &str,
) -> Result<Member> {
    let loaded = load_shared(region, caller, image_id).await?;
    let member = match fetch(region, image_id, member_id).await? {
        Some(m)
            if policy::sees_all_members(caller, &loaded.image.owner)
                || caller.project()? == member_id =>
        {
            m
        }
        _ => return Err(not_a_member(member_id, image_id)),
    };
    policy::authorize(
        caller,
        &loaded.target(),
        Action::ModifyMember,
        Some(member_id),
    )
    .map_err(|_| {
        Error::forbidden(format!(
            "Not allowed to update members for image {image_id}."
        ))
    })?;
    let status = MemberStatus::parse(status).ok_or_else(|| {
        Error::bad_request(format!(
            "Incorrect request: Status must be one of pending, accepted, rejected (got {status:?})"
        ))
    })?;
    let now = glimpse_types::now();
    sqlx::query("UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member_id = $4")
        .bind(status.as_str())
        .bind(db_time(now))
        .bind(image_id)
        .bind(member_id)
        .execute(&region.db.pool)
        .await?;
    Ok(Member {
        status,
        updated_at: now,
        ..member
    })
}

/// Removes a membership; only the owner (or an admin) may.
pub async fn remove(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    member_id: &str,
) -> Result<()> {
    let loaded = load_shared(region, caller, image_id).await?;
    if fetch(region, image_id, member_id).await?.is_none()
        || !(policy::sees_all_members(caller, &loaded.image.owner)
            || caller.project()? == member_id)
    {
        return Err(not_a_member(member_id, image_id));
    }
    policy::authorize(
        caller,
        &loaded.target(),
        Action::DeleteMember,
        Some(member_id),
    )
    .map_err(|_| {
        Error::forbidden(format!(
            "Not allowed to delete members for image {image_id}."
        ))
    })?;
    sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .execute(&region.db.pool)
        .await?;
    Ok(())
}

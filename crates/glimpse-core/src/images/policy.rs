//! Every access decision of the image service, in one place (security.md 3.2 and 3.3, Glance's
//! new default policies with `enforce_new_defaults` and project scope):
//!
//! * an image is **visible** to an admin, to its owner, to everybody when public or community,
//!   and to member projects (any member status) when shared — and only to callers holding at
//!   least the reader role;
//! * a check that fails on an image the caller cannot see answers **404**, one that fails on a
//!   visible image **403** ("You are not authorized to complete <rule> action.");
//! * readers read; members of the owning project write (modify, delete, upload, deactivate,
//!   share); members of any project that can see an image download it; only the member project
//!   changes its own membership status; only admins publicize or change owners.
//!
//! Unscoped tokens get 403 from every check. Pure functions; nothing to recover after a crash.

use glimpse_types::Visibility;

use super::model::MemberStatus;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// What a policy check knows about an image: its owner, visibility and the caller project's
/// membership (if any).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub visibility: Visibility,
    /// The caller project's membership of this image, whatever its status.
    pub membership: Option<MemberStatus>,
}

/// The guarded operations on an existing image (Glance policy rule names in `rule()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    Modify,
    Delete,
    Upload,
    Download,
    Deactivate,
    Reactivate,
    AddMember,
    DeleteMember,
    GetMembers,
    /// Changing the status of the membership of `member_id`.
    ModifyMember,
}

impl Action {
    pub fn rule(self) -> &'static str {
        match self {
            Action::Get => "get_image",
            Action::Modify => "modify_image",
            Action::Delete => "delete_image",
            Action::Upload => "upload_image",
            Action::Download => "download_image",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::AddMember => "add_member",
            Action::DeleteMember => "delete_member",
            Action::GetMembers => "get_members",
            Action::ModifyMember => "modify_member",
        }
    }
}

/// Glance's policy failure message.
pub fn denied(rule: &str) -> Error {
    Error::forbidden(format!("You are not authorized to complete {rule} action."))
}

/// The 404 every invisible image gets.
pub fn not_found(id: &str) -> Error {
    Error::not_found(format!("No image found with ID {id}"))
}

/// Whether the caller may see the image at all (`get_image` plus the database visibility rule).
pub fn can_see(caller: &Caller, t: &Target<'_>) -> bool {
    if caller.is_admin() {
        return true;
    }
    let Some(project) = caller.project_id.as_deref() else {
        return false;
    };
    if !caller.is_reader() {
        return false;
    }
    t.owner == project
        || matches!(t.visibility, Visibility::Public | Visibility::Community)
        || (t.visibility == Visibility::Shared && t.membership.is_some())
}

/// Checks `action` on an existing image: `Ok`, 404 when the caller cannot see it, 403 otherwise.
/// `member_id` is the membership an `AddMember`/`ModifyMember`/`DeleteMember` is about.
pub fn authorize(
    caller: &Caller,
    t: &Target<'_>,
    action: Action,
    member_id: Option<&str>,
) -> Result<()> {
    let project = caller.project()?;
    if !can_see(caller, t) {
        return Err(not_found(t.id));
    }
    let admin = caller.is_admin();
    let owner_member = caller.is_member() && t.owner == project;
    let allowed = admin
        || match action {
            Action::Get => true,
            Action::Download => caller.is_member(),
            Action::Modify
            | Action::Delete
            | Action::Upload
            | Action::Deactivate
            | Action::Reactivate
            | Action::AddMember
            | Action::DeleteMember => owner_member,
            Action::GetMembers => t.owner == project || t.membership.is_some(),
            Action::ModifyMember => caller.is_member() && member_id == Some(project),
        };
    if allowed {
        Ok(())
    } else {
        Err(denied(action.rule()))
    }
}

/// Checks the creation of an image owned by `owner` with `visibility` (creation never hides
/// anything, so every failure is 403).
pub fn authorize_create(caller: &Caller, owner: &str, visibility: Visibility) -> Result<()> {
    let project = caller.project()?;
    if !caller.is_admin() {
        if !caller.is_member() {
            return Err(denied("add_image"));
        }
        if owner != project {
            return Err(Error::forbidden(format!(
                "You are not permitted to create images owned by '{owner}'."
            )));
        }
    }
    authorize_visibility(caller, visibility)
}

/// Setting `visibility`: public needs an admin (`publicize_image`); community needs an admin or
/// a member (`communitize_image`; the owner check is [`Action::Modify`]'s).
pub fn authorize_visibility(caller: &Caller, visibility: Visibility) -> Result<()> {
    match visibility {
        Visibility::Public if !caller.is_admin() => Err(denied("publicize_image")),
        Visibility::Community if !(caller.is_admin() || caller.is_member()) => {
            Err(denied("communitize_image"))
        }
        _ => Ok(()),
    }
}

/// Changing an image's owner is for admins only.
pub fn authorize_owner_change(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("Owner can't be updated by non admin."))
    }
}

/// Whether the caller sees every membership of an image (owner, admin) or only its own.
pub fn sees_all_members(caller: &Caller, owner: &str) -> bool {
    caller.is_admin() || caller.project_id.as_deref() == Some(owner)
}

/// Downloading a deactivated image is for admins only.
pub fn authorize_deactivated_download(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn caller(project: Option<&str>, roles: &[&str]) -> Caller {
        Caller {
            user_id: "u".into(),
            user_name: "u".into(),
            project_id: project.map(str::to_string),
            project_name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: chrono::Utc::now(),
        }
    }

    fn target(owner: &str, visibility: Visibility, membership: Option<MemberStatus>) -> Target<'_> {
        Target {
            id: "img",
            owner,
            visibility,
            membership,
        }
    }

    fn kind(r: Result<()>) -> Option<Kind> {
        r.err().map(|e| e.kind)
    }

    #[test]
    fn private_images_are_invisible_to_others() {
        let other = caller(Some("b"), &["member", "reader"]);
        let t = target("a", Visibility::Private, None);
        for action in [
            Action::Get,
            Action::Modify,
            Action::Delete,
            Action::Upload,
            Action::Download,
        ] {
            assert_eq!(
                kind(authorize(&other, &t, action, None)),
                Some(Kind::NotFound)
            );
        }
        let admin = caller(Some("c"), &["admin", "member", "reader"]);
        assert_eq!(kind(authorize(&admin, &t, Action::Delete, None)), None);
    }

    #[test]
    fn public_images_are_readable_not_writable() {
        let other = caller(Some("b"), &["member", "reader"]);
        let t = target("a", Visibility::Public, None);
        assert_eq!(kind(authorize(&other, &t, Action::Get, None)), None);
        assert_eq!(kind(authorize(&other, &t, Action::Download, None)), None);
        for action in [Action::Modify, Action::Delete] {
            assert_eq!(
                kind(authorize(&other, &t, action, None)),
                Some(Kind::Forbidden)
            );
        }
    }

    #[test]
    fn readers_read_but_neither_write_nor_download() {
        let reader = caller(Some("a"), &["reader"]);
        let t = target("a", Visibility::Private, None);
        assert_eq!(kind(authorize(&reader, &t, Action::Get, None)), None);
        for action in [Action::Download, Action::Modify] {
            assert_eq!(
                kind(authorize(&reader, &t, action, None)),
                Some(Kind::Forbidden)
            );
        }
        assert_eq!(
            kind(authorize_create(&reader, "a", Visibility::Shared)),
            Some(Kind::Forbidden)
        );
    }

    #[test]
    fn shared_images_and_members() {
        let member = caller(Some("b"), &["member", "reader"]);
        let pending = target("a", Visibility::Shared, Some(MemberStatus::Pending));
        assert_eq!(kind(authorize(&member, &pending, Action::Get, None)), None);
        assert_eq!(
            kind(authorize(
                &member,
                &pending,
                Action::ModifyMember,
                Some("b")
            )),
            None
        );
        assert_eq!(
            kind(authorize(&member, &pending, Action::AddMember, Some("c"))),
            Some(Kind::Forbidden)
        );
        let owner = caller(Some("a"), &["member", "reader"]);
        let own = target("a", Visibility::Shared, None);
        assert_eq!(
            kind(authorize(&owner, &own, Action::ModifyMember, Some("b"))),
            Some(Kind::Forbidden)
        );
        assert_eq!(
            kind(authorize(&owner, &own, Action::AddMember, Some("b"))),
            None
        );
        let not_member = target("a", Visibility::Shared, None);
        assert_eq!(
            kind(authorize(&member, &not_member, Action::Get, None)),
            Some(Kind::NotFound)
        );
    }

    #[test]
    fn creation_rules() {
        let member = caller(Some("a"), &["member", "reader"]);
        assert_eq!(
            kind(authorize_create(&member, "a", Visibility::Private)),
            None
        );
        assert_eq!(
            kind(authorize_create(&member, "b", Visibility::Private)),
            Some(Kind::Forbidden)
        );
        assert_eq!(
            kind(authorize_create(&member, "a", Visibility::Public)),
            Some(Kind::Forbidden)
        );
        let admin = caller(Some("a"), &["admin", "member", "reader"]);
        assert_eq!(
            kind(authorize_create(&admin, "b", Visibility::Public)),
            None
        );
        let unscoped = caller(None, &[]);
        assert_eq!(
            kind(authorize_create(&unscoped, "a", Visibility::Private)),
            Some(Kind::Forbidden)
        );
    }
}

//! Every volume access decision, as Cinder's default policies make it (admin-or-owner for
//! everything; readers may only read): a volume of another project is not found (404) unless
//! the caller is an admin; a reader's write is forbidden (403) with Cinder's message.

use super::Volume;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// What a caller does to a volume (the Cinder policy rule names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    Create,
    Update,
    Delete,
    /// `os-reserve`, `os-attach`, `os-detach`, … and Nova's attachments.
    Attach,
    UploadImage,
    /// An upload with `visibility: public`.
    UploadPublic,
}

impl Action {
    pub fn rule(self) -> &'static str {
        match self {
            Action::Get => "volume:get",
            Action::Create => "volume:create",
            Action::Update => "volume:update",
            Action::Delete => "volume:delete",
            Action::Attach => "volume_extension:volume_actions:attach",
            Action::UploadImage => "volume_extension:volume_actions:upload_image",
            Action::UploadPublic => "volume_extension:volume_actions:upload_public",
        }
    }
}

/// Cinder's 403 text.
pub fn denied(action: Action) -> Error {
    Error::forbidden(format!(
        "Policy doesn't allow {} to be performed.",
        action.rule()
    ))
}

/// Cinder's 404 text.
pub fn not_found(id: &str) -> Error {
    Error::not_found(format!("Volume {id} could not be found."))
}

/// Whether the caller sees the volume at all.
pub fn visible(caller: &Caller, v: &Volume) -> bool {
    caller.is_admin() || caller.project_id.as_deref() == Some(v.project_id.as_str())
}

/// Checks an action that needs no volume (create) or one on a visible volume.
pub fn authorize(caller: &Caller, action: Action) -> Result<()> {
    caller.project()?;
    let allowed = match action {
        Action::Get => caller.is_reader() || caller.is_member() || caller.is_admin(),
        Action::UploadPublic => caller.is_admin(),
        _ => caller.is_member() || caller.is_admin(),
    };
    if allowed { Ok(()) } else { Err(denied(action)) }
}

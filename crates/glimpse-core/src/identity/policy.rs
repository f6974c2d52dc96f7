//! Who may call the identity admin API: the one place these decisions live. Writes and
//! listings of other users' data need the admin role (on any project, as in Keystone's
//! legacy `admin_required`); a user may read itself, its own projects and the project its
//! token is scoped to. Failing a check is 403 with Keystone's message. Stateless.

use crate::auth::Caller;
use crate::error::{Error, Result};

fn denied(action: &str) -> Error {
    Error::forbidden(format!(
        "You are not authorized to perform the requested action: identity:{action}."
    ))
}

/// The admin role is required.
pub fn admin(caller: &Caller, action: &str) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(denied(action))
    }
}

/// Admin, or the caller is `user_id`.
pub fn admin_or_self(caller: &Caller, user_id: &str, action: &str) -> Result<()> {
    if caller.is_admin() || caller.user_id == user_id {
        Ok(())
    } else {
        Err(denied(action))
    }
}

/// Admin, or the caller's token is scoped to `project_id`.
pub fn admin_or_scoped_to(caller: &Caller, project_id: &str, action: &str) -> Result<()> {
    if caller.is_admin() || caller.project_id.as_deref() == Some(project_id) {
        Ok(())
    } else {
        Err(denied(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            user_id: "u1".into(),
            user_name: "u".into(),
            project_id: Some("p1".into()),
            project_name: Some("p".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn rules() {
        let reader = caller(&["reader"]);
        let admin_c = caller(&["admin", "member", "reader"]);
        assert_eq!(admin(&reader, "x").unwrap_err().kind, Kind::Forbidden);
        assert!(admin(&admin_c, "x").is_ok());
        assert!(admin_or_self(&reader, "u1", "x").is_ok());
        assert!(admin_or_self(&reader, "u2", "x").is_err());
        assert!(admin_or_scoped_to(&reader, "p1", "x").is_ok());
        assert!(admin_or_scoped_to(&reader, "p2", "x").is_err());
        assert!(admin_or_scoped_to(&admin_c, "p2", "x").is_ok());
    }
}

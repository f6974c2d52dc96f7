//! Accepting an in-region copy (`POST /v1/cloudimages/{image_id}/copy`, seed 003): the
//! request's fields, then the source image as the caller sees it, then the keys, then one
//! enqueue. Nothing but the job row is written, so a failed check leaves nothing behind.
//!
//! Order and answers: a missing or malformed field → 400 (`IMG.0001`; a bad name `IMG.0002`,
//! a bad description `IMG.0004`); the caller needs the member role → 403; a source the caller
//! cannot see → 404, may not download → 403; a source that is not `active` (`IMG.0061`), made
//! from an ISO file (`IMG.0062`) or a whole-server image (`IMG.0063`) → 400; `cmk_id` not a
//! key of the caller's project → 404 (`IMG.0064`), disabled or pending deletion → 400
//! (`IMG.0065`); an encrypted source whose key the caller's project may not use → 403
//! (`IMG.0065`), whose key is disabled → 400.

use super::{CopyHandler, Params, codes};
use crate::auth::Caller;
use crate::error::{Error, Kind, Result};
use crate::images::policy::{self, Action};
use crate::images::records::load_for;
use crate::jobs::{JobRecord, NewJob};
use crate::region::Region;

/// The body of a copy request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub cmk_id: Option<String>,
}

/// Longest image name and description (Huawei's limits).
pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1024;

fn check_name(name: Option<&str>) -> Result<String> {
    let name = name.unwrap_or("");
    if name.is_empty() {
        return Err(
            Error::bad_request("The name parameter is mandatory.").with_code(codes::BAD_REQUEST)
        );
    }
    let ok = name.chars().count() <= MAX_NAME
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || " -_.".contains(c));
    if !ok {
        return Err(Error::bad_request(format!(
            "The name is invalid: 1 to {MAX_NAME} characters of letters, digits, spaces, '-', \
             '_' and '.', not starting or ending with a space."
        ))
        .with_code(codes::BAD_NAME));
    }
    Ok(name.to_string())
}

fn check_description(d: Option<&str>) -> Result<Option<String>> {
    let Some(d) = d.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if d.chars().count() > MAX_DESCRIPTION || d.contains(['\r', '\n', '<', '>']) {
        return Err(Error::bad_request(format!(
            "The description is invalid: at most {MAX_DESCRIPTION} characters, without \
             carriage returns or angle brackets."
        ))
        .with_code(codes::BAD_DESCRIPTION));
    }
    Ok(Some(d.to_string()))
}

/// Checks the request and enqueues the copy.
pub async fn submit(
    region: &Region,
    caller: &Caller,
    image_id: &str,
    req: &CopyRequest,
) -> Result<JobRecord> {
    let name = check_name(req.name.as_deref())?;
    let description = check_description(req.description.as_deref())?;
    let cmk_id = req.cmk_id.clone().filter(|k| !k.is_empty());
    if let Some(k) = &cmk_id {
        crate::kms::check_key_id(k).map_err(|e| e.with_code(codes::BAD_REQUEST))?;
    }
    let project = caller.project()?.to_string();
    if !(caller.is_member() || caller.is_admin()) {
        return Err(Error::forbidden("Copying images needs the member role."));
    }

    let loaded = load_for(region, caller, image_id, Action::Get).await?;
    policy::authorize(caller, &loaded.target(), Action::Download, None)?;
    let src = loaded.image;
    if src.status != glimpse_types::ImageStatus::Active || src.blob_key.is_none() {
        return Err(Error::bad_request(format!(
            "Image {image_id} is not active (its status is {}); only active images can be copied.",
            src.status.as_str()
        ))
        .with_code(codes::NOT_ACTIVE));
    }
    if src.disk_format.as_deref() == Some("iso")
        || src.property("__image_source_type") == Some("iso")
    {
        return Err(Error::bad_request(format!(
            "Image {image_id} was created from an ISO file; such images cannot be copied within \
             a region."
        ))
        .with_code(codes::ISO_IMAGE));
    }
    if src.property("__whole_image") == Some("true") {
        return Err(Error::bad_request(format!(
            "Image {image_id} is a whole-server image; whole-server images cannot be copied \
             within a region."
        ))
        .with_code(codes::WHOLE_IMAGE));
    }

    if let Some(s) = &src.sealing {
        region
            .kms
            .usable(&project, &s.cmk_id)
            .await
            .map_err(|e| match e.kind {
                Kind::NotFound => Error::forbidden(format!(
                    "Image {image_id} is encrypted with a key this project may not use."
                ))
                .with_code(codes::KEY_UNUSABLE),
                Kind::BadRequest => {
                    Error::bad_request(format!("Image {image_id} cannot be read: {}", e.message))
                        .with_code(codes::KEY_UNUSABLE)
                }
                _ => e,
            })?;
    }
    if let Some(k) = &cmk_id {
        region
            .kms
            .usable(&project, k)
            .await
            .map_err(|e| match e.kind {
                Kind::NotFound => Error::not_found(format!("The key {k} does not exist."))
                    .with_code(codes::KEY_NOT_FOUND),
                Kind::BadRequest => Error::bad_request(e.message).with_code(codes::KEY_UNUSABLE),
                _ => e,
            })?;
    }

    let params = Params {
        source_image_id: image_id.to_string(),
        image_id: glimpse_types::uuid_id(),
        name,
        description,
        cmk_id,
        project_id: project.clone(),
        requested_by: caller.user_id.clone(),
    };
    let new = NewJob {
        id: Some(uuid::Uuid::new_v4().simple().to_string()),
        phase: "requested".into(),
        ..NewJob::of::<CopyHandler>(project, &params)?
    };
    let (job, _) = region.jobs.enqueue(&new).await?;
    tracing::info!(job = %job.id, source = image_id, image = %params.image_id,
        encrypt = params.cmk_id.is_some(), "in-region copy requested");
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_follow_huawei() {
        assert!(check_name(Some("ims_encrypted_copy3")).is_ok());
        assert!(check_name(Some("a b-c.d_é")).is_ok());
        for bad in ["", " lead", "trail ", "a/b", "a<b"] {
            assert!(check_name(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(check_name(None).is_err());
        assert!(check_name(Some(&"x".repeat(128))).is_ok());
        assert_eq!(
            check_name(Some(&"x".repeat(129))).unwrap_err().code,
            Some(codes::BAD_NAME)
        );
        assert_eq!(
            check_description(Some("test copy")).unwrap().as_deref(),
            Some("test copy")
        );
        assert_eq!(check_description(Some("")).unwrap(), None);
        assert!(check_description(Some(&"d".repeat(1024))).is_ok());
        for bad in ["a\rb", "<b>", "a>b", "a\nb"] {
            assert_eq!(
                check_description(Some(bad)).unwrap_err().code,
                Some(codes::BAD_DESCRIPTION)
            );
        }
        assert!(check_description(Some(&"d".repeat(1025))).is_err());
    }
}

//! `POST /volumes/{id}/action`: the body names one action (Cinder's `action_peek`: a JSON
//! object with exactly one key). Each action's own schema is checked before the volume is
//! looked up, as Cinder's validation decorator does, so a bad body is 400 even for a volume
//! that does not exist.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use glimpse_core::Error;
use glimpse_core::volumes::{self, attach};
use serde_json::{Map, Value};

use super::upload;
use super::{R, cinder, reply, version_of};
use crate::dialect::{ApiError, Caller, Cinder};

fn malformed(reason: &str) -> ApiError<Cinder> {
    cinder(Error::bad_request(format!(
        "Malformed message body: {reason}"
    )))
}

/// The one `(action, argument)` of an action body.
fn peek(body: &[u8]) -> Result<(String, Value), ApiError<Cinder>> {
    let v: Value = serde_json::from_slice(body).map_err(|_| malformed("cannot understand JSON"))?;
    let Value::Object(m) = v else {
        return Err(malformed("cannot understand JSON"));
    };
    if m.len() != 1 {
        return Err(malformed("too many body keys"));
    }
    let (k, v) = m.into_iter().next().expect("one key");
    Ok((k, v))
}

fn args(action: &str, v: &Value, allowed: &[&str]) -> Result<Map<String, Value>, ApiError<Cinder>> {
    let m = match v {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(cinder(Error::bad_request(format!(
                "Invalid input for field/attribute {action}. Value: {other}. {other} is not of type 'object', 'null'"
            ))));
        }
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(cinder(Error::bad_request(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))));
    }
    Ok(m)
}

fn uuid_arg(
    action: &str,
    m: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ApiError<Cinder>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(Some(s.clone())),
        Some(other) => Err(cinder(Error::bad_request(format!(
            "Invalid input for field/attribute {action}/{key}. Value: {other}. {other} is not a 'uuid'"
        )))),
    }
}

pub async fn action(
    State(region): State<R>,
    Path((_, _, id)): Path<(String, String, String)>,
    c: Caller<Cinder>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError<Cinder>> {
    let version = version_of(&ext);
    let (name, arg) = peek(&body)?;
    let accepted = || Ok(StatusCode::ACCEPTED.into_response());
    match name.as_str() {
        "os-volume_upload_image" => {
            let req = upload::parse(&arg, version.at_least(3, 1))?;
            let done = volumes::upload::submit(&region, &c, &id, req).await?;
            let body = serde_json::json!({"os-volume_upload_image": upload::response(&done)});
            Ok(reply(StatusCode::ACCEPTED, &body))
        }
        "os-reserve" | "os-unreserve" | "os-begin_detaching" | "os-roll_detaching" => {
            args(&name, &arg, &[])?;
            match name.as_str() {
                "os-reserve" => attach::reserve(&region, &c, &id).await?,
                "os-unreserve" => attach::unreserve(&region, &c, &id).await?,
                "os-begin_detaching" => attach::begin_detaching(&region, &c, &id).await?,
                _ => attach::roll_detaching(&region, &c, &id).await?,
            }
            accepted()
        }
        "os-attach" => {
            let m = args(
                &name,
                &arg,
                &["instance_uuid", "mountpoint", "host_name", "mode"],
            )?;
            let server = uuid_arg(&name, &m, "instance_uuid")?;
            let mountpoint = match m.get("mountpoint") {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
                other => {
                    let shown = other.cloned().unwrap_or(Value::Null);
                    return Err(cinder(Error::bad_request(format!(
                        "Invalid input for field/attribute {name}/mountpoint. Value: {shown}. 'mountpoint' must be a string of 1-255 characters"
                    ))));
                }
            };
            if let Some(mode) = m.get("mode")
                && mode.as_str() != Some("rw")
            {
                return Err(cinder(Error::bad_request(
                    "Invalid input received: Invalid attaching mode 'ro' for volume (only 'rw' is supported).",
                )));
            }
            let Some(server) = server else {
                return Err(cinder(Error::bad_request(
                    "Invalid request to attach volume to an invalid target: instance_uuid is required.",
                )));
            };
            attach::attach(&region, &c, &id, &server, Some(&mountpoint)).await?;
            accepted()
        }
        "os-set_bootable" => {
            let m = args(&name, &arg, &["bootable"])?;
            let Some(b) = m.get("bootable") else {
                return Err(cinder(Error::bad_request(format!(
                    "Invalid input for field/attribute {name}. 'bootable' is a required property"
                ))));
            };
            let bootable = upload::strict_bool(&format!("{name}/bootable"), b)?;
            let u = glimpse_core::volumes::records::VolumeUpdate {
                bootable: Some(bootable),
                ..Default::default()
            };
            glimpse_core::volumes::update(&region, &c, &id, u).await?;
            Ok(StatusCode::OK.into_response())
        }
        "os-extend" => {
            let m = args(&name, &arg, &["new_size"])?;
            let size = super::records::volume_size(&m, "new_size", &name)?;
            glimpse_core::volumes::records::extend(&region, &c, &id, size).await?;
            accepted()
        }
        "os-detach" => {
            let m = args(&name, &arg, &["attachment_id"])?;
            uuid_arg(&name, &m, "attachment_id")?;
            attach::detach(&region, &c, &id, None).await?;
            accepted()
        }
        other => Err(cinder(Error::bad_request(format!(
            "There is no such action: {other}"
        )))),
    }
}

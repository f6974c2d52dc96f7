//! Nova's `os-volume_attachments` (merged into the compute router, so it answers below
//! `/v2.1/servers/{server_id}` and `/v2[.1]/{project_id}/servers/{server_id}`):
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/os-volume_attachments` | 200 `{"volumeAttachments": [{device, id, serverId, volumeId}]}` |
//! | POST | `/os-volume_attachments` | 200 `{"volumeAttachment": {…}}`; body `{"volumeAttachment": {"volumeId", "device"?}}` |
//! | GET | `/os-volume_attachments/{volume_id}` | 200 one attachment |
//! | DELETE | `/os-volume_attachments/{volume_id}` | 202 |
//!
//! The server must exist for the caller (404 `Instance … could not be found.`) and be in a
//! state Nova attaches in (`ACTIVE`, `STOPPED`, `PAUSED`; 409 otherwise); the volume must be
//! the same project's and `available` (400). Devices are Nova's `/dev/vdX`, the next free
//! letter after the root disk `vda`. The state lives in the volume service
//! ([`glimpse_core::volumes::attach`]); nothing here keeps any.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use glimpse_core::compute::{self, VmState};
use glimpse_core::volumes::{Attachment, attach};
use glimpse_core::{Error, Kind};
use serde_json::{Value, json};

use super::{R, nova, reply};
use crate::dialect::{ApiResult, Caller, Nova};

/// Routes merged into the compute API.
pub fn routes() -> Router<R> {
    Router::new()
        .route(
            "/servers/{server_id}/os-volume_attachments",
            get(list).post(create),
        )
        .route(
            "/servers/{server_id}/os-volume_attachments/{volume_id}",
            get(show).delete(remove),
        )
}

fn view(a: &Attachment, server_id: &str) -> Value {
    json!({
        "device": a.mountpoint,
        "id": a.volume_id,
        "serverId": server_id,
        "volumeId": a.volume_id,
    })
}

/// A volume the volume service does not show the caller is Nova's 404.
fn volume_error(e: Error, id: &str) -> Error {
    if e.kind == Kind::NotFound {
        Error::not_found(format!("Volume {id} could not be found."))
    } else {
        e
    }
}

async fn list(
    State(region): State<R>,
    caller: Caller<Nova>,
    Path(server_id): Path<String>,
) -> ApiResult<Nova> {
    compute::get(&region, &caller, &server_id).await?;
    let all = attach::of_server(&region, &caller, &server_id).await?;
    let items: Vec<Value> = all.iter().map(|a| view(a, &server_id)).collect();
    Ok(reply(StatusCode::OK, json!({"volumeAttachments": items})))
}

async fn show(
    State(region): State<R>,
    caller: Caller<Nova>,
    Path((server_id, volume_id)): Path<(String, String)>,
) -> ApiResult<Nova> {
    compute::get(&region, &caller, &server_id).await?;
    let all = attach::of_server(&region, &caller, &server_id).await?;
    match all.iter().find(|a| a.volume_id == volume_id) {
        Some(a) => Ok(reply(
            StatusCode::OK,
            json!({"volumeAttachment": view(a, &server_id)}),
        )),
        None => Err(nova(Error::not_found(format!(
            "volume_id not found: {volume_id}"
        )))),
    }
}

/// The first `/dev/vdX` (X from b) no attachment of the server uses.
fn next_device(used: &[Attachment]) -> String {
    let taken: Vec<&str> = used
        .iter()
        .filter_map(|a| a.mountpoint.as_deref())
        .collect();
    ('b'..='z')
        .map(|c| format!("/dev/vd{c}"))
        .find(|d| !taken.contains(&d.as_str()))
        .unwrap_or_else(|| "/dev/vdz".into())
}

async fn create(
    State(region): State<R>,
    caller: Caller<Nova>,
    Path(server_id): Path<String>,
    body: Bytes,
) -> ApiResult<Nova> {
    let (volume_id, device) = parse(&body)?;
    let server = compute::get(&region, &caller, &server_id).await?;
    if !matches!(
        server.vm_state,
        VmState::Active | VmState::Stopped | VmState::Paused
    ) || server.task_state.is_some()
    {
        return Err(nova(Error::conflict(format!(
            "Cannot 'attach_volume' instance {server_id} while it is in vm_state {}",
            server.vm_state.as_str()
        ))));
    }
    let used = attach::of_server(&region, &caller, &server_id).await?;
    let device = match device {
        Some(d)
            if used
                .iter()
                .any(|a| a.mountpoint.as_deref() == Some(d.as_str())) =>
        {
            return Err(nova(Error::bad_request(format!(
                "The supplied device path ({d}) is in use."
            ))));
        }
        Some(d) => d,
        None => next_device(&used),
    };
    let a = match attach::attach(&region, &caller, &volume_id, &server_id, Some(&device)).await {
        Ok(a) => a,
        Err(e) => return Err(nova(volume_error(e, &volume_id))),
    };
    Ok(reply(
        StatusCode::OK,
        json!({"volumeAttachment": view(&a, &server_id)}),
    ))
}

async fn remove(
    State(region): State<R>,
    caller: Caller<Nova>,
    Path((server_id, volume_id)): Path<(String, String)>,
) -> ApiResult<Nova> {
    compute::get(&region, &caller, &server_id).await?;
    match attach::detach(&region, &caller, &volume_id, Some(&server_id)).await {
        Ok(()) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(e) if e.kind == Kind::NotFound => Err(nova(Error::not_found(format!(
            "volume_id not found: {volume_id}"
        )))),
        Err(e) => Err(nova(e)),
    }
}

/// `{"volumeAttachment": {"volumeId": <uuid>, "device": <"/dev/…"|null>}}`, nothing else.
fn parse(body: &[u8]) -> Result<(String, Option<String>), Error> {
    let invalid = |m: String| Error::bad_request(format!("Invalid input for field/attribute {m}"));
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::bad_request("Malformed request body"))?;
    let Some(att) = v.get("volumeAttachment").and_then(Value::as_object) else {
        return Err(invalid(format!(
            "volumeAttachment. Value: {v}. 'volumeAttachment' is a required property"
        )));
    };
    if let Some(k) = att
        .keys()
        .find(|k| !matches!(k.as_str(), "volumeId" | "device"))
    {
        return Err(Error::bad_request(format!(
            "Invalid input for field/attribute volumeAttachment. Value: {}. Additional properties are not allowed ('{k}' was unexpected)",
            Value::Object(att.clone())
        )));
    }
    let volume = match att.get("volumeId") {
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => s.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "volumeId. Value: {other}. {other} is not a 'uuid'"
            )));
        }
        None => {
            return Err(invalid(format!(
                "volumeAttachment. Value: {}. 'volumeId' is a required property",
                Value::Object(att.clone())
            )));
        }
    };
    let device = match att.get("device") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if s.len() > 5
                && s.starts_with("/dev/")
                && s[5..].chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(s.clone())
        }
        Some(other) => {
            return Err(invalid(format!(
                "device. Value: {other}. {other} does not match '(^/dev/x{{0,1}}[a-z]{{0,1}}d{{0,1}})([a-z]+)[0-9]*$'"
            )));
        }
    };
    Ok((volume, device))
}

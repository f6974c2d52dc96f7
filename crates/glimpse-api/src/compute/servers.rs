//! `/servers`: create, list, detail, show, delete, and `POST /servers/{id}/action`
//! (power actions, `createImage`, `glimpse-write-disk`). Request bodies are checked the way
//! Nova's JSON schemas do (400 `Invalid input for field/attribute …`); the work is in
//! [`glimpse_core::compute`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use glimpse_core::Error;
use glimpse_core::compute::{self, NewServer, PowerAction, SnapshotRequest};
use serde_json::{Map, Value, json};

use super::{Base, R, base_url, nova, reply, views};
use crate::dialect::{ApiResult, Caller, Nova};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route("/servers", get(servers::<false>).post(create))
        .route("/servers/detail", get(servers::<true>))
        .route("/servers/{id}", get(show).put(update).delete(remove))
        .route("/servers/{id}/action", post(action))
}

pub(super) fn invalid(field: &str, value: &Value, why: &str) -> Error {
    Error::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

/// A JSON object body (400 with Nova's words otherwise).
pub(super) fn object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::bad_request("Malformed request body"))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(Error::bad_request("Malformed request body")),
    }
}

/// A string-to-string metadata object (keys 1–255 characters, values at most `max_value`
/// characters when given).
pub(super) fn metadata(
    field: &str,
    v: Option<&Value>,
    max_value: Option<usize>,
) -> Result<Vec<(String, String)>, Error> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Some(m) = v.as_object() else {
        return Err(invalid(field, v, &format!("{v} is not of type 'object'")));
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, val) in m {
        let Some(s) = val.as_str() else {
            return Err(invalid(field, v, &format!("{val} is not of type 'string'")));
        };
        if k.is_empty() || k.chars().count() > 255 {
            return Err(invalid(
                field,
                v,
                &format!("'{k}' does not match any of the regexes"),
            ));
        }
        if max_value.is_some_and(|max| s.chars().count() > max) {
            return Err(invalid(field, v, &format!("'{s}' is too long")));
        }
        out.push((k.clone(), s.to_string()));
    }
    Ok(out)
}

const CREATE_KEYS: [&str; 24] = [
    "name",
    "imageRef",
    "flavorRef",
    "adminPass",
    "metadata",
    "networks",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "personality",
    "availability_zone",
    "block_device_mapping",
    "block_device_mapping_v2",
    "config_drive",
    "key_name",
    "min_count",
    "max_count",
    "return_reservation_id",
    "security_groups",
    "user_data",
    "description",
    "tags",
    "hostname",
    "trusted_image_certificates",
];

/// Parses `{"server": {...}}` as Nova's create schema does; also returns the `adminPass`
/// asked for, if any (echoed back; there is no guest to set it in).
fn parse_create(body: &[u8], base: &Base) -> Result<(NewServer, Option<String>), Error> {
    let top = object(body)?;
    let whole = Value::Object(top.clone());
    let Some(Value::Object(s)) = top.get("server") else {
        return Err(invalid("server", &whole, "'server' is a required property"));
    };
    let sv = Value::Object(s.clone());
    if let Some(k) = s.keys().find(|k| !CREATE_KEYS.contains(&k.as_str())) {
        return Err(invalid(
            "server",
            &sv,
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    let name = match s.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(other) => return Err(invalid("name", other, "is not of type 'string'")),
        None => return Err(invalid("server", &sv, "'name' is a required property")),
    };
    let len = name.chars().count();
    if len == 0 || len > 255 || name.trim() != name {
        return Err(invalid(
            "name",
            &json!(name),
            "does not match '^(?! )[\\S ]*(?<! )$' or is not 1 to 255 characters",
        ));
    }
    let text = |key: &str| -> Result<String, Error> {
        match s.get(key) {
            Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
            Some(Value::Number(n)) if key == "flavorRef" => Ok(n.to_string()),
            Some(other) => Err(invalid(key, other, "is not a valid reference")),
            None => Err(invalid(
                "server",
                &sv,
                &format!("'{key}' is a required property"),
            )),
        }
    };
    let bdm_image = local_image_boot(s)?;
    let image_ref = match (s.get("imageRef"), bdm_image) {
        (None | Some(Value::Null), Some(id)) => id,
        (Some(Value::String(v)), _)
            if v.is_empty() && s.contains_key("block_device_mapping_v2") =>
        {
            return Err(Error::bad_request(
                "Block device mappings are not supported: servers boot from an image.",
            ));
        }
        _ => text("imageRef")?,
    };
    let flavor_ref = text("flavorRef")?;
    let key_name = match s.get("key_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() && k.chars().count() <= 255 => Some(k.clone()),
        Some(other) => {
            return Err(invalid(
                "key_name",
                other,
                "is not of type 'string' or not 1 to 255 characters",
            ));
        }
    };
    for key in ["min_count", "max_count"] {
        if let Some(v) = s.get(key)
            && v != &json!(1)
            && v != &json!("1")
        {
            return Err(invalid(key, v, "only one server per request is supported"));
        }
    }
    match s.get("networks") {
        None if base.version.at_least(2, 37) => {
            return Err(invalid("server", &sv, "'networks' is a required property"));
        }
        None => {}
        Some(Value::String(v)) if v == "auto" || v == "none" => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(a)) => {
            let id = a[0]
                .get("uuid")
                .or_else(|| a[0].get("port"))
                .cloned()
                .unwrap_or(Value::Null);
            return Err(Error::bad_request(format!(
                "Network {} could not be found.",
                id.as_str().unwrap_or("")
            )));
        }
        Some(other) => {
            return Err(invalid(
                "networks",
                other,
                "is not valid under any of the given schemas",
            ));
        }
    }
    let admin_pass = match s.get("adminPass") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(other) => return Err(invalid("adminPass", other, "is not of type 'string'")),
    };
    let new = NewServer {
        key_name,
        name,
        image_ref,
        flavor_ref,
        metadata: metadata("metadata", s.get("metadata"), Some(255))?,
        access_ipv4: access_ip(s, "accessIPv4")?.unwrap_or_default(),
        access_ipv6: access_ip(s, "accessIPv6")?.unwrap_or_default(),
    };
    Ok((new, admin_pass))
}

/// The image of a block device mapping that only says "boot from this image onto a local
/// disk" (what openstackclient sends for `--image`); other mappings (volumes, blank or
/// ephemeral disks) are refused, since servers here have exactly one local root disk.
fn local_image_boot(s: &Map<String, Value>) -> Result<Option<String>, Error> {
    let refuse = || {
        Error::bad_request(
            "Block device mappings other than the local boot image are not supported.",
        )
    };
    if let Some(v1) = s.get("block_device_mapping")
        && v1.as_array().is_none_or(|a| !a.is_empty())
    {
        return Err(refuse());
    }
    let Some(v2) = s.get("block_device_mapping_v2") else {
        return Ok(None);
    };
    let Some(list) = v2.as_array() else {
        return Err(invalid(
            "block_device_mapping_v2",
            v2,
            "is not of type 'array'",
        ));
    };
    let mut image = None;
    for bdm in list {
        let field = |k: &str| bdm.get(k).and_then(Value::as_str);
        let boot = bdm
            .get("boot_index")
            .map(|b| b == &json!(0) || b == &json!("0"));
        if field("source_type") != Some("image")
            || field("destination_type").unwrap_or("local") != "local"
            || boot == Some(false)
            || image.is_some()
        {
            return Err(refuse());
        }
        image = field("uuid").map(str::to_string);
    }
    Ok(image)
}

/// A request body, or Nova's 413 / 400 when it cannot be read.
/// `accessIPv4`/`accessIPv6`: an address of that family (or "" to clear).
fn access_ip(s: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    let Some(v) = s.get(key) else { return Ok(None) };
    let text = v.as_str().unwrap_or("");
    let ok = text.is_empty()
        || if key == "accessIPv4" {
            text.parse::<std::net::Ipv4Addr>().is_ok()
        } else {
            text.parse::<std::net::Ipv6Addr>().is_ok()
        };
    if !v.is_string() || !ok {
        let family = if key == "accessIPv4" { "ipv4" } else { "ipv6" };
        return Err(invalid(key, v, &format!("{v} is not a '{family}'")));
    }
    Ok(Some(text.to_string()))
}

/// `PUT /servers/{id}`: name and access addresses (`OS-DCF:diskConfig` and, from 2.19,
/// `description` are accepted and not kept).
async fn update(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let body = crate::request::body(body)?;
    let top = object(&body)?;
    let Some(Value::Object(s)) = top.get("server") else {
        return Err(nova(invalid(
            "server",
            &Value::Object(top.clone()),
            "'server' is a required property",
        )));
    };
    let allowed = [
        "name",
        "accessIPv4",
        "accessIPv6",
        "OS-DCF:diskConfig",
        "description",
    ];
    if let Some(k) = s.keys().find(|k| {
        !allowed.contains(&k.as_str())
            || (k.as_str() == "description" && !base.version.at_least(2, 19))
    }) {
        return Err(nova(invalid(
            "server",
            &Value::Object(s.clone()),
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        )));
    }
    let name = match s.get("name") {
        None => None,
        Some(Value::String(n)) if (1..=255).contains(&n.chars().count()) && n.trim() == n => {
            Some(n.clone())
        }
        Some(other) => {
            return Err(nova(invalid("name", other, "is not a valid server name")));
        }
    };
    let u = compute::ServerUpdate {
        name,
        access_ipv4: access_ip(s, "accessIPv4")?,
        access_ipv6: access_ip(s, "accessIPv6")?,
    };
    let server = compute::update(&region, &caller, &id, u).await?;
    Ok(reply(
        StatusCode::OK,
        json!({"server": views::server_updated(&region, &base, &server)}),
    ))
}

/// `POST /servers`.
async fn create(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let body = crate::request::body(body)?;
    let (new, asked) = parse_create(&body, &base)?;
    let server = compute::create(&region, &caller, new).await?;
    let password =
        asked.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    let mut r = reply(
        StatusCode::ACCEPTED,
        json!({"server": {
            "id": server.id,
            "links": views::links(&region, &base, "servers", &server.id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": password,
        }}),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}/servers/{}",
        base_url(&region, &base),
        server.id
    )) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /servers` (id, links, name) and `/servers/detail` (the full view).
async fn servers<const DETAIL: bool>(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
) -> ApiResult<Nova> {
    let servers = compute::list(&region, &caller).await?;
    let list: Vec<Value> = servers
        .iter()
        .map(|s| {
            if DETAIL {
                views::server(&region, &base, s)
            } else {
                views::server_brief(&region, &base, s)
            }
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({ "servers": list })))
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    let s = compute::get(&region, &caller, &id).await?;
    Ok(reply(
        StatusCode::OK,
        json!({"server": views::server(&region, &base, &s)}),
    ))
}

async fn remove(
    State(region): State<R>,
    caller: Caller<Nova>,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    compute::delete(&region, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /servers/{id}/action`: the action is the body's key.
async fn action(
    State(region): State<R>,
    caller: Caller<Nova>,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let body = crate::request::body(body)?;
    if !crate::request::is_json(&headers) {
        return Err(nova(Error::bad_request("There is no such action: None")));
    }
    let body = object(&body)?;
    let power = [
        ("os-stop", PowerAction::Stop),
        ("os-start", PowerAction::Start),
        ("pause", PowerAction::Pause),
        ("unpause", PowerAction::Unpause),
        ("suspend", PowerAction::Suspend),
        ("resume", PowerAction::Resume),
    ];
    let Some(name) = body.keys().next().cloned() else {
        return Err(nova(Error::bad_request("There is no such action: None")));
    };
    if let Some((_, act)) = power.iter().find(|(n, _)| body.contains_key(*n)) {
        compute::power(&region, &caller, &id, *act).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    if let Some(v) = body.get("createImage") {
        return create_image(&region, &base, &caller, &id, v).await;
    }
    if let Some(v) = body.get("glimpse-write-disk") {
        let (offset, data) = parse_write(v)?;
        compute::write_disk(&region, &caller, &id, offset, &data).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    Err(nova(Error::bad_request(format!(
        "There is no such action: {name}"
    ))))
}

/// Parses `createImage`'s value (Nova's `create_image` schema).
fn parse_create_image(v: &Value, base: &Base) -> Result<SnapshotRequest, Error> {
    let Some(o) = v.as_object() else {
        return Err(invalid("createImage", v, "is not of type 'object'"));
    };
    if let Some(k) = o.keys().find(|k| *k != "name" && *k != "metadata") {
        return Err(invalid(
            "createImage",
            v,
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    let name = match o.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(invalid("name", other, "is not of type 'string'")),
        None => return Err(invalid("createImage", v, "'name' is a required property")),
    };
    Ok(SnapshotRequest {
        name,
        // Value lengths are the domain's rule (the seed's 65535 bytes).
        metadata: metadata("metadata", o.get("metadata"), None)?,
        glance_quota: base.version.at_least(2, 39),
    })
}

async fn create_image(
    region: &glimpse_core::region::Region,
    base: &Base,
    caller: &glimpse_core::auth::Caller,
    id: &str,
    v: &Value,
) -> ApiResult<Nova> {
    let req = parse_create_image(v, base)?;
    let image = compute::create_image(region, caller, id, &req).await?;
    if base.version.at_least(2, 45) {
        return Ok(reply(StatusCode::ACCEPTED, json!({"image_id": image.id})));
    }
    let mut r = StatusCode::ACCEPTED.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    if let Ok(loc) =
        HeaderValue::from_str(&format!("{}/images/{}", base_url(region, base), image.id))
    {
        h.insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// Largest write the extension accepts in one request (decoded bytes).
const MAX_WRITE: usize = 64 * 1024;

/// Parses `{"offset": N, "data": "<base64>"}`.
fn parse_write(v: &Value) -> Result<(u64, Vec<u8>), Error> {
    let Some(o) = v.as_object() else {
        return Err(invalid("glimpse-write-disk", v, "is not of type 'object'"));
    };
    if let Some(k) = o.keys().find(|k| *k != "offset" && *k != "data") {
        return Err(invalid(
            "glimpse-write-disk",
            v,
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    let offset = o.get("offset").and_then(Value::as_u64).ok_or_else(|| {
        invalid(
            "offset",
            o.get("offset").unwrap_or(&Value::Null),
            "must be an integer ≥ 0",
        )
    })?;
    let text = o.get("data").and_then(Value::as_str).ok_or_else(|| {
        invalid(
            "data",
            o.get("data").unwrap_or(&Value::Null),
            "must be a base64 string",
        )
    })?;
    let data =
        base64_decode(text).ok_or_else(|| invalid("data", &json!(text), "is not valid base64"))?;
    if data.is_empty() || data.len() > MAX_WRITE {
        return Err(invalid(
            "data",
            &json!(text),
            &format!("must decode to 1 to {MAX_WRITE} bytes"),
        ));
    }
    Ok((offset, data))
}

/// Standard base64 (RFC 4648, with padding) to bytes; `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aA==").unwrap(), b"h");
        assert!(base64_decode("aGk").is_none());
        assert!(base64_decode("a=Gk").is_none());
        assert!(base64_decode("aG*k").is_none());
    }
}

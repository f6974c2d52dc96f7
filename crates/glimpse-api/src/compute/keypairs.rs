//! `os-keypairs` ([`glimpse_core::compute::keypairs`]): the caller's key pairs.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/os-keypairs` | 200 `{"keypairs": [{"keypair": {name, public_key, fingerprint[, type]}}]}` |
//! | POST | `/os-keypairs` | 200 (201 from 2.2) `{"keypair": {name, public_key, fingerprint, user_id[, private_key][, type]}}` |
//! | GET | `/os-keypairs/{name}` | 200 `{"keypair": {…, id, user_id, created_at, updated_at, deleted, deleted_at}}` |
//! | DELETE | `/os-keypairs/{name}` | 202 (204 from 2.2) |
//!
//! `type` appears from microversion 2.2. Not served: another user's key pairs for admins
//! (`user_id`, 2.10) and paging (`limit`, `marker`, 2.35): the body may not name `user_id`
//! (400), and a list is always whole.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::compute::keypairs::{self, Keypair, NewKeypair};
use serde_json::{Value, json};

use super::servers::{invalid, object};
use super::views::api_time;
use super::{Base, R, reply};
use crate::dialect::{ApiResult, Caller, Nova};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route("/os-keypairs", get(list).post(create))
        .route("/os-keypairs/{name}", get(show).delete(remove))
}

/// The fields every view has; `type` from 2.2.
fn view(k: &Keypair, base: &Base) -> serde_json::Map<String, Value> {
    let mut v = serde_json::Map::new();
    v.insert("name".into(), json!(k.name));
    v.insert("public_key".into(), json!(k.public_key));
    v.insert("fingerprint".into(), json!(k.fingerprint));
    if base.version.at_least(2, 2) {
        v.insert("type".into(), json!(k.kind));
    }
    v
}

async fn list(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
) -> ApiResult<Nova> {
    let all = keypairs::list(&region, &caller).await?;
    let items: Vec<Value> = all
        .iter()
        .map(|k| json!({"keypair": view(k, &base)}))
        .collect();
    Ok(reply(StatusCode::OK, json!({ "keypairs": items })))
}

/// Parses `{"keypair": {"name", "public_key"?, "type"?}}` as Nova's schema does.
fn parse(body: &[u8], base: &Base) -> Result<NewKeypair, Error> {
    let top = object(body)?;
    let whole = Value::Object(top.clone());
    let Some(Value::Object(k)) = top.get("keypair") else {
        return Err(invalid(
            "keypair",
            &whole,
            "'keypair' is a required property",
        ));
    };
    let allowed: &[&str] = if base.version.at_least(2, 2) {
        &["name", "public_key", "type"]
    } else {
        &["name", "public_key"]
    };
    if let Some(extra) = k.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(invalid(
            "keypair",
            &Value::Object(k.clone()),
            &format!("Additional properties are not allowed ('{extra}' was unexpected)"),
        ));
    }
    let string = |field: &str| -> Result<Option<String>, Error> {
        match k.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(field, other, "is not of type 'string'")),
        }
    };
    let name = string("name")?.ok_or_else(|| {
        invalid(
            "keypair",
            &Value::Object(k.clone()),
            "'name' is a required property",
        )
    })?;
    Ok(NewKeypair {
        name,
        public_key: string("public_key")?,
        kind: string("type")?,
    })
}

async fn create(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Nova> {
    let body = crate::request::body(body)?;
    let new = parse(&body, &base)?;
    let (k, private_key) = keypairs::create(&region, &caller, new).await?;
    let mut v = view(&k, &base);
    v.insert("user_id".into(), json!(k.user_id));
    if let Some(p) = private_key {
        v.insert("private_key".into(), json!(p));
    }
    let status = if base.version.at_least(2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(status, json!({ "keypair": v })))
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    Path(name): Path<String>,
) -> ApiResult<Nova> {
    let k = keypairs::get(&region, &caller, &name).await?;
    let mut v = view(&k, &base);
    for (key, value) in [
        ("id", json!(k.id)),
        ("user_id", json!(k.user_id)),
        ("created_at", json!(api_time(k.created_at))),
        ("updated_at", Value::Null),
        ("deleted", json!(false)),
        ("deleted_at", Value::Null),
    ] {
        v.insert(key.into(), value);
    }
    Ok(reply(StatusCode::OK, json!({ "keypair": v })))
}

async fn remove(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    caller: Caller<Nova>,
    Path(name): Path<String>,
) -> ApiResult<Nova> {
    keypairs::delete(&region, &caller, &name).await?;
    if base.version.at_least(2, 2) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Ok(StatusCode::ACCEPTED.into_response())
    }
}

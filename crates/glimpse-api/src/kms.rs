//! The key manager (Huawei KMS's shape, docs/kms.md), mounted at `/<region>/kms`. Every
//! call is a POST with a JSON body under `/v1.0/{project_id}/kms/`:
//!
//! | action | body | answer |
//! |---|---|---|
//! | `create-key` | `key_alias`, `key_description?` | `{"key_info": {"key_id", "domain_id"}}` |
//! | `list-keys` | `key_state?`, `limit?`, `marker?` | `{"keys": [...], "key_details": [...], "next_marker", "truncated", "total"}` |
//! | `describe-key` | `key_id` | `{"key_info": {...}}` |
//! | `enable-key` / `disable-key` | `key_id` | `{"key_info": {"key_id", "key_state"}}` |
//! | `schedule-key-deletion` | `key_id`, `pending_days` (7–1096) | `{"key_id", "key_state"}` |
//! | `cancel-key-deletion` | `key_id` | `{"key_id", "key_state"}` |
//!
//! Errors: `{"error": {"error_code": "KMS.xxxx", "error_msg": "…"}}`. The path's project must
//! be the token's; another project's key is 404 (`KMS.0207`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use glimpse_core::Error;
use glimpse_core::kms::{self, KeyInfo, codes};
use glimpse_core::region::Region;
use glimpse_types::kms::{self as wire, Created, KeyDetails, KeyList, KeyState};
use serde_json::Value;

use crate::dialect::{ApiError, ApiResult, Body, Caller, Kms};

type R = Arc<Region>;

/// Routes mounted at `/<region>/kms`.
pub fn router(region: Arc<Region>) -> Router {
    Router::new()
        .route("/v1.0/{project_id}/kms/{action}", post(action))
        .fallback(fallback)
        .with_state(region)
}

fn bad(message: String) -> ApiError<Kms> {
    ApiError::new(Error::bad_request(message).with_code(codes::BAD_REQUEST))
}

fn time_ms(t: chrono::DateTime<chrono::Utc>) -> String {
    t.timestamp_millis().to_string()
}

/// Huawei's `key_info` of describe-key and list-keys.
fn info(k: &KeyInfo, realm: &str) -> KeyDetails {
    KeyDetails {
        creation_date: time_ms(k.created_at),
        default_key_flag: "0".into(),
        domain_id: k.project_id.clone(),
        expiration_time: String::new(),
        key_alias: k.alias.clone(),
        key_description: k.description.clone(),
        key_id: k.id.clone(),
        key_rotation_enabled: "false".into(),
        key_spec: "AES_256".into(),
        key_state: k.state.to_string(),
        key_type: "1".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
        origin: "kms".into(),
        realm: realm.into(),
        scheduled_deletion_date: k.deletion_date.map(time_ms).unwrap_or_default(),
        sys_enterprise_project_id: "0".into(),
    }
}

fn state(k: &KeyInfo) -> KeyState {
    KeyState {
        key_id: k.id.clone(),
        key_state: k.state.to_string(),
    }
}

fn answer(v: impl serde::Serialize) -> Result<Value, ApiError<Kms>> {
    serde_json::to_value(v).map_err(|e| ApiError::new(Error::internal(e)))
}

fn string(body: &Value, name: &str) -> Result<Option<String>, ApiError<Kms>> {
    match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(bad(format!("{name} must be a string, not {other}."))),
    }
}

/// A field that must be a JSON string when present (a name or a description: `123` is not
/// taken for `"123"`).
fn text(body: &Value, name: &str) -> Result<Option<String>, ApiError<Kms>> {
    match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(bad(format!("{name} must be a string, not {other}."))),
    }
}

fn key_id(body: &Value) -> Result<String, ApiError<Kms>> {
    string(body, "key_id")?.ok_or_else(|| bad("key_id is mandatory.".into()))
}

/// `POST /v1.0/{project_id}/kms/{action}`.
async fn action(
    State(region): State<R>,
    caller: Caller<Kms>,
    Path((_, action)): Path<(String, String)>,
    Body(doc, _): Body<Kms>,
) -> ApiResult<Kms> {
    if !doc.is_object() {
        return Err(bad("The request body must be a JSON object.".into()));
    }
    let k = &region.kms;
    let realm = region.name.as_str();
    let out = match action.as_str() {
        "create-key" => {
            let alias = text(&doc, "key_alias")?.unwrap_or_default();
            let desc = text(&doc, "key_description")?.unwrap_or_default();
            let key = k.create(&caller, &alias, &desc).await?;
            answer(wire::KeyInfo {
                key_info: Created {
                    domain_id: key.project_id,
                    key_id: key.id,
                },
            })?
        }
        "list-keys" => {
            let state = string(&doc, "key_state")?;
            if let Some(s) = &state
                && ![kms::ENABLED, kms::DISABLED, kms::PENDING_DELETION].contains(&s.as_str())
            {
                return Err(bad(format!(
                    "key_state {s} is not a key state: 2 (enabled), 3 (disabled) or 4 \
                     (pending deletion)."
                )));
            }
            let limit = match string(&doc, "limit")? {
                None => None,
                Some(l) => Some(
                    l.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| bad("limit must be a number from 1 to 1000.".into()))?,
                ),
            };
            let marker = match string(&doc, "marker")? {
                None => 0,
                Some(m) => m
                    .parse::<usize>()
                    .map_err(|_| bad("marker must be a number.".into()))?,
            };
            let all = k.list(&caller, state.as_deref()).await?;
            let total = all.len();
            let end = limit.map_or(total, |l| (marker + l).min(total));
            let page = all.get(marker.min(total)..end).unwrap_or_default();
            let truncated = end < total;
            answer(KeyList {
                key_details: page.iter().map(|k| info(k, realm)).collect(),
                keys: page.iter().map(|k| k.id.clone()).collect(),
                next_marker: if truncated {
                    end.to_string()
                } else {
                    String::new()
                },
                total,
                truncated: truncated.to_string(),
            })?
        }
        "describe-key" => {
            let key = k.describe(&caller, &key_id(&doc)?).await?;
            answer(wire::KeyInfo {
                key_info: info(&key, realm),
            })?
        }
        "enable-key" | "disable-key" => {
            let id = key_id(&doc)?;
            let key = if action == "enable-key" {
                k.enable(&caller, &id).await
            } else {
                k.disable(&caller, &id).await
            }?;
            answer(wire::KeyInfo {
                key_info: state(&key),
            })?
        }
        "schedule-key-deletion" => {
            let id = key_id(&doc)?;
            let days = string(&doc, "pending_days")?
                .and_then(|d| d.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        Error::bad_request("pending_days must be a number from 7 to 1096.")
                            .with_code(codes::BAD_PENDING_DAYS),
                    )
                })?;
            let key = k.schedule_deletion(&caller, &id, days).await?;
            answer(state(&key))?
        }
        "cancel-key-deletion" => {
            let key = k.cancel_deletion(&caller, &key_id(&doc)?).await?;
            answer(state(&key))?
        }
        _ => {
            return Err(ApiError::new(Error::not_found(format!(
                "There is no KMS action {action}."
            ))));
        }
    };
    Ok((StatusCode::OK, axum::Json(out)).into_response())
}

async fn fallback() -> ApiError<Kms> {
    ApiError::new(Error::not_found("The requested resource was not found."))
}

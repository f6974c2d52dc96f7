//! Glance's (deprecated) tasks API, minimally, under `/v2/tasks`. Glimpse runs no tasks: its
//! image service never fetches user-supplied URLs (it has no outbound network for them by
//! design), so every `import` task is refused at creation with 400, as a newer Glance refuses
//! an `import_from` its URI filter rejects, and no other task type can be created. The list
//! is therefore empty, every task id is 404, and `DELETE` is Glance's 405. The whole API is
//! admin only (`tasks_api_access`, 403 otherwise), checked before the body is read.
//! Stateless; nothing is stored.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::images::policy::denied;
use glimpse_core::region::Region;
use serde::Serialize;
use serde_json::Value;

use super::view::json_response;
use super::{ApiState, glance};
use crate::dialect::{ApiError, ApiResult, Caller, Dialect, Glance};
use crate::errors::GlanceMessage;

type RegionState = State<Arc<Region>>;

/// Routes under `/v2`.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/tasks", get(list).post(create))
        .route("/tasks/{task_id}", get(show).delete(remove))
        .route("/images/{id}/tasks", get(image_tasks))
}

/// The methods each tasks route allows (for 405's `Allow`), by route below `/v2`.
pub(crate) fn allowed_methods(tail: &str) -> Option<&'static str> {
    match tail {
        "/tasks" => Some("GET, POST"),
        "/tasks/{task_id}" => Some("GET, DELETE"),
        "/images/{id}/tasks" => Some("GET"),
        _ => None,
    }
}

/// `tasks_api_access`: admins only (and a project-scoped token).
fn access(caller: &glimpse_core::auth::Caller) -> Result<(), ApiError<Glance>> {
    caller.project()?;
    if caller.is_admin() {
        Ok(())
    } else {
        Err(glance(denied("tasks_api_access")))
    }
}

const TASK_KEYS: &[&str] = &[
    "id",
    "type",
    "status",
    "input",
    "result",
    "owner",
    "message",
    "image_id",
    "request_id",
    "user_id",
    "expires_at",
    "created_at",
    "updated_at",
    "self",
    "schema",
];

const TASK_TYPES: &[&str] = &["import", "api_image_import", "location_import"];

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::bad_request(format!(
        "Provided object does not match schema 'task': {reason}"
    ))
}

/// Why a task document is refused: Glance's checks of the body, then Glimpse's refusal to
/// fetch anything. Always an error — there is no task Glimpse would run.
fn refusal(body: &Value) -> Error {
    let Value::Object(task) = body else {
        return invalid(format!("{body} is not of type 'object'"));
    };
    for key in ["type", "input"] {
        if !task.contains_key(key) {
            return Error::bad_request(format!("Task '{key}' is required"));
        }
    }
    if let Some(extra) = task.keys().find(|k| !TASK_KEYS.contains(&k.as_str())) {
        return invalid(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        ));
    }
    let ty = match &task["type"] {
        Value::String(t) if TASK_TYPES.contains(&t.as_str()) => t.as_str(),
        other => {
            return invalid(format!(
                "{other} is not one of ['import', 'api_image_import', 'location_import']"
            ));
        }
    };
    let input = match &task["input"] {
        Value::Object(i) => Some(i),
        Value::Null => None,
        other => return invalid(format!("{other} is not of type 'null', 'object'")),
    };
    if ty != "import" {
        return Error::bad_request(format!(
            "Tasks of type {ty} cannot be created through this API."
        ));
    }
    match input.and_then(|i| i.get("import_from")) {
        None | Some(Value::Null) => Error::bad_request("Invalid location: None"),
        Some(Value::String(uri)) if uri.is_empty() => Error::bad_request("Invalid location: "),
        Some(Value::String(uri)) if uri.starts_with("http://") || uri.starts_with("https://") => {
            Error::bad_request(format!(
                "URI for legacy import task does not pass filtering: {uri}"
            ))
        }
        Some(Value::String(uri))
            if uri.starts_with("file:///") || uri.starts_with("filesystem:///") =>
        {
            Error::bad_request(
                "File based imports are not allowed. Please use a non-local source of image data.",
            )
        }
        Some(Value::String(_)) => Error::bad_request(
            "The given uri is not valid. Please specify a valid uri from the following list of \
             supported uri ['http']",
        ),
        Some(other) => Error::bad_request(format!("Invalid location: {other}")),
    }
}

/// `POST /v2/tasks`: always refused (see the module docs). Not routed yet (see [`routes`]).
async fn create(caller: Caller<Glance>, body: Result<Bytes, BytesRejection>) -> ApiResult<Glance> {
    access(&caller)?;
    let body: Value = Glance::json(&crate::request::body(body)?)?;
    Err(glance(refusal(&body)))
}

/// A page of tasks, keys in Glance's order.
#[derive(Serialize)]
struct TaskList {
    tasks: Vec<Value>,
    first: String,
    schema: &'static str,
}

fn task_not_found(id: &str) -> Error {
    Error::not_found(format!("Task with the given id {id} was not found"))
}

/// `GET /v2/tasks`: the (empty) list, after Glance's checks of the parameters.
async fn list(caller: Caller<Glance>, RawQuery(query): RawQuery) -> ApiResult<Glance> {
    access(&caller)?;
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    for (k, v) in &pairs {
        let bad = |m: String| Err(glance(Error::bad_request(m)));
        match k.as_str() {
            "sort_dir" if v != "asc" && v != "desc" => {
                return bad(format!("Invalid sort direction: {v}"));
            }
            "status"
                if !v.is_empty()
                    && !["pending", "processing", "success", "failure"].contains(&v.as_str()) =>
            {
                return bad(format!("Invalid status value: {v}"));
            }
            "type" if !v.is_empty() && v != "import" => {
                return bad(format!("Invalid type value: {v}"));
            }
            "limit" => match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => {}
                Ok(_) => return bad("limit param must be positive".into()),
                Err(_) => return bad("limit param must be an integer".into()),
            },
            "marker" if uuid::Uuid::parse_str(v).is_err() => {
                return bad("Invalid marker format".into());
            }
            // No task exists, so no marker can be found.
            "marker" => return Err(glance(Error::bad_request(task_not_found(v).message))),
            _ => {}
        }
    }
    pairs.retain(|(k, _)| k != "marker");
    let first = if pairs.is_empty() {
        "/v2/tasks".to_string()
    } else {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        format!("/v2/tasks?{q}")
    };
    Ok(json_response(
        StatusCode::OK,
        &TaskList {
            tasks: Vec::new(),
            first,
            schema: "/v2/schemas/tasks",
        },
    ))
}

/// `GET /v2/images/{id}/tasks` (Glance 2.12): the image's import tasks, always none here;
/// 404 for an image the caller cannot see. Tempest waits on it after a server snapshot.
async fn image_tasks(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(id): Path<String>,
) -> ApiResult<Glance> {
    glimpse_core::images::get(&region, &caller, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "tasks": [] }),
    ))
}

/// `GET /v2/tasks/{id}`: 404, there are no tasks.
async fn show(caller: Caller<Glance>, Path(id): Path<String>) -> ApiResult<Glance> {
    access(&caller)?;
    Err(glance(task_not_found(&id)))
}

/// `DELETE /v2/tasks/{id}`: Glance's 405 (tasks expire on their own).
async fn remove(caller: Caller<Glance>, Path(_id): Path<String>) -> ApiResult<Glance> {
    access(&caller)?;
    let msg = "This operation is currently not permitted on Glance Tasks. They are auto deleted \
               after reaching the time based on their expires_at property.";
    let line = "405 Method Not Allowed";
    let body = format!(
        "<html>\n <head>\n  <title>{line}</title>\n </head>\n <body>\n  <h1>{line}</h1>\n  \
         {msg}\n </body>\n</html>"
    );
    let mut r = (StatusCode::METHOD_NOT_ALLOWED, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    r.extensions_mut().insert(GlanceMessage(msg.to_string()));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glimpse_core::Kind;
    use serde_json::json;

    #[test]
    fn every_task_is_refused_with_400() {
        for body in [
            json!([]),
            json!({"input": {}}),
            json!({"type": "import"}),
            json!({"type": "import", "input": {}, "x": 1}),
            json!({"type": "export", "input": {}}),
            json!({"type": "import", "input": 3}),
            json!({"type": "api_image_import", "input": {}}),
            json!({"type": "import", "input": {}}),
            json!({"type": "import", "input": {"import_from": "http://example.com/x.qcow2"}}),
            json!({"type": "import", "input": {"import_from": "https://example.com/x.qcow2"}}),
            json!({"type": "import", "input": {"import_from": "file:///etc/passwd"}}),
            json!({"type": "import", "input": {"import_from": "ftp://h/x"}}),
            json!({"type": "import", "input": {"import_from": 5}}),
        ] {
            assert_eq!(refusal(&body).kind, Kind::BadRequest, "{body}");
        }
        let e = refusal(&json!({"type": "import", "input": {"import_from": "http://h/x.qcow2"}}));
        assert_eq!(
            e.message,
            "URI for legacy import task does not pass filtering: http://h/x.qcow2"
        );
    }

    #[test]
    fn allowed_methods_of_task_routes() {
        assert_eq!(allowed_methods("/tasks"), Some("GET, POST"));
        assert_eq!(allowed_methods("/tasks/{task_id}"), Some("GET, DELETE"));
        assert_eq!(allowed_methods("/images"), None);
    }
}

//! `/v3/roles` (list with `name` filter, create, show, delete; the built-in roles cannot be
//! deleted), grants on projects (`PUT/GET/HEAD/DELETE /v3/projects/{p}/users/{u}/roles/{r}`,
//! `GET /v3/projects/{p}/users/{u}/roles`) and `GET /v3/role_assignments` (filters `user.id`,
//! `scope.project.id`, `role.id`; `include_names`; `effective` expands implied roles).
//! Everything here needs the admin role.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use glimpse_core::Error;
use glimpse_core::identity::{Assignment, AssignmentFilter, Identity, policy};
use glimpse_types::Role;
use serde_json::{Value, json};

use super::records;
use super::{
    Id, Reply, body_object, list_links, listing, no_content, one, opt_string, query, query_bool,
    render,
};
use crate::dialect::{Caller, Keystone};

pub async fn list(State(id): State<Id>, RawQuery(q): RawQuery, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "list_roles")?;
    let q = query(q.as_deref());
    let roles = id.list_roles(q.get("name").map(String::as_str)).await?;
    records(&id, "roles", &roles, render::role, "/roles")
}

pub async fn create(State(id): State<Id>, me: Caller<Keystone>, body: Bytes) -> Reply {
    policy::admin(&me, "create_role")?;
    let m = body_object(&body, "role")?;
    if opt_string(&m, "domain_id")?.is_some() {
        return Err(Error::bad_request("Glimpse has no domain-specific roles.").into());
    }
    let name = opt_string(&m, "name")?
        .ok_or_else(|| Error::bad_request("Invalid input: 'name' is a required property."))?;
    let r = id
        .create_role(&name, opt_string(&m, "description")?)
        .await?;
    one(StatusCode::CREATED, "role", render::role(&id, &r))
}

pub async fn show(State(id): State<Id>, Path(rid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "get_role")?;
    let r = id.get_role(&rid).await?;
    one(StatusCode::OK, "role", render::role(&id, &r))
}

pub async fn delete(State(id): State<Id>, Path(rid): Path<String>, me: Caller<Keystone>) -> Reply {
    policy::admin(&me, "delete_role")?;
    id.delete_role(&rid).await?;
    Ok(no_content())
}

/// `PUT` (grant), `GET`/`HEAD` (check) and `DELETE` (revoke) of a project role of a user: 204.
pub async fn grant(
    method: Method,
    State(id): State<Id>,
    Path((p, u, r)): Path<(String, String, String)>,
    me: Caller<Keystone>,
) -> Reply {
    if method == Method::PUT {
        policy::admin(&me, "create_grant")?;
        id.assign_role(&u, &p, &r).await?;
    } else if method == Method::DELETE {
        policy::admin(&me, "revoke_grant")?;
        id.unassign_role(&u, &p, &r).await?;
    } else {
        policy::admin(&me, "check_grant")?;
        id.check_assignment(&u, &p, &r).await?;
    }
    Ok(no_content())
}

pub async fn grants(
    State(id): State<Id>,
    Path((p, u)): Path<(String, String)>,
    me: Caller<Keystone>,
) -> Reply {
    policy::admin(&me, "list_grants")?;
    let roles = id.project_user_roles(&u, &p).await?;
    let path = format!("/projects/{p}/users/{u}/roles");
    records(&id, "roles", &roles, render::role, &path)
}

/// One row of the listing: the assignment and, for implied roles, the role that implied it.
struct Row {
    a: Assignment,
    prior_role: Option<String>,
}

pub async fn assignments(
    State(id): State<Id>,
    RawQuery(q): RawQuery,
    me: Caller<Keystone>,
) -> Reply {
    policy::admin(&me, "list_role_assignments")?;
    let q = query(q.as_deref());
    let include_names = query_bool(&q, "include_names")?.unwrap_or(false);
    let effective = query_bool(&q, "effective")?.unwrap_or(false);
    let links = list_links(&id, "/role_assignments");
    // Groups, domain and system scopes and inheritance do not exist here.
    if [
        "group.id",
        "scope.domain.id",
        "scope.system",
        "scope.OS-INHERIT:inherited_to",
    ]
    .iter()
    .any(|k| q.contains_key(*k))
    {
        return listing("role_assignments", json!([]), links);
    }
    let role_filter = q.get("role.id").cloned();
    let filter = AssignmentFilter {
        user_id: q.get("user.id").cloned(),
        project_id: q.get("scope.project.id").cloned(),
        role_id: if effective { None } else { role_filter.clone() },
    };
    let roles: HashMap<String, String> = id
        .list_roles(None)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    for a in id.list_assignments(&filter).await? {
        // A direct grant wins over the same role implied by another grant.
        rows.retain(|r| r.a != a);
        rows.push(Row {
            a: a.clone(),
            prior_role: None,
        });
        if effective {
            for implied in implied_ids(&roles, &a.role_id) {
                let row = Row {
                    a: Assignment {
                        role_id: implied,
                        ..a.clone()
                    },
                    prior_role: Some(a.role_id.clone()),
                };
                if !rows.iter().any(|r| r.a == row.a) {
                    rows.push(row);
                }
            }
        }
    }
    if let Some(rf) = &role_filter {
        rows.retain(|r| &r.a.role_id == rf);
    }
    let mut names = Names::default();
    let mut out = Vec::new();
    for r in &rows {
        out.push(assignment_json(&id, &roles, &mut names, r, include_names).await?);
    }
    listing("role_assignments", json!(out), links)
}

/// The ids of the roles `role_id` implies (not itself).
fn implied_ids(roles: &HashMap<String, String>, role_id: &str) -> Vec<String> {
    let Some(role) = roles.get(role_id).and_then(|n| Role::parse(n)) else {
        return vec![];
    };
    role.implied()
        .iter()
        .skip(1)
        .filter_map(|imp| {
            roles
                .iter()
                .find(|(_, n)| n.as_str() == imp.as_str())
                .map(|(id, _)| id.clone())
        })
        .collect()
}

#[derive(Default)]
struct Names {
    users: HashMap<String, String>,
    projects: HashMap<String, String>,
}

/// Looks `key`'s name up (an empty name if that fails) unless `cache` has it already.
async fn name_once(
    cache: &mut HashMap<String, String>,
    key: &str,
    lookup: impl Future<Output = Result<String, Error>>,
) {
    if !cache.contains_key(key) {
        cache.insert(key.to_string(), lookup.await.unwrap_or_default());
    }
}

async fn assignment_json(
    id: &Identity,
    roles: &HashMap<String, String>,
    names: &mut Names,
    r: &Row,
    include_names: bool,
) -> Result<Value, Error> {
    let a = &r.a;
    let base = &id.settings.identity_url;
    let mut links = json!({"assignment": format!(
        "{base}/projects/{}/users/{}/roles/{}", a.project_id, a.user_id,
        r.prior_role.as_deref().unwrap_or(&a.role_id))});
    if let Some(prior) = &r.prior_role {
        links["prior_role"] = json!(format!("{base}/roles/{prior}"));
    }
    let mut v = json!({
        "role": {"id": a.role_id},
        "user": {"id": a.user_id},
        "scope": {"project": {"id": a.project_id}},
        "links": links,
    });
    if include_names {
        let user = async { id.get_user(&a.user_id).await.map(|u| u.name) };
        name_once(&mut names.users, &a.user_id, user).await;
        let project = async { id.get_project(&a.project_id).await.map(|p| p.name) };
        name_once(&mut names.projects, &a.project_id, project).await;
        v["role"]["name"] = json!(roles.get(&a.role_id).cloned().unwrap_or_default());
        v["user"]["name"] = json!(names.users[&a.user_id]);
        v["user"]["domain"] = render::domain_ref();
        v["scope"]["project"]["name"] = json!(names.projects[&a.project_id]);
        v["scope"]["project"]["domain"] = render::domain_ref();
    }
    Ok(v)
}

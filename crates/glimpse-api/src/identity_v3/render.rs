//! Keystone's JSON shapes for identity records and tokens (`{"project": {..., "links":
//! {"self": …}}}` and so on). Pure functions; nothing to recover on a crash.

use glimpse_core::identity::{
    DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Identity, Project, RegionRecord, RoleRecord, TokenInfo,
    User,
};
use glimpse_types::keystone_time;
use serde_json::{Map, Value, json};

fn self_link(identity: &Identity, path: &str) -> Value {
    json!({"self": format!("{}{path}", identity.settings.identity_url)})
}

/// Extra attributes first, then the record's own fields over them.
fn merged(extra: &Map<String, Value>, own: Value) -> Value {
    let mut out = extra.clone();
    if let Value::Object(own) = own {
        for (k, v) in own {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

pub fn domain_ref() -> Value {
    json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME})
}

pub fn domain(identity: &Identity) -> Value {
    json!({
        "id": DEFAULT_DOMAIN_ID,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "The default domain",
        "enabled": true,
        "tags": [],
        "options": {},
        "links": self_link(identity, &format!("/domains/{DEFAULT_DOMAIN_ID}")),
    })
}

pub fn project(identity: &Identity, p: &Project) -> Value {
    let mut own = json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.domain_id,
        "is_domain": false,
        "home_region": p.home_region,
        "links": self_link(identity, &format!("/projects/{}", p.id)),
    });
    for (k, default) in [("tags", json!([])), ("options", json!({}))] {
        if !p.extra.contains_key(k) {
            own[k] = default;
        }
    }
    merged(&p.extra, own)
}

pub fn user(identity: &Identity, u: &User) -> Value {
    let mut own = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": null,
        "links": self_link(identity, &format!("/users/{}", u.id)),
    });
    if !u.extra.contains_key("options") {
        own["options"] = json!({});
    }
    if let Some(p) = &u.default_project_id {
        own["default_project_id"] = json!(p);
    }
    if let Some(e) = &u.email {
        own["email"] = json!(e);
    }
    if !u.description.is_empty() {
        own["description"] = json!(u.description);
    }
    merged(&u.extra, own)
}

pub fn role(identity: &Identity, r: &RoleRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": null,
        "description": r.description,
        "options": {},
        "links": self_link(identity, &format!("/roles/{}", r.id)),
    })
}

pub fn region(identity: &Identity, r: &RegionRecord) -> Value {
    json!({
        "id": r.id,
        "description": r.description,
        "parent_region_id": r.parent_region_id,
        "links": self_link(identity, &format!("/regions/{}", r.id)),
    })
}

/// The token body of tempest.md §3: user, project, roles and (when asked) the catalog.
pub fn token(identity: &Identity, info: &TokenInfo, with_catalog: bool) -> Value {
    let mut t = json!({
        "methods": info.methods,
        "user": {"id": info.user_id, "name": info.user_name, "domain": domain_ref(),
                 "password_expires_at": null},
        "audit_ids": info.audit_ids,
        "expires_at": keystone_time(info.expires_at),
        "issued_at": keystone_time(info.issued_at),
    });
    if let Some(p) = &info.project {
        t["project"] = json!({"id": p.id, "name": p.name, "domain": domain_ref()});
        t["is_domain"] = json!(false);
        t["roles"] = Value::Array(
            info.roles
                .iter()
                .map(|r| json!({"id": r.id, "name": r.name}))
                .collect(),
        );
        if with_catalog {
            t["catalog"] =
                serde_json::to_value(identity.catalog(Some(&p.id))).unwrap_or_else(|_| json!([]));
        }
    }
    json!({"token": t})
}

//! Volume bodies in Cinder's shape (`cinder/api/v3/views/volumes.py`): the summary of a list,
//! the detail of show/list-detail (with `os-vol-tenant-attr:tenant_id` and, for admins, the
//! host and migration attributes), and the create answer (the detail without the `os-vol-*`
//! extension attributes, which Tempest's create schema forbids). Times in Cinder's
//! `yyyy-mm-ddThh:mm:ss.ssssss`.

use super::upload::cinder_time;
use glimpse_core::auth::Caller;
use glimpse_core::region::Region;
use glimpse_core::volumes::{Attachment, Volume};
use serde_json::{Map, Value, json};

fn links(region: &Region, api: &str, v: &Volume) -> Value {
    let base = format!("{}/volume", region.url);
    json!([
        {"href": format!("{base}/{api}/{}/volumes/{}", v.project_id, v.id), "rel": "self"},
        {"href": format!("{base}/{}/volumes/{}", v.project_id, v.id), "rel": "bookmark"},
    ])
}

/// One attachment as Cinder lists it in a volume.
pub fn attachment(a: &Attachment) -> Value {
    json!({
        "server_id": a.server_id,
        "attachment_id": a.id,
        "attached_at": a.attached_at.map(cinder_time),
        "host_name": null,
        "volume_id": a.volume_id,
        "device": a.mountpoint,
        "id": a.volume_id,
    })
}

/// `{"id", "links", "name"}` of a plain list.
pub fn summary(region: &Region, api: &str, v: &Volume) -> Value {
    json!({"id": v.id, "links": links(region, api, v), "name": v.name})
}

/// The create answer: every core field, no extension attributes.
pub fn created(region: &Region, api: &str, v: &Volume) -> Value {
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        .filter(|a| a.attach_status == "attached")
        .map(attachment)
        .collect();
    let mut m = Map::new();
    m.insert("attachments".into(), json!(attachments));
    m.insert("availability_zone".into(), json!(v.availability_zone));
    m.insert(
        "bootable".into(),
        json!(if v.bootable { "true" } else { "false" }),
    );
    m.insert("consistencygroup_id".into(), Value::Null);
    m.insert("created_at".into(), json!(cinder_time(v.created_at)));
    m.insert("description".into(), json!(v.description));
    m.insert("encrypted".into(), json!(false));
    m.insert("id".into(), json!(v.id));
    m.insert("links".into(), links(region, api, v));
    m.insert("metadata".into(), json!(v.metadata));
    m.insert("migration_status".into(), Value::Null);
    m.insert("multiattach".into(), json!(false));
    m.insert("name".into(), json!(v.name));
    m.insert("replication_status".into(), Value::Null);
    m.insert("size".into(), json!(v.size_gb));
    m.insert("snapshot_id".into(), Value::Null);
    m.insert("source_volid".into(), Value::Null);
    m.insert("status".into(), json!(v.status.as_str()));
    m.insert("updated_at".into(), json!(v.updated_at.map(cinder_time)));
    m.insert("user_id".into(), json!(v.user_id));
    m.insert("volume_type".into(), json!(v.volume_type));
    Value::Object(m)
}

/// Show and list-detail.
pub fn detail(region: &Region, api: &str, caller: &Caller, v: &Volume) -> Value {
    let mut d = created(region, api, v);
    let m = d.as_object_mut().expect("an object");
    m.insert("os-vol-tenant-attr:tenant_id".into(), json!(v.project_id));
    if caller.is_admin() {
        m.insert(
            "os-vol-host-attr:host".into(),
            json!(format!("{}@glimpse#volumes", region.name)),
        );
        m.insert("os-vol-mig-status-attr:migstat".into(), Value::Null);
        m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
    }
    if !v.image_metadata.is_empty() {
        m.insert("volume_image_metadata".into(), json!(v.image_metadata));
    }
    d
}

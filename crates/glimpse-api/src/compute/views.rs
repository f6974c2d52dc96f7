//! Nova's JSON views of servers, flavors and (the image proxy's) images, per microversion,
//! with exactly the keys Nova (and Tempest's response schemas) allow.

use chrono::{DateTime, Utc};
use glimpse_core::compute::{Flavor, Server, VmState};
use glimpse_core::images::Image;
use glimpse_core::region::Region;
use glimpse_types::ImageStatus;
use serde_json::{Map, Value, json};

use super::{Base, base_url, bookmark_url};

/// Nova's API time (`2012-08-20T21:11:09Z`).
pub fn api_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Nova's `OS-SRV-USG:launched_at` (`2012-08-20T21:11:10.000000`, no zone).
fn usage_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Nova's self + bookmark links for `/<collection>/<id>`.
pub fn links(region: &Region, base: &Base, collection: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/{collection}/{id}", base_url(region, base))},
        {"rel": "bookmark", "href": format!("{}/{collection}/{id}", bookmark_url(region, base))},
    ])
}

fn flavor_ref(region: &Region, base: &Base, s: &Server) -> Value {
    let Ok(f) = glimpse_core::compute::flavor(&s.flavor_id) else {
        return json!({});
    };
    if base.version.at_least(2, 47) {
        return json!({
            "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": 0, "swap": 0,
            "original_name": f.name, "extra_specs": {},
        });
    }
    json!({"id": f.id, "links": [
        {"rel": "bookmark", "href": format!("{}/flavors/{}", bookmark_url(region, base), f.id)}
    ]})
}

/// The short form of `GET /servers`.
pub fn server_brief(region: &Region, base: &Base, s: &Server) -> Value {
    json!({"id": s.id, "links": links(region, base, "servers", &s.id), "name": s.name})
}

/// The full form of `GET /servers/{id}` and `/servers/detail`.
pub fn server(region: &Region, base: &Base, s: &Server) -> Value {
    let metadata: Map<String, Value> = s
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": s.status(),
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": metadata,
        "hostId": s.host_id(&format!("glimpse-{}", region.name)),
        "image": {"id": s.image_id, "links": [
            {"rel": "bookmark", "href": format!("{}/images/{}", bookmark_url(region, base), s.image_id)}
        ]},
        "flavor": flavor_ref(region, base, s),
        "created": api_time(s.created_at),
        "updated": api_time(s.updated_at),
        "addresses": {},
        "accessIPv4": s.access_ipv4,
        "accessIPv6": s.access_ipv6,
        "links": links(region, base, "servers", &s.id),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": s.launched_at.map(usage_time),
        "OS-SRV-USG:terminated_at": Value::Null,
        "security_groups": [{"name": "default"}],
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state.as_str(),
        "OS-EXT-STS:power_state": s.power_state,
        "os-extended-volumes:volumes_attached": [],
    });
    let o = v.as_object_mut().expect("object");
    if matches!(s.vm_state, VmState::Building | VmState::Active) {
        o.insert(
            "progress".into(),
            json!(if s.vm_state == VmState::Active {
                100
            } else {
                0
            }),
        );
    }
    if s.vm_state == VmState::Error {
        o.insert(
            "fault".into(),
            json!({
                "code": 500,
                "created": api_time(s.updated_at),
                "message": s.fault.clone().unwrap_or_else(|| "Unknown error".into()),
            }),
        );
    }
    if base.version.at_least(2, 9) {
        o.insert("locked".into(), json!(false));
    }
    if base.version.at_least(2, 19) {
        o.insert("description".into(), Value::Null);
    }
    if base.version.at_least(2, 26) {
        o.insert("tags".into(), json!([]));
    }
    v
}

/// Keys of the full view that `PUT /servers/{id}` does not answer with (Nova's update view
/// is the basic one).
const DETAIL_ONLY: [&str; 10] = [
    "key_name",
    "security_groups",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "OS-EXT-AZ:availability_zone",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
    "config_drive",
];

/// The view `PUT /servers/{id}` answers with.
pub fn server_updated(region: &Region, base: &Base, s: &Server) -> Value {
    let mut v = server(region, base, s);
    if let Some(o) = v.as_object_mut() {
        for k in DETAIL_ONLY {
            o.remove(k);
        }
    }
    v
}

/// One flavor; `detail` adds the sizes and extension attributes.
pub fn flavor(region: &Region, base: &Base, f: &Flavor, detail: bool) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": links(region, base, "flavors", f.id)});
    if detail {
        let o = v.as_object_mut().expect("object");
        for (k, val) in [
            ("ram", json!(f.ram)),
            ("disk", json!(f.disk)),
            ("vcpus", json!(f.vcpus)),
            ("swap", json!("")),
            ("rxtx_factor", json!(1.0)),
            ("OS-FLV-EXT-DATA:ephemeral", json!(0)),
            ("OS-FLV-DISABLED:disabled", json!(false)),
            ("os-flavor-access:is_public", json!(true)),
        ] {
            o.insert(k.into(), val);
        }
    }
    v
}

/// Nova's image status words (`nova/api/openstack/compute/views/images.py`).
fn image_status(s: ImageStatus) -> (&'static str, i64) {
    match s {
        ImageStatus::Queued => ("SAVING", 25),
        ImageStatus::Saving => ("SAVING", 50),
        ImageStatus::Active => ("ACTIVE", 100),
        ImageStatus::Killed => ("ERROR", 0),
        ImageStatus::Deleted | ImageStatus::PendingDelete => ("DELETED", 0),
        _ => ("UNKNOWN", 0),
    }
}

/// An image's links: self, bookmark, and the Glance URL as `alternate`.
pub fn image_links(region: &Region, base: &Base, id: &str) -> Value {
    let mut l = links(region, base, "images", id);
    if let Some(arr) = l.as_array_mut() {
        arr.push(json!({
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": format!("{}/images/{id}", region.image_url()),
        }));
    }
    l
}

/// The image proxy's view of a Glance image.
pub fn image(region: &Region, base: &Base, img: &Image) -> Value {
    let (status, progress) = image_status(img.status);
    let metadata: Map<String, Value> = img
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let l = image_links(region, base, &img.id);
    let mut v = json!({
        "id": img.id,
        "name": img.name,
        "status": status,
        "progress": progress,
        "minDisk": img.min_disk,
        "minRam": img.min_ram,
        "metadata": metadata,
        "created": api_time(img.created_at),
        "updated": api_time(img.updated_at),
        "links": l,
        "OS-EXT-IMG-SIZE:size": img.size,
    });
    if let Some(server) = img.property("instance_uuid") {
        v["server"] = json!({"id": server, "links": links(region, base, "servers", server)});
    }
    v
}

//! The service catalog, derived from configuration (never stored): for every configured
//! region, the identity, image, compute, volume (volumev3 and block-storage) and IMS services,
//! each with a public, internal and admin endpoint. Service and endpoint ids are stable hashes
//! of (service type) and (region, service type, interface), so they survive restarts and are
//! the same on every identity node. Stateless: nothing to recover on a crash.

use serde::Serialize;
use sha2::Digest;

use super::CatalogRegion;

pub const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

/// One service: `(type, name, description)`.
pub const SERVICES: [(&str, &str, &str); 7] = [
    ("identity", "keystone", "Identity Service"),
    ("image", "glance", "Image Service"),
    ("compute", "nova", "Compute Service"),
    ("volumev3", "cinderv3", "Block Storage Service v3"),
    ("block-storage", "cinder", "Block Storage Service"),
    ("ims", "ims", "Image Management Service"),
    ("kms", "kms", "Key Management Service"),
];

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub interface: String,
    pub region: String,
    pub region_id: String,
    pub url: String,
    /// Not part of the token body; kept for `GET /v3/endpoints`.
    #[serde(skip)]
    pub service_id: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    #[serde(skip)]
    pub description: String,
}

fn stable_id(parts: &[&str]) -> String {
    let digest = sha2::Sha256::digest(parts.join("\u{1f}").as_bytes());
    hex::encode(&digest[..16])
}

pub fn service_id(service_type: &str) -> String {
    stable_id(&["service", service_type])
}

pub fn endpoint_id(region: &str, service_type: &str, interface: &str) -> String {
    stable_id(&["endpoint", region, service_type, interface])
}

/// The URL of one service in one region. `project_id` fills Cinder's per-project URL; without
/// one (admin listings) the Keystone template `$(project_id)s` stays in.
fn service_url(
    identity_url: &str,
    region: &CatalogRegion,
    service_type: &str,
    project_id: Option<&str>,
) -> String {
    let base = region.url.trim_end_matches('/');
    match service_type {
        "identity" => identity_url.trim_end_matches('/').to_string(),
        "image" => format!("{base}/image"),
        "compute" => format!("{base}/compute/v2.1"),
        "volumev3" | "block-storage" => format!(
            "{base}/volume/v3/{}",
            project_id.unwrap_or("$(project_id)s")
        ),
        "ims" => format!("{base}/ims"),
        "kms" => format!("{base}/kms"),
        other => format!("{base}/{other}"),
    }
}

/// The region service (`[[regions]] services`) that a catalog service type belongs to;
/// `None` for identity, which is not a region's.
pub fn region_service(service_type: &str) -> Option<&'static str> {
    match service_type {
        "image" => Some("image"),
        "compute" => Some("compute"),
        "volumev3" | "block-storage" => Some("volume"),
        "ims" => Some("ims"),
        "kms" => Some("kms"),
        _ => None,
    }
}

/// The URL of one service in one region, as registered in a Keystone catalog (Cinder's
/// per-project URL with Keystone's `$(project_id)s` template).
pub fn registered_url(identity_url: &str, region: &CatalogRegion, service_type: &str) -> String {
    service_url(identity_url, region, service_type, None)
}

/// The whole catalog as a token carries it: every service each region serves (identity in
/// every region); a service no region serves is left out.
pub fn build(
    identity_url: &str,
    regions: &[CatalogRegion],
    project_id: Option<&str>,
) -> Vec<Service> {
    SERVICES
        .iter()
        .filter_map(|(ty, name, description)| {
            let sid = service_id(ty);
            let endpoints: Vec<Endpoint> = regions
                .iter()
                .filter(|r| region_service(ty).is_none_or(|s| r.services.iter().any(|x| x == s)))
                .flat_map(|r| {
                    INTERFACES.iter().map(|iface| Endpoint {
                        id: endpoint_id(&r.name, ty, iface),
                        interface: (*iface).to_string(),
                        region: r.name.clone(),
                        region_id: r.name.clone(),
                        url: service_url(identity_url, r, ty, project_id),
                        service_id: sid.clone(),
                    })
                })
                .collect();
            (!endpoints.is_empty()).then(|| Service {
                id: sid,
                service_type: (*ty).to_string(),
                name: (*name).to_string(),
                endpoints,
                description: (*description).to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<CatalogRegion> {
        ["region-one", "region-two"]
            .iter()
            .map(|n| CatalogRegion {
                name: n.to_string(),
                url: format!("http://h:1/{n}"),
                services: crate::config::REGION_SERVICES.map(String::from).to_vec(),
            })
            .collect()
    }

    #[test]
    fn an_image_only_region_lists_only_its_services() {
        let mut rs = regions();
        rs[1].services = vec!["image".into(), "ims".into(), "kms".into()];
        let c = build("http://h:1/identity/v3", &rs, Some("p1"));
        let regions_of = |ty: &str| -> Vec<String> {
            let s = c.iter().find(|s| s.service_type == ty).unwrap();
            let mut r: Vec<_> = s.endpoints.iter().map(|e| e.region.clone()).collect();
            r.dedup();
            r
        };
        assert_eq!(regions_of("compute"), ["region-one"]);
        assert_eq!(regions_of("volumev3"), ["region-one"]);
        assert_eq!(regions_of("image"), ["region-one", "region-two"]);
        assert_eq!(regions_of("identity"), ["region-one", "region-two"]);
        rs[0].services = rs[1].services.clone();
        let c = build("http://h:1/identity/v3", &rs, None);
        assert!(c.iter().all(|s| s.service_type != "compute"), "{c:?}");
        assert_eq!(c.len(), SERVICES.len() - 3);
    }

    #[test]
    fn every_service_in_every_region_and_interface() {
        let c = build("http://h:1/identity/v3", &regions(), Some("p1"));
        assert_eq!(c.len(), SERVICES.len());
        for s in &c {
            assert_eq!(s.endpoints.len(), 6, "{}", s.service_type);
        }
        let vol = c.iter().find(|s| s.service_type == "volumev3").unwrap();
        assert_eq!(vol.endpoints[0].url, "http://h:1/region-one/volume/v3/p1");
        let img = c.iter().find(|s| s.service_type == "image").unwrap();
        assert_eq!(img.endpoints[3].url, "http://h:1/region-two/image");
        assert_eq!(img.endpoints[3].region_id, "region-two");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = build("x", &regions(), None);
        let b = build("x", &regions(), None);
        assert_eq!(a, b);
        let mut ids: Vec<_> = a
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| e.id.clone()))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(a[0].id.len(), 32);
    }
}

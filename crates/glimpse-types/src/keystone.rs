//! Keystone v3 wire bodies that Glimpse both serves and sends: the password login request,
//! the token body (`{"token": {...}}`) and its catalog. Only the fields Glimpse reads or
//! writes are named; a token body from upstream Keystone with more fields reads fine.

use serde::{Deserialize, Serialize};

/// An object named by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Named {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

impl Named {
    /// By id, else by name within `domain`; `None` when neither is given.
    pub fn by_id_or_name(id: Option<&str>, name: Option<&str>, domain: Domain) -> Option<Named> {
        match (id, name) {
            (Some(id), _) => Some(Named {
                id: Some(id.into()),
                ..Named::default()
            }),
            (None, Some(n)) => Some(Named {
                name: Some(n.into()),
                domain: Some(domain),
                ..Named::default()
            }),
            (None, None) => None,
        }
    }
}

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Domain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Domain {
    /// A domain by id, else by name, else the `default` domain.
    pub fn of(id: Option<&str>, name: Option<&str>) -> Domain {
        match (id, name) {
            (Some(id), _) => Domain {
                id: Some(id.into()),
                name: None,
            },
            (None, Some(n)) => Domain {
                id: None,
                name: Some(n.into()),
            },
            (None, None) => Domain {
                id: Some("default".into()),
                name: None,
            },
        }
    }
}

/// `POST /v3/auth/tokens` with a password, scoped to a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasswordAuth {
    pub auth: AuthRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthRequest {
    pub identity: PasswordIdentity,
    pub scope: ProjectScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasswordIdentity {
    pub methods: [&'static str; 1],
    pub password: PasswordUser,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasswordUser {
    pub user: UserPassword,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPassword {
    #[serde(flatten)]
    pub user: Named,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectScope {
    pub project: Named,
}

impl PasswordAuth {
    /// The login of `user` with `password`, scoped to `project`.
    pub fn new(user: Named, password: String, project: Named) -> PasswordAuth {
        PasswordAuth {
            auth: AuthRequest {
                identity: PasswordIdentity {
                    methods: ["password"],
                    password: PasswordUser {
                        user: UserPassword { user, password },
                    },
                },
                scope: ProjectScope { project },
            },
        }
    }
}

/// `{"token": {...}}`: what `POST` and `GET /v3/auth/tokens` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenBody {
    pub token: Token,
}

/// The fields of a token Glimpse reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Token {
    pub expires_at: String,
    pub user: Ref,
    #[serde(default)]
    pub project: Option<Ref>,
    #[serde(default)]
    pub roles: Vec<Ref>,
    #[serde(default)]
    pub catalog: Catalog,
}

/// An id with a name (a user, project or role in a token).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ref {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// A token's service catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(transparent)]
pub struct Catalog(pub Vec<CatalogService>);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatalogService {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

impl Catalog {
    /// The URL (without a trailing slash) of service `kind` at `interface` in `region` (any
    /// region when `None`).
    pub fn endpoint(&self, kind: &str, region: Option<&str>, interface: &str) -> Option<String> {
        self.0
            .iter()
            .filter(|s| s.kind == kind)
            .flat_map(|s| &s.endpoints)
            .find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| {
                        e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r)
                    })
            })
            .map(|e| e.url.trim_end_matches('/').to_string())
    }
}

/// `{"project": {...}}` (`GET /v3/projects/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProjectBody {
    pub project: Project,
}

/// The fields of a project Glimpse reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Project {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Glimpse's extension: the region that holds the project's images.
    #[serde(default)]
    pub home_region: Option<String>,
    /// Keystone's project tags; on a Keystone that is not Glimpse's, the home region is the
    /// tag [`HOME_REGION_TAG`]`<region>`.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The project tag that names a project's home region on a plain Keystone
/// (`openstack project set --tag glimpse-home-region=region-two PROJECT`).
pub const HOME_REGION_TAG: &str = "glimpse-home-region=";

impl Project {
    /// The region that holds the project's images: Glimpse identity's `home_region`, else the
    /// first [`HOME_REGION_TAG`] tag; `None` when neither names one.
    pub fn home_region(&self) -> Option<&str> {
        let tagged = || {
            self.tags
                .iter()
                .find_map(|t| t.strip_prefix(HOME_REGION_TAG))
        };
        self.home_region
            .as_deref()
            .or_else(tagged)
            .filter(|r| !r.is_empty())
    }
}

fn yes() -> bool {
    true
}

/// `GET /v3/role_assignments?include_names`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoleAssignments {
    pub role_assignments: Vec<RoleAssignment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoleAssignment {
    pub role: Ref,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn home_region_from_glimpse_identity_or_a_keystone_tag() {
        let project = |v: serde_json::Value| serde_json::from_value::<Project>(v).unwrap();
        let tagged = project(json!({"id": "p", "tags": ["x", "glimpse-home-region=r2",
            "glimpse-home-region=r3"]}));
        assert_eq!(tagged.home_region(), Some("r2"));
        let own = project(json!({"id": "p", "home_region": "r1",
            "tags": ["glimpse-home-region=r2"]}));
        assert_eq!(own.home_region(), Some("r1"));
        for none in [
            json!({"id": "p"}),
            json!({"id": "p", "tags": ["glimpse-home-region"]}),
            json!({"id": "p", "home_region": "", "tags": ["other=r2"]}),
            json!({"id": "p", "tags": ["glimpse-home-region="]}),
        ] {
            assert_eq!(project(none.clone()).home_region(), None, "{none}");
        }
    }

    #[test]
    fn finds_the_image_endpoint_of_a_region() {
        let catalog: Catalog = serde_json::from_value(json!([
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "region-one", "url": "http://h/identity/v3"}]},
            {"type": "image", "endpoints": [
                {"interface": "public", "region_id": "region-one", "url": "http://h/region-one/image"},
                {"interface": "public", "region": "region-two", "url": "http://h/region-two/image/"}]}
        ]))
        .unwrap();
        assert_eq!(
            catalog
                .endpoint("image", Some("region-two"), "public")
                .unwrap(),
            "http://h/region-two/image"
        );
        assert_eq!(
            catalog.endpoint("image", None, "public").unwrap(),
            "http://h/region-one/image"
        );
        assert!(
            catalog
                .endpoint("image", Some("region-three"), "public")
                .is_none()
        );
        assert!(catalog.endpoint("image", None, "internal").is_none());
    }

    #[test]
    fn a_password_login_is_keystones_shape() {
        let body = PasswordAuth::new(
            Named {
                name: Some("u".into()),
                domain: Some(Domain::of(None, None)),
                ..Named::default()
            },
            "pw".into(),
            Named {
                id: Some("p1".into()),
                ..Named::default()
            },
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "u", "domain": {"id": "default"}, "password": "pw"}}},
                "scope": {"project": {"id": "p1"}}}})
        );
    }
}

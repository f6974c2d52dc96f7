//! `glimpse register`: puts a deployment's regions into an existing Keystone, as an operator
//! would with `openstack service create` / `endpoint create` / `user create`, idempotently
//! (run it again after a change of URL or services and it converges; nothing is duplicated):
//!
//! 1. the service project (`[identity] service_project`, domain `default`), made if missing;
//! 2. the service user (`[identity] service_user`), made if missing, its password set to the
//!    configured one (`service_password`, else `<data_dir>/service-password`), granted `admin`
//!    and `service` on the service project (validating tokens needs `service`; the replicator
//!    reads other projects' role assignments and tags, which Keystone's policy gives `admin`);
//! 3. every configured region (served here or not), identity endpoints in it when it has none
//!    (the configured `identity.url`: clients that choose the region look identity up there),
//!    and for each service it serves
//!    (`[[regions]] services`) the catalog service of that type (an existing one of the type is
//!    used, so an operator's Glance service simply gains Glimpse's endpoints) and its public,
//!    internal and admin endpoints, their URL corrected if it changed.
//!
//! The Keystone and the admin credentials come from clouds.yaml, as for `openstack`.

use anyhow::{Context, anyhow, bail};
use glimpse_core::config::Config;
use glimpse_core::identity::CatalogRegion;
use glimpse_core::identity::catalog::{INTERFACES, SERVICES, region_service, registered_url};
use serde_json::{Value, json};

use crate::os_cli::CloudArgs;

/// The roles the service user holds on the service project.
const SERVICE_USER_ROLES: [&str; 2] = ["admin", "service"];

pub async fn run(config: &Config, cloud: &CloudArgs) -> anyhow::Result<()> {
    let cloud = cloud.cloud()?;
    let login = crate::os_cli::login(&cloud).await?;
    let mut v3 = cloud.auth.auth_url.trim_end_matches('/').to_string();
    if !v3.ends_with("/v3") {
        v3.push_str("/v3");
    }
    if !config.identity.enabled && config.identity_url() != v3 {
        eprintln!(
            "warning: the configuration's identity.url is {}, the cloud's Keystone is {v3}",
            config.identity_url()
        );
    }
    let ks = Admin {
        http: login.http.clone(),
        v3,
        token: login.token().to_string(),
    };
    let password = glimpse_core::service::Password::of(config)
        .read()
        .map_err(|e| anyhow!("the service user's password: {}", e.message))?;
    if password.is_empty() {
        bail!("the service user's password is empty (set identity.service_password)");
    }
    let id = &config.identity;
    let project = ks
        .ensure(
            "projects",
            &[("name", &id.service_project), ("domain_id", "default")],
            json!({"project": {"name": id.service_project, "domain_id": "default",
                "description": "Service accounts"}}),
        )
        .await?;
    let user = ks
        .ensure(
            "users",
            &[("name", &id.service_user), ("domain_id", "default")],
            json!({"user": {"name": id.service_user, "domain_id": "default",
                "password": password, "default_project_id": project.id}}),
        )
        .await?;
    if !user.created {
        // Converge the password on the configured one (Keystone keeps no history by default).
        ks.send(
            reqwest::Method::PATCH,
            &format!("users/{}", user.id),
            Some(json!({"user": {"password": password}})),
        )
        .await?;
    }
    for role in SERVICE_USER_ROLES {
        let role_id = ks
            .ensure("roles", &[("name", role)], json!({"role": {"name": role}}))
            .await?
            .id;
        ks.send(
            reqwest::Method::PUT,
            &format!("projects/{}/users/{}/roles/{role_id}", project.id, user.id),
            None,
        )
        .await?;
    }
    println!(
        "service user {} ({}) holds {} on project {}",
        id.service_user,
        user.id,
        SERVICE_USER_ROLES.join(", "),
        id.service_project
    );
    for r in &config.regions {
        let region = CatalogRegion {
            name: r.name.clone(),
            url: r.url.clone(),
            services: r.services.clone(),
        };
        ks.ensure(
            "regions",
            &[("id", &r.name)],
            json!({"region": {"id": r.name, "description": "Glimpse"}}),
        )
        .await?;
        // Clients that choose this region look identity up in it too: a region new to the
        // Keystone gets identity endpoints (the configured identity.url); existing ones stay.
        let identity = ks
            .ensure(
                "services",
                &[("type", "identity")],
                json!({"service": {"type": "identity", "name": "keystone"}}),
            )
            .await?;
        let url = config.identity_url();
        let existing = ks.endpoints(&identity.id, &r.name, None).await?;
        for iface in INTERFACES {
            let what = if existing.is_empty() {
                ks.ensure_endpoint(&identity.id, &r.name, iface, &url, false)
                    .await?
            } else {
                "kept"
            };
            println!("region {}: identity {iface} {url} ({what})", r.name);
        }
        for (ty, name, description) in SERVICES {
            if !region_service(ty).is_some_and(|s| r.serves(s)) {
                // Identity was handled above; a service the region does not serve is left as
                // it is (an operator's own Nova or Cinder endpoints are theirs).
                continue;
            }
            let service = ks
                .ensure(
                    "services",
                    &[("type", ty)],
                    json!({"service": {"type": ty, "name": name, "description": description}}),
                )
                .await?;
            let url = registered_url(&config.identity_url(), &region, ty);
            for iface in INTERFACES {
                let what = ks
                    .ensure_endpoint(&service.id, &r.name, iface, &url, true)
                    .await?;
                println!("region {}: {ty} {iface} {url} ({what})", r.name);
            }
        }
    }
    Ok(())
}

/// Keystone's admin API with one token.
struct Admin {
    http: reqwest::Client,
    v3: String,
    token: String,
}

/// A resource found or made.
struct Found {
    id: String,
    created: bool,
}

impl Admin {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}/{path}", self.v3))
            .header("x-auth-token", &self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("Keystone answered {status} to {method} /v3/{path}: {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?
        })
    }

    /// The first `collection` item matching `filter`, else the one `body` creates. The filter
    /// goes into the listing's query too, except for regions, whose listing refuses an `id`
    /// filter (400).
    async fn ensure(
        &self,
        collection: &str,
        filter: &[(&str, &str)],
        body: Value,
    ) -> anyhow::Result<Found> {
        let query = if collection == "regions" {
            &[][..]
        } else {
            filter
        };
        let listed = self
            .send(reqwest::Method::GET, &with_query(collection, query), None)
            .await?;
        // Whatever Keystone filtered, check every field ourselves.
        let matching = listed[collection].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| filter.iter().all(|(k, v)| i[*k].as_str() == Some(*v)))
        });
        if let Some(item) = matching {
            return Ok(Found {
                id: id_of(item)?,
                created: false,
            });
        }
        let made = self
            .send(reqwest::Method::POST, collection, Some(body))
            .await?;
        let single = collection.trim_end_matches('s');
        Ok(Found {
            id: id_of(&made[single])?,
            created: true,
        })
    }

    /// The endpoints of `service` in `region` (of one interface, or all).
    async fn endpoints(
        &self,
        service: &str,
        region: &str,
        iface: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut filter = vec![("service_id", service), ("region_id", region)];
        filter.extend(iface.map(|i| ("interface", i)));
        let listed = self
            .send(
                reqwest::Method::GET,
                &with_query("endpoints", &filter),
                None,
            )
            .await?;
        // Keystone ignores filters it does not know; check every field ourselves.
        Ok(listed["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["service_id"].as_str() == Some(service)
                    && e["region_id"].as_str() == Some(region)
                    && iface.is_none_or(|i| e["interface"].as_str() == Some(i))
            })
            .cloned()
            .collect())
    }

    /// Makes the endpoint of (service, region, interface) point at `url` (`correct`: also an
    /// existing one with another URL; else that one is kept); says what it did.
    async fn ensure_endpoint(
        &self,
        service: &str,
        region: &str,
        iface: &str,
        url: &str,
        correct: bool,
    ) -> anyhow::Result<&'static str> {
        let listed = self.endpoints(service, region, Some(iface)).await?;
        match listed.first() {
            Some(e) if e["url"].as_str() == Some(url) || !correct => Ok("kept"),
            Some(e) => {
                let id = id_of(e)?;
                self.send(
                    reqwest::Method::PATCH,
                    &format!("endpoints/{id}"),
                    Some(json!({"endpoint": {"url": url}})),
                )
                .await?;
                Ok("updated")
            }
            None => {
                self.send(
                    reqwest::Method::POST,
                    "endpoints",
                    Some(
                        json!({"endpoint": {"service_id": service, "region_id": region,
                        "interface": iface, "url": url}}),
                    ),
                )
                .await?;
                Ok("created")
            }
        }
    }
}

/// `path?k=v&…`, the values percent-encoded (names may hold spaces or `&`).
fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params(&format!("http://keystone/{path}"), pairs)
        .expect("a relative Keystone path");
    format!("{path}?{}", url.query().unwrap_or_default())
}

fn id_of(item: &Value) -> anyhow::Result<String> {
    item["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("Keystone answered an item without an id: {item}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_filters_are_percent_encoded() {
        let q = super::with_query("users", &[("name", "a b&c=d"), ("domain_id", "default")]);
        assert_eq!(q, "users?name=a+b%26c%3Dd&domain_id=default");
    }
}

//! What every `glimpse` client command shares: the cloud from clouds.yaml (the file in
//! `--clouds-file`, else `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`; the entry named by
//! `--os-cloud`/`$OS_CLOUD`, or the only one), the password login that returns a token and
//! its catalog, endpoint lookup in that catalog, and tables in the openstack client's style.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use glimpse_client::{Fault, Glance, Keystone};
use glimpse_types::keystone::{Domain, Named, PasswordAuth};
use serde::Deserialize;
use serde_json::Value;

/// The options every client command takes to choose its cloud and region, as `openstack`.
#[derive(Args, Debug, Clone, Default)]
pub struct CloudArgs {
    /// The cloud of clouds.yaml to use (as `openstack --os-cloud`).
    #[arg(long, env = "OS_CLOUD", global = true)]
    pub os_cloud: Option<String>,
    /// The region to use (default: the cloud's `region_name`).
    #[arg(long, env = "OS_REGION_NAME", global = true)]
    pub os_region_name: Option<String>,
    /// clouds.yaml to read (default: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
    /// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).
    #[arg(long, env = "OS_CLIENT_CONFIG_FILE", global = true)]
    pub clouds_file: Option<PathBuf>,
}

impl CloudArgs {
    /// The chosen cloud entry of the chosen clouds.yaml.
    pub fn cloud(&self) -> anyhow::Result<Cloud> {
        let path = clouds_file(self.clouds_file.as_deref())?;
        Cloud::load(&path, self.os_cloud.as_deref())
    }
}

/// The clouds.yaml to read.
pub fn clouds_file(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("no clouds.yaml found (set OS_CLIENT_CONFIG_FILE or --clouds-file)"))
}

#[derive(Debug, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, Cloud>,
}

/// One entry of clouds.yaml (the fields this command uses; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Cloud {
    pub auth: CloudAuth,
    #[serde(default)]
    pub region_name: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CloudAuth {
    pub auth_url: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
}

impl Cloud {
    /// Reads the entry `name` (or the only entry) of a clouds.yaml.
    pub fn load(path: &Path, name: Option<&str>) -> anyhow::Result<Cloud> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Cloud::parse(&text, name).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str, name: Option<&str>) -> anyhow::Result<Cloud> {
        let file: CloudsFile = serde_yaml_ng::from_str(text).context("not a clouds.yaml")?;
        let names = || file.clouds.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(n) => file
                .clouds
                .get(n)
                .cloned()
                .ok_or_else(|| anyhow!("no cloud {n:?} (clouds: {})", names())),
            None if file.clouds.len() == 1 => Ok(file
                .clouds
                .into_values()
                .next()
                .unwrap_or_else(|| unreachable!())),
            None => bail!(
                "name a cloud with --os-cloud or OS_CLOUD (clouds: {})",
                names()
            ),
        }
    }

    /// The Keystone password login of this entry.
    pub fn password_auth(&self) -> anyhow::Result<PasswordAuth> {
        let a = &self.auth;
        let user = Named::by_id_or_name(
            a.user_id.as_deref(),
            a.username.as_deref(),
            Domain::of(a.user_domain_id.as_deref(), a.user_domain_name.as_deref()),
        )
        .ok_or_else(|| anyhow!("the cloud has neither auth.username nor auth.user_id"))?;
        let password = a
            .password
            .clone()
            .ok_or_else(|| anyhow!("the cloud has no auth.password"))?;
        let project = Named::by_id_or_name(
            a.project_id.as_deref(),
            a.project_name.as_deref(),
            Domain::of(
                a.project_domain_id.as_deref(),
                a.project_domain_name.as_deref(),
            ),
        )
        .ok_or_else(|| anyhow!("the cloud has neither auth.project_name nor auth.project_id"))?;
        Ok(PasswordAuth::new(user, password, project))
    }

    /// The Keystone password-auth request of this entry, as JSON.
    pub fn auth_body(&self) -> anyhow::Result<Value> {
        Ok(serde_json::to_value(self.password_auth()?)?)
    }
}

/// A logged-in client: the HTTP client, the token, and the token's catalog.
pub struct Login {
    pub http: reqwest::Client,
    pub login: glimpse_client::Login,
}

impl Login {
    pub fn token(&self) -> &str {
        &self.login.token
    }

    /// The token's project id.
    pub fn project_id(&self) -> &str {
        self.login.project_id()
    }

    /// The URL of `service_type` in `region` (else the cloud's `region_name`, else any region)
    /// for the cloud's interface (`public` by default), from this login's catalog; an error
    /// naming what is missing otherwise.
    pub fn service_url(
        &self,
        cloud: &Cloud,
        region: Option<&str>,
        service_type: &str,
    ) -> anyhow::Result<String> {
        let region = region.or(cloud.region_name.as_deref());
        let interface = cloud.interface.as_deref().unwrap_or("public");
        self.login
            .catalog()
            .endpoint(service_type, region, interface)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the catalog has no {interface} {service_type} endpoint in region {}",
                    region.unwrap_or("(any)")
                )
            })
    }

    /// The image API of `region` with this login's token.
    pub fn glance(&self, cloud: &Cloud, region: Option<&str>) -> anyhow::Result<Glance> {
        let url = self.service_url(cloud, region, "image")?;
        Ok(Glance::new(self.http.clone(), &url, self.token()))
    }
}

/// Logs in with the cloud's password (Keystone v3).
pub async fn login(cloud: &Cloud) -> anyhow::Result<Login> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut url = cloud.auth.auth_url.trim_end_matches('/').to_string();
    if !url.ends_with("/v3") {
        url.push_str("/v3");
    }
    let login = Keystone::new(http.clone(), &url)
        .login(&cloud.password_auth()?)
        .await
        .map_err(|f| match f {
            Fault::Down(m) => anyhow!("cannot reach identity at {url}: {m}"),
            refused => anyhow!("identity refused the login: {refused}"),
        })?;
    Ok(Login { http, login })
}

/// A table of `items`, one row each.
pub fn list_table<T>(headers: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> String {
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    table(headers, &rows)
}

/// The "Field | Value" table of one object.
pub fn field_table<'a, V: Into<String>>(fields: impl IntoIterator<Item = (&'a str, V)>) -> String {
    let rows: Vec<Vec<String>> = fields
        .into_iter()
        .map(|(f, v)| vec![f.to_string(), v.into()])
        .collect();
    table(&["Field", "Value"], &rows)
}

/// A table in the openstack client's style.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = format!(
        "+{}+\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        format!("|{}|\n", parts.join("|"))
    };
    let mut out = rule.clone();
    out.push_str(&line(headers.to_vec()));
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    if !rows.is_empty() {
        out.push_str(&rule);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const YAML: &str = "# Written by glimpse\nclouds:\n  glimpse-demo-one:\n    auth:\n      auth_url: \"http://h:1/identity/v3\"\n      username: \"demo-one\"\n      password: \"p\\\"w\"\n      project_name: \"demo-one\"\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: \"region-one\"\n    identity_api_version: 3\n    interface: public\n  other:\n    auth:\n      auth_url: http://x/v3\n      user_id: u1\n      password: pw\n      project_id: p1\n";

    #[test]
    fn reads_the_clouds_yaml_glimpse_writes() {
        let c = Cloud::parse(YAML, Some("glimpse-demo-one")).unwrap();
        assert_eq!(c.auth.auth_url, "http://h:1/identity/v3");
        assert_eq!(c.region_name.as_deref(), Some("region-one"));
        assert_eq!(
            c.auth_body().unwrap(),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "demo-one", "domain": {"name": "Default"}, "password": "p\"w"}}},
                "scope": {"project": {"name": "demo-one", "domain": {"name": "Default"}}}}})
        );
        let o = Cloud::parse(YAML, Some("other")).unwrap();
        assert_eq!(
            o.auth_body().unwrap()["auth"]["scope"],
            json!({"project": {"id": "p1"}})
        );
        assert!(
            Cloud::parse(YAML, None)
                .unwrap_err()
                .to_string()
                .contains("glimpse-demo-one, other")
        );
        assert!(Cloud::parse(YAML, Some("nope")).is_err());
        assert!(Cloud::parse("clouds: [", None).is_err());
    }

    #[test]
    fn tables_line_up() {
        let t = table(
            &["A", "Bee"],
            &[
                vec!["x".into(), "y".into()],
                vec!["long".into(), "→".into()],
            ],
        );
        assert_eq!(
            t,
            "+------+-----+\n| A    | Bee |\n+------+-----+\n| x    | y   |\n| long | →   |\n+------+-----+\n"
        );
        assert_eq!(table(&["A"], &[]), "+---+\n| A |\n+---+\n");
    }
}

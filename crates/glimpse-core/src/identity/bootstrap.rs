//! First-start bootstrap of the identity, and the files it leaves for operators.
//!
//! Every start: the built-in roles (admin, member, reader) and one region row per configured
//! region exist. First start only (until the `bootstrapped` marker is written): project and
//! user `admin` (role admin; password from `GLIMPSE_ADMIN_PASSWORD`, else generated) and per
//! region a `demo-<suffix>` project (home = that region; `region-one` → `demo-one`, any other
//! name `r` → `demo-r`) with a member user of the same name and a generated password; then
//! `<data_dir>/admin-password` and `<data_dir>/clouds.yaml` (clouds `glimpse-admin` and
//! `glimpse-demo-…`), both mode 0600. Later starts create nothing; they rewrite clouds.yaml
//! only when it is missing (new passwords for the demo users, the admin password from the
//! environment or the admin-password file, else a new one), and make the admin password
//! match `GLIMPSE_ADMIN_PASSWORD` when that is set. Also on every start: the service account
//! regions use for cross-region work (`identity.service_user`, admin in
//! `identity.service_project`) exists, with `identity.service_password` or else the password
//! in `<data_dir>/service-password` (generated and written, mode 0600, when missing).
//!
//! Crash behaviour: every step is "create if missing", and until the marker is written a
//! rerun resets the passwords of accounts it finds to what it writes, so a bootstrap cut
//! short simply runs again on the next start. Files are written to a temporary name and
//! renamed into place.

use std::path::Path;

use anyhow::Context;
use glimpse_types::Role;
use sqlx::Row;

use super::Identity;
use super::model::{DEFAULT_DOMAIN_ID, ProjectFields, UserFields};
use super::password;
use crate::config::Config;

const MARKER: &str = "bootstrapped";
const ADMIN: &str = "admin";

/// One account written to clouds.yaml.
struct CloudEntry {
    cloud: String,
    user: String,
    password: String,
    project: String,
    region: String,
}

/// The demo project (and user) name of a region.
pub fn demo_name(region: &str) -> String {
    match region.strip_prefix("region-") {
        Some(suffix) if !suffix.is_empty() => format!("demo-{suffix}"),
        _ => format!("demo-{region}"),
    }
}

pub async fn bootstrap(identity: &Identity, config: &Config) -> anyhow::Result<()> {
    ensure_roles(identity).await?;
    for r in &config.regions {
        identity.ensure_region(&r.name).await?;
    }
    ensure_service_account(identity, config).await?;
    let env_password = std::env::var("GLIMPSE_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let pw_file = config.data_dir.join("admin-password");
    let clouds = config.data_dir.join("clouds.yaml");
    let first = !marker_set(identity).await?;
    if first {
        let admin_pw = match &env_password {
            Some(p) => p.clone(),
            None => read_password_file(&pw_file).unwrap_or_else(password::generate),
        };
        write_secret(&pw_file, &format!("{admin_pw}\n"))?;
        let mut entries =
            vec![ensure_account(identity, ADMIN, ADMIN, Role::Admin, None, &admin_pw).await?];
        for r in &config.regions {
            let name = demo_name(&r.name);
            if entries.iter().any(|e| e.user == name) {
                continue; // two regions mapping to one demo name: the first one wins
            }
            let pw = password::generate();
            entries.push(
                ensure_account(identity, &name, &name, Role::Member, Some(&r.name), &pw).await?,
            );
        }
        write_clouds(&clouds, &identity.settings.identity_url, &entries)?;
        set_marker(identity).await?;
        tracing::info!(
            clouds_yaml = %clouds.display(),
            admin_password_file = %pw_file.display(),
            "identity bootstrapped: admin and demo accounts created"
        );
        return Ok(());
    }
    if let Some(pw) = &env_password {
        if let Some(admin) = identity.find_user_by_name(ADMIN).await?
            && !identity.password_matches(&admin.id, pw).await?
        {
            identity.set_password(&admin.id, pw).await?;
            tracing::info!("admin password set from GLIMPSE_ADMIN_PASSWORD");
        }
        if read_password_file(&pw_file).as_deref() != Some(pw.as_str()) {
            write_secret(&pw_file, &format!("{pw}\n"))?;
        }
    }
    if !clouds.exists() {
        rewrite_clouds(identity, config, env_password, &pw_file, &clouds).await?;
    }
    Ok(())
}

async fn rewrite_clouds(
    identity: &Identity,
    config: &Config,
    env_password: Option<String>,
    pw_file: &Path,
    clouds: &Path,
) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    if let (Some(admin), Some(project)) = (
        identity.find_user_by_name(ADMIN).await?,
        identity.find_project_by_name(ADMIN).await?,
    ) {
        let pw = match env_password.or_else(|| read_password_file(pw_file)) {
            Some(p) => p,
            None => {
                let p = password::generate();
                identity.set_password(&admin.id, &p).await?;
                write_secret(pw_file, &format!("{p}\n"))?;
                tracing::warn!(
                    "admin password was unknown; a new one is in {}",
                    pw_file.display()
                );
                p
            }
        };
        entries.push(CloudEntry {
            cloud: format!("glimpse-{ADMIN}"),
            user: admin.name,
            password: pw,
            project: project.name,
            region: project.home_region,
        });
    }
    for r in &config.regions {
        let name = demo_name(&r.name);
        if entries.iter().any(|e| e.user == name) {
            continue;
        }
        if let (Some(user), Some(project)) = (
            identity.find_user_by_name(&name).await?,
            identity.find_project_by_name(&name).await?,
        ) {
            let pw = password::generate();
            identity.set_password(&user.id, &pw).await?;
            entries.push(CloudEntry {
                cloud: format!("glimpse-{name}"),
                user: user.name,
                password: pw,
                project: project.name,
                region: project.home_region,
            });
        }
    }
    write_clouds(clouds, &identity.settings.identity_url, &entries)?;
    tracing::info!(clouds_yaml = %clouds.display(), "clouds.yaml was missing and is rewritten");
    Ok(())
}

/// The account regions use across regions (`identity.service_user`, role admin in
/// `identity.service_project`), on every start: its password is `identity.service_password`,
/// else the one in `<data_dir>/service-password` (generated when missing).
async fn ensure_service_account(identity: &Identity, config: &Config) -> anyhow::Result<()> {
    let c = &config.identity;
    if c.service_user.is_empty() || c.service_project.is_empty() {
        return Ok(());
    }
    let pw = if c.service_password.is_empty() {
        let file = config.data_dir.join("service-password");
        match read_password_file(&file) {
            Some(p) => p,
            None => {
                let p = password::generate();
                write_secret(&file, &format!("{p}\n"))?;
                p
            }
        }
    } else {
        c.service_password.clone()
    };
    ensure_account(
        identity,
        &c.service_project,
        &c.service_user,
        Role::Admin,
        None,
        &pw,
    )
    .await?;
    Ok(())
}

async fn ensure_roles(identity: &Identity) -> anyhow::Result<()> {
    for role in Role::ALL {
        identity.ensure_role(role.as_str()).await?;
    }
    Ok(())
}

/// Makes sure the project, the user (with `password`) and the grant exist.
async fn ensure_account(
    identity: &Identity,
    project_name: &str,
    user_name: &str,
    role: Role,
    home_region: Option<&str>,
    password: &str,
) -> anyhow::Result<CloudEntry> {
    let project = match identity.find_project_by_name(project_name).await? {
        Some(p) => p,
        None => {
            let fields = ProjectFields {
                name: Some(project_name.to_string()),
                description: Some(format!("Bootstrap project {project_name}")),
                home_region: home_region.map(str::to_string),
                ..ProjectFields::default()
            };
            identity.create_project(DEFAULT_DOMAIN_ID, fields).await?
        }
    };
    let user = match identity.find_user_by_name(user_name).await? {
        Some(u) => {
            if !identity.password_matches(&u.id, password).await? {
                identity.set_password(&u.id, password).await?;
            }
            u
        }
        None => {
            let fields = UserFields {
                name: Some(user_name.to_string()),
                password: Some(password.to_string()),
                default_project_id: Some(Some(project.id.clone())),
                ..UserFields::default()
            };
            identity.create_user(DEFAULT_DOMAIN_ID, fields).await?
        }
    };
    let role = identity
        .find_role_by_name(role.as_str())
        .await?
        .context("built-in role missing")?;
    identity
        .assign_role(&user.id, &project.id, &role.id)
        .await?;
    Ok(CloudEntry {
        cloud: format!("glimpse-{project_name}"),
        user: user.name,
        password: password.to_string(),
        project: project.name,
        region: project.home_region,
    })
}

async fn marker_set(identity: &Identity) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT value FROM identity_meta WHERE key = $1")
        .bind(MARKER)
        .fetch_optional(&identity.db.pool)
        .await?;
    Ok(row
        .map(|r| r.try_get::<String, _>("value"))
        .transpose()?
        .is_some())
}

async fn set_marker(identity: &Identity) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO identity_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(MARKER)
    .bind(glimpse_types::db_time(glimpse_types::now()))
    .execute(&identity.db.pool)
    .await?;
    Ok(())
}

fn read_password_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn clouds_yaml(auth_url: &str, entries: &[CloudEntry]) -> String {
    let mut out = String::from(
        "# Written by glimpse on first start (rewritten only when missing).\n\
         # Use: export OS_CLIENT_CONFIG_FILE=<this file>; openstack --os-cloud <name> ...\n\
         clouds:\n",
    );
    for e in entries {
        out.push_str(&format!(
            "  {}:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      \
             project_name: {}\n      user_domain_name: Default\n      project_domain_name: Default\n    \
             region_name: {}\n    identity_api_version: 3\n    interface: public\n",
            e.cloud,
            quoted(auth_url),
            quoted(&e.user),
            quoted(&e.password),
            quoted(&e.project),
            quoted(&e.region),
        ));
    }
    out
}

fn write_clouds(path: &Path, auth_url: &str, entries: &[CloudEntry]) -> anyhow::Result<()> {
    write_secret(path, &clouds_yaml(auth_url, entries))
}

/// Writes a file readable only by its owner, atomically (temporary file, then rename).
fn write_secret(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_names() {
        assert_eq!(demo_name("region-one"), "demo-one");
        assert_eq!(demo_name("region-two"), "demo-two");
        assert_eq!(demo_name("eu-west"), "demo-eu-west");
        assert_eq!(demo_name("region-"), "demo-region-");
    }

    #[test]
    fn clouds_yaml_shape() {
        let y = clouds_yaml(
            "http://h/identity/v3",
            &[CloudEntry {
                cloud: "glimpse-admin".into(),
                user: "admin".into(),
                password: "p\"w".into(),
                project: "admin".into(),
                region: "region-one".into(),
            }],
        );
        assert!(
            y.contains("  glimpse-admin:\n    auth:\n      auth_url: \"http://h/identity/v3\"\n")
        );
        assert!(y.contains("      password: \"p\\\"w\"\n"));
        assert!(y.contains("    region_name: \"region-one\"\n    identity_api_version: 3\n"));
    }
}

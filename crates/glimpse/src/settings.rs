//! Loading [`Config`]: built-in defaults, then the TOML file, then `GLIMPSE_*` environment
//! variables (nested keys joined by `__`, e.g. `GLIMPSE_IDENTITY__TOKEN_TTL_SECONDS=600`),
//! then command-line flags.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use glimpse_core::config::Config;

pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            anyhow::bail!("configuration file {} does not exist", path.display());
        }
        fig = fig.merge(Toml::file(path));
    }
    fig = fig.merge(Env::prefixed("GLIMPSE_").split("__").ignore(&["admin_password"]));
    Ok(fig.extract()?)
}

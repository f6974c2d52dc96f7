//! Loading [`Config`]: built-in defaults, then the TOML file, then `GLIMPSE_*` environment
//! variables (nested keys joined by `__`, e.g. `GLIMPSE_IDENTITY__TOKEN_TTL_SECONDS=600`),
//! then command-line flags.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use glimpse_core::config::Config;

const TOP_LEVEL_KEYS: [&str; 5] = [
    "data_dir",
    "listen",
    "public_url",
    "max_json_body",
    "identity",
];

pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            anyhow::bail!("configuration file {} does not exist", path.display());
        }
        fig = fig.merge(Toml::file(path));
    }
    // Only configuration keys: other GLIMPSE_* variables (GLIMPSE_LOG, GLIMPSE_ADMIN_PASSWORD,
    // the test suite's) are not configuration.
    fig = fig.merge(Env::prefixed("GLIMPSE_").split("__").filter(|k| {
        let top = k.as_str().split('.').next().unwrap_or("");
        TOP_LEVEL_KEYS.contains(&top)
    }));
    Ok(fig.extract()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../glimpse.example.toml");
        let cfg = load(Some(&path)).expect("example config loads");
        let def = Config::default();
        assert_eq!(cfg.listen, def.listen);
        assert_eq!(cfg.identity.token_ttl_seconds, 3600);
        assert_eq!(
            cfg.regions
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["region-one", "region-two"]
        );
        assert_eq!(cfg.regions[0].limits.image_size_cap, 1 << 40);
        assert_eq!(cfg.regions[0].services, def.regions[0].services);
    }

    #[test]
    fn region_services_are_checked() {
        let dir = std::env::temp_dir().join(format!("glimpse-svc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("svc.toml");
        let with = |services: &str| {
            let toml = format!(
                "data_dir = {:?}\n[[regions]]\nname = \"r1\"\nservices = {services}\n",
                dir.join("data")
            );
            std::fs::write(&f, toml).unwrap();
            load(Some(&f)).and_then(Config::resolve)
        };
        let only_image = with(r#"["image", "ims", "kms"]"#).unwrap();
        assert!(only_image.regions[0].serves("kms") && !only_image.regions[0].serves("compute"));
        for (bad, says) in [
            (r#"["compute"]"#, "must include \"image\""),
            (r#"["image", "network"]"#, "unknown service \"network\""),
            (r#"["image", "image"]"#, "listed twice"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        assert!(load(Some(Path::new("/nonexistent/glimpse.toml"))).is_err());
        let dir = std::env::temp_dir().join(format!("glimpse-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\nlisten_typo = 3\n").unwrap();
        let err = load(Some(&f)).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("listen_typo"), "{err}");
    }
}

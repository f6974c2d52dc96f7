//! A running Glimpse process: the identity service (if this process serves it) and the regions
//! it serves, built from one [`Config`]. The binary and the test harness both start it through
//! [`Cloud::start`], so tests run exactly what operators run.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{RemoteValidator, TokenValidator};
use crate::config::Config;
use crate::db::{Db, Schema};
use crate::identity::{CatalogRegion, Identity, IdentitySettings};
use crate::region::Region;

pub struct Cloud {
    pub config: Config,
    pub identity: Option<Arc<Identity>>,
    pub regions: Vec<Arc<Region>>,
}

impl Cloud {
    /// Opens databases and stores and runs migrations. `config` must be resolved.
    pub async fn start(config: Config) -> anyhow::Result<Cloud> {
        let identity = if config.identity.enabled {
            let db = Db::open(&config.identity.database, Schema::Identity).await?;
            let settings = IdentitySettings {
                token_ttl: Duration::from_secs(config.identity.token_ttl_seconds),
                identity_url: config.identity_url(),
                regions: config
                    .regions
                    .iter()
                    .map(|r| CatalogRegion {
                        name: r.name.clone(),
                        url: r.url.clone(),
                    })
                    .collect(),
            };
            Some(Arc::new(Identity::open(db, settings).await?))
        } else {
            None
        };
        let validator: Arc<dyn TokenValidator> = match &identity {
            Some(id) => id.clone(),
            None => Arc::new(RemoteValidator::new(
                &config.identity_url(),
                Duration::from_secs(config.identity.validation_cache_seconds),
            )),
        };
        let mut regions = Vec::new();
        for rc in config.regions.iter().filter(|r| r.serve) {
            regions.push(Arc::new(Region::open(rc, validator.clone()).await?));
        }
        Ok(Cloud {
            config,
            identity,
            regions,
        })
    }
}

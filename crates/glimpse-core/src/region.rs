//! A region: its own metadata database, its own blob store, its limits, and the validator it
//! uses for tokens. Everything a region serves (image, compute, volume, jobs) hangs off
//! [`Region`]; regions share nothing but HTTP.

use std::sync::Arc;

use glimpse_store::BlobStore;

use crate::auth::TokenValidator;
use crate::config::{NodeConfig, RegionConfig};
use crate::db::{Db, Schema};
use crate::jobs::Queue;
use crate::service::ServiceAccount;

pub struct Region {
    pub name: String,
    /// Public base URL (`http://host:port/<name>`); service URLs hang below it.
    pub url: String,
    pub db: Db,
    pub store: BlobStore,
    pub config: RegionConfig,
    pub auth: Arc<dyn TokenValidator>,
    /// The region's durable job queue (replication, copies, uploads, snapshots).
    pub jobs: Arc<Queue>,
    /// The account this region uses to call identity and other regions.
    pub service: Arc<ServiceAccount>,
    /// The region's key manager (customer master keys for encrypted images).
    pub kms: Arc<crate::kms::Kms>,
    /// This process's node id in the region ([`crate::nodes`]; `local` until
    /// [`Region::on_node`]).
    pub node: String,
    pub node_config: NodeConfig,
}

impl Region {
    /// Opens the region's database (running migrations), blob store and key manager. Only
    /// opens: the process then runs each domain's start-up recovery
    /// ([`crate::cloud::recover`]), so no domain calls back into the region that holds it.
    pub async fn open(
        config: &RegionConfig,
        auth: Arc<dyn TokenValidator>,
        service: Arc<ServiceAccount>,
    ) -> anyhow::Result<Region> {
        let db = Db::open(&config.database, Schema::Region).await?;
        let store = BlobStore::open(&config.store, &config.s3)?;
        let kms = crate::kms::Kms::new(db.clone(), crate::kms::master::load(&config.kms)?)
            .with_previous(crate::kms::master::load_previous(&config.kms)?);
        let region = Region {
            name: config.name.clone(),
            url: config.url.clone(),
            jobs: Arc::new(Queue::new(db.clone())),
            service,
            kms: Arc::new(kms),
            db,
            store,
            config: config.clone(),
            auth,
            node: "local".into(),
            node_config: NodeConfig::default(),
        };
        Ok(region)
    }

    /// The region as served by node `id` with `config`.
    pub fn on_node(mut self, id: &str, config: &NodeConfig) -> Region {
        self.node = id.to_string();
        self.node_config = config.clone();
        self
    }

    /// The image service's public URL in this region.
    pub fn image_url(&self) -> String {
        format!("{}/image", self.url)
    }
}

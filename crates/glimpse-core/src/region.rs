//! A region: its own metadata database, its own blob store, its limits, and the validator it
//! uses for tokens. Everything a region serves (image, compute, volume, jobs) hangs off
//! [`Region`]; regions share nothing but HTTP.

use std::sync::Arc;

use glimpse_store::BlobStore;

use crate::auth::TokenValidator;
use crate::config::RegionConfig;
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
}

impl Region {
    /// Opens the region's database (running migrations) and blob store, and recovers
    /// interrupted uploads ([`crate::images::recover`]).
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
        };
        // Uploads a crash interrupted go back to `queued`; orphan blobs are cleaned.
        crate::images::recover(&region).await?;
        crate::compute::recover(&region).await?;
        crate::volumes::recover(&region).await?;
        // A master key rotation in progress: move every customer key to the current key.
        if !region.kms.rotating() {
            return Ok(region);
        }
        let (moved, current, lost) = region.kms.rewrap().await?;
        tracing::warn!(region = %region.name, rewrapped = moved, current, unreadable = lost,
            "KMS master key rotation: customer keys re-wrapped with the current master key; \
             remove the previous key from the configuration once every node runs the new one");
        Ok(region)
    }

    /// The image service's public URL in this region.
    pub fn image_url(&self) -> String {
        format!("{}/image", self.url)
    }
}

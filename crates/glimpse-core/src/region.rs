//! A region: its own metadata database, its own blob store, its limits, and the validator it
//! uses for tokens. Everything a region serves (image, compute, volume, jobs) hangs off
//! [`Region`]; regions share nothing but HTTP.

use std::sync::Arc;

use glimpse_store::BlobStore;

use crate::auth::TokenValidator;
use crate::config::RegionConfig;
use crate::db::{Db, Schema};

pub struct Region {
    pub name: String,
    /// Public base URL (`http://host:port/<name>`); service URLs hang below it.
    pub url: String,
    pub db: Db,
    pub store: BlobStore,
    pub config: RegionConfig,
    pub auth: Arc<dyn TokenValidator>,
}

impl Region {
    /// Opens the region's database (running migrations) and blob store.
    pub async fn open(config: &RegionConfig, auth: Arc<dyn TokenValidator>) -> anyhow::Result<Region> {
        let db = Db::open(&config.database, Schema::Region).await?;
        let store = BlobStore::open(&config.store, &config.s3)?;
        Ok(Region {
            name: config.name.clone(),
            url: config.url.clone(),
            db,
            store,
            config: config.clone(),
            auth,
        })
    }

    /// The image service's public URL in this region.
    pub fn image_url(&self) -> String {
        format!("{}/image", self.url)
    }
}

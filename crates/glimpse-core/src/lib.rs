//! Glimpse's domain and database layer: identity, regions, images and the jobs that move them.
//! No HTTP here (glimpse-api owns that); SQL lives only here.

pub mod auth;
pub mod cloud;
pub mod compute;
pub mod config;
pub mod db;
pub mod disks;
pub mod error;
pub mod identity;
pub mod images;
pub mod ims;
pub mod jobs;
pub mod kms;
pub mod nodes;
pub mod region;
pub mod replication;
pub mod service;
#[cfg(test)]
pub(crate) mod testing;
pub mod volumes;

pub use error::{Error, Kind, Result};

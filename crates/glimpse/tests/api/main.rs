//! The HTTP APIs end to end against a whole cloud started in this process (`TestCloud`):
//! identity, images, metadefs, IMS, KMS, compute and volumes.
//! One test binary of several (each links the whole workspace once); see `../common/` for
//! the harness.

#[path = "../common/mod.rs"]
mod common;

mod compute;
mod compute_keypairs;
mod compute_snapshot;
mod housekeeping;
mod identity;
mod identity_admin;
mod image_api;
mod image_corpus;
mod image_list;
mod image_metadefs;
mod image_verify;
mod ims;
mod kms;
mod list_caps;
mod slow_clients;
mod strict_bodies;
mod volume_api;
mod volume_upload;

//! Real clients against a whole cloud in this process: the `openstack` CLI (images, compute,
//! volumes) and `glimpse jobs`.
//! One test binary of several (each links the whole workspace once); see `../common/` for
//! the harness.

#[path = "../common/mod.rs"]
mod common;

mod compute_cli;
mod image_cli;
mod replication_cli;
mod volume_cli;

//! The real `glimpse` binary as a child process: `serve`, `kill -9` in the middle of work and a
//! restart, a KMS master key rotation, regions split over two processes, regions in
//! separate network namespaces across a shaped link, and PostgreSQL and radosgw restarted
//! under the nodes' feet.
//! One test binary of several (each links the whole workspace once); see `../common/` for
//! the harness.

#[path = "../common/mod.rs"]
mod common;

mod backend_restarts;
mod compute_crash;
mod image_crash;
mod ims_crash;
mod keystone;
mod kms_rotation;
mod login_storm;
mod netns_regions;
mod regions_split;
mod replication_crash;
mod serve;
mod two_nodes;
mod volume_crash;

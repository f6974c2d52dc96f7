//! The image replicator end to end: copies, adoption of held bytes, and resumed uploads.
//! One test binary of several (each links the whole workspace once); see `../common/` for
//! the harness.

#[path = "../common/mod.rs"]
mod common;

mod replication;
mod replication_adopt;
mod replication_resume;

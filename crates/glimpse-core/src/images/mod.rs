//! Images: the Glance v2 image service of one region, without HTTP. Records ([`records`]),
//! lists ([`list`]), sharing ([`members`]), the data path ([`data`]) and adoption of content
//! a replica finds already here ([`adopt`]), every access decided in [`policy`]. Every write
//! of an image record is in [`lifecycle`]; reads are in [`repo`]. [`model`] holds the
//! types; Glance's request documents are read at the edge (`glimpse-api`).
//!
//! Crash behaviour (invariant 1 of DESIGN.md): an image becomes `active` only in one of the
//! conditional statements of [`lifecycle`] over verified content (`publish`, `adopt_blob`,
//! `insert_copy`). After a crash, [`recover`] (run at start-up by [`crate::cloud::recover`])
//! puts interrupted uploads back to `queued`, and [`clean_orphans`] removes blobs no image
//! names.

pub mod adopt;
pub mod data;
pub(crate) mod lifecycle;
pub mod list;
pub mod members;
pub mod metadefs;
pub mod model;
pub mod policy;
pub mod query;
pub mod records;
pub(crate) mod repo;

pub use data::{
    Expected, ORPHAN_GRACE, clean_orphans, load_for_use, prepare_download, read, recover,
    take_over, upload, upload_offset,
};
pub use list::{ListQuery, Page};
pub use model::{Attr, Change, Image, Member, MemberStatus, NewImage, Sealing};
pub use records::{add_tag, create, deactivate, delete, get, reactivate, remove_tag, update};

#[cfg(test)]
mod tests;

//! Images: the Glance v2 image service of one region, without HTTP. Records ([`records`]),
//! lists ([`list`]), sharing ([`members`]) and the data path ([`data`]), every access decided in
//! [`policy`] and every SQL statement in [`repo`] (or next to the one operation it serves).
//! [`model`] holds the types; Glance's request documents are read at the edge (`glimpse-api`).
//!
//! Crash behaviour (invariant 1 of DESIGN.md): an image becomes `active` only in the one
//! conditional UPDATE that publishes a verified upload. After a crash, [`recover`] (called by
//! [`crate::region::Region::open`]) puts interrupted uploads back to `queued`, and
//! [`clean_orphans`] removes blobs no image names.

pub mod data;
pub mod list;
pub mod members;
pub mod metadefs;
pub mod model;
pub mod policy;
pub mod query;
pub mod records;
pub(crate) mod repo;

pub use data::{
    Expected, ORPHAN_GRACE, clean_orphans, load_for_use, prepare_download, read, recover, upload,
    upload_offset,
};
pub use list::{ListQuery, Page};
pub use model::{Attr, Change, Image, Member, MemberStatus, NewImage, Sealing};
pub use records::{add_tag, create, deactivate, delete, get, reactivate, remove_tag, update};

#[cfg(test)]
mod tests;

//! One typed client for the APIs Glimpse serves, used by everything that calls them: the
//! replicator (region to region), the `glimpse` CLI and the end-to-end tests. Bodies are the
//! wire types of `glimpse_types`, so a field is named once for the server and its clients.
//!
//! Every call classifies its failure as a [`Fault`]: [`Fault::Down`] (no answer, a timeout or
//! a 5xx: worth retrying) or [`Fault::Refused`] (a 4xx answer with the service's message).
//! Stateless: a client value is an HTTP client, a base URL and a token.

mod fault;
mod identity;
mod image;
mod ims;
mod kms;
mod replicator;
#[cfg(test)]
mod tests;

pub use fault::{Fault, META_TIMEOUT, describe, error_message};
pub use identity::{Keystone, Login, WithToken};
pub use image::{Glance, Upload};
pub use ims::Ims;
pub use kms::Kms;
pub use replicator::{Replicator, Shown};

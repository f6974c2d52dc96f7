//! How much of a list query may become SQL. Every list parser (Glance's images and metadefs,
//! Nova's image proxy, Cinder's volumes) checks its sort keys, filters and value lists against
//! these before any SQL is built, so that no request reaches a database's own limits (SQLite
//! refuses more than 64 terms in an ORDER BY, expressions deeper than 1000 and more than 32766
//! parameters) and fails there as a 500: past a cap the caller gets 400 in the API's own
//! error shape. Each cap is far above what a real client sends.

use crate::error::{Error, Result};

/// Sort keys of one list (a key may repeat; Glance has 8 sortable keys).
pub const SORT_KEYS: usize = 16;
/// Filter terms of one list (each tag, property or column filter is one).
pub const FILTERS: usize = 64;
/// Values of one list-valued parameter (Glance's `in:` operator, Cinder's `metadata`,
/// metadefs' `resource_types`).
pub const VALUES: usize = 256;

/// 400 when `count` `what` are more than `cap`.
pub fn at_most(count: usize, cap: usize, what: &str) -> Result<()> {
    if count > cap {
        return Err(Error::bad_request(format!(
            "Too many {what} in the query: {count} given, at most {cap} allowed."
        )));
    }
    Ok(())
}

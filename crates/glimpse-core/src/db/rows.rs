//! The one set of row readers every repo uses: timestamps (fixed-width UTC text, see
//! [`glimpse_types::db_time`]), JSON columns, enum columns and the 0/1 BIGINT booleans. A value
//! the database should never hold is an internal error naming the column.

use chrono::{DateTime, Utc};
use glimpse_types::parse_time;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};

fn bad_time(s: &str, col: &str) -> Error {
    Error::internal(format!("bad timestamp {s:?} in column {col}"))
}

/// A NOT NULL timestamp column.
pub fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    let s: String = row.try_get(col)?;
    parse_time(&s).ok_or_else(|| bad_time(&s, col))
}

/// A nullable timestamp column (`None` for NULL; a malformed one is an error).
pub fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| parse_time(&s).ok_or_else(|| bad_time(&s, col)))
        .transpose()
}

/// A nullable timestamp column read leniently: NULL or malformed text is `None`.
pub fn lenient_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    let s: Option<String> = row.try_get(col)?;
    Ok(s.as_deref().and_then(parse_time))
}

/// A NOT NULL JSON text column, decoded.
pub fn json<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| Error::internal(format!("bad JSON in column {col}: {e}")))
}

/// A nullable JSON text column read leniently: NULL or undecodable text is `None`.
pub fn lenient_json<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(col)?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
}

/// A value encoded as JSON text for a JSON column.
pub fn to_json<T: serde::Serialize>(value: &T, empty: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| empty.into())
}

/// A NOT NULL enum column, read through the enum's `parse`.
pub fn enumerated<T>(row: &AnyRow, col: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| Error::internal(format!("bad {col} {s:?}")))
}

/// A nullable enum column.
pub fn opt_enumerated<T>(
    row: &AnyRow,
    col: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| parse(&s).ok_or_else(|| Error::internal(format!("bad {col} {s:?}"))))
        .transpose()
}

/// A 0/1 BIGINT boolean column.
pub fn boolean(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// The TEXT column `col` of every row (e.g. the ids a query selected).
pub fn strings(rows: &[AnyRow], col: &str) -> Result<Vec<String>> {
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>(col)?))
        .collect()
}

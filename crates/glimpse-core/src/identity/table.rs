//! How the identity tables are read: a [`Table`] names what its rows are, its columns and how a
//! row becomes a record, so "get by id" (and its 404), "find by name in the Default domain",
//! "list by filter" and the duplicate-name 409 are written once for projects, users, roles and
//! regions. Reads only: nothing to recover on a crash.

use sqlx::any::AnyRow;

use super::model::{DEFAULT_DOMAIN_ID, ListFilter, bind_filter};
use crate::db::{Db, row_where};
use crate::error::{Error, Result};

/// One identity table as its records are read.
pub(crate) struct Table<T> {
    /// What one row is, in messages: `project`.
    kind: &'static str,
    name: &'static str,
    columns: &'static str,
    from_row: fn(&AnyRow) -> Result<T>,
}

impl<T> Table<T> {
    pub const fn new(
        kind: &'static str,
        name: &'static str,
        columns: &'static str,
        from_row: fn(&AnyRow) -> Result<T>,
    ) -> Table<T> {
        Table {
            kind,
            name,
            columns,
            from_row,
        }
    }

    /// Keystone's 404 for a missing id.
    pub fn not_found(&self, id: &str) -> Error {
        Error::not_found(format!("Could not find {}: {id}.", self.kind))
    }

    /// Keystone's 409 for a name taken in the Default domain.
    pub fn duplicate(&self, name: &str) -> Error {
        Error::conflict(format!(
            "Conflict occurred attempting to store {} - Duplicate entry found with name {name} \
             at domain ID {DEFAULT_DOMAIN_ID}.",
            self.kind
        ))
    }

    /// The record `id`; the table's 404 when there is none.
    pub async fn get(&self, db: &Db, id: &str) -> Result<T> {
        let row = row_where(db, self.columns, self.name, "id", id)
            .await?
            .ok_or_else(|| self.not_found(id))?;
        (self.from_row)(&row)
    }

    /// The record of the Default domain named `name`, if any.
    pub async fn find_by_name(&self, db: &Db, name: &str) -> Result<Option<T>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE name = $1 AND domain_id = $2",
            self.columns, self.name
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(DEFAULT_DOMAIN_ID)
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(self.from_row).transpose()
    }

    /// The records `filter` selects, by name.
    pub async fn list(&self, db: &Db, filter: &ListFilter) -> Result<Vec<T>> {
        let (clause, args) = filter.sql();
        let sql = format!(
            "SELECT {} FROM {} {clause} ORDER BY name",
            self.columns, self.name
        );
        let rows = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(&db.pool)
            .await?;
        rows.iter().map(self.from_row).collect()
    }
}

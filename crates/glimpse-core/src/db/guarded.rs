//! The one helper for guarded state changes: `UPDATE t SET … , updated_at = now WHERE id = …
//! AND status IN (…)`, applied or not as one statement, so two racing requests cannot both
//! win. Every value is bound (placeholders numbered in order of use, as `crate::db` requires);
//! only column names and constant conditions, which are the code's own text, are spliced in.
//!
//! ```ignore
//! let moved = Guarded::new("volumes", id)
//!     .set("status", to.as_str())
//!     .when_in("status", &["available", "in-use"])
//!     .apply(&db.pool)
//!     .await?;
//! ```

use chrono::{DateTime, Utc};
use glimpse_types::db_time;
use sqlx::Any;

use crate::error::Result;

/// A value bound to a statement: text or integer, either nullable.
#[derive(Debug, Clone)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_string()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::Text(v.map(str::to_string))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(Some(i64::from(v)))
    }
}

/// Binds `values` in order.
pub fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    values: Vec<Value>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for v in values {
        q = match v {
            Value::Text(t) => q.bind(t),
            Value::Int(i) => q.bind(i),
        };
    }
    q
}

/// A guarded UPDATE of one row, built then [`Guarded::apply`]ed. `updated_at` is always set
/// to now.
#[must_use]
pub struct Guarded<'a> {
    table: &'a str,
    id: Value,
    sets: Vec<String>,
    conds: Vec<String>,
    set_values: Vec<Value>,
    cond_values: Vec<Value>,
    touch: bool,
    at: Option<DateTime<Utc>>,
}

impl<'a> Guarded<'a> {
    /// A change of the row `id` of `table` (whose key column is `id`).
    pub fn new(table: &'a str, id: &str) -> Guarded<'a> {
        Guarded {
            table,
            id: id.into(),
            sets: Vec::new(),
            conds: Vec::new(),
            set_values: Vec::new(),
            cond_values: Vec::new(),
            touch: true,
            at: None,
        }
    }

    /// Sets `col` to a bound value.
    pub fn set(mut self, col: &str, v: impl Into<Value>) -> Self {
        self.sets.push(format!("{col} = {{}}"));
        self.set_values.push(v.into());
        self
    }

    /// Sets `col` to a constant SQL expression (`NULL`, another column, a `CASE`).
    pub fn set_sql(mut self, col: &str, expr: &str) -> Self {
        self.sets.push(format!(
            "{col} = {}",
            expr.replace('{', "{{").replace('}', "}}")
        ));
        self
    }

    /// Sets `updated_at` to `t` instead of now (a caller that reports the time it wrote).
    pub fn at(mut self, t: DateTime<Utc>) -> Self {
        self.at = Some(t);
        self
    }

    /// Leaves `updated_at` alone (for tables without one).
    pub fn untouched(mut self) -> Self {
        self.touch = false;
        self
    }

    /// Applies only while `col` is one of `from`.
    pub fn when_in(mut self, col: &str, from: &[&str]) -> Self {
        let marks = vec!["{}"; from.len()].join(", ");
        self.conds.push(format!("{col} IN ({marks})"));
        self.cond_values
            .extend(from.iter().map(|s| Value::from(*s)));
        self
    }

    /// Applies only while `col` equals `v`.
    pub fn when_eq(mut self, col: &str, v: impl Into<Value>) -> Self {
        self.conds.push(format!("{col} = {{}}"));
        self.cond_values.push(v.into());
        self
    }

    /// Applies only while `cond` holds, its one `{}` bound to `v`
    /// (`(upload_image_id IS NULL OR upload_image_id = {})`).
    pub fn when_bound(mut self, cond: &str, v: impl Into<Value>) -> Self {
        debug_assert_eq!(cond.matches("{}").count(), 1);
        self.conds.push(cond.to_string());
        self.cond_values.push(v.into());
        self
    }

    /// Applies only while a constant SQL condition holds (`task_state IS NULL`).
    pub fn when(mut self, cond: &str) -> Self {
        self.conds.push(cond.replace('{', "{{").replace('}', "}}"));
        self
    }

    /// The statement and its values in order.
    fn build(mut self) -> (String, Vec<Value>) {
        if self.touch {
            self.sets.push("updated_at = {}".into());
            self.set_values
                .push(db_time(self.at.unwrap_or_else(glimpse_types::now)).into());
        }
        let mut conds = vec!["id = {}".to_string()];
        conds.append(&mut self.conds);
        let mut values = self.set_values;
        values.push(self.id);
        values.append(&mut self.cond_values);
        let template = format!(
            "UPDATE {} SET {} WHERE {}",
            self.table,
            self.sets.join(", "),
            conds.join(" AND ")
        );
        (number(&template), values)
    }

    /// Runs the UPDATE; true when it changed the row (the guard held).
    pub async fn apply<'c, E>(self, exec: E) -> Result<bool>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        let (sql, values) = self.build();
        let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), values);
        Ok(q.execute(exec).await?.rows_affected() == 1)
    }
}

/// Replaces each `{}` of `template` with `$1`, `$2`, … in order (`{{`/`}}` are literal braces).
fn number(template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut n = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('}')) => {
                chars.next();
                n += 1;
                out.push_str(&format!("${n}"));
            }
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order_of_use() {
        let (sql, values) = Guarded::new("volumes", "v1")
            .set("status", "available")
            .set_sql("previous_status", "NULL")
            .when_in("status", &["creating", "error"])
            .when("task_state IS NULL")
            .build();
        assert_eq!(
            sql,
            "UPDATE volumes SET status = $1, previous_status = NULL, updated_at = $2 \
             WHERE id = $3 AND status IN ($4, $5) AND task_state IS NULL"
        );
        assert_eq!(values.len(), 5);
    }
}

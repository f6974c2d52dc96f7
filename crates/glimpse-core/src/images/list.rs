//! `GET /v2/images`: Glance's query parameters read into a [`ListQuery`] (filters, `in:` and
//! time operators, tags, custom-property equality, visibility and member status, sort keys and
//! directions in both syntaxes, `limit`/`marker`), then answered with ONE SQL query for the page
//! plus one for the page's properties and tags, whatever the page size.
//!
//! Visibility (security.md 3.3, Glance's `_select_images_query`): a non-admin sees public ∪
//! community ∪ owned ∪ shared-with-its-project (member status `accepted` unless
//! `member_status=` says otherwise); without a `visibility` filter, community images are listed
//! only when owned. Admins see every image, with the same filters.
//!
//! Paging is keyset paging on the sort keys plus `created_at` and `id` (always appended, as
//! Glance does), so pages are stable under inserts. NULLs sort as `''` (text) or `-1` (size)
//! on both backends. Read-only: nothing to recover after a crash.
//!
//! The parameters are read by [`super::query`].

use super::model::Image;
use super::policy::{self, Target};
use super::query::Bind;
pub use super::query::{
    Cmp, DEFAULT_LIMIT, Filter, ListQuery, MAX_LIMIT, SortDir, SortKey, VisibilityFilter,
};
use super::repo::{self, COLUMNS};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::region::Region;

/// Builds SQL with `$n` placeholders numbered in order of appearance.
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn bind(&mut self, b: Bind) {
        self.binds.push(b);
        self.text.push_str(&format!("${}", self.binds.len()));
    }
    fn text(&mut self, s: &str) {
        self.bind(Bind::Text(s.to_string()));
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    pub images: Vec<Image>,
    /// Set when more images follow this page.
    pub next_marker: Option<String>,
}

/// The region's image generation: a number that changes (in the same commit) whenever any
/// image, property, tag or membership row changes (kept by triggers, see the migration). A
/// cached list page computed after reading generation `g` is valid while it is still `g`.
pub async fn generation(region: &Region) -> Result<i64> {
    use sqlx::Row;
    let row = sqlx::query("SELECT n FROM image_generation WHERE id = 1")
        .fetch_one(&region.db.pool)
        .await?;
    Ok(row.try_get("n")?)
}

/// Lists the images the caller may see that match `q`.
pub async fn list(region: &Region, caller: &Caller, q: &ListQuery) -> Result<Page> {
    let project = caller.project()?;
    if !(caller.is_admin() || caller.is_reader()) {
        return Err(policy::denied("get_images"));
    }
    if q.limit == 0 {
        return Ok(Page {
            images: Vec::new(),
            next_marker: None,
        });
    }
    let marker = match &q.marker {
        None => None,
        Some(id) => {
            let bad = || Error::bad_request(format!("No image found with ID {id}"));
            let (img, membership) = repo::load(&region.db, id, project).await?.ok_or_else(bad)?;
            let t = Target {
                id,
                owner: &img.owner,
                visibility: img.visibility,
                membership,
            };
            if !policy::can_see(caller, &t) {
                return Err(bad());
            }
            Some(img)
        }
    };
    let mut sql = Sql {
        text: format!("SELECT {COLUMNS} FROM images i WHERE i.status <> 'killed'"),
        binds: Vec::new(),
    };
    where_visible(&mut sql, caller, project, q);
    sql.push(" AND i.os_hidden = ");
    sql.bind(Bind::Int(i64::from(q.os_hidden)));
    for f in &q.filters {
        where_filter(&mut sql, f);
    }
    let sort = q.full_sort();
    if let Some(m) = &marker {
        sql.push(" AND ");
        keyset(&mut sql, &sort, m);
    }
    sql.push(" ORDER BY ");
    let order = sort
        .iter()
        .map(|(k, d)| {
            format!(
                "{} {}",
                k.expr(),
                if *d == SortDir::Asc { "ASC" } else { "DESC" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    sql.push(&order);
    sql.push(" LIMIT ");
    sql.bind(Bind::Int(q.limit as i64 + 1));

    let mut query = sqlx::query(sqlx::AssertSqlSafe(std::mem::take(&mut sql.text)));
    for b in &sql.binds {
        query = match b {
            Bind::Text(s) => query.bind(s.clone()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    let rows = query.fetch_all(&region.db.pool).await?;
    let mut images = rows
        .iter()
        .map(repo::image_from_row)
        .collect::<Result<Vec<_>>>()?;
    let more = images.len() > q.limit;
    images.truncate(q.limit);
    repo::attach_details(&region.db, &mut images).await?;
    let next_marker = if more {
        images.last().map(|i| i.id.clone())
    } else {
        None
    };
    Ok(Page {
        images,
        next_marker,
    })
}

fn where_visible(sql: &mut Sql, caller: &Caller, project: &str, q: &ListQuery) {
    if !caller.is_admin() {
        sql.push(" AND (i.visibility IN ('public', 'community') OR i.owner = ");
        sql.text(project);
        sql.push(
            " OR (i.visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m \
             WHERE m.image_id = i.id AND m.member_id = ",
        );
        sql.text(project);
        if let Some(s) = q.member_status {
            sql.push(" AND m.status = ");
            sql.text(s.as_str());
        }
        sql.push(")))");
    }
    match q.visibility {
        Some(VisibilityFilter::All) => {}
        Some(VisibilityFilter::Only(v)) => {
            sql.push(" AND i.visibility = ");
            sql.text(v.as_str());
        }
        None => {
            sql.push(" AND (i.visibility <> 'community' OR i.owner = ");
            sql.text(project);
            sql.push(")");
        }
    }
}

fn where_filter(sql: &mut Sql, f: &Filter) {
    match f {
        Filter::TextEq(col, v) => {
            sql.push(&format!(" AND {col} = "));
            sql.text(v);
        }
        Filter::TextIn(col, vs) => {
            sql.push(&format!(" AND {col} IN ("));
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.text(v);
            }
            sql.push(")");
        }
        Filter::Int(col, cmp, n) => {
            sql.push(&format!(" AND {col} {} ", cmp.sql()));
            sql.bind(Bind::Int(*n));
        }
        Filter::Time(col, cmp, t) => {
            sql.push(&format!(" AND {col} {} ", cmp.sql()));
            sql.text(t);
        }
        Filter::Flag(col, b) => {
            sql.push(&format!(" AND {col} = "));
            sql.bind(Bind::Int(i64::from(*b)));
        }
        Filter::Tag(t) => {
            sql.push(
                " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.tag = ",
            );
            sql.text(t);
            sql.push(")");
        }
        Filter::Property(k, v) => {
            sql.push(
                " AND EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = i.id AND p.name = ",
            );
            sql.text(k);
            sql.push(" AND p.value = ");
            sql.text(v);
            sql.push(")");
        }
    }
}

/// `(k1 after m1) OR (k1 = m1 AND ((k2 after m2) OR (k2 = m2 AND …)))`.
fn keyset(sql: &mut Sql, sort: &[(SortKey, SortDir)], marker: &Image) {
    let Some(((key, dir), rest)) = sort.split_first() else {
        sql.push("1 = 0");
        return;
    };
    let op = if *dir == SortDir::Asc { ">" } else { "<" };
    sql.push(&format!("({} {op} ", key.expr()));
    sql.bind(key.value(marker));
    if rest.is_empty() {
        sql.push(")");
        return;
    }
    sql.push(&format!(" OR ({} = ", key.expr()));
    sql.bind(key.value(marker));
    sql.push(" AND ");
    keyset(sql, rest, marker);
    sql.push("))");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_sql() {
        let mut sql = Sql {
            text: String::new(),
            binds: Vec::new(),
        };
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        let img = Image::queued("b".into(), "o".into(), t);
        keyset(
            &mut sql,
            &[(SortKey::Name, SortDir::Asc), (SortKey::Id, SortDir::Desc)],
            &img,
        );
        assert_eq!(
            sql.text,
            "(COALESCE(i.name, '') > $1 OR (COALESCE(i.name, '') = $2 AND (i.id < $3)))"
        );
        assert_eq!(sql.binds[0], Bind::Text(String::new()));
    }
}

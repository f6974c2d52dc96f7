//! The parameters of `GET /v2/images` read into a [`ListQuery`], with Glance's rules and
//! messages: filters (equality, the `in:` operator on id/name/status/formats, `gt|gte|eq|neq|
//! lt|lte:` on `created_at`/`updated_at`, `*_min`/`*_max` ranges, repeatable `tag`, custom
//! property equality for any other key), `visibility`, `member_status`, `os_hidden`, `protected`,
//! sort keys and directions in both syntaxes (`sort_key`/`sort_dir` or `sort=k:dir,…`), and
//! `limit`/`marker`. Bad values are 400. Pure; nothing to recover after a crash.

use glimpse_types::{Visibility, db_time, parse_time};

use super::model::{Image, MemberStatus};
use crate::db::caps;
use crate::error::{Error, Result};

/// Default page size (Glance's `limit_param_default`).
pub const DEFAULT_LIMIT: usize = 25;
/// Largest page size (Glance's `api_limit_max`).
pub const MAX_LIMIT: usize = 1000;

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    Id,
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    const ALL: [(&'static str, SortKey); 8] = [
        ("name", SortKey::Name),
        ("status", SortKey::Status),
        ("container_format", SortKey::ContainerFormat),
        ("disk_format", SortKey::DiskFormat),
        ("size", SortKey::Size),
        ("id", SortKey::Id),
        ("created_at", SortKey::CreatedAt),
        ("updated_at", SortKey::UpdatedAt),
    ];

    fn parse(s: &str) -> Result<SortKey> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "Invalid sort key: {s}. It must be one of the following: name, status, \
                     container_format, disk_format, size, id, created_at, updated_at."
                ))
            })
    }

    /// The SQL expression sorted on (NULLs folded so both backends agree).
    pub(crate) fn expr(self) -> &'static str {
        match self {
            SortKey::Name => "COALESCE(i.name, '')",
            SortKey::Status => "i.status",
            SortKey::ContainerFormat => "COALESCE(i.container_format, '')",
            SortKey::DiskFormat => "COALESCE(i.disk_format, '')",
            SortKey::Size => "COALESCE(i.size, -1)",
            SortKey::Id => "i.id",
            SortKey::CreatedAt => "i.created_at",
            SortKey::UpdatedAt => "i.updated_at",
        }
    }

    /// The value of [`SortKey::expr`] for an image (the marker).
    pub(crate) fn value(self, img: &Image) -> Bind {
        let text = |s: &Option<String>| Bind::Text(s.clone().unwrap_or_default());
        match self {
            SortKey::Name => text(&img.name),
            SortKey::Status => Bind::Text(img.status.as_str().to_string()),
            SortKey::ContainerFormat => text(&img.container_format),
            SortKey::DiskFormat => text(&img.disk_format),
            SortKey::Size => Bind::Int(img.size.unwrap_or(-1)),
            SortKey::Id => Bind::Text(img.id.clone()),
            SortKey::CreatedAt => Bind::Text(db_time(img.created_at)),
            SortKey::UpdatedAt => Bind::Text(db_time(img.updated_at)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    fn parse(s: &str) -> Result<SortDir> {
        match s {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            _ => Err(Error::bad_request(format!("Invalid sort direction: {s}"))),
        }
    }
}

/// A comparison of a time or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "eq" => Cmp::Eq,
            "neq" => Cmp::Neq,
            "gt" => Cmp::Gt,
            "gte" => Cmp::Gte,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Lte,
            _ => return None,
        })
    }

    pub(crate) fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Neq => "<>",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }
}

/// One filter condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `column = value` on a text column.
    TextEq(&'static str, String),
    /// `column IN (…)` on a text column (the `in:` operator).
    TextIn(&'static str, Vec<String>),
    /// A comparison on an integer column (`size_min`, `size=`, …).
    Int(&'static str, Cmp, i64),
    /// A comparison on `created_at`/`updated_at` (text in db_time form).
    Time(&'static str, Cmp, String),
    /// `protected=true|false`.
    Flag(&'static str, bool),
    /// The image has this tag (repeatable: all must match).
    Tag(String),
    /// The image has this custom property with this value.
    Property(String, String),
}

/// Which visibilities a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    All,
    Only(Visibility),
}

/// A parsed `GET /v2/images` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub marker: Option<String>,
    /// Requested keys; `created_at` and `id` are appended when the query runs.
    pub sort: Vec<(SortKey, SortDir)>,
    /// The direction of the appended `created_at`/`id` keys.
    pub default_dir: SortDir,
    pub visibility: Option<VisibilityFilter>,
    /// `None` means any status (`member_status=all`).
    pub member_status: Option<MemberStatus>,
    pub os_hidden: bool,
    pub filters: Vec<Filter>,
}

/// Splits Glance's `op:value` filter syntax (`in:a,b`, `gte:2020-…`); no known operator means
/// `eq` with the whole value, except that an unknown operator before a colon is refused.
fn split_op(v: &str) -> (&str, &str) {
    match v.split_once(':') {
        Some((op, rest)) if parse_time(v).is_none() => (op, rest),
        _ => ("eq", v),
    }
}

/// Splits an `in:` list on commas, honouring double-quoted values (`"a,b",c`).
fn split_in(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses an ISO 8601 time as Glance accepts it (offset optional, UTC assumed).
fn parse_iso(s: &str) -> Option<String> {
    if let Some(t) = parse_time(s) {
        return Some(db_time(t));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(db_time(t.and_utc()));
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| db_time(t.and_utc()))
}

fn flag(name: &str, v: &str, strict_case: bool) -> Result<bool> {
    let l = if strict_case {
        v.to_string()
    } else {
        v.to_ascii_lowercase()
    };
    match l.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::bad_request(format!(
            "Invalid value '{v}' for '{name}' filter. Valid values are 'true' or 'false'."
        ))),
    }
}

fn int_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "size" => "i.size",
        "virtual_size" => "i.virtual_size",
        "min_disk" => "i.min_disk",
        "min_ram" => "i.min_ram",
        _ => return None,
    })
}

fn parse_int(key: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| {
        Error::bad_request(format!(
            "Unable to filter on a range with a non-numeric value ({key}={v})."
        ))
    })
}

/// Reads one filter parameter of a list (any key that is not paging, sorting or scope).
fn filter(filters: &mut Vec<Filter>, k: &str, v: &str) -> Result<()> {
    match k {
        "protected" => filters.push(Filter::Flag("i.protected", flag("protected", v, true)?)),
        "tag" => filters.push(Filter::Tag(v.trim().to_string())),
        "created_at" | "updated_at" => {
            let col = if k == "created_at" {
                "i.created_at"
            } else {
                "i.updated_at"
            };
            let (op, t) = split_op(v);
            let cmp = Cmp::parse(op)
                .ok_or_else(|| Error::bad_request("Unable to filter on a unknown operator."))?;
            let t = parse_iso(t).ok_or_else(|| {
                Error::bad_request(format!(
                    "Bad \"{k}\" query filter format. Use ISO 8601 DateTime notation."
                ))
            })?;
            filters.push(Filter::Time(col, cmp, t));
        }
        "name" | "id" | "status" | "container_format" | "disk_format" => {
            let col = match k {
                "name" => "i.name",
                "id" => "i.id",
                "status" => "i.status",
                "container_format" => "i.container_format",
                _ => "i.disk_format",
            };
            match split_op(v) {
                ("in", list) => {
                    let values = split_in(list);
                    caps::at_most(values.len(), caps::VALUES, "values in an 'in:' filter")?;
                    filters.push(Filter::TextIn(col, values))
                }
                ("eq", val) => filters.push(Filter::TextEq(col, val.to_string())),
                (op, _) => {
                    return Err(Error::bad_request(format!(
                        "Unable to filter by unknown operator '{op}'."
                    )));
                }
            }
        }
        "owner" | "checksum" | "os_hash_value" | "os_hash_algo" => {
            let col = match k {
                "owner" => "i.owner",
                "checksum" => "i.checksum",
                "os_hash_value" => "i.os_hash_value",
                _ => "i.os_hash_algo",
            };
            filters.push(Filter::TextEq(col, v.to_string()));
        }
        key => {
            let range = key
                .strip_suffix("_min")
                .map(|c| (c, Cmp::Gte))
                .or_else(|| key.strip_suffix("_max").map(|c| (c, Cmp::Lte)))
                .and_then(|(c, cmp)| int_column(c).map(|col| (col, cmp)));
            if let Some((col, cmp)) = range {
                filters.push(Filter::Int(col, cmp, parse_int(key, v)?));
            } else if let Some(col) = int_column(key) {
                filters.push(Filter::Int(col, Cmp::Eq, parse_int(key, v)?));
            } else {
                filters.push(Filter::Property(key.to_string(), v.to_string()));
            }
        }
    }
    Ok(())
}

impl ListQuery {
    /// Reads the query pairs of a `GET /v2/images` request, in order.
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery> {
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            marker: None,
            sort: Vec::new(),
            default_dir: SortDir::Desc,
            visibility: None,
            member_status: Some(MemberStatus::Accepted),
            os_hidden: false,
            filters: Vec::new(),
        };
        let has = |k: &str| pairs.iter().any(|(n, _)| n == k);
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        if has("sort") && (has("sort_key") || has("sort_dir")) {
            return Err(Error::bad_request(
                "Old and new sorting syntax cannot be combined",
            ));
        }
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => {
                    let n: i64 = v
                        .trim()
                        .parse()
                        .map_err(|_| Error::bad_request("limit param must be an integer"))?;
                    if n < 0 {
                        return Err(Error::bad_request("limit param must be positive"));
                    }
                    q.limit = (n as u64).min(MAX_LIMIT as u64) as usize;
                }
                "marker" => q.marker = Some(v.clone()),
                "member_status" => {
                    q.member_status =
                        match v.as_str() {
                            "all" => None,
                            s => Some(MemberStatus::parse(s).ok_or_else(|| {
                                Error::bad_request(format!("Invalid status: {s}"))
                            })?),
                        }
                }
                "visibility" if v.is_empty() => {}
                "visibility" => {
                    q.visibility = Some(match v.as_str() {
                        "all" => VisibilityFilter::All,
                        s => VisibilityFilter::Only(Visibility::parse(s).ok_or_else(|| {
                            Error::bad_request(format!("Invalid visibility value: {s}"))
                        })?),
                    })
                }
                "os_hidden" => q.os_hidden = flag("os_hidden", v, false)?,
                "changes-since" => {
                    return Err(Error::bad_request(
                        "The \"changes-since\" filter is no longer available on v2.",
                    ));
                }
                "deleted" => {}
                "sort" => {
                    for part in v.trim().split(',') {
                        let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
                        keys.push(SortKey::parse(key.trim())?);
                        dirs.push(SortDir::parse(dir.trim())?);
                    }
                }
                "sort_key" => keys.push(SortKey::parse(v.trim())?),
                "sort_dir" => dirs.push(SortDir::parse(v.trim())?),
                _ => filter(&mut q.filters, k, v)?,
            }
        }
        caps::at_most(keys.len(), caps::SORT_KEYS, "sort keys")?;
        caps::at_most(dirs.len(), caps::SORT_KEYS, "sort directions")?;
        caps::at_most(q.filters.len(), caps::FILTERS, "filters")?;
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(Error::bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
        if keys.is_empty() {
            keys.push(SortKey::CreatedAt);
        }
        if dirs.len() == 1 {
            q.default_dir = dirs[0];
        }
        q.sort = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, dirs.get(i).copied().unwrap_or(q.default_dir)))
            .collect();
        Ok(q)
    }

    /// The full sort: requested keys, then `created_at` and `id` if missing.
    pub(crate) fn full_sort(&self) -> Vec<(SortKey, SortDir)> {
        let mut s = self.sort.clone();
        for k in [SortKey::CreatedAt, SortKey::Id] {
            if !s.iter().any(|(key, _)| *key == k) {
                s.push((k, self.default_dir));
            }
        }
        s
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let q = ListQuery::parse(&[]).unwrap();
        assert_eq!(q.limit, 25);
        assert_eq!(q.sort, vec![(SortKey::CreatedAt, SortDir::Desc)]);
        assert_eq!(q.member_status, Some(MemberStatus::Accepted));
        assert!(!q.os_hidden);
        assert_eq!(
            q.full_sort(),
            vec![
                (SortKey::CreatedAt, SortDir::Desc),
                (SortKey::Id, SortDir::Desc)
            ]
        );
    }

    #[test]
    fn sorting_syntaxes() {
        let q = ListQuery::parse(&pairs(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(
            q.sort,
            vec![
                (SortKey::Name, SortDir::Asc),
                (SortKey::Size, SortDir::Desc)
            ]
        );
        let q = ListQuery::parse(&pairs(&[
            ("sort_key", "size"),
            ("sort_dir", "asc"),
            ("sort_key", "name"),
        ]))
        .unwrap();
        assert_eq!(
            q.sort,
            vec![(SortKey::Size, SortDir::Asc), (SortKey::Name, SortDir::Asc)]
        );
        assert_eq!(q.full_sort().last(), Some(&(SortKey::Id, SortDir::Asc)));
        let bad = |p: &[(&str, &str)]| ListQuery::parse(&pairs(p)).unwrap_err().kind;
        assert_eq!(bad(&[("sort_key", "nosuch")]), crate::Kind::BadRequest);
        assert_eq!(bad(&[("sort_dir", "up")]), crate::Kind::BadRequest);
        assert_eq!(
            bad(&[("sort", "name"), ("sort_key", "name")]),
            crate::Kind::BadRequest
        );
        assert_eq!(
            bad(&[
                ("sort_key", "name"),
                ("sort_dir", "asc"),
                ("sort_dir", "asc"),
                ("sort_dir", "asc")
            ]),
            crate::Kind::BadRequest
        );
    }

    #[test]
    fn filters() {
        let q = ListQuery::parse(&pairs(&[
            ("name", "in:a,\"b,c\""),
            ("status", "queued"),
            ("size_min", "10"),
            ("size", "1024"),
            ("tag", "x"),
            ("tag", "y"),
            ("os_distro", "cirros"),
            ("created_at", "gte:2026-01-01T00:00:00Z"),
            ("os_hidden", "True"),
            ("limit", "5000"),
            ("member_status", "all"),
            ("visibility", "shared"),
        ]))
        .unwrap();
        assert_eq!(q.limit, 1000);
        assert!(q.os_hidden);
        assert_eq!(q.member_status, None);
        assert_eq!(
            q.visibility,
            Some(VisibilityFilter::Only(Visibility::Shared))
        );
        assert!(
            q.filters
                .contains(&Filter::TextIn("i.name", vec!["a".into(), "b,c".into()]))
        );
        assert!(
            q.filters
                .contains(&Filter::TextEq("i.status", "queued".into()))
        );
        assert!(q.filters.contains(&Filter::Int("i.size", Cmp::Gte, 10)));
        assert!(q.filters.contains(&Filter::Int("i.size", Cmp::Eq, 1024)));
        assert!(q.filters.contains(&Filter::Tag("y".into())));
        assert!(
            q.filters
                .contains(&Filter::Property("os_distro".into(), "cirros".into()))
        );
        assert!(q.filters.contains(&Filter::Time(
            "i.created_at",
            Cmp::Gte,
            "2026-01-01T00:00:00.000000Z".into()
        )));
    }

    #[test]
    fn bad_parameters() {
        let bad = |p: &[(&str, &str)]| ListQuery::parse(&pairs(p)).unwrap_err().kind;
        for p in [
            ("limit", "-1"),
            ("limit", "x"),
            ("member_status", "maybe"),
            ("visibility", "everyone"),
            ("os_hidden", "yes"),
            ("protected", "True"),
            ("size_min", "big"),
            ("created_at", "gte:yesterday"),
            ("created_at", "around:2026-01-01T00:00:00Z"),
            ("name", "like:x"),
            ("changes-since", "2020-01-01"),
        ] {
            assert_eq!(bad(&[p]), crate::Kind::BadRequest, "{p:?}");
        }
        // A bare ISO time keeps its colons.
        let q = ListQuery::parse(&pairs(&[("updated_at", "2026-01-01T00:00:00Z")])).unwrap();
        assert_eq!(
            q.filters[0],
            Filter::Time(
                "i.updated_at",
                Cmp::Eq,
                "2026-01-01T00:00:00.000000Z".into()
            )
        );
    }
}

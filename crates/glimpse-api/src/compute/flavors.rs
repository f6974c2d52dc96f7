//! `GET /flavors`, `/flavors/detail`, `/flavors/{id}`: the fixed flavors
//! ([`glimpse_core::compute::FLAVORS`]), with Nova's list parameters: `minDisk`, `minRam`
//! (400 `Invalid minDisk filter [x]` when not an integer), `limit`, `marker` (400 `marker [x]
//! not found`) and a `flavors_links` next link when a page is full; `is_public`, `sort_key`
//! and `sort_dir` are accepted (every flavor is public; the order is by id).

use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use glimpse_core::Error;
use glimpse_core::compute::{FLAVORS, Flavor};
use serde_json::{Value, json};

use super::{Base, R, nova, reply, views};
use crate::dialect::{ApiResult, Caller, Nova};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route("/flavors", get(flavors::<false>))
        .route("/flavors/detail", get(flavors::<true>))
        .route("/flavors/{id}", get(show))
}

/// The flavors a list query selects (see the module documentation), and whether the page
/// was cut by `limit`.
fn select(query: Option<&str>) -> Result<(Vec<Flavor>, bool), Error> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let int = |name: &str| -> Result<Option<i64>, Error> {
        match pairs.iter().find(|(k, _)| k == name) {
            None => Ok(None),
            Some((_, v)) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::bad_request(format!("Invalid {name} filter [{v}]"))),
        }
    };
    let (min_disk, min_ram) = (int("minDisk")?, int("minRam")?);
    let limit = match pairs.iter().find(|(k, _)| k == "limit") {
        None => None,
        Some((_, v)) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => {
                return Err(Error::bad_request(format!(
                    "Invalid input for query parameters limit. Value: {v}."
                )));
            }
        },
    };
    let mut list: Vec<Flavor> = FLAVORS
        .iter()
        .filter(|f| min_disk.is_none_or(|m| f.disk >= m) && min_ram.is_none_or(|m| f.ram >= m))
        .copied()
        .collect();
    if let Some((_, marker)) = pairs.iter().find(|(k, _)| k == "marker") {
        let at = FLAVORS
            .iter()
            .position(|f| f.id == marker)
            .ok_or_else(|| Error::bad_request(format!("marker [{marker}] not found")))?;
        let after: Vec<&str> = FLAVORS[at + 1..].iter().map(|f| f.id).collect();
        list.retain(|f| after.contains(&f.id));
    }
    let cut = limit.is_some_and(|n| list.len() > n || (n > 0 && list.len() == n));
    if let Some(n) = limit {
        list.truncate(n);
    }
    Ok((list, cut))
}

async fn flavors<const DETAIL: bool>(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    _caller: Caller<Nova>,
    RawQuery(query): RawQuery,
) -> ApiResult<Nova> {
    let (list, cut) = match select(query.as_deref()) {
        Ok(v) => v,
        Err(e) => return Err(nova(e)),
    };
    let mut body = json!({
        "flavors": list.iter().map(|f| views::flavor(&region, &base, f, DETAIL)).collect::<Vec<Value>>(),
    });
    if cut && let Some(last) = list.last() {
        let path = if DETAIL { "flavors/detail" } else { "flavors" };
        let limit = list.len();
        body["flavors_links"] = json!([{
            "rel": "next",
            "href": format!("{}/{path}?limit={limit}&marker={}", super::base_url(&region, &base), last.id),
        }]);
    }
    Ok(reply(StatusCode::OK, body))
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    _caller: Caller<Nova>,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    match glimpse_core::compute::flavor(&id) {
        Ok(f) => Ok(reply(
            StatusCode::OK,
            json!({"flavor": views::flavor(&region, &base, &f, true)}),
        )),
        Err(e) => Err(nova(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::select;

    fn ids(q: &str) -> Vec<&'static str> {
        select(Some(q)).unwrap().0.iter().map(|f| f.id).collect()
    }

    #[test]
    fn nova_list_parameters() {
        assert_eq!(ids(""), ["1", "2", "3", "4", "5"]);
        assert_eq!(ids("minDisk=40"), ["3", "4", "5"]);
        assert_eq!(ids("minRam=8192"), ["4", "5"]);
        assert_eq!(ids("marker=2"), ["3", "4", "5"]);
        assert_eq!(ids("marker=2&limit=1"), ["3"]);
        assert!(select(Some("limit=2")).unwrap().1);
        assert!(!select(Some("limit=9")).unwrap().1);
        assert_eq!(
            ids("is_public=None&sort_key=flavorid"),
            ["1", "2", "3", "4", "5"]
        );
        assert_eq!(
            select(Some("marker=x")).unwrap_err().message,
            "marker [x] not found"
        );
        assert_eq!(
            select(Some("minDisk=a")).unwrap_err().message,
            "Invalid minDisk filter [a]"
        );
        assert!(select(Some("limit=-1")).is_err());
    }
}

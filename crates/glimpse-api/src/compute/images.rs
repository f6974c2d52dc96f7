//! Nova's image proxy (`GET`/`DELETE /images/{id}`, what Tempest polls after `createImage`
//! at microversion 2.1, and `GET /images[/detail]`): this region's Glance records in Nova's
//! image view ([`views::image`]), with Glance's visibility rules. List parameters are Nova's
//! (`name`, `status`, `server` (an id or a server link), `type`, `changes-since`,
//! `property-<key>`, `limit`, `marker`), turned into a Glance list query as Nova turns them
//! into Glance filters; a full page carries an `images_links` next link. The metadata
//! sub-resource is in [`super::image_metadata`]. From microversion 2.36 the proxy is gone
//! (404), as in Nova.

use axum::Router;
use axum::extract::{Extension, FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use glimpse_core::images::ListQuery;
use glimpse_core::{Error, Kind};
use serde_json::{Value, json};

use super::{Base, R, reply, views};
use crate::dialect::{ApiResult, Caller, Nova, TokenSource, not_found};

pub(super) fn routes() -> Router<R> {
    Router::new()
        .route("/images", get(images::<false>))
        .route("/images/detail", get(images::<true>))
        .route("/images/{id}", get(show).delete(remove))
}

/// Nova's list parameters as a Glance list query (`nova/api/openstack/compute/images.py`
/// `_get_filters` and the Glance v2 conversion).
fn glance_query(query: Option<&str>) -> Result<ListQuery, Error> {
    let mut pairs = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned() {
        match k.as_str() {
            "name" | "limit" | "marker" => pairs.push((k, v)),
            "status" => pairs.push((k, v.to_lowercase())),
            "server" => {
                let id = v.rsplit('/').next().unwrap_or("").to_string();
                pairs.push(("instance_uuid".into(), id));
            }
            "type" => pairs.push(("image_type".into(), v)),
            "changes-since" => pairs.push(("updated_at".into(), format!("gte:{v}"))),
            _ => {
                if let Some(prop) = k.strip_prefix("property-") {
                    pairs.push((prop.to_string(), v));
                }
            }
        }
    }
    ListQuery::parse(&pairs)
}

async fn images<const DETAIL: bool>(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    ProxyCaller(caller): ProxyCaller<36>,
    RawQuery(query): RawQuery,
) -> ApiResult<Nova> {
    let q = glance_query(query.as_deref())?;
    let page = glimpse_core::images::list::list(&region, &caller, &q).await?;
    let list: Vec<Value> = page
        .images
        .iter()
        .map(|img| {
            if DETAIL {
                views::image(&region, &base, img)
            } else {
                json!({"id": img.id, "name": img.name, "links": views::image_links(&region, &base, &img.id)})
            }
        })
        .collect();
    let mut body = json!({ "images": list });
    if let Some(marker) = page.next_marker {
        let path = if DETAIL { "images/detail" } else { "images" };
        body["images_links"] = json!([{
            "rel": "next",
            "href": format!("{}/{path}?limit={}&marker={marker}", super::base_url(&region, &base), q.limit),
        }]);
    }
    Ok(reply(StatusCode::OK, body))
}

/// The caller of an image proxy request: 404 from microversion 2.`AT` (2.36 for the images,
/// 2.39 for their metadata: Nova removed them there), else the usual authentication.
pub(super) struct ProxyCaller<const AT: u32>(pub Caller<Nova>);

impl<const AT: u32, S: TokenSource + Send + Sync> FromRequestParts<S> for ProxyCaller<AT> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let base = parts.extensions.get::<Base>();
        if base.is_some_and(|b| b.version.at_least(2, AT)) {
            return Err(not_found::<Nova>());
        }
        Ok(ProxyCaller(Caller::from_request_parts(parts, state).await?))
    }
}

/// Nova's 404 for an image the caller cannot see.
pub(super) fn image_not_found(e: Error) -> Error {
    if e.kind == Kind::NotFound {
        Error::not_found("Image not found.")
    } else {
        e
    }
}

async fn show(
    State(region): State<R>,
    Extension(base): Extension<Base>,
    ProxyCaller(caller): ProxyCaller<36>,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    let img = glimpse_core::images::get(&region, &caller, &id)
        .await
        .map_err(image_not_found)?;
    Ok(reply(
        StatusCode::OK,
        json!({"image": views::image(&region, &base, &img)}),
    ))
}

async fn remove(
    State(region): State<R>,
    ProxyCaller(caller): ProxyCaller<36>,
    Path(id): Path<String>,
) -> ApiResult<Nova> {
    glimpse_core::images::delete(&region, &caller, &id)
        .await
        .map_err(image_not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! Handlers for the objects, properties and tags of a namespace: list, create (201), delete
//! all (204), and show, update, delete one; tags also bulk-create (`POST .../tags`, replacing
//! the namespace's tags unless `X-Openstack-Append: true`) and create one by URL
//! (`POST .../tags/{name}`). Stateless.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use glimpse_core::images::metadefs::{self, ItemKind, items, resource_types};

use super::input;
use serde_json::{Map, json};

use super::{RegionState, created, no_content, ok, query_pairs, view};
use crate::dialect::{ApiResult, Body, Caller, Glance};

// ---- objects ----

/// `GET .../objects`.
pub(super) async fn list_objects(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let q = input::item_query(&query_pairs(query), false)?;
    let objects = items::list(&region, &caller, &ns, ItemKind::Object, &q).await?;
    Ok(ok(&view::objects(&ns, &objects)))
}

/// `POST .../objects`.
pub(super) async fn create_object(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let o = input::object(&body, true)?;
    let item = items::create(&region, &caller, &ns, ItemKind::Object, &o.name, o.doc).await?;
    Ok(created(&view::object(&ns, &item)))
}

/// `DELETE .../objects`.
pub(super) async fn delete_objects(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    metadefs::delete_contents(&region, &caller, &ns, ItemKind::Object).await?;
    Ok(no_content())
}

/// `GET .../objects/{name}`.
pub(super) async fn show_object(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    let item = items::get(&region, &caller, &ns, ItemKind::Object, &name).await?;
    Ok(ok(&view::object(&ns, &item)))
}

/// `PUT .../objects/{name}` (the document replaces the object, name included).
pub(super) async fn update_object(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let o = input::object(&body, false)?;
    let item = items::update(
        &region,
        &caller,
        &ns,
        ItemKind::Object,
        &name,
        &o.name,
        o.doc,
    )
    .await?;
    Ok(ok(&view::object(&ns, &item)))
}

/// `DELETE .../objects/{name}`.
pub(super) async fn delete_object(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    items::delete(&region, &caller, &ns, ItemKind::Object, &name).await?;
    Ok(no_content())
}

// ---- properties ----

/// `GET .../properties`.
pub(super) async fn list_properties(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    let props = items::list(
        &region,
        &caller,
        &ns,
        ItemKind::Property,
        &items::ItemQuery::default(),
    )
    .await?;
    Ok(ok(&json!({"properties": view::properties(&props)})))
}

/// `POST .../properties`.
pub(super) async fn create_property(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let (name, doc) = input::property(&body)?;
    let item = items::create(&region, &caller, &ns, ItemKind::Property, &name, doc).await?;
    Ok(created(&view::property(&item)))
}

/// `DELETE .../properties`.
pub(super) async fn delete_properties(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    metadefs::delete_contents(&region, &caller, &ns, ItemKind::Property).await?;
    Ok(no_content())
}

/// `GET .../properties/{name}[?resource_type=…]` (with a resource type, `name` carries the
/// prefix of its association).
pub(super) async fn show_property(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let name = match query_pairs(query)
        .into_iter()
        .find(|(k, v)| k == "resource_type" && !v.is_empty())
    {
        Some((_, rt)) => resource_types::unprefixed(&region, &caller, &ns, &name, &rt).await?,
        None => name,
    };
    let item = items::get(&region, &caller, &ns, ItemKind::Property, &name).await?;
    Ok(ok(&view::property(&item)))
}

/// `PUT .../properties/{name}`.
pub(super) async fn update_property(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let (new_name, doc) = input::property(&body)?;
    let item = items::update(
        &region,
        &caller,
        &ns,
        ItemKind::Property,
        &name,
        &new_name,
        doc,
    )
    .await?;
    Ok(ok(&view::property(&item)))
}

/// `DELETE .../properties/{name}`.
pub(super) async fn delete_property(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    items::delete(&region, &caller, &ns, ItemKind::Property, &name).await?;
    Ok(no_content())
}

// ---- tags ----

/// `GET .../tags`.
pub(super) async fn list_tags(
    State(region): RegionState,
    caller: Caller<Glance>,
    _headers: HeaderMap,
    Path(ns): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Glance> {
    let q = input::item_query(&query_pairs(query), true)?;
    let tags = items::list(&region, &caller, &ns, ItemKind::Tag, &q).await?;
    Ok(ok(&json!({"tags": view::tag_names(&tags)})))
}

/// oslo's `bool_from_string` on `X-Openstack-Append`.
fn append(headers: &HeaderMap) -> bool {
    headers
        .get("x-openstack-append")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "t" | "true" | "on" | "y" | "yes"
            )
        })
        .unwrap_or(false)
}

/// `POST .../tags` with `{"tags": [{"name": …}, …]}`.
pub(super) async fn create_tags(
    State(region): RegionState,
    caller: Caller<Glance>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let names = input::tags(&body)?;
    let tags = items::create_tags(&region, &caller, &ns, &names, append(&headers)).await?;
    Ok(created(&json!({"tags": view::tag_names(&tags)})))
}

/// `DELETE .../tags`.
pub(super) async fn delete_tags(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path(ns): Path<String>,
) -> ApiResult<Glance> {
    metadefs::delete_contents(&region, &caller, &ns, ItemKind::Tag).await?;
    Ok(no_content())
}

/// `GET .../tags/{name}`.
pub(super) async fn show_tag(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    let tag = items::get(&region, &caller, &ns, ItemKind::Tag, &name).await?;
    Ok(ok(&view::tag(&tag)))
}

/// `POST .../tags/{name}` (no body).
pub(super) async fn create_tag(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    input::tag_name(&name)?;
    let tag = items::create(&region, &caller, &ns, ItemKind::Tag, &name, Map::new()).await?;
    Ok(created(&view::tag(&tag)))
}

/// `PUT .../tags/{name}` with `{"name": …}` (a rename).
pub(super) async fn update_tag(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
    Body(body, _): Body<Glance>,
) -> ApiResult<Glance> {
    let new_name = input::tag(&body)?;
    let tag = items::update(
        &region,
        &caller,
        &ns,
        ItemKind::Tag,
        &name,
        &new_name,
        Map::new(),
    )
    .await?;
    Ok(ok(&view::tag(&tag)))
}

/// `DELETE .../tags/{name}`.
pub(super) async fn delete_tag(
    State(region): RegionState,
    caller: Caller<Glance>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Glance> {
    items::delete(&region, &caller, &ns, ItemKind::Tag, &name).await?;
    Ok(no_content())
}

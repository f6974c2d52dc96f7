//! Where most compute tests start: a cloud, a member of a new project in region-one, and a
//! raw image of theirs to boot from. Skipped (`None`) without qemu-img and qemu-io.
#![allow(dead_code)]

use glimpse_core::config::Config;

use serde_json::Value;

use super::TestCloud;
use super::nova::{Nova, Reply, qemu_present, raw_image};

/// (cloud, the member's project id, their token, the raw image, their compute API in
/// region-one without a microversion).
pub type Start = (TestCloud, String, String, String, Nova);

/// A cloud, a member, and a raw image named `base` of `data`; `None` without qemu.
pub async fn start(data: Vec<u8>) -> Option<Start> {
    start_with(|_| {}, "base", data).await
}

/// [`start`] with a config adjusted by `tweak` and the image named `name`.
pub async fn start_with(
    tweak: impl FnOnce(&mut Config),
    name: &str,
    data: Vec<u8>,
) -> Option<Start> {
    if !qemu_present() {
        return None;
    }
    let tc = TestCloud::start_with(tweak).await;
    let (project, token) = tc.user_in_new_project("member", "region-one").await;
    let image = raw_image(&tc, "region-one", &token, name, data).await;
    let nova = Nova::new(&tc, "region-one", &token);
    Some((tc, project, token, image, nova))
}

/// The `message` of the fault named `fault` in a Nova error body.
pub fn message<'a>(body: &'a Value, fault: &str) -> &'a str {
    body[fault]["message"].as_str().unwrap()
}

/// `createImage` of the server `id`, with a name only: the reply.
pub async fn create_image(nova: &Nova, id: &str, name: &str) -> Reply {
    let body = serde_json::json!({"createImage": {"name": name}});
    nova.action(id, body).await
}

/// `PUT path` of `body` with the compute API `nova`: the reply.
pub async fn put(nova: &Nova, path: &str, body: Value) -> Reply {
    nova.call(reqwest::Method::PUT, path, Some(body)).await
}

/// `POST /servers` of a server named `name` from `image` with `flavor`: the reply.
pub async fn post_server(nova: &Nova, name: &str, image: &str, flavor: &str) -> Reply {
    let body =
        serde_json::json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor}});
    nova.post("/servers", body).await
}

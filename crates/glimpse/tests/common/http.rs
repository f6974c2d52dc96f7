//! Small HTTP and JSON helpers shared by the suites.
#![allow(dead_code)]

use serde_json::Value;

/// Sends `rb` with `headers` and the JSON `body`: status and JSON answer (`Null` when empty
/// or not JSON).
pub async fn send(
    mut rb: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET url` without a token.
pub async fn get_public(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    http.get(url).send().await.unwrap()
}

/// `GET url` with `X-Auth-Token`.
pub async fn get(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
) -> reqwest::Response {
    http.get(url)
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap()
}

/// `GET url` with `X-Auth-Token`, the body read as JSON (whatever the status).
pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, token: &str) -> Value {
    get_json_with(http, url, token, &[]).await
}

/// [`get_json`] with more request headers.
pub async fn get_json_with(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
    headers: &[(&str, &str)],
) -> Value {
    let mut rb = http.get(url).header("x-auth-token", token);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap().json().await.unwrap()
}

/// `POST url` of the JSON `body` with `X-Auth-Token`: asserts the status `want`; the answer.
pub async fn post_json(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
    body: &Value,
    want: u16,
) -> Value {
    let url = url.into_url().unwrap();
    let r = http
        .post(url.clone())
        .header("x-auth-token", token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, want, "POST {}: {text}", url.path());
    serde_json::from_str(&text).unwrap()
}

/// The string `field` of every object in the JSON array `list`.
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap())
        .collect()
}

/// [`strings`], owned.
pub fn owned_strings(list: &Value, field: &str) -> Vec<String> {
    strings(list, field).into_iter().map(String::from).collect()
}

/// The first object in the JSON array `list` whose `field` is `value`.
pub fn find<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    let found = list.as_array().unwrap().iter().find(|x| x[field] == value);
    found.unwrap_or_else(|| panic!("no {field} {value} in {list}"))
}

/// Whether an object in the JSON array `list` has `field` equal to `value`.
pub fn any(list: &Value, field: &str, value: &str) -> bool {
    list.as_array().unwrap().iter().any(|x| x[field] == value)
}

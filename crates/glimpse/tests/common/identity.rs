//! Helpers for the identity tests (`tests/identity*.rs`): token requests, a small client of
//! the Keystone API holding a token, and the error-shape assertion.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestCloud;

pub const UNAUTHORIZED: &str = "The request you have made requires authentication.";

pub fn password_body(user: Value, password: &str, scope: Option<Value>) -> Value {
    let mut user = user;
    user["password"] = json!(password);
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    json!({ "auth": auth })
}

pub fn by_name(name: &str) -> Value {
    json!({"name": name, "domain": {"name": "Default"}})
}

pub async fn post_token(tc: &TestCloud, body: &Value) -> reqwest::Response {
    tc.http
        .post(format!("{}/auth/tokens", tc.identity()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Issues a token and returns (token, body).
pub async fn issue(tc: &TestCloud, body: &Value) -> (String, Value) {
    let r = post_token(tc, body).await;
    assert_eq!(r.status(), 201, "{body}");
    let t = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    (t, r.json().await.unwrap())
}

/// Sends `method path` (relative to `/identity/v3`) with a token and optional JSON body.
pub async fn call(
    tc: &TestCloud,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = tc.http.request(method, format!("{}{path}", tc.identity()));
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, v)
}

/// A client of the identity API holding a token: `ks(&tc, &token).get("/projects").await`.
pub struct Ks<'a> {
    pub tc: &'a TestCloud,
    pub token: &'a str,
}

pub fn ks<'a>(tc: &'a TestCloud, token: &'a str) -> Ks<'a> {
    Ks { tc, token }
}

impl Ks<'_> {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        call(self.tc, Method::GET, path, Some(self.token), None).await
    }
    pub async fn head(&self, path: &str) -> (StatusCode, Value) {
        call(self.tc, Method::HEAD, path, Some(self.token), None).await
    }
    pub async fn put(&self, path: &str) -> (StatusCode, Value) {
        call(self.tc, Method::PUT, path, Some(self.token), None).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        call(self.tc, Method::DELETE, path, Some(self.token), None).await
    }
    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        call(self.tc, Method::POST, path, Some(self.token), Some(body)).await
    }
    pub async fn patch_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        call(self.tc, Method::PATCH, path, Some(self.token), Some(body)).await
    }
}

pub fn assert_error(status: StatusCode, body: &Value, code: u16, title: &str) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["title"], title, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

pub fn is_keystone_time(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

pub async fn role_id(tc: &TestCloud, admin: &str, name: &str) -> String {
    let (s, v) = ks(tc, admin).get(&format!("/roles?name={name}")).await;
    assert_eq!(s, 200);
    v["roles"][0]["id"].as_str().unwrap().to_string()
}

pub async fn create_user(tc: &TestCloud, admin: &str, name: &str, password: &str) -> String {
    let (s, v) = ks(tc, admin)
        .post_json(
            "/users",
            json!({"user": {"name": name, "password": password, "domain_id": "default"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["user"]["id"].as_str().unwrap().to_string()
}

pub async fn create_project(tc: &TestCloud, admin: &str, body: Value) -> Value {
    let (s, v) = ks(tc, admin)
        .post_json("/projects", json!({"project": body}))
        .await;
    assert_eq!(s, 201, "{v}");
    v["project"].clone()
}

pub async fn validate(tc: &TestCloud, auth: &str, subject: &str) -> StatusCode {
    tc.http
        .get(format!("{}/auth/tokens", tc.identity()))
        .header("x-auth-token", auth)
        .header("x-subject-token", subject)
        .send()
        .await
        .unwrap()
        .status()
}

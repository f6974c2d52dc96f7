//! The client against a small local server: which answers are values, which are a
//! [`Fault::Down`] and which a [`Fault::Refused`].

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use glimpse_types::keystone::{Named, PasswordAuth};
use reqwest::Client;

use crate::{Fault, Glance, Keystone, Kms};

/// A Glance, a KMS and an identity that answer what the tests below expect.
fn app() -> Router {
    let answer = |status: u16, body: &'static str| {
        move || async move { (StatusCode::from_u16(status).unwrap(), body) }
    };
    Router::new()
        .route(
            "/image/v2/images/busy",
            get(answer(503, r#"{"message": "The server is busy."}"#)),
        )
        .route(
            "/image/v2/images/gone",
            get(answer(
                404,
                r#"{"message": "No image found with ID gone", "code": "404 Not Found"}"#,
            )),
        )
        .route("/image/v2/images/garbled", get(answer(200, "<html>")))
        .route("/image/v2/images/{id}/file", get(answer(204, "")))
        .route(
            "/image/v2/extension/image_replicator/jobs/{id}",
            get(answer(200, "<html>")),
        )
        .route(
            "/kms/v1.0/p1/kms/describe-key",
            post(answer(
                404,
                r#"{"error": {"error_code": "KMS.0205", "error_msg": "The key does not exist."}}"#,
            )),
        )
        .route(
            "/identity/v3/auth/tokens",
            get(validate).post(|| async { ([("x-subject-token", "t1")], "<html>") }),
        )
}

/// Keystone's `GET /v3/auth/tokens` asked with the service token `svc`: token `good`, or the
/// expired `old` with `allow_expired=1`; else 404 (401 when asked with another token).
async fn validate(
    h: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> (StatusCode, &'static str) {
    let token = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    let subject = token("x-subject-token");
    if token("x-auth-token") != Some("svc") {
        let body = r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#;
        (StatusCode::UNAUTHORIZED, body)
    } else if subject == Some("good")
        || (subject == Some("old") && q.as_deref() == Some("allow_expired=1"))
    {
        let body = r#"{"token": {"expires_at": "2030-01-01T00:00:00Z", "user": {"id": "u1"}}}"#;
        (StatusCode::OK, body)
    } else {
        let body =
            r#"{"error": {"code": 404, "title": "Not Found", "message": "Could not find token."}}"#;
        (StatusCode::NOT_FOUND, body)
    }
}

/// The refusal the client should make of a 4xx (or a 204 download).
fn refused(status: u16, message: &str, code: Option<&str>) -> Fault {
    Fault::Refused {
        status,
        message: message.into(),
        code: code.map(str::to_string),
    }
}

/// [`app`] on 127.0.0.1 (a free port) for the rest of the test: its URL, and its Glance.
async fn serve() -> (String, Glance) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    let url = format!("http://{addr}");
    let glance = Glance::new(Client::new(), &format!("{url}/image"), "t");
    (url, glance)
}

/// `f` is a [`Fault::Down`] whose message starts with `prefix`.
fn assert_down(f: &Fault, prefix: &str) {
    assert!(
        matches!(f, Fault::Down(m) if m.starts_with(prefix)),
        "{f:?}"
    );
}

#[tokio::test]
async fn a_5xx_is_down_and_no_answer_too() {
    let (_, glance) = serve().await;
    assert_eq!(
        glance.image("busy").await.unwrap_err(),
        Fault::Down("reading image: 503 The server is busy.".into())
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = format!("http://{}/image", closed.local_addr().unwrap());
    drop(closed);
    let f = Glance::new(Client::new(), &nobody, "t")
        .image("any")
        .await
        .unwrap_err();
    assert_down(&f, "reading image: ");
}

#[tokio::test]
async fn a_4xx_is_refused_with_the_servers_message_and_code() {
    let (url, glance) = serve().await;
    assert_eq!(
        glance.image("gone").await.unwrap_err(),
        refused(404, "reading image: 404 No image found with ID gone", None)
    );
    let f = Kms::new(Client::new(), &format!("{url}/kms"), "p1", "t")
        .describe("k1")
        .await
        .unwrap_err();
    assert_eq!(
        f,
        refused(
            404,
            "describe-key: 404 The key does not exist.",
            Some("KMS.0205")
        )
    );
    assert_eq!(
        f.to_string(),
        "describe-key: 404 The key does not exist. (KMS.0205)"
    );
}

#[tokio::test]
async fn a_download_without_data_is_refused() {
    let (_, glance) = serve().await;
    assert_eq!(
        glance.download("i1", 0).await.unwrap_err(),
        refused(204, "the source image has no data", None)
    );
}

#[tokio::test]
async fn an_unreadable_answer_is_down() {
    let (url, glance) = serve().await;
    let keystone = Keystone::new(Client::new(), &format!("{url}/identity/v3"));
    let auth = PasswordAuth::new(
        Named {
            id: Some("u1".into()),
            ..Named::default()
        },
        "pw".into(),
        Named {
            id: Some("p1".into()),
            ..Named::default()
        },
    );
    let faults = [
        ("reading image", glance.image("garbled").await.unwrap_err()),
        (
            "reading a replication job",
            glance.replicator().job("j1").await.unwrap_err(),
        ),
        ("logging in", keystone.login(&auth).await.unwrap_err()),
    ];
    for (what, f) in faults {
        assert_down(&f, &format!("{what}: unreadable answer: "));
    }
}

/// What `RemoteValidator` (glimpse-core) asks identity: the caller's token as the subject,
/// the region's service token as `X-Auth-Token`, `allow_expired=1` when asked; a refusal
/// keeps its status (404: the subject is not good; 401: the service token is not).
#[tokio::test]
async fn validates_a_token_with_the_service_token() {
    let (url, _) = serve().await;
    let keystone = Keystone::new(Client::new(), &format!("{url}/identity/v3/"));
    let token = keystone.validate("svc", "good", false).await.unwrap();
    assert_eq!(
        (token.user.id.as_str(), token.expires_at.as_str()),
        ("u1", "2030-01-01T00:00:00Z")
    );
    keystone.validate("svc", "old", true).await.unwrap();
    let not_found = refused(404, "validating a token: 404 Could not find token.", None);
    assert_eq!(
        keystone.validate("svc", "old", false).await.unwrap_err(),
        not_found
    );
    assert_eq!(
        keystone.validate("svc", "bad", false).await.unwrap_err(),
        not_found
    );
    assert_eq!(
        keystone
            .validate("good", "good", false)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
}

//! Why a call failed, and the helpers every client call shares to send a request and read
//! its answer.

use std::time::Duration;

use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Time limit of a metadata call (not of a data transfer).
pub const META_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a remote call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No answer (connection refused or reset, timeout), an unreadable answer, or a 5xx.
    Down(String),
    /// A 4xx answer: `message` is "<what>: <status> <the service's message>", `code` the
    /// dialect's error code when it has one (IMS `IMG.xxxx`, KMS `KMS.xxxx`).
    Refused {
        status: u16,
        message: String,
        code: Option<String>,
    },
}

impl Fault {
    /// The status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Fault::Down(_) => None,
            Fault::Refused { status, .. } => Some(*status),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fault::Down(m) | Fault::Refused { message: m, .. } => m,
        }
    }

    fn unreadable(what: &str, e: impl std::fmt::Display) -> Fault {
        Fault::Down(format!("{what}: unreadable answer: {e}"))
    }
}

/// The message, and a refusal's error code after it: "<message> (<code>)".
impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Refused {
                message,
                code: Some(code),
                ..
            } => write!(f, "{message} ({code})"),
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for Fault {}

/// A reqwest error with its causes (reqwest's own text is terse: "error sending request").
pub fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn text<'a>(at: Option<&'a Value>, key: &str) -> Option<&'a str> {
    at.and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// The message and code of an error body in any of the dialects Glimpse speaks: Glance's
/// `message` (asked for with `Accept: application/json`), Keystone's and IMS's
/// `error.message` (IMS's `error.code` is an `IMG.xxxx` code), KMS's `error.error_msg` and
/// `error.error_code`, Nova's and Cinder's `{"<faultName>": {"message"}}`, else the text after
/// a replicator's `"<status>\n\n"`; at most 300 characters, one line.
pub fn error_message(body: &str) -> (String, Option<String>) {
    let (msg, code) = match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            // Nova's and Cinder's fault, Keystone's, IMS's and KMS's `error`: one inner object.
            let inner = v
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.values().next())
                .filter(|i| i.is_object());
            let msg = text(Some(&v), "message")
                .or_else(|| text(inner, "message"))
                .or_else(|| text(inner, "error_msg"))
                .unwrap_or(body);
            let code = text(inner, "error_code").or_else(|| text(inner, "code"));
            (msg.to_string(), code.map(str::to_string))
        }
        Err(_) => {
            let text = body.split_once("\n\n").map_or(body, |(_, m)| m);
            (text.to_string(), None)
        }
    };
    let msg = msg.replace("<br />", " ");
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    (msg.chars().take(300).collect(), code)
}

/// Sends a request; 2xx and 3xx are answers, everything else a [`Fault`] naming `what`.
pub async fn send(rb: RequestBuilder, what: &str) -> Result<Response, Fault> {
    let resp = rb
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Fault::Down(format!("{what}: {}", describe(&e))))?;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let (text, code) = error_message(&body);
    let message = format!("{what}: {} {text}", status.as_u16());
    if status.is_server_error() {
        Err(Fault::Down(message))
    } else {
        Err(Fault::Refused {
            status: status.as_u16(),
            message,
            code,
        })
    }
}

/// A metadata call whose answer is the JSON body `T`.
pub async fn json<T: DeserializeOwned>(rb: RequestBuilder, what: &str) -> Result<T, Fault> {
    read_json(send(rb.timeout(META_TIMEOUT), what).await?, what).await
}

/// Reads an answer's body as the JSON `T`; a body that does not come, or is not `T`, is
/// [`Fault::Down`] naming `what`.
pub async fn read_json<T: DeserializeOwned>(resp: Response, what: &str) -> Result<T, Fault> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Fault::Down(format!("{what}: {}", describe(&e))))?;
    serde_json::from_slice(&bytes).map_err(|e| Fault::unreadable(what, e))
}

/// A metadata call whose answer has no body worth reading.
pub async fn empty(rb: RequestBuilder, what: &str) -> Result<(), Fault> {
    send(rb.timeout(META_TIMEOUT), what).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_dialects_error_message() {
        assert_eq!(
            error_message(r#"{"message": "No image<br /><br />found", "code": "404 Not Found"}"#),
            ("No image found".into(), None)
        );
        assert_eq!(
            error_message(r#"{"error": {"message": "The request you have made requires authentication.", "code": 401}}"#).0,
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(r#"{"error": {"error_code": "KMS.0205", "error_msg": "gone"}}"#),
            ("gone".into(), Some("KMS.0205".into()))
        );
        assert_eq!(
            error_message(r#"{"error": {"code": "IMG.0001", "message": "bad"}}"#),
            ("bad".into(), Some("IMG.0001".into()))
        );
        assert_eq!(
            error_message(r#"{"itemNotFound": {"code": 404, "message": "No volume"}}"#),
            ("No volume".into(), None)
        );
        assert_eq!(
            error_message("409 Conflict\n\nNot now."),
            ("Not now.".into(), None)
        );
        assert_eq!(error_message("oops").0, "oops");
    }
}

//! Webhooks: a small HTTP/1.1 client that POSTs a JSON body and reads the status, and what a status means
//! for retrying. Shared by the gateway's alerts and the notification worker.

mod http;
mod url;

use std::time::Duration;

pub use http::Endpoint;
pub use url::WebhookUrl;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try: connection trouble, a timeout, a 5xx, 408 or 429.
    Transient(String),
    /// Another try would fail the same way: a 3xx or 4xx says the request itself is wrong.
    Permanent(String),
}

impl Failure {
    /// What went wrong.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient(r) | Failure::Permanent(r) => r,
        }
    }
}

/// POSTs `body` to `endpoint`, giving up after `timeout`; `Ok` on a 2xx answer.
pub async fn post(endpoint: &Endpoint, body: &[u8], timeout: Duration) -> Result<(), Failure> {
    let status = match tokio::time::timeout(timeout, endpoint.post(body)).await {
        Err(_) => return Err(Failure::Transient(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => return Err(Failure::Transient(e)),
        Ok(Ok(status)) => status,
    };
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(Failure::Transient(format!("HTTP status {status}"))),
        _ => Err(Failure::Permanent(format!("HTTP status {status}"))),
    }
}

/// Slack treats `<`, `>` and `&` as control characters (links, mentions) unless escaped.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

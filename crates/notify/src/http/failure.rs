//! Why a request failed, and whether trying again can help.

use std::time::Duration;

/// Why a POST did not get a 2xx answer. Messages never carry the URL: webhook tokens live in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No complete answer within the endpoint's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection (or its TLS handshake) could not be made.
    #[error("connect: {0}")]
    Connect(String),
    /// The server answered with this non-2xx status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The exchange broke off after connecting.
    #[error("{0}")]
    Exchange(String),
}

impl Failure {
    /// Worth another try: connection trouble, a timeout, a 5xx, 408 or 429. Another 3xx or 4xx would
    /// fail the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Status(status) => matches!(status, 408 | 429 | 500..=599),
            _ => true,
        }
    }

    pub(super) fn of(error: reqwest::Error, timeout: Duration) -> Failure {
        if error.is_timeout() {
            Failure::Timeout(timeout)
        } else if error.is_connect() {
            Failure::Connect(chain(&error))
        } else {
            Failure::Exchange(chain(&error))
        }
    }
}

/// The client cannot be built (its TLS settings, say).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct SetupError(pub String);

/// `error` and its causes, most general first, without the URL.
pub(super) fn chain(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        let part = if text.is_empty() {
            // reqwest's own message names the URL when it has one.
            let mut e = e.to_string();
            if let Some(at) = e.find(" for url (") {
                e.truncate(at);
            }
            e
        } else {
            e.to_string()
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        cause = e.source();
    }
    text
}

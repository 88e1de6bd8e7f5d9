//! Notifications of approval workflow steps (issue 4): the delivery worker a gateway runs over the store's
//! outbox, sending each notification by e-mail (SMTP) to its recipients' `email` attribute and to every
//! configured webhook (JSON, or a Slack-compatible `{"text": …}`), and the HTTP client ([`http`]) that
//! every outbound POST of Portcullis shares: these webhooks, the gateway's alerts, audit sinks.
//!
//! Filing or concluding a request writes the notification into the store (`portcullis-workflows`); the
//! worker plans its deliveries against this gateway's configuration, sends the due ones on tasks of its
//! own with bounded timeouts, retries failures with exponential backoff and records every attempt. So a
//! slow or unreachable SMTP server or webhook delays nothing but its own deliveries, and a notification
//! written while no gateway runs goes out when one starts.

mod attempt;
mod config;
pub mod http;
mod payload;
mod smtp;
pub mod webhook;
mod worker;

use std::time::Duration;

pub use config::{NotifyConfig, RetryConfig, SmtpConfig, SmtpTls, WebhookConfig, WebhookFormat};
pub use worker::{start, start_with, Notifier};

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A setting cannot be used.
    #[error("notifications.{setting}: {reason}")]
    Setting {
        /// Which one.
        setting: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client for webhooks cannot be set up.
    #[error("notifications.webhooks: {0}")]
    Client(#[from] http::SetupError),
    /// The worker needs a runtime.
    #[error("notifications: the delivery worker needs a tokio runtime; start it inside one")]
    NoRuntime,
}

/// The pause after failed attempt `n` (from 0): `first`, doubling each time, never more than `max`.
pub fn backoff(first: Duration, max: Duration, n: u32) -> Duration {
    first
        .checked_mul(2u32.saturating_pow(n))
        .map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_up_to_the_cap() {
        let (first, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(first, max, 0), Duration::from_secs(30));
        assert_eq!(backoff(first, max, 1), Duration::from_secs(60));
        assert_eq!(backoff(first, max, 3), Duration::from_secs(240));
        assert_eq!(backoff(first, max, 7), Duration::from_secs(3600));
        assert_eq!(backoff(first, max, u32::MAX), Duration::from_secs(3600));
        assert_eq!(backoff(Duration::ZERO, max, 5), Duration::ZERO);
    }
}

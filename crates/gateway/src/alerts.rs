//! Alert actions: every alert is a `warn` log line, and — when a webhook is configured — a JSON POST
//! to it.
//!
//! Delivery happens on a background task fed by a bounded queue. [`Alerter::send`] never waits: when the
//! queue is full (the receiver is down or slow) the alert is dropped and counted, so a broken receiver
//! can delay nothing but its own alerts. The log line is written first, so no alert goes unrecorded.

mod config;
mod payload;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_policy::Severity;
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{AlertConfig, AlertFormat};

use portcullis_notify::http::{Client, Endpoint};
use worker::Worker;

/// At most one "alerts dropped" warning per this interval, however many are dropped.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// One alert, as logged and as sent to the webhook (field names are the JSON keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// When it happened (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The rule's severity: `info`, `low`, `medium`, `high` or `critical`.
    #[serde(serialize_with = "severity_name")]
    pub severity: Severity,
    /// What raised it.
    pub kind: AlertKind,
    /// The id of the rule that fired.
    pub rule_id: String,
    /// The rule's human name, if it has one.
    pub rule_name: Option<String>,
    /// The rule's message (or a default one).
    pub message: String,
    /// Gateway user (as claimed, for connections refused before authentication).
    pub user: String,
    /// The resource (database) asked for.
    pub resource: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// The statement text, for statement alerts.
    pub statement: Option<String>,
    /// Gateway session id, to find the session in the audit log.
    pub session_id: String,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A connection (pre- or post-connection rule).
    Connection,
    /// A statement.
    Statement,
}

impl AlertKind {
    /// The name used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Statement => "statement",
        }
    }
}

fn rfc3339<S: Serializer>(time: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = time.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

fn severity_name<S: Serializer>(severity: &Severity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(severity.as_str())
}

/// Why alerting cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The webhook URL cannot be used.
    #[error("alerts.webhook: {0}")]
    Webhook(String),
    /// A setting is out of range.
    #[error("alerts.{setting}: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The webhook needs a runtime for its delivery task.
    #[error("alerts: the webhook delivery task needs a tokio runtime; start alerting inside one")]
    NoRuntime,
}

/// Sends alerts. Cheap to clone; all clones feed the same queue.
#[derive(Debug, Clone, Default)]
pub struct Alerter {
    webhook: Option<Arc<Webhook>>,
}

/// The sending side of the delivery task.
#[derive(Debug)]
struct Webhook {
    queue: mpsc::Sender<Alert>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
    /// Milliseconds after `epoch` of the last drop warning, `u64::MAX` before the first.
    last_drop_warning: AtomicU64,
    epoch: Instant,
}

impl Alerter {
    /// Alerts are only logged.
    pub fn disabled() -> Alerter {
        Alerter::default()
    }

    /// Validates `config` and, with a webhook, starts its delivery task on the current tokio runtime.
    /// For `https`, the server certificate is checked against the system CA bundle.
    pub fn start(config: &AlertConfig) -> Result<Alerter, AlertError> {
        Self::start_with(config, Client::system)
    }

    /// [`Alerter::start`] with the HTTP client made by `client`, called only when a webhook is
    /// configured (tests trust their own CA this way).
    fn start_with<E: std::fmt::Display>(
        config: &AlertConfig,
        client: impl FnOnce() -> Result<Client, E>,
    ) -> Result<Alerter, AlertError> {
        let Some(webhook) = &config.webhook else {
            return Ok(Alerter::disabled());
        };
        if config.queue == 0 {
            return Err(AlertError::Setting {
                setting: "queue",
                reason: "must be at least 1",
            });
        }
        if config.timeout_secs == 0 {
            return Err(AlertError::Setting {
                setting: "timeout_secs",
                reason: "must be at least 1",
            });
        }
        let endpoint = Endpoint::parse(webhook)
            .map_err(AlertError::Webhook)?
            .with_timeout(Duration::from_secs(config.timeout_secs));
        let origin = endpoint.origin();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AlertError::NoRuntime)?;
        let client = client().map_err(|e| AlertError::Webhook(e.to_string()))?;
        let (queue, alerts) = mpsc::channel(config.queue);
        let (stop, stop_rx) = watch::channel(false);
        let worker = Worker {
            alerts,
            stop: stop_rx,
            client,
            endpoint,
            format: config.format,
            retries: config.retries,
        };
        let task = runtime.spawn(worker.run());
        tracing::info!(webhook = %origin, queue = config.queue, "alert webhook enabled");
        Ok(Alerter {
            webhook: Some(Arc::new(Webhook {
                queue,
                stop,
                task: Mutex::new(Some(task)),
                dropped: AtomicU64::new(0),
                last_drop_warning: AtomicU64::new(u64::MAX),
                epoch: Instant::now(),
            })),
        })
    }

    /// Logs the alert at `warn` and queues it for the webhook. Never blocks and never fails: when the
    /// queue is full the alert is dropped (it is still in the log) and counted.
    pub fn send(&self, alert: Alert) {
        tracing::warn!(
            kind = alert.kind.as_str(),
            severity = alert.severity.as_str(),
            rule = %alert.rule_id,
            rule_name = alert.rule_name.as_deref(),
            user = %alert.user,
            resource = %alert.resource,
            client = %alert.client_addr,
            session = %alert.session_id,
            statement = alert.statement.as_deref(),
            "alert: {}",
            alert.message
        );
        let Some(webhook) = &self.webhook else {
            return;
        };
        match webhook.queue.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => webhook.dropped("the alert webhook queue is full"),
            Err(TrySendError::Closed(_)) => webhook.dropped("alerting has been shut down"),
        }
    }

    /// Alerts dropped because the queue was full or alerting was shut down.
    pub fn dropped(&self) -> u64 {
        self.webhook
            .as_ref()
            .map_or(0, |w| w.dropped.load(Ordering::Relaxed))
    }

    /// Stops accepting alerts, gives the queued ones one attempt each and waits up to `grace` for that;
    /// after it, undelivered alerts are abandoned. Later [`Alerter::send`] calls only log.
    pub async fn shutdown(&self, grace: Duration) {
        let Some(webhook) = &self.webhook else {
            return;
        };
        webhook.stop.send_replace(true);
        let task = webhook.task.lock().ok().and_then(|mut t| t.take());
        let Some(mut task) = task else {
            return;
        };
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                pending = webhook.queue.max_capacity() - webhook.queue.capacity(),
                "alert webhook shutdown: gave up on undelivered alerts"
            );
        }
    }
}

impl Webhook {
    fn dropped(&self, why: &str) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_drop_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX
            || now.saturating_sub(last) >= DROP_WARNING_INTERVAL.as_millis() as u64;
        // Only the caller that wins the exchange warns, so a burst of drops logs one line.
        if due
            && self
                .last_drop_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_total = total,
                "{why}: alerts are being dropped (they are still logged)"
            );
        }
    }
}

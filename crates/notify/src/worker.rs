//! The delivery worker: plans each new notification's deliveries, sends the due ones on tasks of their
//! own (a few at a time) and records every attempt.

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{AuditEvent, Delivery, DeliveryOutcome, Notification, Store, WorkflowEvent};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::attempt::AttemptError;
use crate::http::{Client, Endpoint};
use crate::smtp::Mailer;
use crate::{backoff, payload, NotifyConfig, NotifyError, WebhookFormat};

/// How often the outbox is read.
const POLL: Duration = Duration::from_millis(500);
/// Deliveries in flight at once; a receiver that never answers holds one slot until its timeout.
const SLOTS: usize = 8;
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Notifications planned per pass.
const PLAN_BATCH: u32 = 100;

/// One configured webhook, ready to POST to.
struct Hook {
    name: String,
    endpoint: Endpoint,
    format: WebhookFormat,
}

/// Everything a delivery needs; shared by the worker's tasks.
struct Channels {
    store: Store,
    mailer: Option<Mailer>,
    hooks: Vec<Hook>,
    /// Set when there are webhooks.
    client: Option<Client>,
    max_attempts: u32,
    base_delay: Duration,
}

/// The running worker.
pub struct Notifier {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Notifier {
    /// Stops taking deliveries and waits up to `grace` for those in flight. One cut short stays in the
    /// outbox and is sent again by the next worker (delivery is at least once).
    pub async fn shutdown(self, grace: Duration) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Checks `config` and starts the worker on the current tokio runtime. For `https` webhooks the
/// server certificate is checked against the system's CA certificates.
pub fn start(store: Store, config: &NotifyConfig) -> Result<Notifier, NotifyError> {
    start_with(store, config, Client::system)
}

/// [`start`] with the webhooks' client made by `client`, called only when there are webhooks.
pub fn start_with<E>(
    store: Store,
    config: &NotifyConfig,
    client: impl FnOnce() -> Result<Client, E>,
) -> Result<Notifier, NotifyError>
where
    NotifyError: From<E>,
{
    let setting = |setting: String, reason: String| NotifyError::Setting { setting, reason };
    if config.retry.max_attempts == 0 {
        return Err(setting(
            "retry.max_attempts".into(),
            "must be at least 1".into(),
        ));
    }
    let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
    let mut hooks: Vec<Hook> = Vec::new();
    for (i, hook) in config.webhooks.iter().enumerate() {
        let at = |key: &str| format!("webhooks[{i}].{key}");
        if hook.name.trim().is_empty() || hooks.iter().any(|h| h.name == hook.name) {
            return Err(setting(
                at("name"),
                format!("`{}` must be non-empty and unique", hook.name),
            ));
        }
        if hook.timeout_secs == 0 {
            return Err(setting(at("timeout_secs"), "must be at least 1".into()));
        }
        let endpoint = Endpoint::parse(&hook.url)
            .map_err(|e| setting(at("url"), e))?
            .with_headers(hook.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| setting(at("headers"), e))?
            .with_timeout(Duration::from_secs(hook.timeout_secs));
        hooks.push(Hook {
            name: hook.name.clone(),
            endpoint,
            format: hook.format,
        });
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
    let client = if hooks.is_empty() {
        None
    } else {
        Some(client()?)
    };
    let longest = hooks
        .iter()
        .map(|h| h.endpoint.timeout())
        .chain(
            config
                .smtp
                .as_ref()
                .map(|s| Duration::from_secs(s.timeout_secs)),
        )
        .max()
        .unwrap_or_default();
    // A claimed delivery is not taken again before this, so it must outlast any attempt.
    let lease = longest * 2 + Duration::from_secs(30);
    tracing::info!(
        smtp = config.smtp.as_ref().map(|s| s.host.as_str()),
        webhooks = hooks.len(),
        "notification delivery started"
    );
    let channels = Arc::new(Channels {
        store,
        mailer,
        hooks,
        client,
        max_attempts: config.retry.max_attempts,
        base_delay: Duration::from_secs(config.retry.base_delay_secs),
    });
    let (stop, stopped) = watch::channel(false);
    let task = runtime.spawn(run(channels, lease, stopped));
    Ok(Notifier { stop, task })
}

async fn run(channels: Arc<Channels>, lease: Duration, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(SLOTS));
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let planning = Arc::clone(&channels);
        match tokio::task::spawn_blocking(move || plan(&planning)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot plan notification deliveries"),
            Err(e) => tracing::error!(error = %e, "notification planning panicked"),
        }
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        let due = if free == 0 {
            Ok(Ok(Vec::new()))
        } else {
            let store = channels.store.clone();
            let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
            tokio::task::spawn_blocking(move || {
                store.claim_due_deliveries(now_ms(), lease_ms, free)
            })
            .await
        };
        match due {
            Ok(Ok(due)) => {
                for delivery in due {
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                        break;
                    };
                    let channels = Arc::clone(&channels);
                    in_flight.spawn(async move {
                        deliver(&channels, delivery).await;
                        drop(slot);
                    });
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot read the notification outbox"),
            Err(e) => tracing::error!(error = %e, "reading the notification outbox panicked"),
        }
        while in_flight.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            // An error means the sender is gone, which is as final as a stop.
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Plans the deliveries of notifications no worker has planned yet: an e-mail to each recipient with an
/// `email` attribute (when SMTP is configured) and a POST to each webhook.
fn plan(channels: &Channels) -> portcullis_store::Result<()> {
    let store = &channels.store;
    let fresh = store.unplanned_notifications(PLAN_BATCH)?;
    if fresh.is_empty() {
        return Ok(());
    }
    let users = if channels.mailer.is_some() {
        store.list_users()?
    } else {
        Vec::new()
    };
    for notification in fresh {
        let mut deliveries: Vec<(String, String)> = Vec::new();
        for recipient in &notification.recipients {
            let address = users
                .iter()
                .find(|u| &u.name == recipient)
                .and_then(|u| u.attributes.get("email"));
            match address {
                Some(address) => deliveries.push(("email".into(), address.clone())),
                None if channels.mailer.is_some() => tracing::debug!(
                    user = %recipient, notification = notification.id,
                    "no e-mail: the user has no `email` attribute (the inbox has it)"
                ),
                None => {}
            }
        }
        deliveries.extend(
            channels
                .hooks
                .iter()
                .map(|h| ("webhook".to_owned(), h.name.clone())),
        );
        store.plan_deliveries(notification.id, &deliveries, now_ms())?;
    }
    Ok(())
}

/// Makes one attempt at `delivery` and records it.
async fn deliver(channels: &Channels, delivery: Delivery) {
    let n = &delivery.notification;
    let sent = match delivery.channel.as_str() {
        "email" => match &channels.mailer {
            Some(mailer) => mailer.send(&delivery.target, &n.subject, &n.body).await,
            None => Err(AttemptError::Permanent(
                "no SMTP server is configured".into(),
            )),
        },
        "webhook" => match (
            channels.hooks.iter().find(|h| h.name == delivery.target),
            &channels.client,
        ) {
            (Some(hook), Some(client)) => client
                .post_json_bytes(&hook.endpoint, payload::render(n, hook.format))
                .await
                .map_err(AttemptError::from),
            _ => Err(AttemptError::Permanent(format!(
                "webhook `{}` is no longer configured",
                delivery.target
            ))),
        },
        other => Err(AttemptError::Permanent(format!(
            "unknown channel `{other}`"
        ))),
    };
    let attempt = u32::try_from(delivery.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let now = now_ms();
    let (outcome, action, detail) = match sent {
        Ok(()) => (
            DeliveryOutcome::Delivered,
            "notified",
            format!(
                "{} {} (attempt {attempt}): {}",
                delivery.channel, delivery.target, n.subject
            ),
        ),
        Err(AttemptError::Transient(error)) if attempt < channels.max_attempts => {
            let pause = backoff(channels.base_delay, MAX_BACKOFF, attempt - 1);
            let retry_at = now.saturating_add(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX));
            let detail = format!(
                "{} {}: {error} (attempt {attempt} of {}; next in {}s)",
                delivery.channel,
                delivery.target,
                channels.max_attempts,
                pause.as_secs()
            );
            (
                DeliveryOutcome::Failed {
                    error,
                    retry_at: Some(retry_at),
                },
                "notify-retry",
                detail,
            )
        }
        Err(failure) => {
            let error = failure.reason().to_owned();
            let detail = format!(
                "{} {}: {error} (attempt {attempt}; given up)",
                delivery.channel, delivery.target
            );
            (
                DeliveryOutcome::Failed {
                    error,
                    retry_at: None,
                },
                "notify-failed",
                detail,
            )
        }
    };
    match action {
        "notified" => tracing::info!(notification = n.id, request = n.request_id, "{detail}"),
        "notify-retry" => tracing::warn!(notification = n.id, request = n.request_id, "{detail}"),
        _ => tracing::error!(notification = n.id, request = n.request_id, "{detail}"),
    }
    let store = channels.store.clone();
    let id = delivery.id;
    let event = audit_event(&delivery.notification, action, detail, now);
    let recorded = tokio::task::spawn_blocking(move || {
        let recorded = store.record_delivery_attempt(id, &outcome, now);
        let _ = store.audit().record(event);
        recorded
    })
    .await;
    match recorded {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(delivery = id, error = %e, "cannot record a delivery attempt")
        }
        Err(e) => {
            tracing::error!(delivery = id, error = %e, "recording a delivery attempt panicked")
        }
    }
}

/// A workflow audit record of a delivery step, by `portcullis`.
fn audit_event(n: &Notification, action: &str, detail: String, now_ms: i64) -> AuditEvent {
    AuditEvent::Workflow(WorkflowEvent {
        session_id: String::new(),
        at: now_ms.saturating_mul(1000),
        user: "portcullis".into(),
        resource: n.resource.clone(),
        request_id: n.request_id,
        action: action.into(),
        workflow: n.workflow.clone(),
        detail,
    })
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

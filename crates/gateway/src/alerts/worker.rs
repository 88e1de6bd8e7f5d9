//! The background task that delivers queued alerts to the webhook, one at a time, with retries.

use std::time::Duration;

use portcullis_notify::http::{Client, Endpoint};
use tokio::sync::{mpsc, watch};

use super::{payload, Alert, AlertFormat};

/// The first pause after a failed attempt; each further one doubles, up to [`MAX_BACKOFF`].
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything the task owns.
pub(super) struct Worker {
    pub alerts: mpsc::Receiver<Alert>,
    pub stop: watch::Receiver<bool>,
    pub client: Client,
    pub endpoint: Endpoint,
    pub format: AlertFormat,
    pub retries: u32,
}

impl Worker {
    /// Delivers alerts until every handle is gone or a stop is requested; on a stop, the alerts already
    /// queued get one attempt each.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                () = stopping(&mut self.stop) => break,
                next = self.alerts.recv() => match next {
                    Some(alert) => self.deliver(&alert, self.retries).await,
                    None => return,
                },
            }
        }
        self.alerts.close();
        while let Some(alert) = self.alerts.recv().await {
            self.deliver(&alert, 0).await;
        }
    }

    async fn deliver(&mut self, alert: &Alert, retries: u32) {
        let body = match payload::render(alert, self.format) {
            Ok(body) => bytes::Bytes::from(body),
            Err(e) => {
                tracing::error!(rule = %alert.rule_id, error = %e, "alert not sent: cannot encode it");
                return;
            }
        };
        let mut attempt = 0u32;
        loop {
            let failure = match self
                .client
                .post_json_bytes(&self.endpoint, body.clone())
                .await
            {
                Ok(()) => return,
                Err(failure) => failure,
            };
            let reason = failure.to_string();
            if !failure.is_transient() {
                self.give_up(alert, &reason, attempt + 1);
                return;
            }
            if attempt >= retries {
                self.give_up(alert, &reason, attempt + 1);
                return;
            }
            let pause = backoff(attempt);
            attempt += 1;
            tracing::debug!(
                webhook = %self.endpoint.origin(), rule = %alert.rule_id, %reason, ?pause,
                "alert delivery failed; will retry"
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                // Shutting down: waiting out the backoff would only delay the exit.
                () = stopping(&mut self.stop) => {
                    self.give_up(alert, &reason, attempt);
                    return;
                }
            }
        }
    }

    fn give_up(&self, alert: &Alert, reason: &str, attempts: u32) {
        tracing::error!(
            webhook = %self.endpoint.origin(), rule = %alert.rule_id, session = %alert.session_id,
            %reason, attempts, "alert not delivered to the webhook"
        );
    }
}

/// Resolves once a stop is requested or every handle is gone.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which is as final as a stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The pause after failed attempt `n` (from 0).
pub(super) fn backoff(n: u32) -> Duration {
    portcullis_notify::backoff(FIRST_BACKOFF, MAX_BACKOFF, n)
}

//! The webhook sink: each batch is one `POST` of a JSON array of records ([`crate::record`]) through the
//! client every outbound POST shares ([`portcullis_notify::http`]). Any 2xx answer delivers the batch;
//! anything else (a connection error, a timeout, another status, a redirect) is retried with back-off,
//! because a record may not be dropped.

use portcullis_notify::http::{Client, Endpoint};

use crate::{Shipped, SinkConfig, SinkError, WebhookConfig};

/// A webhook receiver.
#[derive(Debug)]
pub struct WebhookSender {
    endpoint: Endpoint,
    client: Client,
}

impl WebhookSender {
    pub fn new(config: &WebhookConfig) -> Result<WebhookSender, SinkError> {
        let bad = |reason: String| SinkError::Config {
            name: config.name.clone(),
            reason,
        };
        let endpoint = Endpoint::parse(&config.url)
            .and_then(|e| {
                e.with_headers(
                    config
                        .headers
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                )
            })
            .map_err(|e| bad(format!("url: {e}")))?
            .with_timeout(SinkConfig::webhook_timeout(config));
        let client = match &config.ca {
            Some(ca) => Client::with_tls(crate::tls::trusting(ca).map_err(bad)?),
            None => Client::system(),
        }
        .map_err(|e| bad(e.0))?;
        Ok(WebhookSender { endpoint, client })
    }

    /// POSTs the batch.
    pub async fn send(&self, records: &[Shipped]) -> Result<(), SinkError> {
        let origin = self.endpoint.origin();
        let body = serde_json::to_vec(records)
            .map_err(|e| SinkError::Delivery(format!("webhook {origin}: {e}")))?;
        self.client
            .post_json_bytes(&self.endpoint, body)
            .await
            .map_err(|e| SinkError::Delivery(format!("webhook {origin}: {e}")))
    }
}

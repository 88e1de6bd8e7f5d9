//! The webhook sink: each batch is one `POST` of a JSON array of records ([`crate::record`]) with
//! `Content-Type: application/json`. Any 2xx answer delivers the batch; anything else (a connection
//! error, a timeout, another status) is retried with back-off, because a record may not be dropped.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::{Shipped, SinkConfig, SinkError, WebhookConfig};

/// A webhook receiver.
#[derive(Debug)]
pub struct WebhookSender {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl WebhookSender {
    pub fn new(config: &WebhookConfig) -> Result<WebhookSender, SinkError> {
        let bad = |reason: String| SinkError::Config {
            name: config.name.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&config.url).map_err(|e| bad(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("url: http:// or https:// only".into()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| bad(format!("header {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| bad(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(SinkConfig::webhook_timeout(config))
            .default_headers(headers)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca {
            let pem =
                std::fs::read(ca).map_err(|e| bad(format!("cannot read {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(WebhookSender { url, client })
    }

    /// POSTs the batch.
    pub async fn send(&self, records: &[Shipped]) -> Result<(), SinkError> {
        let response = self
            .client
            .post(self.url.clone())
            .json(records)
            .send()
            .await
            .map_err(|e| SinkError::Delivery(format!("webhook {}: {e}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(SinkError::Delivery(format!(
            "webhook {}: HTTP {status}{}",
            self.url,
            if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            }
        )))
    }
}

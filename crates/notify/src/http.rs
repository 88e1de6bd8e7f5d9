//! The HTTP client every outbound POST of Portcullis goes through: notification webhooks, the
//! gateway's alert webhook and audit sinks. [`Client`] is `reqwest` on rustls (ring), connections are
//! pooled and kept alive, redirects are not followed (a webhook that moved is a setting to fix, and
//! following one would send the body, and any token in the headers, somewhere else).

mod endpoint;
mod failure;

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderValue, CONTENT_TYPE};

pub use endpoint::Endpoint;
pub use failure::{Failure, SetupError};

/// The longest response body read (and thrown away) so the connection can serve the next request.
const MAX_DRAIN: usize = 64 * 1024;

/// An HTTP client. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    /// A client that checks `https` servers against the system's CA certificates.
    pub fn system() -> Result<Client, SetupError> {
        Self::build(reqwest::Client::builder().tls_built_in_native_certs(true))
    }

    /// A client that checks `https` servers with `tls` (tests trust their own CA this way).
    pub fn with_tls(tls: Arc<rustls::ClientConfig>) -> Result<Client, SetupError> {
        Self::build(
            reqwest::Client::builder().use_preconfigured_tls(rustls::ClientConfig::clone(&tls)),
        )
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Client, SetupError> {
        let inner = builder
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError(failure::chain(&e)))?;
        Ok(Client { inner })
    }

    /// POSTs `body` as JSON to `endpoint`; `Ok` on a 2xx answer.
    pub async fn post_json(
        &self,
        endpoint: &Endpoint,
        body: &serde_json::Value,
    ) -> Result<(), Failure> {
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::Exchange(e.to_string()))?;
        self.post_json_bytes(endpoint, bytes).await
    }

    /// POSTs `body`, already JSON, to `endpoint`; `Ok` on a 2xx answer. The whole exchange, connecting
    /// included, is bounded by the endpoint's timeout.
    pub async fn post_json_bytes(
        &self,
        endpoint: &Endpoint,
        body: impl Into<Bytes>,
    ) -> Result<(), Failure> {
        let timeout = endpoint.timeout();
        let fail = |e: reqwest::Error| Failure::of(e, timeout);
        let mut response = self
            .inner
            .post(endpoint.url().clone())
            .headers(endpoint.headers().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .timeout(timeout)
            .body(body.into())
            .send()
            .await
            .map_err(fail)?;
        let status = response.status();
        // A body read to its end leaves the connection reusable; a long one is not worth it.
        let mut drained = 0;
        while drained <= MAX_DRAIN {
            match response.chunk().await {
                Ok(Some(chunk)) => drained += chunk.len(),
                Ok(None) => break,
                // The status is what counts; a body cut short only costs the connection.
                Err(e) if status.is_success() => {
                    tracing::debug!(error = %failure::chain(&e), "webhook answer cut short");
                    break;
                }
                Err(e) => return Err(fail(e)),
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

//! The `alerts` section of the configuration file.

use serde::Deserialize;

/// Where alerts go besides the log. Without `webhook`, alerts are only logged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// An `http://` or `https://` URL that receives each alert as a JSON POST.
    pub webhook: Option<String>,
    /// The body's shape: `json` (the alert's fields) or `slack` (`{"text": …}` for Slack-compatible
    /// incoming webhooks).
    #[serde(default)]
    pub format: AlertFormat,
    /// Alerts waiting for delivery; when full, new alerts are dropped (and still logged).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Seconds one delivery attempt (connect, send, read the status) may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Further attempts after a failed one, with exponential backoff from 200 ms.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

/// The shape of a webhook body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertFormat {
    /// The [`Alert`](super::Alert) as a JSON object.
    #[default]
    Json,
    /// `{"text": "…"}`, which Slack, Mattermost and Rocket.Chat incoming webhooks accept.
    Slack,
}

fn default_queue() -> usize {
    1000
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_retries() -> u32 {
    5
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook: None,
            format: AlertFormat::default(),
            queue: default_queue(),
            timeout_secs: default_timeout_secs(),
            retries: default_retries(),
        }
    }
}

//! The `notifications:` section of the configuration file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where notifications go besides the store's inbox, and how hard to try.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The SMTP server e-mail goes through; without it nobody is e-mailed.
    pub smtp: Option<SmtpConfig>,
    /// Every notification is POSTed to each of these.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Retries of failed deliveries.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// An SMTP submission server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address.
    pub host: String,
    /// Port; by default 587 with `starttls`, 465 with `tls`, 25 with `none`.
    pub port: Option<u16>,
    /// The sender, `portcullis@example.com` or `Portcullis <portcullis@example.com>`.
    pub from: String,
    /// `starttls` (default), `tls` (implicit TLS) or `none`. TLS checks the server's certificate
    /// against the system CA bundle.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Log in as this user (needs `password_env`).
    pub username: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// Seconds one delivery may take, connecting included (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No TLS: only for a relay on the same host or a trusted network.
    None,
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name, in the outbox and audit records (the URL may hold a token).
    pub name: String,
    /// `http://` or `https://` (system CAs).
    pub url: String,
    /// `json` (default): the notification's fields; `slack`: `{"text": …}`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds one delivery may take (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// A webhook's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The notification's fields as a JSON object.
    #[default]
    Json,
    /// `{"text": …}`, which Slack and Mattermost incoming webhooks take.
    Slack,
}

/// Retries of failed deliveries: attempt `n + 1` waits `base_delay_secs × 2ⁿ⁻¹` (at most an hour) after
/// attempt `n` failed; after `max_attempts` the delivery is recorded as failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 8).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first pause, in seconds (default 30).
    #[serde(default = "default_base_delay")]
    pub base_delay_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_max_attempts(),
            base_delay_secs: default_base_delay(),
        }
    }
}

fn default_timeout() -> u64 {
    10
}

fn default_max_attempts() -> u32 {
    8
}

fn default_base_delay() -> u64 {
    30
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_parses_with_defaults_and_refuses_unknown_keys() {
        let c: NotifyConfig = serde_yaml_ng::from_str(
            "smtp: {host: mail.example.com, from: portcullis@example.com}\n\
             webhooks:\n  - {name: chat, url: 'https://hooks.example.com/x', format: slack, \
             headers: {Authorization: Bearer t}}\n\
             retry: {max_attempts: 3}\n",
        )
        .unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!(
            (smtp.tls, smtp.port, smtp.timeout_secs),
            (SmtpTls::Starttls, None, 10)
        );
        assert_eq!(c.webhooks[0].format, WebhookFormat::Slack);
        assert_eq!(c.webhooks[0].headers["Authorization"], "Bearer t");
        assert_eq!((c.retry.max_attempts, c.retry.base_delay_secs), (3, 30));
        assert_eq!(
            serde_yaml_ng::from_str::<NotifyConfig>("").unwrap_or_default(),
            NotifyConfig::default()
        );
        assert!(
            serde_yaml_ng::from_str::<NotifyConfig>("smtp: {host: h, from: f, tls: ssl}\n")
                .is_err()
        );
        assert!(serde_yaml_ng::from_str::<NotifyConfig>("retries: {}\n").is_err());
        assert!(serde_yaml_ng::from_str::<NotifyConfig>(
            "webhooks: [{name: a, url: 'http://x', format: teams}]\n"
        )
        .is_err());
    }
}

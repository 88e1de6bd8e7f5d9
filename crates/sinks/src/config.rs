//! The sinks as configured: `audit: {sinks: [{name, type: jsonl|syslog|webhook, …}]}`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::SinkError;

/// One sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    /// JSON lines in a file that rotates by size.
    Jsonl(JsonlConfig),
    /// Syslog, RFC 5424 messages over TCP with octet-counting framing (RFC 6587), TLS optional.
    Syslog(SyslogConfig),
    /// An HTTP(S) POST of a JSON array of records per batch.
    Webhook(WebhookConfig),
}

/// `type: jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Names the sink (its cursor file, its status line): letters, digits, `-` and `_`.
    pub name: String,
    /// The file records are appended to; rotated files get `.1`, `.2`, … (`.1` the newest).
    pub path: PathBuf,
    /// Rotate when the file reaches this size (default 100).
    pub max_mb: Option<u64>,
    /// Rotated files kept (default 10).
    pub keep: Option<u32>,
    /// Records per write (default 1000).
    pub batch: Option<usize>,
}

/// `type: syslog`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    pub name: String,
    /// `host:port` of the receiver.
    pub address: String,
    /// TLS (RFC 5425) when present.
    pub tls: Option<SyslogTlsConfig>,
    /// Syslog facility name (default `local0`): kern, user, mail, daemon, auth, syslog, lpr, news,
    /// uucp, cron, authpriv, ftp, local0 … local7.
    pub facility: Option<String>,
    /// HOSTNAME field (default: this machine's host name).
    pub hostname: Option<String>,
    /// APP-NAME field (default `portcullis`).
    pub app_name: Option<String>,
    /// Records per write (default 500).
    pub batch: Option<usize>,
}

/// TLS towards a syslog receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    /// PEM file of the CA(s) the receiver's certificate must chain to.
    pub ca: PathBuf,
    /// Name the certificate must be for (default: the host of `address`).
    pub server_name: Option<String>,
}

/// `type: webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    /// `http://` or `https://` URL the batches are POSTed to.
    pub url: String,
    /// Records per POST at most (default 100).
    pub batch: Option<usize>,
    /// Per request (default 10).
    pub timeout_secs: Option<u64>,
    /// Extra request headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// PEM file of a CA to trust besides the system's (for a receiver with a private CA).
    pub ca: Option<PathBuf>,
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::Jsonl(c) => &c.name,
            SinkConfig::Syslog(c) => &c.name,
            SinkConfig::Webhook(c) => &c.name,
        }
    }

    /// `jsonl`, `syslog` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::Webhook(_) => "webhook",
        }
    }

    /// Records read and delivered at once at most.
    pub(crate) fn batch(&self) -> usize {
        match self {
            SinkConfig::Jsonl(c) => c.batch.unwrap_or(1000),
            SinkConfig::Syslog(c) => c.batch.unwrap_or(500),
            SinkConfig::Webhook(c) => c.batch.unwrap_or(100),
        }
        .max(1)
    }

    pub(crate) fn webhook_timeout(c: &WebhookConfig) -> Duration {
        Duration::from_secs(c.timeout_secs.unwrap_or(10).max(1))
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Config {
            name: self.name().to_owned(),
            reason: reason.into(),
        }
    }
}

/// Checks names: each valid (it names a file) and used once.
pub fn validate(sinks: &[SinkConfig]) -> Result<(), SinkError> {
    let mut seen = std::collections::HashSet::new();
    for sink in sinks {
        let name = sink.name();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(sink.error("a name is 1 to 64 letters, digits, `-` or `_`"));
        }
        if !seen.insert(name) {
            return Err(sink.error("two sinks have this name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_read_from_yaml_like_json() {
        let sinks: Vec<SinkConfig> = serde_json::from_str(
            r#"[{"name":"f","type":"jsonl","path":"/tmp/a.jsonl","max_mb":5},
                {"name":"s","type":"syslog","address":"127.0.0.1:514","tls":{"ca":"/ca.pem"}},
                {"name":"w","type":"webhook","url":"http://127.0.0.1/x","headers":{"A":"b"}}]"#,
        )
        .unwrap();
        assert_eq!(
            sinks.iter().map(|s| s.kind()).collect::<Vec<_>>(),
            ["jsonl", "syslog", "webhook"]
        );
        validate(&sinks).unwrap();
        let unknown = serde_json::from_str::<SinkConfig>(
            r#"{"name":"f","type":"jsonl","path":"/a","colour":"red"}"#,
        );
        assert!(unknown.is_err());
    }
}

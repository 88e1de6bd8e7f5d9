//! The syslog sink: each record is one RFC 5424 message whose MSG is the record's JSON
//! ([`crate::record`]), sent over TCP with octet-counting framing (RFC 6587 §3.4.1: `LEN SP MSG`),
//! over TLS (RFC 5425) when configured.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`: PRI from the configured facility and a
//! severity of `notice` for refusals, rejections and errors and `info` otherwise; TIMESTAMP the event's
//! time in UTC with microseconds; MSGID the record's kind (`statement`, `connection`, …).
//!
//! Syslog over TCP has no acknowledgement: a batch counts as delivered once the kernel has taken it.
//! Before each batch the connection is checked for the receiver having closed it (a receiver that
//! stopped), so a batch is not written into a dead connection; a receiver that crashes with records in
//! its own buffers can still lose those.

use std::time::Duration;

use portcullis_store::AuditEvent;
use rustls::pki_types::ServerName;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{Shipped, SinkError, SyslogConfig};

/// Connecting (and the TLS handshake) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing a batch may take this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// A connection to a syslog receiver, made when needed.
pub struct SyslogSender {
    address: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
    conn: Option<Box<dyn Stream>>,
}

impl std::fmt::Debug for SyslogSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSender")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl SyslogSender {
    pub fn new(config: &SyslogConfig) -> Result<SyslogSender, SinkError> {
        let bad = |reason: String| SinkError::Config {
            name: config.name.clone(),
            reason,
        };
        let facility = facility(config.facility.as_deref().unwrap_or("local0"))
            .ok_or_else(|| bad(format!("unknown syslog facility {:?}", config.facility)))?;
        let tls = match &config.tls {
            None => None,
            Some(tls) => {
                let client = crate::tls::trusting(&tls.ca).map_err(bad)?;
                let host = match &tls.server_name {
                    Some(name) => name.clone(),
                    None => host_of(&config.address).to_owned(),
                };
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| bad(format!("server name {host:?}: {e}")))?;
                Some((TlsConnector::from(client), name))
            }
        };
        let hostname = config.hostname.clone().unwrap_or_else(local_hostname);
        Ok(SyslogSender {
            address: config.address.clone(),
            tls,
            facility,
            hostname: printable(&hostname, 255),
            app_name: printable(config.app_name.as_deref().unwrap_or("portcullis"), 48),
            procid: std::process::id().to_string(),
            conn: None,
        })
    }

    /// One RFC 5424 message for `record`.
    pub fn message(&self, record: &Shipped) -> String {
        let severity = if refused(&record.event) { 5 } else { 6 };
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.event.at()) * 1000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "-".to_owned());
        format!(
            "<{}>1 {at} {} {} {} {} - {}",
            u16::from(self.facility) * 8 + severity,
            self.hostname,
            self.app_name,
            self.procid,
            record.kind(),
            record.to_json()
        )
    }

    /// Sends the batch; an error drops the connection (the next attempt connects again).
    pub async fn send(&mut self, records: &[Shipped]) -> Result<(), SinkError> {
        let mut frames = Vec::new();
        for record in records {
            let msg = self.message(record);
            frames.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            frames.extend_from_slice(msg.as_bytes());
        }
        if self.conn.is_some() && !self.still_open().await {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SinkError::Delivery("not connected".into()));
        };
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            conn.write_all(&frames).await?;
            conn.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(SinkError::Delivery(format!(
                    "syslog {}: writing: {e}",
                    self.address
                )))
            }
            Err(_) => {
                self.conn = None;
                Err(SinkError::Delivery(format!(
                    "syslog {}: writing timed out",
                    self.address
                )))
            }
        }
    }

    /// Whether the receiver has not closed the connection: it never sends anything, so anything
    /// readable is its end of the stream (or an error).
    async fn still_open(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let mut buf = [0; 256];
        // `timeout` polls the read once before looking at the (zero) deadline.
        match tokio::time::timeout(Duration::ZERO, conn.read(&mut buf)).await {
            Err(_) => true,
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(_)) => true,
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, SinkError> {
        let failed = |what: String| SinkError::Delivery(format!("syslog {}: {what}", self.address));
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let tcp = TcpStream::connect(&self.address)
                .await
                .map_err(|e| failed(format!("cannot connect: {e}")))?;
            // Audit records are small and written in batches; send each batch at once.
            drop(tcp.set_nodelay(true));
            Ok::<Box<dyn Stream>, SinkError>(match &self.tls {
                None => Box::new(tcp),
                Some((connector, name)) => Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| failed(format!("TLS: {e}")))?,
                ),
            })
        })
        .await;
        connected.unwrap_or_else(|_| Err(failed("connecting timed out".into())))
    }
}

/// Refusals, rejections and errors are `notice`; the rest `info`.
fn refused(event: &AuditEvent) -> bool {
    match event {
        AuditEvent::Statement(s) => s.decision != "allow" || s.outcome != "ok",
        AuditEvent::Connection(c) => c.phase == portcullis_store::ConnectionPhase::Rejected,
        AuditEvent::Decision(d) => d.policy.result != "allow",
        AuditEvent::Mfa(m) => m.result != "ok",
        AuditEvent::Workflow(w) => w.action == "rejected",
    }
}

fn facility(name: &str) -> Option<u8> {
    const NAMES: [&str; 12] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp",
    ];
    if let Some(i) = NAMES.iter().position(|n| *n == name) {
        return u8::try_from(i).ok();
    }
    let n: u8 = name.strip_prefix("local")?.parse().ok()?;
    (n <= 7).then_some(16 + n)
}

fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => address,
    }
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` long, `-` when empty.
fn printable(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_and_fields() {
        assert_eq!(facility("local0"), Some(16));
        assert_eq!(facility("auth"), Some(4));
        assert_eq!(facility("local8"), None);
        assert_eq!(host_of("siem.example.com:6514"), "siem.example.com");
        assert_eq!(host_of("[::1]:6514"), "::1");
        assert_eq!(printable("a b\u{e9}c", 48), "abc");
    }
}

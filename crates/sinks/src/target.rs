//! A configured sink's receiver, whatever its kind.

use std::sync::{Arc, Mutex};

use crate::jsonl::JsonlWriter;
use crate::syslog::SyslogSender;
use crate::webhook::WebhookSender;
use crate::{Shipped, SinkConfig, SinkError};

pub(crate) enum Target {
    /// Blocking file writes run on the blocking pool; the mutex only passes the writer there.
    Jsonl(Arc<Mutex<JsonlWriter>>),
    Syslog(Box<SyslogSender>),
    Webhook(WebhookSender),
}

impl Target {
    pub(crate) fn new(config: &SinkConfig) -> Result<Target, SinkError> {
        Ok(match config {
            SinkConfig::Jsonl(c) => Target::Jsonl(Arc::new(Mutex::new(JsonlWriter::open(c)?))),
            SinkConfig::Syslog(c) => Target::Syslog(Box::new(SyslogSender::new(c)?)),
            SinkConfig::Webhook(c) => Target::Webhook(WebhookSender::new(c)?),
        })
    }

    pub(crate) async fn deliver(&mut self, records: Arc<Vec<Shipped>>) -> Result<(), SinkError> {
        match self {
            Target::Jsonl(writer) => {
                let writer = Arc::clone(writer);
                tokio::task::spawn_blocking(move || {
                    writer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .write(&records)
                })
                .await
                .map_err(|e| SinkError::Delivery(format!("the file writer stopped: {e}")))?
            }
            Target::Syslog(sender) => sender.send(&records).await,
            Target::Webhook(sender) => sender.send(&records).await,
        }
    }
}

//! What a sink ships for one journal record: the audit event as `portcullis audit --json` prints it,
//! with the journal sequence `seq` in place of the index's row `id`. Checkpoint records are not shipped.
//!
//! ```json
//! {"seq":42,"type":"statement","session_id":"…","at":1764985000000000,"user":"alice","resource":"app",
//!  "client_addr":"127.0.0.1:50712","text":"SELECT 1","kind":"select","objects":[],"param_count":0,
//!  "rows":1,"duration_us":310,"decision":"allow","outcome":"ok","sqlstate":null,"message":null,…}
//! ```

use portcullis_store::AuditEvent;
use serde::Serialize;

/// An event record to ship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipped {
    /// The record's journal sequence: unique, increasing; what `portcullis audit verify --from` takes.
    pub seq: u64,
    /// The event; flattened next to `seq` (`type` names its kind).
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl Shipped {
    /// The record as one JSON object (one line: JSON escapes every newline in strings).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"seq\":{},\"type\":\"unencodable\",\"error\":{}}}",
                self.seq,
                serde_json::Value::String(e.to_string())
            )
        })
    }

    /// The event's kind: `connection`, `statement`, `decision`, `workflow` or `mfa`.
    pub fn kind(&self) -> &'static str {
        match self.event {
            AuditEvent::Connection(_) => "connection",
            AuditEvent::Statement(_) => "statement",
            AuditEvent::Decision(_) => "decision",
            AuditEvent::Workflow(_) => "workflow",
            AuditEvent::Mfa(_) => "mfa",
        }
    }
}

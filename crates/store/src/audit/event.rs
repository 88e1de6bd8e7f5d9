//! Audit event types. They serialize to JSON (one object per record) for `--json` output and export.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A client connection opened, closed or was rejected.
    Connection(ConnectionEvent),
    /// A statement was decided on (and, if allowed, executed).
    Statement(StatementEvent),
}

impl AuditEvent {
    /// When the event happened (unix microseconds).
    pub fn at(&self) -> i64 {
        match self {
            AuditEvent::Connection(c) => c.at,
            AuditEvent::Statement(s) => s.at,
        }
    }

    /// The gateway session the event belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.session_id,
            AuditEvent::Statement(s) => &s.session_id,
        }
    }

    /// The gateway user.
    pub fn user(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.user,
            AuditEvent::Statement(s) => &s.user,
        }
    }

    /// The resource.
    pub fn resource(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.resource,
            AuditEvent::Statement(s) => &s.resource,
        }
    }
}

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionPhase {
    /// Authenticated and connected upstream.
    Open,
    /// Ended (by either side); byte counts are final.
    Close,
    /// Refused before or during authentication; `auth_result` says why.
    Rejected,
}

impl ConnectionPhase {
    /// "open", "close" or "rejected".
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionPhase::Open => "open",
            ConnectionPhase::Close => "close",
            ConnectionPhase::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ConnectionPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionPhase {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "open" => Ok(ConnectionPhase::Open),
            "close" => Ok(ConnectionPhase::Close),
            "rejected" => Ok(ConnectionPhase::Rejected),
            other => Err(StoreError::Invalid {
                what: "connection phase",
                reason: format!("{other:?} is not one of open, close, rejected"),
            }),
        }
    }
}

/// A connection event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEvent {
    /// Gateway session id.
    pub session_id: String,
    /// Open, close or rejected.
    pub phase: ConnectionPhase,
    /// Unix microseconds.
    pub at: i64,
    /// Gateway user (as claimed, for rejections).
    pub user: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// Requested resource.
    pub resource: String,
    /// "ok", "bad password", "unknown resource", ...
    pub auth_result: String,
    /// Whether the client connection used TLS.
    pub tls: bool,
    /// The client's `application_name`, if sent.
    pub application_name: Option<String>,
    /// Bytes received from the client so far.
    pub bytes_in: u64,
    /// Bytes sent to the client so far.
    pub bytes_out: u64,
    /// Free-form detail (error text, close reason).
    pub detail: Option<String>,
}

/// An object a statement touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditObject {
    /// Qualified object name, e.g. `public.accounts`.
    pub name: String,
    /// What the statement does to it, e.g. `select`, `update`.
    pub operation: String,
}

/// A statement event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEvent {
    /// Gateway session id.
    pub session_id: String,
    /// Unix microseconds at the start of the statement.
    pub at: i64,
    /// Gateway user.
    pub user: String,
    /// Resource.
    pub resource: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// Statement text as sent.
    pub text: String,
    /// Statement kind, e.g. `select`, `insert`, `create_table`.
    pub kind: String,
    /// Objects the statement touches.
    pub objects: Vec<AuditObject>,
    /// Number of bind parameters.
    pub param_count: u32,
    /// Rows returned or affected, when known.
    pub rows: Option<u64>,
    /// Execution time in microseconds.
    pub duration_us: u64,
    /// "allow" or "deny".
    pub decision: String,
    /// "ok", "error", "denied" or "cancelled".
    pub outcome: String,
    /// SQLSTATE of the error, if any.
    pub sqlstate: Option<String>,
    /// Error or denial message, if any.
    pub message: Option<String>,
}

/// A stored audit event and its id (ids increase in commit order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Row id, increasing.
    pub id: i64,
    /// The event; flattened into the record's JSON object next to `id` and `type`.
    #[serde(flatten)]
    pub event: AuditEvent,
}

//! Streams the audit journal out as it is written: to JSON-lines files ([`jsonl`]), to syslog
//! (RFC 5424 over TCP, TLS optional, [`syslog`]) and to HTTP webhooks in batches ([`webhook`]).
//!
//! Each sink reads the journal itself from its own cursor, persisted in
//! `<database>.journal/sinks/<name>.json` after every delivered batch ([`state`]), so delivery is at
//! least once: a sink that is down is retried with exponential back-off and, after it or the gateway
//! restarts, catches up from its cursor. Nothing is skipped unless retention's hard cap removed records
//! a sink had not delivered; that is recorded as a gap. [`SinkMonitor::status`] tells each sink's
//! position, lag, last error and last delivery. The same runner applies the journal's retention
//! ([`retention`]), which waits for the sinks.

pub mod config;
mod error;
pub mod jsonl;
mod monitor;
pub mod record;
mod retention;
mod runner;
pub mod state;
pub mod syslog;
mod target;
mod tls;
pub mod webhook;

pub use config::{JsonlConfig, SinkConfig, SyslogConfig, SyslogTlsConfig, WebhookConfig};
pub use error::SinkError;
pub use monitor::{start, SinkMonitor, SinkStatus};
pub use record::Shipped;
pub use state::{read_state, SinkState};

//! Errors of the gateway runtime.

use std::io;

/// What can stop the gateway from starting or a session from running.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the gateway was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// TLS material could not be loaded or made.
    #[error("TLS: {0}")]
    Tls(String),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] portcullis_wire::WireError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] portcullis_store::StoreError),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The applied policy cannot be loaded.
    #[error("policy: {0}")]
    Policy(String),
    /// A policy ended the session; the reason is told to the client.
    #[error("{0}")]
    Logout(String),
    /// The upstream database refused or failed.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The upstream database answered one of the gateway's own queries with an error; the connection
    /// is still usable.
    #[error("upstream: {0}")]
    QueryFailed(String),
}

impl GatewayError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        GatewayError::Io {
            context: context.into(),
            source,
        }
    }
}

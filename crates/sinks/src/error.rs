//! What can go wrong with a sink.

use std::path::PathBuf;

/// A sink's failure. Delivery failures are retried; configuration failures stop the start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration of a sink is wrong.
    #[error("audit sink {name}: {reason}")]
    Config { name: String, reason: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The receiver could not be reached or refused the records.
    #[error("{0}")]
    Delivery(String),
    /// The journal could not be read.
    #[error("reading the audit journal: {0}")]
    Journal(String),
}

impl SinkError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: path.into(),
            source,
        }
    }
}

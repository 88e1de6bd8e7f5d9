//! The one error type of the testkit.

use std::path::PathBuf;

/// Everything that can go wrong while finding, starting or talking to a throwaway PostgreSQL.
///
/// Variants that involve a running (or starting) server carry the tail of its log, because the
/// reason a server did not come up is almost always written there and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// No directory with PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) was found.
    #[error(
        "no PostgreSQL server binaries found ({0}); set PORTCULLIS_PG_BIN to their bin directory"
    )]
    NoServerBinaries(String),
    /// Running as root, but there is no `postgres` OS user to run the server as.
    #[error("running as root and the OS user `postgres` does not exist (PostgreSQL refuses to run as root)")]
    NoPostgresUser,
    /// A file-system or process-spawning operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external command (initdb, pg_ctl, psql, openssl, ...) exited unsuccessfully.
    #[error(
        "{what} failed ({status})\n--- output ---\n{output}\n--- server log tail ---\n{log_tail}"
    )]
    Command {
        /// What was being done.
        what: String,
        /// The exit status as text.
        status: String,
        /// The command's stdout and stderr.
        output: String,
        /// The last lines of the server log (empty when there is no server yet).
        log_tail: String,
    },
    /// Something did not happen within its time bound.
    #[error("timed out after {timeout:?} waiting for {what}\n--- server log tail ---\n{log_tail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        timeout: std::time::Duration,
        /// The last lines of the server log (empty when there is no server).
        log_tail: String,
    },
    /// A database name that is not a plain identifier.
    #[error("invalid database name {0:?}: use [A-Za-z0-9_], at most 63 bytes")]
    InvalidName(String),
    /// A path that cannot be used (for example: not valid UTF-8 where PostgreSQL config needs text).
    #[error("unusable path {0}")]
    BadPath(PathBuf),
}

impl TestkitError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

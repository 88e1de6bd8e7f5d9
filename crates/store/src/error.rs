//! The store's error type. Backend errors are wrapped in [`BackendError`] so the public API does not
//! expose the SQLite crate's types (a PostgreSQL implementation will share this error type).

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user, role or resource with this name already exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// What kind of object ("user", "role", "resource").
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The named user, role, resource or role membership does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What kind of object ("user", "role", "resource", "role membership").
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An argument was rejected (empty name, port 0, unknown TLS mode, ...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The master key does not match the one this database was created with.
    #[error(
        "the master key does not match this database (was the key file replaced or the wrong one given?)"
    )]
    WrongMasterKey,
    /// A stored credential failed to decrypt: wrong master key or tampered/corrupted data.
    #[error("cannot decrypt the credential of resource {resource:?}: wrong master key or corrupted data")]
    Decrypt {
        /// The resource whose credential failed to decrypt.
        resource: String,
    },
    /// Encryption failed (should not happen with a valid key).
    #[error("cannot encrypt the credential of resource {resource:?}")]
    Encrypt {
        /// The resource whose credential failed to encrypt.
        resource: String,
    },
    /// A user's MFA secret failed to encrypt or decrypt: wrong master key or tampered/corrupted data.
    #[error("cannot encrypt or decrypt the MFA secret of user {user:?}: wrong master key or corrupted data")]
    MfaSecret {
        /// The user whose secret it is.
        user: String,
    },
    /// The master key text is not valid (not base64, or not 32 bytes).
    #[error("invalid master key: {0}")]
    MasterKey(String),
    /// Reading or writing a file (the key file, the database file) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Password hashing or hash parsing failed.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The database file was written by a newer version of Portcullis.
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade Portcullis")]
    SchemaTooNew {
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A value read back from the database is not valid (hand-edited or corrupted file).
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
    /// The database backend reported an error.
    #[error("database error: {0}")]
    Database(#[from] BackendError),
    /// The audit writer failed to make records durable; the events must not be acknowledged.
    #[error("audit write failed: {0}")]
    AuditWrite(String),
}

/// An opaque error from the database backend.
#[derive(Debug)]
pub struct BackendError(rusqlite::Error);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(BackendError(e))
    }
}

/// True when the error is a UNIQUE / PRIMARY KEY constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

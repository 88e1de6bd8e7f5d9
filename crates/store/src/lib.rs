//! Portcullis state: users, roles, resources (upstream PostgreSQL servers with vaulted credentials), the
//! applied policy, device trust reports and the append-only audit log, all in one SQLite file.
//!
//! [`Store`] is cheap to clone and safe to share between threads. Administrative operations go through
//! one connection behind a mutex; audit events go to a dedicated writer thread with its own connection
//! that group-commits them (see [`AuditSink`]).

mod api_tokens;
mod audit;
mod clock;
mod crypto;
mod devices;
mod error;
mod mfa;
mod notifications;
mod policies;
mod requests;
mod resources;
mod roles;
mod schema;
mod scram;
pub mod totp;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};

pub use api_tokens::{ApiToken, ApiTokenRole, IssuedToken, NewApiToken};
pub use audit::{
    decode_event, AuditEvent, AuditFilter, AuditKindFilter, AuditObject, AuditRecord, AuditSink,
    AuditTicket, ConnectionEvent, ConnectionPhase, DecisionEvent, FiredRuleRecord, IndexStatus,
    JournalCursor, JournalRecord, JournalTail, MfaEvent, PolicyTrail, RequirementRecord,
    RetentionOutcome, RetentionPolicy, SegmentLimits, StatementEvent, VerifyProblem, VerifyReport,
    WorkflowEvent,
};
pub use clock::Clock;
pub use crypto::{MasterKey, Secret};
pub use devices::DeviceReport;
pub use error::{BackendError, Result, StoreError};
pub use mfa::{MfaCheck, MfaEnrolment, MfaStatus};
pub use notifications::{
    Delivery, DeliveryOutcome, DeliveryStatus, InboxEntry, NewNotification, Notification,
};
pub use policies::StoredPolicy;
pub use requests::{
    AccessDetail, Conclusion, Endorsement, EndorsementDecision, NewRequest, QueryDetail, Request,
    RequestFilter, RequestKind, RequestStatus, ReservationWindow,
};
pub use resources::{Resource, ResourceInfo, ResourceSpec, TlsMode};
pub use roles::Role;
pub use users::{User, UserLogin};

/// When an audit record counts as written. Either way it is appended to the audit journal (see
/// `audit/journal/`) before the ticket resolves, and indexed in the database shortly after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A record's ticket resolves once the journal is on disk (`fdatasync`, shared by the records
    /// written meanwhile). Survives a crash of the machine.
    #[default]
    Strict,
    /// A record's ticket resolves once the journal write has returned: the record is in the operating
    /// system's hands. Survives a crash of the process, not of the machine.
    Journaled,
}

/// The gateway's state. Clones share one database connection and one audit writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    key: MasterKey,
    audit: AuditSink,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Name of the row in `store_meta` that proves which master key the database belongs to.
const KEY_CHECK: &str = "key_check";
const KEY_CHECK_AAD: &[u8] = b"portcullis:key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"portcullis master key check v1";

impl Store {
    /// Opens (creating if needed, with mode 0600) the database file, migrates the schema, checks that
    /// `key` is the key the database was created with, and starts the audit writer thread.
    pub fn open(path: &Path, key: MasterKey, durability: Durability) -> Result<Store> {
        Store::open_with(path, key, durability, SegmentLimits::default())
    }

    /// [`Store::open`], with the audit journal's segments rotated at `limits`.
    pub fn open_with(
        path: &Path,
        key: MasterKey,
        durability: Durability,
        limits: SegmentLimits,
    ) -> Result<Store> {
        create_private_file(path)?;
        let mut conn = schema::open_connection(path, true)?;
        schema::migrate(&mut conn)?;
        check_master_key(&conn, &key)?;
        // The index is rebuilt from the journal if lost: it need not wait for the disk.
        let index_conn = schema::open_connection(path, false)?;
        let journal = audit::journal::dir_for(path);
        let audit = audit::writer::spawn(index_conn, durability, &journal, limits)?;
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                key,
                audit,
            }),
        })
    }

    /// A handle for recording audit events; cheap to clone, `Send + Sync`.
    pub fn audit(&self) -> AuditSink {
        self.inner.audit.clone()
    }

    /// Blocks until every audit event recorded so far is committed. The writer thread itself stops when
    /// the last `Store` and `AuditSink` are dropped (after writing what is queued). Do not call from
    /// inside an async runtime thread; use `spawn_blocking`.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.audit.flush()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-updated: every write is one
        // statement or one transaction, which SQLite rolls back on drop.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self) -> &MasterKey {
        &self.inner.key
    }
}

/// Creates the database file with owner-only permissions: it holds password hashes and SCRAM secrets.
/// SQLite gives the -wal and -shm files the same permissions as the main file.
fn create_private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// On first open, stores a value encrypted with `key`; later opens must decrypt it. This turns a wrong
/// key into a clear error at start-up instead of a failed upstream login later.
fn check_master_key(conn: &Connection, key: &MasterKey) -> Result<()> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM store_meta WHERE name = ?1",
            [KEY_CHECK],
            |r| r.get(0),
        )
        .optional()?;
    match stored {
        Some(blob) => match crypto::decrypt(key, KEY_CHECK_AAD, &blob) {
            Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongMasterKey),
        },
        None => {
            let blob = crypto::encrypt(key, KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT).map_err(|_| {
                StoreError::Encrypt {
                    resource: KEY_CHECK.to_owned(),
                }
            })?;
            // ON CONFLICT: another process may have raced us; re-check against whatever won.
            conn.execute(
                "INSERT INTO store_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                rusqlite::params![KEY_CHECK, blob],
            )?;
            let winner: Vec<u8> = conn.query_row(
                "SELECT value FROM store_meta WHERE name = ?1",
                [KEY_CHECK],
                |r| r.get(0),
            )?;
            match crypto::decrypt(key, KEY_CHECK_AAD, &winner) {
                Ok(_) => Ok(()),
                Err(_) => Err(StoreError::WrongMasterKey),
            }
        }
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_millis() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// Names of users, roles and resources: non-empty, at most 63 bytes (PostgreSQL's identifier limit),
/// no control characters.
fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 63 {
        "must be at most 63 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else if name.trim() != name {
        "must not start or end with whitespace"
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        what,
        reason: format!("{name:?} {reason}"),
    })
}

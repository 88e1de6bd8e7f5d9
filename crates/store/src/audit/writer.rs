//! Recording audit events: the caller's thread encodes the event and appends it to the journal (see
//! [`super::journal`]); in strict mode it then waits for an `fdatasync` shared with every record
//! waiting at once ([`super::group_commit`]). The index thread ([`super::index`]) builds the SQLite
//! rows from the journal afterwards.
//!
//! A record that cannot be appended (a full disk, an unwritable folder) fails its ticket: the caller
//! must not acknowledge what it describes, so the gateway fails closed rather than losing records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::event::AuditEvent;
use super::group_commit::GroupCommit;
use super::index::{self, Progress};
use super::journal::appender::{Appender, SegmentLimits};
use super::journal::reader::JournalCursor;
use crate::error::StoreError;
use crate::Durability;

/// Room reserved for an event's encoding: most statement events fit.
const RECORD_HINT: usize = 512;
/// How long `flush` waits for the index.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the last drop waits for the index; the next start catches up on the rest.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Records audit events. Cheap to clone, `Send + Sync`. The index thread stops (after indexing what is
/// journaled) when the last `AuditSink` and [`crate::Store`] are dropped; the last drop waits for that.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    durability: Durability,
    dir: PathBuf,
    /// Shared with the index thread, which releases the journal's lock between its batches.
    appender: Arc<Mutex<Appender>>,
    /// Strict mode's syncs.
    commit: Option<Arc<GroupCommit>>,
    progress: Arc<Progress>,
    /// Where readers that bring the index up to date themselves read the journal.
    catch_up: Mutex<JournalCursor>,
    /// Woken after each append, for readers that ship records as they come (the sinks); cheap when
    /// nobody waits.
    appended: Arc<tokio::sync::Notify>,
    /// Taken by the last drop, to wait for.
    index_thread: Option<JoinHandle<()>>,
}

impl Drop for SinkInner {
    fn drop(&mut self) {
        // A signed checkpoint at a clean stop vouches for everything this process wrote.
        let mut appender = self.appender.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = appender.close() {
            tracing::warn!(error = %e, "cannot write the audit journal's closing checkpoint");
        }
        let last = appender.next_seq().map(|n| n - 1);
        drop(appender);
        if let Some(last) = last {
            if let Err(e) = self.progress.wait_for(last, STOP_TIMEOUT) {
                tracing::warn!(error = %e, "stopping with the audit index behind; the next start catches up");
            }
        }
        self.progress.stop();
        if let Some(commit) = &self.commit {
            let (syncs, records) = commit.stats();
            tracing::info!(syncs, records, "audit journal group commit");
        }
        if let Some(handle) = self.index_thread.take() {
            if handle.join().is_err() {
                tracing::error!("the audit index thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

/// Completes when the record is on disk (strict) or written to the journal (journaled).
#[derive(Debug)]
#[must_use = "a ticket must be awaited before the event is acknowledged"]
pub struct AuditTicket {
    state: TicketState,
}

#[derive(Debug)]
enum TicketState {
    Ready(Result<(), StoreError>),
    /// The record numbered so in strict mode's group commit.
    Sync(Arc<GroupCommit>, u64),
}

impl AuditTicket {
    /// Waits until the record is durable. An error means the event was NOT recorded and whatever it
    /// describes must not be acknowledged to the client. In strict mode the wait may run the journal's
    /// `fdatasync` on this thread (see [`super::group_commit`]).
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.state {
            TicketState::Ready(r) => r,
            TicketState::Sync(commit, record) => commit.durable(record).await,
        }
    }

    /// Blocking version of [`AuditTicket::durable`], for a thread outside any async runtime (use
    /// `durable().await` or `spawn_blocking` there).
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        match self.state {
            TicketState::Ready(r) => r,
            TicketState::Sync(commit, record) => commit.durable_blocking(record),
        }
    }
}

impl AuditSink {
    /// Appends the event to the journal. The ticket completes once the record is on disk
    /// ([`Durability::Strict`]) or at once ([`Durability::Journaled`]); it fails if the journal cannot
    /// take the record.
    pub fn record(&self, event: AuditEvent) -> AuditTicket {
        let ready = |r| AuditTicket {
            state: TicketState::Ready(r),
        };
        let mut payload = Vec::with_capacity(RECORD_HINT);
        if let Err(e) = rmp_serde::encode::write_named(&mut payload, &event) {
            return ready(Err(StoreError::AuditWrite(format!(
                "cannot encode an audit event: {e}"
            ))));
        }
        let appended = {
            let mut appender = self
                .inner
                .appender
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            appender
                .append(&payload, crate::now_millis())
                .map(|appended| {
                    let commit = self.inner.commit.as_ref();
                    commit.map(|c| (Arc::clone(c), c.appended(&appended.file)))
                })
        };
        let to_sync = match appended {
            Ok(to_sync) => to_sync,
            Err(e) => {
                tracing::error!(error = %e, "cannot write the audit journal");
                portcullis_metrics::audit::journal_append_failed();
                return ready(Err(StoreError::AuditWrite(format!(
                    "cannot write the audit journal in {}: {e}",
                    self.inner.dir.display()
                ))));
            }
        };
        self.inner.progress.poke();
        self.inner.appended.notify_one();
        match to_sync {
            Some((commit, record)) => AuditTicket {
                state: TicketState::Sync(commit, record),
            },
            None => ready(Ok(())),
        }
    }

    /// The `fdatasync`s strict mode's group commit has run since the store opened, and the records they
    /// made durable (their ratio is group commit's batch size). Zero outside strict mode.
    pub fn sync_stats(&self) -> (u64, u64) {
        self.inner.commit.as_ref().map_or((0, 0), |c| c.stats())
    }

    /// Blocks until the index holds every event this process recorded before the call. Not for async
    /// runtime threads.
    pub fn flush(&self) -> Result<(), StoreError> {
        let last = {
            let appender = self
                .inner
                .appender
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            appender.next_seq().map(|n| n - 1)
        };
        match last {
            Some(last) => self.inner.progress.wait_for(last, FLUSH_TIMEOUT),
            None => Ok(()),
        }
    }

    /// Indexes on `conn` whatever the journal holds beyond the index, so a query sees every record
    /// journaled before it, by any process.
    pub(crate) fn catch_up(&self, conn: &mut Connection) -> Result<(), StoreError> {
        let mut cursor = self
            .inner
            .catch_up
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while index::index_batch(conn, &mut cursor)?.is_some() {}
        Ok(())
    }

    /// The last journal sequence the index has read.
    pub(crate) fn indexed(&self) -> u64 {
        self.inner.progress.indexed()
    }

    /// Notified after each record this process appends (a permit is kept while nobody waits). Other
    /// processes' appends do not notify it: readers poll too.
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.appended)
    }

    /// The journal's folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The journal's public key.
    pub(crate) fn public_key(&self) -> Vec<u8> {
        let appender = self
            .inner
            .appender
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        appender.public_key().to_vec()
    }
}

/// Opens the journal in `dir` and starts the index thread on `conn` (which must already have the
/// schema).
pub(crate) fn spawn(
    conn: Connection,
    durability: Durability,
    dir: &Path,
    limits: SegmentLimits,
) -> Result<AuditSink, StoreError> {
    let io_err = |source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let appender = Arc::new(Mutex::new(Appender::open(dir, limits).map_err(io_err)?));
    let indexed = index::read_position(&conn)?;
    let progress = Arc::new(Progress::default());
    let index_thread = index::spawn(
        conn,
        JournalCursor::new(dir, indexed + 1),
        Arc::clone(&progress),
        {
            let appender = Arc::clone(&appender);
            move || {
                appender.lock().unwrap_or_else(|p| p.into_inner()).release();
            }
        },
    )?;
    let commit = (durability == Durability::Strict).then(|| Arc::new(GroupCommit::default()));
    Ok(AuditSink {
        inner: Arc::new(SinkInner {
            durability,
            dir: dir.to_path_buf(),
            appender,
            commit,
            progress,
            catch_up: Mutex::new(JournalCursor::new(dir, indexed + 1)),
            appended: Arc::new(tokio::sync::Notify::new()),
            index_thread: Some(index_thread),
        }),
    })
}

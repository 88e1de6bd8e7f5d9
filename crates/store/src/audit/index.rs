//! The index: `audit_events` rows built from the journal by one thread per process, in batches, off the
//! statements' path. `audit_index.seq` is the last journal record the index has read; it moves in the
//! same transaction as the rows, so a crash never loses or doubles a row, and every process that opens
//! the store helps (a process that finds the index ahead of it just moves on).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior};

pub use super::decode::decode_event;
use super::journal::reader::{JournalCursor, JournalRecord};
use super::row;
use crate::error::StoreError;

/// Most records indexed in one transaction.
const MAX_BATCH: usize = 2048;
/// After a batch, how long to let more records gather. Every commit rewrites the touched index pages
/// into the WAL, so under load a batch of hundreds costs far less per row than one of tens (measured:
/// the index thread's share of the gateway's CPU under pgbench), and the index stays well within the
/// second behind the journal it may be.
const LINGER: Duration = Duration::from_millis(100);
/// How often an idle indexer looks for records other processes appended.
const POLL: Duration = Duration::from_millis(250);
/// Pause after a failed batch.
const RETRY: Duration = Duration::from_secs(1);

/// What the index thread and the processes' callers share.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    state: Mutex<State>,
    /// Wakes the index thread.
    work: Condvar,
    /// Signals that `indexed` moved.
    done: Condvar,
    /// The index thread is waiting for work: a record must wake it.
    idle: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// The last sequence the index has read.
    indexed: u64,
    stop: bool,
    /// The last batch's failure, until one succeeds.
    failing: Option<String>,
}

impl Progress {
    /// Tells the index thread a record was appended.
    pub(crate) fn poke(&self) {
        if self.idle.swap(false, Ordering::AcqRel) {
            let _state = self.lock();
            self.work.notify_one();
        }
    }

    /// Waits until the index has read up to `seq`.
    pub(crate) fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + timeout;
        self.idle.store(false, Ordering::Release);
        let mut state = self.lock();
        self.work.notify_one();
        while state.indexed < seq {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || state.stop {
                return Err(StoreError::AuditWrite(format!(
                    "the audit index is behind the journal (at {} of {seq}){}",
                    state.indexed,
                    state
                        .failing
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )));
            }
            state = self
                .done
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Ok(())
    }

    pub(crate) fn indexed(&self) -> u64 {
        self.lock().indexed
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the index thread; it calls `release_journal` between batches.
pub(crate) fn spawn(
    conn: Connection,
    cursor: JournalCursor,
    progress: Arc<Progress>,
    release_journal: impl Fn() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name("portcullis-audit-index".into())
        .spawn(move || run(conn, cursor, &progress, release_journal))
        .map_err(|source| StoreError::Io {
            path: "audit index thread".into(),
            source,
        })
}

fn run(
    mut conn: Connection,
    mut cursor: JournalCursor,
    progress: &Progress,
    release_journal: impl Fn(),
) {
    loop {
        let batch = index_batch(&mut conn, &mut cursor);
        release_journal();
        match batch {
            Ok(Some(indexed)) => {
                let mut state = progress.lock();
                state.indexed = state.indexed.max(indexed);
                state.failing = None;
                progress.done.notify_all();
                drop(state);
                std::thread::sleep(LINGER);
            }
            Ok(None) => {
                // Others (a query catching up, another process) may have moved the index.
                let position = read_position(&conn).unwrap_or(0);
                portcullis_metrics::audit::index_position(position);
                let mut state = progress.lock();
                if position > state.indexed {
                    state.indexed = position;
                    progress.done.notify_all();
                }
                if state.stop {
                    break;
                }
                progress.idle.store(true, Ordering::Release);
                state = progress
                    .work
                    .wait_timeout(state, POLL)
                    .map(|(s, _)| s)
                    .unwrap_or_else(|p| p.into_inner().0);
                progress.idle.store(false, Ordering::Release);
                drop(state);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot index audit journal records; retrying");
                let mut state = progress.lock();
                state.failing = Some(e.to_string());
                if state.stop {
                    break;
                }
                drop(state);
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// Indexes the next batch; the last sequence read, or `None` when there was nothing new.
pub(crate) fn index_batch(
    conn: &mut Connection,
    cursor: &mut JournalCursor,
) -> Result<Option<u64>, StoreError> {
    let indexed = read_position(conn)?;
    cursor.seek(indexed + 1);
    let records = cursor
        .read(MAX_BATCH)
        .map_err(|e| StoreError::AuditWrite(e.to_string()))?;
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok(None);
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now: i64 = tx.query_row("SELECT seq FROM audit_index WHERE id = 1", [], |r| r.get(0))?;
    if u64::try_from(now).unwrap_or(0) != indexed {
        // Another process moved the index meanwhile: read again from where it is.
        return Ok(Some(u64::try_from(now).unwrap_or(0)));
    }
    {
        let mut rows = Vec::with_capacity(records.len());
        for JournalRecord { seq, event } in &records {
            let Some(payload) = event else {
                continue;
            };
            let event = match decode_event(payload) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(seq, error = %e, "audit journal record skipped by the index; `portcullis audit verify` tells more");
                    continue;
                }
            };
            let seq = Value::Integer(i64::try_from(*seq).unwrap_or(i64::MAX));
            rows.push((seq, row::row(&event)?));
        }
        // Several rows a statement: SQLite's per-statement work (and AUTOINCREMENT's bookkeeping)
        // is then paid once for all of them.
        let mut chunks = rows.chunks_exact(row::ROWS_PER_INSERT);
        if chunks.len() > 0 {
            let mut insert = tx.prepare_cached(&row::INSERT_MANY)?;
            for chunk in &mut chunks {
                insert.execute(rusqlite::params_from_iter(
                    chunk
                        .iter()
                        .flat_map(|(seq, values)| std::iter::once(seq).chain(values)),
                ))?;
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut insert = tx.prepare_cached(&row::INSERT)?;
            for (seq, values) in rest {
                insert.execute(rusqlite::params_from_iter(
                    std::iter::once(seq).chain(values),
                ))?;
            }
        }
    }
    tx.execute(
        "UPDATE audit_index SET seq = ?1 WHERE id = 1",
        [i64::try_from(last).unwrap_or(i64::MAX)],
    )?;
    tx.commit()?;
    portcullis_metrics::audit::indexed(records.len() as u64, last);
    Ok(Some(last))
}

/// The last sequence the index has read.
pub(crate) fn read_position(conn: &Connection) -> Result<u64, StoreError> {
    let seq: i64 = conn.query_row("SELECT seq FROM audit_index WHERE id = 1", [], |r| r.get(0))?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

//! The audit writer: one thread, one connection, group commit.
//!
//! Sessions hand events to [`AuditSink::record`]. The writer thread takes everything queued (up to
//! [`MAX_BATCH`]), inserts it in one transaction, commits (one fsync in strict mode) and only then
//! completes the tickets, so concurrent sessions share fsyncs and nobody is told "durable" early.
//! In journaled mode `record` first appends the event to this process's [`journal`](super::journal)
//! on the caller's thread, and the writer commits it with the buffered events' linger; the journal
//! then rolls over to a new file and the writer removes each full one once the database has it all.
//!
//! Failures:
//! - A batch that fails with a transient SQLite error (busy, locked, I/O, disk full) is retried as a
//!   whole with a bounded backoff ([`RETRY_DELAYS`], at most [`RETRY_BUDGET`] in all) before it counts
//!   as failed. The busy timeout of the connection applies to every attempt.
//! - Strict mode: a batch that finally fails completes its tickets with the error (the events are NOT
//!   recorded and must not be acknowledged).
//! - Buffered mode: the tickets have already resolved, so a failed batch is not dropped. Its events are
//!   kept in memory (at most [`MAX_CARRIED`]) and written ahead of the next batch, or retried every
//!   [`CARRY_RETRY_INTERVAL`] while the queue is idle. Until they are written, every `record` returns a
//!   ticket that fails with [`StoreError::AuditWrite`] (the event itself is still queued) and `flush`
//!   fails, so callers learn that the log is behind instead of losing records silently. Only if more
//!   than [`MAX_CARRIED`] events pile up are the oldest dropped, and only if the final attempt when the
//!   writer stops fails are the kept events lost; both are logged as errors with the count.
//! - Journaled mode: as buffered mode, but the kept events are in the journal too, so a final attempt
//!   that fails loses nothing (the next start replays them). A journal that cannot be written fails
//!   the ticket of the event it could not take; the event is queued all the same.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::event::{AuditEvent, PolicyTrail};
use super::journal::{self, Journal};
use crate::error::{is_transient, StoreError};
use crate::Durability;

/// Most events written in one transaction.
const MAX_BATCH: usize = 1024;
/// How long a buffered or journaled batch waits for company before it is committed.
const LINGER: Duration = Duration::from_millis(5);
/// Room reserved for an event's JSON in the journal: most statement events fit.
const RECORD_HINT: usize = 1024;
/// Queue capacity; when full, `record` blocks (backpressure rather than unbounded memory or lost events).
const QUEUE_CAPACITY: usize = 16 * 1024;
/// Pauses between attempts at a batch that failed with a transient error.
const RETRY_DELAYS: [Duration; 8] = [
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(1),
];
/// No new attempt at a batch starts once this much time has passed since its first attempt.
const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Most buffered events kept for a later attempt after their batch failed.
const MAX_CARRIED: usize = QUEUE_CAPACITY;
/// How often kept buffered events are retried while nothing new arrives.
const CARRY_RETRY_INTERVAL: Duration = Duration::from_secs(1);

type Done = oneshot::Sender<Result<(), StoreError>>;

/// Where a journaled event's record is: its journal's name and its sequence there.
type JournalPos = (Arc<str>, u64);

enum Msg {
    // Boxed: the bounded channel preallocates every slot, so keep slots small.
    Record {
        event: Box<AuditEvent>,
        done: Option<Done>,
        journal: Option<JournalPos>,
    },
    Flush(mpsc::Sender<Result<(), StoreError>>),
    /// A journal that takes no more records: removed once the database has them (they were all sent
    /// before it).
    Sealed(Journal),
}

/// Why buffered events are waiting in the writer; `None` when nothing is waiting.
type Backlog = Arc<Mutex<Option<String>>>;

/// Records audit events. Cheap to clone, `Send + Sync`. The writer thread stops (after writing what is
/// queued) when the last `AuditSink` and [`crate::Store`] are dropped; the last drop waits for that.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    tx: Option<SyncSender<Msg>>,
    durability: Durability,
    backlog: Backlog,
    thread: Option<JoinHandle<()>>,
    /// Journaled mode's journal, appended to by the recording threads.
    journal: Option<Mutex<Appender>>,
}

/// The journal records are appended to, created with the first record and replaced when full.
struct Appender {
    /// The database file journals go next to.
    db: PathBuf,
    current: Option<Journal>,
}

impl Drop for SinkInner {
    fn drop(&mut self) {
        if let (Some(appender), Some(tx)) = (&self.journal, &self.tx) {
            let mut appender = appender.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(journal) = appender.current.take() {
                drop(tx.send(Msg::Sealed(journal)));
            }
        }
        // Closing the channel lets the writer drain the queue and exit; joining makes "dropped" mean
        // "written".
        drop(self.tx.take());
        if let Some(handle) = self.thread.take() {
            if handle.join().is_err() {
                tracing::error!("audit writer thread panicked");
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

/// Completes when the record is durable (strict), in the journal (journaled) or queued (buffered).
#[derive(Debug)]
#[must_use = "a ticket must be awaited before the event is acknowledged"]
pub struct AuditTicket {
    state: TicketState,
}

#[derive(Debug)]
enum TicketState {
    Ready(Result<(), StoreError>),
    Pending(oneshot::Receiver<Result<(), StoreError>>),
}

impl AuditTicket {
    /// Waits until the record is durable. An error means the event was NOT recorded and whatever it
    /// describes must not be acknowledged to the client.
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.state {
            TicketState::Ready(r) => r,
            TicketState::Pending(rx) => rx.await.unwrap_or(Err(StoreError::AuditWriterGone)),
        }
    }

    /// Blocking version of [`AuditTicket::durable`]. Panics if called from an async runtime thread
    /// (tokio forbids blocking there); use `durable().await` or `spawn_blocking`.
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        match self.state {
            TicketState::Ready(r) => r,
            TicketState::Pending(rx) => rx
                .blocking_recv()
                .unwrap_or(Err(StoreError::AuditWriterGone)),
        }
    }
}

impl AuditSink {
    /// Hands the event to the writer thread. The ticket completes when the record is durable
    /// ([`Durability::Strict`]) or at once ([`Durability::Buffered`], and [`Durability::Journaled`]
    /// after appending the event to the journal). In buffered and journaled mode the ticket fails
    /// while earlier events are kept unwritten after a write failure (see the module documentation),
    /// and in journaled mode also if the journal cannot be written; the event is queued all the same
    /// and will be written with them.
    /// Blocks only if the writer is more than a full queue behind.
    pub fn record(&self, event: AuditEvent) -> AuditTicket {
        if let Some(appender) = &self.inner.journal {
            return self.record_journaled(appender, event);
        }
        let (done, state) = match self.inner.durability {
            Durability::Strict => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), TicketState::Pending(rx))
            }
            Durability::Buffered | Durability::Journaled => {
                (None, TicketState::Ready(self.backlog_status()))
            }
        };
        match self.send(Msg::Record {
            event: Box::new(event),
            done,
            journal: None,
        }) {
            Ok(()) => AuditTicket { state },
            Err(e) => AuditTicket {
                state: TicketState::Ready(Err(e)),
            },
        }
    }

    /// Journaled mode: appends the event to the journal, then queues it. Both happen under the
    /// appender's lock, so the writer receives each journal's records in sequence order.
    fn record_journaled(&self, appender: &Mutex<Appender>, event: AuditEvent) -> AuditTicket {
        let mut record = journal::record_buffer(RECORD_HINT);
        let encoded = serde_json::to_writer(&mut record, &event)
            .map_err(|e| StoreError::AuditWrite(format!("cannot encode an audit event: {e}")));
        let mut appender = appender.lock().unwrap_or_else(|p| p.into_inner());
        let appended = encoded.and_then(|()| appender.append(&mut record, |msg| self.send(msg)));
        let (journal, written) = match appended {
            Ok(pos) => (Some(pos), Ok(())),
            Err(e) => (None, Err(e)),
        };
        let sent = self.send(Msg::Record {
            event: Box::new(event),
            done: None,
            journal,
        });
        drop(appender);
        AuditTicket {
            state: TicketState::Ready(written.and(sent).and_then(|()| self.backlog_status())),
        }
    }

    /// Blocks until every event recorded before this call is committed (also in buffered mode).
    /// Returns the commit result of the batch the flush rode with, which in buffered mode includes
    /// any events kept from an earlier failed batch. Not for async runtime threads.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        rx.recv().unwrap_or(Err(StoreError::AuditWriterGone))
    }

    fn backlog_status(&self) -> Result<(), StoreError> {
        let backlog = self.inner.backlog.lock().unwrap_or_else(|p| p.into_inner());
        match backlog.as_deref() {
            None => Ok(()),
            Some(why) => Err(StoreError::AuditWrite(format!(
                "earlier buffered audit events are not written yet ({why}); they are kept and retried"
            ))),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let tx = self.inner.tx.as_ref().ok_or(StoreError::AuditWriterGone)?;
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                tracing::warn!("audit queue full; waiting for the writer");
                tx.send(msg).map_err(|_| StoreError::AuditWriterGone)
            }
            Err(TrySendError::Disconnected(_)) => Err(StoreError::AuditWriterGone),
        }
    }
}

impl Appender {
    /// Appends one record to the current journal, first handing a full one to `seal` and starting
    /// another.
    fn append(
        &mut self,
        record: &mut [u8],
        seal: impl FnOnce(Msg) -> Result<(), StoreError>,
    ) -> Result<JournalPos, StoreError> {
        let failed = |e: std::io::Error| {
            StoreError::AuditWrite(format!("cannot write the audit journal: {e}"))
        };
        if self.current.as_ref().is_some_and(Journal::is_full) {
            if let Some(full) = self.current.take() {
                seal(Msg::Sealed(full))?;
            }
        }
        let journal = match &mut self.current {
            Some(current) => current,
            None => self
                .current
                .insert(Journal::create(&self.db).map_err(failed)?),
        };
        let seq = journal.append(record).map_err(failed)?;
        Ok((Arc::clone(journal.name()), seq))
    }
}

/// Starts the writer thread on `conn` (which must already have the schema); journals, in journaled
/// mode, go next to the database file `db`.
pub(crate) fn spawn(
    conn: Connection,
    durability: Durability,
    db: &Path,
) -> Result<AuditSink, StoreError> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
    let backlog = Backlog::default();
    let writer = Writer {
        conn,
        // Nobody waits for a buffered or journaled record, so gathering a few milliseconds of them
        // into one transaction costs no latency and saves a commit per statement.
        linger: (durability != Durability::Strict).then_some(LINGER),
        carried: Vec::new(),
        sealed: Vec::new(),
        backlog: Arc::clone(&backlog),
    };
    let thread = std::thread::Builder::new()
        .name("portcullis-audit".into())
        .spawn(move || writer.run(rx))
        .map_err(|source| StoreError::Io {
            path: "audit writer thread".into(),
            source,
        })?;
    Ok(AuditSink {
        inner: Arc::new(SinkInner {
            tx: Some(tx),
            durability,
            backlog,
            thread: Some(thread),
            journal: (durability == Durability::Journaled).then(|| {
                Mutex::new(Appender {
                    db: db.to_path_buf(),
                    current: None,
                })
            }),
        }),
    })
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// How long to wait for more events after the first of a batch (buffered and journaled modes).
    linger: Option<Duration>,
    /// Buffered or journaled events whose batch failed, oldest first; written ahead of the next batch.
    carried: Vec<(AuditEvent, Option<JournalPos>)>,
    /// Full journals whose records are not all committed yet.
    sealed: Vec<Journal>,
    backlog: Backlog,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        tracing::debug!("audit writer started");
        loop {
            let first = if self.carried.is_empty() {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            } else {
                match rx.recv_timeout(CARRY_RETRY_INTERVAL) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut batch = Vec::with_capacity(64);
            batch.extend(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if let Some(linger) = self.linger {
                // Sleeping rather than waiting on the channel: senders then never wake this thread one
                // event at a time.
                if !batch.iter().any(|m| matches!(m, Msg::Flush(_))) {
                    std::thread::sleep(linger);
                }
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
            }
            self.write(batch);
        }
        if !self.carried.is_empty() {
            self.write(Vec::new());
            if !self.carried.is_empty() {
                tracing::error!(
                    lost = self.carried.len(),
                    "audit writer stopping; buffered audit events could not be written and are lost"
                );
            }
        }
        tracing::debug!("audit writer stopped");
    }

    /// Writes the carried events and `batch` in one transaction, then completes the batch.
    fn write(&mut self, batch: Vec<Msg>) {
        let mut events = Vec::new();
        let mut marks = Marks::default();
        let carried = self
            .carried
            .iter()
            .map(|(event, pos)| (event, pos.as_ref()));
        let queued = batch.iter().filter_map(|m| match m {
            Msg::Record { event, journal, .. } => Some((&**event, journal.as_ref())),
            Msg::Flush(_) | Msg::Sealed(_) => None,
        });
        for (event, pos) in carried.chain(queued) {
            events.push(event);
            marks.note(pos);
        }
        let count = events.len();
        let result = write_with_retry(&mut self.conn, &events, &marks).map_err(|e| e.to_string());
        drop(events);
        drop(marks);
        match &result {
            Ok(()) if !self.carried.is_empty() => {
                tracing::info!(
                    events = self.carried.len(),
                    "kept buffered audit events are now written"
                );
                self.carried.clear();
            }
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, events = count, "audit write failed"),
        }
        let outcome = || result.clone().map_err(StoreError::AuditWrite);
        let mut acks = Vec::new();
        for msg in batch {
            match msg {
                // A dropped ticket is fine: nobody is waiting.
                Msg::Record {
                    done: Some(done), ..
                } => drop(done.send(outcome())),
                // Buffered: the caller was told "ok" already, so keep the event for another attempt.
                Msg::Record {
                    done: None,
                    event,
                    journal,
                } => {
                    if result.is_err() {
                        self.carried.push((*event, journal));
                    }
                }
                Msg::Flush(ack) => acks.push(ack),
                Msg::Sealed(journal) => self.sealed.push(journal),
            }
        }
        if result.is_ok() {
            for journal in self.sealed.drain(..) {
                journal.remove(&self.conn);
            }
        }
        if self.carried.len() > MAX_CARRIED {
            let excess = self.carried.len() - MAX_CARRIED;
            self.carried.drain(..excess);
            tracing::error!(
                lost = excess,
                "too many buffered audit events waiting after write failures; the oldest are lost"
            );
        }
        // Publish the backlog before acknowledging flushes, so a caller that saw a flush fail also
        // sees later records fail.
        *self.backlog.lock().unwrap_or_else(|p| p.into_inner()) = match &result {
            Err(e) if !self.carried.is_empty() => Some(e.clone()),
            _ => None,
        };
        for ack in acks {
            drop(ack.send(outcome()));
        }
    }
}

/// How far each journal's records are in a batch: its name and last sequence.
#[derive(Default)]
struct Marks<'a>(Vec<(&'a str, u64)>);

impl<'a> Marks<'a> {
    fn note(&mut self, pos: Option<&'a JournalPos>) {
        let Some((name, seq)) = pos else {
            return;
        };
        match self.0.iter_mut().find(|(n, _)| *n == &**name) {
            Some((_, last)) => *last = (*last).max(*seq),
            None => self.0.push((name, *seq)),
        }
    }
}

/// [`write_batch`], retried with a bounded backoff while it fails with a transient error.
fn write_with_retry(
    conn: &mut Connection,
    events: &[&AuditEvent],
    marks: &Marks<'_>,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut delays = RETRY_DELAYS.iter();
    loop {
        match write_batch(conn, events.iter().copied(), &marks.0) {
            Err(e) if is_transient(&e) => match delays.next() {
                Some(delay) if started.elapsed() < RETRY_BUDGET => {
                    tracing::warn!(error = %e, retry_in = ?delay, "audit write failed; retrying");
                    std::thread::sleep(*delay);
                }
                _ => return Err(e),
            },
            other => return other,
        }
    }
}

/// Inserts `events` in one transaction, and records for each journal in `marks` that the database has
/// its records up to that sequence.
pub(crate) fn write_batch<'a>(
    conn: &mut Connection,
    events: impl Iterator<Item = &'a AuditEvent>,
    marks: &[(&str, u64)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for event in events {
            insert_event(&mut insert, event)?;
        }
    }
    for (name, seq) in marks {
        tx.prepare_cached(
            "INSERT INTO audit_journals (name, seq) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        )?
        .execute(rusqlite::params![name, sat(*seq)])?;
    }
    tx.commit()?;
    Ok(())
}

const INSERT: &str = "INSERT INTO audit_events (\
    kind, at, session_id, user_name, resource, client_addr, \
    phase, auth_result, tls, application_name, bytes_in, bytes_out, detail, \
    statement_text, statement_kind, objects, object_names, param_count, row_count, duration_us, \
    decision, outcome, sqlstate, message) VALUES \
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
    ?21, ?22, ?23, ?24)";

/// SQL integers are signed 64-bit; counters beyond that saturate.
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn insert_event(
    stmt: &mut rusqlite::CachedStatement<'_>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    use rusqlite::types::Null;
    match event {
        AuditEvent::Connection(c) => {
            stmt.execute(rusqlite::params![
                "connection",
                c.at,
                c.session_id,
                c.user,
                c.resource,
                c.client_addr,
                c.phase.as_str(),
                c.auth_result,
                c.tls,
                c.application_name,
                sat(c.bytes_in),
                sat(c.bytes_out),
                c.detail,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
            ])?;
        }
        AuditEvent::Statement(s) => {
            let objects = serde_json::to_string(&s.objects)
                .map_err(|e| StoreError::AuditWrite(format!("cannot encode objects: {e}")))?;
            // One name per line: lets the object filter match a name substring with a plain LIKE.
            let object_names = s
                .objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            stmt.execute(rusqlite::params![
                "statement",
                s.at,
                s.session_id,
                s.user,
                s.resource,
                s.client_addr,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                s.policy.as_ref().map(encode_trail).transpose()?,
                s.text,
                s.kind,
                objects,
                object_names,
                s.param_count,
                s.rows.map(sat),
                sat(s.duration_us),
                s.decision,
                s.outcome,
                s.sqlstate,
                s.message,
            ])?;
        }
        AuditEvent::Decision(d) => {
            stmt.execute(rusqlite::params![
                "decision",
                d.at,
                d.session_id,
                d.user,
                d.resource,
                d.client_addr,
                d.policy.stage,
                Null,
                Null,
                Null,
                Null,
                Null,
                encode_trail(&d.policy)?,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                d.policy.result,
                Null,
                Null,
                d.policy.reason,
            ])?;
        }
        AuditEvent::Workflow(w) => {
            // The whole event as JSON in `detail`; the shared columns let the usual filters find it.
            let json = serde_json::to_string(w).map_err(|e| {
                StoreError::AuditWrite(format!("cannot encode workflow event: {e}"))
            })?;
            stmt.execute(rusqlite::params![
                "workflow",
                w.at,
                w.session_id,
                w.user,
                w.resource,
                "",
                w.action,
                Null,
                Null,
                Null,
                Null,
                Null,
                json,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                w.action,
                Null,
                Null,
                w.detail,
            ])?;
        }
        // The action in `phase`, the result in `outcome`, the detail in `message`.
        AuditEvent::Mfa(m) => {
            stmt.execute(rusqlite::params![
                "mfa",
                m.at,
                m.session_id,
                m.user,
                m.resource,
                m.client_addr,
                m.action,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                m.result,
                Null,
                m.detail,
            ])?;
        }
    }
    Ok(())
}

/// The policy trail goes into the `detail` column as JSON: read back whole, searched with LIKE.
fn encode_trail(trail: &PolicyTrail) -> Result<String, StoreError> {
    serde_json::to_string(trail)
        .map_err(|e| StoreError::AuditWrite(format!("cannot encode the policy trail: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::StatementEvent;
    use crate::schema;

    fn event(at: i64) -> AuditEvent {
        AuditEvent::Statement(StatementEvent {
            session_id: "s".into(),
            at,
            user: "alice".into(),
            resource: "prod".into(),
            client_addr: "127.0.0.1:1".into(),
            text: "SELECT 1".into(),
            kind: "select".into(),
            objects: Vec::new(),
            param_count: 0,
            rows: None,
            duration_us: 0,
            decision: "allow".into(),
            outcome: "ok".into(),
            sqlstate: None,
            message: None,
            policy: None,
        })
    }

    /// Records 20 events while another connection holds the write lock for longer than the writer's
    /// busy timeout, drops the sink, and returns how many rows landed.
    fn rows_after_lock_contention(durability: Durability) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut admin = schema::open_connection(&path, true).unwrap();
        schema::migrate(&mut admin).unwrap();
        let writer_conn = schema::open_connection(&path, false).unwrap();
        // Far shorter than the lock is held: only retrying gets the batch in.
        writer_conn.busy_timeout(Duration::from_millis(10)).unwrap();
        let sink = spawn(writer_conn, durability, &path).unwrap();

        let locker = schema::open_connection(&path, false).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            locker.execute_batch("COMMIT").unwrap();
        });
        let tickets: Vec<_> = (0..20).map(|i| sink.record(event(i))).collect();
        for ticket in tickets {
            ticket.wait_blocking().unwrap();
        }
        drop(sink);
        holder.join().unwrap();
        admin
            .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn buffered_batch_survives_a_held_write_lock() {
        assert_eq!(rows_after_lock_contention(Durability::Buffered), 20);
    }

    #[test]
    fn strict_batch_survives_a_held_write_lock() {
        assert_eq!(rows_after_lock_contention(Durability::Strict), 20);
    }
}

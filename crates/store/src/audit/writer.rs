//! The audit writer: one thread, one connection, group commit.
//!
//! Sessions hand events to [`AuditSink::record`]. The writer thread takes everything queued (up to
//! [`MAX_BATCH`]), inserts it in one transaction, commits (one fsync in strict mode) and only then
//! completes the tickets, so concurrent sessions share fsyncs and nobody is told "durable" early.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::event::AuditEvent;
use crate::error::StoreError;
use crate::Durability;

/// Most events written in one transaction.
const MAX_BATCH: usize = 1024;
/// Queue capacity; when full, `record` blocks (backpressure rather than unbounded memory or lost events).
const QUEUE_CAPACITY: usize = 16 * 1024;

type Done = oneshot::Sender<Result<(), StoreError>>;

enum Msg {
    // Boxed: the bounded channel preallocates every slot, so keep slots small.
    Record {
        event: Box<AuditEvent>,
        done: Option<Done>,
    },
    Flush(mpsc::Sender<Result<(), StoreError>>),
}

/// Records audit events. Cheap to clone, `Send + Sync`. The writer thread stops (after writing what is
/// queued) when the last `AuditSink` and [`crate::Store`] are dropped; the last drop waits for that.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    tx: Option<SyncSender<Msg>>,
    durability: Durability,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SinkInner {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain the queue and exit; joining makes "dropped" mean
        // "written".
        drop(self.tx.take());
        dbg_log(&format!("sinkinner drop, thread={}", self.thread.is_some()));
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

/// Completes when the record is durable (strict) or queued (buffered).
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
    /// ([`Durability::Strict`]) or at once ([`Durability::Buffered`]; write errors are then only logged).
    /// Blocks only if the writer is more than a full queue behind.
    pub fn record(&self, event: AuditEvent) -> AuditTicket {
        let (done, state) = match self.inner.durability {
            Durability::Strict => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), TicketState::Pending(rx))
            }
            Durability::Buffered => (None, TicketState::Ready(Ok(()))),
        };
        match self.send(Msg::Record {
            event: Box::new(event),
            done,
        }) {
            Ok(()) => AuditTicket { state },
            Err(e) => AuditTicket {
                state: TicketState::Ready(Err(e)),
            },
        }
    }

    /// Blocks until every event recorded before this call is committed (also in buffered mode).
    /// Returns the commit result of the batch the flush rode with. Not for async runtime threads.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        rx.recv().unwrap_or(Err(StoreError::AuditWriterGone))
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

/// Starts the writer thread on `conn` (which must already have the schema).
pub(crate) fn spawn(conn: Connection, durability: Durability) -> Result<AuditSink, StoreError> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
    let thread = std::thread::Builder::new()
        .name("portcullis-audit".into())
        .spawn(move || run(conn, rx))
        .map_err(|source| StoreError::Io {
            path: "audit writer thread".into(),
            source,
        })?;
    Ok(AuditSink {
        inner: Arc::new(SinkInner {
            tx: Some(tx),
            durability,
            thread: Some(thread),
        }),
    })
}

fn run(mut conn: Connection, rx: Receiver<Msg>) {
    tracing::debug!("audit writer started");
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let events = batch.iter().filter_map(|m| match m {
            Msg::Record { event, .. } => Some(&**event),
            Msg::Flush(_) => None,
        });
        let n = events.clone().count();
        let result = write_batch(&mut conn, events).map_err(|e| e.to_string());
        dbg_log(&format!("{:?} wrote {n} events: {result:?}", conn.path()));
        if let Err(e) = &result {
            tracing::error!(error = %e, events = batch.len(), "audit write failed"); { use std::io::Write; if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open("/tmp/auditdbg.log") { let _ = writeln!(f, "DEBUG audit write failed: {e} ({} msgs)", batch.len()); } }
        }
        let outcome = || result.clone().map_err(StoreError::AuditWrite);
        for msg in batch {
            match msg {
                // A dropped ticket is fine: nobody is waiting.
                Msg::Record {
                    done: Some(done), ..
                } => drop(done.send(outcome())),
                Msg::Record { done: None, .. } => {}
                Msg::Flush(ack) => drop(ack.send(outcome())),
            }
        }
    }
    tracing::debug!("audit writer stopped");
    dbg_log(&format!("{:?} writer stopped", conn.path()));
}

fn write_batch<'a>(
    conn: &mut Connection,
    events: impl Iterator<Item = &'a AuditEvent>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for event in events {
            insert_event(&mut insert, event)?;
        }
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
                Null,
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
    }
    Ok(())
}

pub(crate) fn dbg_log(m: &str) { use std::io::Write; if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open("/tmp/auditdbg.log") { let _ = writeln!(f, "{:?} {m}", std::thread::current().id()); } }

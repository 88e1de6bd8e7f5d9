//! Recording audit events: the caller's thread encodes the event and appends it to the journal (see
//! [`super::journal`]); in strict mode it then waits for an `fdatasync` that a syncer thread runs for
//! everyone waiting at once (group commit: while one sync runs, the next gathers its company). The
//! index thread ([`super::index`]) builds the SQLite rows from the journal afterwards.
//!
//! A record that cannot be appended (a full disk, an unwritable folder) fails its ticket: the caller
//! must not acknowledge what it describes, so the gateway fails closed rather than losing records.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::event::AuditEvent;
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

type Done = oneshot::Sender<Result<(), StoreError>>;

/// Records audit events. Cheap to clone, `Send + Sync`. The threads stop (after indexing what is
/// journaled) when the last `AuditSink` and [`crate::Store`] are dropped; the last drop waits for that.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    durability: Durability,
    dir: PathBuf,
    appender: Mutex<Appender>,
    syncer: Option<Arc<Syncer>>,
    progress: Arc<Progress>,
    /// Where readers that bring the index up to date themselves read the journal.
    catch_up: Mutex<JournalCursor>,
    /// Woken after each append, for readers that ship records as they come (the sinks); cheap when
    /// nobody waits.
    appended: Arc<tokio::sync::Notify>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for SinkInner {
    fn drop(&mut self) {
        // A signed checkpoint at a clean stop vouches for everything this process wrote.
        let mut appender = self.appender.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = appender.checkpoint() {
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
        if let Some(syncer) = &self.syncer {
            syncer.stop();
            tracing::info!(
                syncs = syncer.syncs.load(Ordering::Relaxed),
                records = syncer.synced.load(Ordering::Relaxed),
                "audit journal group commit"
            );
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("an audit thread panicked");
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
    /// Appends the event to the journal. The ticket completes once the record is on disk
    /// ([`Durability::Strict`]) or at once ([`Durability::Journaled`]); it fails if the journal cannot
    /// take the record.
    pub fn record(&self, event: AuditEvent) -> AuditTicket {
        self.record_announced(event, None)
    }

    /// [`AuditSink::record`] for a record `intent` announced: the announcement is taken back as the
    /// record joins the next sync.
    pub fn record_announced(&self, event: AuditEvent, intent: Option<&AuditIntent>) -> AuditTicket {
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
            appender.append(&payload, crate::now_millis())
        };
        let appended = match appended {
            Ok(appended) => appended,
            Err(e) => {
                tracing::error!(error = %e, "cannot write the audit journal");
                return ready(Err(StoreError::AuditWrite(format!(
                    "cannot write the audit journal in {}: {e}",
                    self.inner.dir.display()
                ))));
            }
        };
        self.inner.progress.poke();
        self.inner.appended.notify_one();
        match &self.inner.syncer {
            Some(syncer) => {
                let (tx, rx) = oneshot::channel();
                syncer.request(appended.file, tx, intent);
                AuditTicket {
                    state: TicketState::Pending(rx),
                }
            }
            None => ready(Ok(())),
        }
    }

    /// A session's announcement of the strict records its running statements will make (see
    /// [`AuditIntent`]); inert in other durabilities.
    pub fn intent(&self) -> AuditIntent {
        AuditIntent {
            syncer: self.inner.syncer.clone(),
            announced: Mutex::new((0, 0)),
        }
    }

    /// The `fdatasync`s the journal's syncer has run since the store opened, and the records they
    /// made durable (their ratio is group commit's batch size). Zero outside strict mode.
    pub fn sync_stats(&self) -> (u64, u64) {
        self.inner.syncer.as_ref().map_or((0, 0), |s| {
            (
                s.syncs.load(Ordering::Relaxed),
                s.synced.load(Ordering::Relaxed),
            )
        })
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

/// The longest a sync is held open for records on their way, whatever the last sync took.
const MAX_HOLD: Duration = Duration::from_millis(2);

/// Runs `fdatasync` for everyone waiting.
///
/// An `fdatasync` costs the process tens of microseconds of CPU (measured here: about 40 us for a
/// record appended to the file's end) besides the wait, and each one wakes the syncer and then the
/// waiting sessions: a sync shared by five records costs each a fifth. Syncing as soon as one record
/// waits shared each sync among about two records at ten pgbench clients. So when statements that
/// will record are running upstream ([`AuditIntent`]), the syncer holds the sync open for them (at
/// most as long as the last sync took, and never when none are coming: one client waits for one sync
/// and nothing more). Only the statements already running when the hold starts are waited for, so a
/// steady stream of new ones cannot keep it open.
struct Syncer {
    queue: Mutex<SyncQueue>,
    wake: Condvar,
    /// Records announced and not recorded yet, in two generations: the hold waits for the older
    /// one to empty while new announcements go to the other.
    coming: [AtomicUsize; 2],
    /// Which generation new announcements go to.
    generation: AtomicUsize,
    /// The syncer is holding a sync for records on their way: the last of them must wake it.
    holding: AtomicBool,
    /// How long the last sync took, in nanoseconds: the longest the next hold lasts.
    last_sync_ns: AtomicU64,
    /// `fdatasync`s run, and the records they made durable.
    syncs: AtomicU64,
    synced: AtomicU64,
    /// [`MAX_HOLD`], longer in tests that must not depend on timing.
    max_hold: Duration,
}

impl Default for Syncer {
    fn default() -> Self {
        Syncer {
            queue: Mutex::default(),
            wake: Condvar::new(),
            coming: Default::default(),
            generation: AtomicUsize::new(0),
            holding: AtomicBool::new(false),
            last_sync_ns: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            max_hold: MAX_HOLD,
        }
    }
}

#[derive(Default)]
struct SyncQueue {
    waiting: Vec<(Arc<File>, Done)>,
    stop: bool,
}

impl Syncer {
    /// Queues a record for the next sync; `arrived` is the announcement it fulfils, taken back in
    /// the same step so the syncer never sees the record announced and waiting at once.
    fn request(&self, file: Arc<File>, done: Done, arrived: Option<&AuditIntent>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.waiting.push((file, done));
        let emptied = arrived.is_some_and(|intent| intent.take_one(self));
        if queue.waiting.len() == 1 || emptied {
            self.wake.notify_one();
        }
    }

    fn stop(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        self.wake.notify_one();
    }

    /// One announcer's records on their way in `generation` went up by `more` or down by `less`.
    /// Returns whether a hold waits for the syncer to look again (the caller then wakes it).
    fn announce(&self, generation: usize, more: usize, less: usize) -> bool {
        let counter = &self.coming[generation & 1];
        if more > 0 {
            counter.fetch_add(more, Ordering::SeqCst);
        }
        less > 0
            && counter.fetch_sub(less, Ordering::SeqCst) == less
            && self.holding.load(Ordering::SeqCst)
    }

    /// Wakes a holding syncer. Taking the lock orders this after the syncer's check of what is
    /// coming: it is waiting, or sees the change.
    fn nudge(&self) {
        let _queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_one();
    }

    /// Holds the sync while records announced before now are on their way, up to the last sync's
    /// duration. Called with the queue locked and a record waiting.
    fn hold<'a>(
        &self,
        mut queue: std::sync::MutexGuard<'a, SyncQueue>,
    ) -> std::sync::MutexGuard<'a, SyncQueue> {
        let older = self.generation.fetch_add(1, Ordering::SeqCst) & 1;
        self.holding.store(true, Ordering::SeqCst);
        let hold =
            Duration::from_nanos(self.last_sync_ns.load(Ordering::Relaxed)).min(self.max_hold);
        let deadline = Instant::now() + hold;
        while self.coming[older].load(Ordering::SeqCst) > 0 && !queue.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = self
                .wake
                .wait_timeout(queue, left)
                .map(|(q, _)| q)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        self.holding.store(false, Ordering::SeqCst);
        queue
    }

    fn run(&self) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                while queue.waiting.is_empty() && !queue.stop {
                    queue = self.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                if queue.waiting.is_empty() {
                    return;
                }
                if !queue.stop
                    && (self.coming[0].load(Ordering::SeqCst) > 0
                        || self.coming[1].load(Ordering::SeqCst) > 0)
                {
                    queue = self.hold(queue);
                }
                std::mem::take(&mut queue.waiting)
            };
            self.syncs.fetch_add(1, Ordering::Relaxed);
            self.synced.fetch_add(batch.len() as u64, Ordering::Relaxed);
            // Usually one file; after a rotation the sealed one was synced when it was sealed, but
            // syncing it again is harmless.
            let mut synced: Vec<(Arc<File>, Result<(), String>)> = Vec::new();
            for (file, done) in batch {
                let result = match synced.iter().find(|(f, _)| Arc::ptr_eq(f, &file)) {
                    Some((_, result)) => result.clone(),
                    None => {
                        let started = Instant::now();
                        let result = file.sync_data().map_err(|e| e.to_string());
                        let took = started.elapsed();
                        self.last_sync_ns.store(
                            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                        portcullis_metrics::audit::journal_synced(took);
                        tracing::trace!(?took, "audit journal synced");
                        synced.push((Arc::clone(&file), result.clone()));
                        result
                    }
                };
                drop(done.send(result.map_err(|e| {
                    StoreError::AuditWrite(format!("cannot sync the audit journal: {e}"))
                })));
            }
        }
    }
}

/// A session's announcement of the strict records its statements running upstream will make: lets
/// the journal's syncer hold a sync for them, so that one `fdatasync` serves more records. Keep it up to date with [`AuditIntent::set`]
/// before recording; dropping it withdraws what it announced. Does nothing in other durabilities.
#[derive(Default)]
pub struct AuditIntent {
    syncer: Option<Arc<Syncer>>,
    /// What this announcer has announced, and in which generation.
    announced: Mutex<(usize, usize)>,
}

impl std::fmt::Debug for AuditIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditIntent").finish_non_exhaustive()
    }
}

impl AuditIntent {
    /// `records` of this announcer's records are on their way (not yet recorded).
    pub fn set(&self, records: usize) {
        let Some(syncer) = &self.syncer else {
            return;
        };
        let nudge = {
            let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
            let (generation, count) = *announced;
            if records > count {
                // A fresh announcement belongs to the current generation; more on top of older
                // ones stay with them (a hold then waits for them too, within its limit).
                let generation = if count == 0 {
                    syncer.generation.load(Ordering::SeqCst)
                } else {
                    generation
                };
                *announced = (generation, records);
                syncer.announce(generation, records - count, 0)
            } else if records < count {
                *announced = (generation, records);
                syncer.announce(generation, 0, count - records)
            } else {
                false
            }
        };
        // Outside this announcer's lock: `request` takes the queue's lock, then this one.
        if nudge {
            syncer.nudge();
        }
    }

    /// One announced record arrived; called by `syncer` with its queue locked. Returns whether a
    /// hold waits for the syncer to look again.
    fn take_one(&self, syncer: &Syncer) -> bool {
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        let (generation, count) = *announced;
        if count == 0 {
            return false;
        }
        *announced = (generation, count - 1);
        syncer.announce(generation, 0, 1)
    }
}

impl Drop for AuditIntent {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// Opens the journal in `dir` and starts the audit threads: the index on `conn` (which must already
/// have the schema) and, in strict mode, the syncer.
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
    let appender = Appender::open(dir, limits).map_err(io_err)?;
    let indexed = index::read_position(&conn)?;
    let progress = Arc::new(Progress::default());
    let mut threads = vec![index::spawn(
        conn,
        JournalCursor::new(dir, indexed + 1),
        Arc::clone(&progress),
    )?];
    let syncer = (durability == Durability::Strict).then(|| Arc::new(Syncer::default()));
    if let Some(syncer) = &syncer {
        let syncer = Arc::clone(syncer);
        threads.push(
            std::thread::Builder::new()
                .name("portcullis-audit-sync".into())
                .spawn(move || syncer.run())
                .map_err(io_err)?,
        );
    }
    Ok(AuditSink {
        inner: Arc::new(SinkInner {
            durability,
            dir: dir.to_path_buf(),
            appender: Mutex::new(appender),
            syncer,
            progress,
            catch_up: Mutex::new(JournalCursor::new(dir, indexed + 1)),
            appended: Arc::new(tokio::sync::Notify::new()),
            threads,
        }),
    })
}

#[cfg(test)]
mod tests {
    //! The syncer on its own, with a hold limit long enough that timing cannot decide the outcome:
    //! syncs are counted, not timed.

    use super::*;

    struct Running {
        syncer: Arc<Syncer>,
        file: Arc<File>,
        thread: Option<JoinHandle<()>>,
        _dir: tempfile::TempDir,
    }

    impl Running {
        fn new(max_hold: Duration) -> Running {
            let dir = tempfile::tempdir().unwrap();
            let file = Arc::new(File::create(dir.path().join("segment")).unwrap());
            let syncer = Arc::new(Syncer {
                max_hold,
                ..Syncer::default()
            });
            // As if the last sync took long: the hold is then bounded by `max_hold` alone.
            syncer.last_sync_ns.store(u64::MAX, Ordering::Relaxed);
            let running = Arc::clone(&syncer);
            let thread = Some(std::thread::spawn(move || running.run()));
            Running {
                syncer,
                file,
                thread,
                _dir: dir,
            }
        }

        fn intent(&self) -> AuditIntent {
            AuditIntent {
                syncer: Some(Arc::clone(&self.syncer)),
                announced: Mutex::new((0, 0)),
            }
        }

        fn request(
            &self,
            arrived: Option<&AuditIntent>,
        ) -> oneshot::Receiver<Result<(), StoreError>> {
            let (tx, rx) = oneshot::channel();
            self.syncer.request(Arc::clone(&self.file), tx, arrived);
            rx
        }

        fn syncs(&self) -> u64 {
            self.syncer.syncs.load(Ordering::Relaxed)
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.syncer.stop();
            if let Some(thread) = self.thread.take() {
                thread.join().unwrap();
            }
        }
    }

    #[test]
    fn announced_records_share_one_sync() {
        let r = Running::new(Duration::from_secs(30));
        let sessions: Vec<AuditIntent> = (0..8).map(|_| r.intent()).collect();
        for s in &sessions {
            s.set(1);
        }
        // The sessions' statements finish one after another, well apart: each records.
        let mut waiting = Vec::new();
        for s in &sessions {
            waiting.push(r.request(Some(s)));
            std::thread::sleep(Duration::from_millis(20));
        }
        for rx in waiting {
            rx.blocking_recv().unwrap().unwrap();
        }
        assert_eq!(r.syncs(), 1, "eight announced records, one fdatasync");
        assert_eq!(r.syncer.synced.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn nothing_announced_syncs_at_once() {
        let r = Running::new(Duration::from_secs(30));
        let started = Instant::now();
        r.request(None).blocking_recv().unwrap().unwrap();
        // One session alone: its record was the only one announced.
        let alone = r.intent();
        alone.set(1);
        r.request(Some(&alone)).blocking_recv().unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(r.syncs(), 2);
    }

    #[test]
    fn a_withdrawn_announcement_ends_the_hold() {
        let r = Running::new(Duration::from_secs(30));
        let gone = r.intent();
        gone.set(2);
        let rx = r.request(None);
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        drop(gone);
        rx.blocking_recv().unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(r.syncs(), 1);
    }

    #[test]
    fn the_hold_never_outlasts_its_limit() {
        let r = Running::new(Duration::from_millis(50));
        let stuck = r.intent();
        stuck.set(1);
        r.request(None).blocking_recv().unwrap().unwrap();
        // However many stay announced, every hold ends at the limit.
        let late = r.intent();
        let rx = r.request(None);
        late.set(1);
        rx.blocking_recv().unwrap().unwrap();
        assert_eq!(r.syncs(), 2);
    }
}

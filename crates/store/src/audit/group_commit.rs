//! Strict mode's group commit. The first record to need an `fdatasync` runs it on its own thread, for
//! every record appended before the sync started; the records that come while it runs wait for it, and
//! the first of them runs the next one for all the rest (leader and followers, as PostgreSQL flushes
//! its WAL).
//!
//! Syncing on the caller's thread, even a runtime worker, is deliberate: a syncer thread of its own
//! cost every record a hand-off there and a wake-up back, and on a virtual machine those context
//! switches cost more CPU than the sync itself. Only the leader blocks, for one sync; followers await
//! without blocking, so a runtime keeps its other workers. A runtime with a single worker (one core)
//! has none, so there the leader hands its sync to the blocking pool instead; so it does anywhere
//! after a slow sync (a disk struggling or spinning), where the hand-off costs little beside the sync
//! and a worker blocked for milliseconds would hold up every task queued behind it.
//!
//! A failed sync poisons the journal: after one, Linux may have dropped the pages it could not write
//! and report the next sync as a success, so no later record can be vouched for either. Every ticket
//! then fails, and the gateway refuses what it would have had to record until it restarts.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::StoreError;

/// A sync slower than this goes to the blocking pool next time. A quick disk syncs in well under it
/// (this one's virtio disk in 0.1–0.3 ms); a spinning one takes several.
const SLOW_SYNC: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    /// Woken after each sync, for followers awaiting in a runtime.
    synced_async: Notify,
    /// Woken after each sync, for followers blocking a thread of their own.
    synced_blocking: Condvar,
    /// `fdatasync`s run, and the records they made durable: their ratio is group commit's batch
    /// size, which decides strict mode's CPU per record (a sync costs the process tens of us).
    syncs: AtomicU64,
    synced: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Records this process has appended, numbered in the order they were written.
    appended: u64,
    /// The segment the last of them is in. An earlier segment was synced when it was sealed.
    file: Option<Arc<File>>,
    /// Records known to be on disk: every record numbered up to here.
    durable: u64,
    /// Records the last sync made durable.
    last_batch: u64,
    /// The last sync took longer than [`SLOW_SYNC`].
    slow: bool,
    /// A leader's sync is running.
    syncing: bool,
    /// Followers blocking a thread (rather than awaiting), so the condvar is signalled only for them.
    blocked: usize,
    /// Why the journal can no longer be synced.
    failed: Option<String>,
}

/// What a record waits for.
enum Turn {
    Done(Result<(), StoreError>),
    /// Another sync is running; the record waits for its end.
    Follow,
    /// Nobody is syncing: the record's caller runs the next sync, for everything appended by then.
    /// `shared`: the last sync covered other records too, so more are likely on their way. `slow`:
    /// it took longer than [`SLOW_SYNC`].
    Lead {
        shared: bool,
        slow: bool,
    },
}

impl GroupCommit {
    /// Counts a record this process just wrote to `file`, with the journal's lock still held so the
    /// numbers follow the order of the writes. Returns the record's number.
    pub(crate) fn appended(&self, file: &Arc<File>) -> u64 {
        let mut state = self.lock();
        state.appended += 1;
        if !state.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, file)) {
            state.file = Some(Arc::clone(file));
        }
        state.appended
    }

    /// Completes once the record numbered `record` is on disk.
    pub(crate) async fn durable(self: &Arc<Self>, record: u64) -> Result<(), StoreError> {
        loop {
            // Registered before the state is read, so a sync that ends in between still wakes it.
            let synced = self.synced_async.notified();
            tokio::pin!(synced);
            synced.as_mut().enable();
            let turn = self.turn(&mut self.lock(), record);
            match turn {
                Turn::Done(result) => return result,
                Turn::Follow => synced.await,
                Turn::Lead { shared, slow } => {
                    let leading = Leading(Some(Arc::clone(self)));
                    if shared {
                        // The tasks ready on this worker run first: the records they append share
                        // the sync rather than wait for the next one. Not for a session alone: a
                        // yield makes the runtime wake an idle worker to look for work.
                        tokio::task::yield_now().await;
                    }
                    leading.sync(slow).await;
                }
            }
        }
    }

    /// [`GroupCommit::durable`] for a thread outside any async runtime.
    pub(crate) fn durable_blocking(&self, record: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        loop {
            match self.turn(&mut state, record) {
                Turn::Done(result) => return result,
                Turn::Follow => {
                    state.blocked += 1;
                    state = self
                        .synced_blocking
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner());
                    state.blocked -= 1;
                }
                Turn::Lead { .. } => {
                    drop(state);
                    self.sync();
                    state = self.lock();
                }
            }
        }
    }

    /// The `fdatasync`s run since the store opened, and the records they made durable.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.syncs.load(Ordering::Relaxed),
            self.synced.load(Ordering::Relaxed),
        )
    }

    fn turn(&self, state: &mut State, record: u64) -> Turn {
        if let Some(failed) = &state.failed {
            return Turn::Done(Err(StoreError::AuditWrite(format!(
                "cannot sync the audit journal: {failed}"
            ))));
        }
        if state.durable >= record {
            return Turn::Done(Ok(()));
        }
        if state.syncing {
            return Turn::Follow;
        }
        state.syncing = true;
        Turn::Lead {
            shared: state.last_batch > 1,
            slow: state.slow,
        }
    }

    /// The leader's sync, of every record appended so far, then the followers' wake-up.
    fn sync(&self) {
        let (file, through) = {
            let state = self.lock();
            (state.file.clone(), state.appended)
        };
        let started = Instant::now();
        let result = file.map_or(Ok(()), |file| file.sync_data());
        let took = started.elapsed();
        portcullis_metrics::audit::journal_synced(took);
        tracing::trace!(?took, "audit journal synced");
        self.finish(Some((result.map(|()| through), took)));
    }

    /// Ends a leader's turn: with the sync's result and how long it took, or with none when it never
    /// ran.
    fn finish(&self, synced: Option<(std::io::Result<u64>, Duration)>) {
        let mut state = self.lock();
        state.syncing = false;
        if let Some((result, took)) = synced {
            state.slow = took > SLOW_SYNC;
            match result {
                Ok(through) => {
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                    state.last_batch = through - state.durable;
                    self.synced.fetch_add(state.last_batch, Ordering::Relaxed);
                    state.durable = through;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot sync the audit journal; no record is acknowledged from now on");
                    portcullis_metrics::audit::journal_sync_failed();
                    state.failed = Some(e.to_string());
                }
            }
        }
        let blocked = state.blocked > 0;
        drop(state);
        self.synced_async.notify_waiters();
        if blocked {
            self.synced_blocking.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A leader's turn in an async wait. Dropped before its sync ran (the waiting task was cancelled), it
/// hands the turn on, so the followers don't wait for a sync nobody runs.
struct Leading(Option<Arc<GroupCommit>>);

impl Leading {
    async fn sync(self, slow: bool) {
        let alone = matches!(
            tokio::runtime::Handle::try_current(),
            Ok(runtime) if runtime.metrics().num_workers() == 1
        );
        if !alone && !slow {
            self.sync_now();
            return;
        }
        // The turn goes with the sync: a task cancelled meanwhile leaves it to the sync to finish.
        if let Err(e) = tokio::task::spawn_blocking(move || self.sync_now()).await {
            tracing::error!(error = %e, "the audit journal's sync did not finish");
        }
    }

    /// Runs the sync. Should it panic, `drop` still hands the turn on.
    fn sync_now(mut self) {
        if let Some(commit) = &self.0 {
            commit.sync();
        }
        self.0 = None;
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        if let Some(commit) = self.0.take() {
            commit.finish(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::sync::Arc;

    use super::GroupCommit;

    #[test]
    fn a_failed_sync_fails_every_later_record_and_the_metrics_say_so() {
        let commit = GroupCommit::default();
        // `fdatasync` refuses a pipe, as a failing disk would refuse the journal.
        let (pipe, _other_end) = std::io::pipe().unwrap();
        let first = commit.appended(&Arc::new(File::from(OwnedFd::from(pipe))));
        assert!(commit.durable_blocking(first).is_err());

        // A record in a file that syncs is refused too: nothing after a failed sync is vouched for.
        let dir = tempfile::tempdir().unwrap();
        let fine = Arc::new(File::create(dir.path().join("segment")).unwrap());
        let second = commit.appended(&fine);
        let refused = commit.durable_blocking(second).unwrap_err().to_string();
        assert!(
            refused.contains("cannot sync the audit journal"),
            "{refused}"
        );

        let metrics = portcullis_metrics::encode();
        assert!(
            metrics.contains("portcullis_audit_journal_errors_total{step=\"sync\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("portcullis_audit_journal_failed 1\n"),
            "{metrics}"
        );
    }
}

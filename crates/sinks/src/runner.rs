//! One sink's loop: read a batch from its cursor, deliver it, move the cursor and save it; on failure,
//! wait (doubling) and deliver the same batch again. Woken by each record this process appends, and
//! every [`POLL`] for records other processes append.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_store::{decode_event, JournalCursor};
use tokio::sync::watch;

use crate::state::{write_state, SinkState};
use crate::target::Target;
use portcullis_notify::backoff;

use crate::{Shipped, SinkError};

/// How often an idle sink looks for records appended by other processes.
const POLL: Duration = Duration::from_secs(1);
/// Least time between two small batches: under load records gather into batches instead of paying a
/// write and a sync each.
const GATHER: Duration = Duration::from_millis(50);
/// First pause after a failure; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the loop and the monitor share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub name: String,
    pub kind: &'static str,
    pub state: Mutex<SinkState>,
}

impl Shared {
    pub(crate) fn state(&self) -> SinkState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) struct Runner {
    pub journal: PathBuf,
    pub shared: Arc<Shared>,
    pub target: Target,
    pub batch: usize,
    /// A sink without a saved state starts at the oldest record kept, without a gap.
    pub fresh: bool,
    pub wake: watch::Receiver<u64>,
    pub stop: watch::Receiver<bool>,
}

/// A batch read and not yet delivered.
struct Pending {
    records: Arc<Vec<Shipped>>,
    last_seq: u64,
}

impl Runner {
    pub(crate) async fn run(mut self) {
        let start = self.shared.state().next_seq;
        let mut cursor = Some(JournalCursor::new(&self.journal, start));
        let mut pending: Option<Pending> = None;
        let mut attempt = 0;
        while !*self.stop.borrow() {
            if pending.is_none() {
                let Some(reader) = cursor.take() else {
                    break;
                };
                let batch = self.batch;
                let read = tokio::task::spawn_blocking(move || {
                    let mut reader = reader;
                    let records = reader.read(batch);
                    (reader, records)
                })
                .await;
                let records = match read {
                    Ok((reader, records)) => {
                        cursor = Some(reader);
                        records.map_err(|e| SinkError::Journal(e.to_string()))
                    }
                    Err(e) => {
                        // The cursor went with the task; read again from the saved position.
                        cursor = Some(JournalCursor::new(
                            &self.journal,
                            self.shared.state().next_seq,
                        ));
                        Err(SinkError::Journal(format!("the reader stopped: {e}")))
                    }
                };
                match records {
                    Err(e) => {
                        self.failed(&e, attempt).await;
                        attempt = attempt.saturating_add(1);
                        continue;
                    }
                    Ok(records) if records.is_empty() => {
                        self.idle().await;
                        continue;
                    }
                    Ok(records) => pending = Some(self.take(records).await),
                }
            }
            let Some(batch) = &pending else {
                continue;
            };
            let full = batch.records.len() >= self.batch;
            let result = if batch.records.is_empty() {
                Ok(())
            } else {
                self.target.deliver(Arc::clone(&batch.records)).await
            };
            match result {
                Ok(()) => {
                    let delivered = batch.records.len() as u64;
                    let last_seq = batch.last_seq;
                    pending = None;
                    attempt = 0;
                    let state = {
                        let mut state = self.shared.lock();
                        state.next_seq = last_seq + 1;
                        state.delivered += delivered;
                        if delivered > 0 {
                            state.last_delivery_ms = Some(now_ms());
                        }
                        state.failing = false;
                        state.clone()
                    };
                    if let Err(e) = self.save(state).await {
                        tracing::error!(sink = %self.shared.name, error = %e, "cannot save the audit sink's cursor; its last batch may be delivered again");
                    }
                    if !full {
                        self.pause(GATHER).await;
                    }
                }
                Err(e) => {
                    self.failed(&e, attempt).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Turns journal records into the events to ship, noting a gap retention left.
    async fn take(&mut self, records: Vec<portcullis_store::JournalRecord>) -> Pending {
        let first = records.first().map_or(0, |r| r.seq);
        let last_seq = records.last().map_or(0, |r| r.seq);
        let expected = self.shared.state().next_seq;
        if self.fresh {
            self.fresh = false;
        } else if first > expected {
            tracing::error!(
                sink = %self.shared.name,
                from = expected,
                to = first - 1,
                "audit records were removed by retention's hard cap before this sink delivered them"
            );
            let state = {
                let mut state = self.shared.lock();
                state.gaps.push((expected, first - 1));
                state.clone()
            };
            if let Err(e) = self.save(state).await {
                tracing::error!(sink = %self.shared.name, error = %e, "cannot save the audit sink's state");
            }
        }
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            let Some(payload) = record.event else {
                continue;
            };
            match decode_event(&payload) {
                Ok(event) => events.push(Shipped {
                    seq: record.seq,
                    event,
                }),
                Err(e) => {
                    tracing::error!(sink = %self.shared.name, seq = record.seq, error = %e, "audit journal record not shipped; `portcullis audit verify` tells more")
                }
            }
        }
        Pending {
            records: Arc::new(events),
            last_seq,
        }
    }

    async fn failed(&mut self, error: &SinkError, attempt: u32) {
        let pause = backoff(RETRY_FIRST, RETRY_MAX, attempt);
        tracing::warn!(sink = %self.shared.name, %error, attempt, retry_in = ?pause, "audit sink delivery failed");
        let state = {
            let mut state = self.shared.lock();
            state.last_error = Some(error.to_string());
            state.last_error_ms = Some(now_ms());
            state.failing = true;
            state.clone()
        };
        if let Err(e) = self.save(state).await {
            tracing::error!(sink = %self.shared.name, error = %e, "cannot save the audit sink's state");
        }
        self.pause(pause).await;
    }

    /// Waits for a record, the poll interval or the stop.
    async fn idle(&mut self) {
        tokio::select! {
            changed = self.wake.changed() => {
                if changed.is_err() {
                    // Nobody wakes us any more: poll.
                    self.pause(POLL).await;
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = self.stop.changed() => {}
        }
    }

    async fn pause(&mut self, how_long: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(how_long) => {}
            _ = self.stop.changed() => {}
        }
    }

    pub(crate) async fn save(&self, state: SinkState) -> Result<(), SinkError> {
        let journal = self.journal.clone();
        let name = self.shared.name.clone();
        tokio::task::spawn_blocking(move || write_state(&journal, &name, &state))
            .await
            .map_err(|e| SinkError::Delivery(format!("saving the cursor stopped: {e}")))?
    }
}

pub(crate) fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

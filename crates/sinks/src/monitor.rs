//! Starting the sinks, reporting on them, stopping them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_store::{JournalTail, RetentionPolicy, Store};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::validate;
use crate::runner::{Runner, Shared};
use crate::state::{read_state, write_state, SinkState};
use crate::target::Target;
use crate::{SinkConfig, SinkError};

/// How often each sink's lag is published to `/metrics`.
const LAG_REPORT: Duration = Duration::from_secs(5);
/// After waking the sinks, how long appends gather before the next wake. Woken for every append, the
/// task cost each statement a task switch, often on another thread, while the sinks ship in batches
/// anyway.
const WAKE_GATHER: Duration = Duration::from_millis(5);

/// One sink as `portcullis audit status` and [`SinkMonitor::status`] show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    pub name: String,
    /// `jsonl`, `syslog` or `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The next journal record the sink delivers (its cursor); `None` for a sink that never ran.
    pub next_seq: Option<u64>,
    /// Event records in the journal the sink has not delivered yet.
    pub lag: u64,
    /// Event records delivered over the sink's life.
    pub delivered: u64,
    /// When a batch was last delivered (milliseconds since the epoch).
    pub last_delivery_ms: Option<i64>,
    /// The last failure and when; `failing` says whether the last attempt failed.
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub failing: bool,
    /// Records removed by retention's hard cap before the sink delivered them (first, last).
    pub gaps: Vec<(u64, u64)>,
}

impl SinkStatus {
    /// The status of a sink from its saved state (`None`: it never ran) and the journal's last event
    /// record.
    pub fn of(config: &SinkConfig, state: Option<&SinkState>, last_event_seq: u64) -> SinkStatus {
        let next = state.map_or(1, |s| s.next_seq.max(1));
        SinkStatus {
            name: config.name().to_owned(),
            kind: config.kind().to_owned(),
            next_seq: state.map(|s| s.next_seq),
            lag: lag(last_event_seq, next),
            delivered: state.map_or(0, |s| s.delivered),
            last_delivery_ms: state.and_then(|s| s.last_delivery_ms),
            last_error: state.and_then(|s| s.last_error.clone()),
            last_error_ms: state.and_then(|s| s.last_error_ms),
            failing: state.is_some_and(|s| s.failing),
            gaps: state.map(|s| s.gaps.clone()).unwrap_or_default(),
        }
    }
}

/// The running sinks (and retention).
pub struct SinkMonitor {
    journal: PathBuf,
    configs: Vec<SinkConfig>,
    sinks: Vec<Arc<Shared>>,
    tail: Mutex<JournalTail>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SinkMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMonitor")
            .field("journal", &self.journal)
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

/// Starts every sink in `sinks` on `store`'s journal, and retention by `retention`. Must be called
/// inside a tokio runtime. A sink's configuration that cannot work (a CA file missing, a bad URL) is
/// an error here; a receiver that is down is not (it is retried).
pub fn start(
    store: &Store,
    sinks: &[SinkConfig],
    retention: RetentionPolicy,
) -> Result<SinkMonitor, SinkError> {
    validate(sinks)?;
    let journal = store.audit_journal_dir();
    let (stop, stopped) = watch::channel(false);
    let (wake_tx, wake) = watch::channel(0u64);
    let mut tasks = Vec::new();
    let mut shared = Vec::new();
    for config in sinks {
        let target = Target::new(config)?;
        let saved = read_state(&journal, config.name())?;
        let fresh = saved.is_none();
        let state = saved.unwrap_or(SinkState {
            next_seq: 1,
            ..SinkState::default()
        });
        // Saved at once, so retention and `audit status` know the sink before it delivers anything.
        if fresh {
            write_state(&journal, config.name(), &state)?;
        }
        let sink = Arc::new(Shared {
            name: config.name().to_owned(),
            kind: config.kind(),
            state: Mutex::new(state),
        });
        tracing::info!(sink = %sink.name, kind = sink.kind, from = sink.state().next_seq, "audit sink started");
        let runner = Runner {
            journal: journal.clone(),
            shared: Arc::clone(&sink),
            target,
            batch: config.batch(),
            fresh,
            wake: wake.clone(),
            stop: stopped.clone(),
        };
        tasks.push(tokio::spawn(runner.run()));
        shared.push(sink);
    }
    if !shared.is_empty() {
        tasks.push(tokio::spawn(forward_appends(
            store.audit_appended(),
            wake_tx,
            stopped.clone(),
        )));
        tasks.push(tokio::spawn(report_lag(
            journal.clone(),
            shared.clone(),
            stopped.clone(),
        )));
    }
    if retention.is_active() {
        let holds: Vec<Arc<Shared>> = shared.clone();
        tasks.push(tokio::spawn(crate::retention::run(
            store.clone(),
            retention,
            holds,
            stopped,
        )));
    }
    Ok(SinkMonitor {
        tail: Mutex::new(JournalTail::new(&journal)),
        journal,
        configs: sinks.to_vec(),
        sinks: shared,
        stop,
        tasks,
    })
}

impl SinkMonitor {
    /// Each sink's cursor, lag, last error and last delivery.
    pub fn status(&self) -> Vec<SinkStatus> {
        let last_event = {
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = tail.refresh() {
                tracing::warn!(error = %e, "cannot read the end of the audit journal");
            }
            tail.last_event_seq
        };
        self.configs
            .iter()
            .zip(&self.sinks)
            .map(|(config, sink)| SinkStatus::of(config, Some(&sink.state()), last_event))
            .collect()
    }

    /// The journal's folder.
    pub fn journal(&self) -> &Path {
        &self.journal
    }

    /// Stops the sinks, letting a delivery in flight finish for up to `grace`. What is not delivered
    /// is delivered after the next start.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// Wakes the sinks after appends, at most once per [`WAKE_GATHER`]: appends meanwhile leave the
/// `Notify`'s one permit, and the sinks take all of them in their next batch.
async fn forward_appends(
    appended: Arc<Notify>,
    wake: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = appended.notified() => wake.send_modify(|n| *n = n.wrapping_add(1)),
            _ = stop.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(WAKE_GATHER) => {}
            _ = stop.changed() => break,
        }
    }
}

/// Event records up to `last_event_seq` a sink whose cursor is at `next_seq` has not delivered.
fn lag(last_event_seq: u64, next_seq: u64) -> u64 {
    (last_event_seq + 1).saturating_sub(next_seq)
}

/// Publishes each sink's lag to the metrics until the sinks stop.
async fn report_lag(journal: PathBuf, sinks: Vec<Arc<Shared>>, mut stop: watch::Receiver<bool>) {
    let mut tail = JournalTail::new(&journal);
    loop {
        let read = tokio::task::spawn_blocking(move || {
            let result = tail.refresh();
            (tail, result)
        })
        .await;
        let Ok((read, result)) = read else {
            return;
        };
        tail = read;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot read the end of the audit journal");
        }
        for sink in &sinks {
            let next = sink.state().next_seq.max(1);
            portcullis_metrics::audit::sink_lag(&sink.name, lag(tail.last_event_seq, next));
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_REPORT) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The first record some sink has not delivered.
pub(crate) fn hold(sinks: &[Arc<Shared>]) -> Option<u64> {
    sinks.iter().map(|s| s.state().next_seq).min()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{watch, Notify};

    use super::{forward_appends, WAKE_GATHER};

    #[tokio::test(start_paused = true)]
    async fn a_run_of_appends_wakes_the_sinks_once_per_gather() {
        let appended = Arc::new(Notify::new());
        let (wake_tx, wake) = watch::channel(0u64);
        let (stop, stopped) = watch::channel(false);
        let forwarder = tokio::spawn(forward_appends(Arc::clone(&appended), wake_tx, stopped));

        // A statement a millisecond for 100 ms: twenty gathers, not a hundred wakes.
        for _ in 0..100 {
            appended.notify_one();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The last gather's appends wake them once more at its end.
        tokio::time::sleep(WAKE_GATHER * 2).await;
        let wakes = *wake.borrow();
        let gathers = 100 / WAKE_GATHER.as_millis() as u64;
        assert!(
            (gathers - 1..=gathers + 2).contains(&wakes),
            "{wakes} wakes"
        );

        // After a quiet spell, the next append wakes the sinks at once.
        appended.notify_one();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*wake.borrow(), wakes + 1);

        stop.send(true).unwrap();
        forwarder.await.unwrap();
    }
}

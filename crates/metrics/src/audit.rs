//! What the audit trail reports: journal appends and syncs, the index's progress, sinks' lag.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::registry::METRICS;

/// A record of `bytes` (framing included) was appended to the journal as sequence `seq`.
pub fn journal_appended(bytes: u64, seq: u64) {
    let m = &*METRICS;
    m.journal_bytes.inc_by(bytes);
    m.journal_records.inc();
    m.journal_seq.fetch_max(seq, Ordering::Relaxed);
}

/// One `fdatasync` of the journal took `latency`.
pub fn journal_synced(latency: Duration) {
    METRICS.journal_fsync.observe(latency.as_secs_f64());
}

/// An append to the journal failed (a full disk, an unwritable folder); its statement was refused.
pub fn journal_append_failed() {
    METRICS.journal_append_errors.inc();
}

/// An `fdatasync` of the journal failed: from now on this process refuses every audited statement.
pub fn journal_sync_failed() {
    let m = &*METRICS;
    m.journal_sync_errors.inc();
    m.journal_failed.set(1);
}

/// The index read `records` more journal records, up to sequence `last_seq`.
pub fn indexed(records: u64, last_seq: u64) {
    let m = &*METRICS;
    m.indexed_records.inc_by(records);
    m.indexed_seq.fetch_max(last_seq, Ordering::Relaxed);
}

/// The index has read up to `last_seq` (another process may have moved it): no records counted.
pub fn index_position(last_seq: u64) {
    METRICS.indexed_seq.fetch_max(last_seq, Ordering::Relaxed);
}

/// The sink `name` has `records` journal records still to deliver.
pub fn sink_lag(name: &str, records: u64) {
    METRICS
        .sink_lag
        .get_or_create(&[("sink", name.to_owned())])
        .set(i64::try_from(records).unwrap_or(i64::MAX));
}

//! The process-wide registry and the handles the hot paths bump.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::gateway::{Decision, Stage};

/// A label set of fixed values.
pub(crate) type Static<const N: usize> = [(&'static str, &'static str); N];
/// A label set with one configured name in it.
pub(crate) type Named = [(&'static str, String); 1];

/// Every metric, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    pub sessions_opened: Counter,
    pub sessions_open: Gauge,
    /// By [`Decision`].
    pub statements: [Counter; Decision::ALL.len()],
    /// By [`Stage`], then [`Decision`].
    pub decisions: [[Counter; Decision::ALL.len()]; Stage::ALL.len()],
    pub upstream_connect_errors: Family<Named, Counter>,
    pub mfa_holds: Counter,
    pub journal_bytes: Counter,
    pub journal_records: Counter,
    pub journal_fsync: Histogram,
    pub journal_append_errors: Counter,
    pub journal_sync_errors: Counter,
    pub journal_failed: Gauge,
    pub indexed_records: Counter,
    index_lag: Gauge,
    pub sink_lag: Family<Named, Gauge>,
    /// The last sequence this process appended to the journal, and the last the index has read: the
    /// lag is their difference, worked out at scrape time rather than on every append.
    pub journal_seq: AtomicU64,
    pub indexed_seq: AtomicU64,
}

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("portcullis");

        let sessions_opened = Counter::default();
        registry.register(
            "sessions_opened",
            "Client sessions opened: logged in, admitted by the policy and connected upstream",
            sessions_opened.clone(),
        );
        let sessions_open = Gauge::default();
        registry.register(
            "sessions_open",
            "Client sessions open now",
            sessions_open.clone(),
        );

        let statements_family = Family::<Static<1>, Counter>::default();
        let statements = Decision::ALL
            .map(|d| statements_family.get_or_create_owned(&[("decision", d.as_str())]));
        registry.register(
            "statements",
            "Statements decided, by the decision taken",
            statements_family,
        );

        let decisions_family = Family::<Static<2>, Counter>::default();
        let decisions = Stage::ALL.map(|s| {
            Decision::ALL.map(|d| {
                decisions_family
                    .get_or_create_owned(&[("stage", s.as_str()), ("outcome", d.as_str())])
            })
        });
        registry.register(
            "policy_decisions",
            "Policy decisions, by stage (pre-connection, post-connection, statement) and outcome",
            decisions_family,
        );

        let upstream_connect_errors = Family::<Named, Counter>::default();
        registry.register(
            "upstream_connect_errors",
            "Failed connections to a resource's PostgreSQL server, by resource",
            upstream_connect_errors.clone(),
        );
        let mfa_holds = Counter::default();
        registry.register(
            "mfa_holds",
            "Connections or statements held until the user completed multi-factor authentication",
            mfa_holds.clone(),
        );

        let audit = registry.sub_registry_with_prefix("audit");
        let journal_bytes = Counter::default();
        audit.register_with_unit(
            "journal_appended",
            "Bytes this process appended to the audit journal",
            Unit::Bytes,
            journal_bytes.clone(),
        );
        let journal_records = Counter::default();
        audit.register(
            "journal_records",
            "Records this process appended to the audit journal",
            journal_records.clone(),
        );
        // 50 µs to about 1.6 s: an fdatasync on a fast SSD to one on a struggling disk.
        let journal_fsync = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        audit.register_with_unit(
            "journal_fsync",
            "Time of each fdatasync of the audit journal in strict durability (one covers every record waiting)",
            Unit::Seconds,
            journal_fsync.clone(),
        );
        let journal_errors_family = Family::<Static<1>, Counter>::default();
        let journal_append_errors =
            journal_errors_family.get_or_create_owned(&[("step", "append")]);
        let journal_sync_errors = journal_errors_family.get_or_create_owned(&[("step", "sync")]);
        audit.register(
            "journal_errors",
            "Failed appends to the audit journal (each refused its statement) and failed fdatasyncs",
            journal_errors_family,
        );
        let journal_failed = Gauge::default();
        audit.register(
            "journal_failed",
            "1 once an fdatasync of the audit journal failed: every audited statement is refused until restart",
            journal_failed.clone(),
        );
        let indexed_records = Counter::default();
        audit.register(
            "indexed_records",
            "Audit journal records this process added to the SQLite index",
            indexed_records.clone(),
        );
        let index_lag = Gauge::default();
        audit.register(
            "index_lag_records",
            "Records this process appended to the journal that the index has not read yet",
            index_lag.clone(),
        );
        let sink_lag = Family::<Named, Gauge>::default();
        audit.register(
            "sink_lag_records",
            "Journal records an audit sink has still to deliver, by sink",
            sink_lag.clone(),
        );

        Metrics {
            registry,
            sessions_opened,
            sessions_open,
            statements,
            decisions,
            upstream_connect_errors,
            mfa_holds,
            journal_bytes,
            journal_records,
            journal_fsync,
            journal_append_errors,
            journal_sync_errors,
            journal_failed,
            indexed_records,
            index_lag,
            sink_lag,
            journal_seq: AtomicU64::new(0),
            indexed_seq: AtomicU64::new(0),
        }
    }
}

pub(crate) fn encode() -> String {
    let m = &*METRICS;
    let appended = m.journal_seq.load(Ordering::Relaxed);
    let indexed = m.indexed_seq.load(Ordering::Relaxed);
    m.index_lag
        .set(i64::try_from(appended.saturating_sub(indexed)).unwrap_or(i64::MAX));
    let mut text = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &m.registry);
    text
}

//! A real store whose journal the sinks read, and waiting for what they deliver.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use portcullis_sinks::{SinkConfig, SinkMonitor, SinkStatus};
use portcullis_store::{AuditEvent, Durability, MasterKey, RetentionPolicy, StatementEvent, Store};

/// Long enough for anything on a loaded machine; tests wait for results, never time them.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Journal {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl Journal {
    pub fn new() -> Journal {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("portcullis.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        Journal { dir, store }
    }

    /// Records statements `SELECT from` … `SELECT to` (at = their number).
    pub async fn record(&self, from: u64, to: u64) {
        self.record_text(from, to, |n| format!("SELECT {n}")).await;
    }

    pub async fn record_text(&self, from: u64, to: u64, text: impl Fn(u64) -> String) {
        for n in from..=to {
            self.store
                .audit()
                .record(statement(n, &text(n)))
                .durable()
                .await
                .unwrap();
        }
    }

    pub fn start(&self, sinks: &[SinkConfig]) -> SinkMonitor {
        portcullis_sinks::start(&self.store, sinks, RetentionPolicy::default()).unwrap()
    }
}

pub fn statement(n: u64, text: &str) -> AuditEvent {
    AuditEvent::Statement(StatementEvent {
        session_id: "s-1".into(),
        at: i64::try_from(n).unwrap(),
        user: "alice".into(),
        resource: "app".into(),
        client_addr: "127.0.0.1:50000".into(),
        text: text.into(),
        kind: "select".into(),
        objects: vec![],
        param_count: 0,
        rows: Some(1),
        duration_us: 10,
        decision: "allow".into(),
        outcome: "ok".into(),
        sqlstate: None,
        message: None,
        policy: None,
    })
}

/// Waits until `check` holds, polling; panics with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one sink's status.
pub fn status(monitor: &SinkMonitor) -> SinkStatus {
    monitor.status().into_iter().next().unwrap()
}

/// The `at` of each shipped statement record (`SELECT n` has at = n), in the order received.
pub fn ats(records: &[serde_json::Value]) -> Vec<u64> {
    records.iter().map(|r| r["at"].as_u64().unwrap()).collect()
}

/// Each of 1..=n at least once, and nothing else.
pub fn all_at_least_once(ats: &[u64], n: u64) -> bool {
    let mut seen: Vec<u64> = ats.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen == (1..=n).collect::<Vec<_>>()
}

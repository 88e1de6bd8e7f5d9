//! The syslog sink against a real rsyslog started by the test (plain TCP and TLS with a test CA):
//! RFC 5424 messages with octet-counting framing that rsyslog parses, every record exactly once, and at
//! least once across rsyslog's outage.

mod common;

use std::time::Duration;

use common::{all_at_least_once, eventually, status, Journal, PATIENCE};
use portcullis_sinks::{SinkConfig, SyslogConfig, SyslogTlsConfig};
use portcullis_testkit::Rsyslog;

fn sink(rsyslog: &Rsyslog) -> SinkConfig {
    SinkConfig::Syslog(SyslogConfig {
        name: "siem".into(),
        address: rsyslog.address(),
        tls: rsyslog.ca().map(|ca| SyslogTlsConfig {
            ca: ca.to_path_buf(),
            server_name: Some("localhost".into()),
        }),
        facility: Some("auth".into()),
        hostname: None,
        app_name: None,
        batch: Some(25),
    })
}

/// The `at` of each message rsyslog wrote (its MSG is the record's JSON).
fn received(rsyslog: &Rsyslog) -> Vec<u64> {
    rsyslog
        .messages()
        .iter()
        .map(|(msgid, msg)| {
            assert_eq!(msgid, "statement");
            let record: serde_json::Value = serde_json::from_str(msg)
                .unwrap_or_else(|e| panic!("{e}: {msg}\n{}", rsyslog.log_tail()));
            record["at"].as_u64().unwrap()
        })
        .collect()
}

async fn exactly_once(rsyslog: Rsyslog) {
    let journal = Journal::new();
    let monitor = journal.start(&[sink(&rsyslog)]);
    // Statement texts with what framing must survive: newlines, spaces, non-ASCII.
    journal
        .record_text(1, 60, |n| format!("SELECT {n},\n  'grüße' AS \"x y\""))
        .await;
    eventually("60 messages", || async { rsyslog.messages().len() >= 60 }).await;
    // The cursor is saved just after the receiver took the batch.
    eventually("lag 0", || async { status(&monitor).lag == 0 }).await;
    let s = status(&monitor);
    assert_eq!((s.lag, s.delivered), (0, 60), "{s:?}");
    monitor.shutdown(PATIENCE).await;
    assert_eq!(received(&rsyslog), (1..=60).collect::<Vec<_>>());
    let (_, first) = &rsyslog.messages()[0];
    let record: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(record["text"], "SELECT 1,\n  'grüße' AS \"x y\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_over_tcp_gets_every_record_once() {
    exactly_once(Rsyslog::start().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_over_tls_gets_every_record_once() {
    exactly_once(Rsyslog::start_tls().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsyslog_outage_and_a_restart_lose_nothing() {
    let mut rsyslog = Rsyslog::start().unwrap();
    let journal = Journal::new();
    let config = [sink(&rsyslog)];
    let monitor = journal.start(&config);
    journal.record(1, 30).await;
    eventually("30 messages", || async { rsyslog.messages().len() >= 30 }).await;

    let mut rsyslog = tokio::task::spawn_blocking(move || {
        rsyslog.stop();
        rsyslog
    })
    .await
    .unwrap();
    journal.record(31, 60).await;
    eventually("the sink to fail", || async { status(&monitor).failing }).await;
    assert!(status(&monitor).lag > 0);
    monitor.shutdown(PATIENCE).await;
    journal.record(61, 70).await;
    let monitor = journal.start(&config);

    let rsyslog = tokio::task::spawn_blocking(move || {
        rsyslog.restart().unwrap();
        rsyslog
    })
    .await
    .unwrap();
    let waited = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        while !all_at_least_once(&received(&rsyslog), 70) {
            assert!(
                std::time::Instant::now() < deadline,
                "missing records: {:?}",
                received(&rsyslog)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rsyslog
    })
    .await
    .unwrap();
    eventually("lag 0", || async {
        let s = status(&monitor);
        s.lag == 0 && !s.failing
    })
    .await;
    monitor.shutdown(PATIENCE).await;
    assert!(all_at_least_once(&received(&waited), 70));
}

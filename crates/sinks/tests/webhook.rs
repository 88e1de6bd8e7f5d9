//! The webhook sink against a real HTTP server run by the test (the receiver, on its own runtime so
//! that stopping it closes every connection): batches as JSON arrays, every record exactly once, and at
//! least once across the receiver's outage and the sink's restart.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::{all_at_least_once, ats, eventually, status, Journal};
use portcullis_sinks::{SinkConfig, WebhookConfig};
use serde_json::Value;

type Received = Arc<Mutex<Vec<Vec<Value>>>>;

/// An HTTP receiver that keeps every batch POSTed to `/hook`.
struct Receiver {
    port: u16,
    batches: Received,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    fn start() -> Receiver {
        let mut receiver = Receiver {
            port: portcullis_testkit::free_port(),
            batches: Received::default(),
            runtime: None,
        };
        receiver.restart();
        receiver
    }

    fn restart(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&self.batches));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        self.runtime = Some(runtime);
    }

    /// Drops the server and every connection it had.
    fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn records(&self) -> Vec<Value> {
        self.batches.lock().unwrap().concat()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }
}

async fn receive(State(batches): State<Received>, Json(batch): Json<Vec<Value>>) -> StatusCode {
    batches.lock().unwrap().push(batch);
    StatusCode::NO_CONTENT
}

fn sink(url: String) -> SinkConfig {
    SinkConfig::Webhook(WebhookConfig {
        name: "hook".into(),
        url,
        batch: Some(10),
        timeout_secs: Some(5),
        headers: [("Authorization".to_owned(), "Bearer test".to_owned())].into(),
        ca: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_arrive_exactly_once() {
    let receiver = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    let journal = Journal::new();
    let monitor = journal.start(&[sink(receiver.url())]);
    journal.record(1, 45).await;
    eventually("45 records", || async { receiver.records().len() >= 45 }).await;
    assert_eq!(ats(&receiver.records()), (1..=45).collect::<Vec<_>>());
    assert!(receiver.batch_sizes().iter().all(|n| (1..=10).contains(n)));
    assert_eq!(receiver.records()[0]["type"], "statement");
    // The cursor is saved just after the receiver took the batch.
    eventually("lag 0", || async { status(&monitor).lag == 0 }).await;
    let s = status(&monitor);
    assert_eq!((s.lag, s.delivered, s.failing), (0, 45, false), "{s:?}");
    monitor.shutdown(common::PATIENCE).await;
    tokio::task::spawn_blocking(move || drop(receiver))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_restart_lose_nothing() {
    let mut receiver = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    let journal = Journal::new();
    let config = [sink(receiver.url())];
    let monitor = journal.start(&config);
    journal.record(1, 20).await;
    eventually("20 records", || async { receiver.records().len() >= 20 }).await;

    // The receiver goes down; records keep coming.
    let mut receiver = tokio::task::spawn_blocking(move || {
        receiver.stop();
        receiver
    })
    .await
    .unwrap();
    journal.record(21, 40).await;
    eventually("the sink to fail", || async {
        let s = status(&monitor);
        s.failing && s.last_error.is_some()
    })
    .await;
    let s = status(&monitor);
    assert!(s.lag > 0, "{s:?}");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("127.0.0.1"),
        "{s:?}"
    );

    // The gateway restarts while the receiver is still down, and more records come.
    monitor.shutdown(common::PATIENCE).await;
    journal.record(41, 50).await;
    let monitor = journal.start(&config);
    let saved = portcullis_sinks::read_state(&journal.store.audit_journal_dir(), "hook")
        .unwrap()
        .unwrap();
    assert!(saved.last_error.is_some(), "{saved:?}");

    // The receiver comes back: everything arrives, at least once.
    let receiver = tokio::task::spawn_blocking(move || {
        receiver.restart();
        receiver
    })
    .await
    .unwrap();
    eventually("every record", || async {
        all_at_least_once(&ats(&receiver.records()), 50)
    })
    .await;
    eventually("lag 0", || async {
        let s = status(&monitor);
        s.lag == 0 && !s.failing
    })
    .await;
    monitor.shutdown(common::PATIENCE).await;
    let got = ats(&receiver.records());
    assert!(all_at_least_once(&got, 50), "{got:?}");
    tokio::task::spawn_blocking(move || drop(receiver))
        .await
        .unwrap();
}

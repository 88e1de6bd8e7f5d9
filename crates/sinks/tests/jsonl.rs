//! The JSON-lines sink on a real journal: every record exactly once, across restarts, a lost cursor
//! save and rotation.

mod common;

use std::path::Path;

use common::{ats, eventually, status, Journal};
use portcullis_sinks::jsonl::rotated;
use portcullis_sinks::{JsonlConfig, SinkConfig};

fn sink(path: &Path, max_mb: Option<u64>) -> SinkConfig {
    SinkConfig::Jsonl(JsonlConfig {
        name: "file".into(),
        path: path.to_path_buf(),
        max_mb,
        keep: Some(5),
        batch: None,
    })
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    // A line still being written (no newline yet) is not read.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_written_exactly_once() {
    let journal = Journal::new();
    let out = journal.dir.path().join("out/audit.jsonl");
    let config = [sink(&out, None)];
    let monitor = journal.start(&config);
    journal.record(1, 50).await;
    eventually("50 lines", || async { lines(&out).len() >= 50 }).await;
    let written = lines(&out);
    assert_eq!(ats(&written), (1..=50).collect::<Vec<_>>());
    // The schema: `seq`, `type` and the event's fields as `portcullis audit --json` names them.
    let first = &written[0];
    assert_eq!(first["type"], "statement");
    assert_eq!(first["text"], "SELECT 1");
    assert_eq!(first["user"], "alice");
    assert!(first["seq"].as_u64().unwrap() >= 1);
    let seqs: Vec<u64> = written.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The cursor is saved just after the receiver took the batch.
    eventually("lag 0", || async { status(&monitor).lag == 0 }).await;
    let s = status(&monitor);
    assert_eq!((s.lag, s.delivered, s.failing), (0, 50, false), "{s:?}");
    assert!(s.last_delivery_ms.is_some());
    monitor.shutdown(common::PATIENCE).await;

    // A restart goes on from the cursor: nothing again.
    let monitor = journal.start(&config);
    journal.record(51, 60).await;
    eventually("60 lines", || async { lines(&out).len() >= 60 }).await;
    monitor.shutdown(common::PATIENCE).await;
    assert_eq!(ats(&lines(&out)), (1..=60).collect::<Vec<_>>());

    // A gateway that stopped after writing a batch but before saving its cursor: the file itself
    // says what it holds, so the batch is not written twice.
    let journal_dir = journal.store.audit_journal_dir();
    let mut state = portcullis_sinks::read_state(&journal_dir, "file")
        .unwrap()
        .unwrap();
    state.next_seq = 1;
    portcullis_sinks::state::write_state(&journal_dir, "file", &state).unwrap();
    // And a line cut short by a crash is cut off.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"seq\":99"))
        .unwrap();
    let monitor = journal.start(&config);
    journal.record(61, 65).await;
    eventually("65 lines", || async { lines(&out).len() >= 65 }).await;
    eventually("lag 0", || async { status(&monitor).lag == 0 }).await;
    monitor.shutdown(common::PATIENCE).await;
    assert_eq!(ats(&lines(&out)), (1..=65).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_rotates_by_size_and_loses_nothing() {
    let journal = Journal::new();
    let out = journal.dir.path().join("audit.jsonl");
    let monitor = journal.start(&[sink(&out, Some(1))]);
    let padding = "x".repeat(4000);
    journal
        .record_text(1, 600, |n| format!("SELECT {n} /* {padding} */"))
        .await;
    let all = || {
        let mut records = Vec::new();
        for n in (1..=5).rev() {
            records.extend(lines(&rotated(&out, n)));
        }
        records.extend(lines(&out));
        records
    };
    eventually("600 records", || async { all().len() >= 600 }).await;
    monitor.shutdown(common::PATIENCE).await;
    assert_eq!(ats(&all()), (1..=600).collect::<Vec<_>>());
    assert!(rotated(&out, 1).exists() && rotated(&out, 2).exists());
    for n in 0..=2 {
        let file = if n == 0 {
            out.clone()
        } else {
            rotated(&out, n)
        };
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size <= 1024 * 1024, "{} is {size} bytes", file.display());
    }
}

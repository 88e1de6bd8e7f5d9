//! The gateway streams its audit trail to a JSON-lines sink as statements run, `audit status` shows the
//! sink caught up, and after a `kill -9` and a restart the file still holds every record exactly once.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{fresh_database, Gateway, ALICE_PASSWORD};
use serde_json::Value;

fn lines(path: &Path) -> Vec<Value> {
    // A line still being written (no newline yet) is not read.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

/// The statement texts in the file containing `marker`.
fn texts(path: &Path, marker: &str) -> Vec<String> {
    lines(path)
        .iter()
        .filter(|r| r["type"] == "statement")
        .filter_map(|r| r["text"].as_str())
        .filter(|t| t.contains(marker))
        .map(str::to_owned)
        .collect()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(gw: &Gateway) -> Value {
    let out = gw.cli(&["audit", "status", "--json"]);
    serde_json::from_slice(&out.stdout).expect("audit status --json")
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_reach_the_jsonl_sink_and_status_shows_it_caught_up() {
    let pg = fresh_database("sinks");
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("audit.jsonl");
    let config = format!(
        "audit:\n  sinks:\n    - {{name: file, type: jsonl, path: {}}}\n  retention_days: 30\n",
        file.display()
    );
    let mut gw = Gateway::start_with_config(pg, "sinks", &config);
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    for i in 0..10 {
        client
            .simple_query(&format!("SELECT {i} AS streamed_{i}"))
            .await
            .unwrap();
    }
    wait_for("10 statements in the file", || {
        texts(&file, "AS streamed_").len() >= 10
    });
    let seqs: Vec<u64> = lines(&file)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Connections are streamed too.
    assert!(lines(&file).iter().any(|r| r["type"] == "connection"));
    wait_for("lag 0", || status(&gw)["sinks"][0]["lag"] == 0);
    let s = status(&gw);
    assert_eq!(s["sinks"][0]["name"], "file");
    assert_eq!(s["sinks"][0]["type"], "jsonl");
    assert_eq!(s["sinks"][0]["failing"], false);
    let table = String::from_utf8(gw.cli(&["audit", "status"]).stdout).unwrap();
    assert!(table.contains("file") && table.contains("jsonl"), "{table}");

    // A crash and a restart: what was written is not written again, what comes after is.
    gw.kill9();
    drop(client);
    gw.spawn();
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    client.simple_query("SELECT 'after restart'").await.unwrap();
    wait_for("the statement after the restart", || {
        !texts(&file, "after restart").is_empty()
    });
    let mut streamed = texts(&file, "AS streamed_");
    streamed.sort();
    let mut expected: Vec<String> = (0..10)
        .map(|i| format!("SELECT {i} AS streamed_{i}"))
        .collect();
    expected.sort();
    assert_eq!(streamed, expected);
    let seqs: Vec<u64> = lines(&file)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "no record twice: {seqs:?}"
    );
    wait_for("lag 0 after the restart", || {
        status(&gw)["sinks"][0]["lag"] == 0
    });
    // Retention is on (30 days): nothing is that old, so verify sees the whole journal.
    let verify = gw.cli(&["audit", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["removed_by_retention"], 0, "{report}");
    assert_eq!(report["intact"], true, "{report}");
}

//! A statement whose result reached the client has its audit record in the journal, even if the
//! gateway is killed right after (in strict mode, the default, on disk; in journaled mode written to
//! the operating system), and the next process to open the store (here `portcullis audit`) indexes it.
//! A kill in the middle of many sessions' statements leaves a journal `audit verify` calls intact.

mod common;

use common::{fresh_database, Gateway, ALICE_PASSWORD};

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_statements_survive_kill_9() {
    let pg = fresh_database("durability");
    survives_kill_9(Gateway::start(pg, "durability")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn journaled_statements_survive_kill_9() {
    let pg = fresh_database("journaled");
    survives_kill_9(Gateway::start_with_config(
        pg,
        "journaled",
        "audit:\n  durability: journaled",
    ))
    .await;
}

async fn survives_kill_9(mut gw: Gateway) {
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    for i in 0..20 {
        client
            .simple_query(&format!("SELECT {i} AS marker_{i}"))
            .await
            .unwrap();
    }
    // The last result is in hand: kill the gateway at once, without any chance to flush.
    gw.kill9();
    drop(client);
    let events = gw.statements(&["--text", "AS marker_"]);
    assert_eq!(events.len(), 20, "{events:?}");
    // And the gateway comes back on the same store.
    gw.spawn();
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    client.simple_query("SELECT 'after restart'").await.unwrap();
    drop(client);
    assert_eq!(gw.statements(&["--text", "after restart"]).len(), 1);
    assert_eq!(gw.statements(&["--text", "AS marker_"]).len(), 20);
    killed_under_load(&mut gw).await;
}

/// Eight sessions run statements as fast as they can while the gateway is killed: every statement a
/// session saw succeed is in the log, and the journal verifies.
async fn killed_under_load(gw: &mut Gateway) {
    let mut sessions = Vec::new();
    for s in 0..8 {
        let client = gw.connect("alice", ALICE_PASSWORD).await;
        sessions.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            for i in 0.. {
                let sql = format!("SELECT {i} AS load_{s}_{i}");
                if client.simple_query(&sql).await.is_err() {
                    break;
                }
                acknowledged += 1;
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    gw.kill9();
    for (s, session) in sessions.into_iter().enumerate() {
        let acknowledged = session.await.unwrap();
        let found = gw.statements(&["--text", &format!("AS load_{s}_")]);
        let ok = found.iter().filter(|r| r["outcome"] == "ok").count();
        assert!(acknowledged > 0, "session {s} ran nothing");
        assert!(
            ok >= acknowledged,
            "session {s}: {acknowledged} acknowledged, {ok} recorded"
        );
    }
    let verify = gw.try_cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

//! A statement whose result reached the client has its audit record on disk, even if the gateway is
//! killed right after: in strict mode (the default) in the database, in journaled mode in the audit
//! journal, from which the next process to open the store (here `portcullis audit`) takes it.

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
}

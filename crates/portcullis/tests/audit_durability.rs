//! A statement whose result reached the client has its audit record on disk, even if the gateway is
//! killed right after.

mod common;

use common::{fresh_database, Gateway, ALICE_PASSWORD};

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_statements_survive_kill_9() {
    let pg = fresh_database("durability");
    let mut gw = Gateway::start(pg, "durability");
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
}

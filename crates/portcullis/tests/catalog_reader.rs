//! The gateway reads the upstream catalog on a connection of its own, one read at a time per resource,
//! never inside a client's session (issue 17): nothing the read does — its locks, its failure, its
//! snapshot — can reach a client's transaction. Real gateway, real PostgreSQL; the effects are checked
//! on the server.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{direct, first_value, fresh_database, Gateway, ALICE_PASSWORD, BOB_PASSWORD};
use tokio_postgres::SimpleQueryMessage;

/// DDL in a transaction while another session holds a lock on a table a view reads: the catalog read
/// that follows would wait for that lock, and a client's `lock_timeout` would then have aborted the
/// client's transaction behind its back, its COMMIT answering ROLLBACK. The rows must be kept.
#[tokio::test(flavor = "multi_thread")]
async fn ddl_in_a_transaction_never_costs_the_client_its_commit() {
    let db = "catalog_commit";
    let pg = fresh_database(db);
    let gw = Gateway::start(pg, db);
    let admin = direct(pg, db).await;
    admin
        .batch_execute(
            "CREATE TABLE public.base(x int); CREATE VIEW public.v AS SELECT x FROM public.base;
             CREATE TABLE public.t(x int); GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;",
        )
        .await
        .unwrap();
    let locker = direct(pg, db).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE public.base IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute("SET lock_timeout = '200ms'; BEGIN; INSERT INTO public.t VALUES (1)")
        .await
        .unwrap();
    alice
        .batch_execute("CREATE TEMP TABLE scratch(x int)")
        .await
        .unwrap();
    alice
        .simple_query("SELECT 1")
        .await
        .expect("the transaction is intact after its DDL");
    alice.batch_execute("COMMIT").await.unwrap();
    locker.batch_execute("ROLLBACK").await.unwrap();

    let kept = admin
        .query_one("SELECT count(*) FROM public.t", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(kept, 1, "the committed row is gone");
    // The session goes on, and sees what it did.
    let answer = alice
        .simple_query("SELECT count(*) FROM scratch")
        .await
        .unwrap();
    assert_eq!(first_value(&answer), "0");
}

/// After a statement that may change the search path the gateway asks the server for it; that question
/// takes no snapshot, so the transaction can still choose its isolation level.
#[tokio::test(flavor = "multi_thread")]
async fn asking_for_the_search_path_leaves_the_transaction_untouched() {
    let db = "catalog_isolation";
    let pg = fresh_database(db);
    let gw = Gateway::start(pg, db);
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute("BEGIN; SET search_path = public")
        .await
        .unwrap();
    alice
        .batch_execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .await
        .expect("SET TRANSACTION before the transaction's first query");
    let level = alice
        .simple_query("SHOW transaction_isolation")
        .await
        .unwrap();
    assert_eq!(first_value(&level), "serializable");
    alice.batch_execute("COMMIT").await.unwrap();
}

/// Ten sessions running DDL at once: the upstream never runs two catalog reads of the resource at once,
/// they run on the gateway's own connection, and a table one session creates is seen by the others.
#[tokio::test(flavor = "multi_thread")]
async fn one_catalog_read_at_a_time_on_the_gateways_own_connection() {
    let db = "catalog_single_flight";
    let pg = fresh_database(db);
    let gw = Arc::new(Gateway::start(pg, db));
    let watcher = direct(pg, db).await;
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let seen_reader = Arc::new(AtomicBool::new(false));
    let watch = {
        let (done, most, seen_reader) = (done.clone(), most.clone(), seen_reader.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let row = watcher
                    .query_one(
                        "SELECT count(*) FILTER (WHERE state = 'active'), count(*) \
                         FROM pg_stat_activity WHERE datname = $1 \
                         AND application_name = 'portcullis catalog'",
                        &[&db],
                    )
                    .await
                    .unwrap();
                let (active, connections) = (row.get::<_, i64>(0), row.get::<_, i64>(1));
                most.fetch_max(active as usize, Ordering::Relaxed);
                assert!(connections <= 1, "{connections} catalog connections");
                if connections > 0 {
                    seen_reader.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut sessions = Vec::new();
    for n in 0..10 {
        let gw = gw.clone();
        sessions.push(tokio::spawn(async move {
            let client = gw.connect("alice", ALICE_PASSWORD).await;
            for round in 0..5 {
                client
                    .batch_execute(&format!(
                        "CREATE TABLE t_{n}_{round}(id int); \
                         CREATE VIEW v_{n}_{round} AS SELECT id FROM t_{n}_{round}"
                    ))
                    .await
                    .unwrap();
                client
                    .simple_query(&format!("SELECT * FROM v_{n}_{round}"))
                    .await
                    .unwrap();
            }
        }));
    }
    for session in sessions {
        session.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    watch.await.unwrap();
    assert!(seen_reader.load(Ordering::Relaxed), "no catalog connection");
    assert!(most.load(Ordering::Relaxed) <= 1);

    // What another session made is in the catalog now: its name resolves to its schema.
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    let rows = client.simple_query("SELECT * FROM v_9_4").await.unwrap();
    assert!(rows
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(0))));
}

/// A table created straight on the database (not through the gateway) in a schema earlier on a
/// session's search path takes over an unqualified name. Before the gateway's check notices, the server
/// may read the new table while the gateway decided on the old one: the RowDescription names the table
/// each column came from, so the session is ended before any of its rows is shown. Once the check has
/// noticed (within seconds, long before the snapshot's TTL), the name is decided as the server resolves it.
#[tokio::test(flavor = "multi_thread")]
async fn ddl_made_elsewhere_is_noticed_before_the_ttl() {
    let db = "catalog_elsewhere";
    let pg = fresh_database(db);
    let policy = "\
grants:
  - to: {user: bob}
    resource: app
    objects: ['public.*']
    privileges: [select]
";
    let gw = Gateway::start_with_policy(pg, db, "catalog_ttl_secs: 3600\n", Some(policy));
    let admin = direct(pg, db).await;
    admin
        .batch_execute(
            "CREATE SCHEMA shadow; CREATE TABLE public.notes(note text);
             INSERT INTO public.notes VALUES ('public-row')",
        )
        .await
        .unwrap();
    let bob = gw
        .connect_with(
            "bob",
            BOB_PASSWORD,
            "options='-c search_path=shadow,public'",
        )
        .await;
    let rows = bob.simple_query("SELECT note FROM notes").await.unwrap();
    assert_eq!(first_value(&rows), "public-row");

    admin
        .batch_execute(
            "CREATE TABLE shadow.notes(note text); INSERT INTO shadow.notes VALUES ('shadow-row')",
        )
        .await
        .unwrap();
    // Refused by name if the check has noticed already, else ended at the RowDescription.
    let err = bob
        .simple_query("SELECT note FROM notes")
        .await
        .unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("shadow.notes")
                || m.contains("catalog changed behind the gateway's back")),
        "{err:?}"
    );
    // The gateway checks for changes every two seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let bob = gw
        .connect_with(
            "bob",
            BOB_PASSWORD,
            "options='-c search_path=shadow,public'",
        )
        .await;
    let err = bob
        .simple_query("SELECT note FROM notes")
        .await
        .unwrap_err();
    let message = err.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("shadow.notes")),
        "{err:?}"
    );
}

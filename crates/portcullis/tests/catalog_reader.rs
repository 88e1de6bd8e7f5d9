//! The gateway reads the upstream catalog on a connection of its own, one read at a time per resource,
//! never inside a client's session (issue 17): nothing the read does — its locks, its failure, its
//! snapshot — can reach a client's transaction. Real gateway, real PostgreSQL; the effects are checked
//! on the server.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{denial, direct, first_value, fresh_database, Gateway, ALICE_PASSWORD, BOB_PASSWORD};
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

/// Whether the gateway's catalog connection is waiting for a lock on the server. Asked of the function
/// behind `pg_stat_activity`: a view needs `pg_rewrite`, which the test locks.
async fn reader_waits_for_a_lock(admin: &tokio_postgres::Client, db: &str) -> bool {
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_stat_get_activity(NULL) a \
             WHERE a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = $1) \
             AND a.application_name = 'portcullis catalog' AND a.wait_event_type = 'Lock'",
            &[&db],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) > 0
}

/// DDL through the gateway records the names it changed. While the catalog read that follows is held
/// up by a lock, a statement that names none of them is decided on the snapshot the session has and
/// completes; one that names the new table waits for the read, and when that read cannot finish it is
/// refused with an error naming the catalog — and the session goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_waits_only_for_a_change_it_names() {
    let db = "catalog_named_changes";
    let pg = fresh_database(db);
    let gw =
        Gateway::start_with_config(pg, db, "catalog_ttl_secs: 3600\ncatalog_timeout_secs: 2\n");
    let admin = direct(pg, db).await;
    admin
        .batch_execute(
            "CREATE TABLE public.steady(x int); INSERT INTO public.steady VALUES (1);
             GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC; GRANT CREATE ON SCHEMA public TO PUBLIC",
        )
        .await
        .unwrap();
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;

    // Every catalog read (and fingerprint check) reads pg_rewrite; neither a CREATE TABLE nor a SELECT
    // of a plain table does.
    let locker = direct(pg, db).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_rewrite IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    alice
        .batch_execute("CREATE TABLE public.fresh(x int)")
        .await
        .unwrap();
    // The read the change scheduled (or the next fingerprint check) is held up by the lock.
    let mut polls = 0;
    while !reader_waits_for_a_lock(&admin, db).await {
        polls += 1;
        assert!(polls < 1000, "the catalog read never came to the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let rows = bob
        .simple_query("SELECT count(*) FROM steady")
        .await
        .expect("a statement naming nothing changed is decided on the session's snapshot");
    assert_eq!(first_value(&rows), "1");
    assert!(
        reader_waits_for_a_lock(&admin, db).await,
        "the statement waited for the catalog read"
    );

    let (code, message) = denial(bob.simple_query("SELECT * FROM fresh").await);
    assert!(code == "57014" || code == "58000", "{code}: {message}");
    assert!(message.contains("catalog"), "{message}");
    // The session goes on.
    let rows = bob
        .simple_query("SELECT count(*) FROM steady")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), "1");
    locker.batch_execute("ROLLBACK").await.unwrap();
}

/// A gateway on a fresh database `db` whose `public.people.ssn` (1, '123-45-6789') bob may read only
/// masked, and a direct connection to change the database behind the gateway's back.
async fn masked_people(db: &str) -> (Gateway, tokio_postgres::Client) {
    let pg = fresh_database(db);
    let policy = "\
grants:
  - to: {user: bob}
    resource: app
    objects: ['public.*']
    privileges: [select]
masks:
  - id: mask-ss
    resource: app
    columns: ['public.people.ss*']
    mask: {kind: partial, keep_last: 2}
";
    let gw = Gateway::start_with_policy(pg, db, "catalog_ttl_secs: 3600\n", Some(policy));
    let admin = direct(pg, db).await;
    admin
        .batch_execute(
            "CREATE TABLE public.people(id int, ssn text);
             INSERT INTO public.people VALUES (1, '123-45-6789');
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC",
        )
        .await
        .unwrap();
    (gw, admin)
}

/// A column added to a masked table by another connection, straight on the database: whatever a masked
/// session asks right after, no raw value of it comes back — the column is masked once the gateway has
/// read it, and before that it is not in the snapshot's view of the table, so a result column that
/// carries it ends the session before any row is shown.
#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_elsewhere_never_shows_a_masked_tables_raw_values() {
    let db = "catalog_added_column";
    let (gw, admin) = masked_people(db).await;
    let raw = "999-88-7777";
    let forms = [
        "SELECT * FROM people",
        "SELECT ss_backup FROM people",
        "SELECT p.ss_backup FROM people p",
        "TABLE people",
        "SELECT people.* FROM people",
    ];
    let mut bob = gw.connect("bob", BOB_PASSWORD).await;
    let rows = bob.simple_query("SELECT ssn FROM people").await.unwrap();
    assert_ne!(first_value(&rows), "123-45-6789", "the mask applies");
    admin
        .batch_execute(&format!(
            "ALTER TABLE public.people ADD COLUMN ss_backup text; UPDATE public.people SET ss_backup = '{raw}'"
        ))
        .await
        .unwrap();
    // Right away (before the gateway's check can notice), and again once it has.
    for round in 0..2 {
        for sql in forms {
            match bob.simple_query(sql).await {
                Ok(messages) => {
                    for message in &messages {
                        if let SimpleQueryMessage::Row(row) = message {
                            for i in 0..row.len() {
                                assert_ne!(
                                    row.get(i),
                                    Some(raw),
                                    "{sql} (round {round}) showed the raw value"
                                );
                            }
                        }
                    }
                }
                Err(_) => {
                    // Refused, or the session was ended: go on in a new one.
                    bob = gw.connect("bob", BOB_PASSWORD).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    // Once the gateway has read the catalog, the new column is masked like the others.
    let rows = bob
        .simple_query("SELECT ss_backup FROM people")
        .await
        .unwrap();
    assert_ne!(first_value(&rows), raw);
}

/// After the first read, the gateway reads only what changed (issue 17). Changes made straight on the
/// database to what a masked session reads — a view created over the masked table, a column added to
/// it, the view redefined to show that column — must all be in the read that follows: a masked
/// session never sees a raw value through them.
#[tokio::test(flavor = "multi_thread")]
async fn changes_read_incrementally_keep_masks_on_new_views_and_columns() {
    let db = "catalog_incremental_masks";
    let (gw, admin) = masked_people(db).await;
    let raw = ["123-45-6789", "999-88-7777"];
    let shows_raw = |messages: &[SimpleQueryMessage]| {
        messages.iter().any(|m| match m {
            SimpleQueryMessage::Row(row) => {
                (0..row.len()).any(|i| row.get(i).is_some_and(|v| raw.contains(&v)))
            }
            _ => false,
        })
    };
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let rows = bob.simple_query("SELECT ssn FROM people").await.unwrap();
    assert!(!shows_raw(&rows), "the mask applies");

    let steps = [
        (
            "a view over the masked table",
            "CREATE VIEW public.pv AS SELECT id, ssn FROM public.people",
            "SELECT * FROM pv",
        ),
        (
            "a column added to it",
            "ALTER TABLE public.people ADD COLUMN ss_extra text; UPDATE public.people SET ss_extra = '999-88-7777'",
            "SELECT ss_extra FROM people",
        ),
        (
            "the view redefined to show it",
            "CREATE OR REPLACE VIEW public.pv AS SELECT id, ssn, ss_extra FROM public.people",
            "SELECT ss_extra FROM pv",
        ),
    ];
    for (step, ddl, query) in steps {
        admin.batch_execute(ddl).await.unwrap();
        // Once the gateway's check has noticed (every two seconds), the statement waits for the read.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        match bob.simple_query(query).await {
            Ok(rows) => assert!(!shows_raw(&rows), "{step}: {query} showed a raw value"),
            Err(e) => panic!("{step}: {query} failed: {e:?}"),
        }
    }
}

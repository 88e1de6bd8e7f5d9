mod common;

use std::sync::Arc;

use common::{connection, segments, statement, TestStore};
use portcullis_store::{
    AuditEvent, AuditFilter, AuditKindFilter, AuditRecord, AuditSink, ConnectionPhase, Durability,
    MasterKey, Store,
};

fn ids(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

fn all() -> AuditFilter {
    AuditFilter {
        limit: 0,
        ..AuditFilter::default()
    }
}

#[test]
fn record_ticket_query_round_trip() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    let ev = statement(
        "alice",
        "prod",
        1_000,
        "SELECT * FROM accounts",
        &[("public.accounts", "select")],
    );
    sink.record(ev.clone()).wait_blocking().unwrap();
    let conn_ev = connection("alice", "prod", 900, ConnectionPhase::Open);
    sink.record(conn_ev.clone()).wait_blocking().unwrap();

    let got = t.store.query_audit(&all()).unwrap();
    assert_eq!(got.len(), 2);
    // Newest first, events come back exactly as recorded (u64::MAX saturates to i64::MAX).
    assert!(got[0].id > got[1].id);
    assert_eq!(got[1].event, ev);
    let AuditEvent::Connection(c) = &got[0].event else {
        panic!("expected a connection event");
    };
    assert_eq!(c.bytes_out, i64::MAX as u64);
    assert_eq!(c.application_name.as_deref(), Some("psql"));
    assert_eq!(c.phase, ConnectionPhase::Open);

    // JSON: id and type next to the event fields, and it parses back.
    let json = serde_json::to_value(&got[1]).unwrap();
    assert_eq!(json["type"], "statement");
    assert_eq!(json["id"], got[1].id);
    assert_eq!(json["objects"][0]["name"], "public.accounts");
    let back: AuditRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, got[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_is_awaitable() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    sink.record(statement("a", "r", 1, "SELECT 1", &[]))
        .durable()
        .await
        .unwrap();
    let store = t.store.clone();
    let n = tokio::task::spawn_blocking(move || store.query_audit(&all()).unwrap().len())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn each_filter_selects_what_it_should() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    let events = vec![
        connection("alice", "prod", 100, ConnectionPhase::Open), // 0
        statement(
            "alice",
            "prod",
            200,
            "SELECT * FROM public.accounts",
            &[("public.accounts", "select")],
        ), // 1
        statement(
            "bob",
            "prod",
            300,
            "UPDATE payroll SET x = 1",
            &[("hr.payroll", "update")],
        ), // 2
        statement(
            "bob",
            "staging",
            400,
            "select 100%_done from t",
            &[("public.t", "select")],
        ), // 3
        connection("bob", "staging", 500, ConnectionPhase::Rejected), // 4
    ];
    let mut denied = statement(
        "carol",
        "prod",
        600,
        "DROP TABLE accounts",
        &[("public.accounts", "drop")],
    );
    if let AuditEvent::Statement(s) = &mut denied {
        s.decision = "deny".into();
        s.outcome = "denied".into();
    }
    let mut all_events = events;
    all_events.push(denied); // 5
    let tickets: Vec<_> = all_events.iter().cloned().map(|e| sink.record(e)).collect();
    for ticket in tickets {
        ticket.wait_blocking().unwrap();
    }
    let id_of: Vec<i64> = {
        let mut v = ids(&t.store.query_audit(&all()).unwrap());
        v.reverse();
        v
    };
    assert_eq!(id_of.len(), 6);
    let q = |f: AuditFilter| {
        let mut got: Vec<usize> = t
            .store
            .query_audit(&f)
            .unwrap()
            .iter()
            .map(|r| id_of.iter().position(|id| *id == r.id).unwrap())
            .collect();
        got.sort();
        got
    };

    assert_eq!(
        q(AuditFilter {
            user: Some("bob".into()),
            ..all()
        }),
        vec![2, 3, 4]
    );
    assert_eq!(
        q(AuditFilter {
            resource: Some("staging".into()),
            ..all()
        }),
        vec![3, 4]
    );
    assert_eq!(
        q(AuditFilter {
            since: Some(300),
            ..all()
        }),
        vec![2, 3, 4, 5]
    );
    assert_eq!(
        q(AuditFilter {
            until: Some(300),
            ..all()
        }),
        vec![0, 1]
    );
    assert_eq!(
        q(AuditFilter {
            since: Some(200),
            until: Some(400),
            ..all()
        }),
        vec![1, 2]
    );
    assert_eq!(
        q(AuditFilter {
            text_contains: Some("accounts".into()),
            ..all()
        }),
        vec![1, 5]
    );
    // Case-insensitive, and % / _ are literal.
    assert_eq!(
        q(AuditFilter {
            text_contains: Some("update".into()),
            ..all()
        }),
        vec![2]
    );
    assert_eq!(
        q(AuditFilter {
            text_contains: Some("100%_".into()),
            ..all()
        }),
        vec![3]
    );
    assert_eq!(
        q(AuditFilter {
            text_contains: Some("0%x".into()),
            ..all()
        }),
        Vec::<usize>::new()
    );
    assert_eq!(
        q(AuditFilter {
            object: Some("accounts".into()),
            ..all()
        }),
        vec![1, 5]
    );
    assert_eq!(
        q(AuditFilter {
            object: Some("hr.".into()),
            ..all()
        }),
        vec![2]
    );
    // Operations are not object names.
    assert_eq!(
        q(AuditFilter {
            object: Some("select".into()),
            ..all()
        }),
        Vec::<usize>::new()
    );
    assert_eq!(
        q(AuditFilter {
            kind: Some(AuditKindFilter::Connections),
            ..all()
        }),
        vec![0, 4]
    );
    assert_eq!(
        q(AuditFilter {
            kind: Some(AuditKindFilter::Statements),
            ..all()
        }),
        vec![1, 2, 3, 5]
    );
    assert_eq!(
        q(AuditFilter {
            kind: Some(AuditKindFilter::All),
            ..all()
        })
        .len(),
        6
    );
    assert_eq!(
        q(AuditFilter {
            decision: Some("deny".into()),
            ..all()
        }),
        vec![5]
    );
    assert_eq!(
        q(AuditFilter {
            decision: Some("allow".into()),
            ..all()
        }),
        vec![1, 2, 3]
    );
    // Combined conditions.
    assert_eq!(
        q(AuditFilter {
            user: Some("alice".into()),
            object: Some("accounts".into()),
            ..all()
        }),
        vec![1]
    );
    // Limit keeps the newest.
    let newest = t
        .store
        .query_audit(&AuditFilter { limit: 2, ..all() })
        .unwrap();
    assert_eq!(ids(&newest), vec![id_of[5], id_of[4]]);
    assert_eq!(AuditFilter::default().limit, 100);
}

/// Eight threads, started together, each append 25 statement records by user `user{thread}` at
/// `thread * 100 + i` and only then wait for them all.
fn record_from_eight_threads(sink: &portcullis_store::AuditSink) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|th| {
            let (sink, barrier) = (sink.clone(), std::sync::Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let tickets: Vec<_> = (0..25)
                    .map(|i| {
                        sink.record(statement(
                            &format!("user{th}"),
                            "prod",
                            i64::from(th * 100 + i),
                            &format!("SELECT {i}"),
                            &[],
                        ))
                    })
                    .collect();
                for ticket in tickets {
                    ticket.wait_blocking().unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
}

#[test]
fn group_commit_many_threads() {
    let t = TestStore::new(Durability::Strict);
    record_from_eight_threads(&t.store.audit());
    let got = t.store.query_audit(&all()).unwrap();
    assert_eq!(got.len(), 200);
    let mut ats: Vec<i64> = got.iter().map(|r| r.event.at()).collect();
    ats.sort();
    let mut expected: Vec<i64> = (0..8)
        .flat_map(|th| (0..25).map(move |i| th * 100 + i))
        .collect();
    expected.sort();
    assert_eq!(ats, expected);
    for th in 0..8 {
        let f = AuditFilter {
            user: Some(format!("user{th}")),
            ..all()
        };
        assert_eq!(t.store.query_audit(&f).unwrap().len(), 25);
        let session = AuditFilter {
            session_id: Some(format!("s-user{th}")),
            ..all()
        };
        assert_eq!(t.store.query_audit(&session).unwrap().len(), 25);
    }
    // A session id matches exactly, never as a prefix.
    let prefix = AuditFilter {
        session_id: Some("s-user".into()),
        ..all()
    };
    assert!(t.store.query_audit(&prefix).unwrap().is_empty());
}

/// Group commit, counted rather than timed: records that wait at once share `fdatasync`s. Eight
/// threads each append 25 records and only then wait, so however the batches fall, there
/// are far fewer syncs than records, every ticket is covered by one, and journaled mode runs none.
#[test]
fn concurrent_strict_records_share_syncs() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    record_from_eight_threads(&sink);
    let (syncs, records) = sink.sync_stats();
    assert_eq!(records, 200, "every strict record was synced");
    assert!((1..=100).contains(&syncs), "200 records in {syncs} syncs");

    let j = TestStore::new(Durability::Journaled);
    j.store
        .audit()
        .record(statement("u", "prod", 1, "SELECT 1", &[]))
        .wait_blocking()
        .unwrap();
    assert_eq!(j.store.audit().sync_stats(), (0, 0));
}

/// A runtime on this thread, one worker: a leader's yield hands the thread to the tasks beside it.
fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Two records written before either waits share a sync: sessions are recording side by side, so a
/// leader now expects company.
async fn share_a_sync(sink: &AuditSink) {
    let tickets = [0, 1].map(|i| sink.record(statement("u", "prod", i, "SELECT 1", &[])));
    for ticket in tickets {
        ticket.durable().await.unwrap();
    }
    assert_eq!(sink.sync_stats(), (1, 2));
}

/// Tasks on one runtime thread: once syncs are shared, the first record's wait leads the sync but lets
/// the tasks ready beside it append first, so eight records awaited at once share a single sync rather
/// than one each.
#[test]
fn records_awaited_by_tasks_on_one_thread_share_a_sync() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    one_thread_runtime().block_on(async {
        share_a_sync(&sink).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    sink.record(statement("u", "prod", i, "SELECT 1", &[]))
                        .durable()
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    });
    assert_eq!(sink.sync_stats(), (2, 10));
}

/// A session cancelled while its record's wait was about to lead a sync hands the turn on: the record
/// waiting behind it is still synced, rather than waiting for a sync nobody runs.
#[test]
fn a_cancelled_leader_hands_the_sync_on() {
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    one_thread_runtime().block_on(async {
        share_a_sync(&sink).await;
        let first = sink.record(statement("u", "prod", 1, "SELECT 1", &[]));
        let second = sink.record(statement("u", "prod", 2, "SELECT 2", &[]));
        let leader = tokio::spawn(first.durable());
        tokio::task::yield_now().await;
        leader.abort();
        let follower = tokio::time::timeout(std::time::Duration::from_secs(10), second.durable());
        follower
            .await
            .expect("the second record was synced")
            .unwrap();
    });
    assert_eq!(
        sink.sync_stats(),
        (2, 4),
        "one more sync covered both records"
    );
}

#[test]
fn journaled_mode_resolves_at_once_and_writes() {
    let t = TestStore::new(Durability::Journaled);
    let sink = t.store.audit();
    for i in 0..50 {
        sink.record(statement("alice", "prod", i, "SELECT 1", &[]))
            .wait_blocking()
            .unwrap();
    }
    t.store.shutdown().unwrap();
    assert_eq!(t.store.query_audit(&all()).unwrap().len(), 50);

    // Dropping everything drains the queue before the writer exits. The first handle goes too, so
    // that `drop(late)` below is the last drop, the one that must wait.
    drop(sink);
    let TestStore { dir, key, store } = t;
    let late = store.audit();
    drop(store);
    for i in 0..20 {
        late.record(statement("bob", "prod", i, "SELECT 2", &[]))
            .wait_blocking()
            .unwrap();
    }
    drop(late);
    let again = Store::open(&common::db_path(dir.path()), key, Durability::Journaled).unwrap();
    assert_eq!(again.query_audit(&all()).unwrap().len(), 70);
}

#[test]
fn resolved_record_is_present_after_reopen_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let path = common::db_path(dir.path());
    let store = Store::open(&path, key.clone(), Durability::Strict).unwrap();
    store
        .audit()
        .record(statement(
            "alice",
            "prod",
            7,
            "DELETE FROM t",
            &[("public.t", "delete")],
        ))
        .wait_blocking()
        .unwrap();
    // Leak the store: no destructor, no shutdown, writer thread and connections left as they are.
    std::mem::forget(store);
    let again = Store::open(&path, key, Durability::Strict).unwrap();
    let got = again.query_audit(&all()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.at(), 7);
}

/// In a child test: the store its parent set up, or `None` when run as an ordinary test.
fn child_store(durability: Durability) -> Option<Store> {
    let dir = std::env::var("PORTCULLIS_STORE_CHILD_DIR").ok()?;
    let key =
        MasterKey::from_base64(&std::env::var("PORTCULLIS_STORE_CHILD_KEY").unwrap()).unwrap();
    Some(Store::open(&common::db_path(dir.as_ref()), key, durability).unwrap())
}

/// Runs the test `child` in a child process on the store in `dir`; it must abort.
fn run_aborting_child(child: &str, dir: &std::path::Path, key: &MasterKey) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child, "--nocapture", "--test-threads=1"])
        .env("PORTCULLIS_STORE_CHILD_DIR", dir)
        .env("PORTCULLIS_STORE_CHILD_KEY", key.to_base64())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have aborted");
}

/// Child half of `resolved_record_survives_abort`: records, waits for the ticket, then aborts the
/// process without running any destructor.
#[test]
fn abort_child() {
    let Some(store) = child_store(Durability::Strict) else {
        return;
    };
    let sink = Arc::new(store.audit());
    sink.record(statement("alice", "prod", 99, "TRUNCATE t", &[]))
        .wait_blocking()
        .unwrap();
    std::process::abort();
}

#[test]
fn resolved_record_survives_abort() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    // Create the database up front so the child only appends.
    drop(
        Store::open(
            &common::db_path(dir.path()),
            key.clone(),
            Durability::Strict,
        )
        .unwrap(),
    );
    run_aborting_child("abort_child", dir.path(), &key);
    let store = Store::open(&common::db_path(dir.path()), key, Durability::Strict).unwrap();
    let got = store.query_audit(&all()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.at(), 99);
}

/// Child half of `journaled_records_survive_abort`: records two journaled events and waits until the
/// index has them, records a third, then aborts the process without running any destructor, before
/// the index thread's linger is over.
#[test]
fn journal_child() {
    let Some(store) = child_store(Durability::Journaled) else {
        return;
    };
    let record = |at| {
        store
            .audit()
            .record(statement("alice", "prod", at, "DELETE FROM t", &[]))
            .wait_blocking()
            .unwrap();
    };
    record(1);
    record(2);
    store.shutdown().unwrap();
    record(3);
    std::process::abort();
}

#[test]
fn journaled_records_survive_abort() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let path = common::db_path(dir.path());
    drop(Store::open(&path, key.clone(), Durability::Journaled).unwrap());
    run_aborting_child("journal_child", dir.path(), &key);
    let left = segments(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&left[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the journal holds statement texts");
    }

    let store = Store::open(&path, key.clone(), Durability::Journaled).unwrap();
    let mut at: Vec<i64> = store
        .query_audit(&all())
        .unwrap()
        .iter()
        .map(|r| r.event.at())
        .collect();
    at.sort_unstable();
    assert_eq!(
        at,
        [1, 2, 3],
        "the third from the journal, the first two not twice"
    );
    let report = store.verify_audit(0, None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    drop(store);
    let again = Store::open(&path, key, Durability::Journaled).unwrap();
    assert_eq!(
        again.query_audit(&all()).unwrap().len(),
        3,
        "nothing indexed twice"
    );
}

#[test]
fn the_journal_keeps_every_record_after_indexing() {
    let t = TestStore::new(Durability::Journaled);
    t.store
        .audit()
        .record(statement("a", "r", 1, "SELECT 1", &[]))
        .wait_blocking()
        .unwrap();
    t.store.shutdown().unwrap();
    assert_eq!(t.store.query_audit(&all()).unwrap().len(), 1);
    // A second store on the same file (another process, in effect) appends to the same chain.
    let other = Store::open(&t.path(), t.key.clone(), Durability::Journaled).unwrap();
    other
        .audit()
        .record(statement("b", "r", 2, "SELECT 2", &[]))
        .wait_blocking()
        .unwrap();
    assert_eq!(t.store.query_audit(&all()).unwrap().len(), 2);
    drop(other);
    let TestStore { dir, store, .. } = t;
    let report = store.verify_audit(0, None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 2);
    drop(store);
    assert_eq!(segments(dir.path()).len(), 1);
}

/// A store that just appended keeps the journal's lock only until its index thread's next batch: a
/// second store (another process, in effect) then appends while the first stays open.
#[test]
fn a_store_that_stops_appending_lets_another_append() {
    let t = TestStore::new(Durability::Journaled);
    let first = t.store.audit();
    let lock = std::fs::File::open(common::journal_dir(t.dir.path()).join("LOCK")).unwrap();
    // Appends until one leaves the lock held (a slow one lets it go at once: its lease is over).
    for i in 0.. {
        first
            .record(statement("a", "r", i, "SELECT 1", &[]))
            .wait_blocking()
            .unwrap();
        match lock.try_lock() {
            Ok(()) => lock.unlock().unwrap(),
            Err(std::fs::TryLockError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let (path, key) = (t.path(), t.key.clone());
    let (done, appended) = std::sync::mpsc::channel();
    let appender = std::thread::spawn(move || {
        let other = Store::open(&path, key, Durability::Journaled).unwrap();
        let recorded = other
            .audit()
            .record(statement("b", "r", 4, "SELECT 2", &[]))
            .wait_blocking();
        let _ = done.send(recorded.is_ok());
    });
    assert_eq!(
        appended.recv_timeout(std::time::Duration::from_secs(10)),
        Ok(true),
        "the second store appends while the first is open"
    );
    appender.join().unwrap();
    first
        .record(statement("a", "r", 0, "SELECT 3", &[]))
        .wait_blocking()
        .unwrap();
    let users: Vec<_> = t
        .store
        .query_audit(&all())
        .unwrap()
        .into_iter()
        .map(|r| match r.event {
            AuditEvent::Statement(s) => s.user,
            other => panic!("{other:?}"),
        })
        .take(2)
        .collect();
    assert_eq!(users, ["a", "b"], "newest first");
    let report = t.store.verify_audit(0, None).unwrap();
    assert!(report.is_intact(), "{report:?}");
}

/// A full segment is sealed and a new one takes the records; verify follows the chain across them.
#[test]
fn full_segments_are_sealed_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let limits = portcullis_store::SegmentLimits {
        max_bytes: 2 * 1024 * 1024,
        ..Default::default()
    };
    let store = Store::open_with(
        &common::db_path(dir.path()),
        MasterKey::generate(),
        Durability::Strict,
        limits,
    )
    .unwrap();
    let text = format!("SELECT '{}'", "x".repeat(1024 * 1024));
    for at in 0..10 {
        store
            .audit()
            .record(statement("a", "r", at, &text, &[]))
            .wait_blocking()
            .unwrap();
    }
    assert_eq!(store.query_audit(&all()).unwrap().len(), 10);
    assert_eq!(segments(dir.path()).len(), 5, "two records per segment");
    let report = store.verify_audit(0, None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(
        (report.segments, report.events, report.checkpoints),
        (5, 10, 4)
    );
}

#[test]
fn an_index_that_cannot_be_written_fails_no_ticket_and_catches_up() {
    let t = TestStore::new(Durability::Journaled);
    let sink = t.store.audit();
    // Hide the table from another connection: indexing fails, the journal does not.
    let raw = rusqlite::Connection::open(t.path()).unwrap();
    raw.execute_batch("ALTER TABLE audit_events RENAME TO audit_hidden")
        .unwrap();
    for at in 1..=2 {
        sink.record(statement("alice", "prod", at, "SELECT 1", &[]))
            .wait_blocking()
            .unwrap();
    }
    raw.execute_batch("ALTER TABLE audit_hidden RENAME TO audit_events")
        .unwrap();
    sink.record(statement("alice", "prod", 3, "SELECT 3", &[]))
        .wait_blocking()
        .unwrap();
    t.store.shutdown().unwrap();
    let mut ats: Vec<i64> = t
        .store
        .query_audit(&all())
        .unwrap()
        .iter()
        .map(|r| r.event.at())
        .collect();
    ats.sort();
    assert_eq!(ats, vec![1, 2, 3]);
}

#[test]
fn policy_decisions_round_trip_and_filter_by_rule() {
    use portcullis_store::{DecisionEvent, FiredRuleRecord, PolicyTrail, RequirementRecord};
    let t = TestStore::new(Durability::Strict);
    let sink = t.store.audit();
    let trail = |stage: &str, result: &str, rule: &str| PolicyTrail {
        stage: stage.into(),
        result: result.into(),
        policy_version: Some(3),
        actions: vec!["select hr.employees".into()],
        location: "DE".into(),
        device_trust: "low".into(),
        roles: Some(vec!["analysts".into()]),
        justification: Some("ticket 42".into()),
        rules: vec![FiredRuleRecord {
            id: rule.into(),
            action: "block".into(),
            components: vec!["select hr.employees".into()],
            ..FiredRuleRecord::default()
        }],
        requirements: vec![RequirementRecord {
            kind: "mfa".into(),
            policy: "p1".into(),
            met: false,
            detail: None,
        }],
        missing_grants: Vec::new(),
        logout: true,
        protections: vec!["hr.employees.ssn masked by mask-ssn".into()],
        reason: "blocked".into(),
    };
    let decision = AuditEvent::Decision(DecisionEvent {
        session_id: "s1".into(),
        at: 10,
        user: "bob".into(),
        resource: "prod".into(),
        client_addr: "10.0.0.1:5000".into(),
        policy: trail("post-connection", "deny", "no_bob"),
    });
    let AuditEvent::Statement(mut stmt) = statement("alice", "prod", 20, "SELECT 1", &[]) else {
        unreachable!()
    };
    stmt.policy = Some(trail("statement", "allow", "quoted\"id%"));
    let stmt = AuditEvent::Statement(stmt);
    sink.record(decision.clone()).wait_blocking().unwrap();
    sink.record(stmt.clone()).wait_blocking().unwrap();
    sink.record(connection("alice", "prod", 30, ConnectionPhase::Open))
        .wait_blocking()
        .unwrap();

    let monitor = t
        .store
        .query_audit(&AuditFilter {
            kind: Some(AuditKindFilter::Monitor),
            ..all()
        })
        .unwrap();
    assert_eq!(monitor.len(), 2, "connection events are not decisions");
    assert_eq!(monitor[1].event, decision);
    assert_eq!(monitor[0].event, stmt);
    assert_eq!(
        t.store.audit_record(monitor[1].id).unwrap().unwrap().event,
        decision
    );

    let by_rule = |rule: &str| {
        t.store
            .query_audit(&AuditFilter {
                rule: Some(rule.into()),
                ..all()
            })
            .unwrap()
    };
    assert_eq!(by_rule("no_bob").len(), 1);
    assert_eq!(
        by_rule("quoted\"id%").len(),
        1,
        "ids are matched exactly, quotes and all"
    );
    assert!(by_rule("no_").is_empty(), "not a prefix match");
    let denied = t
        .store
        .query_audit(&AuditFilter {
            decision: Some("deny".into()),
            ..all()
        })
        .unwrap();
    assert_eq!(denied.len(), 1);
}

//! Default deny covers everything (issue 16): a user granted only `select, copy-out` on `hr.*` can change
//! no server setting, signal no backend, write no large object, sequence or replication slot, notify no
//! channel, lock no row and read no other session's statement — each checked by its effect on the
//! upstream, whose login is a superuser as it often is for a gateway. And what every role may do still
//! works: the catalog (psql's `\d`), SHOW, EXPLAIN, transactions, ordinary settings.

mod common;

use common::{
    denial, direct, fresh_database, psql, refused_login, Gateway, ALICE_PASSWORD, BOB_PASSWORD,
};
use portcullis_testkit::{PgServer, SUPERUSER, SUPERUSER_PASSWORD};
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

/// bob is the intern: `select, copy-out` on `hr.*` only. alice may do anything.
const INTERN_POLICY: &str = "
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['hr.*']
    privileges: [select, copy-out]
";

/// A gateway on a fresh database whose upstream login is the superuser, with HR fixtures.
async fn superuser_gateway(db: &str, policy: &str) -> (&'static PgServer, Gateway) {
    let pg = fresh_database(db);
    let gw = Gateway::start_with_policy(pg, db, "", Some(policy));
    gw.use_superuser_credential();
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.departments(id int primary key, name text);
             INSERT INTO hr.departments VALUES (1, 'ops'), (2, 'dev');
             CREATE TABLE hr.employees(id int primary key, name text, ssn text);
             INSERT INTO hr.employees VALUES (1, 'ann', '123-45-6789');
             CREATE SEQUENCE hr.badge_seq START 100;
             SELECT nextval('hr.badge_seq');",
        )
        .await
        .expect("fixtures");
    (pg, gw)
}

async fn scalar(client: &tokio_postgres::Client, sql: &str) -> String {
    let row = client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.get::<_, String>(0)
}

/// Runs `sql` as bob and expects the gateway's refusal with `reason` in its message.
async fn refused(bob: &tokio_postgres::Client, sql: &str, reason: &str) {
    let (code, message) = denial(bob.simple_query(sql).await);
    assert_eq!(code, "42501", "{sql}: {message}");
    assert!(message.contains(reason), "{sql}: {message}");
    assert!(
        !message.contains(SUPERUSER),
        "{sql}: the upstream login leaks: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_changes_are_refused_and_have_no_effect() {
    let db = "deny_server";
    let (pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    let up = direct(pg, db).await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;

    refused(
        &bob,
        "ALTER SYSTEM SET work_mem = '1GB'",
        "bob lacks ALTER-SYSTEM on setting work_mem",
    )
    .await;
    let auto_conf =
        std::fs::read_to_string(pg.data_dir().join("postgresql.auto.conf")).unwrap_or_default();
    assert!(!auto_conf.contains("work_mem"), "{auto_conf}");
    refused(
        &bob,
        "SELECT pg_reload_conf()",
        "bob lacks EXECUTE on pg_catalog.pg_reload_conf",
    )
    .await;

    let checkpoints = "SELECT checkpoints_req::text FROM pg_stat_bgwriter";
    let before = scalar(&up, checkpoints).await;
    refused(&bob, "CHECKPOINT", "bob lacks ADMIN on server checkpoint").await;
    assert_eq!(scalar(&up, checkpoints).await, before);

    refused(
        &bob,
        "LOAD 'auto_explain'",
        "bob lacks ADMIN on server load",
    )
    .await;
    refused(
        &bob,
        "SET session_replication_role = replica",
        "bob lacks SET on setting session_replication_role",
    )
    .await;
    refused(
        &bob,
        "SET log_statement = 'none'",
        "bob lacks SET on setting log_statement",
    )
    .await;
    refused(
        &bob,
        "SELECT set_config('log_statement', 'none', false)",
        "bob lacks SET on setting log_statement",
    )
    .await;
    assert_eq!(
        scalar(&bob, "SHOW session_replication_role").await,
        "origin"
    );

    let objects = "SELECT count(*)::text FROM pg_largeobject_metadata";
    let before = scalar(&up, objects).await;
    refused(
        &bob,
        "SELECT lo_from_bytea(0, 'x'::bytea)",
        "bob lacks EXECUTE on pg_catalog.lo_from_bytea",
    )
    .await;
    assert_eq!(scalar(&up, objects).await, before);

    refused(
        &bob,
        "SELECT pg_create_physical_replication_slot('evil', true)",
        "bob lacks EXECUTE on pg_catalog.pg_create_physical_replication_slot",
    )
    .await;
    let slots = "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'evil'";
    assert_eq!(scalar(&up, slots).await, "0");
    for sql in [
        "SELECT pg_switch_wal()",
        "SELECT pg_stat_reset()",
        "SELECT pg_advisory_lock(42)",
        "SELECT pg_replication_origin_create('evil')",
    ] {
        refused(&bob, sql, "bob lacks EXECUTE on pg_catalog.").await;
    }
    assert_eq!(
        scalar(&up, "SELECT count(*)::text FROM pg_replication_origin").await,
        "0"
    );
    assert_eq!(
        scalar(
            &up,
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory'"
        )
        .await,
        "0"
    );

    let last = "SELECT last_value::text FROM hr.badge_seq";
    refused(
        &bob,
        "SELECT nextval('hr.badge_seq')",
        "bob lacks EXECUTE on pg_catalog.nextval",
    )
    .await;
    refused(
        &bob,
        "SELECT setval('hr.badge_seq', 1)",
        "bob lacks EXECUTE on pg_catalog.setval",
    )
    .await;
    assert_eq!(scalar(&up, last).await, "100");

    // What bob was refused is in the monitor with the missing grant by name.
    let records = gw.monitor(&["--stage", "statement", "--result", "deny"]);
    assert!(
        records.iter().any(|r| r
            .to_string()
            .contains("bob lacks ADMIN on server checkpoint")),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn other_sessions_are_neither_signalled_nor_read_nor_locked_nor_notified() {
    let db = "deny_sessions";
    let (pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    let victim = direct(pg, db).await;
    victim
        .simple_query("SELECT 'victim holds a secret 987-65-4321'")
        .await
        .expect("victim statement");
    let pid = scalar(&victim, "SELECT pg_backend_pid()::text").await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;

    refused(
        &bob,
        &format!("SELECT pg_terminate_backend({pid})"),
        "bob lacks EXECUTE on pg_catalog.pg_terminate_backend",
    )
    .await;
    refused(
        &bob,
        &format!("SELECT pg_cancel_backend({pid})"),
        "bob lacks EXECUTE on pg_catalog.pg_cancel_backend",
    )
    .await;
    assert_eq!(scalar(&victim, "SELECT 'alive'").await, "alive");

    refused(
        &bob,
        "SELECT query FROM pg_stat_get_activity(NULL)",
        "bob lacks EXECUTE on pg_catalog.pg_stat_get_activity",
    )
    .await;
    refused(
        &bob,
        "SELECT query FROM pg_stat_activity",
        "bob lacks SELECT on pg_catalog.pg_stat_activity",
    )
    .await;

    // Row locks need UPDATE, as PostgreSQL requires: a writer is never blocked by bob.
    bob.simple_query("BEGIN").await.expect("begin");
    refused(
        &bob,
        "SELECT * FROM hr.departments WHERE id = 1 FOR UPDATE",
        "bob lacks UPDATE on hr.departments",
    )
    .await;
    victim
        .batch_execute(
            "SET lock_timeout = '2s'; UPDATE hr.departments SET name = 'ops2' WHERE id = 1",
        )
        .await
        .expect("the writer is not blocked");
    bob.simple_query("ROLLBACK").await.expect("rollback");

    // A listener on the upstream hears alice's notification, never bob's.
    let (listener, mut connection) =
        tokio_postgres::connect(&pg.url(SUPERUSER, SUPERUSER_PASSWORD, db), NoTls)
            .await
            .expect("listener");
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let Ok(AsyncMessage::Notification(n)) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    listener
        .batch_execute("LISTEN app_events")
        .await
        .expect("listen");
    refused(
        &bob,
        "NOTIFY app_events, 'purge-all'",
        "bob lacks NOTIFY on channel app_events",
    )
    .await;
    refused(
        &bob,
        "SELECT pg_notify('app_events', 'purge-all')",
        "bob lacks EXECUTE on pg_catalog.pg_notify",
    )
    .await;
    refused(
        &bob,
        "LISTEN app_events",
        "bob lacks LISTEN on channel app_events",
    )
    .await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("NOTIFY app_events, 'ok'")
        .await
        .expect("alice notifies");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv())
        .await
        .expect("a notification");
    assert_eq!(first.as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn what_every_role_may_do_still_works() {
    let db = "deny_must_work";
    let (_pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    for sql in [
        "SHOW work_mem",
        "SET work_mem = '8MB'",
        "SELECT set_config('statement_timeout', '5s', false)",
        "RESET work_mem",
        "EXPLAIN SELECT * FROM hr.departments",
        "BEGIN",
        "SELECT * FROM hr.departments",
        "SAVEPOINT s",
        "ROLLBACK TO SAVEPOINT s",
        "COMMIT",
        "SELECT lower(name), now(), version(), current_setting('work_mem') FROM hr.departments",
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relname = 'employees'",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'hr'",
    ] {
        bob.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // psql's describe commands read only what every role may read.
    for command in [r"\d hr.employees", r"\dt hr.*", r"\dn", r"\df hr.*", r"\l"] {
        let (out, err, ok) = psql(&gw, "bob", BOB_PASSWORD, &["-c", command]);
        assert!(ok, "{command}: {err}");
        assert!(err.is_empty(), "{command}: {err}");
        if command.starts_with(r"\d hr.") {
            assert!(out.contains("ssn"), "{command}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_mean_what_they_say() {
    let db = "deny_rules";
    let (pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    gw.apply_policy_live(&format!(
        "{INTERN_POLICY}
rules:
  - id: hr-frozen
    when: {{objects: ['hr.*']}}
    action: block
    message: the HR schema is frozen
  - id: big-reads
    when: {{rows_above: 1000}}
    action: block
"
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let (code, message) = denial(alice.simple_query("CREATE TABLE hr.evil (id int)").await);
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("hr-frozen"), "{message}");
    let up = direct(pg, db).await;
    assert_eq!(
        scalar(&up, "SELECT coalesce(to_regclass('hr.evil')::text, 'none')").await,
        "none"
    );
    // A row-count rule does not make explicit transactions impossible.
    for sql in [
        "BEGIN",
        "CREATE TABLE public.fine (id int)",
        "INSERT INTO public.fine VALUES (1)",
        "COMMIT",
    ] {
        alice
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(
        scalar(&up, "SELECT count(*)::text FROM public.fine").await,
        "1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lowered_device_trust_reaches_open_sessions() {
    let db = "deny_device_trust";
    let (_pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    gw.apply_policy_live(&format!(
        r#"{INTERN_POLICY}
cedar: |
  @id("no-low-trust")
  @logout("this device is not trusted")
  forbid(principal, action, resource)
  when {{ context.device_trust == DeviceTrust::"low" }};
"#
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("SELECT 1")
        .await
        .expect("trusted so far");
    gw.cli(&[
        "device",
        "report",
        "--user",
        "alice",
        "--address",
        "127.0.0.1",
        "--trust",
        "low",
    ]);
    // The gateway reads reports again every second; the open session's next statement ends it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let message = loop {
        match alice.simple_query("SELECT 1").await {
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Ok(_) => panic!("the open session kept its trust"),
            Err(e) => {
                break e
                    .as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string())
            }
        }
    };
    assert!(message.contains("this device is not trusted"), "{message}");
    assert!(alice.is_closed() || alice.simple_query("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_justification_in_the_startup_packet_meets_a_connect_permit() {
    let db = "deny_connect_justification";
    let (_pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    gw.apply_policy_live(&format!(
        r#"{INTERN_POLICY}
cedar: |
  @id("justify-login")
  @justification("Which ticket is this for?")
  permit(principal == User::"bob", action == Action::"connect", resource);
"#
    ));
    let (_, message) = refused_login(&gw, "bob", BOB_PASSWORD, "").await;
    assert!(message.contains("Which ticket is this for?"), "{message}");

    let with_reason = format!(
        "{} options='-c portcullis.justification=HR-7'",
        gw.conn_str("bob", BOB_PASSWORD)
    );
    let (bob, connection) = tokio_postgres::connect(&with_reason, NoTls)
        .await
        .expect("a justified login");
    tokio::spawn(connection);
    bob.simple_query("SELECT * FROM hr.departments")
        .await
        .expect("the session goes on");
    let record = gw
        .monitor(&["--stage", "post-connection", "--result", "allow"])
        .into_iter()
        .next()
        .expect("the login's monitor record");
    assert_eq!(record["policy"]["justification"], "HR-7", "{record}");
}

/// A column a mask selects, added by someone else while a masked session is open, never comes back raw:
/// the session reads the relation through the columns the gateway's catalog snapshot lists.
#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_behind_the_gateways_back_is_not_shown_raw() {
    let db = "deny_new_column";
    let (pg, gw) = superuser_gateway(db, INTERN_POLICY).await;
    gw.apply_policy_live(&format!(
        "{INTERN_POLICY}
masks:
  - {{id: mask-ssn, resource: app, columns: ['hr.*.ssn'], mask: {{kind: full}}, exempt: {{users: [alice]}}}}
"
    ));
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    bob.simple_query("SELECT * FROM hr.departments")
        .await
        .expect("the snapshot knows id and name");
    let up = direct(pg, db).await;
    up.batch_execute("ALTER TABLE hr.departments ADD COLUMN ssn text DEFAULT '111-22-3333'")
        .await
        .expect("a DBA adds a column");
    for sql in [
        "SELECT * FROM hr.departments",
        "SELECT d.* FROM hr.departments d",
        "SELECT row_to_json(d) FROM hr.departments d",
        "SELECT ssn FROM hr.departments",
    ] {
        let shown = match bob.simple_query(sql).await {
            Ok(messages) => format!("{:?}", rows_of(&messages)),
            Err(e) => e.to_string(),
        };
        assert!(!shown.contains("111-22-3333"), "{sql}: {shown}");
    }
}

fn rows_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// What is refused by design — server files (`COPY … FROM 'file'`, `lo_import`), `SET ROLE`, `DO` — can be
/// lifted for a named user by an explicit rule for the statement kind, and stays refused to everyone else.
#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_rule_lifts_each_refusal_by_design_for_a_named_user() {
    let policy = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['*']
    privileges: [all]
rules:
  - id: dba-only
    when: {users: [alice], statement_kinds: [DO, COPY, SET, SELECT]}
    action: allow
";
    let (_pg, gw) = superuser_gateway("deny_lifted", policy).await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    alice
        .batch_execute("CREATE TABLE public.lines(l text)")
        .await
        .unwrap();
    for sql in [
        "COPY public.lines FROM '/etc/hostname'",
        "SELECT lo_unlink(lo_import('/etc/hostname'))",
        "DO $$ BEGIN PERFORM 1; END $$",
        "SET ROLE app",
    ] {
        alice
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        let (code, message) = denial(bob.simple_query(sql).await);
        assert_eq!(code, "0A000", "{sql}: {message}");
    }
    let who = alice.simple_query("SELECT current_user").await.unwrap();
    let who = who.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(who.as_deref(), Some("app"));
}

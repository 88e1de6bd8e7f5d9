//! A client session through the gateway: transparency, refusals and what the audit log records.

mod common;

use common::{direct, fresh_database, psql, Gateway, ALICE_PASSWORD, BOB_PASSWORD};
use serde_json::Value;

fn db_message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default()
}

fn objects(event: &Value) -> Vec<String> {
    event["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    format!(
                        "{}:{}",
                        o["operation"].as_str().unwrap_or(""),
                        o["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_and_extended_queries_pass_through_and_are_audited() {
    let pg = fresh_database("session_basic");
    pg.psql(
        "session_basic",
        "CREATE SCHEMA hr AUTHORIZATION app; CREATE TABLE hr.employees(id int, name text); \
         INSERT INTO hr.employees VALUES (1, 'ada'), (2, 'grace'); ALTER TABLE hr.employees OWNER TO app;",
    )
    .unwrap();
    let gw = Gateway::start(pg, "session_basic");
    let client = gw.connect("alice", ALICE_PASSWORD).await;

    // Extended protocol with a parameter.
    let rows = client
        .query("SELECT name FROM hr.employees WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "grace");

    // Several statements in one simple Query message; unqualified names resolve through search_path.
    let results = client
        .simple_query("SET search_path = hr, public; SELECT count(*) FROM employees")
        .await
        .unwrap();
    let count = results.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(count.as_deref(), Some("2"));
    // The gateway learnt the new path: the next statement's object resolves to hr.employees.
    client
        .simple_query("SELECT name FROM employees")
        .await
        .unwrap();

    // An error from the upstream passes through, and the session recovers.
    let err = client
        .simple_query("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    assert_eq!(
        client
            .query_one("SELECT 1 + 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );

    // A transaction rolled back leaves nothing behind.
    client
        .batch_execute("BEGIN; INSERT INTO hr.employees VALUES (3, 'x'); ROLLBACK")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM hr.employees", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    drop(client);

    let events = gw.statements(&["--user", "alice"]);
    let select = events
        .iter()
        .find(|e| e["text"] == "SELECT name FROM employees")
        .expect("the unqualified select is audited");
    assert_eq!(objects(select), vec!["read:hr.employees"]);
    assert_eq!(select["rows"], 2);
    assert_eq!(select["outcome"], "ok");
    let param = events
        .iter()
        .find(|e| {
            e["text"]
                .as_str()
                .is_some_and(|t| t.contains("WHERE id = $1"))
        })
        .expect("the parameterised select is audited");
    assert_eq!(param["param_count"], 1);
    assert_eq!(objects(param), vec!["read:hr.employees"]);
    let failed = events
        .iter()
        .find(|e| e["text"] == "SELECT * FROM no_such_table")
        .expect("the failed select is audited");
    assert_eq!(failed["outcome"], "error");
    assert_eq!(failed["sqlstate"], "42P01");
    let connections = gw.audit(&["--kind", "connections", "--user", "alice"]);
    assert!(
        connections.len() >= 2,
        "open and close are recorded: {connections:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_that_cannot_be_analysed_are_refused_and_recorded() {
    let pg = fresh_database("session_refuse");
    let gw = Gateway::start(pg, "session_refuse");
    let client = gw.connect("alice", ALICE_PASSWORD).await;

    for sql in [
        "DO $$ BEGIN PERFORM 1; END $$",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "SET ROLE postgres",
    ] {
        let err = client.simple_query(sql).await.unwrap_err();
        let code = err.code().map(|c| c.code().to_string());
        assert!(
            matches!(code.as_deref(), Some("0A000") | Some("42501")),
            "{sql}: {err:?}"
        );
        assert!(db_message(&err).contains("portcullis"), "{sql}: {err:?}");
        // Also through the extended protocol (Parse is refused).
        let err = client.query(sql, &[]).await.unwrap_err();
        assert!(
            db_message(&err).contains("portcullis"),
            "{sql} (extended): {err:?}"
        );
        // The connection stays usable.
        assert_eq!(
            client
                .query_one("SELECT 7", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            7
        );
    }

    // A syntax error is answered as PostgreSQL answers it: 42601, the parser's message and where it
    // points, over both protocols.
    for (sql, message, position) in [
        ("SELEC 1", "syntax error at or near \"SELEC\"", 1),
        ("SELECT * FORM t", "syntax error at or near \"FORM\"", 10),
    ] {
        for err in [
            client.simple_query(sql).await.unwrap_err(),
            client.query(sql, &[]).await.unwrap_err(),
        ] {
            let db = err.as_db_error().expect("an error from the server");
            assert_eq!(db.code().code(), "42601", "{sql}: {err:?}");
            assert_eq!(db.message(), message);
            assert_eq!(
                db.position(),
                Some(&tokio_postgres::error::ErrorPosition::Original(position)),
                "{sql}"
            );
        }
    }

    // The server itself says what is wrong with a text the gateway cannot parse, with its hint and
    // detail, exactly as it would straight.
    let direct = direct(pg, "session_refuse").await;
    for sql in [
        "SELECT 1 LIMIT 1, 2",
        "SELECT 'a' 'b' FROM",
        "SELECT E'\\xq' +",
    ] {
        let straight = direct.simple_query(sql).await.unwrap_err();
        let straight = straight.as_db_error().expect("the server's error");
        for err in [
            client.simple_query(sql).await.unwrap_err(),
            client.query(sql, &[]).await.unwrap_err(),
        ] {
            let db = err.as_db_error().expect("an error from the server");
            let fields = |e: &tokio_postgres::error::DbError| {
                (
                    e.code().code().to_string(),
                    e.message().to_string(),
                    e.detail().map(str::to_string),
                    e.hint().map(str::to_string),
                    e.position().cloned(),
                )
            };
            assert_eq!(fields(db), fields(straight), "{sql}");
        }
    }
    // A refusal inside a transaction aborts it, as any error would.
    client.batch_execute("BEGIN").await.unwrap();
    assert!(client.simple_query("DO $$ BEGIN END $$").await.is_err());
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));
    client.batch_execute("ROLLBACK").await.unwrap();

    // One refused statement in a multi-statement message refuses the whole message: nothing ran.
    client.batch_execute("CREATE TABLE t(x int)").await.unwrap();
    assert!(client
        .simple_query("INSERT INTO t VALUES (1); DO $$ BEGIN END $$")
        .await
        .is_err());
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(client);

    let denied = gw.statements(&["--decision", "deny"]);
    assert!(denied
        .iter()
        .any(|e| e["text"].as_str().unwrap_or("").contains("PERFORM 1")));
    assert!(denied.iter().any(|e| e["text"] == "SELEC 1"));
    assert!(denied.iter().all(|e| e["outcome"] == "denied"));
    // The stand-in the gateway sends upstream never shows up as the client's statement.
    assert!(gw.statements(&["--text", "PORTCULLIS"]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn login_failures_do_not_reveal_which_part_was_wrong() {
    let pg = fresh_database("session_login");
    let gw = Gateway::start(pg, "session_login");
    for (user, password) in [("alice", "wrong"), ("nobody", "whatever")] {
        let err = tokio_postgres::connect(&gw.conn_str(user, password), tokio_postgres::NoTls)
            .await
            .err()
            .expect("login must fail");
        assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{user}: {err}");
    }
    let unknown = format!(
        "host=127.0.0.1 port={} dbname=nosuch user=alice password={ALICE_PASSWORD}",
        gw.port
    );
    let err = tokio_postgres::connect(&unknown, tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code().map(|c| c.code()), Some("3D000"));
    let rejected = gw.audit(&["--kind", "connections"]);
    assert!(rejected.len() >= 3, "{rejected:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_parameters_reach_the_upstream_and_credentials_stay_hidden() {
    let pg = fresh_database("session_params");
    let gw = Gateway::start(pg, "session_params");
    let conn = format!(
        "{} application_name=report-tool options='-c intervalstyle=iso_8601 -c TimeZone=Asia/Tokyo'",
        gw.conn_str("alice", ALICE_PASSWORD)
    );
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let show = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(show("application_name").await, "report-tool");
    assert_eq!(show("intervalstyle").await, "iso_8601");
    assert_eq!(show("timezone").await, "Asia/Tokyo");
    // The session runs as the stored credential upstream, but the client is never told its name or secret.
    let who: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "app");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_requests_reach_the_right_upstream_session() {
    let pg = fresh_database("session_cancel");
    let gw = Gateway::start(pg, "session_cancel");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    let token = client.cancel_token();
    let sleeper =
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(20)").await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = sleeper.await.unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let cancelled = gw.statements(&["--text", "pg_sleep"]);
    assert_eq!(cancelled.last().unwrap()["outcome"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_statements_and_notifications_work() {
    let pg = fresh_database("session_prepared");
    let gw = Gateway::start(pg, "session_prepared");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    client
        .batch_execute("CREATE TABLE kv(k int primary key, v text)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO kv VALUES ($1, $2)")
        .await
        .unwrap();
    for i in 0..5i32 {
        client
            .execute(&insert, &[&i, &format!("v{i}")])
            .await
            .unwrap();
    }
    // SQL-level PREPARE/EXECUTE is attributed to the prepared statement's objects.
    client
        .batch_execute(
            "PREPARE q(int) AS SELECT v FROM kv WHERE k = $1; EXECUTE q(3); DEALLOCATE q",
        )
        .await
        .unwrap();
    let events = gw.statements(&["--text", "EXECUTE q"]);
    assert_eq!(objects(&events[0]), vec!["read:public.kv"]);
    let inserts = gw.statements(&["--text", "INSERT INTO kv"]);
    assert_eq!(inserts.len(), 5);
    assert!(inserts
        .iter()
        .all(|e| e["rows"] == 1 && e["param_count"] == 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_in_a_pipeline_leaves_the_requests_around_it_intact() {
    let pg = fresh_database("session_pipeline");
    let gw = Gateway::start(pg, "session_pipeline");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    // tokio-postgres pipelines concurrent requests on one connection: Parse/Bind/Execute/Sync for each,
    // written back to back before any reply is read.
    let (a, refused, b, c) = tokio::join!(
        client.query_one("SELECT 1::int", &[]),
        client.query("DO $$ BEGIN END $$", &[]),
        client.query_one("SELECT $1::int + 1", &[&41i32]),
        client.simple_query("SELECT 'simple' AS s"),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 1);
    assert!(db_message(&refused.unwrap_err()).contains("portcullis"));
    assert_eq!(b.unwrap().get::<_, i32>(0), 42);
    assert!(c.is_ok());
    for round in 0..20i32 {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&round];
        let (x, y) = tokio::join!(
            client.query_one("SELECT $1::int", &params),
            client.query("SELEC broken", &[]),
        );
        assert_eq!(x.unwrap().get::<_, i32>(0), round);
        assert!(y.is_err());
    }
}

#[test]
fn tls_is_offered_and_can_be_required() {
    let pg = fresh_database("session_tls");
    let gw = Gateway::start_with_config(pg, "session_tls", "tls:\n  mode: required");
    let env = gw.pg_env("alice", ALICE_PASSWORD);
    let run = |sslmode: &str| {
        std::process::Command::new("psql")
            .args(["-X", "-At", "-c", "SELECT 'over tls'"])
            .envs(env.iter().filter(|(k, _)| k != "PGSSLMODE").cloned())
            .env("PGSSLMODE", sslmode)
            .output()
            .unwrap()
    };
    let secure = run("require");
    assert!(
        secure.status.success(),
        "{}",
        String::from_utf8_lossy(&secure.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&secure.stdout).trim(), "over tls");
    let plain = run("disable");
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("TLS"));
    let connections = gw.audit(&["--kind", "connections"]);
    assert!(connections
        .iter()
        .any(|c| common::connection_of(c)["tls"] == true));
    assert!(connections
        .iter()
        .any(|c| common::connection_of(c)["auth_result"] == "TLS required"));
}

#[tokio::test(flavor = "multi_thread")]
async fn large_messages_pass_both_ways() {
    let pg = fresh_database("session_large");
    let gw = Gateway::start(pg, "session_large");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    let literal = "x".repeat(5 * 1024 * 1024);
    let sql = format!("SELECT length('{literal}')");
    let n: i32 = client.query_one(sql.as_str(), &[]).await.unwrap().get(0);
    assert_eq!(n, 5 * 1024 * 1024);
    let big: String = client
        .query_one("SELECT repeat('y', 20000000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(big.len(), 20_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_is_reached_over_tls_when_the_resource_asks_for_it() {
    let pg = portcullis_testkit::PgServer::start().unwrap();
    pg.enable_ssl().unwrap();
    for (mode, expect_tls) in [("require", true), ("prefer", true), ("disable", false)] {
        let gw = Gateway::start_with_upstream_tls(&pg, "appdb", mode);
        let client = gw.connect("alice", ALICE_PASSWORD).await;
        let ssl: bool = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(ssl, expect_tls, "resource tls mode {mode}");
    }
    // verify-full checks the certificate against the system's CAs: a self-signed one is refused.
    let gw = Gateway::start_with_upstream_tls(&pg, "appdb", "verify-full");
    let err = tokio_postgres::connect(&gw.conn_str("alice", ALICE_PASSWORD), tokio_postgres::NoTls)
        .await
        .err()
        .expect("an unverifiable upstream certificate must fail the login");
    assert_eq!(err.code().map(|c| c.code()), Some("08006"), "{err:?}");
}

/// libpq's large-object API calls functions over the fast-path protocol: each call is decided as the
/// function it names (execute on `pg_catalog.lo_open`, …), recorded, and relayed.
#[tokio::test(flavor = "multi_thread")]
async fn fast_path_calls_are_decided_as_the_functions_they_name() {
    let db = "session_fast_path";
    let pg = fresh_database(db);
    let policy = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['public.*']
    privileges: [select]
";
    let gw = Gateway::start_with_policy(pg, db, "", Some(policy));
    let dir = tempfile::tempdir().unwrap();
    let (source, copy) = (dir.path().join("in.bin"), dir.path().join("out.bin"));
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &content).unwrap();

    let (out, err, ok) = psql(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &["-c", &format!("\\lo_import {}", source.display())],
    );
    assert!(ok, "{err}");
    let oid = out.trim().trim_start_matches("lo_import ").to_string();
    assert!(oid.parse::<u32>().is_ok(), "{out}");
    let (_, err, ok) = psql(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &["-c", &format!("\\lo_export {oid} {}", copy.display())],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    let calls = gw.statements(&["--text", "fast-path"]);
    assert!(
        calls
            .iter()
            .any(|r| r["text"].as_str().unwrap_or_default().contains("lo_open")),
        "{calls:?}"
    );

    // bob may not write large objects: the first call is refused, and nothing was created.
    let before = pg
        .psql(db, "SELECT count(*) FROM pg_largeobject_metadata")
        .unwrap();
    let (_, err, ok) = psql(
        &gw,
        "bob",
        BOB_PASSWORD,
        &["-c", &format!("\\lo_import {}", source.display())],
    );
    assert!(!ok);
    assert!(err.contains("bob lacks EXECUTE on pg_catalog.lo_"), "{err}");
    let after = pg
        .psql(db, "SELECT count(*) FROM pg_largeobject_metadata")
        .unwrap();
    assert_eq!(before, after);
}

/// On transparent huge pages the allocator's arenas kept growing for minutes under load (bench/README,
/// memory at 50 clients), so the gateway neither asks for them nor lets the kernel use them.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_keeps_its_memory_in_small_pages() {
    let pg = fresh_database("session_small_pages");
    let gw = Gateway::start(pg, "session_small_pages");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    for _ in 0..200 {
        client
            .simple_query("SELECT repeat('x', 4096)")
            .await
            .unwrap();
    }

    let proc = std::path::PathBuf::from(format!("/proc/{}", gw.pid()));
    let status = std::fs::read_to_string(proc.join("status")).unwrap();
    assert!(status.lines().any(|l| l == "THP_enabled:\t0"), "{status}");
    let smaps = std::fs::read_to_string(proc.join("smaps")).unwrap();
    let advised = smaps
        .lines()
        .filter(|l| l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == "hg"));
    assert_eq!(
        advised.count(),
        0,
        "a mapping asks for huge pages:\n{smaps}"
    );
}

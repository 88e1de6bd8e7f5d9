//! The gateway enforces the applied policy: connection stages, grants, ordered rules per component,
//! live policy changes, logout, device trust and location, and failing closed on every way of reaching
//! a table a user may not read. Real gateway process, real PostgreSQL.

mod common;

use common::{denial, fresh_database, refused_login, Gateway, ALICE_PASSWORD, BOB_PASSWORD};
use serde_json::Value;

/// HR fixtures, created through the gateway by alice (who may do anything under the start policy).
async fn hr_fixtures(gw: &Gateway) {
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.departments(id int primary key, name text);
             CREATE TABLE hr.employees(id int primary key, name text, dept int, salary int);
             INSERT INTO hr.departments VALUES (1, 'ops'), (2, 'dev');
             INSERT INTO hr.employees SELECT g, 'e' || g, 1 + g % 2, 1000 * g FROM generate_series(1, 40) g;
             CREATE TABLE public.open_t(id int, v text);
             INSERT INTO open_t VALUES (1, 'visible');
             CREATE TABLE public.secret(id int, s text);
             INSERT INTO secret VALUES (1, 'TOPSECRET-1');
             CREATE SCHEMA hidden;
             CREATE TABLE hidden.secret2(s text);
             INSERT INTO hidden.secret2 VALUES ('TOPSECRET-2');",
        )
        .await
        .expect("fixtures");
}

/// A policy in which alice may do anything on the test resource, followed by `rules` (a YAML list).
fn alice_may_do_anything(rules: &str) -> String {
    format!(
        "grants:
  - to: {{user: alice}}
    resource: app
    objects: ['*']
    privileges: [all]
rules:
{rules}"
    )
}

/// The monitor record of the newest statement whose text contains `text`.
fn monitor_of(gw: &Gateway, text: &str) -> Value {
    let records = gw.monitor(&["--stage", "statement"]);
    records
        .into_iter()
        .find(|r| r["text"].as_str().is_some_and(|t| t.contains(text)))
        .unwrap_or_else(|| panic!("no monitor record for {text:?}"))
}

fn fired_ids(record: &Value) -> Vec<String> {
    record["policy"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_004_rules_fire_once_per_component() {
    let pg = fresh_database("policy_seed004");
    let gw = Gateway::start(pg, "policy_seed004");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: 1st_EmployeesTable
    when: {objects: [hr.employees]}
    action: audit
  - id: 2nd_auditHRschema
    when: {objects: ['hr.*']}
    action: audit
  - id: 3rd_audit_db
    when: {objects: ['*.*']}
    action: audit
  - id: QueryTypes
    when: {statement_kinds_not: [SELECT]}
    action: audit
",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("SELECT * FROM hr.employees")
        .await
        .unwrap();
    alice
        .simple_query(
            "CREATE TABLE emp_dept AS SELECT e.name, d.name AS dept FROM hr.employees e \
             JOIN hr.departments d ON d.id = e.dept",
        )
        .await
        .unwrap();
    let select = monitor_of(&gw, "SELECT * FROM hr.employees");
    assert_eq!(fired_ids(&select), vec!["1st_EmployeesTable"]);
    assert_eq!(select["policy"]["result"], "allow");
    let ctas = monitor_of(&gw, "CREATE TABLE emp_dept");
    assert_eq!(
        fired_ids(&ctas),
        vec!["1st_EmployeesTable", "2nd_auditHRschema", "QueryTypes"]
    );
    // The monitor can be filtered by the rule that decided.
    let by_rule = gw.monitor(&["--rule", "QueryTypes"]);
    assert!(by_rule
        .iter()
        .all(|r| fired_ids(r).contains(&"QueryTypes".to_string())));
    assert!(!by_rule.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_decide_what_each_user_may_do() {
    let pg = fresh_database("policy_grants");
    let gw = Gateway::start(pg, "policy_grants");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(
        "grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['hr.*']
    privileges: [select]
  - to: {user: bob}
    resource: app
    objects: [public.open_t]
    privileges: [select]
    expires: 2020-01-01T00:00:00Z
  - to: {user: bob}
    resource: app
    objects: [public.secret]
    privileges: [select]
    valid: {from: 2099-01-01T00:00:00Z}
",
    );
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let rows = bob
        .query("SELECT count(*) FROM hr.employees", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 40);

    let (code, message) = denial(bob.simple_query("DELETE FROM hr.employees").await);
    assert_eq!(code, "42501");
    assert!(
        message.contains("bob lacks DELETE on hr.employees"),
        "{message}"
    );
    // An expired grant and one not yet valid grant nothing.
    for sql in ["SELECT * FROM open_t", "SELECT * FROM secret"] {
        let (code, _) = denial(bob.simple_query(sql).await);
        assert_eq!(code, "42501", "{sql}");
    }
    // The refused DELETE left the data alone, and the session goes on.
    let rows = bob
        .query("SELECT count(*) FROM hr.employees", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 40);

    let denied = gw.statements(&["--user", "bob", "--decision", "deny"]);
    assert_eq!(denied.len(), 3);
    let record = monitor_of(&gw, "DELETE FROM hr.employees");
    assert_eq!(record["policy"]["result"], "deny");
    assert!(record["policy"]["missing_grants"][0]
        .as_str()
        .is_some_and(|m| m.contains("DELETE on hr.employees")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_applied_policy_reaches_open_sessions_without_dropping_them() {
    let pg = fresh_database("policy_reload");
    let gw = Gateway::start(pg, "policy_reload");
    hr_fixtures(&gw).await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("SELECT * FROM hr.employees")
        .await
        .unwrap();
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: no_salaries
    when: {objects: [hr.employees]}
    action: block
    message: HR data is closed today
",
    ));
    let (code, message) = denial(alice.simple_query("SELECT * FROM hr.employees").await);
    assert_eq!(code, "42501");
    assert!(
        message.contains("no_salaries") && message.contains("HR data is closed today"),
        "{message}"
    );
    // Same session, still usable.
    let rows = alice
        .query("SELECT count(*) FROM hr.departments", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    let shown = gw.cli(&["policy", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("no_salaries"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_stages_decide_before_and_after_login() {
    let pg = fresh_database("policy_stages");
    let gw = Gateway::start_with_policy(
        pg,
        "policy_stages",
        "",
        Some(&alice_may_do_anything(
            "
  - id: no_bob
    stage: post-connection
    when: {users: [bob]}
    action: block
    message: bob is on leave
",
        )),
    );
    gw.connect("alice", ALICE_PASSWORD).await;
    let (code, message) = refused_login(&gw, "bob", BOB_PASSWORD, "").await;
    assert_eq!(code, "28000");
    assert!(message.contains("bob is on leave"), "{message}");
    let post = gw.monitor(&["--stage", "post-connection", "--user", "bob"]);
    assert_eq!(post[0]["policy"]["result"], "deny");
    assert_eq!(fired_ids(&post[0]), vec!["no_bob"]);

    // Pre-connection: decided on the address before any password is checked.
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: no_loopback
    stage: pre-connection
    when: {client_cidrs: [127.0.0.0/8]}
    action: block
    message: connect from the office network
",
    ));
    let (code, message) = refused_login(&gw, "alice", "wrong-password", "").await;
    assert_eq!(code, "28000");
    assert!(message.contains("office network"), "{message}");
    let pre = gw.monitor(&["--stage", "pre-connection", "--result", "deny"]);
    assert_eq!(fired_ids(&pre[0]), vec!["no_loopback"]);
    let shown = gw.cli(&["monitor", "show", &pre[0]["id"].to_string()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("pre-connection") && text.contains("no_loopback"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_without_a_policy_denies_everything() {
    let pg = fresh_database("policy_none");
    let gw = Gateway::start_with_policy(pg, "policy_none", "", None);
    let (code, message) = refused_login(&gw, "alice", ALICE_PASSWORD, "").await;
    assert_eq!(code, "28000");
    assert!(message.contains("policy apply"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logout_rule_ends_the_session_with_its_reason() {
    let pg = fresh_database("policy_logout");
    let gw = Gateway::start(pg, "policy_logout");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: salary_probe
    when: {objects: [hr.employees], operations: [update]}
    action: logout
    message: salary changes are reviewed in person
",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let (code, message) = denial(
        alice
            .simple_query("UPDATE hr.employees SET salary = 1")
            .await,
    );
    assert_eq!(code, "42501");
    assert!(
        message.contains("salary changes are reviewed in person"),
        "{message}"
    );
    assert!(
        alice.simple_query("SELECT 1").await.is_err(),
        "the session is over"
    );
    let rows = gw
        .connect("alice", ALICE_PASSWORD)
        .await
        .query("SELECT min(salary) FROM hr.employees", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 1000, "the update never ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_trust_and_location_are_part_of_the_context() {
    let pg = fresh_database("policy_context");
    let gw = Gateway::start_with_policy(
        pg,
        "policy_context",
        "location:\n  networks:\n    - {cidr: 127.0.0.0/8, country: de}\n",
        Some(&alice_may_do_anything(
            "
  - id: low_trust_out
    stage: post-connection
    when: {device_trust: [low]}
    action: logout
    message: your device is not trusted
",
        )),
    );
    // No report yet: trust is unknown, which this policy does not block.
    gw.connect("alice", ALICE_PASSWORD).await;
    let allowed = gw.monitor(&["--stage", "post-connection", "--result", "allow"]);
    assert_eq!(allowed[0]["policy"]["location"], "DE");
    assert_eq!(allowed[0]["policy"]["device_trust"], "unknown");

    gw.cli(&[
        "device",
        "report",
        "--user",
        "alice",
        "--address",
        "127.0.0.1",
        "--trust",
        "low",
        "--device",
        "laptop-7",
    ]);
    let (_, message) = refused_login(&gw, "alice", ALICE_PASSWORD, "").await;
    assert!(message.contains("your device is not trusted"), "{message}");
    let denied = gw.monitor(&["--stage", "post-connection", "--result", "deny"]);
    assert_eq!(denied[0]["policy"]["device_trust"], "low");
    assert_eq!(denied[0]["policy"]["logout"], true);
}

/// Every way of reading a table bob has no grant on is refused, and its values never reach him.
#[tokio::test(flavor = "multi_thread")]
async fn every_way_of_reaching_an_ungranted_table_is_refused() {
    let pg = fresh_database("policy_failclosed");
    let gw = Gateway::start(pg, "policy_failclosed");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(
        "grants:
  - to: {user: bob}
    resource: app
    objects: [public.open_t, hidden.nothing]
    privileges: [select]
",
    );
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let rows = bob.query("SELECT v FROM open_t", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "visible");

    let attempts = [
        "SELECT * FROM secret",
        "SELECT * FROM SECRET",
        "SELECT * FROM \"secret\"",
        "SELECT * FROM public.secret",
        "TABLE secret",
        "WITH x AS (SELECT * FROM secret) SELECT * FROM x",
        "SELECT * FROM open_t WHERE id IN (SELECT id FROM secret)",
        "SELECT * FROM open_t JOIN secret USING (id)",
        "SELECT v FROM open_t UNION SELECT s FROM secret",
        "SELECT (SELECT s FROM secret LIMIT 1)",
        "SELECT * FROM open_t, LATERAL (SELECT s FROM secret) x",
        "SELECT 1; SELECT * FROM secret",
        "PREPARE p AS SELECT * FROM secret",
        "BEGIN; DECLARE c CURSOR FOR SELECT * FROM secret; FETCH ALL FROM c; COMMIT",
        "COPY secret TO STDOUT",
        "COPY (SELECT * FROM secret) TO STDOUT",
        "COPY secret FROM STDIN",
        "WITH d AS (DELETE FROM open_t RETURNING *) SELECT * FROM d",
        "SELECT * INTO stolen FROM secret",
        "CREATE TABLE stolen AS SELECT * FROM secret",
        "DO $$ BEGIN PERFORM * FROM secret; END $$",
        "SELECT * FROM hidden.secret2",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "UPDATE open_t SET v = 'x'",
        "SELECT query_to_xml('SELECT * FROM secret', true, true, '')",
    ];
    for sql in attempts {
        match bob.simple_query(sql).await {
            Ok(messages) => panic!("{sql:?} was let through: {} messages", messages.len()),
            Err(err) => {
                let text = format!("{err:?}");
                assert!(!text.contains("TOPSECRET"), "{sql:?} leaked: {text}");
                let code = err.code().map(|c| c.code().to_string()).unwrap_or_default();
                assert!(code == "42501" || code == "0A000", "{sql:?}: {code} {err}");
            }
        }
        // Whatever was refused, the session goes on (an open transaction is ended first).
        let _ = bob.simple_query("ROLLBACK").await;
    }
    // search_path changes are followed: an unqualified name resolves where PostgreSQL would look.
    bob.simple_query("SET search_path TO hidden").await.unwrap();
    let (code, message) = denial(bob.simple_query("SELECT * FROM secret2").await);
    assert_eq!(code, "42501");
    assert!(message.contains("hidden.secret2"), "{message}");
    bob.simple_query("RESET search_path").await.unwrap();
    // Also when the path changes earlier in the same query message.
    let (code, message) = denial(
        bob.simple_query("SET search_path TO hidden; SELECT * FROM secret2")
            .await,
    );
    assert_eq!(code, "42501");
    assert!(message.contains("hidden.secret2"), "{message}");
    // Protocol-level prepared statements are refused at Parse.
    let err = bob
        .prepare("SELECT s FROM secret")
        .await
        .expect_err("refused");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    let rows = bob.query("SELECT v FROM open_t", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
}

/// A one-shot HTTP receiver: returns the body of the first request it gets.
fn webhook_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().expect("receiver address").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
    });
    (port, rx)
}

/// A gateway on database `name` whose alerts go to a one-shot receiver, with the hr fixtures and
/// `rules` applied; with alice connected.
async fn alerting_gateway(
    name: &str,
    rules: &str,
) -> (
    Gateway,
    tokio_postgres::Client,
    std::sync::mpsc::Receiver<String>,
) {
    let (port, bodies) = webhook_receiver();
    let gw = Gateway::start_with_config(
        fresh_database(name),
        name,
        &format!("alerts:\n  webhook: http://127.0.0.1:{port}/hooks/portcullis\n"),
    );
    hr_fixtures(&gw).await;
    gw.apply_policy_live(&alice_may_do_anything(rules));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    (gw, alice, bodies)
}

/// The alert the receiver got, as JSON.
fn received_alert(bodies: &std::sync::mpsc::Receiver<String>) -> Value {
    let body = bodies
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the webhook received the alert");
    serde_json::from_str(&body).expect("alert JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_rules_reach_the_webhook() {
    let (_gw, alice, bodies) = alerting_gateway(
        "policy_alerts",
        "
  - id: salary_watch
    name: Salary reads
    when: {objects: [hr.employees]}
    action: alert
    severity: high
    message: someone read salaries
",
    )
    .await;
    alice
        .simple_query("SELECT salary FROM hr.employees")
        .await
        .unwrap();
    let alert = received_alert(&bodies);
    assert_eq!(alert["rule_id"], "salary_watch");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["user"], "alice");
    assert_eq!(alert["message"], "someone read salaries");
    assert_eq!(alert["statement"], "SELECT salary FROM hr.employees");
}

/// An `alert` rule on a row count fires once the statement's rows are known: a small read raises
/// nothing, a bulk one reaches the webhook, naming the rule and the statement.
#[tokio::test(flavor = "multi_thread")]
async fn row_count_alerts_reach_the_webhook() {
    let (_gw, alice, bodies) = alerting_gateway(
        "policy_row_alerts",
        "
  - id: bulk_salary_read
    name: Bulk salary reads
    when: {objects: [hr.employees], rows_above: 5}
    action: alert
    severity: high
",
    )
    .await;
    alice
        .simple_query("SELECT salary FROM hr.employees WHERE id < 3")
        .await
        .unwrap();
    alice
        .simple_query("SELECT salary FROM hr.employees")
        .await
        .unwrap();
    // The receiver takes one request: were the two-row read alerted on, its alert would be this one.
    let alert = received_alert(&bodies);
    assert_eq!(alert["rule_id"], "bulk_salary_read");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["user"], "alice");
    assert_eq!(alert["statement"], "SELECT salary FROM hr.employees");
    assert_eq!(
        alert["message"],
        "rule `bulk_salary_read` fired on read hr.employees"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn row_count_rules_are_recorded_after_execution_and_roll_back_writes() {
    let pg = fresh_database("policy_rows");
    let gw = Gateway::start(pg, "policy_rows");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: bulk_read
    when: {objects: [hr.employees], rows_above: 5}
    action: audit
  - id: bulk_delete
    when: {objects: [hr.departments], operations: [delete], rows_above: 1}
    action: block
  - id: allow_above_1
    when: {objects: [public.open_t], rows_above: 1}
    action: allow
  - id: block_above_10
    when: {objects: [public.open_t], rows_above: 10}
    action: block
",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("SELECT * FROM hr.employees WHERE id < 3")
        .await
        .unwrap();
    assert!(fired_ids(&monitor_of(&gw, "WHERE id < 3")).is_empty());
    alice
        .simple_query("SELECT * FROM hr.employees")
        .await
        .unwrap();
    assert_eq!(
        fired_ids(&monitor_of(&gw, "SELECT * FROM hr.employees")),
        vec!["bulk_read"],
        "40 rows exceed the threshold"
    );
    // A write past a blocking threshold runs, is stopped, and is rolled back.
    let (code, message) = denial(alice.simple_query("DELETE FROM hr.departments").await);
    assert_eq!(code, "42501");
    assert!(message.contains("bulk_delete"), "{message}");
    assert!(message.contains("(2 rows)"), "{message}");
    let rows = alice
        .query("SELECT count(*) FROM hr.departments", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2, "the DELETE was rolled back");
    let stopped = monitor_of(&gw, "DELETE FROM hr.departments");
    assert_eq!(stopped["policy"]["result"], "deny");
    assert_eq!(stopped["rows"], 2);
    assert_eq!(fired_ids(&stopped), vec!["bulk_delete"]);
    // Seed 004: "allow rows > 1" ranked above "block rows > 10" can never let the block fire.
    alice
        .simple_query("INSERT INTO open_t SELECT g, 'v' FROM generate_series(1, 40) g")
        .await
        .unwrap();
    let rows = alice.query("SELECT * FROM open_t", &[]).await.unwrap();
    assert_eq!(rows.len(), 41);
}

/// Seed 004 swapped: "block rows > 10" ranked above "allow rows > 1" cuts a 40-row read off with an
/// error, whatever the protocol, and a fetch size does not get round it; a write past the threshold in a
/// transaction aborts that transaction like a failing statement would.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocking_row_count_rule_stops_reads_and_writes_part_way() {
    let pg = fresh_database("policy_rows_stop");
    let gw = Gateway::start(pg, "policy_rows_stop");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(&alice_may_do_anything(
        "
  - id: block_above_10
    when: {objects: [hr.employees], rows_above: 10}
    action: block
    message: bulk export of employees
  - id: allow_above_1
    when: {objects: [hr.employees], rows_above: 1}
    action: allow
  - id: allow_above_20
    when: {objects: [public.open_t], rows_above: 20}
    action: allow
  - id: block_open_above_10
    when: {objects: [public.open_t], rows_above: 10}
    action: block
",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;

    // Simple protocol: within the limit the rows come back; past it, an error naming the rule.
    let small = alice
        .simple_query("SELECT id FROM hr.employees WHERE id <= 10")
        .await
        .unwrap();
    assert_eq!(rows_of(&small), 10);
    let (code, message) = denial(alice.simple_query("SELECT * FROM hr.employees").await);
    assert_eq!(code, "42501");
    assert!(message.contains("block_above_10"), "{message}");
    assert!(message.contains("bulk export of employees"), "{message}");
    let stopped = monitor_of(&gw, "SELECT * FROM hr.employees");
    assert_eq!(stopped["policy"]["result"], "deny");
    assert_eq!(fired_ids(&stopped), vec!["block_above_10"]);

    // Extended protocol, and a portal fetched ten rows at a time.
    let err = alice
        .query("SELECT * FROM hr.employees WHERE id > $1", &[&0i32])
        .await
        .expect_err("40 rows are past the limit");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    let few = alice
        .query("SELECT * FROM hr.employees WHERE id > $1", &[&35i32])
        .await
        .unwrap();
    assert_eq!(few.len(), 5);
    let mut client = gw.connect("alice", ALICE_PASSWORD).await;
    let txn = client.transaction().await.unwrap();
    let portal = txn
        .bind("SELECT * FROM hr.employees ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(txn.query_portal(&portal, 10).await.unwrap().len(), 10);
    let err = txn
        .query_portal(&portal, 10)
        .await
        .expect_err("the 11th row is past the limit");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    drop(txn);

    // A passive rule ranked above decides once the count passes it: 15 rows are blocked, 25 allowed
    // (the rows from the 11th on are held until the count settles the verdict).
    alice
        .simple_query("INSERT INTO open_t SELECT g, 'v' FROM generate_series(2, 40) g")
        .await
        .expect("39 rows pass `allow_above_20` before the block is reached");
    let (code, message) = denial(
        alice
            .simple_query("SELECT * FROM open_t WHERE id <= 15")
            .await,
    );
    assert_eq!(code, "42501");
    assert!(message.contains("block_open_above_10"), "{message}");
    let many = alice
        .simple_query("SELECT * FROM open_t WHERE id <= 25")
        .await
        .unwrap();
    assert_eq!(rows_of(&many), 25);

    // In a transaction a stopped write aborts it, as a failing statement would; nothing is kept.
    let mut client = gw.connect("alice", ALICE_PASSWORD).await;
    let txn = client.transaction().await.unwrap();
    txn.execute("DELETE FROM open_t WHERE id = 1", &[])
        .await
        .unwrap();
    let err = txn
        .execute("UPDATE hr.employees SET salary = 0", &[])
        .await
        .expect_err("40 rows updated are past the limit");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    let err = txn
        .execute("SELECT 1", &[])
        .await
        .expect_err("the transaction is aborted");
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"));
    drop(txn);
    let intact = alice
        .query(
            "SELECT count(*) FILTER (WHERE salary = 0), (SELECT count(*) FROM open_t) FROM hr.employees",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(intact[0].get::<_, i64>(0), 0, "no salary was changed");
    assert_eq!(
        intact[0].get::<_, i64>(1),
        40,
        "the DELETE before it was rolled back too"
    );

    // What the gateway cannot count is refused whole, with why.
    let (code, message) = denial(alice.simple_query("COPY hr.employees TO STDOUT").await);
    assert_eq!(code, "0A000");
    assert!(message.contains("COPY"), "{message}");
    let (code, message) = denial(
        alice
            .simple_query("SELECT 1; SELECT * FROM hr.employees")
            .await,
    );
    assert_eq!(code, "0A000");
    assert!(message.contains("on its own"), "{message}");
}

/// The DataRows of a simple-query reply.
fn rows_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count()
}

/// Seed 002 through the gateway: permits impose requirements and report what is missing, a forbid ends
/// the session whatever the grants say.
#[tokio::test(flavor = "multi_thread")]
async fn cedar_permits_report_requirements_and_forbids_log_out() {
    let pg = fresh_database("policy_cedar");
    let gw = Gateway::start(pg, "policy_cedar");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(
        r#"grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: [public.open_t]
    privileges: [select]
workflows:
  - {name: management, approvers: {users: [alice]}}
cedar: |
  @id("no-low-trust")
  @logout("untrusted device")
  forbid(principal, action, resource)
  when { context.device_trust == DeviceTrust::"low" };

  @id("hr-justify")
  @mfa
  @justification("Why do you need HR data?")
  permit(principal == User::"bob", action == Action::"select", resource in Schema::"hr");

  @id("bob-approval")
  @approval("management")
  permit(principal == User::"bob", action == Action::"delete", resource == Table::"public.open_t");
"#,
    );
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let (code, message) = denial(bob.simple_query("SELECT * FROM hr.employees").await);
    assert_eq!(code, "42501");
    assert!(
        message.contains("MFA required by permit `hr-justify`")
            && message.contains(
                "justification required by permit `hr-justify`: Why do you need HR data?"
            ),
        "{message}"
    );
    let record = monitor_of(&gw, "SELECT * FROM hr.employees");
    let requirements = record["policy"]["requirements"]
        .as_array()
        .expect("requirements");
    assert_eq!(requirements.len(), 2);
    assert!(requirements
        .iter()
        .all(|r| r["met"] == false && r["policy"] == "hr-justify"));
    assert!(fired_ids(&record).contains(&"hr-justify".to_string()));

    let (code, message) = denial(bob.simple_query("DELETE FROM open_t").await);
    assert_eq!(code, "42501");
    assert!(
        message.contains("approval via workflow `management`"),
        "{message}"
    );
    assert_eq!(
        monitor_of(&gw, "DELETE FROM open_t")["policy"]["result"],
        "require-approval"
    );

    // A forbid beats alice's grant, at connection, and says why.
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
    let (_, message) = refused_login(&gw, "alice", ALICE_PASSWORD, "").await;
    assert!(message.contains("untrusted device"), "{message}");
    let denied = gw.monitor(&["--rule", "no-low-trust", "--result", "deny"]);
    assert_eq!(denied[0]["policy"]["logout"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_rule_lets_a_named_user_run_what_cannot_be_analysed() {
    let pg = fresh_database("policy_opaque");
    let gw = Gateway::start(pg, "policy_opaque");
    gw.apply_policy_live(
        "grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['*']
    privileges: [all]
rules:
  - id: dba_do_blocks
    when: {users: [alice], statement_kinds: [DO]}
    action: allow
",
    );
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .simple_query("DO $$ BEGIN PERFORM 1; END $$")
        .await
        .expect("alice may run DO blocks");
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let (code, message) = denial(bob.simple_query("DO $$ BEGIN PERFORM 1; END $$").await);
    assert_eq!(code, "0A000");
    assert!(message.contains("DO executes dynamic SQL"), "{message}");
    assert_eq!(fired_ids(&monitor_of(&gw, "DO $$")), Vec::<String>::new());
}

/// A permit asking for a justification is met by `SET portcullis.justification` for the session or by
/// a leading comment for one message; the text is recorded with the decision.
#[tokio::test(flavor = "multi_thread")]
async fn a_justification_from_a_native_client_meets_a_permit() {
    let pg = fresh_database("policy_justify");
    let gw = Gateway::start(pg, "policy_justify");
    hr_fixtures(&gw).await;
    gw.apply_policy_live(
        r#"grants:
  - to: {user: bob}
    resource: app
    objects: [public.open_t]
    privileges: [select]
cedar: |
  @id("hr-why")
  @justification("Which ticket is this for?")
  permit(principal == User::"bob", action == Action::"select", resource in Schema::"hr");
"#,
    );
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let (code, message) = denial(bob.simple_query("SELECT count(*) FROM hr.employees").await);
    assert_eq!(code, "42501");
    assert!(message.contains("Which ticket is this for?"), "{message}");

    bob.simple_query("/* justification: ticket HR-7 */ SELECT count(*) FROM hr.departments")
        .await
        .expect("a leading comment justifies its message");
    let record = monitor_of(&gw, "FROM hr.departments");
    assert_eq!(record["policy"]["justification"], "ticket HR-7");
    assert_eq!(record["policy"]["requirements"][0]["met"], true);
    // Only that message: the next one needs its own.
    assert!(bob
        .simple_query("SELECT 1 FROM hr.departments")
        .await
        .is_err());

    bob.simple_query("SET portcullis.justification = 'quarterly audit'")
        .await
        .unwrap();
    let rows = bob
        .query("SELECT count(*) FROM hr.employees", &[])
        .await
        .expect("the session's justification holds for prepared statements too");
    assert_eq!(rows[0].get::<_, i64>(0), 40);
    assert_eq!(
        monitor_of(&gw, "SELECT count(*) FROM hr.employees")["policy"]["justification"],
        "quarterly audit"
    );
    bob.simple_query("RESET portcullis.justification")
        .await
        .unwrap();
    assert!(bob
        .simple_query("SELECT count(*) FROM hr.employees")
        .await
        .is_err());
}

//! MFA end to end: TOTP enrolment from the CLI, the gateway holding a connection or a statement until
//! the user verifies with `portcullis mfa verify`, the validity and idle re-prompt rules (with the clock
//! moved forward through the testing offset file instead of sleeping), timeouts, wrong and replayed
//! codes, and users who are not enrolled. Real gateway process, real PostgreSQL, real psql; the test
//! computes TOTP codes itself from the enrolled secret.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    connect_with_notices, denial, fresh_database, Gateway, TestClock, ALICE_PASSWORD, BOB_PASSWORD,
};
use portcullis_store::totp;
use serde_json::Value;

/// Enrols `user` and returns the secret read back from the printed otpauth URI.
fn enroll(gw: &Gateway, user: &str) -> Vec<u8> {
    let out = gw.cli(&["mfa", "enroll", user]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let uri = stdout.lines().next().unwrap_or_default();
    assert!(
        uri.starts_with(&format!("otpauth://totp/Portcullis:{user}?secret="))
            && uri.ends_with("&issuer=Portcullis"),
        "{stdout}"
    );
    // The QR code is drawn with Unicode half blocks.
    assert!(stdout.contains('▀') || stdout.contains('▄'), "{stdout}");
    totp::secret_from_uri(uri).expect("secret in the URI")
}

/// `portcullis mfa verify --user USER CODE`: success and what it printed.
fn verify(gw: &Gateway, user: &str, code: &str) -> (bool, String) {
    let out = gw.try_cli(&["mfa", "verify", "--user", user, code]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The code for the test clock's current step.
fn code_now(secret: &[u8], clock: &TestClock) -> String {
    totp::code_at(secret, clock.now())
}

/// MFA audit events (`action`, `result`, `user`), oldest first.
fn mfa_events(gw: &Gateway) -> Vec<Value> {
    let mut events = gw.audit(&["--kind", "mfa"]);
    events.reverse();
    events
}

fn count(events: &[Value], action: &str, result: &str) -> usize {
    events
        .iter()
        .filter(|e| e["action"] == action && e["result"] == result)
        .count()
}

/// Waits until the gateway has recorded `n` holds.
fn wait_for_holds(gw: &Gateway, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = mfa_events(gw);
        if count(&events, "hold", "waiting") >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never held a request: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The single value a one-row, one-column simple query returned.
fn single_value(messages: &[tokio_postgres::SimpleQueryMessage]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

/// Alice needs MFA for everything on the resource, the connection included; bob has plain grants.
const CONNECT_MFA_POLICY: &str = r#"grants:
  - to: {user: bob}
    resource: app
    objects: ['*']
    privileges: [all]
cedar: |
  @id("alice-mfa")
  @mfa("production data")
  permit(principal == User::"alice", action, resource in Resource::"app");
"#;

/// Alice may do anything, but reading the hr schema needs MFA (step-up for the statement only).
const STEP_UP_POLICY: &str = r#"grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['*']
    privileges: [all]
cedar: |
  @id("hr-mfa")
  @mfa
  permit(principal, action == Action::"select", resource in Schema::"hr");

  @id("bob-connect-mfa")
  @mfa
  permit(principal == User::"bob", action == Action::"connect", resource);
"#;

async fn hr_fixtures(gw: &Gateway) {
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.people(id int, name text);
             INSERT INTO hr.people VALUES (1, 'ann'), (2, 'ben');",
        )
        .await
        .expect("fixtures");
}

#[test]
fn connect_time_mfa_holds_psql_until_verified_from_the_cli() {
    let pg = fresh_database("mfa_connect");
    let clock = TestClock::new();
    let gw = Gateway::start_with_policy(
        pg,
        "mfa_connect",
        &clock.config(""),
        Some(CONNECT_MFA_POLICY),
    );
    let secret = enroll(&gw, "alice");
    let status = gw.cli(&["mfa", "status", "alice"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("never"));

    // psql connects; the gateway holds the login and tells the user what to run.
    let env = gw.pg_env("alice", ALICE_PASSWORD);
    let psql = std::thread::spawn(move || {
        Command::new("psql")
            .args(["-X", "-At", "-c", "SELECT 'through the gate'"])
            .envs(env)
            .output()
            .expect("run psql")
    });
    wait_for_holds(&gw, 1);
    assert!(
        !psql.is_finished(),
        "psql must wait while the login is held"
    );

    // A wrong code is refused, clearly, and audited; the login stays held.
    let code = code_now(&secret, &clock);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let (ok, said) = verify(&gw, "alice", &wrong);
    assert!(!ok && said.contains("wrong code for alice"), "{said}");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !psql.is_finished(),
        "a wrong code must not release the login"
    );

    let (ok, said) = verify(&gw, "alice", &code);
    assert!(ok, "{said}");
    let out = psql.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "through the gate");
    // libpq shows a notice sent after AuthenticationOk and before ReadyForQuery.
    assert!(
        stderr.contains("run: portcullis mfa verify --user alice <code>")
            && stderr.contains("MFA required by permit `alice-mfa`: production data"),
        "{stderr}"
    );

    // The same code again is a replay.
    let (ok, said) = verify(&gw, "alice", &code);
    assert!(!ok && said.contains("already used"), "{said}");

    // Within the validity and active: the next login goes straight through.
    let (stdout, stderr, ok) = common::psql(&gw, "alice", ALICE_PASSWORD, &["-c", "SELECT 2"]);
    assert!(
        ok && stdout.trim() == "2" && !stderr.contains("portcullis mfa"),
        "{stderr}"
    );

    let events = mfa_events(&gw);
    assert_eq!(count(&events, "enroll", "ok"), 1, "{events:?}");
    assert_eq!(count(&events, "verify", "wrong code"), 1, "{events:?}");
    assert_eq!(count(&events, "verify", "replayed code"), 1, "{events:?}");
    assert_eq!(count(&events, "verify", "ok"), 1, "{events:?}");
    assert_eq!(count(&events, "hold", "waiting"), 1, "{events:?}");
    assert_eq!(count(&events, "resume", "ok"), 1, "{events:?}");
    let resume = events.iter().find(|e| e["action"] == "resume").unwrap();
    assert!(
        resume["detail"]
            .as_str()
            .is_some_and(|d| d.contains("post-connection") && d.contains("verification at")),
        "{resume}"
    );
    // The policy monitor records the allowed connection with its MFA requirement met.
    let decisions = gw.monitor(&["--stage", "post-connection", "--user", "alice"]);
    let newest = &decisions[0];
    assert_eq!(newest["policy"]["result"], "allow", "{newest}");
    assert_eq!(newest["policy"]["requirements"][0]["kind"], "mfa");
    assert_eq!(newest["policy"]["requirements"][0]["met"], true);
    // Bob needs no MFA.
    let (_, _, ok) = common::psql(&gw, "bob", BOB_PASSWORD, &["-c", "SELECT 1"]);
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_step_up_with_validity_and_idle_reprompt() {
    let pg = fresh_database("mfa_step_up");
    let mut clock = TestClock::new();
    let gw = Gateway::start_with_policy(pg, "mfa_step_up", &clock.config(""), Some(STEP_UP_POLICY));
    hr_fixtures(&gw).await;
    let secret = enroll(&gw, "alice");
    let (alice, mut notices) = connect_with_notices(&gw, "alice", ALICE_PASSWORD).await;
    let alice = std::sync::Arc::new(alice);

    // Statements that need no MFA run at once.
    alice.simple_query("SELECT 1").await.unwrap();

    // Reading hr is held until alice verifies; nothing else runs meanwhile.
    let held = {
        let alice = std::sync::Arc::clone(&alice);
        tokio::spawn(async move { alice.simple_query("SELECT count(*) FROM hr.people").await })
    };
    let gw_ref = &gw;
    tokio::task::block_in_place(|| wait_for_holds(gw_ref, 1));
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("a notice while held")
        .unwrap();
    assert!(
        notice.contains("portcullis holds this statement")
            && notice.contains("MFA required by permit `hr-mfa`")
            && notice.contains("run: portcullis mfa verify --user alice <code>"),
        "{notice}"
    );
    assert!(!held.is_finished());
    let (ok, said) =
        tokio::task::block_in_place(|| verify(&gw, "alice", &code_now(&secret, &clock)));
    assert!(ok, "{said}");
    let rows = held
        .await
        .unwrap()
        .expect("the held statement runs once verified");
    assert_eq!(single_value(&rows), "2");

    // Active and within the validity: no new prompt, across sessions too.
    alice
        .simple_query("SELECT name FROM hr.people")
        .await
        .unwrap();
    let other = gw.connect("alice", ALICE_PASSWORD).await;
    other.simple_query("SELECT 1 FROM hr.people").await.unwrap();

    // A minute idle on the resource: prompted again.
    clock.advance(61);
    let held = {
        let alice = std::sync::Arc::clone(&alice);
        tokio::spawn(async move { alice.simple_query("SELECT count(*) FROM hr.people").await })
    };
    tokio::task::block_in_place(|| wait_for_holds(gw_ref, 2));
    assert!(!held.is_finished());
    let (ok, said) =
        tokio::task::block_in_place(|| verify(&gw, "alice", &code_now(&secret, &clock)));
    assert!(ok, "{said}");
    held.await
        .unwrap()
        .expect("runs after the second verification");

    // Active every 50 seconds: the verification counts for 5 minutes, then prompts again.
    for _ in 0..5 {
        clock.advance(50);
        alice
            .simple_query("SELECT count(*) FROM hr.people")
            .await
            .expect("still within the validity");
    }
    assert_eq!(count(&mfa_events(&gw), "hold", "waiting"), 2);
    clock.advance(50);
    let held = {
        let alice = std::sync::Arc::clone(&alice);
        tokio::spawn(async move { alice.simple_query("SELECT count(*) FROM hr.people").await })
    };
    tokio::task::block_in_place(|| wait_for_holds(gw_ref, 3));
    let (ok, said) =
        tokio::task::block_in_place(|| verify(&gw, "alice", &code_now(&secret, &clock)));
    assert!(ok, "{said}");
    held.await
        .unwrap()
        .expect("runs after the third verification");

    // The extended protocol is held the same way (a prepared statement after a minute idle).
    clock.advance(61);
    let held = {
        let alice = std::sync::Arc::clone(&alice);
        tokio::spawn(async move {
            alice
                .query("SELECT name FROM hr.people WHERE id = $1", &[&1i32])
                .await
        })
    };
    tokio::task::block_in_place(|| wait_for_holds(gw_ref, 4));
    let (ok, said) =
        tokio::task::block_in_place(|| verify(&gw, "alice", &code_now(&secret, &clock)));
    assert!(ok, "{said}");
    let rows = held.await.unwrap().expect("the prepared statement runs");
    assert_eq!(rows[0].get::<_, String>(0), "ann");

    let events = mfa_events(&gw);
    assert_eq!(count(&events, "resume", "ok"), 4, "{events:?}");
    let records = gw.monitor(&["--stage", "statement", "--rule", "hr-mfa"]);
    assert!(
        records
            .iter()
            .all(|r| r["policy"]["requirements"][0]["met"] == true
                && r["policy"]["result"] == "allow")
    );
}

/// A CancelRequest (psql's Ctrl-C) ends a statement held for MFA at once, as PostgreSQL ends a
/// cancelled query, instead of leaving the client waiting out the hold; the session goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_ends_a_statement_held_for_mfa() {
    let pg = fresh_database("mfa_cancel");
    let clock = TestClock::new();
    let gw = Gateway::start_with_policy(pg, "mfa_cancel", &clock.config(""), Some(STEP_UP_POLICY));
    hr_fixtures(&gw).await;
    enroll(&gw, "alice");
    let alice = std::sync::Arc::new(gw.connect("alice", ALICE_PASSWORD).await);
    let held = {
        let alice = std::sync::Arc::clone(&alice);
        tokio::spawn(async move { alice.simple_query("SELECT count(*) FROM hr.people").await })
    };
    let gw_ref = &gw;
    tokio::task::block_in_place(|| wait_for_holds(gw_ref, 1));
    alice
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("the cancel request is sent");
    let err = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the hold ends well before its timeout")
        .unwrap()
        .expect_err("the held statement is cancelled");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");

    alice
        .simple_query("SELECT 1")
        .await
        .expect("the session goes on");
    let events = mfa_events(&gw);
    assert_eq!(count(&events, "cancel", "cancelled"), 1, "{events:?}");
    let records = gw.statements(&["--text", "SELECT count(*) FROM hr.people"]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "cancelled");
    assert_eq!(records[0]["sqlstate"], "57014");
    assert_eq!(records[0]["policy"]["requirements"][0]["met"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_time_out_and_unenrolled_users_are_told_how_to_enrol() {
    let pg = fresh_database("mfa_timeout");
    let clock = TestClock::new();
    let gw = Gateway::start_with_policy(
        pg,
        "mfa_timeout",
        &clock.config("mfa:\n  hold_timeout_secs: 2\n"),
        Some(STEP_UP_POLICY),
    );
    hr_fixtures(&gw).await;
    enroll(&gw, "alice");
    enroll(&gw, "bob");

    // A statement nobody verifies for fails after the hold timeout, saying what to run.
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let started = Instant::now();
    let (code, message) = denial(alice.simple_query("SELECT * FROM hr.people").await);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(code, "42501");
    assert!(
        message.contains("MFA was not completed within 2 seconds")
            && message.contains("run: portcullis mfa verify --user alice <code>"),
        "{message}"
    );
    // The session goes on.
    alice.simple_query("SELECT 1").await.unwrap();

    // A login nobody verifies for fails the same way.
    let err = tokio_postgres::connect(&gw.conn_str("bob", BOB_PASSWORD), tokio_postgres::NoTls)
        .await
        .err()
        .expect("bob's login should time out");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "28000");
    assert!(
        db.message()
            .contains("MFA was not completed within 2 seconds")
            && db
                .message()
                .contains("portcullis mfa verify --user bob <code>"),
        "{}",
        db.message()
    );
    let events = mfa_events(&gw);
    assert_eq!(count(&events, "timeout", "timed out"), 2, "{events:?}");

    // Not enrolled (after a reset): refused at once, saying how to enrol.
    gw.cli(&["mfa", "reset", "alice"]);
    gw.cli(&["mfa", "reset", "bob"]);
    let (ok, said) = verify(&gw, "alice", "123456");
    assert!(!ok && said.contains("not enrolled"), "{said}");
    let started = Instant::now();
    let (code, message) = denial(alice.simple_query("SELECT * FROM hr.people").await);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(code, "42501");
    assert!(
        message.contains("alice\" is not enrolled in MFA")
            && message.contains("`portcullis mfa enroll alice`"),
        "{message}"
    );
    let err = tokio_postgres::connect(&gw.conn_str("bob", BOB_PASSWORD), tokio_postgres::NoTls)
        .await
        .err()
        .expect("bob's login should be refused");
    let message = err
        .as_db_error()
        .expect("a database error")
        .message()
        .to_string();
    assert!(message.contains("portcullis mfa enroll bob"), "{message}");
    let status = gw.try_cli(&["mfa", "status", "alice"]);
    assert!(!status.status.success());
    let events = mfa_events(&gw);
    assert_eq!(count(&events, "refuse", "not enrolled"), 2, "{events:?}");
    assert_eq!(count(&events, "reset", "ok"), 2, "{events:?}");
}

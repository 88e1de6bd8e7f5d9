//! Reservations, request timeouts and escalation, and connection-stage approval end to end: a resource
//! that needs a reservation refuses connections outside an approved window (saying how to reserve),
//! sessions in a window are told before it closes and ended when it does; undecided requests are
//! rejected or expire on their workflow's timeout, and escalate; a post-connection `require-approval`
//! rule files a request that lets the user connect once approved, for `valid_for`. Real gateway
//! process, real PostgreSQL, the real CLI; time moves through the testing clock offset file.

mod common;

use std::time::{Duration, Instant};

use common::workflows::{as_user, fails, held_request, ok, request, workflow_actions};
use common::{
    connect_with_notices, connection_of, fresh_database, Gateway, TestClock, ALICE_PASSWORD,
    ALLOW_ALL_POLICY, BOB_PASSWORD,
};
use serde_json::Value;

const CAROL_PASSWORD: &str = "carol-pw";
const DAVE_PASSWORD: &str = "dave-pw";
const ERIN_PASSWORD: &str = "erin-pw";

/// Starts a gateway on `clock` with `GRANTS` and `extra`, and creates the approvers.
fn start(db: &str, clock: &TestClock, extra: &str) -> Gateway {
    let pg = fresh_database(db);
    let gw = Gateway::start_with_policy(
        pg,
        db,
        &clock.config(""),
        Some(&format!("{ALLOW_ALL_POLICY}{extra}")),
    );
    for (user, password) in [
        ("carol", CAROL_PASSWORD),
        ("dave", DAVE_PASSWORD),
        ("erin", ERIN_PASSWORD),
    ] {
        gw.cli_with_password(&["user", "add", user, "--password-stdin"], password);
    }
    gw
}

/// The SQLSTATE and message a refused connection gets.
async fn refused_connection(gw: &Gateway, user: &str, password: &str) -> (String, String) {
    let err = tokio_postgres::connect(&gw.conn_str(user, password), tokio_postgres::NoTls)
        .await
        .err()
        .unwrap_or_else(|| panic!("{user}'s connection should have been refused"));
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {err:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// `portcullis reserve` as `user`: the new request's number.
fn reserve(gw: &Gateway, user: &str, password: &str, from: &str, until: &str) -> String {
    let out = ok(as_user(
        gw,
        user,
        password,
        &[
            "reserve",
            "--resource",
            "app",
            "--from",
            from,
            "--until",
            until,
            "--reason",
            "release 4.2",
            "--json",
        ],
    ));
    let request: Value = serde_json::from_str(out.trim()).expect("reserve --json");
    assert_eq!(request["kind"], "reservation", "{request}");
    request["id"].as_i64().expect("request id").to_string()
}

fn decide(gw: &Gateway, verb: &str, id: &str, user: &str, password: &str) -> std::process::Output {
    as_user(gw, user, password, &[verb, id])
}

/// Waits (in real time) until `check` holds; the gateway polls its clock once a second.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const RESERVED: &str = "workflows:
  - {name: change-board, approvers: {users: [carol, dave]}, required: 2}
reservations:
  - {resource: app, workflow: change-board, notice_before: 5m, max_window: 8h, users: [alice]}
";

#[tokio::test(flavor = "multi_thread")]
async fn a_reserved_resource_is_open_only_inside_an_approved_window() {
    let mut clock = TestClock::new();
    let gw = start("rsv_window", &clock, RESERVED);

    let (code, message) = refused_connection(&gw, "alice", ALICE_PASSWORD).await;
    assert_eq!(code, "28000", "{message}");
    assert!(
        message.contains("resource app requires a reservation")
            && message.contains("portcullis reserve --resource app --from now --until +1h")
            && message.contains("--as alice"),
        "{message}"
    );
    // Bob is not among the entry's users: he connects as usual.
    gw.connect("bob", BOB_PASSWORD).await;
    let denials = gw.monitor(&[
        "--stage",
        "post-connection",
        "--user",
        "alice",
        "--result",
        "deny",
    ]);
    assert!(
        denials[0]["policy"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("requires a reservation")),
        "{denials:?}"
    );

    let e = fails(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &[
            "reserve",
            "--resource",
            "app",
            "--until",
            "+9h",
            "--reason",
            "all day",
        ],
    ));
    assert!(e.contains("at most 28800s"), "{e}");
    let id = reserve(&gw, "alice", ALICE_PASSWORD, "+1h", "+3h");
    let e = fails(decide(&gw, "approve", &id, "alice", ALICE_PASSWORD));
    assert!(e.contains("cannot endorse your own request"), "{e}");
    let out = ok(decide(&gw, "approve", &id, "carol", CAROL_PASSWORD));
    assert!(out.contains("1 of 2 approvals"), "{out}");
    let out = ok(decide(&gw, "approve", &id, "dave", DAVE_PASSWORD));
    assert!(out.contains(&format!("request {id} approved")), "{out}");
    assert_eq!(request(&gw, &id)["status"], "approved");

    // Approved, but the window opens in an hour.
    let (_, message) = refused_connection(&gw, "alice", ALICE_PASSWORD).await;
    assert!(message.contains("requires a reservation"), "{message}");

    clock.advance(3600);
    let (alice, mut notices) = connect_with_notices(&gw, "alice", ALICE_PASSWORD).await;
    alice
        .simple_query("SELECT 1")
        .await
        .expect("inside the window");

    // Four minutes before the window closes: a notice (notice_before is 5m), the session goes on.
    clock.advance(2 * 3600 - 240);
    let notice = tokio::time::timeout(Duration::from_secs(10), notices.recv())
        .await
        .expect("a notice before the window closes")
        .expect("notice");
    assert!(
        notice.contains(&format!("reservation {id} closes")),
        "{notice}"
    );
    alice.simple_query("SELECT 1").await.expect("still inside");

    clock.advance(240);
    tokio::task::block_in_place(|| {
        eventually("the session to end with the window", || {
            gw.audit(&["--kind", "connections", "--user", "alice"])
                .iter()
                .map(connection_of)
                .any(|c| {
                    c["phase"] == "close"
                        && c["auth_result"]
                            .as_str()
                            .is_some_and(|r| r.contains(&format!("reservation {id} closed")))
                })
        })
    });
    assert!(alice.simple_query("SELECT 1").await.is_err());
    let (_, message) = refused_connection(&gw, "alice", ALICE_PASSWORD).await;
    assert!(message.contains("requires a reservation"), "{message}");
    assert_eq!(
        workflow_actions(&gw, &id),
        ["requested", "endorsed", "endorsed", "approved", "used"]
    );
}

const TIMEOUTS: &str = "workflows:
  - name: strict
    approvers: {users: [carol, dave]}
    expire_after: 2h
    on_timeout: reject
    escalate_after: 1h
    escalate_to: {users: [erin]}
  - {name: lax, approvers: {users: [carol]}, expire_after: 2h}
reservations:
  - {resource: app, workflow: strict, users: [alice]}
  - {resource: app, workflow: lax, users: [bob]}
";

#[tokio::test(flavor = "multi_thread")]
async fn rejections_are_final_timeouts_reject_or_expire_and_escalation_waits() {
    let mut clock = TestClock::new();
    let gw = start("rsv_timeouts", &clock, TIMEOUTS);

    let rejected = reserve(&gw, "alice", ALICE_PASSWORD, "now", "+4h");
    ok(decide(&gw, "reject", &rejected, "carol", CAROL_PASSWORD));
    let e = fails(decide(&gw, "approve", &rejected, "dave", DAVE_PASSWORD));
    assert!(e.contains("is rejected; its decision is final"), "{e}");
    let (_, message) = refused_connection(&gw, "alice", ALICE_PASSWORD).await;
    assert!(message.contains("requires a reservation"), "{message}");

    let escalated = reserve(&gw, "alice", ALICE_PASSWORD, "now", "+4h");
    let timed_out = reserve(&gw, "alice", ALICE_PASSWORD, "now", "+4h");
    let expired = reserve(&gw, "bob", BOB_PASSWORD, "now", "+4h");
    // Erin is an escalation approver: not before an hour has passed.
    let e = fails(decide(&gw, "approve", &escalated, "erin", ERIN_PASSWORD));
    assert!(e.contains("once pending for 3600s also erin"), "{e}");
    clock.advance(3600);
    ok(decide(&gw, "approve", &escalated, "erin", ERIN_PASSWORD));
    assert_eq!(request(&gw, &escalated)["status"], "approved");
    gw.connect("alice", ALICE_PASSWORD).await;

    clock.advance(3600);
    // The gateway times requests out on its own; the CLI listing does too.
    tokio::task::block_in_place(|| {
        eventually("the timeouts", || {
            request(&gw, &timed_out)["status"] == "rejected"
        })
    });
    assert_eq!(request(&gw, &expired)["status"], "expired");
    assert_eq!(
        workflow_actions(&gw, &escalated),
        ["requested", "escalated", "endorsed", "approved", "used"]
    );
    assert_eq!(
        workflow_actions(&gw, &timed_out),
        ["requested", "escalated", "rejected"]
    );
    assert_eq!(workflow_actions(&gw, &expired), ["requested", "expired"]);
    let system: Vec<Value> = gw
        .audit(&["--kind", "workflows"])
        .into_iter()
        .filter(|r| r["action"] == "rejected" && r["request_id"].as_i64() == timed_out.parse().ok())
        .collect();
    assert_eq!(system[0]["user"], "portcullis", "{system:?}");
}

const CONNECT_APPROVAL: &str = "workflows:
  - {name: dba, approvers: {users: [carol]}, valid_for: 1h}
rules:
  - id: alice-logins
    stage: post-connection
    when: {users: [alice]}
    action: require-approval
    workflow: dba
    message: production logins are reviewed
";

/// The request number in a "holds the connection for approval" refusal.
async fn held_connection(gw: &Gateway) -> String {
    let (code, message) = refused_connection(gw, "alice", ALICE_PASSWORD).await;
    assert_eq!(code, "28000", "{message}");
    assert!(
        message.contains("production logins are reviewed"),
        "{message}"
    );
    held_request(&message, "connection")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_connection_request_lets_the_user_in_for_valid_for() {
    let mut clock = TestClock::new();
    let gw = start("rsv_connect", &clock, CONNECT_APPROVAL);

    let id = held_connection(&gw).await;
    // Trying again before anyone decides reuses the request.
    assert_eq!(held_connection(&gw).await, id);
    assert_eq!(request(&gw, &id)["kind"], "connection");
    let held = gw.monitor(&["--stage", "post-connection", "--user", "alice"]);
    assert_eq!(held[0]["policy"]["result"], "require-approval", "{held:?}");

    ok(decide(&gw, "approve", &id, "carol", CAROL_PASSWORD));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice.simple_query("SELECT 1").await.expect("approved");
    gw.connect("bob", BOB_PASSWORD).await;

    clock.advance(3600);
    let again = held_connection(&gw).await;
    assert_ne!(again, id);
    assert_eq!(
        workflow_actions(&gw, &id),
        ["requested", "endorsed", "approved", "used"]
    );
}

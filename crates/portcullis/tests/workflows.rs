//! Approval flows end to end: statements held for approval and approved, rejected, expiring; N-of-M;
//! self-approval and non-approvers refused; on-demand access granted, used from an open session and cut
//! at its end; pending requests expiring. Real gateway process, real PostgreSQL, the real CLI.

mod common;

use std::time::Duration;

use common::workflows::{as_user, fails, held, ok, refused, request, workflow_actions};
use common::{fresh_database, Gateway, ALICE_PASSWORD, BOB_PASSWORD};

const CAROL_PASSWORD: &str = "carol-pw";
const DAVE_PASSWORD: &str = "dave-pw";

/// Creates the approvers carol and dave, and a table alice may delete from.
async fn setup(gw: &Gateway) {
    gw.cli_with_password(
        &["user", "add", "carol", "--password-stdin"],
        CAROL_PASSWORD,
    );
    gw.cli_with_password(&["user", "add", "dave", "--password-stdin"], DAVE_PASSWORD);
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE TABLE public.t(id int primary key, v text);
             INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g;
             CREATE SCHEMA hr;
             CREATE TABLE hr.employees(id int, name text);
             INSERT INTO hr.employees VALUES (1, 'ann'), (2, 'ben');",
        )
        .await
        .expect("fixtures");
}

/// A policy where alice and bob may do anything, deletes need `workflow`'s approval, and `extra` YAML
/// follows (the workflows).
fn deletes_need(workflow: &str, extra: &str) -> String {
    format!(
        "grants:
  - to: {{user: alice}}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {{user: bob}}
    resource: app
    objects: ['*']
    privileges: [all]
rules:
  - id: deletes-need-approval
    when: {{statement_kinds: [DELETE]}}
    action: require-approval
    workflow: {workflow}
    message: deletes are reviewed
{extra}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_statement_runs_once_approved_only_as_written_and_until_the_approval_expires() {
    let pg = fresh_database("wf_query");
    let gw = Gateway::start(pg, "wf_query");
    setup(&gw).await;
    gw.apply_policy_live(&deletes_need(
        "dba",
        "workflows:\n  - {name: dba, approvers: {users: [carol]}, valid_for: 3s}\n",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let delete_1 = "DELETE FROM t WHERE id = 1";
    let id = held(&alice, delete_1).await;
    // Running it again before anyone decides reuses the request.
    assert_eq!(held(&alice, delete_1).await, id);
    let r = request(&gw, &id);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["kind"], "query");
    assert_eq!(r["query"]["text"], delete_1);
    assert!(
        r["query"]["summary"]
            .as_str()
            .unwrap()
            .contains("delete public.t"),
        "{r}"
    );

    // The requester cannot approve it, nor can someone who is not an approver.
    let e = fails(as_user(&gw, "alice", ALICE_PASSWORD, &["approve", &id]));
    assert!(e.contains("cannot endorse your own request"), "{e}");
    let e = fails(as_user(&gw, "bob", BOB_PASSWORD, &["approve", &id]));
    assert!(
        e.contains("bob is not an approver of workflow `dba`"),
        "{e}"
    );
    let e = fails(as_user(&gw, "carol", "wrong", &["approve", &id]));
    assert!(e.contains("cannot act as carol"), "{e}");
    let inbox = ok(as_user(&gw, "carol", CAROL_PASSWORD, &["inbox"]));
    assert!(inbox.contains(delete_1), "{inbox}");

    let out = ok(as_user(
        &gw,
        "carol",
        CAROL_PASSWORD,
        &["approve", &id, "--comment", "ok"],
    ));
    assert!(out.contains(&format!("request {id} approved")), "{out}");
    let done = alice
        .simple_query(delete_1)
        .await
        .expect("approved statement runs");
    assert!(!done.is_empty());
    // Another constant is another statement: still held, as its own request.
    let other = held(&alice, "DELETE FROM t WHERE id = 2").await;
    assert_ne!(other, id);
    // Bob running alice's approved text is not alice.
    held(&bob_client(&gw).await, delete_1).await;

    // After valid_for the approval no longer counts.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let again = held(&alice, delete_1).await;
    assert_ne!(again, id);
    assert_eq!(
        workflow_actions(&gw, &id),
        ["requested", "endorsed", "approved", "used"]
    );
}

async fn bob_client(gw: &Gateway) -> tokio_postgres::Client {
    gw.connect("bob", BOB_PASSWORD).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_three_approve_and_one_rejection_is_final() {
    let pg = fresh_database("wf_nofm");
    let gw = Gateway::start(pg, "wf_nofm");
    setup(&gw).await;
    gw.cli(&["role", "add", "managers"]);
    gw.cli(&["role", "grant", "managers", "bob"]);
    gw.apply_policy_live(&deletes_need(
        "mgmt",
        "workflows:\n  - {name: mgmt, approvers: {users: [carol, dave], roles: [managers]}, required: 2}\n",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let sql = "DELETE FROM t WHERE id = 3";
    let id = held(&alice, sql).await;
    let out = ok(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &id]));
    assert!(out.contains("1 of 2 approvals"), "{out}");
    let e = fails(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &id]));
    assert!(e.contains("already endorsed"), "{e}");
    // One approval is not enough.
    assert_eq!(held(&alice, sql).await, id);
    // Bob approves as a member of managers.
    let out = ok(as_user(&gw, "bob", BOB_PASSWORD, &["approve", &id]));
    assert!(out.contains("approved"), "{out}");
    alice.simple_query(sql).await.expect("approved by two");

    let sql = "DELETE FROM t WHERE id = 4";
    let id = held(&alice, sql).await;
    let out = ok(as_user(
        &gw,
        "dave",
        DAVE_PASSWORD,
        &["reject", &id, "--comment", "no"],
    ));
    assert!(out.contains("rejected"), "{out}");
    let e = fails(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &id]));
    assert!(e.contains("is rejected; its decision is final"), "{e}");
    // The statement stays held: running it again asks anew.
    assert_ne!(held(&alice, sql).await, id);
    assert_eq!(request(&gw, &id)["status"], "rejected");
    assert_eq!(
        workflow_actions(&gw, &id),
        ["requested", "endorsed", "rejected"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_access_request_grants_until_its_end_even_in_an_open_session() {
    let pg = fresh_database("wf_access");
    let gw = Gateway::start(pg, "wf_access");
    setup(&gw).await;
    gw.apply_policy_live(
        "grants:
  - to: {user: alice}
    resource: app
    objects: [public.t]
    privileges: [select]
workflows:
  - {name: hr-owners, approvers: {users: [carol]}}
on_demand:
  - name: hr-read
    resource: app
    grants: [{objects: ['hr.*'], privileges: [select]}]
    workflow: hr-owners
    max_duration: 1h
  - name: app-any
    resource: app
    workflow: hr-owners
    max_duration: 1h
",
    );
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let (code, message) = refused(&alice, "SELECT * FROM hr.employees").await;
    assert_eq!(code, "42501");
    assert!(
        message.contains("alice lacks SELECT on hr.employees"),
        "{message}"
    );

    let e = fails(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &[
            "request", "access", "--bundle", "hr-read", "--for", "2h", "--reason", "report",
        ],
    ));
    assert!(e.contains("at most 3600s"), "{e}");
    let out = ok(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &[
            "request", "access", "--bundle", "hr-read", "--for", "5s", "--reason", "report",
        ],
    ));
    let id = out
        .split_whitespace()
        .nth(1)
        .expect("request id")
        .to_string();
    let mine = ok(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &["requests", "--mine"],
    ));
    assert!(mine.contains("bundle hr-read"), "{mine}");
    ok(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &id]));
    // The gateway adds the grant within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = alice
        .simple_query("SELECT * FROM hr.employees")
        .await
        .expect("granted on demand");
    assert_eq!(
        rows.iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count(),
        2
    );
    // A request naming objects and privileges on a resource works the same way.
    let out = ok(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &[
            "request",
            "access",
            "--resource",
            "app",
            "--objects",
            "public.t",
            "--privileges",
            "update",
            "--for",
            "1h",
            "--reason",
            "fix",
        ],
    ));
    let named = out
        .split_whitespace()
        .nth(1)
        .expect("request id")
        .to_string();
    ok(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &named]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    alice
        .simple_query("UPDATE t SET v = 'x' WHERE id = 5")
        .await
        .expect("update granted on demand");

    // At the end of the grant the open session loses it at its next statement.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (code, message) = refused(&alice, "SELECT * FROM hr.employees").await;
    assert_eq!(code, "42501");
    assert!(
        message.contains("alice lacks SELECT on hr.employees"),
        "{message}"
    );
    assert_eq!(
        workflow_actions(&gw, &id),
        ["requested", "endorsed", "approved"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_nobody_decides_expires() {
    let pg = fresh_database("wf_expire");
    let gw = Gateway::start(pg, "wf_expire");
    setup(&gw).await;
    gw.apply_policy_live(&deletes_need(
        "dba",
        "workflows:\n  - {name: dba, approvers: {users: [carol]}, expire_after: 2s}\n",
    ));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let id = held(&alice, "DELETE FROM t WHERE id = 6").await;
    assert_eq!(request(&gw, &id)["status"], "pending");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(request(&gw, &id)["status"], "expired");
    let e = fails(as_user(&gw, "carol", CAROL_PASSWORD, &["approve", &id]));
    assert!(e.contains("is expired"), "{e}");
    let inbox = ok(as_user(&gw, "carol", CAROL_PASSWORD, &["inbox"]));
    assert!(!inbox.contains("DELETE FROM t WHERE id = 6"), "{inbox}");
    assert_eq!(workflow_actions(&gw, &id), ["requested", "expired"]);
    // The table lists the audit steps too.
    let table =
        String::from_utf8_lossy(&gw.cli(&["audit", "--kind", "workflows"]).stdout).into_owned();
    assert!(
        table.contains(&format!("request {id}")) && table.contains("expired"),
        "{table}"
    );
}

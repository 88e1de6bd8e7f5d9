//! `portcullis policy check`, `explain`, `test` and `what-if`, run as the built binary against the example
//! policy (and, for `what-if`, against the audit log of a real gateway).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fresh_database, Gateway, ALICE_PASSWORD, BOB_PASSWORD};

const CTAS: &str = "CREATE TABLE x AS SELECT e.name, d.name AS dept FROM hr.employees e \
                    JOIN hr.departments d ON e.dept_id = d.id";

fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.yaml")
}

fn example_cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy-cases.yaml")
}

fn portcullis(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_DATA_DIR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn explain_json(extra: &[&str], sql: &str) -> serde_json::Value {
    let policy = example_policy();
    let mut args = vec!["policy", "explain", "-f", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--at", "2026-01-05T10:00:00Z", "--json", sql]);
    let out = portcullis(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn check_accepts_the_example_policy() {
    let policy = example_policy();
    let out = portcullis(&["policy", "check", "-f", policy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with(": ok (2 grants, 6 rules, 1 Cedar policies)\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_reports_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "rules:\n  - id: a\n    action: audit\n  - id: b\n    action: explode\n",
    )
    .unwrap();
    let out = portcullis(&["policy", "check", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let expected = format!("{}:5:", file.display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("explode"), "{err}");
    // explain refuses to run with a broken policy
    let out = portcullis(&[
        "policy",
        "explain",
        "-f",
        file.to_str().unwrap(),
        "--user",
        "alice",
        "--resource",
        "demo",
        "SELECT 1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn explain_seed_004_ctas_fires_three_rules() {
    let report = explain_json(&["--user", "alice", "--resource", "demo"], CTAS);
    let stmt = &report["statements"][0];
    assert_eq!(stmt["verdict"], "allow", "{stmt}");
    let fired: Vec<&str> = stmt["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        ["1st_EmployeesTable", "2nd_auditHRschema", "QueryTypes"]
    );
    let rules: Vec<(String, serde_json::Value)> = stmt["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let what = c["object"].as_str().unwrap_or(c["kind"].as_str().unwrap());
            (what.to_owned(), c["rule"]["id"].clone())
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("alice.x".to_owned(), serde_json::Value::Null),
            ("hr.employees".to_owned(), "1st_EmployeesTable".into()),
            ("hr.departments".to_owned(), "2nd_auditHRschema".into()),
            ("CREATE TABLE AS".to_owned(), "QueryTypes".into()),
        ]
    );

    // The text form says the same.
    let policy = example_policy();
    let out = portcullis(&[
        "policy",
        "explain",
        "-f",
        policy.to_str().unwrap(),
        "--user",
        "alice",
        "--resource",
        "demo",
        CTAS,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("fired rules: 3"), "{text}");
    assert!(text.contains("verdict: allow"), "{text}");
    for line in [
        "hr.employees    read       1st_EmployeesTable",
        "hr.departments  read       2nd_auditHRschema",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[test]
fn explain_shows_a_missing_grant_as_a_denial() {
    let report = explain_json(
        &["--user", "bob", "--role", "analysts", "--resource", "demo"],
        "SELECT * FROM hr.employees; DELETE FROM hr.employees",
    );
    let select = &report["statements"][0];
    assert_eq!(select["verdict"], "allow", "{select}");
    let delete = &report["statements"][1];
    assert_eq!(delete["verdict"], "deny", "{delete}");
    assert_eq!(
        delete["missing_grants"][0]["message"],
        "bob lacks DELETE on hr.employees in demo"
    );
    // Without the role nothing is granted.
    let report = explain_json(
        &["--user", "bob", "--resource", "demo"],
        "SELECT * FROM hr.employees",
    );
    assert_eq!(report["statements"][0]["verdict"], "deny");
}

#[test]
fn explain_shows_which_masks_apply() {
    let protection = |report: &serde_json::Value, id: &str| {
        report["protections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {report}"))
    };
    let bob = explain_json(
        &["--user", "bob", "--role", "analysts", "--resource", "demo"],
        "SELECT ssn FROM hr.employees",
    );
    assert_eq!(protection(&bob, "mask-ssn")["applies"], true);
    let alice = explain_json(
        &["--user", "alice", "--resource", "demo"],
        "SELECT ssn FROM hr.employees",
    );
    let exempt = protection(&alice, "mask-ssn");
    assert_eq!(exempt["applies"], false);
    assert_eq!(exempt["why"], "exempt: user alice");
}

#[test]
fn explain_shows_opaque_and_unparsable_statements_as_denied() {
    let report = explain_json(
        &["--user", "alice", "--resource", "demo"],
        "DO $$ BEGIN PERFORM 1; END $$",
    );
    let stmt = &report["statements"][0];
    assert_eq!(stmt["verdict"], "deny", "{stmt}");
    assert!(stmt["opaque"].as_str().unwrap().contains("DO"), "{stmt}");
    assert!(
        stmt["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be fully analysed"),
        "{stmt}"
    );

    let report = explain_json(&["--user", "alice", "--resource", "demo"], "SELEC 1");
    let stmt = &report["statements"][0];
    assert_eq!(stmt["verdict"], "deny", "{stmt}");
    assert!(
        stmt["error"].as_str().unwrap().contains("syntax error"),
        "{stmt}"
    );
}

#[test]
fn explain_rejects_bad_flags() {
    let policy = example_policy();
    for bad in [
        ["--location", "Germany"],
        ["--device-trust", "paranoid"],
        ["--at", "yesterday"],
    ] {
        let mut args = vec![
            "policy",
            "explain",
            "-f",
            policy.to_str().unwrap(),
            "--user",
            "alice",
            "--resource",
            "demo",
        ];
        args.extend_from_slice(&bad);
        args.push("SELECT 1");
        let out = portcullis(&args);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(stderr(&out).contains(bad[0]), "{}", stderr(&out));
    }
}

#[test]
fn explain_shows_cedar_requirements_and_what_meets_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cedar.yaml");
    std::fs::write(
        &file,
        r#"grants: []
cedar: |
  @id("dev-prod")
  @mfa
  @justification("Why are you performing this action?")
  permit(principal in Role::"developers", action, resource in Resource::"prod");
"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "explain",
            "-f",
            file.to_str().unwrap(),
            "--user",
            "dana",
            "--role",
            "developers",
            "--resource",
            "prod",
            "--json",
        ];
        args.extend_from_slice(extra);
        args.push("SELECT * FROM public.orders");
        let out = portcullis(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["statements"][0].clone()
    };
    let missing = run(&[]);
    assert_eq!(missing["verdict"], "deny");
    assert_eq!(missing["policies"][0]["id"], "dev-prod");
    let reqs = missing["requirements"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r["met"] == false));
    assert!(missing["reason"].as_str().unwrap().contains(
        "justification required by permit `dev-prod`: Why are you performing this action?"
    ));
    // Both requirements met: the permit authorises its scope without a grant.
    let met = run(&["--mfa-verified", "--justification", "quarterly report"]);
    assert_eq!(met["verdict"], "allow", "{}", met["reason"]);
}

#[test]
fn explain_exit_code_follows_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.yaml");
    std::fs::write(
        &file,
        "grants:\n  - {to: {user: alice}, resource: demo, objects: ['*'], privileges: [all]}\n\
         rules:\n  - {id: hold-drops, when: {operations: [drop]}, action: require-approval, workflow: dba}\n\
         workflows:\n  - {name: dba, approvers: {users: [carol]}}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let explain = |user: &str, sql: &str, exit_code: bool| {
        let mut args = vec![
            "policy",
            "explain",
            "-f",
            file,
            "--user",
            user,
            "--resource",
            "demo",
        ];
        if exit_code {
            args.push("--exit-code");
        }
        args.push(sql);
        portcullis(&args)
    };
    let code = |o: &Output| o.status.code();
    assert_eq!(code(&explain("alice", "SELECT 1", true)), Some(0));
    let denied = explain("bob", "SELECT * FROM public.t", true);
    assert_eq!(code(&denied), Some(1), "{}", stderr(&denied));
    // The report is printed all the same, and nothing is reported as an error.
    assert!(
        stdout(&denied).contains("verdict: deny"),
        "{}",
        stdout(&denied)
    );
    assert!(stderr(&denied).is_empty(), "{}", stderr(&denied));
    assert_eq!(
        code(&explain("alice", "DROP TABLE public.t", true)),
        Some(2)
    );
    // Without the flag a denial is an answer, not a failure.
    assert_eq!(
        code(&explain("bob", "SELECT * FROM public.t", false)),
        Some(0)
    );
    // A broken policy is not a denial: a script asserting one must not pass.
    std::fs::write(file, "grants: [oops").unwrap();
    let broken = explain("bob", "SELECT * FROM public.t", true);
    assert_eq!(code(&broken), Some(3));
    assert!(stderr(&broken).contains(file), "{}", stderr(&broken));
}

#[test]
fn test_passes_the_example_cases() {
    let policy = example_policy();
    let cases = example_cases();
    let out = portcullis(&[
        "policy",
        "test",
        "-f",
        policy.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("14 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

fn write_cases(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("cases.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn test_reports_every_mismatch_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write_cases(
        dir.path(),
        "defaults: {resource: demo, at: 2026-01-05T10:00:00Z}
cases:
  - name: alice reads
    user: alice
    statement: SELECT name FROM hr.employees
    expect: allow
  - name: bob deletes
    user: bob
    roles: [analysts]
    statement: DELETE FROM hr.employees
    expect: allow
    masked: [hr.employees.ssn]
    fired: [no_such_rule]
  - user: alice
    statement: SELECT ssn FROM hr.employees
    expect: allow
    masked: [hr.employees.ssn]
",
    );
    let policy = example_policy();
    let run = |json: bool| {
        let mut args = vec![
            "policy",
            "test",
            "-f",
            policy.to_str().unwrap(),
            cases.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        portcullis(&args)
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 passed, 2 failed"), "{text}");
    // The wrong verdict: the case, where it is, the statement, what was expected and what came.
    let line = text
        .lines()
        .find(|l| l.contains("bob deletes") && l.contains("DELETE FROM hr.employees"))
        .unwrap_or_else(|| panic!("no mismatch row for bob in\n{text}"));
    assert!(line.contains("cases.yaml:7"), "{line}");
    assert!(line.contains("allow") && line.contains("deny"), "{line}");
    assert!(
        line.contains("bob lacks DELETE on hr.employees in demo"),
        "{line}"
    );
    assert!(text.contains("no_such_rule fired"), "{text}");
    // An unnamed case is named by its position; alice is exempt from the SSN mask.
    assert!(text.contains("case 3"), "{text}");
    assert!(text.contains("hr.employees.ssn masked"), "{text}");
    assert!(!text.contains("alice reads"), "{text}");

    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["passed"], 1);
    assert_eq!(summary["failed"], 2);
    let bob = &summary["cases"][1];
    assert_eq!(bob["verdict"], "deny");
    assert_eq!(bob["failures"].as_array().unwrap().len(), 2, "{bob}");
}

#[test]
fn test_rejects_a_malformed_case_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = example_policy();
    for (text, line, word) in [
        (
            "cases:\n  - user: alice\n    resource: demo\n    statement: SELECT 1\n    expect: maybe\n",
            5,
            "maybe",
        ),
        (
            "cases:\n  - user: alice\n    resource: demo\n    statement: SELECT 1\n    expect: allow\n    location: Germany\n",
            6,
            "Germany",
        ),
        (
            "cases:\n  - user: alice\n    resource: demo\n    statment: SELECT 1\n    expect: allow\n",
            4,
            "statment",
        ),
    ] {
        let cases = write_cases(dir.path(), text);
        let out = portcullis(&[
            "policy",
            "test",
            "-f",
            policy.to_str().unwrap(),
            cases.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{text} accepted");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}:{line}:", cases.display())),
            "{line} in {err}"
        );
        assert!(err.contains(word), "{err}");
    }
    // A case without a resource, and no default for it.
    let cases = write_cases(
        dir.path(),
        "cases:\n  - user: alice\n    statement: SELECT 1\n    expect: allow\n",
    );
    let out = portcullis(&[
        "policy",
        "test",
        "-f",
        policy.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("case 1 has no `resource`"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_if_lists_decisions_a_new_policy_would_change() {
    let pg = fresh_database("policy_cli_what_if");
    // In force: alice and bob may do anything, but nobody deletes notes.
    let policy = format!(
        "{}rules:\n  - {{id: keep_notes, when: {{objects: [public.notes], operations: [delete]}}, action: block}}\n",
        common::ALLOW_ALL_POLICY
    );
    let gw = Gateway::start_with_policy(pg, "policy_cli_what_if", "", Some(&policy));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.employees(id int, name text);
             INSERT INTO hr.employees VALUES (1, 'ann');
             CREATE TABLE public.notes(id int);",
        )
        .await
        .expect("fixtures");
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    bob.simple_query("SELECT name FROM hr.employees")
        .await
        .expect("bob may read under the start policy");
    bob.simple_query("SELECT count(*) FROM public.notes")
        .await
        .expect("bob may read notes");
    bob.simple_query("DELETE FROM public.notes")
        .await
        .expect_err("keep_notes blocks it");
    // An unqualified name: the replay finds the table the gateway resolved it to.
    bob.simple_query("SET search_path TO hr, public")
        .await
        .unwrap();
    bob.simple_query("SELECT id FROM employees").await.unwrap();

    // The proposal: bob keeps reading public and may now delete there, loses HR; the rule is gone.
    let proposal = gw.dir.path().join("proposal.yaml");
    std::fs::write(
        &proposal,
        "grants:
  - {to: {user: alice}, resource: app, objects: ['*'], privileges: [all]}
  - {to: {user: bob}, resource: app, objects: ['public.*'], privileges: [select, delete]}
",
    )
    .unwrap();
    let proposal = proposal.to_str().unwrap();
    let out = gw.cli(&["policy", "what-if", "-f", proposal, "--since", "1h"]);
    let text = stdout(&out);
    assert!(
        text.contains("allow -> deny: 2 statements, because no grant of SELECT on hr.employees"),
        "{text}"
    );
    assert!(
        text.contains("bob on app: SELECT name FROM hr.employees"),
        "{text}"
    );
    assert!(
        text.contains("bob on app: SELECT id FROM employees"),
        "{text}"
    );
    assert!(
        !text.contains("SELECT count(*) FROM public.notes"),
        "{text}"
    );
    assert!(
        text.contains("deny -> allow: 1 statement, because block `keep_notes` no longer applies"),
        "{text}"
    );
    assert!(
        text.contains("bob on app: DELETE FROM public.notes"),
        "{text}"
    );
    assert!(
        text.contains("would change (2 allow -> deny, 1 deny -> allow)"),
        "{text}"
    );
    // Roles come from the records, which carry them.
    assert!(!text.contains("predate recorded roles"), "{text}");

    let out = gw.cli(&[
        "policy", "what-if", "-f", proposal, "--since", "1h", "--user", "bob", "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // The largest group first.
    let group = &report["changes"][0];
    assert_eq!(group["from"], "allow");
    assert_eq!(group["to"], "deny");
    assert_eq!(group["count"], 2);
    assert!(
        group["statements"][0]["new_reason"]
            .as_str()
            .unwrap()
            .contains("bob lacks SELECT on hr.employees in app"),
        "{group}"
    );
    // Only alice: nothing changes.
    let out = gw.cli(&[
        "policy", "what-if", "-f", proposal, "--since", "1h", "--user", "alice",
    ]);
    assert!(stdout(&out).contains("0 would change"), "{}", stdout(&out));
    // A report, not a check, unless asked to be one.
    let out = gw.try_cli(&[
        "policy",
        "what-if",
        "-f",
        proposal,
        "--since",
        "1h",
        "--fail-on-change",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

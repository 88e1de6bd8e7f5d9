//! Helpers of the approval workflow tests: acting as a user through the CLI, statements and connections
//! held for approval, requests and their audit trail.

use std::process::Output;

use serde_json::Value;

use super::Gateway;

/// Runs the CLI as `user`, whose password goes to standard input.
pub fn as_user(gw: &Gateway, user: &str, password: &str, args: &[&str]) -> Output {
    let mut args = args.to_vec();
    args.extend(["--as", user, "--password-stdin"]);
    gw.try_cli_with_password(&args, password)
}

/// The standard output of a command that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "expected success: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The standard error of a command that must have failed.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The requests as `portcullis requests --json` lists them.
pub fn requests(gw: &Gateway) -> Vec<Value> {
    let out = gw.cli(&["requests", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("requests line is JSON"))
        .collect()
}

/// Request `id` as `portcullis requests --json` lists it.
pub fn request(gw: &Gateway, id: &str) -> Value {
    requests(gw)
        .into_iter()
        .find(|r| r["id"].as_i64() == id.parse().ok())
        .unwrap_or_else(|| panic!("no request {id}"))
}

/// Workflow audit records' actions for request `id`, oldest first.
pub fn workflow_actions(gw: &Gateway, id: &str) -> Vec<String> {
    let mut actions: Vec<String> = gw
        .audit(&["--kind", "workflows"])
        .into_iter()
        .filter(|r| r["request_id"].as_i64() == id.parse().ok())
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    actions.reverse();
    actions
}

/// The SQLSTATE and message of a refused statement.
pub async fn refused(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let err = client
        .simple_query(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("{sql} should have been refused"));
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {err:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// The request number in a "holds the statement for approval" refusal.
pub async fn held(client: &tokio_postgres::Client, sql: &str) -> String {
    let (code, message) = refused(client, sql).await;
    assert_eq!(code, "42501", "{message}");
    held_request(&message, "statement")
}

/// The request number in a refusal that holds a `what` (statement, connection) for approval, checked
/// to name the command that approves it.
pub fn held_request(message: &str, what: &str) -> String {
    assert!(
        message.contains(&format!(
            "portcullis holds the {what} for approval: request "
        )),
        "{message}"
    );
    let id = message
        .split("request ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("request id")
        .to_string();
    assert!(
        message.contains(&format!("`portcullis approve {id}`")),
        "{message}"
    );
    id
}

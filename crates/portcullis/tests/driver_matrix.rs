//! Real drivers through the gateway: each runs the scripted session in tests/drivers (connect, DDL,
//! parameters, transactions, prepared statements, COPY, an error and recovery, cancel, LISTEN/NOTIFY)
//! and the audit trail must show what it did.

mod common;

use std::process::Command;

use common::{fresh_database, workspace_root, Gateway, ALICE_PASSWORD};

fn run_driver(name: &str) {
    let db = format!("drivers_{name}");
    let pg = fresh_database(&db);
    let gw = Gateway::start(pg, &db);
    let script = workspace_root().join("tests/drivers/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(name)
        .envs(gw.pg_env("alice", ALICE_PASSWORD))
        .output()
        .expect("run the driver script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("DRIVER-OK {name}")),
        "driver {name} failed through the gateway\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // The audit trail names the driver's table, with the statement kinds it ran.
    let table = format!("drv_{name}");
    let events = gw.statements(&["--object", &table]);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["CREATE TABLE", "INSERT", "SELECT"] {
        assert!(
            kinds.contains(&kind),
            "{name}: no {kind} on {table} in the audit log: {kinds:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "ok" && e["param_count"].as_u64() > Some(0))
            || name == "psql",
        "{name}: no parameterised statement audited"
    );
    let failed = gw.statements(&["--text", "drv_no_such_table"]);
    assert!(
        failed.iter().any(|e| e["sqlstate"] == "42P01"),
        "{name}: the deliberate error is not audited: {failed:?}"
    );
    let connections = gw.audit(&["--kind", "connections", "--user", "alice"]);
    assert!(
        connections
            .iter()
            .any(|c| common::connection_of(c)["application_name"] == format!("drv_{name}").as_str()),
        "{name}: application_name not recorded: {connections:?}"
    );
}

#[test]
fn psql() {
    run_driver("psql");
}

#[test]
fn psycopg() {
    run_driver("psycopg");
}

#[test]
fn asyncpg() {
    run_driver("asyncpg");
}

#[test]
fn node_postgres() {
    run_driver("node");
}

#[test]
fn pgjdbc() {
    run_driver("jdbc");
}

/// pgbench initialises its tables (DDL, COPY) and runs its transactions in every query mode.
#[test]
fn pgbench_all_query_modes() {
    let pg = fresh_database("drivers_pgbench");
    let gw = Gateway::start(pg, "drivers_pgbench");
    let pgbench = |args: &[&str]| {
        let out = Command::new("pgbench")
            .args(args)
            .envs(gw.pg_env("alice", ALICE_PASSWORD))
            .output()
            .expect("run pgbench");
        assert!(
            out.status.success(),
            "pgbench {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    pgbench(&["-i", "-s", "1", "-q"]);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(&["-M", mode, "-c", "4", "-j", "2", "-t", "25", "-n"]);
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
    let updates = gw.statements(&["--text", "UPDATE pgbench_accounts"]);
    assert_eq!(updates.len(), 3 * 4 * 25);
    assert!(updates
        .iter()
        .all(|e| e["outcome"] == "ok" && e["rows"] == 1));
    let copies = gw.statements(&["--object", "pgbench_accounts", "--text", "copy"]);
    assert!(!copies.is_empty(), "pgbench -i's COPY is audited");
}

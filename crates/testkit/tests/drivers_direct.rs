//! The driver matrix in tests/drivers run straight against PostgreSQL (no gateway in between),
//! so a failure in the gateway's end-to-end tests is known to be the gateway's, not a script's.
//! Needs what tests/drivers/install.sh installs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis_testkit::{PgServer, APP_PASSWORD, APP_USER};

fn run_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/drivers/run.sh")
}

/// Runs `run.sh <driver>` against `db` on `server` with extra env; asserts the DRIVER-OK line.
fn run_driver(server: &PgServer, db: &str, driver: &str, extra_env: &[(&str, &str)]) {
    let mut cmd = Command::new("bash");
    cmd.arg(run_sh())
        .arg(driver)
        .env("PGHOST", server.host())
        .env("PGPORT", server.port().to_string())
        .env("PGUSER", APP_USER)
        .env("PGPASSWORD", APP_PASSWORD)
        .env("PGDATABASE", db)
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some(&format!("DRIVER-OK {driver}")),
        "driver {driver} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
}

/// Each driver gets its own database on the process-wide server.
fn plain(driver: &str) {
    let server = PgServer::shared();
    let db = format!("drivers_direct_{driver}");
    server.create_database(&db).unwrap();
    run_driver(server, &db, driver, &[]);
}

#[test]
fn psycopg_session_passes() {
    plain("psycopg");
}

#[test]
fn asyncpg_session_passes() {
    plain("asyncpg");
}

#[test]
fn node_pg_session_passes() {
    plain("node");
}

#[test]
fn jdbc_session_passes() {
    plain("jdbc");
}

#[test]
fn psql_session_passes() {
    plain("psql");
}

/// Plain (non-TLS) psql over TCP; true when the server accepted it.
fn plain_connection_accepted(server: &PgServer) -> bool {
    Command::new(server.bin_dir().join("psql"))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGHOST", server.host())
        .env("PGPORT", server.port().to_string())
        .env("PGUSER", APP_USER)
        .env("PGPASSWORD", APP_PASSWORD)
        .env("PGDATABASE", "appdb")
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn every_driver_passes_over_tls_with_certificate_verification() {
    let server = PgServer::start().unwrap();
    let cert = server.enable_ssl().unwrap();
    let cert = cert.to_str().unwrap();
    // TCP only with TLS from here on, so a session that silently went plain would fail.
    assert!(plain_connection_accepted(&server));
    std::fs::write(
        server.data_dir().join("pg_hba.conf"),
        "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    server.psql("postgres", "SELECT pg_reload_conf();").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while plain_connection_accepted(&server) {
        assert!(
            Instant::now() < deadline,
            "hostssl-only pg_hba.conf not in effect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (driver, mode) in [
        ("psycopg", "verify-full"),
        ("asyncpg", "verify-full"),
        ("node", "verify-full"),
        ("jdbc", "verify-full"),
        ("psql", "verify-full"),
        ("psycopg", "require"),
        ("node", "require"),
        ("jdbc", "require"),
    ] {
        run_driver(
            &server,
            "appdb",
            driver,
            &[("PGSSLMODE", mode), ("PGSSLROOTCERT", cert)],
        );
    }
}

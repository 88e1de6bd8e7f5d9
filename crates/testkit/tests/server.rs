//! The testkit against real PostgreSQL: parallel servers, SCRAM logins, cleanup, TLS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis_testkit::{PgServer, APP_DB, APP_PASSWORD, APP_USER};

/// Runs psql over TCP as `user` with `password`; returns (success, stdout+stderr).
fn tcp_psql(
    server: &PgServer,
    user: &str,
    password: &str,
    extra: &[(&str, &str)],
    sql: &str,
) -> (bool, String) {
    let mut cmd = Command::new(server.bin_dir().join("psql"));
    cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGHOST", server.host())
        .env("PGPORT", server.port().to_string())
        .env("PGUSER", user)
        .env("PGPASSWORD", password)
        .env("PGDATABASE", APP_DB)
        .env("PGSSLMODE", "disable");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn process_gone(pid: u32) -> bool {
    // A zombie (state Z) left to a non-reaping init counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn two_servers_in_parallel_are_independent_and_clean_up_on_drop() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(PgServer::start);
        let b = s.spawn(PgServer::start);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.socket_dir(), b.socket_dir());

    a.psql(
        APP_DB,
        "CREATE TABLE only_in_a(x int); INSERT INTO only_in_a VALUES (42);",
    )
    .unwrap();
    assert_eq!(
        a.psql(APP_DB, "SELECT x FROM only_in_a;").unwrap().trim(),
        "42"
    );
    let err = b
        .psql(APP_DB, "SELECT x FROM only_in_a;")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");

    let (pid, dir) = (a.pid(), a.socket_dir().to_path_buf());
    assert!(!process_gone(pid));
    assert!(dir.join("data").join("PG_VERSION").is_file());
    drop(a);
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(pid)),
        "postmaster {pid} still running"
    );
    assert!(!dir.exists(), "{} not removed", dir.display());

    // The other server is unaffected.
    assert_eq!(b.psql(APP_DB, "SELECT 1;").unwrap().trim(), "1");
}

#[test]
fn app_role_logs_in_over_tcp_with_scram_and_wrong_passwords_fail() {
    let server = PgServer::start().unwrap();
    let (ok, out) = tcp_psql(&server, APP_USER, APP_PASSWORD, &[],
        "SELECT current_user, rolsuper, left(rolpassword, 14) FROM pg_authid WHERE rolname = current_user");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "app|t|SCRAM-SHA-256$");
    let (ok, out) = tcp_psql(&server, APP_USER, "wrong", &[], "SELECT 1");
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    // The superuser gets no trust over TCP either.
    let (ok, out) = tcp_psql(&server, "postgres", "wrong", &[], "SELECT 1");
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    let (ok, out) = tcp_psql(
        &server,
        "postgres",
        portcullis_testkit::SUPERUSER_PASSWORD,
        &[],
        "SELECT 1",
    );
    assert!(ok, "{out}");
    assert_eq!(
        server
            .psql("postgres", "SHOW password_encryption;")
            .unwrap()
            .trim(),
        "scram-sha-256"
    );
    assert_eq!(
        server.psql("postgres", "SHOW fsync;").unwrap().trim(),
        "off"
    );
    assert_eq!(
        server
            .psql("postgres", "SHOW max_connections;")
            .unwrap()
            .trim(),
        "100"
    );
}

#[test]
fn shared_server_hands_out_databases() {
    let shared = PgServer::shared();
    assert!(std::ptr::eq(shared, PgServer::shared()));
    shared.create_database("testkit_shared_a").unwrap();
    let owner = shared
        .psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'testkit_shared_a';",
        )
        .unwrap();
    assert_eq!(owner.trim(), APP_USER);
    assert!(matches!(
        shared.create_database("bad name; drop"),
        Err(portcullis_testkit::TestkitError::InvalidName(_))
    ));
}

#[test]
fn psql_errors_carry_the_message() {
    let shared = PgServer::shared();
    let err = shared
        .psql("postgres", "SELECT * FROM no_such_table;")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_table"), "{err}");
}

#[test]
fn ssl_can_be_enabled() {
    let server = PgServer::start().unwrap();
    let cert = server.enable_ssl().unwrap();
    let root = cert.to_str().unwrap();
    let (ok, out) = tcp_psql(
        &server,
        APP_USER,
        APP_PASSWORD,
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", root)],
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "t");
    assert!(Path::new(root).is_file());
}

#[test]
fn free_ports_are_distinct_and_bindable() {
    let a = portcullis_testkit::free_port();
    let b = portcullis_testkit::free_port();
    assert_ne!(a, b);
    let l = std::net::TcpListener::bind(("127.0.0.1", a)).unwrap();
    portcullis_testkit::wait_for_port(a, Duration::from_secs(1)).unwrap();
    drop(l);
    assert!(portcullis_testkit::wait_for_port(b, Duration::from_millis(200)).is_err());
}

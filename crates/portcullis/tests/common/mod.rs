//! A real gateway process in front of a real throwaway PostgreSQL, driven through the CLI as an admin
//! would drive it.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::{free_port, PgServer};
use serde_json::Value;

/// Gateway user passwords used by the tests.
pub const ALICE_PASSWORD: &str = "alice-pw";
pub const BOB_PASSWORD: &str = "bob-pw";
/// The resource every test registers.
pub const RESOURCE: &str = "app";

/// The `portcullis` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

/// One gateway process with its own data directory.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra_config: String,
}

impl Gateway {
    /// Registers `database` on `pg` as resource "app", creates alice and bob, and starts serving.
    pub fn start(pg: &PgServer, database: &str) -> Gateway {
        Self::start_with_config(pg, database, "")
    }

    /// Like [`Gateway::start`] with extra YAML lines in the configuration file.
    pub fn start_with_config(pg: &PgServer, database: &str, extra_config: &str) -> Gateway {
        Self::launch(pg, database, extra_config, "disable")
    }

    /// Like [`Gateway::start`], reaching the upstream with TLS mode `tls` (disable, require, …).
    pub fn start_with_upstream_tls(pg: &PgServer, database: &str, tls: &str) -> Gateway {
        Self::launch(pg, database, "", tls)
    }

    fn launch(pg: &PgServer, database: &str, extra_config: &str, upstream_tls: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut gw = Gateway {
            port: free_port(),
            dir,
            child: None,
            extra_config: extra_config.to_string(),
        };
        std::fs::write(gw.config_path(), format!("{extra_config}\n")).expect("write config");
        gw.cli_with_password(
            &[
                "resource",
                "add",
                RESOURCE,
                "--host",
                pg.host(),
                "--port",
                &pg.port().to_string(),
                "--database",
                database,
                "--db-user",
                "app",
                "--tls",
                upstream_tls,
                "--password-stdin",
            ],
            "app-secret",
        );
        gw.cli_with_password(
            &["user", "add", "alice", "--password-stdin"],
            ALICE_PASSWORD,
        );
        gw.cli_with_password(&["user", "add", "bob", "--password-stdin"], BOB_PASSWORD);
        gw.spawn();
        gw
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.yaml")
    }

    fn base_command(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .arg("--config")
            .arg(self.config_path())
            .env("PORTCULLIS_LOG", "warn");
        cmd
    }

    /// Starts (or restarts) the serving process and waits until it accepts connections.
    pub fn spawn(&mut self) {
        let child = self
            .base_command()
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn gateway");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "gateway did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a CLI command against this gateway's store; panics with its output if it fails.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.base_command().args(args).output().expect("run cli");
        assert!(
            out.status.success(),
            "portcullis {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a CLI command that reads a password on standard input.
    pub fn cli_with_password(&self, args: &[&str], password: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .base_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        let out = child.wait_with_output().expect("wait cli");
        assert!(
            out.status.success(),
            "portcullis {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `portcullis audit --json` with extra filters, parsed.
    pub fn audit(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["audit", "--json", "--limit", "10000"];
        args.extend_from_slice(filters);
        let out = self.cli(&args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Statement events (the inner objects) matching `filters`, oldest first.
    pub fn statements(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["--kind", "statements"];
        args.extend_from_slice(filters);
        let mut events: Vec<Value> = self
            .audit(&args)
            .into_iter()
            .map(|r| statement_of(&r).clone())
            .collect();
        events.reverse();
        events
    }

    /// A libpq-style connection string for a gateway user.
    pub fn conn_str(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={RESOURCE} user={user} password={password} sslmode=disable",
            self.port
        )
    }

    /// Environment for libpq-based tools and the driver scripts.
    pub fn pg_env(&self, user: &str, password: &str) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), user.into()),
            ("PGPASSWORD".into(), password.into()),
            ("PGDATABASE".into(), RESOURCE.into()),
            ("PGSSLMODE".into(), "disable".into()),
        ]
    }

    /// Connects tokio-postgres as a gateway user.
    pub async fn connect(&self, user: &str, password: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.conn_str(user, password), tokio_postgres::NoTls)
                .await
                .expect("connect through the gateway");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The statement object inside an audit record, whatever the record's envelope looks like.
pub fn statement_of(record: &Value) -> &Value {
    let event = record.get("event").unwrap_or(record);
    event
        .get("Statement")
        .or_else(|| event.get("statement"))
        .unwrap_or(event)
}

/// The connection object inside an audit record.
pub fn connection_of(record: &Value) -> &Value {
    let event = record.get("event").unwrap_or(record);
    event
        .get("Connection")
        .or_else(|| event.get("connection"))
        .unwrap_or(event)
}

/// Runs psql as a gateway user and returns its output (stdout, stderr, success).
pub fn psql(gw: &Gateway, user: &str, password: &str, args: &[&str]) -> (String, String, bool) {
    let out = Command::new("psql")
        .args(["-X", "-At"])
        .args(args)
        .envs(gw.pg_env(user, password))
        .output()
        .expect("run psql");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// The workspace root (for tests/drivers).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// A fresh database on the shared server, with a name unique to the test.
pub fn fresh_database(name: &str) -> &'static PgServer {
    let pg = PgServer::shared();
    pg.create_database(name).expect("create database");
    pg
}

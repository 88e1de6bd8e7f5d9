//! A real gateway process in front of a real throwaway PostgreSQL, driven through the CLI as an admin
//! would drive it.

#![allow(dead_code)]

pub mod workflows;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::{free_port, PgServer, SUPERUSER, SUPERUSER_PASSWORD};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

/// Gateway user passwords used by the tests.
pub const ALICE_PASSWORD: &str = "alice-pw";
pub const BOB_PASSWORD: &str = "bob-pw";
/// The resource every test registers.
pub const RESOURCE: &str = "app";
/// The policy a gateway starts with unless a test applies its own: alice and bob may do anything on
/// the test resource.
pub const ALLOW_ALL_POLICY: &str = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['*']
    privileges: [all]
";

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
        Self::launch(
            pg,
            database,
            extra_config,
            "disable",
            Some(ALLOW_ALL_POLICY),
        )
    }

    /// Like [`Gateway::start`], reaching the upstream with TLS mode `tls` (disable, require, …).
    pub fn start_with_upstream_tls(pg: &PgServer, database: &str, tls: &str) -> Gateway {
        Self::launch(pg, database, "", tls, Some(ALLOW_ALL_POLICY))
    }

    /// Like [`Gateway::start_with_config`], starting with `policy` applied (`None`: no policy at all).
    pub fn start_with_policy(
        pg: &PgServer,
        database: &str,
        extra_config: &str,
        policy: Option<&str>,
    ) -> Gateway {
        Self::launch(pg, database, extra_config, "disable", policy)
    }

    fn launch(
        pg: &PgServer,
        database: &str,
        extra_config: &str,
        upstream_tls: &str,
        policy: Option<&str>,
    ) -> Gateway {
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
        if let Some(policy) = policy {
            gw.apply_policy(policy);
        }
        gw.spawn();
        gw
    }

    /// Writes `yaml` to a file in the data directory and applies it with `portcullis policy apply`.
    pub fn apply_policy(&self, yaml: &str) -> Output {
        let path = self.dir.path().join("policy.yaml");
        std::fs::write(&path, yaml).expect("write policy");
        self.cli(&["policy", "apply", "-f", &path.to_string_lossy()])
    }

    /// Applies `yaml` and waits until the running gateway has loaded it (it polls once a second).
    pub fn apply_policy_live(&self, yaml: &str) {
        let before = self.policy_version();
        self.apply_policy(yaml);
        let deadline = Instant::now() + Duration::from_secs(10);
        // The gateway logs nothing a test can see, so wait out its poll interval with a margin.
        while self.policy_version() == before {
            assert!(Instant::now() < deadline, "policy version did not change");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1500));
    }

    fn policy_version(&self) -> Option<i64> {
        let out = self
            .base_command()
            .args(["policy", "show", "--json"])
            .output()
            .expect("run cli");
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("policy show JSON");
        v["version"].as_i64()
    }

    /// `portcullis monitor --json` with extra filters, parsed (newest first).
    pub fn monitor(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["monitor", "--json", "--limit", "10000"];
        args.extend_from_slice(filters);
        let out = self.cli(&args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("monitor line is JSON"))
            .collect()
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

    /// The serving process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the gateway is running").id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a CLI command against this gateway's store; panics with its output if it fails.
    /// Makes the gateway log in upstream as the superuser, as gateways often do.
    pub fn use_superuser_credential(&self) {
        self.cli_with_password(
            &[
                "resource",
                "set-credential",
                RESOURCE,
                "--db-user",
                SUPERUSER,
                "--password-stdin",
            ],
            SUPERUSER_PASSWORD,
        );
    }

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

    /// Runs a CLI command against this gateway's store and returns its output, failed or not.
    pub fn try_cli(&self, args: &[&str]) -> Output {
        self.base_command().args(args).output().expect("run cli")
    }

    /// Runs a CLI command that reads a password on standard input.
    pub fn cli_with_password(&self, args: &[&str], password: &str) -> Output {
        let out = self.try_cli_with_password(args, password);
        assert!(
            out.status.success(),
            "portcullis {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a CLI command that reads a password on standard input; its output, failed or not.
    pub fn try_cli_with_password(&self, args: &[&str], password: &str) -> Output {
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
        child.wait_with_output().expect("wait cli")
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
        self.connect_with(user, password, "").await
    }

    /// Connects with `extra` connection parameters (`options='-c …'`).
    pub async fn connect_with(
        &self,
        user: &str,
        password: &str,
        extra: &str,
    ) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!("{} {extra}", self.conn_str(user, password)),
            tokio_postgres::NoTls,
        )
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

/// A direct superuser connection to the upstream database, for setting up and checking effects.
pub async fn direct(pg: &PgServer, db: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&pg.url(SUPERUSER, SUPERUSER_PASSWORD, db), NoTls)
            .await
            .expect("connect directly");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The first column of the first row a simple query returned.
pub fn first_value(messages: &[SimpleQueryMessage]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or_default().to_string()),
            _ => None,
        })
        .expect("a row")
}

/// The SQLSTATE and message of a statement that failed.
pub fn denial<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> (String, String) {
    let err = result.expect_err("the statement should have failed");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {err}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// The SQLSTATE and message with which the gateway refuses a login; `extra` adds connection parameters
/// (`options='-c …'`), or is empty.
pub async fn refused_login(
    gw: &Gateway,
    user: &str,
    password: &str,
    extra: &str,
) -> (String, String) {
    let err = tokio_postgres::connect(
        &format!("{} {extra}", gw.conn_str(user, password)),
        tokio_postgres::NoTls,
    )
    .await
    .err()
    .expect("the login should have been refused");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {err:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// A fresh database on the shared server, with a name unique to the test.
pub fn fresh_database(name: &str) -> &'static PgServer {
    let pg = PgServer::shared();
    pg.create_database(name).expect("create database");
    pg
}

/// The clock the gateway and the CLI read: the system time plus the seconds in a file the test writes.
pub struct TestClock {
    _dir: tempfile::TempDir,
    file: PathBuf,
    offset: i64,
}

impl TestClock {
    /// A clock with no offset yet.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clock-offset");
        std::fs::write(&file, "0").unwrap();
        TestClock {
            _dir: dir,
            file,
            offset: 0,
        }
    }

    /// Configuration lines pointing the gateway at this clock, plus `extra`.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "testing:\n  clock_offset_file: {}\n{extra}",
            self.file.display()
        )
    }

    /// Moves the clock forward `secs` seconds, for the gateway and the CLI alike.
    pub fn advance(&mut self, secs: i64) {
        self.offset += secs;
        std::fs::write(&self.file, self.offset.to_string()).unwrap();
    }

    /// The time now by this clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset)
    }
}

/// Connects tokio-postgres and collects the notices the gateway sends.
pub async fn connect_with_notices(
    gw: &Gateway,
    user: &str,
    password: &str,
) -> (tokio_postgres::Client, UnboundedReceiver<String>) {
    let (client, mut connection) =
        tokio_postgres::connect(&gw.conn_str(user, password), tokio_postgres::NoTls)
            .await
            .expect("connect through the gateway");
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notice(notice)) => {
                    let _ = tx.send(notice.message().to_string());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (client, rx)
}

//! A throwaway PostgreSQL server in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::binaries::{check, scrub_pg_env, RunAs};
use crate::net::{free_port, wait_for_port};
use crate::watchdog::spawn_watchdog;
use crate::{pg_bin_dir, TestkitError};

/// The bootstrap superuser (local socket: trust; TCP: SCRAM with [`SUPERUSER_PASSWORD`]).
pub const SUPERUSER: &str = "postgres";
/// Password of [`SUPERUSER`] for TCP connections.
pub const SUPERUSER_PASSWORD: &str = "postgres-secret";
/// The application role every server gets (LOGIN SUPERUSER, SCRAM password [`APP_PASSWORD`]).
pub const APP_USER: &str = "app";
/// Password of [`APP_USER`].
pub const APP_PASSWORD: &str = "app-secret";
/// The database every server gets, owned by [`APP_USER`].
pub const APP_DB: &str = "appdb";

/// The address servers listen on.
const HOST: &str = "127.0.0.1";
/// How long `pg_ctl start -w` may take.
const START_TIMEOUT_SECS: u32 = 60;
/// Attempts at starting when another process grabs the chosen port first.
const START_ATTEMPTS: usize = 4;
/// Bytes of the server log quoted in errors.
const LOG_TAIL_BYTES: u64 = 4096;

/// A running throwaway PostgreSQL. Dropping it stops the server (immediate mode) and removes
/// its temporary directory; a watchdog process does the same if this process dies first.
#[derive(Debug)]
pub struct PgServer {
    /// Holds the data dir, socket and log; removed on drop.
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    port: u16,
    run_as: RunAs,
    postmaster_pid: u32,
    /// Set once `pg_ctl start` succeeded, so a failure later in `start` still stops the server.
    started: bool,
    watchdog: Option<Child>,
}

impl PgServer {
    /// Creates, configures and starts a new server, then creates role `app` and database `appdb`.
    pub fn start() -> Result<PgServer, TestkitError> {
        let bin_dir = pg_bin_dir()?;
        let run_as = RunAs::detect()?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-pg-")
            .tempdir()
            .map_err(|e| TestkitError::io("create temp dir", e))?;
        // The postgres user must reach the socket and data dirs inside; the data dir itself stays 0700.
        set_mode(dir.path(), 0o755)?;
        if dir.path().to_str().is_none() {
            return Err(TestkitError::BadPath(dir.path().to_path_buf()));
        }
        let mut server = PgServer {
            dir,
            bin_dir,
            port: 0,
            run_as,
            postmaster_pid: 0,
            started: false,
            watchdog: None,
        };
        server.init_cluster()?;
        server.start_on_free_port()?;
        server.postmaster_pid = server.read_postmaster_pid()?;
        server.watchdog = Some(spawn_watchdog(server.postmaster_pid, server.dir.path())?);
        wait_for_port(server.port, Duration::from_secs(30)).map_err(|e| server.with_log(e))?;
        server.psql(
            "postgres",
            &format!(
                "CREATE ROLE {APP_USER} LOGIN SUPERUSER PASSWORD '{APP_PASSWORD}';\n\
                 CREATE DATABASE {APP_DB} OWNER {APP_USER};\n"
            ),
        )?;
        tracing::debug!(port = server.port, dir = %server.dir.path().display(), "test PostgreSQL up");
        Ok(server)
    }

    /// One server shared by the whole test process, started on first use.
    ///
    /// Tests using it should make their own database with [`PgServer::create_database`]. The server
    /// is never dropped (it lives in a static); its watchdog stops it once the process exits.
    ///
    /// # Panics
    /// If the server cannot be started: there is nothing a test could do instead.
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            PgServer::start().unwrap_or_else(|e| panic!("cannot start the shared PostgreSQL: {e}"))
        })
    }

    /// The TCP port the server listens on (at [`PgServer::host`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP address the server listens on: always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The directory holding the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory with the PostgreSQL binaries this server runs (psql, pgbench, ... are there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The process id of the postmaster.
    pub fn pid(&self) -> u32 {
        self.postmaster_pid
    }

    /// A libpq URL for `user`/`password` on `db` over TCP (no TLS requested).
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgresql://{user}:{password}@{HOST}:{}/{db}", self.port)
    }

    /// The last few KiB of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// Runs `sql` as the superuser over the unix socket with `psql -X -v ON_ERROR_STOP=1 -At`
    /// (script fed on stdin, so psql meta-commands work) and returns stdout.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, TestkitError> {
        let mut cmd = Command::new(self.bin_dir.join("psql"));
        scrub_pg_env(&mut cmd);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-f", "-"])
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "-d", db])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| TestkitError::io("spawn psql", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error means psql exited early; its status and stderr say why.
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| TestkitError::io("wait for psql", e))?;
        check(
            &format!("psql on {db}: {}", abbreviate(sql)),
            &out,
            self.log_tail(),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates database `name` owned by [`APP_USER`]. `name` must be `[A-Za-z0-9_]{1,63}`.
    pub fn create_database(&self, name: &str) -> Result<(), TestkitError> {
        let plain = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return Err(TestkitError::InvalidName(name.to_string()));
        }
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER {APP_USER};"),
        )
        .map(|_| ())
    }

    /// Runs a server-side binary (initdb, pg_ctl) as the right OS user and checks it succeeded.
    pub(crate) fn run_server_tool(&self, tool: &str, args: &[&str]) -> Result<(), TestkitError> {
        let out = self
            .run_as
            .command(&self.bin_dir.join(tool), self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io(format!("spawn {tool}"), e))?;
        check(&format!("{tool} {}", args.join(" ")), &out, self.log_tail())
    }

    /// Gives a path inside the server dir to the OS user the server runs as.
    pub(crate) fn give_to_server_user(&self, path: &Path) -> Result<(), TestkitError> {
        self.run_as.give_dir(path)
    }

    fn init_cluster(&self) -> Result<(), TestkitError> {
        let pwfile = self.dir.path().join("pwfile");
        write_file(&pwfile, SUPERUSER_PASSWORD)?;
        self.run_as.give_dir(self.dir.path())?;
        let data = self.data_dir();
        let data = path_str(&data)?;
        let pwfile = path_str(&pwfile)?;
        self.run_server_tool(
            "initdb",
            &[
                "-D",
                data,
                "-U",
                SUPERUSER,
                "--pwfile",
                pwfile,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        // Exact rules instead of initdb's defaults: trust only for the local superuser, SCRAM elsewhere.
        write_file(
            &self.data_dir().join("pg_hba.conf"),
            "local all postgres trust\n\
             local all all scram-sha-256\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .map_err(|e| TestkitError::io("open postgresql.conf", e))?;
        conf.write_all(b"\ninclude 'portcullis_testkit.conf'\n")
            .map_err(|e| TestkitError::io("append to postgresql.conf", e))?;
        Ok(())
    }

    fn write_settings(&self, port: u16) -> Result<(), TestkitError> {
        let socket_dir = path_str(self.dir.path())?.replace('\'', "''");
        let settings = format!(
            "listen_addresses = '{HOST}'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             password_encryption = 'scram-sha-256'\n\
             max_connections = 100\n\
             shared_buffers = 16MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_wal_size = 256MB\n\
             logging_collector = off\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_min_messages = warning\n"
        );
        let path = self.data_dir().join("portcullis_testkit.conf");
        write_file(&path, &settings)?;
        self.run_as.give_dir(&path)
    }

    fn start_on_free_port(&mut self) -> Result<(), TestkitError> {
        let data = self.data_dir();
        let log = self.log_path();
        let timeout = START_TIMEOUT_SECS.to_string();
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port();
            self.write_settings(self.port)?;
            let result = self.run_server_tool(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    &timeout,
                    "-D",
                    path_str(&data)?,
                    "-l",
                    path_str(&log)?,
                ],
            );
            match result {
                Ok(()) => {
                    self.started = true;
                    return Ok(());
                }
                Err(e) if port_taken(&self.log_tail()) => {
                    tracing::debug!(port = self.port, "port taken, retrying: {e}");
                    // Start the next attempt's log fresh so the check above sees only its own failure.
                    let _ = std::fs::remove_file(&log);
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| TestkitError::NoServerBinaries("no start attempt".into())))
    }

    fn read_postmaster_pid(&self) -> Result<u32, TestkitError> {
        let path = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TestkitError::io(format!("read {}", path.display()), e))?;
        text.lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| {
                TestkitError::io(
                    format!("parse {}", path.display()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "no pid on first line"),
                )
            })
    }

    fn with_log(&self, err: TestkitError) -> TestkitError {
        match err {
            TestkitError::Timeout { what, timeout, .. } => TestkitError::Timeout {
                what,
                timeout,
                log_tail: self.log_tail(),
            },
            other => other,
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.started {
            let data = self.data_dir();
            if let Some(data) = data.to_str() {
                if let Err(e) =
                    self.run_server_tool("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", data])
                {
                    tracing::warn!("stopping test PostgreSQL failed: {e}");
                }
            }
        }
        // The TempDir field removes the directory after this.
    }
}

fn port_taken(log: &str) -> bool {
    log.contains("could not bind") || log.contains("Address already in use")
}

fn path_str(path: &Path) -> Result<&str, TestkitError> {
    path.to_str()
        .ok_or_else(|| TestkitError::BadPath(path.to_path_buf()))
}

fn write_file(path: &Path, contents: &str) -> Result<(), TestkitError> {
    std::fs::write(path, contents)
        .map_err(|e| TestkitError::io(format!("write {}", path.display()), e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TestkitError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| TestkitError::io(format!("chmod {}", path.display()), e))
}

fn log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut buf = Vec::new();
    let _ = file.take(LOG_TAIL_BYTES).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn abbreviate(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

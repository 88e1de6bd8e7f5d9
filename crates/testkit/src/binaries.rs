//! Finding the PostgreSQL binaries and running them as an OS user PostgreSQL accepts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::TestkitError;

/// Environment variables that would silently redirect or alter libpq tools and the server.
const PG_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGDATA",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGAPPNAME",
    "PGTZ",
    "PGCLIENTENCODING",
    "PSQLRC",
];

/// Finds the newest `/usr/lib/postgresql/<N>/bin` that has `initdb`; `PORTCULLIS_PG_BIN` overrides.
///
/// Falls back to an `initdb` found on `PATH` (resolving symlinks to its real bin directory).
pub fn pg_bin_dir() -> Result<PathBuf, TestkitError> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(TestkitError::NoServerBinaries(format!(
                "PORTCULLIS_PG_BIN={} has no initdb",
                dir.display()
            )))
        };
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let Some(version) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("initdb"))
        .find(|candidate| candidate.is_file());
    if let Some(initdb) = on_path {
        if let Some(dir) = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf))
        {
            return Ok(dir);
        }
    }
    Err(TestkitError::NoServerBinaries(
        "no /usr/lib/postgresql/<N>/bin/initdb and no initdb on PATH".into(),
    ))
}

/// Whether this process runs with effective uid 0.
pub(crate) fn running_as_root() -> bool {
    // /proc/self is owned by the effective uid; `id -u` is the fallback where /proc is absent.
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return meta.uid() == 0;
    }
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// How server-side binaries (initdb, pg_ctl) are launched: directly, or via `runuser` when root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// Run as the current (non-root) user.
    CurrentUser,
    /// Run as the OS user `postgres` through `runuser -u postgres --`.
    Postgres,
}

impl RunAs {
    /// Decides how to run the server for this process, checking that `postgres` exists when needed.
    pub(crate) fn detect() -> Result<Self, TestkitError> {
        if !running_as_root() {
            return Ok(Self::CurrentUser);
        }
        let exists = Command::new("id")
            .args(["-u", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if exists {
            Ok(Self::Postgres)
        } else {
            Err(TestkitError::NoPostgresUser)
        }
    }

    /// A command for `program` run as the right user, in `cwd`, with PG* variables removed.
    pub(crate) fn command(self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = match self {
            Self::CurrentUser => Command::new(program),
            Self::Postgres => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
        };
        cmd.current_dir(cwd);
        scrub_pg_env(&mut cmd);
        cmd
    }

    /// Hands `dir` (recursively) to the user the server runs as.
    pub(crate) fn give_dir(self, dir: &Path) -> Result<(), TestkitError> {
        if self == Self::CurrentUser {
            return Ok(());
        }
        let out = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io("spawn chown", e))?;
        check(
            &format!("chown -R postgres: {}", dir.display()),
            &out,
            String::new(),
        )
    }
}

/// Removes the libpq/server environment variables that would override explicit settings.
pub(crate) fn scrub_pg_env(cmd: &mut Command) {
    for var in PG_ENV {
        cmd.env_remove(var);
    }
}

/// Turns an unsuccessful command output into [`TestkitError::Command`].
pub(crate) fn check(what: &str, out: &Output, log_tail: String) -> Result<(), TestkitError> {
    if out.status.success() {
        return Ok(());
    }
    Err(TestkitError::Command {
        what: what.to_string(),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        log_tail,
    })
}

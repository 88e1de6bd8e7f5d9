//! A tiny shell process that stops a server and removes its directory when the test process dies.
//!
//! Needed because the shared server lives in a static (never dropped) and because a test process
//! killed by a signal runs no destructors; without it every such run would leak a postmaster.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::TestkitError;

const SCRIPT: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -QUIT "$2" 2>/dev/null
i=0
while kill -0 "$2" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -rf "$3"
"#;

/// Starts the watchdog for postmaster `postmaster_pid` whose files live in `dir`.
pub(crate) fn spawn_watchdog(postmaster_pid: u32, dir: &Path) -> Result<Child, TestkitError> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("portcullis-testkit-watchdog")
        .arg(std::process::id().to_string())
        .arg(postmaster_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| TestkitError::io("spawn watchdog", e))
}

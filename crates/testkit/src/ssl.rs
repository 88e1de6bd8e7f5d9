//! Turning on TLS for a running test server with a throwaway self-signed certificate.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::check;
use crate::{PgServer, TestkitError};

impl PgServer {
    /// Generates a self-signed certificate (CN=localhost, SAN localhost and 127.0.0.1) with the
    /// `openssl` CLI, sets `ssl=on` with `ALTER SYSTEM`, reloads, and waits until new sessions
    /// see it. Returns the certificate's path, usable as a client's root certificate.
    pub fn enable_ssl(&self) -> Result<PathBuf, TestkitError> {
        let data = self.data_dir();
        let cert = data.join("server.crt");
        let key = data.join("server.key");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io("spawn openssl", e))?;
        check("openssl req (self-signed certificate)", &out, String::new())?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| TestkitError::io("chmod server.key", e))?;
        }
        self.give_to_server_user(&cert)?;
        self.give_to_server_user(&key)?;
        self.psql(
            "postgres",
            "ALTER SYSTEM SET ssl = on;\nSELECT pg_reload_conf();",
        )?;
        let timeout = Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        loop {
            if self.psql("postgres", "SHOW ssl;")?.trim() == "on" {
                return Ok(cert);
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::Timeout {
                    what: "ssl=on to take effect after reload".into(),
                    timeout,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

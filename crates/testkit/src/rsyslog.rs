//! A throwaway rsyslog receiver for tests of the syslog audit sink: `rsyslogd -n -f CONF -i PIDFILE`
//! with `imtcp` on a free 127.0.0.1 port (octet-counted or LF-framed RFC 5424 over TCP) and `omfile`
//! writing each message as `MSGID|MSG` to a file in a temporary directory. [`Rsyslog::start_tls`] adds
//! TLS with rsyslog's OpenSSL driver and a certificate for `localhost` signed by a throwaway CA.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::check;
use crate::watchdog::spawn_watchdog;
use crate::{free_port, wait_for_port, TestkitError};

/// How long rsyslogd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped, between [`Rsyslog::stop`] and [`Rsyslog::restart`]) rsyslogd.
#[derive(Debug)]
pub struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    ca: Option<PathBuf>,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl Rsyslog {
    /// Starts a plain-TCP receiver.
    pub fn start() -> Result<Rsyslog, TestkitError> {
        Self::launch(false)
    }

    /// Starts a TLS receiver; [`Rsyslog::ca`] is the CA file a client must trust.
    pub fn start_tls() -> Result<Rsyslog, TestkitError> {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Result<Rsyslog, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-rsyslog-")
            .tempdir()
            .map_err(|e| TestkitError::io("create rsyslog temp dir", e))?;
        let mut rsyslog = Rsyslog {
            port: free_port(),
            ca: None,
            child: None,
            watchdog: None,
            dir,
        };
        std::fs::create_dir_all(rsyslog.dir.path().join("work"))
            .map_err(|e| TestkitError::io("create rsyslog work dir", e))?;
        if tls {
            rsyslog.ca = Some(make_certificates(rsyslog.dir.path())?);
        }
        rsyslog.write_config()?;
        rsyslog.restart()?;
        Ok(rsyslog)
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA file to trust (TLS receivers only).
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The file received messages are written to, one `MSGID|MSG` line each.
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }

    /// The messages received so far, as `(msgid, msg)`.
    pub fn messages(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.output())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(id, msg)| (id.to_owned(), msg.to_owned()))
            .collect()
    }

    /// Waits until at least `n` messages arrived; the messages then.
    pub fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return Ok(messages);
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::Timeout {
                    what: format!("{n} syslog messages (have {})", messages.len()),
                    timeout,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// rsyslogd's own messages (its stderr).
    pub fn log_tail(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.err")).unwrap_or_default()
    }

    /// Stops rsyslogd with SIGTERM (it writes out what it received) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Starts rsyslogd (again) on the same port and output file, and waits until it listens.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        let err = std::fs::File::create(self.dir.path().join("rsyslogd.err"))
            .map_err(|e| TestkitError::io("create rsyslogd.err", e))?;
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.path().join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| TestkitError::io("spawn rsyslogd (apt-get install rsyslog)", e))?;
        self.watchdog = Some(spawn_watchdog(child.id(), Path::new("/nonexistent"))?);
        self.child = Some(child);
        wait_for_port(self.port, START_TIMEOUT).map_err(|e| match e {
            TestkitError::Timeout { what, timeout, .. } => TestkitError::Timeout {
                what,
                timeout,
                log_tail: self.log_tail(),
            },
            other => other,
        })
    }

    fn write_config(&self) -> Result<(), TestkitError> {
        let dir = self.dir.path();
        let text = |p: &Path| {
            p.to_str()
                .map(str::to_owned)
                .ok_or_else(|| TestkitError::BadPath(p.to_path_buf()))
        };
        let work = text(&dir.join("work"))?;
        let output = text(&self.output())?;
        let (global_tls, module_tls) = match &self.ca {
            Some(ca) => (
                format!(
                    " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"{}\" \
                     DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                    text(ca)?,
                    text(&dir.join("server.pem"))?,
                    text(&dir.join("server.key"))?
                ),
                " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"256k\"{global_tls})\n\
             module(load=\"imtcp\"{module_tls})\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"received\")\n\
             template(name=\"received\" type=\"string\" string=\"%msgid%|%msg%\\n\")\n\
             ruleset(name=\"received\") {{\n\
               action(type=\"omfile\" file=\"{output}\" template=\"received\")\n\
             }}\n",
            port = self.port,
        );
        std::fs::write(dir.join("rsyslog.conf"), conf)
            .map_err(|e| TestkitError::io("write rsyslog.conf", e))
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a certificate for localhost/127.0.0.1 it signed (`server.pem`, `server.key`),
/// made with the `openssl` CLI. Returns the CA's file.
fn make_certificates(dir: &Path) -> Result<PathBuf, TestkitError> {
    let run = |what: &str, args: &[&str]| -> Result<(), TestkitError> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io("spawn openssl", e))?;
        check(what, &out, String::new())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=portcullis test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run("openssl req (test CA)", &ca)?;
    let mut csr = vec!["req"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run("openssl req (server key)", &csr)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| TestkitError::io("write server.ext", e))?;
    run(
        "openssl x509 (sign the server certificate)",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
        ],
    )?;
    Ok(dir.join("ca.pem"))
}

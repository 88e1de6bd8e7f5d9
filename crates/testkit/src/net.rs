//! Local TCP helpers: picking a free port and waiting for a listener.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// Ports already handed out by this process, so that two parallel tests never get the same one
/// from the kernel's ephemeral range before either has bound it.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A free TCP port on 127.0.0.1 (bind to port 0, read the port, drop the socket).
///
/// Never returns the same port twice within one process. Another process can still take the port
/// before the caller binds it, so callers that start servers should retry on "address in use".
///
/// # Panics
/// If no local port can be bound at all (the machine has no loopback), which no test can survive.
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the local address of a bound socket: {e}"))
            .port();
        let mut seen = handed_out().lock().unwrap_or_else(|p| p.into_inner());
        if seen.insert(port) {
            return port;
        }
    }
    panic!("the kernel kept returning ports this process already handed out");
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, polling every 50 ms.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), TestkitError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TestkitError::Timeout {
                what: format!("127.0.0.1:{port} to accept connections"),
                timeout,
                log_tail: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! `portcullis demo` works for a newcomer: a throwaway PostgreSQL with sample data behind the gateway,
//! the example policy enforced, and the web portal with the login the demo prints.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::free_port;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_serves_sample_data_under_the_example_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let api_port = free_port();
    let mut child = Command::new(common::binary())
        .args(["--data-dir", &dir.path().to_string_lossy()])
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
        .env("PORTCULLIS_LOG", "warn")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the demo");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the demo did not start listening"
        );
        assert!(
            child.try_wait().expect("demo status").is_none(),
            "the demo exited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let connect = |user: &str, password: &str| {
        format!("host=127.0.0.1 port={port} dbname=demo user={user} password={password} sslmode=disable")
    };
    let (alice, conn) =
        tokio_postgres::connect(&connect("alice", "alice-demo"), tokio_postgres::NoTls)
            .await
            .expect("alice connects");
    tokio::spawn(conn);
    let rows = alice
        .query(
            "SELECT count(*) FROM hr.employees e JOIN hr.departments d ON d.id = e.department_id",
            &[],
        )
        .await
        .expect("alice reads HR");
    assert_eq!(rows[0].get::<_, i64>(0), 4);
    let err = alice
        .simple_query("DELETE FROM hr.employees")
        .await
        .expect_err("the example policy blocks HR deletes");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));

    let (bob, conn) = tokio_postgres::connect(&connect("bob", "bob-demo"), tokio_postgres::NoTls)
        .await
        .expect("bob connects");
    tokio::spawn(conn);
    bob.query("SELECT name FROM hr.departments", &[])
        .await
        .expect("analysts read hr.*");
    let masked = bob
        .query("SELECT ssn, email FROM hr.employees WHERE id = 1", &[])
        .await
        .expect("analysts read employees, masked");
    assert_eq!(masked[0].get::<_, String>(0), "XXXXXXX6789");
    assert_eq!(masked[0].get::<_, String>(1), "a***@example.com");
    let err = bob
        .simple_query("SELECT * FROM orders")
        .await
        .expect_err("analysts have no grant on orders");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));

    // The portal is up, and the administrator the demo prints signs in with the password alone.
    let login = http(
        api_port,
        "GET /web/login HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    assert!(login.contains("Sign in"), "{login}");
    let body = r#"{"user": "admin", "password": "admin-demo"}"#;
    let token = http(
        api_port,
        &format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(token.starts_with("HTTP/1.1 200"), "{token}");

    // SIGTERM lets the demo stop its PostgreSQL.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("demo status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One plain HTTP/1.1 exchange with the demo's API listener; the whole answer.
fn http(port: u16, request: &str) -> String {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the portal");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

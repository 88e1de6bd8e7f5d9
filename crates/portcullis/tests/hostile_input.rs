//! Malformed or hostile protocol input gets an error and a closed connection: no panic, no unbounded
//! buffering, no effect on other sessions.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use common::{fresh_database, Gateway, ALICE_PASSWORD, RESOURCE};
use portcullis_wire::{
    decode_backend, encode_sasl_initial_response, encode_sasl_response, encode_startup, peek_frame,
    AuthRequest, BackendMessage, ScramClient, StartupMessage, PROTOCOL_3_0,
};

/// A raw protocol client, to send what no driver would.
struct Raw {
    sock: TcpStream,
    buf: BytesMut,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Raw {
            sock,
            buf: BytesMut::new(),
        }
    }

    /// Reads one backend frame; None when the gateway closed the connection.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(h) = peek_frame(&self.buf, 1 << 24).unwrap() {
                if self.buf.len() >= h.total_len {
                    let frame = self.buf.split_to(h.total_len);
                    return Some((h.tag, frame[5..].to_vec()));
                }
            }
            let mut chunk = [0u8; 8192];
            match self.sock.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Logs in as alice and reads up to the first ReadyForQuery.
    fn login(port: u16) -> Raw {
        let mut raw = Raw::connect(port);
        let mut out = BytesMut::new();
        encode_startup(
            &StartupMessage {
                protocol_version: PROTOCOL_3_0,
                params: vec![
                    ("user".into(), "alice".into()),
                    ("database".into(), RESOURCE.into()),
                ],
            },
            &mut out,
        );
        raw.sock.write_all(&out).unwrap();
        let mut scram = ScramClient::new(ALICE_PASSWORD);
        loop {
            let (tag, body) = raw.frame().expect("login reply");
            out.clear();
            match decode_backend(tag, &body).unwrap() {
                BackendMessage::Authentication(AuthRequest::Sasl { .. }) => {
                    encode_sasl_initial_response("SCRAM-SHA-256", &scram.client_first(), &mut out)
                }
                BackendMessage::Authentication(AuthRequest::SaslContinue(data)) => {
                    encode_sasl_response(&scram.server_first(data).unwrap(), &mut out)
                }
                BackendMessage::ReadyForQuery(_) => return raw,
                BackendMessage::ErrorResponse(e) => panic!("login failed: {:?}", e.message()),
                _ => {}
            }
            if !out.is_empty() {
                raw.sock.write_all(&out).unwrap();
            }
        }
    }

    /// Reads frames until the connection closes; returns the SQLSTATEs of the errors seen.
    fn errors_until_closed(&mut self) -> Vec<String> {
        let mut codes = Vec::new();
        while let Some((tag, body)) = self.frame() {
            if let Ok(BackendMessage::ErrorResponse(e)) = decode_backend(tag, &body) {
                codes.push(e.sqlstate().unwrap_or("").to_string());
            }
        }
        codes
    }
}

async fn still_serves(gw: &Gateway) {
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    assert_eq!(
        client
            .query_one("SELECT 41 + 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        42
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_before_startup_closes_only_that_connection() {
    let pg = fresh_database("hostile_startup");
    let gw = Gateway::start(pg, "hostile_startup");
    let bystander = gw.connect("alice", ALICE_PASSWORD).await;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..40 {
        let mut raw = Raw::connect(gw.port);
        let len = 1 + (round * 37) % 300;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = raw.sock.write_all(&junk);
        let _ = raw.sock.shutdown(std::net::Shutdown::Write);
        raw.errors_until_closed();
    }
    // A startup packet announcing a huge length is refused before anything is buffered.
    let mut raw = Raw::connect(gw.port);
    raw.sock
        .write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .unwrap();
    raw.errors_until_closed();
    still_serves(&gw).await;
    assert_eq!(
        bystander
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_after_login_end_that_session_with_a_protocol_error() {
    let pg = fresh_database("hostile_session");
    let gw = Gateway::start(pg, "hostile_session");
    let bystander = gw.connect("alice", ALICE_PASSWORD).await;

    // Unknown message type.
    let mut raw = Raw::login(gw.port);
    raw.sock.write_all(&[b'?', 0, 0, 0, 4]).unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);

    // A length below the minimum.
    let mut raw = Raw::login(gw.port);
    raw.sock.write_all(&[b'Q', 0, 0, 0, 2]).unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);

    // An oversized message is refused from its header, before its body is read.
    let mut raw = Raw::login(gw.port);
    raw.sock
        .write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff, b'S'])
        .unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);

    // A Query whose text is not NUL-terminated / not UTF-8.
    let mut raw = Raw::login(gw.port);
    raw.sock
        .write_all(&[b'Q', 0, 0, 0, 7, 0xff, 0xfe, 0xfd])
        .unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);

    // A password message in the middle of a session.
    let mut raw = Raw::login(gw.port);
    raw.sock.write_all(&[b'p', 0, 0, 0, 5, 0]).unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);

    // A client that stalls half-way through a message harms nobody else.
    let mut stalled = Raw::login(gw.port);
    stalled
        .sock
        .write_all(&[b'Q', 0, 0, 0, 100, b'S', b'E'])
        .unwrap();
    still_serves(&gw).await;
    assert_eq!(
        bystander
            .query_one("SELECT 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stalls_during_login_is_disconnected() {
    let pg = fresh_database("hostile_stall");
    let gw = Gateway::start_with_config(pg, "hostile_stall", "startup_timeout_secs: 2");
    let mut raw = Raw::connect(gw.port);
    // Half a startup packet, then silence.
    raw.sock.write_all(&[0, 0, 0, 40, 0, 3]).unwrap();
    let started = std::time::Instant::now();
    raw.errors_until_closed();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stalled login was not cut off"
    );
    still_serves(&gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_statements_are_refused_without_harm() {
    let pg = fresh_database("hostile_nested");
    let gw = Gateway::start(pg, "hostile_nested");
    let client = gw.connect("alice", ALICE_PASSWORD).await;
    for depth in [200, 5_000, 100_000] {
        let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let unions = vec!["SELECT 1"; depth].join(" UNION ALL ");
        let concat = format!("SELECT {}", vec!["'a'"; depth].join(" || "));
        for sql in [parens, unions, concat] {
            // Refused or answered, the session and the gateway stay up.
            let _ = client.simple_query(&sql).await;
            assert_eq!(
                client
                    .query_one("SELECT 3", &[])
                    .await
                    .unwrap()
                    .get::<_, i32>(0),
                3
            );
        }
    }
    still_serves(&gw).await;
}

/// A fast-path FunctionCall body: `function` called with text arguments, a text result.
fn function_call(function: u32, args: &[&str]) -> Vec<u8> {
    let mut body = function.to_be_bytes().to_vec();
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&(args.len() as u16).to_be_bytes());
    for arg in args {
        body.extend_from_slice(&(arg.len() as i32).to_be_bytes());
        body.extend_from_slice(arg.as_bytes());
    }
    body.extend_from_slice(&0u16.to_be_bytes());
    let mut frame = vec![b'F'];
    frame.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Fast-path calls name a function by OID: one no function has, and an overload that runs SQL given as
/// text (`ts_rewrite(tsquery, text)`), are refused with the session intact, while its harmless
/// three-argument sibling runs; a call too short to name a function ends the session with a protocol
/// error.
#[tokio::test(flavor = "multi_thread")]
async fn fast_path_calls_are_refused_by_the_overload_they_name() {
    let db = "hostile_fast_path";
    let pg = fresh_database(db);
    let gw = Gateway::start(pg, db);
    let admin = common::direct(pg, db).await;
    let ts_rewrite: u32 = admin
        .query_one(
            "SELECT 'pg_catalog.ts_rewrite(tsquery, text)'::regprocedure::oid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut raw = Raw::login(gw.port);
    for (frame, why) in [
        (function_call(4_000_000_000, &[]), "no function has OID"),
        (
            function_call(ts_rewrite, &["a", "SELECT 'a'::tsquery, 'b'::tsquery"]),
            "runs SQL given as text",
        ),
    ] {
        raw.sock.write_all(&frame).unwrap();
        let (tag, body) = raw.frame().expect("an answer");
        let BackendMessage::ErrorResponse(e) = decode_backend(tag, &body).unwrap() else {
            panic!("not refused: {tag}");
        };
        assert_eq!(e.sqlstate(), Some("0A000"));
        assert!(
            e.message().unwrap_or_default().contains(why),
            "{:?}",
            e.message()
        );
        let (tag, _) = raw.frame().expect("ReadyForQuery");
        assert_eq!(tag, b'Z');
    }
    // The harmless overload runs: it is decided by its own arguments' count.
    let pure: u32 = admin
        .query_one(
            "SELECT 'pg_catalog.ts_rewrite(tsquery, tsquery, tsquery)'::regprocedure::oid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    raw.sock
        .write_all(&function_call(pure, &["a & b", "a", "c"]))
        .unwrap();
    let (tag, body) = raw.frame().expect("an answer");
    assert_eq!(tag, b'V', "{:?}", decode_backend(tag, &body));
    assert_eq!(raw.frame().expect("ReadyForQuery").0, b'Z');
    raw.sock.write_all(&[b'F', 0, 0, 0, 6, 0, 1]).unwrap();
    assert_eq!(raw.errors_until_closed(), vec!["08P01"]);
    still_serves(&gw).await;
}

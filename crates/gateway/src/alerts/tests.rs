//! Alert delivery against real HTTP receivers on loopback sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_notify::http::Client;
use portcullis_policy::Severity;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::worker::backoff;
use super::{Alert, AlertConfig, AlertError, AlertFormat, AlertKind, Alerter};

/// One request as the receiver saw it.
#[derive(Debug)]
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A webhook receiver answering with `statuses` in turn (then 200), recording every request.
async fn receiver(statuses: Vec<u16>) -> (u16, mpsc::UnboundedReceiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        while let Ok((stream, _)) = listener.accept().await {
            let status = statuses.next().unwrap_or(200);
            if let Some(request) = serve(stream, status).await {
                let _ = tx.send(request);
            }
        }
    });
    (port, rx)
}

/// Reads one request (head, then `Content-Length` bytes) and answers with `status`.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, status: u16) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut request = Request {
        head,
        body: buf[head_end + 4..].to_vec(),
    };
    let length: usize = request.header("content-length")?.parse().ok()?;
    while request.body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    let answer =
        format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(answer.as_bytes()).await.ok()?;
    let _ = stream.shutdown().await;
    Some(request)
}

fn config(url: String) -> AlertConfig {
    AlertConfig {
        webhook: Some(url),
        ..AlertConfig::default()
    }
}

fn alert(n: u32) -> Alert {
    Alert {
        time: time::macros::datetime!(2026-11-23 08:15:30.25 UTC),
        severity: Severity::High,
        kind: AlertKind::Statement,
        rule_id: "salaries".into(),
        rule_name: Some("Salary reads".into()),
        message: format!("salary table read #{n}"),
        user: "alice".into(),
        resource: "hr".into(),
        client_addr: "192.0.2.7:50123".into(),
        statement: Some("SELECT salary FROM hr.employees".into()),
        session_id: format!("s-{n}"),
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Request>) -> Request {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a request within 10 s")
        .expect("the receiver is running")
}

async fn nothing_more(rx: &mut mpsc::UnboundedReceiver<Request>, wait: Duration) {
    if let Ok(Some(r)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected request: {r:?}");
    }
}

#[tokio::test]
async fn an_alert_arrives_as_json_with_its_fields() {
    let (port, mut rx) = receiver(vec![]).await;
    let alerter = Alerter::start(&config(format!(
        "http://127.0.0.1:{port}/hooks/abc?x=1#frag"
    )))
    .unwrap();
    alerter.send(alert(1));
    let request = next(&mut rx).await;
    assert!(
        request.head.starts_with("POST /hooks/abc?x=1 HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert_eq!(request.header("host"), Some(format!("127.0.0.1:{port}")));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(
        request
            .header("user-agent")
            .is_some_and(|a| a.starts_with("portcullis/")),
        "{}",
        request.head
    );
    let expected = serde_json::json!({
        "time": "2026-11-23T08:15:30.25Z",
        "severity": "high",
        "kind": "statement",
        "rule_id": "salaries",
        "rule_name": "Salary reads",
        "message": "salary table read #1",
        "user": "alice",
        "resource": "hr",
        "client_addr": "192.0.2.7:50123",
        "statement": "SELECT salary FROM hr.employees",
        "session_id": "s-1",
    });
    assert_eq!(request.json(), expected);
    alerter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(alerter.dropped(), 0);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_alert_again_after_a_pause() {
    let (port, mut rx) = receiver(vec![500, 503]).await;
    let alerter = Alerter::start(&config(format!("http://127.0.0.1:{port}/"))).unwrap();
    let started = Instant::now();
    alerter.send(alert(1));
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    let third = next(&mut rx).await;
    assert_eq!(first.body, second.body);
    assert_eq!(second.body, third.body);
    // Two pauses: 200 ms, then 400 ms.
    assert!(
        started.elapsed() >= backoff(0) + backoff(1),
        "{:?}",
        started.elapsed()
    );
    // Delivered on the third try: nothing more is sent for it.
    nothing_more(&mut rx, Duration::from_millis(800)).await;
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_the_next_alert_goes_out() {
    let (port, mut rx) = receiver(vec![404]).await;
    let alerter = Alerter::start(&config(format!("http://127.0.0.1:{port}/gone"))).unwrap();
    alerter.send(alert(1));
    alerter.send(alert(2));
    assert_eq!(next(&mut rx).await.json()["session_id"], "s-1");
    assert_eq!(next(&mut rx).await.json()["session_id"], "s-2");
    nothing_more(&mut rx, Duration::from_millis(500)).await;
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn retries_stop_after_the_configured_number() {
    let (port, mut rx) = receiver(vec![500; 10]).await;
    let alerter = Alerter::start(&AlertConfig {
        retries: 1,
        ..config(format!("http://127.0.0.1:{port}/"))
    })
    .unwrap();
    alerter.send(alert(1));
    next(&mut rx).await;
    next(&mut rx).await;
    nothing_more(&mut rx, Duration::from_millis(800)).await;
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_down_receiver_never_blocks_send_and_the_queue_stays_bounded() {
    // A port that was just free: connections are refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let alerter = Alerter::start(&AlertConfig {
        queue: 100,
        ..config(format!("http://127.0.0.1:{port}/"))
    })
    .unwrap();
    let started = Instant::now();
    for n in 0..10_000 {
        alerter.send(alert(n));
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "send took {elapsed:?}");
    // The queue holds 100 and the worker may have taken one or two out.
    let dropped = alerter.dropped();
    assert!((9_890..=9_900).contains(&dropped), "dropped {dropped}");

    // Shutting down does not wait out the backoff of the alert in flight.
    let started = Instant::now();
    alerter.shutdown(Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    alerter.send(alert(0));
    assert_eq!(alerter.dropped(), dropped + 1);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            let _ = tx.send(());
        }
    });
    let alerter = Alerter::start(&AlertConfig {
        timeout_secs: 1,
        retries: 1,
        ..config(format!("http://127.0.0.1:{port}/"))
    })
    .unwrap();
    let started = Instant::now();
    alerter.send(alert(1));
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(5), accepted.recv())
            .await
            .unwrap();
    }
    // The second attempt came after the first timed out and a pause.
    assert!(started.elapsed() >= Duration::from_secs(1) + backoff(0));
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_delivers_what_is_queued() {
    let (port, mut rx) = receiver(vec![]).await;
    let alerter = Alerter::start(&config(format!("http://127.0.0.1:{port}/"))).unwrap();
    let clone = alerter.clone();
    for n in 0..5 {
        clone.send(alert(n));
    }
    let started = Instant::now();
    alerter.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for n in 0..5 {
        assert_eq!(next(&mut rx).await.json()["session_id"], format!("s-{n}"));
    }
    // Shutting down twice, or from a clone, is harmless.
    clone.shutdown(Duration::from_secs(1)).await;
    assert_eq!(alerter.dropped(), 0);
}

#[tokio::test]
async fn dropping_every_handle_ends_the_task() {
    let (port, mut rx) = receiver(vec![]).await;
    let alerter = Alerter::start(&config(format!("http://127.0.0.1:{port}/"))).unwrap();
    let task = alerter
        .webhook
        .as_ref()
        .and_then(|w| w.task.lock().unwrap().take())
        .unwrap();
    alerter.send(alert(7));
    drop(alerter);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next(&mut rx).await.json()["session_id"], "s-7");
}

#[tokio::test]
async fn slack_format_sends_one_escaped_text() {
    let (port, mut rx) = receiver(vec![]).await;
    let alerter = Alerter::start(&AlertConfig {
        format: AlertFormat::Slack,
        ..config(format!("http://127.0.0.1:{port}/services/T/B/X"))
    })
    .unwrap();
    let mut a = alert(1);
    a.message = "read of <salary> & more".into();
    alerter.send(a);
    let body = next(&mut rx).await.json();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 1, "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*[HIGH] read of &lt;salary&gt; &amp; more*"),
        "{text}"
    );
    assert!(text.contains("rule `salaries` (Salary reads)"), "{text}");
    assert!(
        text.contains("by `alice` on `hr` from 192.0.2.7:50123"),
        "{text}"
    );
    assert!(
        text.ends_with("```SELECT salary FROM hr.employees```"),
        "{text}"
    );
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn https_webhooks_verify_the_server_certificate() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.key_pair.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            if let Some(request) = serve(tls, 200).await {
                let _ = tx.send(request);
            }
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let alerter = Alerter::start_with(&config(format!("https://localhost:{port}/hook")), || {
        Client::with_tls(Arc::new(client))
    })
    .unwrap();
    alerter.send(alert(1));
    let request = next(&mut rx).await;
    assert_eq!(request.header("host"), Some(format!("localhost:{port}")));
    assert_eq!(request.json()["rule_id"], "salaries");
    alerter.shutdown(Duration::from_secs(5)).await;

    // With only the system CAs the self-signed certificate is refused: nothing arrives.
    let alerter = Alerter::start(&AlertConfig {
        retries: 0,
        ..config(format!("https://localhost:{port}/hook"))
    })
    .unwrap();
    alerter.send(alert(2));
    nothing_more(&mut rx, Duration::from_millis(500)).await;
    alerter.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn without_a_webhook_alerts_are_only_logged_and_need_no_runtime() {
    let alerter = Alerter::start(&AlertConfig::default()).unwrap();
    alerter.send(alert(1));
    assert_eq!(alerter.dropped(), 0);
    Alerter::disabled().send(alert(2));
}

#[test]
fn a_webhook_outside_a_runtime_is_an_error_not_a_panic() {
    let e = Alerter::start(&config("http://127.0.0.1:9/".into())).unwrap_err();
    assert!(matches!(e, AlertError::NoRuntime), "{e}");
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let err = |c: AlertConfig| Alerter::start(&c).unwrap_err().to_string();
    let e = err(config("ftp://example.com/".into()));
    assert!(
        e.starts_with("alerts.webhook: `ftp://example.com/` must start with http://"),
        "{e}"
    );
    let e = err(config("https://user:pw@example.com/".into()));
    assert!(e.contains("passwords in the URL are not supported"), "{e}");
    let e = err(config("http://example.com:99999/".into()));
    assert!(e.contains("`99999` is not a port number"), "{e}");
    let e = err(config("http:///path".into()));
    assert!(e.contains("no valid host"), "{e}");
    let e = err(config("http://example.com/a path".into()));
    assert!(e.contains("percent-encoded"), "{e}");
    let e = err(AlertConfig {
        queue: 0,
        ..config("http://example.com/".into())
    });
    assert_eq!(e, "alerts.queue: must be at least 1");
    let e = err(AlertConfig {
        timeout_secs: 0,
        ..config("http://example.com/".into())
    });
    assert_eq!(e, "alerts.timeout_secs: must be at least 1");
}

#[test]
fn backoff_doubles_from_200_ms_up_to_a_cap() {
    assert_eq!(backoff(0), Duration::from_millis(200));
    assert_eq!(backoff(1), Duration::from_millis(400));
    assert_eq!(backoff(4), Duration::from_millis(3200));
    assert_eq!(backoff(20), Duration::from_secs(30));
    assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
}

#[test]
fn the_configuration_section_parses_with_defaults_and_refuses_unknown_keys() {
    let c: AlertConfig =
        serde_yaml_ng::from_str("webhook: https://hooks.example.com/portcullis\n").unwrap();
    assert_eq!(
        c.webhook.as_deref(),
        Some("https://hooks.example.com/portcullis")
    );
    assert_eq!((c.queue, c.timeout_secs, c.retries), (1000, 10, 5));
    assert_eq!(c.format, AlertFormat::Json);
    let c: AlertConfig = serde_yaml_ng::from_str("format: slack\nqueue: 10\nretries: 0\n").unwrap();
    assert_eq!((c.format, c.queue, c.retries), (AlertFormat::Slack, 10, 0));
    assert!(serde_yaml_ng::from_str::<AlertConfig>("webhok: x\n").is_err());
    assert!(serde_yaml_ng::from_str::<AlertConfig>("format: teams\n").is_err());
}

//! The shared HTTP client against real HTTP and HTTPS receivers on loopback sockets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_notify::http::{Client, Endpoint, Failure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the receiver saw it.
#[derive(Debug)]
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Serves requests on `stream` until the client closes it, answering each with the next of
/// `statuses` (200 when they run out) and keeping the connection open.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    statuses: &std::sync::Mutex<std::vec::IntoIter<u16>>,
    tx: &mpsc::UnboundedSender<Request>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut request = Request {
            head,
            body: Vec::new(),
        };
        let length: usize = request
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        request.body = buf.drain(..length).collect();
        let status = statuses.lock().unwrap().next().unwrap_or(200);
        let answer = format!(
            "HTTP/1.1 {status} Whatever\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 2\r\n\r\nok"
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let _ = tx.send(request);
    }
}

/// A receiver: its port, its requests and how many connections it accepted.
async fn receiver(statuses: Vec<u16>) -> (u16, mpsc::UnboundedReceiver<Request>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    let statuses = Arc::new(std::sync::Mutex::new(statuses.into_iter()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let (statuses, tx) = (Arc::clone(&statuses), tx.clone());
            tokio::spawn(async move { serve(stream, &statuses, &tx).await });
        }
    });
    (port, rx, accepted)
}

#[tokio::test]
async fn posts_json_with_headers_over_one_kept_alive_connection() {
    let (port, mut rx, accepted) = receiver(vec![]).await;
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/hook?t=1"))
        .unwrap()
        .with_headers([("Authorization", "Bearer abc")])
        .unwrap();
    let client = Client::system().unwrap();
    client
        .post_json(&endpoint, &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    client
        .clone()
        .post_json_bytes(&endpoint, b"{\"n\":2}".to_vec())
        .await
        .unwrap();
    let first = rx.recv().await.unwrap();
    assert!(
        first.head.starts_with("POST /hook?t=1 HTTP/1.1\r\n"),
        "{}",
        first.head
    );
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(first.header("authorization").as_deref(), Some("Bearer abc"));
    assert_eq!(first.header("host"), Some(format!("127.0.0.1:{port}")));
    assert!(first
        .header("user-agent")
        .unwrap()
        .starts_with("portcullis/"));
    assert_eq!(first.body, br#"{"n":1}"#);
    assert_eq!(rx.recv().await.unwrap().body, br#"{"n":2}"#);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the clone shares the pool"
    );
}

#[tokio::test]
async fn statuses_say_whether_to_try_again_and_redirects_are_not_followed() {
    let (port, mut rx, _) = receiver(vec![503, 429, 404, 302]).await;
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let client = Client::system().unwrap();
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(client.post_json_bytes(&endpoint, "{}").await.unwrap_err());
    }
    assert_eq!(
        results,
        [
            Failure::Status(503),
            Failure::Status(429),
            Failure::Status(404),
            Failure::Status(302)
        ]
    );
    let transient: Vec<bool> = results.iter().map(Failure::is_transient).collect();
    assert_eq!(transient, [true, true, false, false]);
    assert_eq!(results[0].to_string(), "HTTP status 503");
    for _ in 0..4 {
        rx.recv().await.unwrap();
    }
    // The redirect's target (a closed port) was never tried: the next request is this receiver's.
    client.post_json_bytes(&endpoint, "{}").await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_and_a_silent_server_are_transient() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::system().unwrap();
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/secret-token")).unwrap();
    let failure = client.post_json_bytes(&endpoint, "{}").await.unwrap_err();
    assert!(matches!(failure, Failure::Connect(_)), "{failure:?}");
    assert!(failure.is_transient());
    assert!(!failure.to_string().contains("secret-token"), "{failure}");

    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let failure = client.post_json_bytes(&endpoint, "{}").await.unwrap_err();
    assert_eq!(failure, Failure::Timeout(Duration::from_millis(300)));
    assert_eq!(failure.to_string(), "no answer within 300ms");
}

#[tokio::test]
async fn https_checks_the_certificate_against_the_given_roots() {
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
        let statuses = Arc::new(std::sync::Mutex::new(Vec::new().into_iter()));
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, statuses, tx) = (acceptor.clone(), Arc::clone(&statuses), tx.clone());
            // Each connection on its own task: the first client keeps its connection open.
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, &statuses, &tx).await;
                }
            });
        }
    });
    let endpoint = Endpoint::parse(&format!("https://localhost:{port}/hook")).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = Client::with_tls(Arc::new(tls)).unwrap();
    client.post_json_bytes(&endpoint, "{}").await.unwrap();
    assert_eq!(rx.recv().await.unwrap().body, b"{}");

    // The system's CAs do not know the test's certificate.
    let failure = Client::system()
        .unwrap()
        .post_json_bytes(&endpoint, "{}")
        .await
        .unwrap_err();
    assert!(matches!(failure, Failure::Connect(_)), "{failure:?}");
    assert!(failure.to_string().contains("certificate"), "{failure}");
}

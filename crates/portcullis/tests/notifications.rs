//! Notifications of approval workflows end to end: a held statement e-mails its approvers (a real SMTP
//! receiver, aiosmtpd) and POSTs to webhooks (a real HTTP listener, JSON and Slack formats); its approval
//! e-mails the requester and lands in their inbox; failing webhooks are retried with backoff and every
//! failure recorded; a silent SMTP server or webhook never delays statements; a request filed while no
//! gateway runs is delivered once one starts. Real gateway process, real PostgreSQL, the real CLI.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::workflows::{as_user, held, ok, workflow_actions};
use common::{fresh_database, Gateway, ALICE_PASSWORD};
use portcullis_testkit::free_port;
use serde_json::Value;

const CAROL_PASSWORD: &str = "carol-pw";

/// How long a test waits for a delivery.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// A real SMTP server (aiosmtpd) writing each message it receives as JSON into a folder.
struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP receiver (tests/drivers/install.sh installs aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the SMTP receiver's ready line");
        assert_eq!(line.trim(), "ready", "the SMTP receiver did not start");
        SmtpSink { port, dir, child }
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut numbered: Vec<(u64, Value)> = std::fs::read_dir(self.dir.path())
            .expect("read mail dir")
            .filter_map(|e| {
                let path = e.ok()?.path();
                let n = path.file_stem()?.to_str()?.parse().ok()?;
                (path.extension()? == "json").then_some(())?;
                let text = std::fs::read_to_string(&path).ok()?;
                Some((n, serde_json::from_str(&text).expect("message JSON")))
            })
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        numbered.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits until `n` messages have arrived and returns them.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        wait_until("e-mail", || {
            let messages = self.messages();
            (messages.len() >= n).then_some(messages)
        })
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test HTTP receiver answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Silence,
}

/// One request a receiver saw.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A real HTTP/1.1 listener on loopback: answers its requests with `first`, in turn, then `then`.
struct Webhook {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    fn start(first: &[Answer], then: Answer) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new((first.to_vec(), then, AtomicUsize::new(0)));
        let seen = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                let answers = Arc::clone(&answers);
                std::thread::spawn(move || {
                    let Some(request) = read_request(&stream) else {
                        return;
                    };
                    seen.lock().unwrap().push(request);
                    let (first, then, count) = &*answers;
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    match first.get(n).copied().unwrap_or(*then) {
                        Answer::Status(status) => {
                            let _ = (&stream).write_all(
                                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .as_bytes(),
                            );
                        }
                        Answer::Silence => std::thread::sleep(Duration::from_secs(3600)),
                    }
                });
            }
        });
        Webhook { port, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_until("webhook request", || {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
    }
}

fn read_request(mut stream: &TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        head,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// A TCP listener that accepts connections and never says a word: an SMTP server that hangs.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {DELIVERY_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `notifications:` section: `smtp` (a port, plain SMTP), `webhooks` (YAML flow mappings) and the
/// retry settings.
fn notifications_config(smtp: Option<u16>, webhooks: &[String], max_attempts: u32) -> String {
    let mut config = String::from("notifications:\n");
    if let Some(port) = smtp {
        config.push_str(&format!(
            "  smtp: {{host: 127.0.0.1, port: {port}, from: 'Portcullis <portcullis@example.com>', \
             tls: none, timeout_secs: 2}}\n"
        ));
    }
    config.push_str("  webhooks:\n");
    for hook in webhooks {
        config.push_str(&format!("    - {hook}\n"));
    }
    config.push_str(&format!(
        "  retry: {{max_attempts: {max_attempts}, base_delay_secs: 1}}\n"
    ));
    config
}

/// The approver carol (with an e-mail address), alice's address, a table, and a policy where alice's
/// deletes need carol's approval and `hr-read` can be asked for.
async fn setup(gw: &Gateway) {
    gw.cli_with_password(
        &["user", "add", "carol", "--password-stdin"],
        CAROL_PASSWORD,
    );
    gw.cli(&[
        "user",
        "set-attribute",
        "carol",
        "email",
        "carol@example.com",
    ]);
    gw.cli(&[
        "user",
        "set-attribute",
        "alice",
        "email",
        "alice@example.com",
    ]);
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE TABLE public.t(id int primary key); INSERT INTO t VALUES (1), (2), (3);",
        )
        .await
        .expect("fixtures");
    gw.apply_policy_live(
        "grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
rules:
  - id: deletes-need-approval
    when: {statement_kinds: [DELETE]}
    action: require-approval
    workflow: dba
    message: deletes are reviewed
workflows:
  - {name: dba, approvers: {users: [carol]}}
on_demand:
  - {name: hr-read, resource: app, grants: [{objects: ['hr.*'], privileges: [select]}], workflow: dba}
",
    );
}

/// The workflow audit records of request `id` whose action is `action`, as `detail` texts.
fn audit_details(gw: &Gateway, id: &str, action: &str) -> Vec<String> {
    gw.audit(&["--kind", "workflows"])
        .into_iter()
        .filter(|r| r["request_id"].as_i64() == id.parse().ok() && r["action"] == action)
        .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn inbox_notifications(gw: &Gateway, user: &str, password: &str, all: bool) -> Vec<Value> {
    let mut args = vec!["inbox", "--notifications", "--json"];
    if all {
        args.push("--all");
    }
    ok(as_user(gw, user, password, &args))
        .lines()
        .map(|l| serde_json::from_str(l).expect("inbox line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_statement_notifies_its_approvers_and_its_approval_the_requester() {
    let smtp = SmtpSink::start();
    let ops = Webhook::start(&[], Answer::Status(200));
    let chat = Webhook::start(&[], Answer::Status(204));
    let config = notifications_config(
        Some(smtp.port),
        &[
            format!(
                "{{name: ops, url: '{}', headers: {{Authorization: Bearer t0ken}}}}",
                ops.url("/hooks/ops?k=1")
            ),
            format!(
                "{{name: chat, url: '{}', format: slack}}",
                chat.url("/chat")
            ),
        ],
        4,
    );
    let pg = fresh_database("notify_roundtrip");
    let gw = Gateway::start_with_config(pg, "notify_roundtrip", &config);
    setup(&gw).await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let statement = "DELETE FROM t WHERE id = 1";
    let id = held(&alice, statement).await;

    // The approver's e-mail names the request, the statement and how to decide.
    let mail = &smtp.wait_for(1)[0];
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["carol@example.com"]),
        "{mail}"
    );
    assert_eq!(mail["mail_from"], "portcullis@example.com");
    assert!(
        mail["to"].as_str().unwrap().contains("carol@example.com"),
        "{mail}"
    );
    assert_eq!(
        mail["subject"],
        format!("[portcullis] request {id} (query) by alice on app needs approval")
    );
    assert_eq!(mail["content_type"], "text/plain");
    let body = mail["body"].as_str().unwrap();
    for needle in [
        &format!("request:   {id}"),
        "user:      alice",
        "resource:  app",
        &format!("statement: {statement}"),
        "deletes are reviewed",
        &format!("portcullis approve {id}"),
        &format!("portcullis reject {id}"),
    ] {
        assert!(body.contains(needle), "{needle:?} not in {body}");
    }

    // The JSON webhook gets the fields, with its header; the Slack one a single text.
    let post = &ops.wait_for(1)[0];
    assert!(
        post.head.starts_with("POST /hooks/ops?k=1 HTTP/1.1"),
        "{}",
        post.head
    );
    assert_eq!(
        post.header("authorization").as_deref(),
        Some("Bearer t0ken")
    );
    let json = post.json();
    assert_eq!(json["event"], "requested");
    assert_eq!(json["request_id"].to_string(), id);
    assert_eq!(json["kind"], "query");
    assert_eq!(json["requester"], "alice");
    assert_eq!(json["resource"], "app");
    assert_eq!(json["statement"], statement);
    assert_eq!(json["recipients"], serde_json::json!(["carol"]));
    assert_eq!(json["approve_command"], format!("portcullis approve {id}"));
    let slack = chat.wait_for(1)[0].json();
    assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains(&format!("portcullis approve {id}")), "{text}");
    assert!(text.contains(statement), "{text}");

    // carol's inbox has it, unread, and `inbox` mentions it under the requests to decide.
    let carol_inbox = inbox_notifications(&gw, "carol", CAROL_PASSWORD, false);
    assert_eq!(carol_inbox.len(), 1, "{carol_inbox:?}");
    assert_eq!(carol_inbox[0]["event"], "requested");
    assert!(carol_inbox[0]["read_at"].is_null());
    let listing = ok(as_user(&gw, "carol", CAROL_PASSWORD, &["inbox"]));
    assert!(listing.contains("1 unread notification(s)"), "{listing}");

    // The approval (from the CLI) reaches alice by e-mail and in her inbox.
    ok(as_user(
        &gw,
        "carol",
        CAROL_PASSWORD,
        &["approve", &id, "--comment", "go ahead"],
    ));
    let mail = &smtp.wait_for(2)[1];
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["alice@example.com"]),
        "{mail}"
    );
    assert_eq!(
        mail["subject"],
        format!("[portcullis] request {id} (query) approved")
    );
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("was approved by carol"), "{body}");
    assert!(body.contains("Comment: go ahead"), "{body}");
    assert_eq!(ops.wait_for(2)[1].json()["event"], "approved");
    let alice_inbox = inbox_notifications(&gw, "alice", ALICE_PASSWORD, false);
    assert_eq!(alice_inbox.len(), 1, "{alice_inbox:?}");
    assert_eq!(alice_inbox[0]["event"], "approved");
    assert_eq!(alice_inbox[0]["request_id"].to_string(), id);
    let marked = ok(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &["inbox", "--mark-read", "all"],
    ));
    assert!(marked.contains("1 notification(s) marked read"), "{marked}");
    assert!(inbox_notifications(&gw, "alice", ALICE_PASSWORD, false).is_empty());
    let all = inbox_notifications(&gw, "alice", ALICE_PASSWORD, true);
    assert!(all[0]["read_at"].is_i64(), "{all:?}");

    // Each delivery is an audit record.
    let notified = wait_until("audit records", || {
        let d = audit_details(&gw, &id, "notified");
        (d.len() >= 6).then_some(d)
    });
    assert!(
        notified
            .iter()
            .any(|d| d.starts_with("email carol@example.com (attempt 1)")),
        "{notified:?}"
    );
    assert!(
        notified
            .iter()
            .any(|d| d.starts_with("webhook chat (attempt 1)")),
        "{notified:?}"
    );
    let actions = workflow_actions(&gw, &id);
    assert!(actions.contains(&"approved".to_string()), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_webhooks_are_retried_with_backoff_and_every_failure_is_recorded() {
    let flaky = Webhook::start(
        &[Answer::Status(500), Answer::Status(500)],
        Answer::Status(200),
    );
    let down = Webhook::start(&[], Answer::Status(503));
    let wrong = Webhook::start(&[], Answer::Status(404));
    let config = notifications_config(
        None,
        &[
            format!("{{name: flaky, url: '{}'}}", flaky.url("/")),
            format!("{{name: down, url: '{}'}}", down.url("/")),
            format!("{{name: wrong, url: '{}'}}", wrong.url("/")),
        ],
        3,
    );
    let pg = fresh_database("notify_retry");
    let gw = Gateway::start_with_config(pg, "notify_retry", &config);
    setup(&gw).await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let started = Instant::now();
    let id = held(&alice, "DELETE FROM t WHERE id = 2").await;

    // 500, 500, then 200: delivered at the third attempt, after pauses of 1 s and 2 s.
    let posts = flaky.wait_for(3);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(posts[2].json()["request_id"].to_string(), id);
    let failed = wait_until("the given-up deliveries", || {
        let d = audit_details(&gw, &id, "notify-failed");
        (d.len() >= 2).then_some(d)
    });
    let retries = audit_details(&gw, &id, "notify-retry");
    let flaky_retries: Vec<_> = retries
        .iter()
        .filter(|d| d.starts_with("webhook flaky"))
        .collect();
    assert_eq!(flaky_retries.len(), 2, "{retries:?}");
    assert!(
        flaky_retries.iter().all(|d| d.contains("HTTP status 500")),
        "{retries:?}"
    );
    assert!(
        retries
            .iter()
            .any(|d| d.contains("(attempt 1 of 3; next in 1s)")),
        "{retries:?}"
    );
    assert!(
        retries
            .iter()
            .any(|d| d.contains("(attempt 2 of 3; next in 2s)")),
        "{retries:?}"
    );
    let notified = audit_details(&gw, &id, "notified");
    assert!(
        notified
            .iter()
            .any(|d| d.starts_with("webhook flaky (attempt 3)")),
        "{notified:?}"
    );
    // A 503 every time: given up after max_attempts; a 404 will not improve: given up at once.
    assert!(
        failed.contains(&"webhook down: HTTP status 503 (attempt 3; given up)".to_string()),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"webhook wrong: HTTP status 404 (attempt 1; given up)".to_string()),
        "{failed:?}"
    );
    assert_eq!(down.received().len(), 3);
    assert_eq!(wrong.received().len(), 1);

    // `portcullis notifications` shows where each delivery stands, with every attempt's error.
    let out = gw.cli(&["notifications", "--request", &id, "--json"]);
    let deliveries: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("delivery line is JSON"))
        .collect();
    let of = |name: &str| {
        deliveries
            .iter()
            .find(|d| d["target"] == name)
            .unwrap_or_else(|| panic!("no delivery to {name}: {deliveries:?}"))
    };
    assert_eq!(
        (&of("flaky")["status"], &of("flaky")["attempts"]),
        (&"delivered".into(), &3.into())
    );
    let errors: Vec<&str> = of("flaky")["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["HTTP status 500", "HTTP status 500"]);
    assert_eq!(of("down")["status"], "failed");
    assert_eq!(of("down")["last_error"], "HTTP status 503");
    assert_eq!(
        (&of("wrong")["status"], &of("wrong")["attempts"]),
        (&"failed".into(), &1.into())
    );
    let table = String::from_utf8_lossy(&gw.cli(&["notifications"]).stdout).into_owned();
    assert!(
        table.contains("LAST ERROR") && table.contains("HTTP status 404"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_smtp_server_or_webhook_never_delays_statements() {
    let silent_hook = Webhook::start(&[], Answer::Silence);
    let config = notifications_config(
        Some(silent_listener()),
        &[format!(
            "{{name: silent, url: '{}', timeout_secs: 2}}",
            silent_hook.url("/")
        )],
        2,
    );
    let pg = fresh_database("notify_silent");
    let gw = Gateway::start_with_config(pg, "notify_silent", &config);
    setup(&gw).await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;

    // Each held statement files a request, so each queues an e-mail and a webhook that will hang.
    let mut slowest = Duration::ZERO;
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 1..=5 {
        let t = Instant::now();
        ids.push(held(&alice, &format!("DELETE FROM t WHERE id = {i} + 100")).await);
        slowest = slowest.max(t.elapsed());
        let t = Instant::now();
        alice
            .simple_query("SELECT count(*) FROM t")
            .await
            .expect("select");
        slowest = slowest.max(t.elapsed());
    }
    let total = started.elapsed();
    eprintln!("10 statements with hanging receivers: {total:?} in all, slowest {slowest:?}");
    // Waiting on either receiver would take its 2 s timeout at least.
    assert!(
        slowest < Duration::from_secs(1),
        "slowest statement {slowest:?}"
    );

    // Meanwhile both receivers time out, are retried once and recorded as failed.
    let id = &ids[0];
    let failed = wait_until("the given-up deliveries", || {
        let d = audit_details(&gw, id, "notify-failed");
        (d.len() >= 2).then_some(d)
    });
    assert!(
        failed
            .iter()
            .any(|d| d.starts_with("email carol@example.com: ")
                && d.ends_with("(attempt 2; given up)")),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"webhook silent: no answer within 2s (attempt 2; given up)".to_string()),
        "{failed:?}"
    );
    let retries = audit_details(&gw, id, "notify-retry");
    assert!(
        retries
            .iter()
            .any(|d| d.starts_with("email carol@example.com: ")),
        "{retries:?}"
    );
    // The store's inbox does not depend on any of it.
    assert_eq!(
        inbox_notifications(&gw, "carol", CAROL_PASSWORD, false).len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_filed_while_no_gateway_runs_is_delivered_when_one_starts() {
    let smtp = SmtpSink::start();
    let ops = Webhook::start(&[], Answer::Status(200));
    let config = notifications_config(
        Some(smtp.port),
        &[format!("{{name: ops, url: '{}'}}", ops.url("/"))],
        4,
    );
    let pg = fresh_database("notify_offline");
    let mut gw = Gateway::start_with_config(pg, "notify_offline", &config);
    setup(&gw).await;
    gw.kill9();

    let out = ok(as_user(
        &gw,
        "alice",
        ALICE_PASSWORD,
        &[
            "request",
            "access",
            "--bundle",
            "hr-read",
            "--for",
            "30m",
            "--reason",
            "Q3 report",
        ],
    ));
    let id = out
        .split("request ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no request id in {out}"))
        .to_string();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        smtp.messages().is_empty() && ops.received().is_empty(),
        "nobody is delivering"
    );

    gw.spawn();
    let mail = &smtp.wait_for(1)[0];
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["carol@example.com"]),
        "{mail}"
    );
    assert_eq!(
        mail["subject"],
        format!("[portcullis] request {id} (access) by alice on app needs approval")
    );
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("bundle hr-read for 1800s"), "{body}");
    assert!(body.contains("reason:    Q3 report"), "{body}");
    let json = ops.wait_for(1)[0].json();
    assert_eq!(json["kind"], "access");
    assert_eq!(json["request_id"].to_string(), id);
}

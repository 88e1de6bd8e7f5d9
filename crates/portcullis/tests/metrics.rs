//! `/metrics` end to end: the real `portcullis serve` in strict durability, with the API and the
//! metrics listener configured, in front of a real PostgreSQL; statements allowed and refused, a
//! resource whose server is down, then both listeners scraped with curl and the series read.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{denial, fresh_database, Gateway, ALICE_PASSWORD};
use portcullis_testkit::free_port;

/// Alice may do anything on `app` and connect to `down` (whose server is not running); deletes are
/// refused.
const POLICY: &str = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: alice}
    resource: down
    objects: ['*']
    privileges: [all]
rules:
  - id: no-deletes
    when: {statement_kinds: [DELETE]}
    action: block
";

/// A GET with curl: status, `Content-Type` and body.
fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code} %{content_type}"]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = stdout.rsplit_once('\n').unwrap_or_else(|| {
        panic!(
            "curl {url}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        status.parse().expect("HTTP status"),
        content_type.to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `series` (name and labels exactly as exposed), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Scrapes `url` until `done` holds for the text (background threads move some series). Waits
/// without blocking the runtime, whose tasks drive the test's connections.
async fn scrape_until(url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, text) = get(url, None);
        assert_eq!(status, 200, "{text}");
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never happened:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn counters_move_and_both_listeners_serve_them() {
    let (api_port, metrics_port) = (free_port(), free_port());
    let shipped = tempfile::tempdir().unwrap();
    let config = format!(
        "audit:\n  durability: strict\n  sinks:\n    - {{name: siem, type: jsonl, path: {}}}\n\
         api:\n  listen: 127.0.0.1:{api_port}\nmetrics:\n  listen: 127.0.0.1:{metrics_port}\n",
        shipped.path().join("audit.jsonl").display()
    );
    let gw = Gateway::start_with_config(fresh_database("metrics"), "metrics", &config);
    gw.cli_with_password(
        &[
            "resource",
            "add",
            "down",
            "--host",
            "127.0.0.1",
            "--port",
            &free_port().to_string(),
            "--database",
            "down",
            "--db-user",
            "app",
            "--tls",
            "disable",
            "--password-stdin",
        ],
        "secret",
    );
    gw.apply_policy_live(POLICY);
    let open = format!("http://127.0.0.1:{metrics_port}/metrics");

    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute("CREATE TABLE public.t(a int)")
        .await
        .unwrap();
    for _ in 0..3 {
        alice.simple_query("SELECT a FROM public.t").await.unwrap();
    }
    let (code, message) = denial(alice.simple_query("DELETE FROM public.t").await);
    assert_eq!(code, "42501", "{message}");
    let down = tokio_postgres::connect(
        &gw.conn_str("alice", ALICE_PASSWORD)
            .replace("dbname=app", "dbname=down"),
        tokio_postgres::NoTls,
    )
    .await;
    assert!(down.is_err(), "the resource's server is down");

    let text = scrape_until(&open, "indexing the statements", |text| {
        sample(text, "portcullis_audit_indexed_records_total").unwrap_or(0.0) >= 5.0
    })
    .await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(value(&text, "portcullis_sessions_open"), 1.0, "alice's");
    assert!(value(&text, "portcullis_sessions_opened_total") >= 1.0);
    assert!(value(&text, r#"portcullis_statements_total{decision="allow"}"#) >= 4.0);
    assert_eq!(
        value(&text, r#"portcullis_statements_total{decision="deny"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_policy_decisions_total{stage="statement",outcome="deny"}"#
        ),
        1.0
    );
    assert!(
        value(
            &text,
            r#"portcullis_policy_decisions_total{stage="statement",outcome="allow"}"#
        ) >= 4.0
    );
    for stage in ["pre-connection", "post-connection"] {
        let series =
            format!(r#"portcullis_policy_decisions_total{{stage="{stage}",outcome="allow"}}"#);
        assert!(value(&text, &series) >= 2.0, "alice twice: {series}");
    }
    assert_eq!(
        value(
            &text,
            r#"portcullis_upstream_connect_errors_total{resource="down"}"#
        ),
        1.0
    );
    assert!(value(&text, "portcullis_audit_journal_appended_bytes_total") > 0.0);
    assert!(value(&text, "portcullis_audit_journal_records_total") >= 5.0);
    // Strict durability: every result waited for an fdatasync.
    assert!(value(&text, "portcullis_audit_journal_fsync_seconds_count") >= 1.0);
    assert!(value(&text, "portcullis_audit_journal_fsync_seconds_sum") > 0.0);
    assert!(value(&text, "portcullis_audit_index_lag_records") >= 0.0);
    // A healthy journal: no failed write, and nothing that makes the gateway refuse statements.
    for step in ["append", "sync"] {
        let series = format!(r#"portcullis_audit_journal_errors_total{{step="{step}"}}"#);
        assert_eq!(value(&text, &series), 0.0, "{series}");
    }
    assert_eq!(value(&text, "portcullis_audit_journal_failed"), 0.0);
    assert!(sample(&text, "portcullis_mfa_holds_total").is_some());
    // Each sink's lag is published every few seconds; the file sink catches up.
    scrape_until(&open, "the audit sink's lag to reach 0", |text| {
        sample(text, r#"portcullis_audit_sink_lag_records{sink="siem"}"#) == Some(0.0)
    })
    .await;

    // A session that ends is no longer open.
    drop(alice);
    scrape_until(&open, "the session to close", |text| {
        sample(text, "portcullis_sessions_open") == Some(0.0)
    })
    .await;

    // The API's /metrics wants an auditor or an admin.
    let api = format!("http://127.0.0.1:{api_port}/metrics");
    let (status, _, body) = get(&api, None);
    assert_eq!(status, 401, "{body}");
    let auditor = String::from_utf8_lossy(
        &gw.cli(&["token", "create", "--name", "scraper", "--role", "auditor"])
            .stdout,
    )
    .trim()
    .to_owned();
    let (status, content_type, text) = get(&api, Some(&auditor));
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(
        value(&text, r#"portcullis_statements_total{decision="deny"}"#),
        1.0
    );
}

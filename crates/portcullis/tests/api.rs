//! The HTTP API end to end: the real `portcullis serve` with `api:` configured, a real PostgreSQL and
//! a real HTTP client (curl): login with password and TOTP computed here, token expiry with the test
//! clock moved forward, a held statement approved through the API and then run through the gateway,
//! the role table, HTTPS, and schemathesis fuzzing `/openapi.json` without a single 5xx.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fresh_database, Gateway, ALICE_PASSWORD};
use portcullis_store::totp;
use portcullis_testkit::free_port;
use serde_json::{json, Value};
use time::OffsetDateTime;

const CAROL_PASSWORD: &str = "carol-pw";

/// Alice may do anything on the test resource; her deletes need carol's approval.
const POLICY: &str = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
workflows:
  - name: default
    approvers: {users: [carol]}
rules:
  - id: deletes-need-approval
    when: {statement_kinds: [DELETE]}
    action: require-approval
";

/// A gateway with the API on its own port and the clock offset file under test control.
struct ApiGateway {
    gw: Gateway,
    base: String,
    offset_file: PathBuf,
    _clock_dir: tempfile::TempDir,
}

impl ApiGateway {
    fn start(database: &str, api_extra: &str) -> ApiGateway {
        Self::start_scheme(database, api_extra, "http")
    }

    fn start_scheme(database: &str, api_extra: &str, scheme: &str) -> ApiGateway {
        let clock_dir = tempfile::tempdir().unwrap();
        let offset_file = clock_dir.path().join("offset");
        std::fs::write(&offset_file, "0").unwrap();
        let port = free_port();
        let config = format!(
            "testing:\n  clock_offset_file: {}\napi:\n  listen: 127.0.0.1:{port}\n{api_extra}",
            offset_file.display()
        );
        let gw =
            Gateway::start_with_policy(fresh_database(database), database, &config, Some(POLICY));
        let api = ApiGateway {
            gw,
            base: format!("{scheme}://localhost:{port}"),
            offset_file,
            _clock_dir: clock_dir,
        };
        api.gw.cli_with_password(
            &["user", "add", "carol", "--password-stdin"],
            CAROL_PASSWORD,
        );
        api
    }

    /// An HTTP call with curl: status and JSON body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.call_with(&[], method, path, token, body)
    }

    fn call_with(
        &self,
        curl_args: &[&str],
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
            .args(curl_args);
        if let Some(token) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(body) = body {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body.to_string(),
            ]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("run curl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (text, status) = stdout.rsplit_once('\n').unwrap_or_else(|| {
            panic!(
                "curl {path}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let status = status.trim().parse().expect("HTTP status");
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }

    fn login(&self, user: &str, password: &str, code: Option<String>) -> (u16, Value) {
        let body = json!({"user": user, "password": password, "totp": code});
        self.call("POST", "/api/v1/login", None, Some(&body))
    }

    /// A token from `portcullis token create`.
    fn named_token(&self, name: &str, role: &str) -> String {
        let out = self
            .gw
            .cli(&["token", "create", "--name", name, "--role", role]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn advance(&self, secs: i64) {
        std::fs::write(&self.offset_file, secs.to_string()).unwrap();
    }

    fn now(&self) -> OffsetDateTime {
        let offset: i64 = std::fs::read_to_string(&self.offset_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        OffsetDateTime::now_utc() + time::Duration::seconds(offset)
    }
}

/// Enrols `user` in MFA with the CLI and returns the TOTP secret.
fn enroll(gw: &Gateway, user: &str) -> Vec<u8> {
    let out = gw.cli(&["mfa", "enroll", user, "--no-qr"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    totp::secret_from_uri(stdout.lines().next().unwrap_or_default()).expect("secret in the URI")
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_through_the_api_lets_the_statement_run_and_tokens_expire() {
    let api = ApiGateway::start("api_flow", "  token_ttl_secs: 120\n");
    let carol_secret = enroll(&api.gw, "carol");
    let alice = api.gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute("CREATE TABLE t(id int); INSERT INTO t VALUES (1), (2);")
        .await
        .unwrap();
    let err = alice
        .simple_query("DELETE FROM t WHERE id = 1")
        .await
        .unwrap_err();
    let message = err
        .as_db_error()
        .expect("database error")
        .message()
        .to_owned();
    let id: i64 = message
        .split("request ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no request id in {message}"));

    // Not enrolled: API login is refused with how to enrol; a wrong password says nothing more.
    let (status, body) = api.login("alice", ALICE_PASSWORD, None);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("mfa_not_enrolled")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("portcullis mfa enroll alice"));
    let (status, body) = api.login("carol", "wrong", None);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credentials"))
    );

    let code = totp::code_at(&carol_secret, api.now());
    let (status, body) = api.login("carol", CAROL_PASSWORD, Some(code.clone()));
    assert_eq!(status, 200, "{body}");
    let carol = body["token"].as_str().unwrap().to_owned();
    let (status, body) = api.login("carol", CAROL_PASSWORD, Some(code));
    assert_eq!((status, body["code"].as_str()), (401, Some("mfa_replayed")));

    let (status, inbox) = api.call("GET", "/api/v1/inbox", Some(&carol), None);
    assert_eq!(status, 200, "{inbox}");
    let held = &inbox.as_array().unwrap()[0];
    assert_eq!(held["id"], id);
    assert_eq!(held["query"]["text"], "DELETE FROM t WHERE id = 1");
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        Some(&carol),
        Some(&json!({"comment": "ok"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/requests/{id}/reject"),
        Some(&carol),
        Some(&json!({})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_pending")),
        "{body}"
    );

    let rows = alice
        .simple_query("DELETE FROM t WHERE id = 1")
        .await
        .expect("approved delete runs");
    assert!(rows
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(1))));

    // The token lives 120 s of the test clock.
    api.advance(119);
    assert_eq!(api.call("GET", "/api/v1/me", Some(&carol), None).0, 200);
    api.advance(121);
    let (status, body) = api.call("GET", "/api/v1/me", Some(&carol), None);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );

    // An auditor token sees the whole story in the audit log.
    let auditor = api.named_token("audit-bot", "auditor");
    let (status, records) = api.call("GET", "/api/v1/audit?kind=workflows", Some(&auditor), None);
    assert_eq!(status, 200, "{records}");
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for want in ["requested", "endorsed", "approved", "used"] {
        assert!(actions.contains(&want), "{want} not in {actions:?}");
    }
    let (status, records) = api.call(
        "GET",
        "/api/v1/audit?kind=connections&resource=",
        Some(&auditor),
        None,
    );
    assert_eq!(status, 200);
    let logins: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["auth_result"].as_str())
        .collect();
    for want in [
        "api: login ok",
        "api: bad password",
        "api: not enrolled in mfa",
        "api: expired token",
    ] {
        assert!(logins.contains(&want), "{want} not in {logins:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reservation_filed_through_the_api_notifies_both_sides() {
    let api = ApiGateway::start("api_reserve", "  require_mfa: false\n");
    api.gw
        .cli_with_password(&["user", "add", "dave", "--password-stdin"], "dave-pw");
    api.gw.apply_policy_live(&format!(
        "{POLICY}reservations:\n  - {{resource: app, workflow: default, users: [dave]}}\n"
    ));
    let login = |user: &str, password: &str| {
        let (status, body) = api.login(user, password, None);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    };
    let dave = login("dave", "dave-pw");
    let carol = login("carol", CAROL_PASSWORD);

    let window = |from: &str, until: &str| json!({"resource": "app", "from": from, "until": until, "reason": "release 4.2"});
    let (status, body) = api.call(
        "POST",
        "/api/v1/reservations",
        Some(&dave),
        Some(&window("now", "tomorrow")),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("until"),
        "{body}"
    );
    let (status, body) = api.call(
        "POST",
        "/api/v1/reservations",
        Some(&carol),
        Some(&window("now", "+1h")),
    );
    assert_eq!(status, 422, "carol needs no reservation: {body}");
    let (status, reservation) = api.call(
        "POST",
        "/api/v1/reservations",
        Some(&dave),
        Some(&window("now", "+2h")),
    );
    assert_eq!(status, 200, "{reservation}");
    assert_eq!(
        (&reservation["kind"], &reservation["status"]),
        (&json!("reservation"), &json!("pending"))
    );
    let id = reservation["id"].as_i64().unwrap();

    // The approver is told, in the inbox the API exposes; the request waits in /inbox.
    let (status, told) = api.call(
        "GET",
        "/api/v1/me/notifications?unread=true",
        Some(&carol),
        None,
    );
    assert_eq!(status, 200, "{told}");
    let told = told.as_array().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (&told[0]["event"], &told[0]["request_id"]),
        (&json!("requested"), &json!(id))
    );
    assert!(
        told[0]["body"].as_str().unwrap().contains("release 4.2"),
        "{}",
        told[0]
    );
    let (_, inbox) = api.call("GET", "/api/v1/inbox", Some(&carol), None);
    assert_eq!(inbox[0]["id"], id);
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        Some(&carol),
        Some(&json!({"comment": "go"})),
    );
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("approved")),
        "{body}"
    );

    // The requester hears the outcome; marking read empties the unread list.
    let (_, told) = api.call("GET", "/api/v1/me/notifications", Some(&dave), None);
    let events: Vec<&str> = told
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["event"].as_str())
        .collect();
    assert_eq!(events, ["approved"], "{told}");
    let (status, body) = api.call(
        "POST",
        "/api/v1/me/notifications/read",
        Some(&carol),
        Some(&json!({})),
    );
    assert_eq!((status, &body["marked"]), (200, &json!(1)), "{body}");
    let (_, told) = api.call(
        "GET",
        "/api/v1/me/notifications?unread=true",
        Some(&carol),
        None,
    );
    assert_eq!(told, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_is_refused_what_it_must_not_do() {
    let api = ApiGateway::start("api_authz", "  require_mfa: false\n  admin_roles: [ops]\n");
    api.gw.cli(&["role", "add", "ops"]);
    api.gw.cli(&["role", "grant", "ops", "carol"]);
    let admin = api.named_token("admin-bot", "admin");
    let auditor = api.named_token("audit-bot", "auditor");
    let login = |user: &str, password: &str| {
        let (status, body) = api.login(user, password, None);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    };
    let alice = login("alice", ALICE_PASSWORD);
    let carol = login("carol", CAROL_PASSWORD);
    // (method, path, body, [admin token, auditor token, alice, carol (member of ops)] allowed)
    let table: Vec<(&str, &str, Option<Value>, [bool; 4])> = vec![
        ("GET", "/api/v1/users", None, [true, false, false, true]),
        (
            "POST",
            "/api/v1/roles",
            Some(json!({"name": "r"})),
            [true, false, false, true],
        ),
        (
            "PUT",
            "/api/v1/policy",
            Some(json!({"text": POLICY})),
            [true, false, false, true],
        ),
        ("GET", "/api/v1/policy", None, [true, true, false, true]),
        ("GET", "/api/v1/audit", None, [true, true, false, true]),
        ("GET", "/api/v1/monitor", None, [true, true, false, true]),
        ("GET", "/api/v1/requests", None, [true, true, false, true]),
        (
            "DELETE",
            "/api/v1/mfa/nobody",
            None,
            [true, false, false, true],
        ),
        (
            "GET",
            "/api/v1/me/requests",
            None,
            [false, false, true, true],
        ),
        ("GET", "/api/v1/inbox", None, [false, false, true, true]),
        (
            "GET",
            "/api/v1/me/notifications",
            None,
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/v1/me/mfa/verify",
            Some(json!({"code": "123456"})),
            [false, false, true, true],
        ),
    ];
    for (method, path, body, allowed) in &table {
        for (i, (who, token)) in [
            ("admin", &admin),
            ("auditor", &auditor),
            ("alice", &alice),
            ("carol", &carol),
        ]
        .iter()
        .enumerate()
        {
            let (status, reply) = api.call(method, path, Some(token), body.as_ref());
            if allowed[i] {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{method} {path} as {who}: {status} {reply}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} as {who}: {reply}");
                assert!(
                    reply["code"].is_string() && reply["message"].is_string(),
                    "{reply}"
                );
            }
        }
        let (status, reply) = api.call(method, path, None, body.as_ref());
        assert_eq!(
            (status, reply["code"].as_str()),
            (401, Some("unauthenticated"))
        );
        let (status, reply) = api.call(method, path, Some("pct_forged"), body.as_ref());
        assert_eq!(
            (status, reply["code"].as_str()),
            (401, Some("invalid_token"))
        );
    }
    api.gw.cli(&["token", "revoke", "audit-bot"]);
    let (status, reply) = api.call("GET", "/api/v1/audit", Some(&auditor), None);
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("token_revoked"))
    );
    let listed =
        String::from_utf8_lossy(&api.gw.cli(&["token", "list", "--json"]).stdout).into_owned();
    assert!(listed.contains("admin-bot") && !listed.contains(&admin));
}

/// A self-signed certificate for localhost in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_speaks_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let tls = format!(
        "  tls: {{cert: {}, key: {}}}\n",
        cert.display(),
        key.display()
    );
    let api = ApiGateway::start_scheme("api_tls", &tls, "https");
    let ca = cert.to_string_lossy().into_owned();
    let (status, doc) = api.call_with(&["--cacert", &ca], "GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/login"].is_object(), "{doc}");
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(api.base.replace("https://", "http://") + "/openapi.json")
        .output()
        .unwrap();
    assert!(!plain.status.success() || plain.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error() {
    let api = ApiGateway::start("api_fuzz", "  require_mfa: false\n");
    let admin = api.named_token("schemathesis-admin-bot-7f3c", "admin");
    let out = Command::new("schemathesis")
        .args(["run", &format!("{}/openapi.json", api.base)])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-time",
            "60",
            "--workers",
            "2",
        ])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args([
            "--phases",
            "examples,coverage,fuzzing",
            // Generous: on a loaded 2-core CI machine a request can wait seconds for a core; a hang
            // still fails.
            "--request-timeout",
            "30",
        ])
        // Health checks judge the fuzzer's own data generation (too many generated values filtered
        // out for a path of two string parameters, now and then), not the API: only 5xx fail here.
        .args(["--suppress-health-check", "all"])
        .env(
            "SCHEMATHESIS_HOOKS",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/drivers/schemathesis_hooks.py"
            ),
        )
        // Its crash cache goes to the working directory; keep it out of the source tree.
        .current_dir(api.gw.dir.path())
        .output()
        .expect("run schemathesis (tests/drivers/install.sh installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );
    // The API still answers (the fuzzer may well have revoked its own token on the way).
    assert_eq!(api.call("GET", "/openapi.json", None, None).0, 200);
}

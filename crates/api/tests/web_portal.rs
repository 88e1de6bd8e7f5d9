//! The web portal against a real gateway and a real PostgreSQL (testkit), in one process: cookie
//! flags, the content security policy, CSRF and role refusals, login with TOTP, the idle timeout, and
//! the SQL console refusing what psql is refused, identically. `browser_scenario` drives the same
//! setup from a real headless Chromium (tests/browser/portal.mjs); `page_p95_with_10k_records`
//! prints page timings (a measurement, not a timed assertion).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use portcullis_api::{ApiConfig, ApiState};
use portcullis_gateway::{Gateway, GatewayConfig};
use portcullis_store::{
    totp, AuditEvent, AuditObject, Clock, Durability, MasterKey, ResourceSpec, StatementEvent,
    Store,
};
use portcullis_testkit::{PgServer, APP_PASSWORD, APP_USER};
use tokio::sync::watch;
use tower::ServiceExt;

/// alice asks, carol approves, audrey audits, bob has no role at all.
const USERS: [&str; 4] = ["alice", "carol", "audrey", "bob"];

/// Alice may use public.*; hr needs an approved request, MFA for each read, and shows SSNs masked;
/// public.secrets is blocked; deletes need carol's approval.
const POLICY: &str = r#"grants:
  - to: {user: alice}
    resource: app
    objects: ['public.*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['public.*']
    privileges: [all]
workflows:
  - name: default
    approvers: {users: [carol]}
on_demand:
  - name: hr-read
    resource: app
    grants: [{objects: ['hr.*'], privileges: [select]}]
    workflow: default
    max_duration: 8h
rules:
  - id: no-secrets
    when: {objects: [public.secrets]}
    action: block
    message: the secrets table is closed
  - id: deletes-need-approval
    when: {statement_kinds: [DELETE]}
    action: require-approval
masks:
  - id: mask-ssn
    resource: app
    columns: ['hr.*.ssn']
    mask: {kind: partial, keep_last: 4}
cedar: |
  @id("hr-mfa")
  @mfa
  permit(principal, action == Action::"select", resource in Schema::"hr");
"#;

/// The portal's MFA page as MFA notices name it.
const MFA_PAGE: &str = "https://portal.example.com/web/mfa";

fn password(user: &str) -> String {
    format!("{user}-pw")
}

/// A gateway, the API with the portal, a store and a clock the test moves.
struct Portal {
    _dir: tempfile::TempDir,
    store: Store,
    router: Router,
    gateway: SocketAddr,
    offset_file: PathBuf,
    offset: i64,
    secrets: HashMap<String, Vec<u8>>,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
    state: ApiState,
}

impl Portal {
    async fn start(database: &str, tweak: impl FnOnce(&mut ApiConfig)) -> Portal {
        let pg = PgServer::shared();
        pg.create_database(database).expect("create database");
        fixtures(pg, database).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(
            &dir.path().join("store.db"),
            MasterKey::generate(),
            Durability::Strict,
        )
        .expect("store");
        store
            .add_resource(&ResourceSpec {
                name: "app".into(),
                host: pg.host().into(),
                port: pg.port(),
                database: database.into(),
                tls: portcullis_store::TlsMode::Disable,
                username: APP_USER.into(),
                password: APP_PASSWORD.to_owned().into(),
            })
            .expect("resource");
        let offset_file = dir.path().join("clock-offset");
        std::fs::write(&offset_file, "0").expect("offset");
        let clock = Clock::with_offset_file(&offset_file);
        let mut secrets = HashMap::new();
        for user in USERS {
            store.add_user(user, &password(user)).expect("user");
            let enrolment = store.enroll_mfa(user, clock.now()).expect("enrol");
            secrets.insert(user.to_owned(), enrolment.secret);
        }
        store.add_role("portcullis-auditor").expect("role");
        store
            .grant_role("audrey", "portcullis-auditor")
            .expect("grant");
        store.apply_policy("test", POLICY, "test").expect("policy");

        let mut config = GatewayConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().to_path_buf(),
        );
        config.clock = clock.clone();
        // What `api.public_url: https://portal.example.com` gives the gateway.
        config.mfa_verify_url = Some(MFA_PAGE.into());
        let gateway = Gateway::bind(config, store.clone()).await.expect("gateway");
        let gateway_addr = gateway.local_addr().expect("gateway address");
        let (stop, stopped) = watch::channel(false);
        let gw_stop = stopped.clone();
        tokio::spawn(async move {
            let _ = gateway.serve(gw_stop).await;
        });
        let mut api = ApiConfig {
            gateway_addr: Some(gateway_addr),
            ..ApiConfig::default()
        };
        tweak(&mut api);
        let state = ApiState::new(store.clone(), clock, api);
        Portal {
            router: portcullis_api::router(state.clone()),
            state,
            _dir: dir,
            store,
            gateway: gateway_addr,
            offset_file,
            offset: 0,
            secrets,
            stop,
            stopped,
        }
    }

    /// A fresh TOTP code of `user`: the clock moves a step on first, since a code is accepted once.
    fn code(&mut self, user: &str) -> String {
        self.offset += 30;
        std::fs::write(&self.offset_file, self.offset.to_string()).expect("offset");
        let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(self.offset);
        totp::code_at(&self.secrets[user], now)
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }

    /// A browser signed in as `user`.
    async fn signed_in(&mut self, user: &str) -> Browser {
        let mut b = self.browser();
        let form = b.get("/web/login").await;
        let code = self.code(user);
        let pw = password(user);
        let r = b
            .post(
                "/web/login",
                &[
                    ("csrf", &csrf_of(&form.body)),
                    ("user", user),
                    ("password", &pw),
                    ("totp", &code),
                ],
                &[],
            )
            .await;
        assert_eq!(r.status, 303, "login of {user}: {}", r.body);
        b
    }

    /// psql's view: a plain client logged in with the password.
    async fn psql(&self, user: &str) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.gateway.ip().to_string())
            .port(self.gateway.port())
            .user(user)
            .password(password(user))
            .dbname("app");
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect through the gateway");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn fixtures(pg: &PgServer, database: &str) {
    let (client, connection) = tokio_postgres::connect(
        &pg.url(APP_USER, APP_PASSWORD, database),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.people (name text, ssn text);
             INSERT INTO hr.people VALUES ('Ann', '123-45-6789'), ('Ben', '987-65-4321');
             CREATE TABLE public.secrets (x int);
             CREATE TABLE public.orders (id int, item text);
             INSERT INTO public.orders SELECT g, 'item ' || g FROM generate_series(1, 250) g;",
        )
        .await
        .expect("fixtures");
}

/// A response as the test reads it.
struct Resp {
    status: u16,
    headers: axum::http::HeaderMap,
    body: String,
}

/// A cookie jar in front of the router (in process, no sockets).
struct Browser {
    router: Router,
    cookies: HashMap<String, String>,
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Browser {
    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Resp {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = request
            .header("cookie", cookie)
            .body(body)
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().expect("ascii cookie");
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if set.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.send(Request::get(path), Body::empty()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request, Body::from(form_encode(form))).await
    }

    /// Runs `sql` in the console and waits for its end; the result fragment.
    async fn console(&mut self, csrf: &str, sql: &str) -> String {
        let mut r = self
            .post(
                "/web/console/run",
                &[("csrf", csrf), ("resource", "app"), ("sql", sql)],
                &[("hx-request", "true")],
            )
            .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.body.contains("every 1s") {
            assert!(Instant::now() < deadline, "console statement did not end");
            tokio::time::sleep(Duration::from_millis(200)).await;
            r = self.get("/web/console/job").await;
        }
        r.body
    }
}

fn header<'a>(r: &'a Resp, name: &str) -> Vec<&'a str> {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cookies_are_strict_http_only_and_pages_carry_a_csp() {
    let mut portal = Portal::start("web_cookies", |_| {}).await;
    let mut b = portal.browser();
    let form = b.get("/web/login").await;
    assert_eq!(form.status, 200);
    let csp = header(&form, "content-security-policy").join("");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&form, "x-frame-options"), ["DENY"]);
    let login_cookie = header(&form, "set-cookie").join("");
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
    // Plain HTTP: no Secure flag (a browser would drop the cookie).
    assert!(!login_cookie.contains("Secure"), "{login_cookie}");

    let code = portal.code("alice");
    let signed = b
        .post(
            "/web/login",
            &[
                ("csrf", &csrf_of(&form.body)),
                ("user", "alice"),
                ("password", "alice-pw"),
                ("totp", &code),
            ],
            &[],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = header(&signed, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("pc_session="))
        .expect("a session cookie")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/web"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    let home = b.get("/web").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Hello, alice"));
    assert!(!home.body.contains("<script>"), "no inline script");

    // Over HTTPS the same cookies are Secure.
    let https = portcullis_api::router_with(portal.state.clone(), true);
    let mut tls_browser = Browser {
        router: https,
        cookies: HashMap::new(),
    };
    let form = tls_browser.get("/web/login").await;
    assert!(header(&form, "set-cookie").join("").contains("; Secure"));

    // Logout ends the session: the old cookie no longer opens a page.
    let csrf = csrf_of(&home.body);
    let old = b.cookies.clone();
    let out = b.post("/web/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!(out.status, 303);
    b.cookies = old;
    let after = b.get("/web").await;
    assert_eq!(after.status, 303);
    assert_eq!(header(&after, "location"), ["/web/login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_takes_the_password_and_a_fresh_totp_code() {
    let mut portal = Portal::start("web_login", |_| {}).await;
    let mut b = portal.browser();
    let form = b.get("/web/login").await;
    let csrf = csrf_of(&form.body);
    let wrong = b
        .post(
            "/web/login",
            &[
                ("csrf", &csrf),
                ("user", "alice"),
                ("password", "alice-pw"),
                ("totp", "000000"),
            ],
            &[],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("wrong code for alice"),
        "{}",
        wrong.body
    );
    let code = portal.code("alice");
    let bad_password = b
        .post(
            "/web/login",
            &[
                ("csrf", &csrf),
                ("user", "alice"),
                ("password", "nope"),
                ("totp", &code),
            ],
            &[],
        )
        .await;
    assert_eq!(bad_password.status, 401);
    // The login form itself needs its double-submit token.
    let forged = b
        .post(
            "/web/login",
            &[
                ("csrf", "forged"),
                ("user", "alice"),
                ("password", "alice-pw"),
                ("totp", &code),
            ],
            &[],
        )
        .await;
    assert_eq!(forged.status, 403);
    let ok = b
        .post(
            "/web/login",
            &[
                ("csrf", &csrf),
                ("user", "alice"),
                ("password", "alice-pw"),
                ("totp", &code),
            ],
            &[],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_posts_without_the_csrf_token_are_refused() {
    let mut portal = Portal::start("web_csrf", |_| {}).await;
    let mut b = portal.signed_in("alice").await;
    let page = b.get("/web/requests").await;
    let csrf = csrf_of(&page.body);
    let ask = |token: &'static str| {
        vec![
            ("csrf", token),
            ("target", "bundle:hr-read"),
            ("duration", "1h"),
            ("reason", "Q3 report"),
        ]
    };
    // Another site's form: the cookie comes along, the token does not.
    let forged = b.post("/web/requests", &ask("")[1..], &[]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = b.post("/web/requests", &ask("0123abcd"), &[]).await;
    assert_eq!(wrong.status, 403);
    let wrong_header = b
        .post("/web/requests", &ask("")[1..], &[("x-csrf-token", "0123")])
        .await;
    assert_eq!(wrong_header.status, 403);
    assert!(portal
        .store
        .list_requests(&Default::default())
        .expect("requests")
        .is_empty());

    let mut form = ask("");
    form[0].1 = &csrf;
    let sent = b.post("/web/requests", &form, &[]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let page = b.get("/web/requests").await;
    assert!(page.body.contains("Request #1 sent"), "{}", page.body);
    assert_eq!(
        portal
            .store
            .list_requests(&Default::default())
            .expect("requests")
            .len(),
        1
    );
    // htmx sends the token as a header.
    let by_header = b
        .post("/web/notifications/read", &[], &[("x-csrf-token", &csrf)])
        .await;
    assert_eq!(by_header.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn role_checks_refuse_unprivileged_users() {
    let mut portal = Portal::start("web_roles", |_| {}).await;
    let mut bob = portal.signed_in("bob").await;
    for path in [
        "/web/audit",
        "/web/policy",
        "/web/audit/1",
        "/web/users",
        "/web/policy/explain",
        "/web/policy/versions",
        "/web/policy/versions/1",
        "/web/sessions?id=s1",
        "/web/roles",
        "/web/resources",
        "/web/tokens",
    ] {
        let r = bob.get(path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let home = bob.get("/web").await;
    assert!(!home.body.contains("/web/audit"), "no audit link for bob");
    let csrf = csrf_of(&home.body);
    let enrol = bob
        .post("/web/admin/mfa", &[("csrf", &csrf), ("user", "alice")], &[])
        .await;
    assert_eq!(enrol.status, 403);

    // Separation of duty is the workflows crate's: alice cannot approve her own request.
    let mut alice = portal.signed_in("alice").await;
    let page = alice.get("/web/requests").await;
    let csrf = csrf_of(&page.body);
    let form = [
        ("csrf", csrf.as_str()),
        ("target", "bundle:hr-read"),
        ("duration", "1h"),
        ("reason", "Q3 report"),
    ];
    alice.post("/web/requests", &form, &[]).await;
    let own = alice
        .post(
            "/web/inbox/1/approve",
            &[("csrf", &csrf), ("comment", "me")],
            &[("hx-request", "true")],
        )
        .await;
    assert!(own.body.contains("flash bad"), "{}", own.body);
    assert_eq!(header(&own, "x-portcullis-status"), ["403"]);

    let mut audrey = portal.signed_in("audrey").await;
    assert_eq!(audrey.get("/web/audit").await.status, 200);
    assert_eq!(audrey.get("/web/policy").await.status, 200);
    assert_eq!(audrey.get("/web/policy/explain").await.status, 200);
    assert_eq!(audrey.get("/web/policy/versions").await.status, 200);
    // An auditor reads; administration is for admins.
    for path in ["/web/roles", "/web/resources", "/web/tokens", "/web/users"] {
        let r = audrey.get(path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_sessions_end() {
    let mut portal = Portal::start("web_idle", |c| {
        c.web_idle_timeout = Duration::from_millis(300)
    })
    .await;
    let mut b = portal.signed_in("alice").await;
    assert_eq!(b.get("/web").await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = b.get("/web").await;
    assert_eq!(r.status, 303);
    assert_eq!(header(&r, "location"), ["/web/login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_is_refused_what_psql_is_refused() {
    let mut portal = Portal::start("web_console", |_| {}).await;
    let psql = portal.psql("alice").await;
    let refused = psql
        .simple_query("SELECT * FROM public.secrets")
        .await
        .expect_err("blocked over psql");
    let db = refused.as_db_error().expect("a database error");
    let (code, message) = (db.code().code().to_owned(), db.message().to_owned());
    assert!(message.contains("the secrets table is closed"), "{message}");

    let mut b = portal.signed_in("alice").await;
    let page = b.get("/web/console").await;
    let csrf = csrf_of(&page.body);
    let result = b.console(&csrf, "SELECT * FROM public.secrets").await;
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    assert!(
        result.contains(&format!("<b>ERROR {code}</b>: {escaped}")),
        "console said: {result}\npsql said: {code} {message}"
    );

    // An allowed statement: a grid, paged.
    let rows = b
        .console(&csrf, "SELECT id, item FROM public.orders ORDER BY id")
        .await;
    assert!(rows.contains("<th>item</th>"), "{rows}");
    assert!(rows.contains("<td>item 100</td>") && !rows.contains("<td>item 101</td>"));
    assert!(rows.contains("page 1 of 3"), "{rows}");
    let second = b.get("/web/console/job?page=1").await;
    assert!(second.body.contains("<td>item 101</td>"));

    // Console sessions are marked as such in the audit log, and they are the user's.
    portal.store.audit().flush().expect("flush");
    let records = portal
        .store
        .query_audit(&portcullis_store::AuditFilter {
            user: Some("alice".into()),
            limit: 1000,
            ..Default::default()
        })
        .expect("audit");
    assert!(records.iter().any(|r| matches!(&r.event,
        AuditEvent::Connection(c) if c.application_name.as_deref() == Some("portcullis-console"))));
    let denied: Vec<_> = records
        .iter()
        .filter(
            |r| matches!(&r.event, AuditEvent::Statement(s) if s.text.contains("public.secrets")),
        )
        .collect();
    assert_eq!(denied.len(), 2, "one refusal over psql, one in the console");

    // A ticket is no password: psql cannot log in as the console without one.
    let mut config = tokio_postgres::Config::new();
    config
        .host(portal.gateway.ip().to_string())
        .port(portal.gateway.port())
        .user("alice")
        .password("alice-pw")
        .dbname("app")
        .application_name("portcullis-console");
    assert!(config.connect(tokio_postgres::NoTls).await.is_err());
    let _ = &portal.stopped;
}

/// A statement record for the charts, the replay and the benchmark.
fn statement(
    session: &str,
    at: i64,
    user: &str,
    text: &str,
    deny: bool,
    objects: &[&str],
) -> AuditEvent {
    AuditEvent::Statement(StatementEvent {
        session_id: session.into(),
        at,
        user: user.into(),
        resource: "app".into(),
        client_addr: "127.0.0.1:5000".into(),
        text: text.into(),
        kind: "SELECT".into(),
        objects: objects
            .iter()
            .map(|o| AuditObject {
                name: (*o).into(),
                operation: "select".into(),
            })
            .collect(),
        param_count: 0,
        rows: Some(1),
        duration_us: 150,
        decision: if deny { "deny" } else { "allow" }.into(),
        outcome: "ok".into(),
        sqlstate: None,
        message: None,
        policy: None,
    })
}

/// `text` as the portal escapes it.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn now_micros() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).expect("micros")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_page_shows_what_policy_explain_decides() {
    let mut portal = Portal::start("web_explain", |_| {}).await;
    let mut audrey = portal.signed_in("audrey").await;
    let page = audrey.get("/web/policy/explain").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    let ask = |sql: &'static str| {
        vec![
            ("user", "alice"),
            ("resource", "app"),
            ("sql", sql),
            ("client_addr", "10.1.2.3"),
        ]
    };
    let mut form = ask("SELECT * FROM public.secrets; SELECT id FROM public.orders");
    form.push(("csrf", &csrf));
    let r = audrey.post("/web/policy/explain", &form, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The first statement: its components, the rule that fired and the reason; the second is allowed.
    assert!(r.body.contains("Statement 1"), "{}", r.body);
    assert!(r.body.contains("<td>public.secrets</td>"), "{}", r.body);
    assert!(r.body.contains("no-secrets (block)"), "{}", r.body);
    assert!(r.body.contains("the secrets table is closed"), "{}", r.body);
    assert!(r.body.contains("<td>public.orders</td>"), "{}", r.body);
    assert!(r.body.contains("client 10.1.2.3"), "{}", r.body);
    assert!(r.body.contains("version 1 (in force)"), "{}", r.body);

    // The page and `policy explain` are one function: the library's report for the same request
    // carries the reasons the page shows.
    let policy = portcullis_policy::Policy::from_yaml(POLICY, "test").expect("policy");
    let compiled = portcullis_policy::CompiledPolicy::compile(&policy);
    let ctx = portcullis_policy::Context::new("alice", "app");
    let report = portcullis_policy::explain::explain(
        &compiled,
        "test",
        &portcullis_policy::explain::Request {
            ctx: &ctx,
            search_path: portcullis_policy::explain::DEFAULT_SEARCH_PATH,
            now: time::OffsetDateTime::now_utc(),
            rows: None,
            sql: "SELECT * FROM public.secrets; SELECT id FROM public.orders",
        },
    );
    assert_eq!(report.verdict, "deny");
    for s in &report.statements {
        let shown = html_escape(&s.reason);
        assert!(
            r.body.contains(&shown),
            "the page shows {:?}: {}",
            s.reason,
            r.body
        );
    }

    // Held for approval, and the user's roles come from the store when none are given.
    let mut form = ask("DELETE FROM public.orders");
    form.push(("csrf", &csrf));
    let held = audrey.post("/web/policy/explain", &form, &[]).await;
    assert!(held.body.contains("require-approval"), "{}", held.body);
    assert!(held.body.contains("deletes-need-approval"), "{}", held.body);

    // MFA for hr: missing, then met with the box ticked.
    let mut form = vec![
        ("user", "alice"),
        ("resource", "app"),
        ("sql", "SELECT name FROM hr.people"),
        ("csrf", csrf.as_str()),
    ];
    let without = audrey.post("/web/policy/explain", &form, &[]).await;
    assert!(
        without.body.contains("requirement missing"),
        "{}",
        without.body
    );
    form.push(("mfa_verified", "on"));
    let with = audrey.post("/web/policy/explain", &form, &[]).await;
    assert!(with.body.contains("requirement met"), "{}", with.body);

    // A form the library cannot read says why, keeping what was typed.
    let mut form = ask("SELECT 1");
    form.push(("location", "Germany"));
    form.push(("csrf", &csrf));
    let bad = audrey.post("/web/policy/explain", &form, &[]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("ISO 3166-1"), "{}", bad.body);
    assert!(bad.body.contains("SELECT 1</textarea>"), "{}", bad.body);

    // The statement travels in a POST: no token, no explanation.
    let forged = audrey
        .post("/web/policy/explain", &ask("SELECT 1"), &[])
        .await;
    assert_eq!(forged.status, 403);
    assert!(!forged.body.contains("Statement 1"));
    // bob has a token of his own but no auditor role.
    let mut bob = portal.signed_in("bob").await;
    let home = bob.get("/web").await;
    let bob_csrf = csrf_of(&home.body);
    let mut form = ask("SELECT 1");
    form.push(("csrf", &bob_csrf));
    let refused = bob.post("/web/policy/explain", &form, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_versions_list_and_diff_against_the_one_before() {
    let mut portal = Portal::start("web_versions", |_| {}).await;
    let changed = POLICY.replace(
        "    action: block\n    message: the secrets table is closed",
        "    action: audit",
    );
    assert_ne!(changed, POLICY);
    let v2 = portal
        .store
        .apply_policy("edited.yaml", &changed, "carol")
        .expect("apply");
    let mut audrey = portal.signed_in("audrey").await;
    let list = audrey.get("/web/policy/versions").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("2 version(s)"), "{}", list.body);
    let newest = list
        .body
        .find(r#"id="version-2""#)
        .expect("version 2 listed");
    let oldest = list
        .body
        .find(r#"id="version-1""#)
        .expect("version 1 listed");
    assert!(newest < oldest, "newest first");
    assert!(list.body.contains("in force"));

    let diff = audrey.get(&format!("/web/policy/versions/{v2}")).await;
    assert_eq!(diff.status, 200, "{}", diff.body);
    assert!(
        diff.body
            .contains("against <a href=\"/web/policy/versions/1\">version 1</a>"),
        "{}",
        diff.body
    );
    assert!(
        diff.body
            .contains(r#"<span class="del">-     action: block</span>"#),
        "{}",
        diff.body
    );
    assert!(diff
        .body
        .contains(r#"<span class="del">-     message: the secrets table is closed</span>"#));
    assert!(
        diff.body
            .contains(r#"<span class="add">+     action: audit</span>"#),
        "{}",
        diff.body
    );
    assert!(diff.body.contains(r#"<span class="same">  grants:</span>"#));
    assert!(
        diff.body
            .contains("+1</span> <span class=\"diff-del\">−2</span>"),
        "{}",
        diff.body
    );

    let first = audrey.get("/web/policy/versions/1").await;
    assert!(first.body.contains("the first version"), "{}", first.body);
    assert_eq!(audrey.get("/web/policy/versions/99").await.status, 404);

    // The JSON API lists the same versions for the same role.
    let api = portal
        .router
        .clone()
        .oneshot(
            Request::get("/api/v1/policy/versions")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(api.status(), 401, "the API needs its own login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_pages_manage_roles_and_tokens_through_the_api() {
    let mut portal = Portal::start("web_admin", |_| {}).await;
    portal.store.add_role("portcullis-admin").expect("role");
    portal
        .store
        .grant_role("carol", "portcullis-admin")
        .expect("grant");
    let mut carol = portal.signed_in("carol").await;

    let roles = carol.get("/web/roles").await;
    assert_eq!(roles.status, 200, "{}", roles.body);
    assert!(roles.body.contains("portcullis-auditor"), "{}", roles.body);
    assert!(roles.body.contains("audrey"));
    let csrf = csrf_of(&roles.body);

    // Forged: nothing made.
    let forged = carol.post("/web/roles", &[("name", "analysts")], &[]).await;
    assert_eq!(forged.status, 403);
    assert!(!portal
        .store
        .list_roles()
        .expect("roles")
        .iter()
        .any(|r| r.name == "analysts"));

    let made = carol
        .post("/web/roles", &[("csrf", &csrf), ("name", "analysts")], &[])
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(carol
        .get("/web/roles")
        .await
        .body
        .contains("role analysts added"));
    let again = carol
        .post("/web/roles", &[("csrf", &csrf), ("name", "analysts")], &[])
        .await;
    assert_eq!(again.status, 303);
    let page = carol.get("/web/roles").await;
    assert!(
        page.body.contains("flash bad"),
        "the API's refusal is shown: {}",
        page.body
    );

    let added = carol
        .post(
            "/web/roles/analysts/members",
            &[("csrf", &csrf), ("name", "alice")],
            &[],
        )
        .await;
    assert_eq!(added.status, 303);
    let members = |store: &Store| {
        store
            .list_roles()
            .expect("roles")
            .into_iter()
            .find(|r| r.name == "analysts")
            .map(|r| r.members)
            .unwrap_or_default()
    };
    assert_eq!(members(&portal.store), ["alice"]);
    let removed = carol
        .post(
            "/web/roles/analysts/members/alice/remove",
            &[("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(members(&portal.store).is_empty());

    // Resources: listed, never their password.
    let resources = carol.get("/web/resources").await;
    assert_eq!(resources.status, 200);
    assert!(
        resources.body.contains("<td>app</td>"),
        "{}",
        resources.body
    );
    assert!(!resources.body.contains(APP_PASSWORD));

    // Tokens: the secret once, in the answer that made it.
    let made = carol
        .post(
            "/web/tokens",
            &[
                ("csrf", &csrf),
                ("name", "ci"),
                ("role", "auditor"),
                ("expires", "30d"),
            ],
            &[],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let marker = r#"<div class="card notice" id="token-secret"><p>Copy the token now: it is shown only this once.</p><pre>"#;
    let start = made.body.find(marker).expect("the secret is shown") + marker.len();
    let secret = made.body[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(secret.len() >= 20, "{secret}");
    let list = carol.get("/web/tokens").await;
    assert!(list.body.contains("<td>ci</td>"), "{}", list.body);
    assert!(
        !list.body.contains(&secret),
        "the list never shows a secret"
    );
    let bad = carol
        .post(
            "/web/tokens",
            &[("csrf", &csrf), ("name", "x"), ("role", "root")],
            &[],
        )
        .await;
    assert!(bad.body.contains("flash bad"), "{}", bad.body);
    assert!(!bad.body.contains("token-secret"));
    let revoked = carol
        .post("/web/tokens/ci/revoke", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(revoked.status, 303);
    assert!(portal
        .store
        .list_api_tokens()
        .expect("tokens")
        .iter()
        .any(|t| t.name.as_deref() == Some("ci") && t.revoked_at.is_some()));

    // An auditor with a valid token is still no admin: nothing is made.
    let mut audrey = portal.signed_in("audrey").await;
    let audrey_csrf = csrf_of(&audrey.get("/web").await.body);
    for (path, form) in [
        ("/web/tokens", vec![("name", "sneaky"), ("role", "admin")]),
        ("/web/roles", vec![("name", "sneaky")]),
        (
            "/web/roles/portcullis-admin/members",
            vec![("name", "audrey")],
        ),
        ("/web/tokens/ci/revoke", vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", &audrey_csrf));
        let r = audrey.post(path, &form, &[]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert!(!portal
        .store
        .list_roles()
        .expect("roles")
        .iter()
        .any(|r| r.name == "sneaky"));
    assert!(!portal
        .store
        .list_api_tokens()
        .expect("tokens")
        .iter()
        .any(|t| t.name.as_deref() == Some("sneaky")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_charts_top_users_and_objects_and_replay_by_session_id() {
    let mut portal = Portal::start("web_charts", |_| {}).await;
    let t = now_micros() - 60_000_000;
    let events = [
        statement(
            "sess-42",
            t,
            "bob",
            "SELECT * FROM public.secrets",
            true,
            &["public.secrets"],
        ),
        statement(
            "sess-42",
            t + 1_000,
            "bob",
            "SELECT * FROM public.secrets",
            true,
            &["public.secrets"],
        ),
        statement(
            "sess-42",
            t + 2_000,
            "bob",
            "SELECT * FROM public.orders",
            false,
            &["public.orders"],
        ),
        statement(
            "sess-7",
            t + 3_000,
            "alice",
            "SELECT * FROM public.orders o JOIN public.orders p USING (id)",
            false,
            &["public.orders", "public.orders"],
        ),
        statement("sess-7", t + 4_000, "alice", "SELECT 1", false, &[]),
        statement("sess-7", t + 5_000, "alice", "SELECT 2", false, &[]),
        statement("sess-7", t + 6_000, "alice", "SELECT 3", false, &[]),
    ];
    for e in events {
        let _ = portal.store.audit().record(e);
    }
    portal.store.audit().flush().expect("flush");
    let mut audrey = portal.signed_in("audrey").await;
    let page = audrey.get("/web/audit?kind=statements&since=1d").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let chart = |id: &str| {
        let start = page
            .body
            .find(&format!(r#"id="top-{id}""#))
            .unwrap_or_else(|| panic!("chart {id}: {}", page.body));
        let end = page.body[start..].find("</svg>").expect("svg end") + start;
        page.body[start..end].to_owned()
    };
    // alice ran more, bob was denied more; an object counts once per statement.
    let users = chart("users-statements");
    assert!(users.find(">alice<") < users.find(">bob<"), "{users}");
    assert!(
        users.contains("<title>alice: 4 statement(s), 0 denied</title>"),
        "{users}"
    );
    let denials = chart("users-denials");
    assert!(
        denials.contains("<title>bob: 3 statement(s), 2 denied</title>"),
        "{denials}"
    );
    assert!(
        !denials.contains(">alice<"),
        "no denials, no bar: {denials}"
    );
    let objects = chart("objects-statements");
    assert!(
        objects.contains("<title>public.orders: 2 statement(s), 0 denied</title>"),
        "{objects}"
    );
    assert!(chart("objects-denials")
        .contains("<title>public.secrets: 2 statement(s), 2 denied</title>"));
    // The time window narrows the charts: nothing in the last second.
    let narrow = audrey.get("/web/audit?kind=statements&since=1s").await;
    assert!(
        !narrow.body.contains("top-users-statements"),
        "{}",
        narrow.body
    );

    // A session by its id alone.
    let lookup = audrey.get("/web/sessions?id=sess-42").await;
    assert_eq!(lookup.status, 303);
    assert_eq!(header(&lookup, "location"), ["/web/sessions/sess-42"]);
    let replay = audrey.get("/web/sessions/sess-42").await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert!(replay.body.contains("3 step(s)"), "{}", replay.body);
    assert!(replay.body.contains("bob ·"), "{}", replay.body);
    let step = audrey.get("/web/sessions/sess-42?step=2").await;
    assert!(step.body.contains("public.orders</pre>"), "{}", step.body);
    assert_eq!(audrey.get("/web/sessions/nope").await.status, 404);
    assert_eq!(audrey.get("/web/sessions?id=").await.status, 400);
    // The audit page offers the lookup.
    assert!(page.body.contains(r#"action="/web/sessions""#));
}

/// Page timings with 10,000 statement records (and a connection record per session) in the store (printed; run with `--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_p95_with_10k_records() {
    let mut portal = Portal::start("web_p95", |_| {}).await;
    let start = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let start = i64::try_from(start).expect("micros");
    for i in 0..10_000i64 {
        let event = AuditEvent::Statement(StatementEvent {
            session_id: format!("s{}", i / 50),
            at: start - (10_000 - i) * 1_000_000,
            user: ["alice", "bob", "carol"][usize::try_from(i % 3).unwrap_or(0)].into(),
            resource: "app".into(),
            client_addr: "127.0.0.1:5000".into(),
            text: format!("SELECT * FROM public.orders WHERE id = {i}"),
            kind: "SELECT".into(),
            objects: vec![AuditObject {
                name: format!("public.t{}", i % 40),
                operation: "select".into(),
            }],
            param_count: 0,
            rows: Some(1),
            duration_us: 150,
            decision: if i % 7 == 0 { "deny" } else { "allow" }.into(),
            outcome: "ok".into(),
            sqlstate: None,
            message: None,
            policy: None,
        });
        let _ = portal.store.audit().record(event);
    }
    // Each session opened with a connection record, as the gateway writes one.
    for n in 0..200i64 {
        let _ = portal.store.audit().record(AuditEvent::Connection(
            portcullis_store::ConnectionEvent {
                session_id: format!("s{n}"),
                phase: portcullis_store::ConnectionPhase::Open,
                at: start - (10_000 - n * 50) * 1_000_000 - 1,
                user: "alice".into(),
                client_addr: "127.0.0.1:5000".into(),
                resource: "app".into(),
                auth_result: "ok".into(),
                tls: false,
                application_name: Some("psql".into()),
                bytes_in: 0,
                bytes_out: 0,
                detail: None,
            },
        ));
    }
    portal.store.audit().flush().expect("flush");
    let mut b = portal.signed_in("audrey").await;
    let pages = [
        "/web".to_owned(),
        "/web/audit".to_owned(),
        "/web/audit?user=bob&decision=deny&since=1d".to_owned(),
        "/web/audit/5000".to_owned(),
        "/web/sessions/s100".to_owned(),
        "/web/policy/explain".to_owned(),
        "/web/policy/versions".to_owned(),
        "/web/policy/versions/1".to_owned(),
        "/web/inbox".to_owned(),
        "/web/requests".to_owned(),
        "/web/console".to_owned(),
    ];
    for path in &pages {
        let mut times = Vec::new();
        for _ in 0..40 {
            let t = Instant::now();
            let r = b.get(path).await;
            times.push(t.elapsed());
            assert_eq!(r.status, 200, "{path}: {}", r.body);
        }
        times.sort();
        let p50 = times[times.len() / 2];
        let p95 = times[times.len() * 95 / 100];
        println!(
            "page {path}: p50 {:.1} ms, p95 {:.1} ms",
            p50.as_secs_f64() * 1000.0,
            p95.as_secs_f64() * 1000.0
        );
    }
    // Explaining a statement: the policy in force loaded, compiled and asked, per request.
    let csrf = csrf_of(&b.get("/web/policy/explain").await.body);
    let form = [
        ("csrf", csrf.as_str()),
        ("user", "alice"),
        ("resource", "app"),
        (
            "sql",
            "SELECT * FROM public.secrets; DELETE FROM public.orders",
        ),
    ];
    let mut times = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        let r = b.post("/web/policy/explain", &form, &[]).await;
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    times.sort();
    println!(
        "page POST /web/policy/explain: p50 {:.1} ms, p95 {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() * 95 / 100].as_secs_f64() * 1000.0
    );
}

/// The scenario of tests/browser/portal.mjs in the system's headless Chromium, against this process's
/// gateway and portal on a real HTTP listener. Fails (never skips) when node, Chromium or the npm
/// packages are missing: `scripts/install-deps all` installs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_scenario() {
    let portal = Portal::start("web_browser", |_| {}).await;
    // A second version for the policy diff page: one more rule, on a table the scenario never reads.
    let edited = POLICY.replace(
        "rules:\n",
        "rules:\n  - id: audit-orders\n    when: {objects: [public.orders]}\n    action: audit\n",
    );
    portal
        .store
        .apply_policy("edited.yaml", &edited, "carol")
        .expect("apply");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(portcullis_api::serve(
        listener,
        portal.router.clone(),
        None,
        portal.stopped.clone(),
    ));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/browser/portal.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser (scripts/install-deps all does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium chromium-driver (scripts/install-deps all does)"
    );
    let secrets: HashMap<&String, String> = portal
        .secrets
        .iter()
        .map(|(u, s)| (u, s.iter().map(|b| format!("{b:02x}")).collect()))
        .collect();
    let screenshots = root.join("target/screenshots");
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(root.join("tests/browser"))
        .env("PORTAL_URL", &base)
        .env(
            "PORTAL_SECRETS",
            serde_json::to_string(&secrets).expect("json"),
        )
        .env("PORTAL_CLOCK", &portal.offset_file)
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), child)
        .await
        .expect("the browser scenario finished within 5 minutes")
        .expect("node runs (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser scenario failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("browser scenario passed"), "{stdout}");
    println!("screenshots in {}", screenshots.display());
}

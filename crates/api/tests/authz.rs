//! The API in process (no sockets): every route against every kind of caller, logins, token expiry and
//! the error shape for malformed input.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use portcullis_api::{ApiConfig, ApiState};
use portcullis_store::{totp, ApiTokenRole, Clock, Durability, MasterKey, NewApiToken, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The API's admin role.
    Admin,
    /// Auditor or admin.
    Reader,
    /// A logged-in gateway user.
    User,
}

/// Every route: method, path (with sample parameters), body, role. Targets that do not exist keep
/// allowed calls from changing what later rows see.
fn routes() -> Vec<(Method, &'static str, &'static str, Value, Need)> {
    use Need::*;
    let none = Value::Null;
    vec![
        (
            Method::GET,
            "/api/v1/users",
            "/api/v1/users",
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/users",
            "/api/v1/users",
            json!({"name": "zed", "password": "pw"}),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/users/{name}",
            "/api/v1/users/alice",
            none.clone(),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/users/{name}",
            "/api/v1/users/nobody",
            none.clone(),
            Admin,
        ),
        (
            Method::PUT,
            "/api/v1/users/{name}/password",
            "/api/v1/users/nobody/password",
            json!({"password": "x"}),
            Admin,
        ),
        (
            Method::PUT,
            "/api/v1/users/{name}/disabled",
            "/api/v1/users/nobody/disabled",
            json!({"disabled": true}),
            Admin,
        ),
        (
            Method::PUT,
            "/api/v1/users/{name}/attributes/{key}",
            "/api/v1/users/nobody/attributes/region",
            json!({"value": "eu"}),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/users/{name}/attributes/{key}",
            "/api/v1/users/nobody/attributes/region",
            none.clone(),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/roles",
            "/api/v1/roles",
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/roles",
            "/api/v1/roles",
            json!({"name": "r1"}),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/roles/{name}",
            "/api/v1/roles/nope",
            none.clone(),
            Admin,
        ),
        (
            Method::PUT,
            "/api/v1/roles/{name}/members/{user}",
            "/api/v1/roles/nope/members/alice",
            none.clone(),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/roles/{name}/members/{user}",
            "/api/v1/roles/nope/members/alice",
            none.clone(),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/resources",
            "/api/v1/resources",
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/resources",
            "/api/v1/resources",
            json!({"name": "db1", "host": "127.0.0.1", "database": "d", "db_user": "u", "password": "p"}),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/resources/{name}",
            "/api/v1/resources/nope",
            none.clone(),
            Admin,
        ),
        (
            Method::PUT,
            "/api/v1/resources/{name}/credential",
            "/api/v1/resources/nope/credential",
            json!({"db_user": "u", "password": "p"}),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/tokens",
            "/api/v1/tokens",
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/tokens",
            "/api/v1/tokens",
            json!({"name": "t1", "role": "auditor"}),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/{name}",
            "/api/v1/tokens/nope",
            none.clone(),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/policy",
            "/api/v1/policy",
            none.clone(),
            Reader,
        ),
        (
            Method::PUT,
            "/api/v1/policy",
            "/api/v1/policy",
            json!({"text": POLICY}),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/policy/check",
            "/api/v1/policy/check",
            json!({"text": POLICY}),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/policy/versions",
            "/api/v1/policy/versions",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/policy/versions/{version}",
            "/api/v1/policy/versions/1",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/grants",
            "/api/v1/grants",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/requests",
            "/api/v1/requests",
            none.clone(),
            Reader,
        ),
        (
            Method::POST,
            "/api/v1/requests",
            "/api/v1/requests",
            json!({"bundle": "nope", "duration": "1h", "reason": "r"}),
            User,
        ),
        (
            Method::GET,
            "/api/v1/requests/{id}",
            "/api/v1/requests/999",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/me/requests",
            "/api/v1/me/requests",
            none.clone(),
            User,
        ),
        (
            Method::GET,
            "/api/v1/inbox",
            "/api/v1/inbox",
            none.clone(),
            User,
        ),
        (
            Method::POST,
            "/api/v1/requests/{id}/approve",
            "/api/v1/requests/999/approve",
            json!({}),
            User,
        ),
        (
            Method::POST,
            "/api/v1/requests/{id}/reject",
            "/api/v1/requests/999/reject",
            json!({"comment": "no"}),
            User,
        ),
        (
            Method::POST,
            "/api/v1/reservations",
            "/api/v1/reservations",
            json!({"resource": "app", "from": "now", "until": "+1h", "reason": "r"}),
            User,
        ),
        (
            Method::GET,
            "/api/v1/me/notifications",
            "/api/v1/me/notifications?unread=true",
            none.clone(),
            User,
        ),
        (
            Method::POST,
            "/api/v1/me/notifications/read",
            "/api/v1/me/notifications/read",
            json!({"ids": [1, 2]}),
            User,
        ),
        (
            Method::GET,
            "/api/v1/mfa",
            "/api/v1/mfa",
            none.clone(),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/mfa/{user}",
            "/api/v1/mfa/alice",
            none.clone(),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/mfa/{user}",
            "/api/v1/mfa/nobody",
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/mfa/{user}/enrollment",
            "/api/v1/mfa/nobody/enrollment",
            none.clone(),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/me/mfa",
            "/api/v1/me/mfa",
            none.clone(),
            User,
        ),
        (
            Method::POST,
            "/api/v1/me/mfa/verify",
            "/api/v1/me/mfa/verify",
            json!({"code": "000000"}),
            User,
        ),
        (Method::GET, "/api/v1/me", "/api/v1/me", none.clone(), User),
        (
            Method::GET,
            "/api/v1/audit",
            "/api/v1/audit?kind=mfa&since=1h",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/audit/{id}",
            "/api/v1/audit/1",
            none.clone(),
            Reader,
        ),
        (
            Method::GET,
            "/api/v1/monitor",
            "/api/v1/monitor?result=deny",
            none.clone(),
            Reader,
        ),
        (Method::GET, "/metrics", "/metrics", none.clone(), Reader),
    ]
}

const POLICY: &str = "\
workflows:
  - name: default
    approvers: {users: [carol]}
on_demand:
  - name: app-any
    resource: app
    workflow: default
";

struct Api {
    _dir: tempfile::TempDir,
    store: Store,
    offset_file: PathBuf,
    router: Router,
}

impl Api {
    /// A store with users alice (no API role), root (portcullis-admin), eve (portcullis-auditor) and
    /// carol, the policy above, and logins that need no MFA unless `require_mfa`.
    fn new(require_mfa: bool) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Strict,
        )
        .unwrap();
        for user in ["alice", "root", "eve", "carol"] {
            store.add_user(user, &format!("{user}-pw")).unwrap();
        }
        for (role, user) in [("portcullis-admin", "root"), ("portcullis-auditor", "eve")] {
            store.add_role(role).unwrap();
            store.grant_role(user, role).unwrap();
        }
        store.apply_policy("test", POLICY, "test").unwrap();
        let offset_file = dir.path().join("offset");
        std::fs::write(&offset_file, "0").unwrap();
        let config = ApiConfig {
            require_mfa,
            ..ApiConfig::default()
        };
        let clock = Clock::with_offset_file(&offset_file);
        let router = portcullis_api::router(ApiState::new(store.clone(), clock, config));
        Api {
            _dir: dir,
            store,
            offset_file,
            router,
        }
    }

    fn named(&self, name: &str, role: ApiTokenRole) -> String {
        let new = NewApiToken::Named {
            name: name.into(),
            role,
        };
        self.store.create_api_token(&new, 0, None).unwrap().secret
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = if body.is_null() {
            request.body(Body::empty()).unwrap()
        } else {
            request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn login(&self, user: &str, totp: Option<String>) -> (StatusCode, Value) {
        let body = json!({"user": user, "password": format!("{user}-pw"), "totp": totp});
        self.call(Method::POST, "/api/v1/login", None, &body).await
    }

    async fn token_of(&self, user: &str) -> String {
        let (status, body) = self.login(user, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(
        body["code"].is_string() && body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: not a JSON error: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_every_caller_it_must() {
    let api = Api::new(false);
    let callers = [
        (
            "admin token",
            api.named("adm", ApiTokenRole::Admin),
            [true, true, false],
        ),
        (
            "auditor token",
            api.named("aud", ApiTokenRole::Auditor),
            [false, true, false],
        ),
        (
            "user alice",
            api.token_of("alice").await,
            [false, false, true],
        ),
        (
            "admin user root",
            api.token_of("root").await,
            [true, true, true],
        ),
        (
            "auditor user eve",
            api.token_of("eve").await,
            [false, true, true],
        ),
    ];
    // Named tokens stay after they expire (login tokens are swept), so this one stays refusable.
    let old = NewApiToken::Named {
        name: "old".into(),
        role: ApiTokenRole::Admin,
    };
    let expired = api.store.create_api_token(&old, 0, Some(1)).unwrap().secret;
    for (method, _, path, body, need) in routes() {
        let what = format!("{method} {path}");
        let (status, reply) = api.call(method.clone(), path, None, &body).await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED, &what);
        assert_eq!(reply["code"], "unauthenticated", "{what}");
        let (status, reply) = api
            .call(method.clone(), path, Some("pct_bogus"), &body)
            .await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED, &what);
        assert_eq!(reply["code"], "invalid_token", "{what}");
        let (status, reply) = api.call(method.clone(), path, Some(&expired), &body).await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED, &what);
        assert_eq!(reply["code"], "token_expired", "{what}");
        for (who, token, may) in &callers {
            let allowed = match need {
                Need::Admin => may[0],
                Need::Reader => may[1],
                Need::User => may[2],
            };
            let (status, reply) = api.call(method.clone(), path, Some(token), &body).await;
            let what = format!("{what} as {who}");
            if allowed {
                assert!(
                    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        || ["not_approver", "self_endorsement"]
                            .contains(&reply["code"].as_str().unwrap_or("")),
                    "{what}: refused: {status} {reply}"
                );
                assert!(!status.is_server_error(), "{what}: {status} {reply}");
            } else {
                assert_error(status, &reply, StatusCode::FORBIDDEN, &what);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_covers_every_documented_route() {
    let doc = serde_json::to_value(portcullis_api::openapi()).unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.retain(|r| r != "POST /api/v1/login");
    documented.sort();
    let mut table: Vec<String> = routes()
        .iter()
        .map(|(m, template, ..)| format!("{m} {template}"))
        .collect();
    table.sort();
    assert_eq!(documented, table);
    let api = Api::new(false);
    let (status, served) = api
        .call(Method::GET, "/openapi.json", None, &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, doc);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_needs_the_password_and_a_fresh_totp_code() {
    let api = Api::new(true);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            &json!({"user": "alice", "password": "wrong"}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "bad password");
    assert_eq!(body["code"], "invalid_credentials");
    let (status, body) = api.login("alice", None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "not enrolled");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("portcullis mfa enroll alice"));

    let clock = Clock::with_offset_file(&api.offset_file);
    let secret = api.store.enroll_mfa("alice", clock.now()).unwrap().secret;
    let (status, body) = api.login("alice", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "no code");
    assert_eq!(body["code"], "mfa_required");
    let code = totp::code_at(&secret, clock.now());
    let (status, body) = api.login("alice", Some(code.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = api.login("alice", Some(code)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "replayed code");
    assert_eq!(body["code"], "mfa_replayed");

    let (status, me) = api
        .call(Method::GET, "/api/v1/me", Some(&token), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"], "alice");
    assert_eq!(me["mfa_enrolled"], true);
    // The token lives 900 s by default: 899 s on it still works, 900 s on it does not.
    std::fs::write(&api.offset_file, "899").unwrap();
    let (status, _) = api
        .call(Method::GET, "/api/v1/me", Some(&token), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(&api.offset_file, "901").unwrap();
    let (status, body) = api
        .call(Method::GET, "/api/v1/me", Some(&token), &Value::Null)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "expired");
    assert_eq!(body["code"], "token_expired");

    let admin = api.named("adm", ApiTokenRole::Admin);
    let (status, records) = api
        .call(
            Method::GET,
            "/api/v1/audit?kind=connections",
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let results: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["auth_result"].as_str())
        .collect();
    for want in [
        "api: bad password",
        "api: not enrolled in mfa",
        "api: login ok",
        "api: replayed code",
        "api: expired token",
    ] {
        assert!(results.contains(&want), "{want} missing from {results:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_gets_json_4xx() {
    let api = Api::new(false);
    let admin = api.named("adm", ApiTokenRole::Admin);
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {admin}"));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.body(Body::from(body)).unwrap()
    };
    let json_type = Some("application/json");
    let cases = [
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json_type,
                b"{not json".to_vec(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json_type,
                br#"{"name":"x","password":"y","admin":true}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json_type,
                br#"{"name":"x","password":""}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                None,
                br#"{"name":"x","password":"y"}"#.to_vec(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json_type,
                vec![b' '; 2 << 20],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            raw(Method::GET, "/api/v1/requests/abc", None, Vec::new()),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/audit?since=yesterday",
                None,
                Vec::new(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/audit?since=99999999999999d",
                None,
                Vec::new(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/audit?since=6y%C3%8F",
                None,
                Vec::new(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/audit?kind=everything",
                None,
                Vec::new(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/policy",
                json_type,
                br#"{"text":"grants: [1"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json_type,
                br#"{"name":"bad\u0001name","password":"y"}"#.to_vec(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw(Method::GET, "/api/v1/nowhere", None, Vec::new()),
            StatusCode::NOT_FOUND,
        ),
        (
            raw(Method::PATCH, "/api/v1/users", None, Vec::new()),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (request, want) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body) = api.send(request).await;
        assert_error(status, &body, want, &what);
    }
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            &json!({"name": "alice", "password": "x"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "duplicate user");
    assert_eq!(body["code"], "already_exists");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_write_only_and_tokens_shown_once() {
    let api = Api::new(false);
    let admin = api.named("adm", ApiTokenRole::Admin);
    let resource = json!({"name": "db1", "host": "h", "database": "d", "db_user": "u", "password": "s3cret-pw"});
    let (status, _) = api
        .call(Method::POST, "/api/v1/resources", Some(&admin), &resource)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = api
        .call(Method::GET, "/api/v1/resources", Some(&admin), &Value::Null)
        .await;
    assert_eq!(listed[0]["name"], "db1");
    assert!(!listed.to_string().contains("s3cret-pw"));
    let (status, made) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&admin),
            &json!({"name": "ci", "role": "auditor", "expires": "1d"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let secret = made["token"].as_str().unwrap().to_owned();
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(&admin), &Value::Null)
        .await;
    assert!(!tokens.to_string().contains(&secret));
    let (status, _) = api
        .call(Method::GET, "/api/v1/audit", Some(&secret), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/tokens/ci",
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(Method::GET, "/api/v1/audit", Some(&secret), &Value::Null)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(body["code"], "token_revoked");
}

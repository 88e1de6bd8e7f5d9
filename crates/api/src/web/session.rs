//! Browser sessions: kept in memory on the server (a restart signs everyone out), named by a random
//! id in an HTTP-only, `SameSite=Strict` cookie scoped to `/web`, ended by logout or after
//! `api.web_idle_timeout_secs` without a request. Each session has a CSRF token that every
//! state-changing request must send back (a hidden `csrf` form field or an `X-CSRF-Token` header).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;

use super::console::Console;
use super::html::WebError;
use super::WebState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "pc_session";
/// The login form's double-submit cookie (there is no session yet to bind a token to).
pub const LOGIN_COOKIE: &str = "pc_login";
/// The header htmx sends the CSRF token in (set on `<body hx-headers>`).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One signed-in browser.
pub struct Session {
    user: String,
    csrf: String,
    last_seen: Instant,
    flash: Option<Flash>,
    console: Arc<Console>,
}

/// A message for the next page a browser sees (after a redirect).
#[derive(Debug, Clone)]
pub struct Flash {
    /// Success (true) or a refusal.
    pub ok: bool,
    /// What happened.
    pub text: String,
}

/// Every signed-in browser.
pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// No sessions yet; each ends after `idle` without a request.
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Plain values: a panic elsewhere cannot leave an entry half-written.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signs `user` in; the new session's id (for the cookie).
    pub fn create(&self, user: &str) -> String {
        let id = random_token();
        let mut map = self.map();
        let idle = self.idle;
        map.retain(|_, s| s.last_seen.elapsed() < idle);
        map.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf: random_token(),
                last_seen: Instant::now(),
                flash: None,
                console: Arc::new(Console::default()),
            },
        );
        id
    }

    /// The live session `id` (user, CSRF token, console), marked as used now; an idle one ends.
    fn touch(&self, id: &str) -> Option<(String, String, Arc<Console>)> {
        let mut map = self.map();
        let session = map.get_mut(id)?;
        if session.last_seen.elapsed() >= self.idle {
            map.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some((
            session.user.clone(),
            session.csrf.clone(),
            Arc::clone(&session.console),
        ))
    }

    /// The CSRF token of the live session `id`.
    fn csrf(&self, id: &str) -> Option<String> {
        self.touch(id).map(|(_, csrf, _)| csrf)
    }

    /// Ends a session (logout); its console connections close.
    pub fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, id: &str, ok: bool, text: impl Into<String>) {
        if let Some(s) = self.map().get_mut(id) {
            s.flash = Some(Flash {
                ok,
                text: text.into(),
            });
        }
    }

    fn take_flash(&self, id: &str) -> Option<Flash> {
        self.map().get_mut(id).and_then(|s| s.flash.take())
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HTTP-only, `SameSite=Strict`, scoped to `/web`, `Secure` on HTTPS;
/// `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, tls: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/web; HttpOnly; SameSite=Strict");
    if tls {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The signed-in person a page is for.
pub struct Viewer {
    /// Their session id.
    pub sid: String,
    /// The gateway user.
    pub user: String,
    /// Their gateway roles now.
    pub roles: Vec<String>,
    /// Member of `api.admin_roles`.
    pub admin: bool,
    /// Member of `api.auditor_roles`.
    pub auditor: bool,
    /// The token state-changing requests must send.
    pub csrf: String,
    /// Their SQL console.
    pub console: Arc<Console>,
    /// A message left by the previous request (full page loads only).
    pub flash: Option<Flash>,
}

impl Viewer {
    /// Refuses anyone but auditors and admins (the API's `Reader`).
    pub fn require_reader(&self) -> Result<(), WebError> {
        if self.admin || self.auditor {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "This page is for auditors and administrators (members of the roles in \
                 api.auditor_roles or api.admin_roles).",
            ))
        }
    }

    /// Refuses anyone but admins (the API's `Admin`).
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.admin {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "This needs an administrator (a member of a role in api.admin_roles).",
            ))
        }
    }
}

/// Not signed in: pages go to the login form; htmx requests are told to go there.
fn signed_out(parts: &Parts) -> Response {
    if parts.headers.contains_key("hx-request") {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut().insert(
            "hx-redirect",
            axum::http::HeaderValue::from_static("/web/login"),
        );
        return r;
    }
    if parts.method == Method::GET {
        Redirect::to("/web/login").into_response()
    } else {
        WebError::new(
            StatusCode::UNAUTHORIZED,
            "You are signed out (or were idle too long); sign in again.",
        )
        .into_response()
    }
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let Some(sid) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(signed_out(parts));
        };
        let Some((user, csrf, console)) = state.sessions.touch(&sid) else {
            return Err(signed_out(parts));
        };
        let name = user.clone();
        let login = state
            .api
            .blocking(move |store, _| Ok(store.user_login(&name)?))
            .await
            .map_err(|e| WebError::from(e).into_response())?;
        let Some(login) = login else {
            // Removed or disabled since signing in.
            state.sessions.remove(&sid);
            return Err(signed_out(parts));
        };
        let config = state.api.config();
        let member = |names: &[String]| login.roles.iter().any(|r| names.contains(r));
        let full_page = parts.method == Method::GET && !parts.headers.contains_key("hx-request");
        Ok(Viewer {
            admin: member(&config.admin_roles),
            auditor: member(&config.auditor_roles),
            flash: if full_page {
                state.sessions.take_flash(&sid)
            } else {
                None
            },
            sid,
            user,
            roles: login.roles,
            csrf,
            console,
        })
    }
}

fn same(a: &str, b: &str) -> bool {
    // Length and then every byte, so a wrong token takes as long wherever it differs.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `csrf` field of a form body.
fn form_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "csrf")
        .map(|(_, v)| v.to_owned())
}

/// Refuses every state-changing request that does not carry the session's CSRF token (the login form:
/// the token of its own cookie), so another site cannot make a signed-in browser act.
pub async fn csrf(State(state): State<WebState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = state.api.config().body_limit;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than the portal accepts.",
        )
        .into_response();
    };
    let expected = if parts.uri.path() == "/web/login" {
        cookie(&parts.headers, LOGIN_COOKIE)
    } else {
        match cookie(&parts.headers, SESSION_COOKIE).and_then(|sid| state.sessions.csrf(&sid)) {
            Some(token) => Some(token),
            None => return signed_out(&parts),
        }
    };
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_token(&bytes));
    let valid = matches!((&expected, &sent), (Some(e), Some(s)) if same(e, s));
    if !valid {
        tracing::warn!(path = %parts.uri.path(), "web portal refused a request without a valid CSRF token");
        return WebError::new(
            StatusCode::FORBIDDEN,
            "This request did not carry the page's security token, so it may not come from the \
             portal; reload the page and try again.",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

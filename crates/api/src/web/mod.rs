//! The web portal (issue 19): server-rendered HTML pages under `/web` on the API listener, with htmx
//! (vendored, served by the binary) for the few parts that update in place. The portal is one more
//! client of the store and the workflows crate: every action calls the same functions the JSON API's
//! routes call, and the SQL console goes through the gateway's own PostgreSQL listener.
//!
//! Security: a server-side session behind an HTTP-only, `SameSite=Strict` cookie (`Secure` on
//! HTTPS), a session-bound CSRF token checked on every state-changing request ([`session::csrf`]), a
//! Content-Security-Policy without inline script or style, and an idle timeout.

mod access;
mod admin;
mod assets;
mod audit;
mod charts;
mod console;
mod diff;
mod explain;
mod html;
mod inbox;
mod login;
mod mfa;
mod session;
mod versions;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::state::ApiState;
pub use session::Sessions;

/// What the portal's handlers share: the API's state and the browser sessions.
#[derive(Clone)]
pub struct WebState {
    /// The store, clock and settings.
    pub api: ApiState,
    /// Signed-in browsers.
    pub sessions: Arc<Sessions>,
    /// Whether the listener is HTTPS (cookies are then `Secure`).
    pub tls: bool,
}

/// Every page of the portal, under `/web`.
pub fn router(api: ApiState, tls: bool) -> Router {
    let state = WebState {
        sessions: Arc::new(Sessions::new(api.config().web_idle_timeout)),
        api,
        tls,
    };
    let pages = Router::new()
        .route("/web", get(login::home))
        .route("/web/", get(login::home))
        .route("/web/login", get(login::form).post(login::submit))
        .route("/web/logout", post(login::logout))
        .route("/web/assets/htmx.min.js", get(assets::htmx))
        .route("/web/assets/portal.css", get(assets::css))
        .route("/web/mfa", get(mfa::page))
        .route("/web/mfa/verify", post(mfa::verify))
        .route("/web/mfa/enroll", post(mfa::enroll_self))
        .route("/web/requests", get(access::page).post(access::create))
        .route("/web/reservations", post(access::reserve))
        .route("/web/inbox", get(inbox::page))
        .route("/web/inbox/{id}/approve", post(inbox::approve))
        .route("/web/inbox/{id}/reject", post(inbox::reject))
        .route("/web/notifications/read", post(inbox::mark_read))
        .route("/web/console", get(console::page))
        .route("/web/console/run", post(console::run))
        .route("/web/console/job", get(console::job))
        .route("/web/audit", get(audit::log))
        .route("/web/audit/{id}", get(audit::record))
        .route("/web/sessions", get(audit::replay_lookup))
        .route("/web/sessions/{id}", get(audit::replay))
        .route("/web/policy", get(audit::policy))
        .route("/web/policy/explain", get(explain::page).post(explain::run))
        .route("/web/policy/versions", get(versions::list))
        .route("/web/policy/versions/{version}", get(versions::diff))
        .route("/web/users", get(audit::users))
        .route(
            "/web/roles",
            get(admin::roles_page).post(admin::role_create),
        )
        .route("/web/roles/{role}/members", post(admin::member_add))
        .route(
            "/web/roles/{role}/members/{user}/remove",
            post(admin::member_remove),
        )
        .route("/web/resources", get(admin::resources_page))
        .route(
            "/web/tokens",
            get(admin::tokens_page).post(admin::token_create),
        )
        .route("/web/tokens/{name}/revoke", post(admin::token_revoke))
        .route("/web/admin/mfa", post(mfa::enroll_user))
        .layer(middleware::from_fn_with_state(state.clone(), session::csrf))
        .layer(middleware::from_fn(security_headers));
    pages.with_state(state)
}

/// Headers on every portal answer: what scripts and styles may run (only ours, never inline), no
/// framing, no sniffing, no caching of pages that show records.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

//! Signing in (password and TOTP: the API login's own checks), signing out, and the home page.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::html::{esc, layout, WebError, WebResult};
use super::session::{cookie, random_token, set_cookie, Viewer, LOGIN_COOKIE, SESSION_COOKIE};
use super::WebState;
use crate::auth::{self, ClientAddr};
use crate::routes::session::check_login;

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    totp: String,
}

fn login_page(token: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!(r#"<p class="flash bad" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let body = format!(
        r#"{error}<form method="post" action="/web/login" class="stack card">
<input type="hidden" name="csrf" value="{token}">
<label>User <input name="user" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>Authenticator code <input name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" placeholder="6 digits"></label>
<button type="submit">Sign in</button>
</form>
<p class="muted">The same gateway user and password as for psql, and the code your authenticator app shows for Portcullis.</p>"#,
        token = esc(token)
    );
    layout(None, "Sign in", &body)
}

/// `GET /web/login`: the form, with a fresh double-submit token in its cookie.
pub async fn form(State(state): State<WebState>) -> Response {
    let token = random_token();
    (
        [(
            SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, state.tls, None),
        )],
        login_page(&token, None),
    )
        .into_response()
}

/// `POST /web/login`: the API login's checks; on success a session and its cookie.
pub async fn submit(
    State(state): State<WebState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let require_mfa = state.api.config().require_mfa;
    let user = form.user.trim().to_owned();
    let name = user.clone();
    let checked = state
        .api
        .blocking(move |store, clock| {
            let totp = Some(form.totp.as_str());
            check_login(
                store,
                clock,
                &name,
                &form.password,
                totp,
                require_mfa,
                &client,
            )?;
            auth::record(store, &name, &client, true, "web login ok")?;
            Ok(())
        })
        .await;
    if let Err(e) = checked {
        // The form keeps working: the double-submit cookie is still set.
        let token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
        return (e.status, login_page(&token, Some(&e.message))).into_response();
    }
    let sid = state.sessions.create(&user);
    let mut response = Redirect::to("/web").into_response();
    let headers = response.headers_mut();
    for value in [
        set_cookie(SESSION_COOKIE, &sid, state.tls, None),
        set_cookie(LOGIN_COOKIE, "", state.tls, Some(0)),
    ] {
        if let Ok(v) = value.parse() {
            headers.append(SET_COOKIE, v);
        }
    }
    response
}

/// `POST /web/logout`: ends the session (and its console connections).
pub async fn logout(State(state): State<WebState>, viewer: Viewer) -> Response {
    state.sessions.remove(&viewer.sid);
    let mut response = Redirect::to("/web/login").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", state.tls, Some(0)).parse() {
        response.headers_mut().insert(SET_COOKIE, v);
    }
    response
}

/// `GET /web`: what needs the person's attention, and where to go.
pub async fn home(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let (user, roles) = (viewer.user.clone(), viewer.roles.clone());
    let (waiting, unread, mine) = state
        .api
        .blocking(move |store, clock| {
            let waiting = match portcullis_workflows::load_policy(store) {
                Ok(policy) => {
                    portcullis_workflows::inbox(store, &policy, &user, &roles, clock.now())?.len()
                }
                Err(_) => 0,
            };
            let unread = store.inbox_notifications(&user, true, 500)?.len();
            let filter = portcullis_store::RequestFilter {
                status: Some(portcullis_store::RequestStatus::Pending),
                requester: Some(user),
            };
            Ok((waiting, unread, store.list_requests(&filter)?.len()))
        })
        .await
        .map_err(WebError::from)?;
    let mut body = format!(
        r#"<div class="grid2">
<a class="card" href="/web/inbox"><h3>Inbox</h3><p>{waiting} request(s) wait for your decision · {unread} unread notification(s)</p></a>
<a class="card" href="/web/requests"><h3>Requests</h3><p>{mine} of your requests pending · ask for access, reserve a window, see your grants</p></a>
<a class="card" href="/web/console"><h3>SQL console</h3><p>Run statements through the gateway, with its policy, masking and approvals</p></a>
<a class="card" href="/web/mfa"><h3>MFA</h3><p>Verify a held statement or connection; enrol your authenticator</p></a>"#
    );
    if viewer.admin || viewer.auditor {
        body.push_str(r#"<a class="card" href="/web/audit"><h3>Audit</h3><p>Audit log, policy monitor, session replay, top users and objects</p></a><a class="card" href="/web/policy"><h3>Policy</h3><p>The policy in force, its versions with diffs, explain a statement</p></a>"#);
    }
    if viewer.admin {
        body.push_str(r#"<a class="card" href="/web/users"><h3>Administration</h3><p>Users and MFA, roles, resources, API tokens</p></a>"#);
    }
    body.push_str("</div>");
    Ok(layout(
        Some(&viewer),
        &format!("Hello, {}", viewer.user),
        &body,
    ))
}

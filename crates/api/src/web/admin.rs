//! Administration (admins only): roles and their members, resources, API tokens. Every list and every
//! change is the JSON API's own handler, called as the viewer, so the portal allows exactly what
//! `/api/v1` allows an admin and refuses what it refuses. Resources are listed only: adding one takes
//! the database password, which is set with `portcullis resource add` or `POST /api/v1/resources`.
//! A token's secret is shown once, in the answer to the form that made it, and never again.

use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::Form;
use serde::Deserialize;

use super::html::{csrf_field, esc, layout, millis, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::auth::{Admin, Principal};
use crate::extract::{Body, Params};
use crate::routes::{resources, roles, tokens};

/// The viewer as the API's `Admin`, once their role allows.
pub fn admin(viewer: &Viewer) -> WebResult<Admin> {
    viewer.require_admin()?;
    Ok(Admin(Principal {
        user: Some(viewer.user.clone()),
        roles: viewer.roles.clone(),
        admin: viewer.admin,
        auditor: viewer.auditor,
        label: viewer.user.clone(),
    }))
}

/// A form naming one thing (a role, a member).
#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// The new-token form.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expires: String,
}

/// After a change: its message on the next page.
fn done(
    state: &WebState,
    viewer: &Viewer,
    result: crate::error::ApiResult<axum::Json<crate::routes::Done>>,
    back: &'static str,
) -> Redirect {
    match result {
        Ok(d) => state.sessions.flash(&viewer.sid, true, d.0.message),
        Err(e) => state.sessions.flash(&viewer.sid, false, e.message),
    }
    Redirect::to(back)
}

/// `GET /web/roles`: every role with its members; add a role, add or remove a member.
pub async fn roles_page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let all = roles::list(State(state.api.clone()), admin(&viewer)?)
        .await
        .map_err(WebError::from)?
        .0;
    let csrf = csrf_field(&viewer);
    let mut body = format!(
        r#"<form method="post" action="/web/roles" class="card actions" id="role-form">{csrf}<input name="name" placeholder="new role" required><button type="submit">Add role</button></form>
<div class="scroll"><table id="roles"><tr><th>Role</th><th>Members</th><th>Add a member</th></tr>"#
    );
    for r in &all {
        let mut members = String::new();
        for m in &r.members {
            members.push_str(&format!(
                r#"<form method="post" action="/web/roles/{}/members/{}/remove" class="logout">{csrf}{} <button type="submit" class="link" title="remove {} from {}">✕</button></form> "#,
                esc(&super::html::url(&r.name)),
                esc(&super::html::url(m)),
                esc(m),
                esc(m),
                esc(&r.name),
            ));
        }
        body.push_str(&format!(
            r#"<tr id="role-{name_id}"><td>{name}</td><td>{members}</td><td><form method="post" action="/web/roles/{path}/members" class="actions">{csrf}<input name="name" placeholder="user" required><button type="submit" class="secondary">Add</button></form></td></tr>"#,
            name_id = esc(&r.name),
            name = esc(&r.name),
            path = esc(&super::html::url(&r.name)),
        ));
    }
    body.push_str("</table></div>");
    Ok(layout(Some(&viewer), "Roles", &body))
}

/// `POST /web/roles`: `POST /api/v1/roles`.
pub async fn role_create(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(f): Form<NameForm>,
) -> WebResult<Redirect> {
    let made = roles::create(
        State(state.api.clone()),
        admin(&viewer)?,
        Body(roles::NewRole {
            name: f.name.trim().to_owned(),
        }),
    )
    .await;
    Ok(done(&state, &viewer, made, "/web/roles"))
}

/// `POST /web/roles/{role}/members`: `PUT /api/v1/roles/{role}/members/{user}`.
pub async fn member_add(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(role): Path<String>,
    Form(f): Form<NameForm>,
) -> WebResult<Redirect> {
    let added = roles::add_member(
        State(state.api.clone()),
        admin(&viewer)?,
        Params((role, f.name.trim().to_owned())),
    )
    .await;
    Ok(done(&state, &viewer, added, "/web/roles"))
}

/// `POST /web/roles/{role}/members/{user}/remove`: `DELETE /api/v1/roles/{role}/members/{user}`.
pub async fn member_remove(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((role, user)): Path<(String, String)>,
) -> WebResult<Redirect> {
    let removed = roles::remove_member(
        State(state.api.clone()),
        admin(&viewer)?,
        Params((role, user)),
    )
    .await;
    Ok(done(&state, &viewer, removed, "/web/roles"))
}

/// `GET /web/resources`: the databases behind the gateway (never their credentials).
pub async fn resources_page(
    State(state): State<WebState>,
    viewer: Viewer,
) -> WebResult<Html<String>> {
    let all = resources::list(State(state.api.clone()), admin(&viewer)?)
        .await
        .map_err(WebError::from)?
        .0;
    let mut body = String::from(
        r#"<p class="muted">Adding a resource or changing its credential takes the database password: use <code>portcullis resource add</code> or <code>POST /api/v1/resources</code>. Passwords are never shown.</p><div class="scroll"><table id="resources"><tr><th>Name</th><th>Upstream</th><th>Database</th><th>TLS</th><th>Added</th><th>Changed</th></tr>"#,
    );
    for r in &all {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}:{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.host),
            r.port,
            esc(&r.database),
            esc(&r.tls),
            millis(r.created_at),
            millis(r.updated_at)
        ));
    }
    body.push_str("</table></div>");
    Ok(layout(Some(&viewer), "Resources", &body))
}

fn tokens_body(viewer: &Viewer, all: &[tokens::TokenView], made: Option<&str>) -> String {
    let csrf = csrf_field(viewer);
    let mut body = String::new();
    if let Some(secret) = made {
        body.push_str(&format!(
            r#"<div class="card notice" id="token-secret"><p>Copy the token now: it is shown only this once.</p><pre>{}</pre></div>"#,
            esc(secret)
        ));
    }
    body.push_str(&format!(
        r#"<form method="post" action="/web/tokens" class="card filters" id="token-form">{csrf}<label>Name <input name="name" required></label><label>Role <select name="role"><option value="auditor">auditor</option><option value="admin">admin</option></select></label><label>Expires after <input name="expires" placeholder="90d, 12h; empty: never"></label><button type="submit">Make token</button></form>
<div class="scroll"><table id="tokens"><tr><th>Name</th><th>Role</th><th>Made</th><th>Expires</th><th>Revoked</th><th></th></tr>"#
    ));
    for t in all {
        let revoke = if t.revoked_at.is_none() {
            format!(
                r#"<form method="post" action="/web/tokens/{}/revoke" class="logout">{csrf}<button type="submit" class="secondary">Revoke</button></form>"#,
                esc(&super::html::url(&t.name))
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            esc(&t.name),
            esc(&t.role),
            millis(t.created_at),
            t.expires_at.map_or("never".to_owned(), millis),
            t.revoked_at.map_or("-".to_owned(), millis),
        ));
    }
    body.push_str("</table></div>");
    body
}

/// `GET /web/tokens`: the named API tokens (never their secrets); make or revoke one.
pub async fn tokens_page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let all = tokens::list(State(state.api.clone()), admin(&viewer)?)
        .await
        .map_err(WebError::from)?
        .0;
    Ok(layout(
        Some(&viewer),
        "API tokens",
        &tokens_body(&viewer, &all, None),
    ))
}

/// `POST /web/tokens`: `POST /api/v1/tokens`; the answer is the page with the secret, once (no
/// redirect: the secret is never kept for a later page).
pub async fn token_create(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(f): Form<TokenForm>,
) -> WebResult<Html<String>> {
    let new = tokens::NewToken {
        name: f.name.trim().to_owned(),
        role: f.role.trim().to_owned(),
        expires: Some(f.expires.trim().to_owned()).filter(|e| !e.is_empty()),
    };
    let made = tokens::create(State(state.api.clone()), admin(&viewer)?, Body(new)).await;
    let all = tokens::list(State(state.api.clone()), admin(&viewer)?)
        .await
        .map_err(WebError::from)?
        .0;
    let body = match made {
        Ok(m) => {
            let m = m.0;
            format!(
                r#"<p class="flash ok" role="status">Token {} made.</p>{}"#,
                esc(&m.info.name),
                tokens_body(&viewer, &all, Some(&m.token))
            )
        }
        Err(e) => format!(
            r#"<p class="flash bad" role="alert">{}</p>{}"#,
            esc(&e.message),
            tokens_body(&viewer, &all, None)
        ),
    };
    Ok(layout(Some(&viewer), "API tokens", &body))
}

/// `POST /web/tokens/{name}/revoke`: `DELETE /api/v1/tokens/{name}`.
pub async fn token_revoke(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> WebResult<Redirect> {
    let revoked = tokens::revoke(State(state.api.clone()), admin(&viewer)?, Params(name)).await;
    Ok(done(&state, &viewer, revoked, "/web/tokens"))
}

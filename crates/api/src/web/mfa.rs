//! MFA in the browser: verify a held statement or connection by typing the code (the API's own
//! verification), see what the gateway holds, enrol with a QR code.

use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::Form;
use portcullis_store::{AuditEvent, AuditFilter, AuditKindFilter};
use serde::Deserialize;

use super::html::{csrf_field, esc, layout, micros, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::routes::mfa::verify_code;

/// A code typed on the page.
#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// A user an administrator enrols.
#[derive(Deserialize)]
pub struct UserForm {
    user: String,
}

/// The otpauth URI as a QR code (SVG, no script, no inline style).
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build();
            // Drop the XML declaration: the SVG goes inline into HTML.
            svg.find("<svg")
                .map_or(svg.clone(), |i| svg[i..].to_owned())
        }
        Err(e) => format!("<p>cannot draw the QR code: {}</p>", esc(&e.to_string())),
    }
}

fn enrolment_card(user: &str, uri: &str) -> String {
    format!(
        r#"<div class="card"><h3>Scan this with your authenticator app</h3><div class="qr">{}</div>
<p class="muted">Enrolment of {} — shown once. Or type the key by hand:</p><pre>{}</pre></div>"#,
        qr_svg(uri),
        esc(user),
        esc(uri)
    )
}

/// `GET /web/mfa`: what the gateway holds for the viewer, the code field, their enrolment.
pub async fn page_(state: &WebState, viewer: &Viewer, extra: &str) -> WebResult<Html<String>> {
    let user = viewer.user.clone();
    let (status, holds) = state
        .api
        .blocking(move |store, _| {
            let status = store.mfa_status(&user)?;
            let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(15);
            let filter = AuditFilter {
                user: Some(user),
                kind: Some(AuditKindFilter::Mfa),
                since: i64::try_from(since.unix_timestamp_nanos() / 1000).ok(),
                limit: 50,
                ..AuditFilter::default()
            };
            Ok((status, store.query_audit(&filter)?))
        })
        .await
        .map_err(WebError::from)?;
    let mut body = String::from(extra);
    // Newest first: a session's hold is open until a later resume, cancel or timeout of it.
    let mut closed = std::collections::HashSet::new();
    let mut open = String::new();
    for record in holds.iter() {
        let AuditEvent::Mfa(m) = &record.event else {
            continue;
        };
        if m.action == "hold" && !closed.contains(&m.session_id) {
            open.push_str(&format!(
                r#"<li><b>{}</b> on {} since {}<br><span class="muted">{}</span></li>"#,
                esc(&m.result),
                esc(&m.resource),
                micros(m.at),
                esc(m.detail.as_deref().unwrap_or(""))
            ));
        }
        if m.action != "hold" {
            closed.insert(m.session_id.clone());
        }
    }
    if !open.is_empty() {
        body.push_str(&format!(
            r#"<div class="notice"><b>The gateway holds your request until you verify:</b><ul>{open}</ul></div>"#
        ));
    }
    match status {
        Some(s) => {
            body.push_str(&format!(
                r#"<form method="post" action="/web/mfa/verify" class="stack card">{}
<label>Code from your authenticator app <input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus></label>
<button type="submit">Verify</button></form>
<p class="muted">Enrolled {} · last verified {}. A verification releases a held statement or connection within a second and counts for the next few minutes.</p>"#,
                csrf_field(viewer),
                super::html::millis(s.enrolled_at),
                s.last_verified_at
                    .map_or("never".to_owned(), super::html::millis)
            ));
        }
        None => {
            let how = if viewer.admin {
                format!(
                    r#"<form method="post" action="/web/mfa/enroll">{}<button type="submit">Enrol now</button></form>"#,
                    csrf_field(viewer)
                )
            } else {
                "<p>An administrator enrols you and shows you the QR code to scan.</p>".to_owned()
            };
            body.push_str(&format!(
                r#"<div class="card"><p>You are not enrolled in MFA.</p>{how}</div>"#
            ));
        }
    }
    Ok(layout(Some(viewer), "MFA", &body))
}

/// `GET /web/mfa`.
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    page_(&state, &viewer, "").await
}

/// `POST /web/mfa/verify`: the API's verification; a held statement goes on.
pub async fn verify(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(form): Form<CodeForm>,
) -> Redirect {
    let user = viewer.user.clone();
    let result = state
        .api
        .blocking(move |store, clock| verify_code(store, clock, &user, &form.code))
        .await;
    match result {
        Ok(message) => state.sessions.flash(
            &viewer.sid,
            true,
            format!("{message}: what the gateway held for you goes on"),
        ),
        Err(e) => state.sessions.flash(&viewer.sid, false, e.message),
    }
    Redirect::to("/web/mfa")
}

/// `POST /web/mfa/enroll`: an administrator who is not enrolled enrols themselves. Others ask one:
/// enrolment is an administrator's act in the API too, so a stolen password cannot enrol a phone.
pub async fn enroll_self(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    viewer.require_admin()?;
    let user = viewer.user.clone();
    let uri = enroll(&state, user).await?;
    let card = enrolment_card(&viewer.user, &uri);
    page_(&state, &viewer, &card).await
}

/// `POST /web/admin/mfa`: an administrator enrols a user (as `POST /api/v1/mfa/{user}/enrollment`).
pub async fn enroll_user(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(form): Form<UserForm>,
) -> WebResult<Html<String>> {
    viewer.require_admin()?;
    let uri = enroll(&state, form.user.clone()).await?;
    let body = format!(
        r#"{}<p>Give this to {} in person; it is not shown again.</p><p><a href="/web/users">Back to users</a></p>"#,
        enrolment_card(&form.user, &uri),
        esc(&form.user)
    );
    Ok(layout(Some(&viewer), "MFA enrolment", &body))
}

async fn enroll(state: &WebState, user: String) -> WebResult<String> {
    state
        .api
        .blocking(move |store, clock| {
            let enrolment = store.enroll_mfa(&user, clock.now())?;
            crate::mfa::record(store, &user, "enroll", "ok")
                .map_err(|e| crate::ApiError::internal(&e))?;
            Ok(enrolment.uri)
        })
        .await
        .map_err(WebError::from)
}

//! Writing HTML safely: every value from a user, the store or the database goes through [`esc`]; the
//! page frame (navigation, the CSRF token for htmx, the flash message) is [`page`].

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;

use super::session::Viewer;
use crate::error::ApiError;

/// `text` with `& < > " '` escaped, safe in element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` for a URL query value.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The items of a form field listing several (roles, objects, privileges), split at commas and spaces.
pub fn form_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Unix milliseconds as `2026-12-06 09:30:00 UTC`.
pub fn millis(at: i64) -> String {
    micros(at.saturating_mul(1000))
}

/// Unix microseconds as `2026-12-06 09:30:00 UTC`.
pub fn micros(at: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1000) else {
        return at.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(viewer: &Viewer) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(&viewer.csrf)
    )
}

/// A complete page: head, navigation for `viewer` (the links their roles open), the flash message and
/// `body`.
pub fn layout(viewer: Option<&Viewer>, title: &str, body: &str) -> Html<String> {
    let mut nav = String::new();
    let mut hx = String::new();
    if let Some(v) = viewer {
        nav.push_str(r#"<nav class="nav"><a href="/web/requests">Requests</a><a href="/web/inbox">Inbox</a><a href="/web/console">Console</a><a href="/web/mfa">MFA</a>"#);
        if v.admin || v.auditor {
            nav.push_str(r#"<a href="/web/audit">Audit</a><a href="/web/policy">Policy</a>"#);
        }
        if v.admin {
            nav.push_str(r#"<a href="/web/users">Users</a><a href="/web/roles">Roles</a><a href="/web/resources">Resources</a><a href="/web/tokens">Tokens</a>"#);
        }
        let _ = write!(
            nav,
            r#"<form method="post" action="/web/logout" class="logout">{}<button type="submit" class="link">Sign out {}</button></form></nav>"#,
            csrf_field(v),
            esc(&v.user)
        );
        // htmx sends this header with every request it makes (the token is hex: safe in JSON).
        hx = format!(r#" hx-headers='{{"X-CSRF-Token": "{}"}}'"#, esc(&v.csrf));
    }
    let flash = viewer
        .and_then(|v| v.flash.as_ref())
        .map(|f| {
            format!(
                r#"<p class="flash {}" role="status">{}</p>"#,
                if f.ok { "ok" } else { "bad" },
                esc(&f.text)
            )
        })
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<title>{title} · Portcullis</title>
<link rel="stylesheet" href="/web/assets/portal.css">
<script src="/web/assets/htmx.min.js" defer></script>
</head><body{hx}>
<header class="top"><a class="brand" href="/web">Portcullis</a>{nav}</header>
<main><h1>{title}</h1>{flash}{body}</main>
</body></html>"#,
        title = esc(title),
    ))
}

/// A page that could not be shown: its status and why, as a page.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
}

impl WebError {
    /// A refusal with this status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        WebError::new(e.status, e.message)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = format!(
            r#"<p class="flash bad" role="alert">{}</p><p><a href="/web">Back to the portal</a></p>"#,
            esc(&self.message)
        );
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Refused")
            .to_owned();
        (self.status, layout(None, &title, &body)).into_response()
    }
}

/// What page handlers return.
pub type WebResult<T> = Result<T, WebError>;

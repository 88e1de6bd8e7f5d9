//! Auditor and admin views: the audit log and policy monitor with filters and charts, one record's
//! detail, a session replay (from a record or by session id), the policy in force and the users. Reads go through the API's handlers
//! (`GET /api/v1/audit`, `/api/v1/audit/{id}`, `/api/v1/policy`) as the viewer.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use portcullis_store::{AuditEvent, AuditRecord};
use serde::Deserialize;

use super::html::{csrf_field, esc, layout, micros, millis, url, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::auth::{Principal, Reader};
use crate::routes::{policy, records};

/// The filters of the audit page, as the form sends them (empty: no filter).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    limit: Option<usize>,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The viewer as the API's `Reader`, once their role allows.
pub(super) fn reader(viewer: &Viewer) -> WebResult<Reader> {
    viewer.require_reader()?;
    Ok(Reader(Principal {
        user: Some(viewer.user.clone()),
        roles: viewer.roles.clone(),
        admin: viewer.admin,
        auditor: viewer.auditor,
        label: viewer.user.clone(),
    }))
}

fn kind(text: &str) -> WebResult<Option<records::Kind>> {
    Ok(match text {
        "" => None,
        "connections" => Some(records::Kind::Connections),
        "statements" => Some(records::Kind::Statements),
        "workflows" => Some(records::Kind::Workflows),
        "mfa" => Some(records::Kind::Mfa),
        other => {
            return Err(WebError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("unknown kind {other:?}"),
            ))
        }
    })
}

async fn query(
    state: &WebState,
    viewer: &Viewer,
    f: &Filters,
    kind_text: &str,
    limit: usize,
) -> WebResult<Vec<AuditRecord>> {
    let q = records::AuditQuery {
        user: some(&f.user),
        resource: some(&f.resource),
        since: some(&f.since),
        until: some(&f.until),
        limit: Some(limit),
        text: some(&f.text),
        object: some(&f.object),
        kind: kind(kind_text)?,
        decision: some(&f.decision),
        session: some(&f.session),
    };
    let found = records::audit(
        State(state.api.clone()),
        reader(viewer)?,
        crate::extract::Query(q),
    )
    .await
    .map_err(WebError::from)?;
    Ok(found.0.into_iter().map(|r| r.0).collect())
}

/// The decision a record shows: the statement's, the monitor's, or the connection phase.
fn decision(r: &AuditRecord) -> String {
    match &r.event {
        AuditEvent::Statement(s) => s.decision.clone(),
        AuditEvent::Decision(d) => d.policy.result.clone(),
        AuditEvent::Connection(c) => format!("{:?}", c.phase).to_lowercase(),
        AuditEvent::Workflow(w) => w.action.clone(),
        AuditEvent::Mfa(m) => m.action.clone(),
    }
}

fn kind_name(r: &AuditRecord) -> &'static str {
    match &r.event {
        AuditEvent::Statement(_) => "statement",
        AuditEvent::Decision(_) => "decision",
        AuditEvent::Connection(_) => "connection",
        AuditEvent::Workflow(_) => "workflow",
        AuditEvent::Mfa(_) => "mfa",
    }
}

fn resource(r: &AuditRecord) -> &str {
    match &r.event {
        AuditEvent::Statement(s) => &s.resource,
        AuditEvent::Decision(d) => &d.resource,
        AuditEvent::Connection(c) => &c.resource,
        AuditEvent::Workflow(w) => &w.resource,
        AuditEvent::Mfa(m) => &m.resource,
    }
}

/// What a record is about, in a line.
fn subject(r: &AuditRecord) -> String {
    match &r.event {
        AuditEvent::Statement(s) => s.text.clone(),
        AuditEvent::Decision(d) => format!("{} {}", d.policy.stage, d.policy.reason),
        AuditEvent::Connection(c) => format!(
            "{} {}{}",
            c.auth_result,
            c.client_addr,
            c.application_name
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        ),
        AuditEvent::Workflow(w) => format!("request {} {}", w.request_id, w.detail),
        AuditEvent::Mfa(m) => format!("{} {}", m.result, m.detail.as_deref().unwrap_or("")),
    }
}

fn badge(decision: &str) -> String {
    let class = match decision {
        "allow" | "open" | "ok" => "allow",
        "deny" | "rejected" | "block" => "deny",
        _ => "",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, esc(decision))
}

/// An SVG bar chart of statements (and, in red, denials) over the records' time span.
fn chart(records: &[AuditRecord]) -> String {
    const BUCKETS: i64 = 24;
    let statements: Vec<(i64, bool)> = records
        .iter()
        .filter_map(|r| match &r.event {
            AuditEvent::Statement(s) => Some((s.at, s.decision == "deny")),
            _ => None,
        })
        .collect();
    let (Some(first), Some(last)) = (
        statements.iter().map(|s| s.0).min(),
        statements.iter().map(|s| s.0).max(),
    ) else {
        return r#"<p class="muted">No statements to chart.</p>"#.to_owned();
    };
    let span = (last - first).max(1);
    let mut all = [0u32; BUCKETS as usize];
    let mut denied = [0u32; BUCKETS as usize];
    for (at, deny) in &statements {
        let i = usize::try_from(((at - first) * (BUCKETS - 1)) / span).unwrap_or(0);
        let i = i.min(all.len() - 1);
        all[i] += 1;
        if *deny {
            denied[i] += 1;
        }
    }
    let top = all.iter().copied().max().unwrap_or(1).max(1);
    let (w, h, bar) = (720, 120, 30);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {}" role="img" aria-label="statements and denials over time"><title>Statements (blue) and denials (red), {} to {}</title>"#,
        h + 16,
        micros(first),
        micros(last)
    );
    for i in 0..all.len() {
        let x = i * bar;
        let hi = all[i] * h / top;
        let hd = denied[i] * h / top;
        svg.push_str(&format!(
            r#"<rect class="bar-all" x="{x}" y="{}" width="{}" height="{hi}"><title>{} statements, {} denied</title></rect><rect class="bar-deny" x="{x}" y="{}" width="{}" height="{hd}"/>"#,
            h - hi,
            bar - 2,
            all[i],
            denied[i],
            h - hd,
            bar - 2
        ));
    }
    svg.push_str(&format!(
        r#"<text x="0" y="{}">{}</text><text x="{w}" y="{}" text-anchor="end">{}</text></svg>"#,
        h + 12,
        esc(&micros(first)),
        h + 12,
        esc(&micros(last))
    ));
    svg
}

/// `GET /web/audit`: filters, chart, records (newest first).
pub async fn log(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(f): Query<Filters>,
) -> WebResult<Html<String>> {
    viewer.require_reader()?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let found = query(&state, &viewer, &f, &f.kind, limit).await?;
    let for_chart = if f.kind.is_empty() || f.kind == "statements" {
        query(&state, &viewer, &f, "statements", 2000).await?
    } else {
        Vec::new()
    };
    let option = |value: &str, current: &str| {
        format!(
            r#"<option value="{v}"{}>{}</option>"#,
            if value == current { " selected" } else { "" },
            if value.is_empty() { "any" } else { value },
            v = esc(value)
        )
    };
    let kinds: String = ["", "statements", "connections", "workflows", "mfa"]
        .iter()
        .map(|k| option(k, &f.kind))
        .collect();
    let decisions: String = ["", "allow", "deny"]
        .iter()
        .map(|d| option(d, &f.decision))
        .collect();
    let mut body = format!(
        r#"<form method="get" action="/web/audit" class="filters card">
<label>User <input name="user" value="{}"></label>
<label>Resource <input name="resource" value="{}"></label>
<label>Since <input name="since" value="{}" placeholder="1h, 1d, RFC 3339"></label>
<label>Until <input name="until" value="{}"></label>
<label>Decision <select name="decision">{decisions}</select></label>
<label>Kind <select name="kind">{kinds}</select></label>
<label>Text <input name="text" value="{}"></label>
<label>Object <input name="object" value="{}"></label>
<button type="submit">Filter</button></form>
<form method="get" action="/web/sessions" class="actions" id="session-form"><input name="id" placeholder="session id" aria-label="session id" required><button type="submit" class="secondary">Replay session</button></form>
{}{}"#,
        esc(&f.user),
        esc(&f.resource),
        esc(&f.since),
        esc(&f.until),
        esc(&f.text),
        esc(&f.object),
        chart(&for_chart),
        super::charts::top(&for_chart)
    );
    body.push_str(&format!(
        r#"<p class="muted">{} record(s), newest first (at most {limit}).</p><div class="scroll"><table id="audit"><thead><tr><th>#</th><th>When</th><th>Kind</th><th>User</th><th>Resource</th><th>Decision</th><th>What</th><th>Session</th></tr></thead><tbody>"#,
        found.len()
    ));
    for r in &found {
        let sid = r.event.session_id();
        let session = if sid.is_empty() {
            String::new()
        } else {
            format!(r#"<a href="/web/sessions/{}">replay</a>"#, url(sid))
        };
        body.push_str(&format!(
            r#"<tr><td><a href="/web/audit/{id}">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{session}</td></tr>"#,
            micros(r.event.at()),
            kind_name(r),
            esc(r.event.user()),
            esc(resource(r)),
            badge(&decision(r)),
            esc(&short(&subject(r), 160)),
            id = r.id,
        ));
    }
    body.push_str("</tbody></table></div>");
    Ok(layout(Some(&viewer), "Audit log", &body))
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max).collect::<String>())
    } else {
        text.to_owned()
    }
}

fn trail_html(t: &portcullis_store::PolicyTrail) -> String {
    let mut html = format!(
        r#"<p>Stage <b>{}</b> · result {} · policy version {} · location {} · device trust {}</p><p>{}</p>"#,
        esc(&t.stage),
        badge(&t.result),
        t.policy_version
            .map_or("none".to_owned(), |v| v.to_string()),
        esc(&t.location),
        esc(&t.device_trust),
        esc(&t.reason)
    );
    if !t.rules.is_empty() {
        html.push_str(r#"<h2>Rules that fired</h2><div class="scroll"><table><tr><th>Rule</th><th>Action</th><th>Components</th><th>Message</th></tr>"#);
        for rule in &t.rules {
            html.push_str(&format!(
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&rule.id),
                rule.name
                    .as_deref()
                    .map(|n| format!(" ({})", esc(n)))
                    .unwrap_or_default(),
                esc(&rule.action),
                esc(&rule.components.join(", ")),
                esc(rule.message.as_deref().unwrap_or(""))
            ));
        }
        html.push_str("</table></div>");
    }
    if !t.requirements.is_empty() {
        html.push_str("<h2>Requirements</h2><ul>");
        for req in &t.requirements {
            let text = serde_json::to_string(req).unwrap_or_default();
            html.push_str(&format!("<li><code>{}</code></li>", esc(&text)));
        }
        html.push_str("</ul>");
    }
    if !t.missing_grants.is_empty() {
        html.push_str(&format!(
            "<p><b>Missing grants:</b> {}</p>",
            esc(&t.missing_grants.join(", "))
        ));
    }
    if !t.protections.is_empty() {
        html.push_str(&format!(
            "<p><b>Protections:</b> {}</p>",
            esc(&t.protections.join("; "))
        ));
    }
    html
}

/// `GET /web/audit/{id}`: one record: what, who, the rules that fired and on which components.
pub async fn record(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> WebResult<Html<String>> {
    let found = records::record(
        State(state.api.clone()),
        reader(&viewer)?,
        crate::extract::Params(id),
    )
    .await
    .map_err(WebError::from)?
    .0
     .0;
    let mut body = format!(
        r#"<div class="card"><p>{} · {} · {} on {} · {}</p><pre>{}</pre>"#,
        micros(found.event.at()),
        kind_name(&found),
        esc(found.event.user()),
        esc(resource(&found)),
        badge(&decision(&found)),
        esc(&subject(&found))
    );
    match &found.event {
        AuditEvent::Statement(s) => {
            body.push_str(&format!(
                "<p>Kind {} · outcome {} · rows {} · {} µs{}</p>",
                esc(&s.kind),
                esc(&s.outcome),
                s.rows.map_or("-".to_owned(), |r| r.to_string()),
                s.duration_us,
                s.message
                    .as_deref()
                    .map(|m| format!(" · {} {}", esc(s.sqlstate.as_deref().unwrap_or("")), esc(m)))
                    .unwrap_or_default()
            ));
            if !s.objects.is_empty() {
                let objects: Vec<String> = s
                    .objects
                    .iter()
                    .map(|o| serde_json::to_string(o).unwrap_or_default())
                    .collect();
                body.push_str(&format!(
                    "<p>Objects: <code>{}</code></p>",
                    esc(&objects.join(" "))
                ));
            }
            if let Some(t) = &s.policy {
                body.push_str(&trail_html(t));
            }
        }
        AuditEvent::Decision(d) => body.push_str(&trail_html(&d.policy)),
        _ => {}
    }
    let sid = found.event.session_id();
    if !sid.is_empty() {
        body.push_str(&format!(
            r#"<p><a href="/web/sessions/{}">Replay session {}</a></p>"#,
            url(sid),
            esc(sid)
        ));
    }
    let json = serde_json::to_string_pretty(&found).unwrap_or_default();
    body.push_str(&format!(
        "</div><details><summary>The record as stored</summary><pre>{}</pre></details>",
        esc(&json)
    ));
    Ok(layout(Some(&viewer), &format!("Audit record {id}"), &body))
}

/// Which step of the session (the path names the session) to show in full.
#[derive(Deserialize)]
pub struct ReplayQuery {
    #[serde(default)]
    step: Option<usize>,
}

/// The most records a replay shows of one session (the API's largest page).
const SESSION_RECORDS: usize = 10_000;

/// The session id form's field.
#[derive(Deserialize)]
pub struct SessionLookup {
    #[serde(default)]
    id: String,
}

/// `GET /web/sessions?id=…`: the replay of the session with this id.
pub async fn replay_lookup(
    viewer: Viewer,
    Query(q): Query<SessionLookup>,
) -> WebResult<axum::response::Redirect> {
    viewer.require_reader()?;
    let id = q.id.trim();
    if id.is_empty() {
        return Err(WebError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "give a session id",
        ));
    }
    Ok(axum::response::Redirect::to(&format!(
        "/web/sessions/{}",
        url(id)
    )))
}

/// `GET /web/sessions/{id}`: one session's records in order, with timing, decisions, rows and
/// errors; `?step=N` shows step N in full with previous/next.
pub async fn replay(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(sid): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> WebResult<Html<String>> {
    // The index finds a session's records by its id, however old the session.
    let f = Filters {
        session: sid.clone(),
        ..Filters::default()
    };
    let mut steps = query(&state, &viewer, &f, "", SESSION_RECORDS).await?;
    steps.sort_by_key(|r| (r.event.at(), r.id));
    let Some((first, user)) = steps
        .first()
        .map(|r| (r.event.at(), r.event.user().to_owned()))
    else {
        return Err(WebError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("there are no records of session {sid}"),
        ));
    };
    let console = steps.iter().any(|r| {
        matches!(&r.event, AuditEvent::Connection(c)
            if c.application_name.as_deref() == Some(super::console::CONSOLE_APPLICATION))
    });
    let current = q.step.unwrap_or(0).min(steps.len() - 1);
    let link = |n: usize, label: &str| {
        format!(
            r#"<a class="button" href="/web/sessions/{}?step={n}#step-{n}">{label}</a>"#,
            url(&sid)
        )
    };
    let mut body = format!(
        r#"<p>{} · {} step(s) · started {}{}</p><div class="pager">{}<span>step {} of {}</span>{}</div>"#,
        esc(&user),
        steps.len(),
        micros(first),
        if console {
            r#" · <span class="badge">console session</span>"#
        } else {
            ""
        },
        if current > 0 {
            link(current - 1, "‹ Previous")
        } else {
            String::new()
        },
        current + 1,
        steps.len(),
        if current + 1 < steps.len() {
            link(current + 1, "Next ›")
        } else {
            String::new()
        },
    );
    body.push_str(r#"<ol class="replay">"#);
    for (i, r) in steps.iter().enumerate() {
        let offset_ms = (r.event.at() - first) / 1000;
        let d = decision(r);
        let extra = match &r.event {
            AuditEvent::Statement(s) => format!(
                "{} µs · rows {}{}",
                s.duration_us,
                s.rows.map_or("-".to_owned(), |n| n.to_string()),
                s.message
                    .as_deref()
                    .map(|m| format!(
                        " · <b>{}</b> {}",
                        esc(s.sqlstate.as_deref().unwrap_or("")),
                        esc(m)
                    ))
                    .unwrap_or_default()
            ),
            _ => String::new(),
        };
        let class = if d == "deny" || extra.contains("<b>") {
            "deny"
        } else {
            "allow"
        };
        let full = if i == current {
            format!(
                r#"<pre>{}</pre><p><a href="/web/audit/{}">Record {} in full</a></p>"#,
                esc(&subject(r)),
                r.id,
                r.id
            )
        } else {
            format!("<code>{}</code>", esc(&short(&subject(r), 120)))
        };
        body.push_str(&format!(
            r#"<li id="step-{i}" class="card step {class}{}"><p class="muted">+{offset_ms} ms · {} · {}</p>{full}<p>{extra}</p></li>"#,
            if i == current { " current" } else { "" },
            kind_name(r),
            badge(&d),
        ));
    }
    body.push_str("</ol>");
    Ok(layout(Some(&viewer), &format!("Session {sid}"), &body))
}

/// `GET /web/policy`: the policy in force (`GET /api/v1/policy`) and the grants it gives.
pub async fn policy(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let shown = policy::show(State(state.api.clone()), reader(&viewer)?).await;
    let body = match shown {
        Ok(p) => {
            let p = p.0;
            let grants = policy::grants(State(state.api.clone()), reader(&viewer)?)
                .await
                .map(|g| g.0)
                .unwrap_or_default();
            let mut rows = String::new();
            for g in &grants {
                rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&g.to),
                    esc(&g.resource),
                    esc(&g.objects.join(", ")),
                    esc(&g.privileges.join(", ")),
                    esc(&g.source)
                ));
            }
            format!(
                r#"<p>Version {} from {} · applied {} by {}</p><p class="actions"><a class="button" href="/web/policy/explain">Explain a statement</a><a class="button" href="/web/policy/versions">Versions and diffs</a></p><h2>Grants in force</h2><div class="scroll"><table><tr><th>To</th><th>Resource</th><th>Objects</th><th>Privileges</th><th>Source</th></tr>{rows}</table></div><h2>Document</h2><pre>{}</pre>"#,
                p.version,
                esc(&p.source),
                millis(p.applied_at),
                esc(&p.applied_by),
                esc(&p.text)
            )
        }
        Err(e) => format!(r#"<p class="muted">{}</p>"#, esc(&e.message)),
    };
    Ok(layout(Some(&viewer), "Policy in force", &body))
}

/// `GET /web/users`: users, their roles and MFA (admin); enrol a user with a QR code.
pub async fn users(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    viewer.require_admin()?;
    let (users, mfa) = state
        .api
        .blocking(|store, _| {
            let mfa: BTreeMap<String, i64> = store
                .list_mfa_status()?
                .into_iter()
                .map(|s| (s.user, s.enrolled_at))
                .collect();
            Ok((store.list_users()?, mfa))
        })
        .await
        .map_err(WebError::from)?;
    let mut body = String::from(
        r#"<div class="scroll"><table><tr><th>User</th><th>Roles</th><th>MFA</th></tr>"#,
    );
    for u in &users {
        let enrolled = match mfa.get(&u.name) {
            Some(at) => format!("enrolled {}", millis(*at)),
            None => format!(
                r#"<form method="post" action="/web/admin/mfa">{}<input type="hidden" name="user" value="{}"><button type="submit" class="secondary">Enrol</button></form>"#,
                csrf_field(&viewer),
                esc(&u.name)
            ),
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{enrolled}</td></tr>",
            esc(&u.name),
            esc(&u.roles.join(", "))
        ));
    }
    body.push_str("</table></div>");
    Ok(layout(Some(&viewer), "Users", &body))
}

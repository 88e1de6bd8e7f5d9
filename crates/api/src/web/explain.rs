//! `policy explain` in the browser (auditors and admins): a pasted statement, who runs it and from
//! where, decided under the policy in force by [`portcullis_policy::explain::explain`] — the function
//! the CLI's `policy explain` calls — and shown as the CLI's text output shows it. The statement text
//! travels in a POST body (it may hold literals nobody wants in a URL or a proxy's log).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use portcullis_policy::explain::{
    self, parse_device_trust, parse_location, parse_time, ContextInput, FiredReport, Report,
    RuleRef, DEFAULT_SEARCH_PATH,
};
use portcullis_policy::CompiledPolicy;
use serde::Deserialize;

use super::html::{csrf_field, esc, form_list, layout, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::error::ApiError;

/// The explain form, as the browser sends it (every field text; empty means "not given").
#[derive(Debug, Default, Deserialize)]
pub struct ExplainForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    client_addr: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    device_trust: String,
    #[serde(default)]
    search_path: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    rows: String,
    #[serde(default)]
    mfa_verified: Option<String>,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    approvals: String,
    #[serde(default)]
    sql: String,
}

fn or<'a>(text: &'a str, default: &'a str) -> &'a str {
    match text.trim() {
        "" => default,
        t => t,
    }
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_form", message)
}

fn form_html(viewer: &Viewer, f: &ExplainForm) -> String {
    format!(
        r#"<form method="post" action="/web/policy/explain" class="card" id="explain-form">{}
<div class="filters">
<label>User <input name="user" value="{}" required></label>
<label>Roles <input name="roles" value="{}" placeholder="empty: the user's roles now"></label>
<label>Resource <input name="resource" value="{}" required></label>
<label>Client address <input name="client_addr" value="{}" placeholder="none (Unix socket)"></label>
<label>Location <input name="location" value="{}" placeholder="unknown, or DE"></label>
<label>Device trust <input name="device_trust" value="{}" placeholder="unknown"></label>
<label>search_path <input name="search_path" value="{}"></label>
<label>At <input name="at" value="{}" placeholder="now, or RFC 3339"></label>
<label>Rows <input name="rows" value="{}" inputmode="numeric" placeholder="row-count rules"></label>
<label>Justification <input name="justification" value="{}"></label>
<label>Approved by <input name="approvals" value="{}" placeholder="workflow names"></label>
<label><span><input type="checkbox" name="mfa_verified" value="on"{}> MFA verified</span></label>
</div>
<label>Statement(s) <textarea name="sql" required>{}</textarea></label>
<div class="actions"><button type="submit">Explain</button></div></form>"#,
        csrf_field(viewer),
        esc(&f.user),
        esc(&f.roles),
        esc(&f.resource),
        esc(&f.client_addr),
        esc(&f.location),
        esc(&f.device_trust),
        esc(or(&f.search_path, DEFAULT_SEARCH_PATH)),
        esc(&f.at),
        esc(&f.rows),
        esc(&f.justification),
        esc(&f.approvals),
        if f.mfa_verified.is_some() {
            " checked"
        } else {
            ""
        },
        esc(&f.sql),
    )
}

/// `GET /web/policy/explain`: the empty form.
pub async fn page(viewer: Viewer) -> WebResult<Html<String>> {
    viewer.require_reader()?;
    let body = format!(
        r#"<p class="muted">Decides a statement under the policy in force without running it, as <code>portcullis policy explain</code> does: the same analysis and engine as the gateway. Unqualified names resolve to the first schema of the search_path (no database is asked).</p>{}"#,
        form_html(&viewer, &ExplainForm::default())
    );
    Ok(layout(Some(&viewer), "Explain a statement", &body))
}

/// `POST /web/policy/explain`: the form again, and the explanation under it.
pub async fn run(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(f): Form<ExplainForm>,
) -> WebResult<Response> {
    viewer.require_reader()?;
    let (status, result) = match explain_form(&state, &f).await {
        Ok(report) => (StatusCode::OK, report_html(&report)),
        // The form stays filled in, with what to correct above the report's place.
        Err(e) => (
            e.status,
            format!(
                r#"<p class="flash bad" role="alert" id="explain-error">{}</p>"#,
                esc(&e.message)
            ),
        ),
    };
    let body = format!(
        r#"{}<section id="report">{result}</section>"#,
        form_html(&viewer, &f)
    );
    Ok((status, layout(Some(&viewer), "Explain a statement", &body)).into_response())
}

/// Reads the form into the library's request and explains it under the policy in force.
async fn explain_form(state: &WebState, f: &ExplainForm) -> Result<Report, ApiError> {
    let user = f.user.trim().to_owned();
    let resource = f.resource.trim().to_owned();
    if user.is_empty() || resource.is_empty() || f.sql.trim().is_empty() {
        return Err(bad("give a user, a resource and a statement".into()));
    }
    let location =
        parse_location(or(&f.location, "unknown")).map_err(|e| bad(format!("location {e}")))?;
    let device_trust = parse_device_trust(or(&f.device_trust, "unknown"))
        .map_err(|e| bad(format!("device trust {e}")))?;
    let client_addr: Option<std::net::IpAddr> = match f.client_addr.trim() {
        "" => None,
        a => Some(
            a.parse()
                .map_err(|_| bad(format!("client address `{a}` is not an IP address")))?,
        ),
    };
    let rows = match f.rows.trim() {
        "" => None,
        r => Some(
            r.parse::<u64>()
                .map_err(|_| bad(format!("rows `{r}` is not a count")))?,
        ),
    };
    let at = match f.at.trim() {
        "" => None,
        t => Some(parse_time(t).map_err(|e| bad(format!("at {e}")))?),
    };
    let roles = form_list(&f.roles);
    let approvals = form_list(&f.approvals);
    let justification = Some(f.justification.trim().to_owned()).filter(|j| !j.is_empty());
    let search_path = or(&f.search_path, DEFAULT_SEARCH_PATH).to_owned();
    let sql = f.sql.clone();
    let mfa_verified = f.mfa_verified.is_some();
    state
        .api
        .blocking(move |store, clock| {
            let policy = portcullis_workflows::load_policy(store)?;
            let name = match store.active_policy_version()? {
                Some(v) => format!("version {v} (in force)"),
                None => "in force".to_owned(),
            };
            // No roles given: the user's roles now, as the gateway would see them (none for a user
            // the store does not know).
            let roles = if roles.is_empty() {
                store
                    .user_login(&user)?
                    .map(|l| l.roles)
                    .unwrap_or_default()
            } else {
                roles
            };
            let ctx = ContextInput {
                user: &user,
                roles: &roles,
                resource: &resource,
                client_addr,
                location,
                device_trust,
                mfa_verified,
                justification: justification.as_deref(),
                approvals: &approvals,
            }
            .build();
            let request = explain::Request {
                ctx: &ctx,
                search_path: &search_path,
                now: at.unwrap_or_else(|| clock.now()),
                rows,
                sql: &sql,
            };
            let compiled = CompiledPolicy::compile(&policy);
            Ok(explain::explain(&compiled, &name, &request))
        })
        .await
}

fn verdict_badge(verdict: &str) -> String {
    let class = match verdict {
        "allow" => "allow",
        "deny" => "deny",
        _ => "pending",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, esc(verdict))
}

fn fired_html(title: &str, fired: &[FiredReport]) -> String {
    if fired.is_empty() {
        return format!("<p>{} none</p>", esc(title));
    }
    let mut html = format!(
        "<p>{} {} (one event per rule)</p><ul class=\"fired\">",
        esc(title),
        fired.len()
    );
    for f in fired {
        let on = f.fired_on();
        let rule = RuleRef {
            id: f.id.clone(),
            name: f.name.clone(),
            action: f.action,
        };
        html.push_str(&format!(
            "<li>[{}] <b>{}</b>, severity {} on {}{}{}</li>",
            f.position + 1,
            esc(&rule.describe()),
            esc(f.severity),
            esc(&on),
            f.message
                .as_deref()
                .map(|m| format!("; message: {}", esc(m)))
                .unwrap_or_default(),
            f.indeterminate
                .as_deref()
                .map(|w| format!("; applied as a denial: {}", esc(w)))
                .unwrap_or_default(),
        ));
    }
    html.push_str("</ul>");
    html
}

/// The report as the CLI's text output lays it out: context, protections, then each statement's
/// components, the rules that fired, Cedar policies, requirements, missing grants and the verdict.
fn report_html(r: &Report) -> String {
    let roles = if r.roles.is_empty() {
        "none".to_owned()
    } else {
        r.roles.join(", ")
    };
    let mut html = format!(
        r#"<div class="card"><p>Verdict {} · policy {}</p><p class="muted">user {} (roles: {}) · resource {} · at {} · search_path {} · client {} · location {} · device trust {}</p>"#,
        verdict_badge(r.verdict),
        esc(&r.policy),
        esc(&r.user),
        esc(&roles),
        esc(&r.resource),
        esc(&r.at),
        esc(&r.search_path),
        esc(r.client_addr.as_deref().unwrap_or("none")),
        esc(&r.location),
        esc(&r.device_trust),
    );
    if !r.protections.is_empty() {
        html.push_str("<ul>");
        for p in &r.protections {
            html.push_str(&format!(
                "<li>{} <code>{}</code> on {} {}{}</li>",
                esc(p.kind),
                esc(&p.id),
                esc(&p.targets.join(", ")),
                if p.applies {
                    "applies"
                } else {
                    "does not apply"
                },
                p.why
                    .as_deref()
                    .map(|w| format!(" ({})", esc(w)))
                    .unwrap_or_default()
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str("</div>");
    if r.statements.is_empty() {
        html.push_str(r#"<p class="muted">No statements.</p>"#);
    }
    for (n, s) in r.statements.iter().enumerate() {
        html.push_str(&format!(
            r#"<div class="card statement" id="statement-{}"><h2>Statement {} {}</h2><pre>{}</pre>"#,
            n + 1,
            n + 1,
            verdict_badge(s.verdict),
            esc(&s.text)
        ));
        if let Some(e) = &s.error {
            html.push_str(&format!("<p><b>error:</b> {}</p>", esc(e)));
        }
        if let Some(why) = &s.opaque {
            html.push_str(&format!("<p><b>opaque:</b> {}</p>", esc(why)));
        }
        if !s.components.is_empty() {
            html.push_str(r#"<div class="scroll"><table class="components"><tr><th>#</th><th>Component</th><th>Kind</th><th>Object</th><th>Operation</th><th>Columns</th><th>Rule fired</th></tr>"#);
            for c in &s.components {
                let mut rule = c.rule.as_ref().map_or("none".to_owned(), RuleRef::describe);
                if let Some(after) = &c.outcome_rule {
                    rule = format!("{} after rows", after.describe());
                }
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    c.index,
                    esc(c.component),
                    esc(&c.kind),
                    esc(c.object.as_deref().unwrap_or("-")),
                    esc(c.operation.as_deref().unwrap_or("-")),
                    esc(&c.columns.join(", ")),
                    esc(&rule)
                ));
            }
            html.push_str("</table></div>");
        }
        html.push_str(&fired_html("Fired rules:", &s.fired));
        for p in &s.policies {
            html.push_str(&format!(
                "<p>cedar {} <code>{}</code> applies{}</p>",
                esc(p.effect),
                esc(&p.id),
                p.error
                    .as_deref()
                    .map(|e| format!(" (evaluation failed: {})", esc(e)))
                    .unwrap_or_default()
            ));
        }
        for q in &s.requirements {
            html.push_str(&format!(
                "<p>requirement {}: {}</p>",
                if q.met { "met" } else { "missing" },
                esc(&q.description)
            ));
        }
        if s.missing_grants.is_empty() {
            html.push_str("<p>Missing grants: none</p>");
        } else {
            html.push_str("<p>Missing grants:</p><ul>");
            for m in &s.missing_grants {
                html.push_str(&format!("<li>{}</li>", esc(&m.message)));
            }
            html.push_str("</ul>");
        }
        html.push_str(&format!(
            r#"<p class="verdict">Verdict: {} ({})</p>"#,
            verdict_badge(s.verdict),
            esc(&s.reason)
        ));
        if s.logout {
            html.push_str("<p>The session would be ended (logout).</p>");
        }
        if s.rows_rules_pending {
            html.push_str(
                "<p class=\"muted\">Row-count rules decide after execution; give Rows to see the outcome.</p>",
            );
        }
        if let Some(o) = &s.outcome {
            html.push_str(&fired_html(
                &format!("After {} rows, fired rules:", o.rows),
                &o.fired,
            ));
            html.push_str(&format!(
                "<p>Verdict after {} rows: {} ({})</p>",
                o.rows,
                verdict_badge(o.verdict),
                esc(&o.reason)
            ));
        }
        html.push_str("</div>");
    }
    html
}

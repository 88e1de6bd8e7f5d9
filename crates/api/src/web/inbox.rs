//! The approver's inbox: pending requests, reservations and held statements the viewer may decide (the
//! workflows crate decides who may), approve or reject with a comment, and notifications.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use portcullis_store::{Request, RequestKind, RequestStatus};
use serde::Deserialize;

use super::access::{asks, person, status_badge};
use super::html::{csrf_field, esc, layout, millis, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::extract::{Body, Params, Query};
use crate::routes::{notifications, requests};

/// An approver's comment.
#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
}

/// The workflow's rule in words: how many approvals, by whom.
fn workflow_rule(policy: Option<&portcullis_policy::Policy>, r: &Request) -> String {
    let Some(w) = policy.and_then(|p| p.workflows.iter().find(|w| w.name == r.workflow)) else {
        return format!("workflow {}", r.workflow);
    };
    let mut who: Vec<String> = w.approver_users.clone();
    who.extend(w.approver_roles.iter().map(|r| format!("role {r}")));
    let approvals = r
        .endorsements
        .iter()
        .filter(|e| e.decision == portcullis_store::EndorsementDecision::Approve)
        .count();
    format!(
        "workflow {}: {} of the approvers ({}) must approve, {} so far; one rejection rejects; \
         the requester never approves their own request",
        w.name,
        w.required,
        who.join(", "),
        approvals
    )
}

fn card(viewer: &Viewer, r: &Request, rule: &str, outcome: Option<&str>) -> String {
    let statement = r
        .query
        .as_ref()
        .map(|q| {
            format!(
                r#"<p>Statement (exactly as it will run):</p><pre class="statement">{}</pre>"#,
                esc(&q.text)
            )
        })
        .unwrap_or_default();
    let decided: String = r
        .endorsements
        .iter()
        .map(|e| {
            format!(
                "<li>{} {}{}</li>",
                esc(&e.approver),
                e.decision.as_str(),
                e.comment
                    .as_deref()
                    .map(|c| format!(": “{}”", esc(c)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let actions = if r.status == RequestStatus::Pending {
        format!(
            r##"<form method="post" action="/web/inbox/{id}/approve" hx-post="/web/inbox/{id}/approve" hx-target="#request-{id}" hx-swap="outerHTML" class="actions">{csrf}
<input name="comment" placeholder="comment (optional)" aria-label="comment">
<button type="submit">Approve</button>
<button type="submit" class="danger" formaction="/web/inbox/{id}/reject" hx-post="/web/inbox/{id}/reject">Reject</button></form>"##,
            id = r.id,
            csrf = csrf_field(viewer)
        )
    } else {
        String::new()
    };
    let kind = match r.kind {
        RequestKind::Query => "held statement",
        RequestKind::Connection => "connection",
        RequestKind::Reservation => "reservation",
        RequestKind::Access => "access",
    };
    format!(
        r#"<div class="card" id="request-{id}"><h3>#{id} {badge} {kind} · {who} on {resource}</h3>
{outcome}<p>{asks}</p>{statement}<p><b>Why:</b> {reason}</p>
<p class="muted">asked {created} · expires {expires}<br>{rule}</p>{decided}{actions}</div>"#,
        id = r.id,
        badge = status_badge(r.status),
        who = esc(&r.requester),
        resource = esc(&r.resource),
        outcome = outcome
            .map(|o| format!(r#"<p class="flash ok" role="status">{}</p>"#, esc(o)))
            .unwrap_or_default(),
        asks = esc(&asks(r)),
        reason = esc(&r.reason),
        created = millis(r.created_at),
        expires = millis(r.expires_at),
        rule = esc(rule),
        decided = if decided.is_empty() {
            String::new()
        } else {
            format!("<ul>{decided}</ul>")
        },
    )
}

async fn policy(state: &WebState) -> Option<portcullis_policy::Policy> {
    state
        .api
        .blocking(|store, _| Ok(portcullis_workflows::load_policy(store).ok()))
        .await
        .ok()
        .flatten()
}

/// `GET /web/inbox`: `GET /api/v1/inbox` and the viewer's notifications.
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let pending = requests::inbox(State(state.api.clone()), person(&viewer))
        .await
        .map_err(WebError::from)?
        .0;
    let notes = notifications::list(
        State(state.api.clone()),
        person(&viewer),
        Query(notifications::InboxQuery { unread: false }),
    )
    .await
    .map_err(WebError::from)?
    .0;
    let policy = policy(&state).await;
    let mut body = String::from(r#"<h2>Waiting for your decision</h2><div id="inbox">"#);
    if pending.is_empty() {
        body.push_str(r#"<p class="muted">Nothing waits for you.</p>"#);
    }
    for r in &pending {
        body.push_str(&card(
            &viewer,
            &r.0,
            &workflow_rule(policy.as_ref(), &r.0),
            None,
        ));
    }
    body.push_str("</div><h2>Notifications</h2>");
    let unread = notes.iter().filter(|n| n.0.read_at.is_none()).count();
    if unread > 0 {
        body.push_str(&format!(
            r#"<form method="post" action="/web/notifications/read">{}<button type="submit" class="secondary">Mark {unread} read</button></form>"#,
            csrf_field(&viewer)
        ));
    }
    if notes.is_empty() {
        body.push_str(r#"<p class="muted">No notifications.</p>"#);
    }
    for n in notes.iter().take(50) {
        let (read_at, n) = (n.0.read_at, &n.0.notification);
        body.push_str(&format!(
            r#"<div class="card{}"><h3>{}{}</h3><p class="muted">{}</p><pre>{}</pre></div>"#,
            if read_at.is_none() { " unread" } else { "" },
            if read_at.is_none() {
                r#"<span class="badge pending">new</span> "#
            } else {
                ""
            },
            esc(&n.subject),
            millis(n.created_at),
            esc(&n.body)
        ));
    }
    Ok(layout(Some(&viewer), "Inbox", &body))
}

async fn decide(
    state: WebState,
    viewer: Viewer,
    headers: HeaderMap,
    id: i64,
    approve: bool,
    comment: String,
) -> Response {
    let comment = Some(comment.trim().to_owned()).filter(|c| !c.is_empty());
    let decision = requests::Decision { comment };
    let api = State(state.api.clone());
    let done = if approve {
        requests::approve(api, person(&viewer), Params(id), Body(decision)).await
    } else {
        requests::reject(api, person(&viewer), Params(id), Body(decision)).await
    };
    let htmx = headers.contains_key("hx-request");
    match done {
        Ok(r) => {
            let r = r.0 .0;
            let message = match r.status {
                RequestStatus::Pending => format!(
                    "Your endorsement of #{} is recorded; it needs more approvals.",
                    r.id
                ),
                s => format!("Request #{} is {} now.", r.id, s.as_str()),
            };
            if htmx {
                let policy = policy(&state).await;
                let rule = workflow_rule(policy.as_ref(), &r);
                Html(card(&viewer, &r, &rule, Some(&message))).into_response()
            } else {
                state.sessions.flash(&viewer.sid, true, message);
                Redirect::to("/web/inbox").into_response()
            }
        }
        Err(e) => {
            if htmx {
                // Keep the card; say why beside it (separation of duty, N-of-M, no longer pending).
                let status = e.status;
                let body = format!(
                    r#"<div class="card" id="request-{id}"><p class="flash bad" role="alert">{}</p><a href="/web/inbox">Reload the inbox</a></div>"#,
                    esc(&e.message)
                );
                // htmx swaps 2xx only; the refusal is the content, the status stays in a header.
                let mut response = Html(body).into_response();
                if let Ok(v) = status.as_u16().to_string().parse() {
                    response.headers_mut().insert("x-portcullis-status", v);
                }
                response
            } else {
                state.sessions.flash(&viewer.sid, false, e.message);
                Redirect::to("/web/inbox").into_response()
            }
        }
    }
}

/// `POST /web/inbox/{id}/approve`: `POST /api/v1/requests/{id}/approve` as the viewer.
pub async fn approve(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    decide(state, viewer, headers, id, true, form.comment).await
}

/// `POST /web/inbox/{id}/reject`: `POST /api/v1/requests/{id}/reject` as the viewer.
pub async fn reject(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    decide(state, viewer, headers, id, false, form.comment).await
}

/// `POST /web/notifications/read`: marks all of the viewer's notifications read.
pub async fn mark_read(State(state): State<WebState>, viewer: Viewer) -> Redirect {
    let marked = notifications::mark_read(
        State(state.api.clone()),
        person(&viewer),
        Body(notifications::MarkRead { ids: None }),
    )
    .await;
    match marked {
        Ok(m) => state
            .sessions
            .flash(&viewer.sid, true, format!("{} marked read.", m.0.marked)),
        Err(e) => state.sessions.flash(&viewer.sid, false, e.message),
    }
    Redirect::to("/web/inbox")
}

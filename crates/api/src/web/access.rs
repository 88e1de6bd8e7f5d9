//! Asking for access: a request for a resource or bundle, a reservation, the viewer's own requests and
//! the grants they hold now. Each action is the JSON API's own handler, called with the viewer.

use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::Form;
use portcullis_policy::{privilege_name, Principal};
use portcullis_store::{Request, RequestStatus};
use serde::Deserialize;

use super::html::{csrf_field, esc, form_list, layout, millis, WebError, WebResult};
use super::session::Viewer;
use super::WebState;
use crate::auth::Person;
use crate::extract::{Body, Query};
use crate::routes::{requests, reservations};

/// The access request form.
#[derive(Deserialize)]
pub struct AccessForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    objects: String,
    #[serde(default)]
    privileges: String,
    duration: String,
    reason: String,
}

/// The reservation form.
#[derive(Deserialize)]
pub struct ReservationForm {
    resource: String,
    from: String,
    until: String,
    reason: String,
}

/// The viewer as the API's `Person`.
pub fn person(viewer: &Viewer) -> Person {
    Person {
        user: viewer.user.clone(),
        roles: viewer.roles.clone(),
    }
}

/// A request's status as a badge.
pub fn status_badge(status: RequestStatus) -> String {
    let s = status.as_str();
    format!(r#"<span class="badge {s}">{s}</span>"#)
}

/// What a request asks for, in a line.
pub fn asks(r: &Request) -> String {
    if let Some(a) = &r.access {
        let what = match &a.bundle {
            Some(b) => format!("bundle {b}"),
            None => format!("{} on {}", a.privileges.join(", "), a.objects.join(", ")),
        };
        return format!("access: {what}");
    }
    if let Some(q) = &r.query {
        return format!("statement: {}", q.summary);
    }
    if let Some(w) = &r.window {
        return format!("window {} – {}", millis(w.from), millis(w.until));
    }
    r.kind.as_str().to_owned()
}

fn request_card(r: &Request) -> String {
    let mut endorsements = String::new();
    for e in &r.endorsements {
        endorsements.push_str(&format!(
            "<li>{} {} at {}{}</li>",
            esc(&e.approver),
            e.decision.as_str(),
            millis(e.at),
            e.comment
                .as_deref()
                .map(|c| format!(": “{}”", esc(c)))
                .unwrap_or_default()
        ));
    }
    let until = match (r.status, r.valid_until) {
        (RequestStatus::Approved, Some(t)) => format!(" · valid until {}", millis(t)),
        (RequestStatus::Pending, _) => format!(" · expires {}", millis(r.expires_at)),
        _ => String::new(),
    };
    format!(
        r#"<div class="card" id="request-{id}"><h3>#{id} {status} {kind} on {resource}</h3>
<p>{asks}</p><p class="muted">“{reason}” · workflow {workflow} · asked {created}{until}</p>{endorsements}</div>"#,
        id = r.id,
        status = status_badge(r.status),
        kind = r.kind.as_str(),
        resource = esc(&r.resource),
        asks = esc(&asks(r)),
        reason = esc(&r.reason),
        workflow = esc(&r.workflow),
        created = millis(r.created_at),
        endorsements = if endorsements.is_empty() {
            String::new()
        } else {
            format!("<ul>{endorsements}</ul>")
        },
    )
}

/// `GET /web/requests`: the forms, the viewer's requests and their grants in force.
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> WebResult<Html<String>> {
    let mine = requests::mine(
        State(state.api.clone()),
        person(&viewer),
        Query(requests::ListQuery { pending: false }),
    )
    .await
    .map_err(WebError::from)?
    .0;
    let (user, roles) = (viewer.user.clone(), viewer.roles.clone());
    let (resources, bundles, grants) = state
        .api
        .blocking(move |store, clock| {
            let resources: Vec<String> = store
                .list_resources()?
                .into_iter()
                .map(|r| r.name)
                .collect();
            let Ok(policy) = portcullis_workflows::load_policy(store) else {
                return Ok((resources, Vec::new(), Vec::new()));
            };
            let now = clock.now();
            let on_demand = portcullis_workflows::active_grants(store, &policy, now)?;
            let mine = |p: &Principal| match p {
                Principal::User(u) => *u == user,
                Principal::Role(r) => roles.contains(r),
            };
            let grants: Vec<(String, String, String, String)> = policy
                .grants
                .iter()
                .filter(|g| g.is_active(now))
                .map(|g| (g, "policy"))
                .chain(on_demand.iter().map(|g| (g, "on demand")))
                .filter(|(g, _)| mine(&g.to))
                .map(|(g, source)| {
                    let until = g.valid_until.or(g.expires).map_or_else(
                        || "no expiry".to_owned(),
                        |t| millis(portcullis_workflows::millis(t)),
                    );
                    let what = format!(
                        "{} on {}",
                        g.privileges
                            .iter()
                            .map(|p| privilege_name(*p))
                            .collect::<Vec<_>>()
                            .join(", "),
                        g.objects
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    (g.resource.clone(), what, source.to_owned(), until)
                })
                .collect();
            let bundles = policy
                .on_demand
                .iter()
                .map(|o| (o.name.clone(), o.resource.clone(), o.grants.is_some()))
                .collect::<Vec<_>>();
            Ok((resources, bundles, grants))
        })
        .await
        .map_err(WebError::from)?;

    let mut targets = String::new();
    for (name, resource, is_bundle) in &bundles {
        let value = if *is_bundle {
            format!("bundle:{name}")
        } else {
            format!("resource:{resource}")
        };
        let label = if *is_bundle {
            format!("{name} (bundle on {resource})")
        } else {
            format!("{resource} (objects and privileges below)")
        };
        targets.push_str(&format!(
            r#"<option value="{}">{}</option>"#,
            esc(&value),
            esc(&label)
        ));
    }
    let resource_options: String = resources
        .iter()
        .map(|r| format!(r#"<option>{}</option>"#, esc(r)))
        .collect();
    let durations: String = ["30m", "1h", "2h", "4h", "8h", "1d"]
        .iter()
        .map(|d| format!("<option>{d}</option>"))
        .collect();
    let csrf = csrf_field(&viewer);
    let mut body = format!(
        r#"<div class="grid2"><form method="post" action="/web/requests" class="stack card" id="access-form">{csrf}
<h2>Ask for access</h2>
<label>Resource or bundle <select name="target" required>{targets}</select></label>
<label>Objects <input name="objects" placeholder="public.orders, hr.*"></label>
<label>Privileges <input name="privileges" placeholder="select, update"></label>
<label>For <select name="duration">{durations}</select></label>
<label>Reason <input name="reason" required placeholder="what it is for; approvers decide on it"></label>
<button type="submit">Send request</button></form>
<form method="post" action="/web/reservations" class="stack card">{csrf}
<h2>Reserve a connection window</h2>
<label>Resource <select name="resource">{resource_options}</select></label>
<label>From <input name="from" value="now"></label>
<label>Until <input name="until" value="+1h"></label>
<label>Reason <input name="reason" required></label>
<button type="submit">Reserve</button>
<p class="muted">Times: now, +30m, or 2026-12-03T09:00:00Z.</p></form></div>"#
    );
    body.push_str("<h2>My grants</h2>");
    if grants.is_empty() {
        body.push_str(r#"<p class="muted">No grants in force.</p>"#);
    } else {
        body.push_str(r#"<div class="scroll"><table id="grants"><tr><th>Resource</th><th>What</th><th>From</th><th>Until</th></tr>"#);
        for (resource, what, source, until) in &grants {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(resource),
                esc(what),
                esc(source),
                esc(until)
            ));
        }
        body.push_str("</table></div>");
    }
    body.push_str(r#"<h2>My requests</h2><div id="my-requests">"#);
    if mine.is_empty() {
        body.push_str(r#"<p class="muted">None yet.</p>"#);
    }
    for r in &mine {
        body.push_str(&request_card(&r.0));
    }
    body.push_str("</div>");
    Ok(layout(Some(&viewer), "Requests", &body))
}

/// `POST /web/requests`: `POST /api/v1/requests` as the viewer.
pub async fn create(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(form): Form<AccessForm>,
) -> Redirect {
    let (bundle, resource) = match form.target.split_once(':') {
        Some(("bundle", b)) => (Some(b.to_owned()), None),
        Some((_, r)) => (None, Some(r.to_owned())),
        None => (None, Some(form.target.clone())),
    };
    let ask = requests::NewAccessRequest {
        bundle,
        resource,
        objects: form_list(&form.objects),
        privileges: form_list(&form.privileges),
        duration: form.duration,
        reason: form.reason,
    };
    let made = requests::create(State(state.api.clone()), person(&viewer), Body(ask)).await;
    match made {
        Ok(r) => state.sessions.flash(
            &viewer.sid,
            true,
            format!(
                "Request #{} sent; its workflow's approvers decide it.",
                r.0 .0.id
            ),
        ),
        Err(e) => state.sessions.flash(&viewer.sid, false, e.message),
    }
    Redirect::to("/web/requests")
}

/// `POST /web/reservations`: `POST /api/v1/reservations` as the viewer.
pub async fn reserve(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(form): Form<ReservationForm>,
) -> Redirect {
    let ask = reservations::NewReservation {
        resource: form.resource,
        from: form.from,
        until: form.until,
        reason: form.reason,
    };
    let made = reservations::create(State(state.api.clone()), person(&viewer), Body(ask)).await;
    match made {
        Ok(r) => state.sessions.flash(
            &viewer.sid,
            true,
            format!("Reservation #{} sent for approval.", r.0 .0.id),
        ),
        Err(e) => state.sessions.flash(&viewer.sid, false, e.message),
    }
    Redirect::to("/web/requests")
}

//! Notifications of workflow steps, written to the store's outbox at the one place each step happens:
//! [`file`](crate::file) tells a new request's approvers, [`concluded`] tells the requester how it ended.
//! The gateway's delivery worker (`portcullis-notify`) sends them by e-mail and webhook; the inbox entries
//! are the store's. A notification that cannot be written is an error log and an audit record, never a
//! failed workflow step: the step itself is already on disk.

use portcullis_policy::Workflow;
use portcullis_store::{EndorsementDecision, NewNotification, Request, RequestStatus, Store};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{audit, from_millis, millis};

/// Tells the approvers of `workflow` (its users and the members of its roles, never the requester) that
/// `request` waits for them.
pub(crate) fn requested(
    store: &Store,
    workflow: &Workflow,
    request: &Request,
    now: OffsetDateTime,
) {
    waiting(store, workflow, request, Waiting::Requested, now);
}

/// Tells the approvers escalation adds (`escalate_to`) that `request`, undecided in time, waits for
/// them now.
pub(crate) fn escalated(
    store: &Store,
    workflow: &Workflow,
    request: &Request,
    now: OffsetDateTime,
) {
    waiting(store, workflow, request, Waiting::Escalated, now);
}

/// Why a request waits for someone's decision.
#[derive(Clone, Copy)]
enum Waiting {
    /// Just filed: the workflow's approvers decide.
    Requested,
    /// Undecided in time: the escalation's approvers may decide too.
    Escalated,
}

/// Tells the approvers `why` names that `request` waits for their decision.
fn waiting(
    store: &Store,
    workflow: &Workflow,
    request: &Request,
    why: Waiting,
    now: OffsetDateTime,
) {
    let about = format!(
        "request {} ({}) by {} on {}",
        request.id, request.kind, request.requester, request.resource
    );
    let (event, users, roles, headline, subject) = match why {
        Waiting::Requested => (
            "requested",
            &workflow.approver_users,
            &workflow.approver_roles,
            format!(
                "{} asks for approval of request {} ({}) on {}.",
                request.requester, request.id, request.kind, request.resource
            ),
            format!("[portcullis] {about} needs approval"),
        ),
        Waiting::Escalated => (
            "escalated",
            &workflow.escalate_users,
            &workflow.escalate_roles,
            format!("Nobody decided {about} in time; you may decide it now."),
            format!("[portcullis] {about} escalated to you"),
        ),
    };
    let recipients = match approvers(store, users, roles, &request.requester) {
        Ok(recipients) => recipients,
        Err(e) => {
            return failed(
                store,
                request,
                &format!("cannot list the approvers: {e}"),
                now,
            );
        }
    };
    let mut body = format!("{headline}\n\n");
    body.push_str(&details(request));
    body.push_str(&format!(
        "\nTo decide, as an approver of workflow {}:\n  portcullis approve {id} --comment \"...\" --as YOU\n  \
         portcullis reject {id} --comment \"...\" --as YOU\n",
        workflow.name,
        id = request.id
    ));
    write(store, request, event, recipients, subject, body, None, now);
}

/// Tells the requester how `request` ended (approved, rejected or expired).
pub(crate) fn concluded(store: &Store, request: &Request, now: OffsetDateTime) {
    let event = request.status.as_str();
    let decider = request
        .endorsements
        .iter()
        .rev()
        .find(|e| match request.status {
            RequestStatus::Rejected => e.decision == EndorsementDecision::Reject,
            _ => e.decision == EndorsementDecision::Approve,
        })
        .filter(|_| request.status != RequestStatus::Expired);
    let outcome = match (request.status, decider) {
        (RequestStatus::Approved, _) => format!(
            "was approved{}; it is valid until {}",
            decider
                .map(|e| format!(" by {}", e.approver))
                .unwrap_or_default(),
            request.valid_until.map(rfc3339).unwrap_or_default()
        ),
        (RequestStatus::Rejected, Some(e)) => format!("was rejected by {}", e.approver),
        (RequestStatus::Rejected, None) => {
            "was rejected: nobody decided in time (on_timeout: reject)".to_owned()
        }
        (RequestStatus::Expired, _) => "expired: nobody decided in time".to_owned(),
        (status, _) => format!("is {status}"),
    };
    let mut body = format!(
        "Your request {} ({}) on {} {outcome}.\n",
        request.id, request.kind, request.resource
    );
    if let Some(comment) = decider.and_then(|e| e.comment.as_deref()) {
        body.push_str(&format!("Comment: {comment}\n"));
    }
    body.push('\n');
    body.push_str(&details(request));
    if request.status == RequestStatus::Approved && request.query.is_some() {
        body.push_str("\nRun the same statement again; the approval covers exactly this text.\n");
    }
    let subject = format!(
        "[portcullis] request {} ({}) {event}",
        request.id, request.kind
    );
    let decided = decider.map(|e| (e.approver.clone(), e.comment.clone()));
    write(
        store,
        request,
        event,
        vec![request.requester.clone()],
        subject,
        body,
        decided,
        now,
    );
}

/// The request's facts, one per line, as every message shows them.
fn details(request: &Request) -> String {
    let mut text = format!(
        "  request:   {}\n  kind:      {}\n  user:      {}\n  resource:  {}\n  workflow:  {}\n  reason:    {}\n",
        request.id, request.kind, request.requester, request.resource, request.workflow, request.reason
    );
    if let Some(query) = &request.query {
        text.push_str(&format!("  statement: {}\n", query.text));
    } else {
        text.push_str(&format!("  asks for:  {}\n", audit::summary(request)));
    }
    if request.status == RequestStatus::Pending {
        text.push_str(&format!("  expires:   {}\n", rfc3339(request.expires_at)));
    }
    text
}

#[allow(clippy::too_many_arguments)]
fn write(
    store: &Store,
    request: &Request,
    event: &str,
    recipients: Vec<String>,
    subject: String,
    body: String,
    decided: Option<(String, Option<String>)>,
    now: OffsetDateTime,
) {
    let (decided_by, comment) = decided.unzip();
    let payload = json!({
        "event": event,
        "request_id": request.id,
        "kind": request.kind,
        "status": request.status,
        "requester": request.requester,
        "resource": request.resource,
        "workflow": request.workflow,
        "reason": request.reason,
        "statement": request.query.as_ref().map(|q| &q.text),
        "asks_for": request.access.as_ref().map(|_| audit::summary(request)),
        "decided_by": decided_by,
        "comment": comment.flatten(),
        "valid_until": request.valid_until.map(rfc3339),
        "recipients": recipients,
        "approve_command": format!("portcullis approve {}", request.id),
        "reject_command": format!("portcullis reject {}", request.id),
        "time": rfc3339(millis(now)),
        "subject": subject,
        "text": body,
    });
    let new = NewNotification {
        request_id: request.id,
        event: event.to_owned(),
        requester: request.requester.clone(),
        resource: request.resource.clone(),
        workflow: request.workflow.clone(),
        recipients,
        subject,
        body,
        payload: payload.to_string(),
    };
    if let Err(e) = store.add_notification(&new, millis(now)) {
        failed(
            store,
            request,
            &format!("cannot write the notification: {e}"),
            now,
        );
    }
}

/// `users` and the members of `roles` by name, sorted, without `requester`.
fn approvers(
    store: &Store,
    users: &[String],
    roles: &[String],
    requester: &str,
) -> portcullis_store::Result<Vec<String>> {
    let mut users = users.to_vec();
    if !roles.is_empty() {
        for role in store.list_roles()? {
            if roles.contains(&role.name) {
                users.extend(role.members);
            }
        }
    }
    users.retain(|u| u != requester);
    users.sort();
    users.dedup();
    Ok(users)
}

fn failed(store: &Store, request: &Request, why: &str, now: OffsetDateTime) {
    tracing::error!(request = request.id, "notification lost: {why}");
    audit::record(
        store,
        request,
        "notify-failed",
        "portcullis",
        "",
        why.to_owned(),
        now,
    );
}

fn rfc3339(ms: i64) -> String {
    from_millis(ms)
        .format(&Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

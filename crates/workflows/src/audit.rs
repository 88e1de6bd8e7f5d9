//! Audit records of workflow steps.

use portcullis_store::{AuditEvent, Request, Store, WorkflowEvent};
use time::OffsetDateTime;

/// Records `action` on `request` by `user`. Fire and forget: the CLI flushes the store before it exits,
/// and the gateway's records are written with the session's others.
pub(crate) fn record(
    store: &Store,
    request: &Request,
    action: &str,
    user: &str,
    session_id: &str,
    detail: String,
    now: OffsetDateTime,
) {
    let event = AuditEvent::Workflow(WorkflowEvent {
        session_id: session_id.to_owned(),
        at: i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX),
        user: user.to_owned(),
        resource: request.resource.clone(),
        request_id: request.id,
        action: action.to_owned(),
        workflow: request.workflow.clone(),
        detail,
    });
    let _ = store.audit().record(event);
    tracing::info!(request = request.id, action, user, "workflow step");
}

/// What a request is about, in one line.
pub(crate) fn summary(request: &Request) -> String {
    if let Some(q) = &request.query {
        return format!("statement: {}", q.text);
    }
    if let Some(w) = &request.window {
        return format!(
            "reservation from {} until {}: {}",
            crate::from_millis(w.from),
            crate::from_millis(w.until),
            request.reason
        );
    }
    if request.kind == portcullis_store::RequestKind::Connection {
        return format!("connection: {}", request.reason);
    }
    match &request.access {
        Some(a) => match &a.bundle {
            Some(bundle) => format!(
                "access: bundle {bundle} for {}s: {}",
                a.duration_ms / 1000,
                request.reason
            ),
            None => format!(
                "access: {} on {} for {}s: {}",
                a.privileges.join(","),
                a.objects.join(","),
                a.duration_ms / 1000,
                request.reason
            ),
        },
        None => request.reason.clone(),
    }
}

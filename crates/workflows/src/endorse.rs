//! Endorsing requests (N of M approvals, one rejection rejects), the approver's inbox, escalation and
//! timeouts.

use portcullis_policy::{OnTimeout, Policy, Workflow};
use portcullis_store::{
    Conclusion, Endorsement, EndorsementDecision, Request, RequestFilter, RequestKind,
    RequestStatus, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

use crate::access::access_cap;
use crate::error::{Result, WorkflowError};
use crate::{audit, millis, notify};

/// Who the audit log names for steps the gateway takes on its own (timeouts, escalations).
const SYSTEM: &str = "portcullis";

/// Escalates pending requests past their workflow's `escalate_after`, and concludes those nobody
/// decided within its `expire_after`: rejected with `on_timeout: reject`, expired otherwise. Each step
/// is an audit record; returns the requests concluded. A request whose workflow is gone from
/// `workflows` just expires.
pub fn expire_due(
    store: &Store,
    workflows: &[Workflow],
    now: OffsetDateTime,
) -> Result<Vec<Request>> {
    let workflow = |name: &str| workflows.iter().find(|w| w.name == name);
    let escalated = store.escalate_requests(millis(now), |name| {
        workflow(name)
            .and_then(|w| w.escalate_after)
            .map(|d| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX))
    })?;
    for request in &escalated {
        let to = workflow(&request.workflow)
            .map(|w| approvers(&w.escalate_users, &w.escalate_roles))
            .unwrap_or_default();
        audit::record(
            store,
            request,
            "escalated",
            SYSTEM,
            "",
            format!("nobody decided in time; {to} may decide it now"),
            now,
        );
        if let Some(workflow) = workflow(&request.workflow) {
            notify::escalated(store, workflow, request, now);
        }
    }
    let reject: Vec<&str> = workflows
        .iter()
        .filter(|w| w.on_timeout == OnTimeout::Reject)
        .map(|w| w.name.as_str())
        .collect();
    let concluded = store.expire_requests(millis(now), &reject)?;
    for request in &concluded {
        let (action, detail) = match request.status {
            RequestStatus::Rejected => (
                "rejected",
                "nobody decided before it timed out (on_timeout: reject)",
            ),
            _ => ("expired", "nobody decided before it expired"),
        };
        audit::record(store, request, action, SYSTEM, "", detail.into(), now);
        notify::concluded(store, request, now);
    }
    Ok(concluded)
}

/// Users and roles, as the policy lists them, for messages.
fn approvers(users: &[String], roles: &[String]) -> String {
    users
        .iter()
        .cloned()
        .chain(roles.iter().map(|r| format!("role {r}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `actor` (with `roles`) may decide `request` of `workflow` at `now`: an approver always, an
/// escalation approver once `escalate_after` has passed.
fn may_decide(
    workflow: &Workflow,
    request: &Request,
    actor: &str,
    roles: &[String],
    now: OffsetDateTime,
) -> bool {
    let escalated = workflow.escalate_after.is_some_and(|after| {
        request.escalated_at.is_some() || crate::from_millis(request.created_at) + after <= now
    });
    workflow.is_approver(actor, roles)
        || (escalated && workflow.is_escalation_approver(actor, roles))
}

/// `actor` (a member of `roles`) approves or rejects request `id`. Returns the request as it stands
/// afterwards. The requester never endorses their own request; only an approver of the workflow does,
/// once; `required` approvals approve and one rejection rejects, finally.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    store: &Store,
    policy: &Policy,
    actor: &str,
    roles: &[String],
    id: i64,
    decision: EndorsementDecision,
    comment: Option<String>,
    now: OffsetDateTime,
) -> Result<Request> {
    expire_due(store, &policy.workflows, now)?;
    let request = store.request(id)?.ok_or(WorkflowError::NotFound(id))?;
    if request.status != RequestStatus::Pending {
        return Err(WorkflowError::NotPending {
            id,
            status: request.status.to_string(),
        });
    }
    if request.requester == actor {
        return Err(WorkflowError::SelfEndorsement(id));
    }
    let workflow =
        policy
            .workflow(&request.workflow)
            .ok_or_else(|| WorkflowError::UnknownWorkflow {
                id,
                workflow: request.workflow.clone(),
            })?;
    if !may_decide(workflow, &request, actor, roles, now) {
        let mut who = approvers(&workflow.approver_users, &workflow.approver_roles);
        if let Some(after) = workflow.escalate_after {
            who = format!(
                "{who}; once pending for {}s also {}",
                after.whole_seconds(),
                approvers(&workflow.escalate_users, &workflow.escalate_roles)
            );
        }
        return Err(WorkflowError::NotApprover {
            id,
            user: actor.to_owned(),
            workflow: workflow.name.clone(),
            approvers: who,
        });
    }
    if request.endorsements.iter().any(|e| e.approver == actor) {
        return Err(WorkflowError::AlreadyEndorsed {
            id,
            user: actor.to_owned(),
        });
    }
    let approvals = request
        .endorsements
        .iter()
        .filter(|e| e.decision == EndorsementDecision::Approve)
        .count()
        + usize::from(decision == EndorsementDecision::Approve);
    let conclusion = match decision {
        EndorsementDecision::Reject => Some(Conclusion {
            status: RequestStatus::Rejected,
            valid_until: None,
        }),
        EndorsementDecision::Approve
            if approvals >= usize::try_from(workflow.required).unwrap_or(usize::MAX) =>
        {
            let valid_until = match request.kind {
                RequestKind::Query | RequestKind::Connection => millis(now + workflow.valid_for),
                RequestKind::Access => {
                    let lasts: Duration = access_cap(policy, &request).ok_or_else(|| {
                        WorkflowError::Invalid(format!(
                            "request {id} asks for something the applied policy no longer offers on demand; it cannot be approved"
                        ))
                    })?;
                    millis(now + lasts)
                }
                // A reservation is the window asked for, and it closes when asked.
                RequestKind::Reservation => request.window.map(|w| w.until).ok_or_else(|| {
                    WorkflowError::Invalid(format!(
                        "request {id} is a reservation without a window; it cannot be approved"
                    ))
                })?,
            };
            Some(Conclusion {
                status: RequestStatus::Approved,
                valid_until: Some(valid_until),
            })
        }
        EndorsementDecision::Approve => None,
    };
    let endorsement = Endorsement {
        approver: actor.to_owned(),
        decision,
        at: millis(now),
        comment: comment.clone(),
    };
    store
        .endorse(id, &endorsement, conclusion)
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => WorkflowError::AlreadyEndorsed {
                id,
                user: actor.to_owned(),
            },
            other => other.into(),
        })?;
    let detail = format!(
        "{}{}",
        decision,
        comment.map(|c| format!(": {c}")).unwrap_or_default()
    );
    audit::record(store, &request, "endorsed", actor, "", detail, now);
    let updated = store.request(id)?.ok_or(WorkflowError::NotFound(id))?;
    match updated.status {
        RequestStatus::Approved => audit::record(
            store,
            &updated,
            "approved",
            actor,
            "",
            format!(
                "{} approval(s); valid until {}",
                approvals,
                updated
                    .valid_until
                    .map(|v| crate::from_millis(v).to_string())
                    .unwrap_or_default()
            ),
            now,
        ),
        RequestStatus::Rejected => audit::record(
            store,
            &updated,
            "rejected",
            actor,
            "",
            audit::summary(&updated),
            now,
        ),
        _ => {}
    }
    if updated.status != RequestStatus::Pending {
        notify::concluded(store, &updated, now);
    }
    Ok(updated)
}

/// Pending requests `actor` (a member of `roles`) may decide: not their own, of a workflow they approve
/// for (or escalated to them), not yet endorsed by them.
pub fn inbox(
    store: &Store,
    policy: &Policy,
    actor: &str,
    roles: &[String],
    now: OffsetDateTime,
) -> Result<Vec<Request>> {
    expire_due(store, &policy.workflows, now)?;
    let pending = store.list_requests(&RequestFilter {
        status: Some(RequestStatus::Pending),
        requester: None,
    })?;
    Ok(pending
        .into_iter()
        .filter(|r| r.requester != actor)
        .filter(|r| {
            policy
                .workflow(&r.workflow)
                .is_some_and(|w| may_decide(w, r, actor, roles, now))
        })
        .filter(|r| !r.endorsements.iter().any(|e| e.approver == actor))
        .collect())
}

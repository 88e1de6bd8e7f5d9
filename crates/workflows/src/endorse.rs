//! Endorsing requests (N of M approvals, one rejection rejects), the approver's inbox, and expiry.

use portcullis_policy::Policy;
use portcullis_store::{
    Conclusion, Endorsement, EndorsementDecision, Request, RequestFilter, RequestKind,
    RequestStatus, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

use crate::access::access_cap;
use crate::error::{Result, WorkflowError};
use crate::{audit, millis, notify};

/// Marks pending requests nobody decided within their workflow's `expire_after` as expired (each an
/// audit record) and returns them.
pub fn expire_due(store: &Store, now: OffsetDateTime) -> Result<Vec<Request>> {
    let expired = store.expire_requests(millis(now))?;
    for request in &expired {
        audit::record(
            store,
            request,
            "expired",
            "portcullis",
            "",
            "nobody decided before it expired".into(),
            now,
        );
        notify::concluded(store, request, now);
    }
    Ok(expired)
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
    expire_due(store, now)?;
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
    if !workflow.is_approver(actor, roles) {
        let mut approvers: Vec<String> = workflow.approver_users.clone();
        approvers.extend(workflow.approver_roles.iter().map(|r| format!("role {r}")));
        return Err(WorkflowError::NotApprover {
            id,
            user: actor.to_owned(),
            workflow: workflow.name.clone(),
            approvers: approvers.join(", "),
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
            let lasts: Duration = match request.kind {
                RequestKind::Query => workflow.valid_for,
                RequestKind::Access => access_cap(policy, &request).ok_or_else(|| {
                    WorkflowError::Invalid(format!(
                        "request {id} asks for something the applied policy no longer offers on demand; it cannot be approved"
                    ))
                })?,
            };
            Some(Conclusion {
                status: RequestStatus::Approved,
                valid_until: Some(millis(now + lasts)),
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
/// for, not yet endorsed by them.
pub fn inbox(
    store: &Store,
    policy: &Policy,
    actor: &str,
    roles: &[String],
    now: OffsetDateTime,
) -> Result<Vec<Request>> {
    expire_due(store, now)?;
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
                .is_some_and(|w| w.is_approver(actor, roles))
        })
        .filter(|r| !r.endorsements.iter().any(|e| e.approver == actor))
        .collect())
}

//! Query approval: held statements become requests, and approved ones let the same text run again.
//!
//! The key is the SHA-256 of the exact statement text, not pg_query's fingerprint: a fingerprint
//! ignores constants, so approving `DELETE FROM orders WHERE id = 1` would also approve `... id = 2`.
//! Any change to the text (even whitespace) needs its own approval.

use portcullis_policy::Workflow;
use portcullis_store::{NewRequest, QueryDetail, Request, RequestKind, RequestStatus, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::Result;
use crate::{audit, endorse, millis};

/// Hex SHA-256 of a statement's exact text.
pub fn statement_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A statement the policy holds for approval.
#[derive(Debug, Clone, Copy)]
pub struct HeldStatement<'a> {
    /// Who runs it.
    pub user: &'a str,
    /// Where.
    pub resource: &'a str,
    /// Its exact text.
    pub text: &'a str,
    /// What it does, for the approver.
    pub summary: &'a str,
    /// Why the policy holds it.
    pub reason: &'a str,
    /// The gateway session it came from.
    pub session_id: &'a str,
}

/// An approval of `held` via `workflow` still valid at `now`, if there is one.
pub fn approved_query(
    store: &Store,
    held: &HeldStatement<'_>,
    workflow: &str,
    now: OffsetDateTime,
) -> Result<Option<Request>> {
    Ok(store.find_query_request(
        held.user,
        held.resource,
        &statement_sha256(held.text),
        workflow,
        RequestStatus::Approved,
        millis(now),
    )?)
}

/// The pending request for `held` via `workflow`: an existing one (the user ran it again before anyone
/// decided), or a new one.
pub fn request_query(
    store: &Store,
    workflow: &Workflow,
    held: &HeldStatement<'_>,
    now: OffsetDateTime,
) -> Result<Request> {
    endorse::expire_due(store, now)?;
    let sha256 = statement_sha256(held.text);
    if let Some(pending) = store.find_query_request(
        held.user,
        held.resource,
        &sha256,
        &workflow.name,
        RequestStatus::Pending,
        millis(now),
    )? {
        return Ok(pending);
    }
    crate::file(
        store,
        workflow,
        &NewRequest {
            kind: RequestKind::Query,
            requester: held.user.to_owned(),
            resource: held.resource.to_owned(),
            workflow: workflow.name.clone(),
            reason: held.reason.to_owned(),
            expires_at: millis(now + workflow.expire_after),
            access: None,
            query: Some(QueryDetail {
                text: held.text.to_owned(),
                sha256,
                summary: held.summary.to_owned(),
            }),
        },
        held.session_id,
        now,
    )
}

/// Records that an approved request let its statement run.
pub fn record_used(store: &Store, request: &Request, session_id: &str, now: OffsetDateTime) {
    audit::record(
        store,
        request,
        "used",
        &request.requester,
        session_id,
        audit::summary(request),
        now,
    );
}

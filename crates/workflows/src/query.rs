//! Query and connection approval: held statements and connections become requests, and approved ones
//! let the same text run again (the same user connect again) for the workflow's `valid_for`.
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

/// A connection the policy holds for approval (a post-connection `require-approval` rule or permit).
#[derive(Debug, Clone, Copy)]
pub struct HeldConnection<'a> {
    /// Who connects.
    pub user: &'a str,
    /// To which resource.
    pub resource: &'a str,
    /// Why the policy holds it.
    pub reason: &'a str,
    /// The gateway session it came from.
    pub session_id: &'a str,
}

/// What is held, as the store keys it: a statement (by the SHA-256 of its text) or a connection.
struct Held<'a> {
    kind: RequestKind,
    user: &'a str,
    resource: &'a str,
    sha256: Option<String>,
    reason: &'a str,
    session_id: &'a str,
    query: Option<QueryDetail>,
}

impl<'a> From<&HeldStatement<'a>> for Held<'a> {
    fn from(held: &HeldStatement<'a>) -> Self {
        let sha256 = statement_sha256(held.text);
        Held {
            kind: RequestKind::Query,
            user: held.user,
            resource: held.resource,
            sha256: Some(sha256.clone()),
            reason: held.reason,
            session_id: held.session_id,
            query: Some(QueryDetail {
                text: held.text.to_owned(),
                sha256,
                summary: held.summary.to_owned(),
            }),
        }
    }
}

impl<'a> From<&HeldConnection<'a>> for Held<'a> {
    fn from(held: &HeldConnection<'a>) -> Self {
        Held {
            kind: RequestKind::Connection,
            user: held.user,
            resource: held.resource,
            sha256: None,
            reason: held.reason,
            session_id: held.session_id,
            query: None,
        }
    }
}

impl Held<'_> {
    fn find(
        &self,
        store: &Store,
        workflow: &str,
        status: RequestStatus,
        now: OffsetDateTime,
    ) -> Result<Option<Request>> {
        Ok(store.find_held_request(
            self.kind,
            self.user,
            self.resource,
            self.sha256.as_deref(),
            workflow,
            status,
            millis(now),
        )?)
    }

    /// The pending request for this via `workflow`: an existing one (the user tried again before anyone
    /// decided), or a new one. `workflows` are all the policy's, whose timeouts run first.
    fn request(
        self,
        store: &Store,
        workflows: &[Workflow],
        workflow: &Workflow,
        now: OffsetDateTime,
    ) -> Result<Request> {
        endorse::expire_due(store, workflows, now)?;
        if let Some(pending) = self.find(store, &workflow.name, RequestStatus::Pending, now)? {
            return Ok(pending);
        }
        crate::file(
            store,
            workflow,
            &NewRequest {
                kind: self.kind,
                requester: self.user.to_owned(),
                resource: self.resource.to_owned(),
                workflow: workflow.name.clone(),
                reason: self.reason.to_owned(),
                created_at: millis(now),
                expires_at: millis(now + workflow.expire_after),
                access: None,
                query: self.query,
                window: None,
            },
            self.session_id,
            now,
        )
    }
}

/// An approval of `held` via `workflow` still valid at `now`, if there is one.
pub fn approved_query(
    store: &Store,
    held: &HeldStatement<'_>,
    workflow: &str,
    now: OffsetDateTime,
) -> Result<Option<Request>> {
    Held::from(held).find(store, workflow, RequestStatus::Approved, now)
}

/// The pending request for `held` via `workflow`: an existing one (the user ran it again before anyone
/// decided), or a new one. `workflows` are the policy's (their timeouts run first).
pub fn request_query(
    store: &Store,
    workflows: &[Workflow],
    workflow: &Workflow,
    held: &HeldStatement<'_>,
    now: OffsetDateTime,
) -> Result<Request> {
    Held::from(held).request(store, workflows, workflow, now)
}

/// An approval of connecting as `held` describes via `workflow` still valid at `now`, if there is one.
pub fn approved_connection(
    store: &Store,
    held: &HeldConnection<'_>,
    workflow: &str,
    now: OffsetDateTime,
) -> Result<Option<Request>> {
    Held::from(held).find(store, workflow, RequestStatus::Approved, now)
}

/// The pending request to connect as `held` describes via `workflow`: an existing one (the user tried
/// again before anyone decided), or a new one.
pub fn request_connection(
    store: &Store,
    workflows: &[Workflow],
    workflow: &Workflow,
    held: &HeldConnection<'_>,
    now: OffsetDateTime,
) -> Result<Request> {
    Held::from(held).request(store, workflows, workflow, now)
}

/// Records that an approved request let its statement run, its user connect, or its window open.
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

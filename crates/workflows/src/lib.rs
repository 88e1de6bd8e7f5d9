//! The rules of Portcullis's approval flows (issue 4, ARCHITECTURE §4), on top of the store's requests
//! and the policy's `workflows:` and `on_demand:` entries:
//!
//! - **Access requests**: a user asks for an on-demand bundle, or for objects and privileges on a
//!   resource an `on_demand` entry opens, for a duration and with a reason. Once approved it becomes a
//!   grant to the user until approval time + duration (capped by the entry's `max_duration`):
//!   [`active_grants`] lists them for the gateway's compiled policy.
//! - **Query approval**: a statement a `require-approval` rule or an `@approval` permit holds becomes a
//!   request keyed by (user, resource, SHA-256 of the exact statement text, workflow); once approved the
//!   same user may run the same text on the same resource for the workflow's `valid_for`.
//! - **Connection approval**: a connection a post-connection `require-approval` rule or `@approval`
//!   permit holds becomes a request keyed by (user, resource, workflow), on the same path as query
//!   approval; once approved the user may connect for the workflow's `valid_for`.
//! - **Reservations**: a resource the policy's `reservations:` names is connected to only inside the
//!   window of an approved reservation ([`reserve`], [`covering_reservation`]).
//! - **Endorsement**: only an approver of the workflow (a listed user or a member of a listed role)
//!   endorses, never the requester, once each; `required` approvals approve, one rejection rejects;
//!   decisions are final. After `escalate_after` the `escalate_to` approvers may decide too. A request
//!   nobody decided within `expire_after` expires, or is rejected with `on_timeout: reject`.
//!
//! Every step is an audit record (`requested`, `endorsed`, `approved`, `rejected`, `escalated`,
//! `expired`, `used`). Filing (through [`file`], whatever the kind) notifies the workflow's approvers,
//! an escalation the approvers it adds, and a conclusion the requester: see the `notify` module.

mod access;
mod audit;
mod endorse;
mod error;
mod notify;
mod query;
mod reservation;

use portcullis_policy::{Policy, Workflow};
use portcullis_store::{NewRequest, Request, Store};
use time::OffsetDateTime;

pub use access::{active_grants, grants_approved_since, request_access, AccessAsk};
pub use endorse::{decide, expire_due, inbox};
pub use error::{Result, WorkflowError};
pub use query::{
    approved_connection, approved_query, record_used, request_connection, request_query,
    statement_sha256, HeldConnection, HeldStatement,
};
pub use reservation::{
    covering_reservation, parse_instant, reserve, reserve_command, ReservationAsk,
};

/// The applied policy, loaded: the workflows and on-demand entries in force.
pub fn load_policy(store: &Store) -> Result<Policy> {
    let stored = store.active_policy()?.ok_or(WorkflowError::NoPolicy)?;
    let source = format!("{} (policy version {})", stored.source, stored.version);
    Policy::from_yaml(&stored.text, &source).map_err(|e| WorkflowError::Policy(e.to_string()))
}

/// Files `new` under `workflow`: stores it, records the `requested` audit step (from gateway session
/// `session_id`, empty outside one) and notifies the workflow's approvers. Every request kind is filed
/// here, so every kind is audited and notified the same way.
pub fn file(
    store: &Store,
    workflow: &Workflow,
    new: &NewRequest,
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Request> {
    let request = store.create_request(new)?;
    audit::record(
        store,
        &request,
        "requested",
        &request.requester,
        session_id,
        audit::summary(&request),
        now,
    );
    notify::requested(store, workflow, &request, now);
    Ok(request)
}

/// Unix milliseconds, the store's clock.
pub fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant of Unix milliseconds `ms`.
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;

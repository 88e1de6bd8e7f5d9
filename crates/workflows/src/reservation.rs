//! Reservations: a resource the policy's `reservations:` names is connected to only inside the window
//! of an approved reservation. A reservation is a request like the others (same approvers, N of M, no
//! self-approval, final rejection); once approved it lasts exactly its window.

use portcullis_policy::Policy;
use portcullis_store::{NewRequest, Request, RequestKind, ReservationWindow, Store};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Result, WorkflowError};
use crate::millis;

/// The window a user asks for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationAsk {
    /// The resource.
    pub resource: String,
    /// When connections may start.
    pub from: OffsetDateTime,
    /// When the window closes.
    pub until: OffsetDateTime,
    /// Why; approvers decide on it.
    pub reason: String,
}

/// The command that reserves `resource` for `user`, for messages that say how to reserve.
pub fn reserve_command(resource: &str, user: &str) -> String {
    format!(
        "portcullis reserve --resource {resource} --from now --until +1h --reason TEXT --as {user} --password-env VAR"
    )
}

/// An instant as a reservation's window takes it: RFC 3339 (`2026-12-03T09:00:00Z`), `now`, or
/// `+DURATION` (`+2h`) from `now`.
pub fn parse_instant(
    text: &str,
    now: OffsetDateTime,
) -> std::result::Result<OffsetDateTime, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(after) = text.strip_prefix('+') {
        let d = portcullis_policy::parse_duration(after)?;
        return now
            .checked_add(d)
            .ok_or_else(|| format!("{text:?}: too far ahead"));
    }
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        format!(
            "{text:?}: expected RFC 3339 (2026-12-03T09:00:00Z), `now`, or `+DURATION` such as +2h"
        )
    })
}

/// Files a reservation for `requester` (a member of `roles`), after checking it against the policy's
/// `reservations:` entry for the resource.
pub fn reserve(
    store: &Store,
    policy: &Policy,
    requester: &str,
    roles: &[String],
    ask: &ReservationAsk,
    now: OffsetDateTime,
) -> Result<Request> {
    if ask.reason.trim().is_empty() {
        return Err(WorkflowError::Invalid(
            "give a reason (--reason): approvers decide on it".into(),
        ));
    }
    let entry = policy
        .reservation_for(&ask.resource, requester, roles)
        .ok_or_else(|| {
            WorkflowError::Invalid(format!(
                "{requester} needs no reservation for resource {}; connect as usual",
                ask.resource
            ))
        })?;
    if ask.until <= ask.from {
        return Err(WorkflowError::Invalid(
            "the window must end (--until) after it starts (--from)".into(),
        ));
    }
    if ask.until <= now {
        return Err(WorkflowError::Invalid(
            "the window is over already; reserve one that ends in the future".into(),
        ));
    }
    if ask.until - ask.from > entry.max_window {
        return Err(WorkflowError::Invalid(format!(
            "resource {} may be reserved for at most {}s at a time; ask for a shorter window",
            ask.resource,
            entry.max_window.whole_seconds()
        )));
    }
    let workflow = policy.workflow(&entry.workflow).ok_or_else(|| {
        WorkflowError::Invalid(format!("workflow `{}` is not defined", entry.workflow))
    })?;
    // Undecided when the window closes, it could never be used: it times out then at the latest.
    let expires_at = (now + workflow.expire_after).min(ask.until);
    crate::file(
        store,
        workflow,
        &NewRequest {
            kind: RequestKind::Reservation,
            requester: requester.to_owned(),
            resource: ask.resource.clone(),
            workflow: workflow.name.clone(),
            reason: ask.reason.clone(),
            created_at: millis(now),
            expires_at: millis(expires_at),
            access: None,
            query: None,
            window: Some(ReservationWindow {
                from: millis(ask.from),
                until: millis(ask.until),
            }),
        },
        "",
        now,
    )
}

/// The approved reservation of `user` on `resource` whose window covers `now`, if there is one.
pub fn covering_reservation(
    store: &Store,
    user: &str,
    resource: &str,
    now: OffsetDateTime,
) -> Result<Option<Request>> {
    Ok(store.covering_reservation(user, resource, millis(now))?)
}

//! What lets a connection in beyond the policy's verdict: an approval of a held connection
//! (connection-stage `require-approval`), and for a reserved resource an approved reservation covering
//! now, whose window then bounds the session. Store lookups run on the blocking pool, never on the
//! session task.

use std::time::Duration as StdDuration;

use bytes::BytesMut;
use portcullis_policy::{reservation_for, ConnectionDecision, Context};
use portcullis_store::{Request, Store};
use portcullis_wire::{encode_notice, ErrorInfo};
use portcullis_workflows::{self as workflows, HeldConnection};
use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc::UnboundedSender;

use super::SessionInfo;
use crate::error::GatewayError;
use crate::listener::Shared;
use crate::policy::ActivePolicy;

/// How often an open session in a reservation window looks at the clock (tests move the clock rather
/// than wait, so the window's end is seen within this).
const WINDOW_POLL: StdDuration = StdDuration::from_secs(1);

/// The reservation window a session was opened in: it is told `notice_before` the end, and ended then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindow {
    /// The reservation (request) number.
    pub request: i64,
    /// When the window closes.
    pub until: OffsetDateTime,
    /// How long before `until` the session is told.
    pub notice_before: Duration,
}

/// Runs `f` with the store on the blocking pool; an error says the store could not be asked.
async fn with_store<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&Store) -> workflows::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// For a connection held for approval: the context with the workflows whose approval of this user's
/// connections to this resource is still valid, and those approvals, when there is any.
pub async fn approvals(
    shared: &Shared,
    info: &SessionInfo,
    decision: &ConnectionDecision,
    ctx: &Context,
    now: OffsetDateTime,
) -> Option<(Context, Vec<Request>)> {
    let (user, resource, id) = (info.user.clone(), info.resource.clone(), info.id.clone());
    let needed = decision.approvals_needed.clone();
    let found = with_store(shared, move |store| {
        let held = HeldConnection {
            user: &user,
            resource: &resource,
            reason: "",
            session_id: &id,
        };
        let mut found = Vec::new();
        for workflow in &needed {
            if let Some(request) = workflows::approved_connection(store, &held, workflow, now)? {
                found.push((workflow.clone(), request));
            }
        }
        Ok(found)
    })
    .await;
    let found = match found {
        Ok(found) if !found.is_empty() => found,
        Ok(_) => return None,
        Err(e) => {
            tracing::error!(error = %e, "cannot look up connection approvals; the connection stays held");
            return None;
        }
    };
    let mut approved = ctx.clone();
    let mut used = Vec::new();
    for (workflow, request) in found {
        approved = approved.with_approval(workflow);
        used.push(request);
    }
    Some((approved, used))
}

/// Files (or finds) the approval request for a held connection; the message the client is refused
/// with says which request and how to get it approved.
pub async fn hold(
    shared: &Shared,
    info: &SessionInfo,
    active: &ActivePolicy,
    decision: &ConnectionDecision,
    now: OffsetDateTime,
) -> String {
    let reason = decision.reason.clone();
    let workflow = decision
        .approvals_needed
        .first()
        .and_then(|name| active.workflows.iter().find(|w| &w.name == name))
        .cloned();
    let Some(workflow) = workflow else {
        return format!("portcullis holds the connection: {reason}");
    };
    let all = active.workflows.clone();
    let (user, resource, id) = (info.user.clone(), info.resource.clone(), info.id.clone());
    let why = reason.clone();
    let name = workflow.name.clone();
    let filed = with_store(shared, move |store| {
        let held = HeldConnection {
            user: &user,
            resource: &resource,
            reason: &why,
            session_id: &id,
        };
        workflows::request_connection(store, &all, &workflow, &held, now)
    })
    .await;
    match filed {
        Ok(request) => format!(
            "portcullis holds the connection for approval: request {id} (workflow {name}): {reason}; \
             an approver runs `portcullis approve {id}`, then connect again",
            id = request.id
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot file a connection approval request");
            format!(
                "portcullis holds the connection: {reason}; the approval request could not be filed ({e})"
            )
        }
    }
}

/// Records that approvals let a connection in.
pub fn record_used(shared: &Shared, info: &SessionInfo, used: &[Request], now: OffsetDateTime) {
    for request in used {
        workflows::record_used(&shared.store, request, &info.id, now);
    }
}

/// For a resource the policy reserves for this user: the window of the approved reservation covering
/// `now`, or why the connection is refused (with the command that reserves). `Ok(None)`: the resource
/// needs no reservation. A store that cannot be asked refuses (fail closed).
pub async fn reserved_window(
    shared: &Shared,
    info: &SessionInfo,
    active: &ActivePolicy,
    now: OffsetDateTime,
) -> Result<Option<SessionWindow>, String> {
    let Some(entry) = reservation_for(
        &active.reservations,
        &info.resource,
        &info.user,
        &info.ctx.roles,
    ) else {
        return Ok(None);
    };
    let notice_before = entry.notice_before;
    let (user, resource) = (info.user.clone(), info.resource.clone());
    let found = with_store(shared, move |store| {
        workflows::covering_reservation(store, &user, &resource, now)
    })
    .await;
    match found {
        Ok(Some(request)) => {
            let until = request.window.map(|w| w.until).unwrap_or_default();
            workflows::record_used(&shared.store, &request, &info.id, now);
            Ok(Some(SessionWindow {
                request: request.id,
                until: workflows::from_millis(until),
                notice_before,
            }))
        }
        Ok(None) => Err(format!(
            "resource {} requires a reservation, and {} has no approved reservation covering now; \
             reserve a window with `{}` and connect once it is approved and open",
            info.resource,
            info.user,
            workflows::reserve_command(&info.resource, &info.user)
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot look up reservations; refusing the connection");
            Err(format!(
                "resource {} requires a reservation, and reservations cannot be read now ({e})",
                info.resource
            ))
        }
    }
}

/// Watches the clock for a session opened in `window`: sends a NOTICE `notice_before` its end and
/// returns the error that ends the session when it closes.
pub async fn guard_window(
    shared: &Shared,
    window: SessionWindow,
    to_client: UnboundedSender<BytesMut>,
) -> GatewayError {
    let mut told = false;
    loop {
        let now = shared.mfa.now();
        if now >= window.until {
            return GatewayError::Logout(format!(
                "the window of reservation {} closed at {}",
                window.request, window.until
            ));
        }
        if !told && now + window.notice_before >= window.until {
            told = true;
            let left = (window.until - now).whole_seconds().max(0);
            let message = format!(
                "portcullis ends this session when the window of reservation {} closes at {} (in {left}s)",
                window.request, window.until
            );
            let mut out = BytesMut::new();
            encode_notice(
                &ErrorInfo {
                    severity: "NOTICE",
                    code: "01000",
                    message: &message,
                    detail: None,
                    hint: Some("finish your work, or reserve another window: portcullis reserve"),
                    position: None,
                },
                &mut out,
            );
            let _ = to_client.send(out);
        }
        tokio::time::sleep(WINDOW_POLL).await;
    }
}

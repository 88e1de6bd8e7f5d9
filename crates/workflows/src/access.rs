//! On-demand access: requests for a bundle or for objects and privileges, and the grants approved
//! requests give.

use portcullis_policy::{parse_privilege, Grant, ObjectPattern, OnDemand, Policy, Principal};
use portcullis_store::{AccessDetail, NewRequest, Request, RequestKind, Store};
use time::{Duration, OffsetDateTime};

use crate::error::{Result, WorkflowError};
use crate::{from_millis, millis};

/// What a user asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessAsk {
    /// An on-demand bundle by name; or `None` with `resource`, `objects` and `privileges`.
    pub bundle: Option<String>,
    /// The resource (optional with a bundle, which names its own).
    pub resource: Option<String>,
    /// Object patterns, as policy files write them (without a bundle).
    pub objects: Vec<String>,
    /// Privilege names (without a bundle).
    pub privileges: Vec<String>,
    /// For how long.
    pub duration: Duration,
    /// Why.
    pub reason: String,
}

/// The on-demand entry a request falls under.
fn entry_for<'p>(policy: &'p Policy, bundle: Option<&str>, resource: &str) -> Option<&'p OnDemand> {
    match bundle {
        Some(name) => policy.on_demand(name).filter(|o| o.grants.is_some()),
        None => policy
            .on_demand
            .iter()
            .find(|o| o.grants.is_none() && o.resource == resource),
    }
}

/// Files an access request for `requester`, after checking it against the policy's `on_demand` entries.
pub fn request_access(
    store: &Store,
    policy: &Policy,
    requester: &str,
    ask: &AccessAsk,
    now: OffsetDateTime,
) -> Result<Request> {
    if ask.reason.trim().is_empty() {
        return Err(WorkflowError::Invalid(
            "give a reason (--reason): approvers decide on it".into(),
        ));
    }
    if ask.duration <= Duration::ZERO {
        return Err(WorkflowError::Invalid(
            "the duration must be positive".into(),
        ));
    }
    let names = || {
        let names: Vec<&str> = policy.on_demand.iter().map(|o| o.name.as_str()).collect();
        if names.is_empty() {
            "the policy offers nothing on demand".to_owned()
        } else {
            format!("on-demand entries: {}", names.join(", "))
        }
    };
    let (entry, objects, privileges) = match &ask.bundle {
        Some(bundle) => {
            let entry = entry_for(policy, Some(bundle), "").ok_or_else(|| {
                WorkflowError::Invalid(format!(
                    "there is no on-demand bundle `{bundle}` ({})",
                    names()
                ))
            })?;
            if ask.resource.as_ref().is_some_and(|r| *r != entry.resource) {
                return Err(WorkflowError::Invalid(format!(
                    "bundle `{bundle}` is for resource {}; leave out --resource",
                    entry.resource
                )));
            }
            if !ask.objects.is_empty() || !ask.privileges.is_empty() {
                return Err(WorkflowError::Invalid(format!(
                    "bundle `{bundle}` names its own grants; leave out --objects and --privileges"
                )));
            }
            (entry, Vec::new(), Vec::new())
        }
        None => {
            let resource = ask.resource.as_deref().ok_or_else(|| {
                WorkflowError::Invalid("name a bundle (--bundle) or a resource (--resource) with --objects and --privileges".into())
            })?;
            let entry = entry_for(policy, None, resource).ok_or_else(|| {
                WorkflowError::Invalid(format!(
                    "resource {resource} cannot be requested with objects and privileges ({})",
                    names()
                ))
            })?;
            if ask.objects.is_empty() || ask.privileges.is_empty() {
                return Err(WorkflowError::Invalid(
                    "name the objects (--objects 'hr.*') and privileges (--privileges select) you need".into(),
                ));
            }
            for object in &ask.objects {
                ObjectPattern::parse(object).map_err(WorkflowError::Invalid)?;
            }
            for privilege in &ask.privileges {
                parse_privilege(privilege).map_err(WorkflowError::Invalid)?;
            }
            (entry, ask.objects.clone(), ask.privileges.clone())
        }
    };
    if ask.duration > entry.max_duration {
        return Err(WorkflowError::Invalid(format!(
            "`{}` may be requested for at most {}s; ask for less",
            entry.name,
            entry.max_duration.whole_seconds()
        )));
    }
    let workflow = policy.workflow(&entry.workflow).ok_or_else(|| {
        WorkflowError::Invalid(format!("workflow `{}` is not defined", entry.workflow))
    })?;
    crate::file(
        store,
        workflow,
        &NewRequest {
            kind: RequestKind::Access,
            requester: requester.to_owned(),
            resource: entry.resource.clone(),
            workflow: workflow.name.clone(),
            reason: ask.reason.clone(),
            created_at: millis(now),
            expires_at: millis(now + workflow.expire_after),
            access: Some(AccessDetail {
                bundle: ask.bundle.clone(),
                objects,
                privileges,
                duration_ms: i64::try_from(ask.duration.whole_milliseconds()).unwrap_or(i64::MAX),
            }),
            query: None,
            window: None,
        },
        "",
        now,
    )
}

/// The longest an approved access request may last under the current policy: its own duration capped
/// by its on-demand entry's `max_duration`. `None` when no entry offers it any more.
pub(crate) fn access_cap(policy: &Policy, request: &Request) -> Option<Duration> {
    let access = request.access.as_ref()?;
    let entry = entry_for(policy, access.bundle.as_deref(), &request.resource)?;
    Some(Duration::milliseconds(access.duration_ms).min(entry.max_duration))
}

/// The grants the approved access requests give at `now`: to the requester, on the request's
/// resource, the bundle's grants (as the policy defines them now; a bundle that is gone gives nothing)
/// or the requested objects and privileges, valid until the approval's end.
pub fn active_grants(store: &Store, policy: &Policy, now: OffsetDateTime) -> Result<Vec<Grant>> {
    let mut grants = Vec::new();
    for request in store.active_access_requests(millis(now))? {
        grants.extend(request_grants(&request, policy, false));
    }
    Ok(grants)
}

/// The grants of every access request approved and still valid at some time from `since` on, each valid
/// only from its approval to its end: what `policy what-if` replays recorded statements with, since a
/// statement recorded before an approval did not have its grant.
pub fn grants_approved_since(
    store: &Store,
    policy: &Policy,
    since: OffsetDateTime,
) -> Result<Vec<Grant>> {
    let mut grants = Vec::new();
    for request in store.active_access_requests(millis(since))? {
        grants.extend(request_grants(&request, policy, true));
    }
    Ok(grants)
}

/// The grants one approved access request gives; `from_approval` makes them start at the approval.
fn request_grants(request: &Request, policy: &Policy, from_approval: bool) -> Vec<Grant> {
    let (Some(access), Some(until)) = (&request.access, request.valid_until) else {
        return Vec::new();
    };
    let grant = |objects: Vec<ObjectPattern>, privileges| Grant {
        to: Principal::User(request.requester.clone()),
        resource: request.resource.clone(),
        objects,
        privileges,
        expires: None,
        valid_from: request
            .decided_at
            .filter(|_| from_approval)
            .map(from_millis),
        valid_until: Some(from_millis(until)),
    };
    match &access.bundle {
        Some(bundle) => {
            let Some(bundle_grants) = policy.on_demand(bundle).and_then(|o| o.grants.as_ref())
            else {
                tracing::warn!(
                    request = request.id,
                    bundle,
                    "approved bundle is no longer in the policy; it gives nothing"
                );
                return Vec::new();
            };
            bundle_grants
                .iter()
                .map(|g| grant(g.objects.clone(), g.privileges.clone()))
                .collect()
        }
        None => {
            let objects: std::result::Result<Vec<_>, _> = access
                .objects
                .iter()
                .map(|o| ObjectPattern::parse(o))
                .collect();
            let privileges: std::result::Result<Vec<Vec<_>>, _> = access
                .privileges
                .iter()
                .map(|p| parse_privilege(p))
                .collect();
            match (objects, privileges) {
                (Ok(objects), Ok(privileges)) => {
                    vec![grant(objects, privileges.into_iter().flatten().collect())]
                }
                _ => {
                    tracing::warn!(request = request.id, "approved request names objects or privileges that no longer parse; it gives nothing");
                    Vec::new()
                }
            }
        }
    }
}

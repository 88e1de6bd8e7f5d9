//! Approval workflows and on-demand entries as written (`workflows:`, `on_demand:`), validated at load.
//! Every workflow a rule, a Cedar `@approval(...)` or an on-demand entry names must be defined: a
//! workflow that does not exist could never approve anything, so naming one is a load error.

use std::cell::RefCell;
use std::collections::HashSet;

use portcullis_sql::Operation;
use serde::de::Deserializer;
use serde::Deserialize;

use crate::model::{BundleGrant, OnDemand, OnTimeout, Reservation, Workflow};
use crate::pattern::ObjectPattern;
use crate::validate::{list, nonempty, FromScalar, Privileges};
use crate::yaml::{checked_map, Parsed};

/// How long an approved statement may be run again when the workflow does not say.
pub const DEFAULT_VALID_FOR: time::Duration = time::Duration::hours(4);
/// How long a request stays pending when the workflow does not say.
pub const DEFAULT_EXPIRE_AFTER: time::Duration = time::Duration::hours(24);
/// The longest on-demand access when the entry does not say.
pub const DEFAULT_MAX_DURATION: time::Duration = time::Duration::hours(8);
/// How long before a reservation's window closes its sessions are told, when the entry does not say.
pub const DEFAULT_NOTICE_BEFORE: time::Duration = time::Duration::minutes(5);
/// The longest reservation window when the entry does not say.
pub const DEFAULT_MAX_WINDOW: time::Duration = time::Duration::hours(8);

thread_local! {
    /// Workflow names the document being loaded defines (read in a first pass so references anywhere
    /// in the file can be checked where they are written, with their position).
    static KNOWN: RefCell<Option<HashSet<String>>> = const { RefCell::new(None) };
    /// Workflow names defined so far in the main pass (a second definition is an error).
    static DEFINED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// Sets [`KNOWN`] for one load and clears it however loading ends.
pub(crate) struct KnownWorkflows;

impl KnownWorkflows {
    /// Reads the workflow names of `text`. A document whose `workflows:` cannot be read defines none
    /// (the main pass then reports why).
    pub(crate) fn start(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Names {
            #[serde(default)]
            workflows: Vec<NameOnly>,
        }
        #[derive(Deserialize)]
        struct NameOnly {
            name: Option<String>,
        }
        let names = serde_yaml_ng::from_str::<Names>(text)
            .map(|n| n.workflows.into_iter().filter_map(|w| w.name).collect())
            .unwrap_or_default();
        KNOWN.with(|k| *k.borrow_mut() = Some(names));
        DEFINED.with(|d| d.borrow_mut().clear());
        KnownWorkflows
    }

    /// The names read by [`start`](Self::start).
    pub(crate) fn names(&self) -> HashSet<String> {
        KNOWN.with(|k| k.borrow().clone().unwrap_or_default())
    }
}

impl Drop for KnownWorkflows {
    fn drop(&mut self) {
        KNOWN.with(|k| *k.borrow_mut() = None);
        DEFINED.with(|d| d.borrow_mut().clear());
    }
}

/// Checks that `name`, named by `what`, is a workflow of the document being loaded.
pub(crate) fn check_known(name: &str, what: &str) -> Result<(), String> {
    let known = KNOWN.with(|k| k.borrow().as_ref().is_none_or(|names| names.contains(name)));
    if known {
        Ok(())
    } else {
        Err(format!(
            "{what} names workflow `{name}`, which this policy does not define; add it under `workflows:` (a workflow that does not exist could never approve)"
        ))
    }
}

/// A duration such as `90s`, `15m`, `4h` or `2d`.
pub(crate) struct Span(pub time::Duration);

impl FromScalar for Span {
    const EXPECTING: &'static str = "a duration such as 30m, 4h or 1d";
    fn from_scalar(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Span)
    }
}

/// The longest duration accepted: added to a time, anything much longer would leave the calendar.
const MAX_DURATION_DAYS: i64 = 3650;

/// Parses a positive duration `<number><unit>` with unit `s`, `m`, `h` or `d`, at most ten years (the
/// CLI uses it too).
pub fn parse_duration(s: &str) -> Result<time::Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{s}`; write a number and a unit, e.g. `90s`, `15m`, `4h` or `2d`"
        )
    };
    let s = s.trim();
    let unit_at = s.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = (
        s.get(..unit_at).ok_or_else(bad)?,
        s.get(unit_at..).ok_or_else(bad)?,
    );
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(format!("duration `{s}` must be positive"));
    }
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if seconds > MAX_DURATION_DAYS * 86_400 {
        return Err(format!(
            "duration `{s}` is longer than {MAX_DURATION_DAYS} days"
        ));
    }
    Ok(time::Duration::seconds(seconds))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovers {
    users: Option<Vec<String>>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: String,
    approvers: RawApprovers,
    required: Option<u32>,
    valid_for: Option<Parsed<Span>>,
    expire_after: Option<Parsed<Span>>,
    on_timeout: Option<String>,
    escalate_after: Option<Parsed<Span>>,
    escalate_to: Option<RawApprovers>,
}

fn workflow(raw: RawWorkflow) -> Result<Workflow, String> {
    nonempty("name", &raw.name)?;
    let approver_users = list("approvers.users", raw.approvers.users)?;
    let approver_roles = list("approvers.roles", raw.approvers.roles)?;
    if approver_users.is_empty() && approver_roles.is_empty() {
        return Err(format!(
            "workflow `{}` has no approvers; list `approvers: {{users: [...], roles: [...]}}`",
            raw.name
        ));
    }
    let required = raw.required.unwrap_or(1);
    if required == 0 {
        return Err("`required` must be at least 1".into());
    }
    if approver_roles.is_empty()
        && usize::try_from(required).unwrap_or(usize::MAX) > approver_users.len()
    {
        return Err(format!(
            "workflow `{}` requires {required} approvals but lists only {} approver(s); it could never approve",
            raw.name,
            approver_users.len()
        ));
    }
    let on_timeout = match raw.on_timeout.as_deref() {
        None | Some("ignore") => OnTimeout::Ignore,
        Some("reject") => OnTimeout::Reject,
        Some(other) => {
            return Err(format!(
                "unknown `on_timeout: {other}`; write `reject` (nobody decided in time: rejected) or `ignore` (it expires, the default)"
            ))
        }
    };
    let expire_after = raw
        .expire_after
        .map(|s| s.0 .0)
        .unwrap_or(DEFAULT_EXPIRE_AFTER);
    let escalate_after = raw.escalate_after.map(|s| s.0 .0);
    let (escalate_users, escalate_roles) = match (escalate_after, raw.escalate_to) {
        (None, None) => (Vec::new(), Vec::new()),
        (Some(after), Some(to)) => {
            let users = list("escalate_to.users", to.users)?;
            let roles = list("escalate_to.roles", to.roles)?;
            if users.is_empty() && roles.is_empty() {
                return Err(format!(
                    "workflow `{}` escalates to nobody; list `escalate_to: {{users: [...], roles: [...]}}`",
                    raw.name
                ));
            }
            if after >= expire_after {
                return Err(format!(
                    "workflow `{}` escalates after {}s, but its requests time out after {}s; escalate sooner",
                    raw.name,
                    after.whole_seconds(),
                    expire_after.whole_seconds()
                ));
            }
            (users, roles)
        }
        (Some(_), None) => {
            return Err(format!(
                "workflow `{}` has `escalate_after` but no `escalate_to`; say who decides escalated requests",
                raw.name
            ))
        }
        (None, Some(_)) => {
            return Err(format!(
                "workflow `{}` has `escalate_to` but no `escalate_after`; say when requests escalate",
                raw.name
            ))
        }
    };
    if !DEFINED.with(|d| d.borrow_mut().insert(raw.name.clone())) {
        return Err(format!(
            "duplicate workflow `{}`; every workflow needs its own name",
            raw.name
        ));
    }
    Ok(Workflow {
        name: raw.name,
        approver_users,
        approver_roles,
        required,
        valid_for: raw.valid_for.map(|s| s.0 .0).unwrap_or(DEFAULT_VALID_FOR),
        expire_after,
        on_timeout,
        escalate_after,
        escalate_users,
        escalate_roles,
    })
}

impl<'de> Deserialize<'de> for Workflow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, workflow)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundleGrant {
    objects: Vec<Parsed<ObjectPattern>>,
    privileges: Vec<Parsed<Privileges>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnDemand {
    name: String,
    resource: String,
    grants: Option<Vec<RawBundleGrant>>,
    workflow: String,
    max_duration: Option<Parsed<Span>>,
}

fn on_demand(raw: RawOnDemand) -> Result<OnDemand, String> {
    nonempty("name", &raw.name)?;
    nonempty("resource", &raw.resource)?;
    check_known(&raw.workflow, &format!("on-demand entry `{}`", raw.name))?;
    let grants = match raw.grants {
        None => None,
        Some(g) if g.is_empty() => {
            return Err("`grants` is an empty list; list the grants of the bundle, or remove `grants` to let requesters name objects and privileges".into())
        }
        Some(g) => Some(
            g.into_iter()
                .map(|g| {
                    let objects = list("objects", Some(g.objects.into_iter().map(|p| p.0).collect()))?;
                    let mut privileges: Vec<Operation> = Vec::new();
                    for p in list("privileges", Some(g.privileges))? {
                        for op in p.0 .0 {
                            if !privileges.contains(&op) {
                                privileges.push(op);
                            }
                        }
                    }
                    Ok(BundleGrant { objects, privileges })
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(OnDemand {
        name: raw.name,
        resource: raw.resource,
        grants,
        workflow: raw.workflow,
        max_duration: raw
            .max_duration
            .map(|s| s.0 .0)
            .unwrap_or(DEFAULT_MAX_DURATION),
    })
}

impl<'de> Deserialize<'de> for OnDemand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, on_demand)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReservation {
    resource: String,
    workflow: String,
    notice_before: Option<Parsed<Span>>,
    max_window: Option<Parsed<Span>>,
    users: Option<Vec<String>>,
    roles: Option<Vec<String>>,
}

fn reservation(raw: RawReservation) -> Result<Reservation, String> {
    nonempty("resource", &raw.resource)?;
    check_known(
        &raw.workflow,
        &format!("the reservation entry for `{}`", raw.resource),
    )?;
    let notice_before = raw
        .notice_before
        .map(|s| s.0 .0)
        .unwrap_or(DEFAULT_NOTICE_BEFORE);
    let max_window = raw.max_window.map(|s| s.0 .0).unwrap_or(DEFAULT_MAX_WINDOW);
    if notice_before >= max_window {
        return Err(format!(
            "`notice_before` ({}s) must be shorter than `max_window` ({}s)",
            notice_before.whole_seconds(),
            max_window.whole_seconds()
        ));
    }
    Ok(Reservation {
        resource: raw.resource,
        workflow: raw.workflow,
        notice_before,
        max_window,
        users: list("users", raw.users)?,
        roles: list("roles", raw.roles)?,
    })
}

impl<'de> Deserialize<'de> for Reservation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, reservation)
    }
}

/// Parses a privilege name as policy files write it (`select`, `insert`, ..., `all`).
pub fn parse_privilege(s: &str) -> Result<Vec<Operation>, String> {
    Privileges::from_scalar(s.trim()).map(|p| p.0)
}

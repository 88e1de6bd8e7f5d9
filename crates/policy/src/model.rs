//! The policy as written: grants (who may do what where) and ordered rules (what happens when).
//! Values here are already validated; [`Policy::from_yaml`](crate::Policy::from_yaml) builds them.

use std::fmt;
use std::net::IpAddr;

use portcullis_sql::{Operation, StatementKind};
use time::{OffsetDateTime, UtcOffset, Weekday};

use crate::cedar::CedarPolicies;
use crate::context::DeviceTrust;
use crate::pattern::ObjectPattern;
use crate::protection::{ColumnDenyRule, MaskRule, RowFilterRule};

/// A whole policy: the Global Access grants, the ordered rules, Cedar permit/forbid statements, and the
/// data protection rules (masks, row filters, column denies).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Grants; order does not matter.
    pub grants: Vec<Grant>,
    /// Rules; earlier rules have higher priority.
    pub rules: Vec<Rule>,
    /// Cedar permit and forbid statements (the `cedar:` key), validated against the Portcullis schema.
    pub cedar: CedarPolicies,
    /// Masking rules (`masks:`); per column the first one in this order wins.
    pub masks: Vec<MaskRule>,
    /// Row filters (`row_filters:`); all that select a table apply.
    pub row_filters: Vec<RowFilterRule>,
    /// Column denies (`column_denies:`).
    pub column_denies: Vec<ColumnDenyRule>,
    /// Approval workflows (`workflows:`): who endorses, how many must, how long approvals last.
    pub workflows: Vec<Workflow>,
    /// What users may request on demand (`on_demand:`), and which workflow decides.
    pub on_demand: Vec<OnDemand>,
    /// Resources that need a reservation (`reservations:`), and which workflow decides them.
    pub reservations: Vec<Reservation>,
}

impl Policy {
    /// The workflow named `name`.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The on-demand entry named `name`.
    pub fn on_demand(&self, name: &str) -> Option<&OnDemand> {
        self.on_demand.iter().find(|o| o.name == name)
    }

    /// The reservation entry that makes `user` (with `roles`) reserve `resource`, if any.
    pub fn reservation_for(
        &self,
        resource: &str,
        user: &str,
        roles: &[String],
    ) -> Option<&Reservation> {
        reservation_for(&self.reservations, resource, user, roles)
    }
}

/// The first of `entries` that makes `user` (with `roles`) reserve `resource`, if any.
pub fn reservation_for<'r>(
    entries: &'r [Reservation],
    resource: &str,
    user: &str,
    roles: &[String],
) -> Option<&'r Reservation> {
    entries
        .iter()
        .find(|r| r.resource == resource && r.applies_to(user, roles))
}

/// The workflow a `require-approval` rule uses when it names none.
pub const DEFAULT_WORKFLOW: &str = "default";

/// An approval workflow: who may endorse, how many approvals are needed, and how long things last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// Its name, which rules, Cedar `@approval(...)` and on-demand entries refer to.
    pub name: String,
    /// Users who may endorse.
    pub approver_users: Vec<String>,
    /// Members of these roles may endorse.
    pub approver_roles: Vec<String>,
    /// Approvals needed (N of M); one rejection rejects.
    pub required: u32,
    /// How long an approved statement may be run again.
    pub valid_for: time::Duration,
    /// How long a request may stay pending before it times out.
    pub expire_after: time::Duration,
    /// What a timeout does: reject the request, or let it expire.
    pub on_timeout: OnTimeout,
    /// After how long a pending request is escalated: `escalate_users` and `escalate_roles` may then
    /// decide it too. `None`: never.
    pub escalate_after: Option<time::Duration>,
    /// Users who may decide escalated requests.
    pub escalate_users: Vec<String>,
    /// Members of these roles may decide escalated requests.
    pub escalate_roles: Vec<String>,
}

/// What happens to a request nobody decided within its workflow's `expire_after`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnTimeout {
    /// It expires: nothing was decided (the default).
    #[default]
    Ignore,
    /// The gateway rejects it, finally, as if an approver had.
    Reject,
}

impl Workflow {
    /// Whether `user` (with `roles`) may endorse requests of this workflow.
    pub fn is_approver(&self, user: &str, roles: &[String]) -> bool {
        self.approver_users.iter().any(|u| u == user)
            || self.approver_roles.iter().any(|r| roles.contains(r))
    }

    /// Whether `user` (with `roles`) may decide an escalated request of this workflow as an escalation
    /// approver.
    pub fn is_escalation_approver(&self, user: &str, roles: &[String]) -> bool {
        self.escalate_users.iter().any(|u| u == user)
            || self.escalate_roles.iter().any(|r| roles.contains(r))
    }
}

/// A resource that users connect to only inside an approved reservation's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The resource.
    pub resource: String,
    /// The workflow that decides reservations.
    pub workflow: String,
    /// How long before the window closes a session is told it will end.
    pub notice_before: time::Duration,
    /// The longest window one reservation may ask for.
    pub max_window: time::Duration,
    /// Only these users need one (with `roles`; both empty: everyone).
    pub users: Vec<String>,
    /// Only members of these roles need one.
    pub roles: Vec<String>,
}

impl Reservation {
    /// Whether `user` (with `roles`) needs a reservation under this entry.
    pub fn applies_to(&self, user: &str, roles: &[String]) -> bool {
        (self.users.is_empty() && self.roles.is_empty())
            || self.users.iter().any(|u| u == user)
            || self.roles.iter().any(|r| roles.contains(r))
    }
}

/// What a user may request on demand.
#[derive(Debug, Clone)]
pub struct OnDemand {
    /// Its name (`portcullis request access --bundle NAME`).
    pub name: String,
    /// The resource it is about.
    pub resource: String,
    /// The grants it gives; `None`: the requester names objects and privileges on `resource`.
    pub grants: Option<Vec<BundleGrant>>,
    /// The workflow that decides requests.
    pub workflow: String,
    /// The longest duration a request may ask for.
    pub max_duration: time::Duration,
}

/// One grant of an on-demand bundle (given to the requester on the bundle's resource).
#[derive(Debug, Clone)]
pub struct BundleGrant {
    /// Object patterns covered.
    pub objects: Vec<ObjectPattern>,
    /// Operations allowed.
    pub privileges: Vec<Operation>,
}

/// Who a grant is given to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// One gateway user.
    User(String),
    /// Every member of a role.
    Role(String),
}

/// A permission: the principal may perform `privileges` on `objects` of `resource`.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Who receives it.
    pub to: Principal,
    /// The resource name, or `*` for every resource.
    pub resource: String,
    /// Object patterns covered.
    pub objects: Vec<ObjectPattern>,
    /// Operations allowed (privilege names map to operations: `select` → read, `copy-out`, ...).
    pub privileges: Vec<Operation>,
    /// The grant no longer applies from this instant.
    pub expires: Option<OffsetDateTime>,
    /// The grant applies from this instant.
    pub valid_from: Option<OffsetDateTime>,
    /// The grant no longer applies from this instant.
    pub valid_until: Option<OffsetDateTime>,
}

impl Grant {
    /// Whether the grant applies at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expires.is_none_or(|e| now < e)
            && self.valid_from.is_none_or(|f| now >= f)
            && self.valid_until.is_none_or(|u| now < u)
    }
}

/// The privilege name used in messages for an operation (`read` is SQL's `SELECT`).
pub fn privilege_name(op: Operation) -> String {
    match op {
        Operation::Read => "SELECT".into(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// When a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Before authentication: address, time, location and target are known.
    PreConnection,
    /// After authentication: also user, roles and device trust.
    PostConnection,
    /// For every statement.
    Statement,
}

impl Stage {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreConnection => "pre-connection",
            Self::PostConnection => "post-connection",
            Self::Statement => "statement",
        }
    }
}

/// What a fired rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the statement (or connection) through; stops lower rules for the component.
    Allow,
    /// Deny.
    Block,
    /// Let it through and record an audit event.
    Audit,
    /// Let it through, record and notify.
    Alert,
    /// Hold until approved.
    RequireApproval,
    /// Deny and end the session.
    Logout,
}

impl Action {
    /// The name used in policy files and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
            Self::Audit => "audit",
            Self::Alert => "alert",
            Self::RequireApproval => "require-approval",
            Self::Logout => "logout",
        }
    }

    /// Whether the action denies (block, logout).
    pub fn denies(self) -> bool {
        matches!(self, Self::Block | Self::Logout)
    }

    /// Whether the action lets the statement run and may be superseded by an outcome rule.
    pub fn is_passive(self) -> bool {
        matches!(self, Self::Allow | Self::Audit | Self::Alert)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious a fired rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Severity {
    /// Informational (the default).
    #[default]
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The name used in policy files and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// An ordered rule; its priority is its position in [`Policy::rules`].
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, used in audit records.
    pub id: String,
    /// Human name.
    pub name: Option<String>,
    /// When it is evaluated.
    pub stage: Stage,
    /// Its filter; every given condition must hold.
    pub when: When,
    /// What it does when it fires.
    pub action: Action,
    /// How serious it is.
    pub severity: Severity,
    /// Shown to the user and recorded.
    pub message: Option<String>,
    /// For `require-approval`: the workflow whose approval lets the statement run
    /// ([`DEFAULT_WORKFLOW`] when the rule names none); `None` for other actions.
    pub workflow: Option<String>,
}

impl Rule {
    /// Whether the rule filters on objects or operations (an object rule, matching object components).
    pub fn is_object_rule(&self) -> bool {
        !self.when.objects.is_empty() || !self.when.operations.is_empty()
    }

    /// Whether the rule is an `allow` naming `kind` in `statement_kinds` for named users or roles: the
    /// only thing that lets a statement the analyser cannot fully attribute to objects run (a `DO` block
    /// for the DBAs, say). Statement kinds given by exclusion or rules for everyone do not count.
    pub fn explicitly_allows(&self, kind: &StatementKind) -> bool {
        self.action == Action::Allow
            && (!self.when.users.is_empty() || !self.when.roles.is_empty())
            && self.when.statement_kinds.contains(kind)
    }

    /// Whether the rule only looks at who/what/when (no statement, object, text or outcome filter): at the
    /// statement stage a blocking one is a *forbid* statement, decided before grants and priority.
    pub fn is_context_only(&self) -> bool {
        let w = &self.when;
        w.objects.is_empty()
            && w.operations.is_empty()
            && w.statement_kinds.is_empty()
            && w.statement_kinds_not.is_empty()
            && w.text_regex.is_none()
            && w.rows_above.is_none()
    }
}

/// A rule's filter. Empty lists and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct When {
    /// User names; with `roles`, the rule applies to a listed user *or* a member of a listed role.
    pub users: Vec<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Resource names (`*` for any).
    pub resources: Vec<String>,
    /// Client address ranges.
    pub client_cidrs: Vec<Cidr>,
    /// A weekly time window.
    pub time: Option<TimeWindow>,
    /// Countries (upper-case alpha-2) or `None` for `unknown`.
    pub locations: Vec<Option<String>>,
    /// Device trust levels, `None` for `unknown`.
    pub device_trust: Vec<Option<DeviceTrust>>,
    /// The statement's kind is one of these.
    pub statement_kinds: Vec<StatementKind>,
    /// The statement's kind is none of these.
    pub statement_kinds_not: Vec<StatementKind>,
    /// Object patterns (object rule).
    pub objects: Vec<ObjectPattern>,
    /// Operations on the object (object rule). When empty, every operation matches, except `create` for a
    /// passive action (see the crate docs).
    pub operations: Vec<Operation>,
    /// A regular expression the statement text must match.
    pub text_regex: Option<TextRegex>,
    /// Rows fetched or affected must exceed this (decided after execution).
    pub rows_above: Option<u64>,
}

/// A compiled regular expression from a policy file.
#[derive(Debug, Clone)]
pub struct TextRegex(pub regex::Regex);

/// An address range `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range; IPv4-mapped IPv6 addresses match IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A weekly window in a fixed UTC offset: on `days`, from `from` (inclusive) to `to` (exclusive), minutes
/// after midnight. `from > to` wraps past midnight and belongs to the day it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindow {
    /// Days the window starts on (all when empty).
    pub days: Vec<Weekday>,
    /// Start, minutes after midnight (0 when not given).
    pub from: u16,
    /// End, minutes after midnight (1440 when not given).
    pub to: u16,
    /// The offset the times are in.
    pub zone: UtcOffset,
}

impl TimeWindow {
    /// Whether `now` is inside the window.
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        let local = now.to_offset(self.zone);
        let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
        let day = local.weekday();
        let on = |d: Weekday| self.days.is_empty() || self.days.contains(&d);
        if self.from <= self.to {
            on(day) && minute >= self.from && minute < self.to
        } else {
            (on(day) && minute >= self.from) || (on(day.previous()) && minute < self.to)
        }
    }
}

//! Audit event types. They serialize to JSON (one object per record) for `--json` output and export.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A client connection opened, closed or was rejected.
    Connection(ConnectionEvent),
    /// A statement was decided on (and, if allowed, executed).
    Statement(StatementEvent),
    /// A connection stage was decided on by the policy (the policy monitor's connection records).
    Decision(DecisionEvent),
    /// Something happened to an approval request: requested, endorsed, approved, rejected, expired,
    /// used.
    Workflow(WorkflowEvent),
    /// Something happened to a user's MFA: enrolment, a verification (right or wrong), a reset, or the
    /// gateway holding a connection or statement for MFA and how that ended.
    Mfa(MfaEvent),
}

impl AuditEvent {
    /// When the event happened (unix microseconds).
    pub fn at(&self) -> i64 {
        match self {
            AuditEvent::Connection(c) => c.at,
            AuditEvent::Statement(s) => s.at,
            AuditEvent::Decision(d) => d.at,
            AuditEvent::Workflow(w) => w.at,
            AuditEvent::Mfa(m) => m.at,
        }
    }

    /// The gateway session the event belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.session_id,
            AuditEvent::Statement(s) => &s.session_id,
            AuditEvent::Decision(d) => &d.session_id,
            AuditEvent::Workflow(w) => &w.session_id,
            AuditEvent::Mfa(m) => &m.session_id,
        }
    }

    /// The gateway user.
    pub fn user(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.user,
            AuditEvent::Statement(s) => &s.user,
            AuditEvent::Decision(d) => &d.user,
            AuditEvent::Workflow(w) => &w.user,
            AuditEvent::Mfa(m) => &m.user,
        }
    }

    /// The resource.
    pub fn resource(&self) -> &str {
        match self {
            AuditEvent::Connection(c) => &c.resource,
            AuditEvent::Statement(s) => &s.resource,
            AuditEvent::Decision(d) => &d.resource,
            AuditEvent::Workflow(w) => &w.resource,
            AuditEvent::Mfa(m) => &m.resource,
        }
    }
}

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionPhase {
    /// Authenticated and connected upstream.
    Open,
    /// Ended (by either side); byte counts are final.
    Close,
    /// Refused before or during authentication; `auth_result` says why.
    Rejected,
}

impl ConnectionPhase {
    /// "open", "close" or "rejected".
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionPhase::Open => "open",
            ConnectionPhase::Close => "close",
            ConnectionPhase::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ConnectionPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionPhase {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "open" => Ok(ConnectionPhase::Open),
            "close" => Ok(ConnectionPhase::Close),
            "rejected" => Ok(ConnectionPhase::Rejected),
            other => Err(StoreError::Invalid {
                what: "connection phase",
                reason: format!("{other:?} is not one of open, close, rejected"),
            }),
        }
    }
}

/// A connection event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEvent {
    /// Gateway session id.
    pub session_id: String,
    /// Open, close or rejected.
    pub phase: ConnectionPhase,
    /// Unix microseconds.
    pub at: i64,
    /// Gateway user (as claimed, for rejections).
    pub user: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// Requested resource.
    pub resource: String,
    /// "ok", "bad password", "unknown resource", ...
    pub auth_result: String,
    /// Whether the client connection used TLS.
    pub tls: bool,
    /// The client's `application_name`, if sent.
    pub application_name: Option<String>,
    /// Bytes received from the client so far.
    pub bytes_in: u64,
    /// Bytes sent to the client so far.
    pub bytes_out: u64,
    /// Free-form detail (error text, close reason).
    pub detail: Option<String>,
}

/// An object a statement touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditObject {
    /// Qualified object name, e.g. `public.accounts`.
    pub name: String,
    /// What the statement does to it, e.g. `select`, `update`.
    pub operation: String,
}

/// A statement event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEvent {
    /// Gateway session id.
    pub session_id: String,
    /// Unix microseconds at the start of the statement.
    pub at: i64,
    /// Gateway user.
    pub user: String,
    /// Resource.
    pub resource: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// Statement text as sent.
    pub text: String,
    /// Statement kind, e.g. `select`, `insert`, `create_table`.
    pub kind: String,
    /// Objects the statement touches.
    pub objects: Vec<AuditObject>,
    /// Number of bind parameters.
    pub param_count: u32,
    /// Rows returned or affected, when known.
    pub rows: Option<u64>,
    /// Execution time in microseconds.
    pub duration_us: u64,
    /// "allow" or "deny".
    pub decision: String,
    /// "ok", "error", "denied" or "cancelled".
    pub outcome: String,
    /// SQLSTATE of the error, if any.
    pub sqlstate: Option<String>,
    /// Error or denial message, if any.
    pub message: Option<String>,
    /// The policy decision that let the statement run or refused it (its policy monitor record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyTrail>,
}

/// A connection stage's policy decision (pre-connection before authentication, post-connection after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// Gateway session id.
    pub session_id: String,
    /// Unix microseconds.
    pub at: i64,
    /// Gateway user (as claimed, before authentication).
    pub user: String,
    /// Requested resource.
    pub resource: String,
    /// Client address, `ip:port`.
    pub client_addr: String,
    /// What was decided and why.
    pub policy: PolicyTrail,
}

/// An approval request's step, with who took it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowEvent {
    /// Gateway session id for steps a session took (a held statement requested or an approval used);
    /// empty for steps taken from the CLI.
    pub session_id: String,
    /// Unix microseconds.
    pub at: i64,
    /// Who acted: the requester, the approver, the user whose approval was used; `portcullis` for
    /// expiry.
    pub user: String,
    /// The request's resource.
    pub resource: String,
    /// The request's number.
    pub request_id: i64,
    /// `requested`, `endorsed`, `approved`, `rejected`, `expired` or `used`.
    pub action: String,
    /// The request's workflow.
    pub workflow: String,
    /// What it was about: the request's summary, an endorsement's comment, the statement run.
    pub detail: String,
}

/// An MFA event. From the CLI, `session_id`, `resource` and `client_addr` are empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaEvent {
    /// Gateway session id (empty for CLI events).
    pub session_id: String,
    /// Unix microseconds.
    pub at: i64,
    /// The user.
    pub user: String,
    /// The resource the held request was for (empty for CLI events).
    pub resource: String,
    /// Client address, `ip:port` (empty for CLI events).
    pub client_addr: String,
    /// `enroll`, `verify`, `reset`, `hold` (a request waits for MFA), `resume` (it goes on after a
    /// verification), `timeout` (no verification came in time), `cancel` (the client cancelled the held
    /// statement) or `refuse` (the user is not enrolled).
    pub action: String,
    /// `ok`, or what went wrong: `wrong code`, `replayed code`, `not enrolled`, `timed out`, `cancelled`.
    pub result: String,
    /// What was held (`post-connection`, `statement: SELECT …`), the permits requiring MFA, the
    /// verification used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the policy monitor records of one decision: the result, the context it was made in, the
/// requirements and the rules and policies that decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTrail {
    /// `pre-connection`, `post-connection` or `statement`.
    pub stage: String,
    /// `allow`, `deny` or `require-approval`.
    pub result: String,
    /// Version of the applied policy that decided; `None` when no policy was applied.
    pub policy_version: Option<i64>,
    /// What was evaluated: `connect app`, or each component (`select hr.employees`, `statement SELECT`).
    pub actions: Vec<String>,
    /// The client's country, or `unknown`.
    pub location: String,
    /// The client device's trust level, or `unknown`.
    pub device_trust: String,
    /// The gateway roles the user held for the decision; `None` in records written before roles were
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The justification the user gave, if any (recorded, never judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// Rules and policies that fired, by priority.
    pub rules: Vec<FiredRuleRecord>,
    /// Requirements imposed (MFA, justification, approval) and whether each was met.
    #[serde(default)]
    pub requirements: Vec<RequirementRecord>,
    /// Object accesses no grant covers (`alice lacks SELECT on hr.employees in app`).
    #[serde(default)]
    pub missing_grants: Vec<String>,
    /// Whether the decision ends the session.
    #[serde(default)]
    pub logout: bool,
    /// Masks and row filters the statement was rewritten with (`hr.people.ssn masked by mask-ssn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protections: Vec<String>,
    /// A human explanation.
    pub reason: String,
}

/// A rule or policy that took part in a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredRuleRecord {
    /// The rule's or policy's id.
    pub id: String,
    /// Its name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its action (`allow`, `block`, `audit`, `forbid`, `permit`, ...).
    pub action: String,
    /// Its severity.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    /// The components that fired it (`select hr.employees`); empty when it applies to the whole request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A requirement a permit imposed on a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementRecord {
    /// `mfa`, `justification` or `approval`.
    pub kind: String,
    /// The policy that imposed it.
    pub policy: String,
    /// Whether it was met.
    pub met: bool,
    /// The justification prompt or the approval workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored audit event and its id (ids increase in commit order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Row id, increasing.
    pub id: i64,
    /// The event; flattened into the record's JSON object next to `id` and `type`.
    #[serde(flatten)]
    pub event: AuditEvent,
}

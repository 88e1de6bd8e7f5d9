//! What the gateway reports: sessions, statements and policy decisions, upstream connect errors and
//! MFA holds.

use crate::registry::METRICS;

/// A policy outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let through.
    Allow,
    /// Refused.
    Deny,
    /// Held for, or refused for want of, an approval.
    RequireApproval,
}

impl Decision {
    pub(crate) const ALL: [Decision; 3] =
        [Decision::Allow, Decision::Deny, Decision::RequireApproval];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::RequireApproval => "require-approval",
        }
    }
}

/// Where in a session a policy decision is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the client authenticates.
    PreConnection,
    /// After it authenticated, before the upstream connection is used.
    PostConnection,
    /// For each statement.
    Statement,
}

impl Stage {
    pub(crate) const ALL: [Stage; 3] = [
        Stage::PreConnection,
        Stage::PostConnection,
        Stage::Statement,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PreConnection => "pre-connection",
            Stage::PostConnection => "post-connection",
            Stage::Statement => "statement",
        }
    }
}

/// A client session started.
pub fn session_opened() {
    let m = &*METRICS;
    m.sessions_opened.inc();
    m.sessions_open.inc();
}

/// A client session that [`session_opened`] counted ended.
pub fn session_closed() {
    METRICS.sessions_open.dec();
}

/// A statement was decided: `portcullis_statements_total{decision}`.
pub fn statement(decision: Decision) {
    METRICS.statements[decision as usize].inc();
}

/// A policy stage decided: `portcullis_policy_decisions_total{stage, outcome}`.
pub fn decision(stage: Stage, outcome: Decision) {
    METRICS.decisions[stage as usize][outcome as usize].inc();
}

/// Connecting to `resource`'s server failed.
pub fn upstream_connect_error(resource: &str) {
    METRICS
        .upstream_connect_errors
        .get_or_create(&[("resource", resource.to_owned())])
        .inc();
}

/// A connection or statement was held for multi-factor authentication.
pub fn mfa_hold() {
    METRICS.mfa_holds.inc();
}

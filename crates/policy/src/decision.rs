//! What the engine decided and why: results, fired rules, missing grants, pending outcome rules.

use portcullis_sql::Operation;

use crate::cedar::{CedarEffect, Requirement};
use crate::model::{Action, Severity};

/// The result of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refuse.
    Deny,
    /// Hold until an approver approves (a fired `require-approval` rule, nothing denies).
    RequireApproval,
}

/// A rule that fired. The same rule fired by several components of one statement is reported once,
/// listing every component (one audit event per fired rule per statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredRule {
    /// Position in the policy's rule list (its priority; 0 is highest).
    pub position: usize,
    /// The rule's id.
    pub id: String,
    /// The rule's name.
    pub name: Option<String>,
    /// Its action.
    pub action: Action,
    /// Its severity.
    pub severity: Severity,
    /// Its message.
    pub message: Option<String>,
    /// Indices (into the components given) of the components that fired it; empty for connection rules
    /// and forbid statements, which apply to the whole statement.
    pub components: Vec<usize>,
    /// `Some(why)` when a condition could not be evaluated and the rule was applied as a denial (fail
    /// closed) rather than matched.
    pub indeterminate: Option<String>,
    /// For `require-approval`: the workflow whose approval it waits for.
    pub workflow: Option<String>,
}

impl FiredRule {
    /// Whether this firing denies.
    pub fn denies(&self) -> bool {
        self.action.denies() || self.indeterminate.is_some()
    }
}

/// An object component no grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGrant {
    /// Index of the component.
    pub component: usize,
    /// The object (or column) lacking a grant, `schema.name[.column]`.
    pub object: String,
    /// The operation needing a privilege.
    pub operation: Operation,
    /// `alice lacks SELECT on hr.employees in prod`.
    pub message: String,
}

/// Outcome rules (rows thresholds) still to decide for one component, in priority order, and the rule
/// that fires when none of them does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingComponent {
    /// Index of the component.
    pub component: usize,
    /// Positions of rules with a rows threshold whose other conditions matched, ascending.
    pub rules: Vec<usize>,
    /// The passive rule (allow/audit/alert) ranked below them that matched before execution, if any.
    pub fallback: Option<usize>,
}

/// Everything [`crate::CompiledPolicy::evaluate_outcome`] needs once the row count is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingOutcome {
    /// Components with undecided outcome rules.
    pub components: Vec<PendingComponent>,
    /// Rules already reported before execution (not reported again: one event per rule per statement).
    pub fired_before: Vec<usize>,
}

impl PendingOutcome {
    /// Whether nothing is left to decide after execution.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }
}

/// The decision for one statement before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementDecision {
    /// Allow, deny or hold for approval.
    pub verdict: Verdict,
    /// Whether the session must also be ended (a `logout` rule fired).
    pub logout: bool,
    /// Rules fired before execution, by priority.
    pub fired: Vec<FiredRule>,
    /// Object components no grant covers (each makes the verdict Deny).
    pub missing_grants: Vec<MissingGrant>,
    /// Outcome rules to decide after execution (call `evaluate_outcome` with the row count when not
    /// empty and the statement ran).
    pub post_execution: PendingOutcome,
    /// Cedar policies that decided: forbids that applied and permits that matched, in file order.
    pub policies: Vec<DecidingPolicy>,
    /// Every requirement of the matching permits, met or not (an unmet one makes the verdict Deny, or
    /// RequireApproval when only approvals are missing).
    pub requirements: Vec<RequirementStatus>,
    /// Workflows whose approval the statement still waits for (Cedar `@approval` and `require-approval`
    /// rules the context's approvals do not meet), each once, in the order found.
    pub approvals_needed: Vec<String>,
    /// A human explanation.
    pub reason: String,
}

/// The decision once the statement ran and its row count is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeDecision {
    /// Allow or Deny (the gateway rolls back a write or cuts off a read).
    pub verdict: Verdict,
    /// Rules fired after execution (not already reported before), by priority.
    pub fired: Vec<FiredRule>,
    /// A human explanation.
    pub reason: String,
}

/// The decision for a connection stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionDecision {
    /// Allow, deny or hold for approval.
    pub verdict: Verdict,
    /// Whether the client must be disconnected with `reason`.
    pub logout: bool,
    /// The rule that decided (first match), if any.
    pub fired: Option<FiredRule>,
    /// Cedar policies that decided the `connect` action: forbids that applied, permits that matched.
    pub policies: Vec<DecidingPolicy>,
    /// Every requirement of the matching permits, met or not.
    pub requirements: Vec<RequirementStatus>,
    /// Workflows whose approval the connection still needs (a `require-approval` rule's or a permit's
    /// `@approval`), first one first; empty unless the verdict is `RequireApproval`.
    pub approvals_needed: Vec<String>,
    /// A human explanation.
    pub reason: String,
}

/// A Cedar policy that took part in a decision (for the policy monitor's "policies that decided").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidingPolicy {
    /// The policy's `@id`.
    pub id: String,
    /// A forbid that applied or a permit that matched.
    pub effect: CedarEffect,
    /// Indices of the components whose request it matched (the statement component stands for the
    /// `statement` action); empty for a connection.
    pub components: Vec<usize>,
    /// `Some(why)` when its evaluation failed: a forbid then applied to fail closed, and a permit imposed
    /// its requirements without authorising anything.
    pub error: Option<String>,
}

/// One requirement of a matching permit, and whether the context meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementStatus {
    /// The permit's `@id`.
    pub policy: String,
    /// What it requires.
    pub requirement: Requirement,
    /// Whether [`Context`](crate::Context) says it is met.
    pub met: bool,
}

impl RequirementStatus {
    /// What is required, as said to the user: ``MFA required by permit `x` ``,
    /// ``justification required by permit `y`: <prompt>``, ``approval via workflow `z` required by
    /// permit `w` ``.
    pub fn describe(&self) -> String {
        let prompt = |p: &Option<String>| p.as_ref().map(|p| format!(": {p}")).unwrap_or_default();
        match &self.requirement {
            Requirement::Mfa { prompt: p } => {
                format!("MFA required by permit `{}`{}", self.policy, prompt(p))
            }
            Requirement::Justification { prompt: p } => {
                format!(
                    "justification required by permit `{}`{}",
                    self.policy,
                    prompt(p)
                )
            }
            Requirement::Approval { workflow } => format!(
                "approval via workflow `{workflow}` required by permit `{}`",
                self.policy
            ),
        }
    }
}

//! Cedar policies as loaded: each statement's id, effect and what its annotations ask for, plus the
//! policy sets the engine evaluates.

use std::fmt;

use cedar_policy::PolicySet;

use crate::cedar::scope::Scope;

/// Whether a Cedar policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CedarEffect {
    /// `permit`: imposes its requirements, and authorises its scope once they are met.
    Permit,
    /// `forbid`: denies whatever grants or permits say.
    Forbid,
}

impl CedarEffect {
    /// `permit` or `forbid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Forbid => "forbid",
        }
    }
}

impl fmt::Display for CedarEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a permit requires before the action may go ahead (seed 002).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// `@mfa` / `@mfa("message")`: an MFA verification within its validity.
    Mfa {
        /// The message shown with the MFA prompt (`@mfa("Low device trust detected")`).
        prompt: Option<String>,
    },
    /// `@justification` / `@justification("prompt")`: the user records why.
    Justification {
        /// The prompt shown to the user.
        prompt: Option<String>,
    },
    /// `@approval("workflow")`: the action is approved via that workflow.
    Approval {
        /// The approval workflow's name.
        workflow: String,
    },
}

impl Requirement {
    /// `mfa`, `justification` or `approval`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mfa { .. } => "mfa",
            Self::Justification { .. } => "justification",
            Self::Approval { .. } => "approval",
        }
    }
}

/// One Cedar policy of a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CedarStatement {
    /// Its `@id`, used in decisions and audit records.
    pub id: String,
    /// Permit or forbid.
    pub effect: CedarEffect,
    /// A permit's requirements, in annotation order (never empty for a permit).
    pub requirements: Vec<Requirement>,
    /// A forbid's `@logout`: `Some(reason)` ends the session (`reason` empty when none was given).
    pub logout: Option<String>,
    /// A forbid's `@error("...")`: the message shown to the user.
    pub error: Option<String>,
    /// 1-based line in the policy file where the policy starts.
    pub line: Option<usize>,
    /// The policy's Cedar text.
    pub text: String,
}

/// The Cedar part of a policy (the `cedar:` key), validated against the Portcullis schema.
#[derive(Debug, Clone, Default)]
pub struct CedarPolicies {
    /// The policies, in file order.
    pub statements: Vec<CedarStatement>,
    pub(crate) sets: Option<CedarSets>,
}

/// The policies ready for evaluation, forbids and permits apart, in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct CedarSets {
    pub forbids: Vec<Check>,
    pub permits: Vec<Check>,
}

/// Which request entities a policy's conditions read (attributes, `in`), so only those are built:
/// building an entity store costs more than evaluating a condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub principal: bool,
    pub action: bool,
    pub resource: bool,
}

impl Needs {
    /// A dense index (0..8) for per-combination slots.
    pub(crate) fn index(self) -> usize {
        usize::from(self.principal)
            | usize::from(self.action) << 1
            | usize::from(self.resource) << 2
    }
}

/// One policy ready for evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// Position in [`CedarPolicies::statements`].
    pub position: usize,
    /// Its scope, decided before Cedar is asked.
    pub scope: Scope,
    /// Its `when`/`unless` conditions as a one-policy set with an unconstrained scope (the scope being
    /// decided by `scope`); `None` when it has none, so that a scope match is a match.
    pub conditions: Option<PolicySet>,
    /// The entities the conditions read; conditions on the context alone need none.
    pub needs: Needs,
    /// For a forbid: whether it can be decided before authentication (any principal; conditions read
    /// neither the principal nor the device trust).
    pub before_login: bool,
}

impl CedarPolicies {
    /// Whether there are no Cedar policies.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// How many Cedar policies there are.
    pub fn len(&self) -> usize {
        self.statements.len()
    }
}

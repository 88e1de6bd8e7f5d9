//! The explanation behind `policy explain` and the portal's explain page: what the shared pipeline
//! ([`super::decide`]) decides, collected into one serialisable report. How it is shown (a terminal
//! table, JSON, HTML) is the front end's business; what it says is decided here only.

use portcullis_sql::SearchPath;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::decide::{self, verdict_name, AssumedCatalog, Decided, Decision, Request};
use crate::{Applicability, CompiledPolicy, Component, FiredRule, Observed, Verdict};

/// Everything `policy explain` shows.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The policy explained: its file or stored version.
    pub policy: String,
    /// The gateway user.
    pub user: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The resource.
    pub resource: String,
    /// The client's address, if given.
    pub client_addr: Option<String>,
    /// The client's country, or `unknown`.
    pub location: String,
    /// The device's trust, or `unknown`.
    pub device_trust: String,
    /// The search_path names resolve along.
    pub search_path: String,
    /// The statement's time, RFC 3339.
    pub at: String,
    /// The row count given, to decide row-count rules.
    pub rows: Option<u64>,
    /// Masks, row filters and column denies, and whether each applies to this context.
    pub protections: Vec<ProtectionReport>,
    /// Each statement of the text, in order.
    pub statements: Vec<StatementReport>,
    /// The verdict for the whole text once the rows are known (a denial of any statement denies it).
    pub verdict: &'static str,
    #[serde(skip)]
    overall: Verdict,
}

impl Report {
    /// The verdict for the whole text.
    pub fn verdict(&self) -> Verdict {
        self.overall
    }
}

/// A mask, row filter or column deny and whether it applies.
#[derive(Debug, Serialize)]
pub struct ProtectionReport {
    /// The protection's id.
    pub id: String,
    /// `mask`, `row-filter` or `column-deny`.
    pub kind: &'static str,
    /// The patterns it selects, as written.
    pub targets: Vec<String>,
    /// Whether it applies to this context.
    pub applies: bool,
    /// Why it does not apply, or why it applies although a condition could not be evaluated.
    pub why: Option<String>,
}

/// One statement and what was decided for it.
#[derive(Debug, Serialize)]
pub struct StatementReport {
    /// The statement's own text.
    pub text: String,
    /// The statement kind; `None` when the text did not parse.
    pub kind: Option<String>,
    /// Why the statement cannot be fully analysed.
    pub opaque: Option<String>,
    /// Why the text could not be analysed at all.
    pub error: Option<String>,
    /// What the engine was given: each object access, then the statement.
    pub components: Vec<ComponentReport>,
    /// The rules that fired before execution, one per rule.
    pub fired: Vec<FiredReport>,
    /// Cedar forbids that applied and permits that matched.
    pub policies: Vec<PolicyReport>,
    /// Requirements of the matching permits.
    pub requirements: Vec<RequirementReport>,
    /// Object accesses no grant covers.
    pub missing_grants: Vec<MissingReport>,
    /// The verdict before execution.
    pub verdict: &'static str,
    /// Whether the session would be ended.
    pub logout: bool,
    /// Why, as the user is told.
    pub reason: String,
    /// Row-count rules are left to decide after execution (pass `--rows`).
    pub rows_rules_pending: bool,
    /// What the row-count rules decided for the rows given.
    pub outcome: Option<OutcomeReport>,
}

/// A Cedar policy that decided.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    /// The Cedar policy id.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// Why its evaluation failed, if it did.
    pub error: Option<String>,
}

/// A requirement of a matching permit.
#[derive(Debug, Serialize)]
pub struct RequirementReport {
    /// The permit that imposes it.
    pub policy: String,
    /// `mfa`, `justification` or `approval`.
    pub kind: &'static str,
    /// Whether the context meets it.
    pub met: bool,
    /// What is required, as the user is told.
    pub description: String,
}

/// One component the engine was given.
#[derive(Debug, Serialize)]
pub struct ComponentReport {
    /// Its position in the statement (what fired rules name).
    pub index: usize,
    /// `object` or `statement`.
    pub component: &'static str,
    /// The object kind (`relation`, `function`, ...) or the statement kind.
    pub kind: String,
    /// The object, qualified.
    pub object: Option<String>,
    /// What is done to the object.
    pub operation: Option<String>,
    /// The columns it touches, when known.
    pub columns: Vec<String>,
    /// The rule this component fired before execution.
    pub rule: Option<RuleRef>,
    /// The rule this component fired once the row count was known.
    pub outcome_rule: Option<RuleRef>,
}

#[derive(Debug, Clone, Serialize)]
/// A rule a component fired.
pub struct RuleRef {
    /// The rule id.
    pub id: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// What it does (`allow`, `block`, ...).
    pub action: &'static str,
}

/// A rule that fired.
#[derive(Debug, Serialize)]
pub struct FiredReport {
    /// The rule's position in the file (0-based).
    pub position: usize,
    /// The rule id.
    pub id: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// What it does.
    pub action: &'static str,
    /// How the event is rated.
    pub severity: &'static str,
    /// The message the user is shown.
    pub message: Option<String>,
    /// Indices of the components that fired it; empty when it applies to the whole statement.
    pub components: Vec<usize>,
    /// Why a condition could not be evaluated, when the rule was applied as a denial.
    pub indeterminate: Option<String>,
}

impl FiredReport {
    /// What the rule fired on, as explain words it: `the whole statement` or the components' numbers.
    pub fn fired_on(&self) -> String {
        if self.components.is_empty() {
            return "the whole statement".to_owned();
        }
        self.components
            .iter()
            .map(|c| format!("#{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An access no grant covers.
#[derive(Debug, Serialize)]
pub struct MissingReport {
    /// The object.
    pub object: String,
    /// The operation no grant covers.
    pub operation: String,
    /// The denial, in words.
    pub message: String,
}

/// What the row-count rules decided after execution.
#[derive(Debug, Serialize)]
pub struct OutcomeReport {
    /// The row count.
    pub rows: u64,
    /// The verdict once the rows are known.
    pub verdict: &'static str,
    /// The row-count rules that fired.
    pub fired: Vec<FiredReport>,
    /// Why.
    pub reason: String,
}

/// Explains `request.sql` under `policy`, named `policy_name` in the report (its file, or the stored
/// version). Unqualified names resolve as [`AssumedCatalog`] assumes: no database is asked.
pub fn explain(policy: &CompiledPolicy, policy_name: &str, request: &Request<'_>) -> Report {
    let ctx = request.ctx;
    let user = ctx.user_label().to_owned();
    let catalog = AssumedCatalog::new(request.search_path, &user);
    let decision = decide::decide(policy, request, &catalog);
    let overall = decision.verdict();
    let statements = match decision {
        Decision::Statements(statements) => statements.iter().map(statement_report).collect(),
        Decision::Unanalysable(e) => vec![StatementReport {
            text: request.sql.trim().to_owned(),
            kind: None,
            opaque: None,
            reason: decide::unanalysable_reason(&e),
            error: Some(e),
            components: Vec::new(),
            fired: Vec::new(),
            policies: Vec::new(),
            requirements: Vec::new(),
            missing_grants: Vec::new(),
            verdict: verdict_name(Verdict::Deny),
            logout: false,
            rows_rules_pending: false,
            outcome: None,
        }],
    };
    Report {
        policy: policy_name.to_owned(),
        user,
        roles: ctx.roles.clone(),
        resource: ctx.resource.clone(),
        client_addr: ctx.client_addr.map(|a| a.to_string()),
        location: match &ctx.location {
            Observed::Known(c) => c.clone(),
            Observed::Unknown => "unknown".into(),
        },
        device_trust: match &ctx.device_trust {
            Observed::Known(t) => t.to_string(),
            Observed::Unknown => "unknown".into(),
        },
        search_path: SearchPath::from_setting(request.search_path).to_setting(),
        at: request
            .now
            .format(&Rfc3339)
            .unwrap_or_else(|_| request.now.to_string()),
        rows: request.rows,
        protections: policy
            .protection_status(ctx, request.now)
            .into_iter()
            .map(|status| {
                let applies = status.applicability.applies();
                let why = match status.applicability {
                    Applicability::Applies(why) => why,
                    Applicability::OtherResource => Some("another resource".into()),
                    Applicability::Exempt(who) => Some(format!("exempt: {who}")),
                    Applicability::ConditionNotMet(why) => Some(why),
                };
                ProtectionReport {
                    applies,
                    id: status.id,
                    kind: status.kind.as_str(),
                    targets: status.targets,
                    why,
                }
            })
            .collect(),
        statements,
        verdict: verdict_name(overall),
        overall,
    }
}

fn statement_report(d: &Decided) -> StatementReport {
    let decision = &d.decision;
    let outcome = d.outcome.as_ref();
    let rule_for = |fired: &[FiredRule], i: usize| {
        fired
            .iter()
            .find(|f| f.components.contains(&i))
            .map(rule_ref)
    };
    let component_reports = d
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (component, kind, object, operation, columns) = match c {
                Component::Object(o) => (
                    "object",
                    o.kind.to_string(),
                    Some(o.display_name()),
                    Some(o.operation.to_string()),
                    o.columns.clone(),
                ),
                Component::Statement(s) => {
                    ("statement", s.kind.to_string(), None, None, Vec::new())
                }
            };
            ComponentReport {
                index: i,
                component,
                kind,
                object,
                operation,
                columns,
                rule: rule_for(&decision.fired, i),
                outcome_rule: outcome.and_then(|(_, o)| rule_for(&o.fired, i)),
            }
        })
        .collect();
    StatementReport {
        text: d.text.clone(),
        kind: Some(d.kind.to_string()),
        opaque: d.opaque.clone(),
        error: None,
        components: component_reports,
        fired: decision.fired.iter().map(fired_report).collect(),
        policies: decision
            .policies
            .iter()
            .map(|p| PolicyReport {
                id: p.id.clone(),
                effect: p.effect.as_str(),
                error: p.error.clone(),
            })
            .collect(),
        requirements: decision
            .requirements
            .iter()
            .map(|r| RequirementReport {
                policy: r.policy.clone(),
                kind: r.requirement.kind(),
                met: r.met,
                description: r.describe(),
            })
            .collect(),
        missing_grants: decision
            .missing_grants
            .iter()
            .map(|m| MissingReport {
                object: m.object.clone(),
                operation: m.operation.to_string(),
                message: m.message.clone(),
            })
            .collect(),
        verdict: verdict_name(decision.verdict),
        logout: decision.logout,
        reason: decision.reason.clone(),
        rows_rules_pending: !decision.post_execution.is_empty() && outcome.is_none(),
        outcome: outcome.map(|(rows, o)| OutcomeReport {
            rows: *rows,
            verdict: verdict_name(o.verdict),
            fired: o.fired.iter().map(fired_report).collect(),
            reason: o.reason.clone(),
        }),
    }
}

fn rule_ref(f: &FiredRule) -> RuleRef {
    RuleRef {
        id: f.id.clone(),
        name: f.name.clone(),
        action: f.action.as_str(),
    }
}

fn fired_report(f: &FiredRule) -> FiredReport {
    FiredReport {
        position: f.position,
        id: f.id.clone(),
        name: f.name.clone(),
        action: f.action.as_str(),
        severity: f.severity.as_str(),
        message: f.message.clone(),
        components: f.components.clone(),
        indeterminate: f.indeterminate.clone(),
    }
}

impl RuleRef {
    /// `id "name" (action)`, as the CLI table and the portal show a rule.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{} \"{name}\" ({})", self.id, self.action),
            None => format!("{} ({})", self.id, self.action),
        }
    }
}

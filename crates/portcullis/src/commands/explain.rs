//! The explanation behind `policy explain`: what the shared pipeline ([`super::decide`]) decides,
//! collected into a report printed as text or JSON.

use portcullis_policy::{Applicability, CompiledPolicy, Component, FiredRule, Observed, Verdict};
use portcullis_sql::SearchPath;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::decide::{self, verdict_name, AssumedCatalog, Decided, Decision, Request};
use crate::table;

/// Everything `policy explain` shows.
#[derive(Debug, Serialize)]
pub struct Report {
    policy: String,
    user: String,
    roles: Vec<String>,
    resource: String,
    client_addr: Option<String>,
    location: String,
    device_trust: String,
    search_path: String,
    at: String,
    rows: Option<u64>,
    /// Masks, row filters and column denies, and whether each applies to this context.
    protections: Vec<ProtectionReport>,
    statements: Vec<StatementReport>,
    /// The verdict for the whole text once the rows are known (a denial of any statement denies it).
    verdict: &'static str,
    #[serde(skip)]
    overall: Verdict,
}

impl Report {
    /// The verdict for the whole text.
    pub fn verdict(&self) -> Verdict {
        self.overall
    }
}

#[derive(Debug, Serialize)]
struct ProtectionReport {
    id: String,
    /// `mask`, `row-filter` or `column-deny`.
    kind: &'static str,
    /// The patterns it selects, as written.
    targets: Vec<String>,
    applies: bool,
    /// Why it does not apply, or why it applies although a condition could not be evaluated.
    why: Option<String>,
}

#[derive(Debug, Serialize)]
struct StatementReport {
    text: String,
    /// The statement kind; `None` when the text did not parse.
    kind: Option<String>,
    /// Why the statement cannot be fully analysed.
    opaque: Option<String>,
    /// Why the text could not be analysed at all.
    error: Option<String>,
    components: Vec<ComponentReport>,
    fired: Vec<FiredReport>,
    /// Cedar forbids that applied and permits that matched.
    policies: Vec<PolicyReport>,
    /// Requirements of the matching permits.
    requirements: Vec<RequirementReport>,
    missing_grants: Vec<MissingReport>,
    verdict: &'static str,
    logout: bool,
    reason: String,
    /// Row-count rules are left to decide after execution (pass `--rows`).
    rows_rules_pending: bool,
    outcome: Option<OutcomeReport>,
}

#[derive(Debug, Serialize)]
struct PolicyReport {
    id: String,
    /// `permit` or `forbid`.
    effect: &'static str,
    /// Why its evaluation failed, if it did.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RequirementReport {
    policy: String,
    /// `mfa`, `justification` or `approval`.
    kind: &'static str,
    met: bool,
    /// What is required, as the user is told.
    description: String,
}

#[derive(Debug, Serialize)]
struct ComponentReport {
    index: usize,
    /// `object` or `statement`.
    component: &'static str,
    /// The object kind (`relation`, `function`, ...) or the statement kind.
    kind: String,
    object: Option<String>,
    operation: Option<String>,
    columns: Vec<String>,
    /// The rule this component fired before execution.
    rule: Option<RuleRef>,
    /// The rule this component fired once the row count was known.
    outcome_rule: Option<RuleRef>,
}

#[derive(Debug, Clone, Serialize)]
struct RuleRef {
    id: String,
    name: Option<String>,
    action: &'static str,
}

#[derive(Debug, Serialize)]
struct FiredReport {
    position: usize,
    id: String,
    name: Option<String>,
    action: &'static str,
    severity: &'static str,
    message: Option<String>,
    /// Indices of the components that fired it; empty when it applies to the whole statement.
    components: Vec<usize>,
    indeterminate: Option<String>,
}

#[derive(Debug, Serialize)]
struct MissingReport {
    object: String,
    operation: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct OutcomeReport {
    rows: u64,
    verdict: &'static str,
    fired: Vec<FiredReport>,
    reason: String,
}

/// Explains `request.sql` under `policy`, read from `policy_file`.
pub fn explain(policy: &CompiledPolicy, policy_file: &str, request: &Request<'_>) -> Report {
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
        policy: policy_file.to_owned(),
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

fn describe_rule(r: &RuleRef) -> String {
    match &r.name {
        Some(name) => format!("{} \"{name}\" ({})", r.id, r.action),
        None => format!("{} ({})", r.id, r.action),
    }
}

/// Prints the report for a terminal.
pub fn print_text(report: &Report) {
    let roles = if report.roles.is_empty() {
        "none".to_owned()
    } else {
        report.roles.join(", ")
    };
    println!(
        "policy {}; user {} (roles: {roles}); resource {}; at {}",
        report.policy, report.user, report.resource, report.at
    );
    println!(
        "search_path {}; client {}; location {}; device trust {}",
        report.search_path,
        report.client_addr.as_deref().unwrap_or("none"),
        report.location,
        report.device_trust
    );
    for p in &report.protections {
        let state = if p.applies {
            "applies"
        } else {
            "does not apply"
        };
        let why = p
            .why
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        println!(
            "{} `{}` on {} {state}{why}",
            p.kind,
            p.id,
            p.targets.join(", ")
        );
    }
    if report.statements.is_empty() {
        println!("\nno statements");
    }
    for (n, s) in report.statements.iter().enumerate() {
        println!("\nstatement {}: {}", n + 1, s.text);
        if let Some(error) = &s.error {
            println!("error: {error}");
        }
        if let Some(why) = &s.opaque {
            println!("opaque: {why}");
        }
        if !s.components.is_empty() {
            let rows: Vec<Vec<String>> = s
                .components
                .iter()
                .map(|c| {
                    let mut rule = c.rule.as_ref().map_or("none".to_owned(), describe_rule);
                    if let Some(after) = &c.outcome_rule {
                        rule = format!("{} after rows", describe_rule(after));
                    }
                    vec![
                        c.index.to_string(),
                        c.component.to_owned(),
                        c.kind.clone(),
                        c.object.clone().unwrap_or_else(|| "-".into()),
                        c.operation.clone().unwrap_or_else(|| "-".into()),
                        rule,
                    ]
                })
                .collect();
            table::print(
                &[
                    "#",
                    "component",
                    "kind",
                    "object",
                    "operation",
                    "rule fired",
                ],
                &rows,
            );
        }
        print_fired("fired rules", &s.fired);
        for p in &s.policies {
            let error = p
                .error
                .as_deref()
                .map(|e| format!(" (evaluation failed: {e})"))
                .unwrap_or_default();
            println!("cedar {} `{}` applies{error}", p.effect, p.id);
        }
        for r in &s.requirements {
            let state = if r.met { "met" } else { "missing" };
            println!("requirement {state}: {}", r.description);
        }
        if s.missing_grants.is_empty() {
            println!("missing grants: none");
        } else {
            println!("missing grants:");
            for m in &s.missing_grants {
                println!("  {}", m.message);
            }
        }
        println!("verdict: {} ({})", s.verdict, s.reason);
        if s.logout {
            println!("the session would be ended (logout)");
        }
        if s.rows_rules_pending {
            println!("row-count rules decide after execution; pass --rows N to see the outcome");
        }
        if let Some(o) = &s.outcome {
            print_fired(&format!("after {} rows, fired rules", o.rows), &o.fired);
            println!(
                "verdict after {} rows: {} ({})",
                o.rows, o.verdict, o.reason
            );
        }
    }
}

fn print_fired(title: &str, fired: &[FiredReport]) {
    if fired.is_empty() {
        println!("{title}: none");
        return;
    }
    println!("{title}: {} (one event per rule)", fired.len());
    for f in fired {
        let on = if f.components.is_empty() {
            "the whole statement".to_owned()
        } else {
            f.components
                .iter()
                .map(|c| format!("#{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = f
            .name
            .as_ref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        let mut line = format!(
            "  [{}] {}{name}: {} (severity {}) on {on}",
            f.position + 1,
            f.id,
            f.action,
            f.severity
        );
        if let Some(m) = &f.message {
            line.push_str(&format!("; message: {m}"));
        }
        if let Some(why) = &f.indeterminate {
            line.push_str(&format!("; applied as a denial: {why}"));
        }
        println!("{line}");
    }
}

//! `policy test`: runs a case file through the pipeline `policy explain` uses
//! ([`portcullis_policy::explain::decide`]) and
//! reports every expectation the policy does not meet, so a policy change that breaks one fails CI.

use portcullis_policy::explain::{
    self as decide, verdict_name, AssumedCatalog, ContextInput, Decision, DEFAULT_SEARCH_PATH,
};
use portcullis_policy::{CompiledPolicy, Observed};
use portcullis_sql::QualifiedName;
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::one_line;
use super::policy_cases::Case;
use crate::table;

/// What became of one case.
#[derive(Debug, Serialize)]
pub struct CaseResult {
    case: String,
    line: Option<usize>,
    statement: String,
    verdict: &'static str,
    reason: String,
    /// Each expectation the policy did not meet.
    failures: Vec<Failure>,
}

/// One unmet expectation.
#[derive(Debug, Serialize)]
struct Failure {
    expected: String,
    got: String,
}

/// Every case's result and the totals.
#[derive(Debug, Serialize)]
pub struct Summary {
    policy: String,
    cases_file: String,
    passed: usize,
    failed: usize,
    cases: Vec<CaseResult>,
}

impl Summary {
    /// Whether every case passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }
}

/// Runs `cases` under `policy`; `now` is the time of cases that do not give `at`.
pub fn run(
    policy: &CompiledPolicy,
    policy_file: &str,
    cases_file: &str,
    cases: &[Case],
    now: OffsetDateTime,
) -> Summary {
    let results: Vec<CaseResult> = cases.iter().map(|c| run_case(policy, c, now)).collect();
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    Summary {
        policy: policy_file.to_owned(),
        cases_file: cases_file.to_owned(),
        passed: results.len() - failed,
        failed,
        cases: results,
    }
}

fn run_case(policy: &CompiledPolicy, case: &Case, now: OffsetDateTime) -> CaseResult {
    let s = &case.setting;
    let no_names = Vec::new();
    let ctx = ContextInput {
        user: &case.user,
        roles: s.roles.as_ref().unwrap_or(&no_names),
        resource: &case.resource,
        client_addr: s.client_addr,
        location: s
            .location
            .as_ref()
            .map_or(Observed::Unknown, |l| l.0.clone()),
        device_trust: s
            .device_trust
            .as_ref()
            .map_or(Observed::Unknown, |t| t.0.clone()),
        mfa_verified: s.mfa_verified.unwrap_or(false),
        justification: s.justification.as_deref(),
        approvals: s.approvals.as_ref().unwrap_or(&no_names),
    }
    .build();
    let now = s.at.map_or(now, |at| at.0);
    let search_path = s.search_path.as_deref().unwrap_or(DEFAULT_SEARCH_PATH);
    let request = decide::Request {
        ctx: &ctx,
        search_path,
        now,
        rows: s.rows,
        sql: &case.statement,
    };
    let catalog = AssumedCatalog::new(search_path, &case.user);
    let decision = decide::decide(policy, &request, &catalog);
    let verdict = verdict_name(decision.verdict());
    let reason = decision.reason();
    let mut failures = Vec::new();

    if verdict != case.expect.as_str() {
        failures.push(Failure {
            expected: case.expect.as_str().to_owned(),
            got: verdict.to_owned(),
        });
    }
    if let Some(needle) = &case.reason_contains {
        if !reason.contains(needle.as_str()) {
            failures.push(Failure {
                expected: format!("reason contains \"{needle}\""),
                got: "reason does not".to_owned(),
            });
        }
    }
    // Masks and row filters as the gateway builds them for this session: what it applies wherever a
    // statement reads the relation.
    let protections = policy.protections(&ctx, now);
    let relation = |schema: &str, table: &str| QualifiedName {
        schema: schema.to_owned(),
        name: table.to_owned(),
    };
    let masked = |column: &super::policy_cases::ColumnRef| {
        protections
            .protection_for(
                &relation(&column.schema, &column.table),
                std::slice::from_ref(&column.column),
            )
            .is_some_and(|p| p.masks.iter().any(|m| m.column == column.column))
    };
    for column in &case.masked {
        if !masked(column) {
            failures.push(Failure {
                expected: format!("{column} masked"),
                got: "not masked".to_owned(),
            });
        }
    }
    for column in &case.unmasked {
        if masked(column) {
            failures.push(Failure {
                expected: format!("{column} not masked"),
                got: "masked".to_owned(),
            });
        }
    }
    for table in &case.filtered {
        let filtered = protections
            .protection_for(&relation(&table.schema, &table.table), &[])
            .is_some_and(|p| !p.row_filters.is_empty());
        if !filtered {
            failures.push(Failure {
                expected: format!("row filter on {table}"),
                got: "no row filter".to_owned(),
            });
        }
    }
    let fired: Vec<&str> = match &decision {
        Decision::Statements(statements) => statements.iter().flat_map(|d| d.fired_ids()).collect(),
        Decision::Unanalysable(_) => Vec::new(),
    };
    for id in &case.fired {
        if !fired.contains(&id.as_str()) {
            failures.push(Failure {
                expected: format!("{id} fired"),
                got: if fired.is_empty() {
                    "nothing fired".to_owned()
                } else {
                    format!("fired: {}", fired.join(", "))
                },
            });
        }
    }
    CaseResult {
        case: case.label.clone(),
        line: case.line,
        statement: case.statement.trim().to_owned(),
        verdict,
        reason,
        failures,
    }
}

/// Prints every mismatch as a table, then `N passed, M failed`.
pub fn print_text(summary: &Summary) {
    let rows: Vec<Vec<String>> = summary
        .cases
        .iter()
        .flat_map(|r| {
            let case = match r.line {
                Some(line) => format!("{} ({}:{line})", r.case, summary.cases_file),
                None => r.case.clone(),
            };
            r.failures.iter().map(move |f| {
                vec![
                    case.clone(),
                    one_line(&r.statement, 50),
                    f.expected.clone(),
                    f.got.clone(),
                    // Last column: the whole reason, which is what to fix.
                    one_line(&r.reason, usize::MAX),
                ]
            })
        })
        .collect();
    if !rows.is_empty() {
        table::print(&["CASE", "STATEMENT", "EXPECTED", "GOT", "REASON"], &rows);
        println!();
    }
    println!(
        "{}: {} passed, {} failed (policy {})",
        summary.cases_file, summary.passed, summary.failed, summary.policy
    );
}

//! How `policy explain` prints its report for a terminal. The report itself — what the shared
//! pipeline decides — is built by [`portcullis_policy::explain::explain`], which the web portal's
//! explain page calls too.

use portcullis_policy::explain::{FiredReport, Report, RuleRef};

use crate::table;

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
                    let mut rule = c.rule.as_ref().map_or("none".to_owned(), RuleRef::describe);
                    if let Some(after) = &c.outcome_rule {
                        rule = format!("{} after rows", after.describe());
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
        let on = f.fired_on();
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

//! `policy what-if`: replays the statements the audit log recorded in a window through a proposed
//! policy, with the pipeline `policy explain` uses ([`portcullis_policy::explain::decide`]), and
//! reports every decision that would change, grouped by what makes the difference. It reads the store
//! and changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use portcullis_policy::explain::{
    self as decide, parse_device_trust, parse_location, verdict_name, ContextInput, Decision,
};
use portcullis_policy::{
    privilege_name, Action, CedarEffect, CompiledPolicy, Observed, Policy, Verdict,
};
use portcullis_sql::StatementKind;
use portcullis_store::{AuditEvent, AuditFilter, AuditKindFilter, PolicyTrail, StatementEvent};
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{format_micros, one_line};
use super::recorded_catalog::RecordedCatalog;

/// What to replay.
pub struct Window {
    /// Only records at or after this time (unix microseconds).
    pub since: i64,
    /// Only records before this time.
    pub until: Option<i64>,
    /// Only this resource.
    pub resource: Option<String>,
    /// Only this user.
    pub user: Option<String>,
}

/// What the replay found.
#[derive(Debug, Serialize)]
pub struct Report {
    policy: String,
    since: String,
    until: Option<String>,
    /// Statement decisions replayed.
    replayed: usize,
    unchanged: usize,
    /// Decisions that would change, grouped by change and cause, largest group first.
    changes: Vec<ChangeGroup>,
    /// Records that could not be replayed, by why.
    not_replayed: Vec<Skipped>,
    /// What the replay had to assume because the audit log does not record it.
    notes: Vec<String>,
}

impl Report {
    /// How many decisions would change.
    pub fn changed(&self) -> usize {
        self.changes.iter().map(|g| g.count).sum()
    }
}

#[derive(Debug, Serialize)]
struct ChangeGroup {
    /// The recorded verdict.
    from: String,
    /// The verdict under the new policy.
    to: &'static str,
    /// What makes the difference: the new policy's denying rules, forbids, missing grants and unmet
    /// requirements, or what denied before and no longer does.
    because: Vec<String>,
    count: usize,
    statements: Vec<Changed>,
}

#[derive(Debug, Serialize)]
struct Changed {
    /// The audit record's id.
    id: i64,
    at: String,
    user: String,
    resource: String,
    text: String,
    recorded_reason: String,
    new_reason: String,
}

#[derive(Debug, Serialize)]
struct Skipped {
    why: &'static str,
    count: usize,
}

const NO_TRAIL: &str =
    "refused before the policy was asked (syntax error or unsupported request); no decision to compare";
const SQL_EXECUTE: &str =
    "EXECUTE of a prepared statement: the record holds `EXECUTE name`, not the prepared text";
const NO_RESULT: &str = "the record has no recorded verdict";

/// Replays the statements of `window` from `store` under `policy` (read from `policy_file`).
pub fn replay(
    store: &portcullis_store::Store,
    policy: &Policy,
    policy_file: &str,
    window: &Window,
) -> anyhow::Result<Report> {
    let records = store.query_audit(&AuditFilter {
        user: window.user.clone(),
        resource: window.resource.clone(),
        since: Some(window.since),
        until: window.until,
        kind: Some(AuditKindFilter::Statements),
        limit: 0,
        ..AuditFilter::default()
    })?;
    // Grants of approved access requests are part of the policy the gateway enforces; each applies
    // from its approval on, so statements recorded before it are replayed without it.
    let since = from_micros(window.since);
    let mut with_approved = policy.clone();
    with_approved
        .grants
        .extend(portcullis_workflows::grants_approved_since(
            store, policy, since,
        )?);
    let compiled = CompiledPolicy::compile(&with_approved);
    let rule_workflows: HashMap<&str, &str> = policy
        .rules
        .iter()
        .filter_map(|r| Some((r.id.as_str(), r.workflow.as_deref()?)))
        .collect();
    let roles: HashMap<String, Vec<String>> = store
        .list_users()?
        .into_iter()
        .map(|u| (u.name, u.roles))
        .collect();

    let mut groups: BTreeMap<(String, &'static str, Vec<String>), Vec<Changed>> = BTreeMap::new();
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut gone_users: HashSet<String> = HashSet::new();
    let mut without_roles = 0usize;
    let (mut replayed, mut unchanged) = (0, 0);
    // Oldest first, so examples read in the order things happened.
    for record in records.iter().rev() {
        let AuditEvent::Statement(s) = &record.event else {
            continue;
        };
        let Some(trail) = &s.policy else {
            *skipped.entry(NO_TRAIL).or_default() += 1;
            continue;
        };
        if !matches!(trail.result.as_str(), "allow" | "deny" | "require-approval") {
            *skipped.entry(NO_RESULT).or_default() += 1;
            continue;
        }
        let user_roles = match (&trail.roles, roles.get(&s.user)) {
            (Some(recorded), _) => recorded.as_slice(),
            (None, Some(current)) => {
                without_roles += 1;
                current.as_slice()
            }
            (None, None) => {
                without_roles += 1;
                gone_users.insert(s.user.clone());
                &[]
            }
        };
        let decision = replay_one(&compiled, s, trail, user_roles, &rule_workflows);
        if let Decision::Statements(statements) = &decision {
            if statements.iter().any(|d| d.kind == StatementKind::Execute) {
                *skipped.entry(SQL_EXECUTE).or_default() += 1;
                continue;
            }
        }
        replayed += 1;
        let now = verdict_name(decision.verdict());
        if now == trail.result {
            unchanged += 1;
            continue;
        }
        let because = if decision.verdict() == Verdict::Allow {
            lifted(trail)
        } else {
            imposed(&decision)
        };
        groups
            .entry((trail.result.clone(), now, because))
            .or_default()
            .push(Changed {
                id: record.id,
                at: format_micros(s.at),
                user: s.user.clone(),
                resource: s.resource.clone(),
                text: s.text.clone(),
                recorded_reason: trail.reason.clone(),
                new_reason: decision.reason(),
            });
    }

    let mut changes: Vec<ChangeGroup> = groups
        .into_iter()
        .map(|((from, to, because), statements)| ChangeGroup {
            from,
            to,
            because,
            count: statements.len(),
            statements,
        })
        .collect();
    changes.sort_by_key(|g| std::cmp::Reverse(g.count));
    let mut notes = Vec::new();
    if without_roles > 0 {
        notes.push(format!(
            "{without_roles} records predate recorded roles: replayed with the users' current memberships"
        ));
    }
    notes.extend([
        "the session's search_path is not recorded: unqualified names resolve to the schemas recorded \
         with each statement"
            .to_owned(),
        "MFA counts as done only where the recorded decision shows an MFA requirement met".to_owned(),
    ]);
    let mut gone: Vec<String> = gone_users.into_iter().collect();
    gone.sort();
    if !gone.is_empty() {
        notes.push(format!(
            "no longer users, replayed without roles: {}",
            gone.join(", ")
        ));
    }
    Ok(Report {
        policy: policy_file.to_owned(),
        since: format_micros(window.since),
        until: window.until.map(format_micros),
        replayed,
        unchanged,
        changes,
        not_replayed: skipped
            .into_iter()
            .map(|(why, count)| Skipped { why, count })
            .collect(),
        notes,
    })
}

/// Decides one recorded statement again, in the context its record shows.
fn replay_one(
    policy: &CompiledPolicy,
    s: &StatementEvent,
    trail: &PolicyTrail,
    roles: &[String],
    rule_workflows: &HashMap<&str, &str>,
) -> Decision {
    let client_addr = s
        .client_addr
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| s.client_addr.parse::<IpAddr>())
        .ok();
    let mut approvals: Vec<String> = trail
        .requirements
        .iter()
        .filter(|r| r.kind == "approval" && r.met)
        .filter_map(|r| r.detail.clone())
        .collect();
    // A statement a require-approval rule let through had been approved: replay it with that approval.
    if trail.result == "allow" {
        approvals.extend(
            trail
                .rules
                .iter()
                .filter(|r| r.action == Action::RequireApproval.as_str())
                .filter_map(|r| rule_workflows.get(r.id.as_str()))
                .map(|w| (*w).to_owned()),
        );
    }
    let ctx = ContextInput {
        user: &s.user,
        roles,
        resource: &s.resource,
        client_addr,
        location: parse_location(&trail.location).unwrap_or(Observed::Unknown),
        device_trust: parse_device_trust(&trail.device_trust).unwrap_or(Observed::Unknown),
        mfa_verified: trail.requirements.iter().any(|r| r.kind == "mfa" && r.met),
        justification: trail.justification.as_deref(),
        approvals: &approvals,
    }
    .build();
    let catalog = RecordedCatalog::new(s);
    let search_path = catalog.search_path();
    let request = decide::Request {
        ctx: &ctx,
        search_path: &search_path,
        now: from_micros(s.at),
        rows: s.rows,
        sql: &s.text,
    };
    decide::decide(policy, &request, &catalog)
}

/// What makes the new decision deny or hold the statement.
fn imposed(decision: &Decision) -> Vec<String> {
    let statements = match decision {
        Decision::Unanalysable(e) => return vec![decide::unanalysable_reason(e)],
        Decision::Statements(statements) => statements,
    };
    let mut because = Vec::new();
    for d in statements {
        if let Some(why) = &d.opaque {
            because.push(format!("cannot be fully analysed: {why}"));
        }
        for p in &d.decision.policies {
            if p.effect == CedarEffect::Forbid {
                because.push(format!("forbid `{}`", p.id));
            }
        }
        let after = d.outcome.iter().flat_map(|(_, o)| o.fired.iter());
        for f in d.decision.fired.iter().chain(after) {
            if f.denies() || f.action == Action::RequireApproval {
                because.push(format!("{} rule `{}`", f.action.as_str(), f.id));
            }
        }
        for m in &d.decision.missing_grants {
            because.push(format!(
                "no grant of {} on {}",
                privilege_name(m.operation),
                m.object
            ));
        }
        for r in d.decision.requirements.iter().filter(|r| !r.met) {
            because.push(r.describe());
        }
    }
    if because.is_empty() {
        because.push(decision.reason());
    }
    because.sort();
    because.dedup();
    because
}

/// What denied or held the recorded statement and no longer does.
fn lifted(trail: &PolicyTrail) -> Vec<String> {
    let mut because: Vec<String> = trail
        .rules
        .iter()
        .filter(|r| {
            matches!(
                r.action.as_str(),
                "block" | "logout" | "forbid" | "require-approval"
            )
        })
        .map(|r| format!("{} `{}` no longer applies", r.action, r.id))
        .chain(trail.missing_grants.iter().map(|m| {
            // Recorded as `alice lacks SELECT on hr.employees in app`; the user is in the example.
            let what = m
                .split_once(" lacks ")
                .map(|(_, rest)| rest.rsplit_once(" in ").map_or(rest, |(w, _)| w))
                .unwrap_or(m);
            format!("now granted: {what}")
        }))
        .chain(
            trail
                .requirements
                .iter()
                .filter(|r| !r.met)
                .map(|r| format!("no longer required: {} by `{}`", r.kind, r.policy)),
        )
        .collect();
    if because.is_empty() {
        because.push(format!("recorded reason: {}", trail.reason));
    }
    because.sort();
    because.dedup();
    because
}

fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Prints the report for a terminal, with up to `examples` statements per group (0: all).
pub fn print_text(report: &Report, examples: usize) {
    let until = report.until.as_deref().unwrap_or("now");
    println!(
        "policy {} replayed against {} statement decisions recorded from {} to {until}",
        report.policy, report.replayed, report.since
    );
    for g in &report.changes {
        let noun = if g.count == 1 {
            "statement"
        } else {
            "statements"
        };
        println!(
            "\n{} -> {}: {} {noun}, because {}",
            g.from,
            g.to,
            g.count,
            g.because.join("; ")
        );
        let shown = if examples == 0 { g.count } else { examples };
        for c in g.statements.iter().take(shown) {
            println!(
                "  #{} {} {} on {}: {}",
                c.id,
                c.at,
                c.user,
                c.resource,
                one_line(&c.text, 100)
            );
        }
        if g.count > shown {
            println!("  … and {} more (--examples 0 lists all)", g.count - shown);
        }
    }
    let mut by_change: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for g in &report.changes {
        *by_change.entry((g.from.clone(), g.to)).or_default() += g.count;
    }
    let kinds: Vec<String> = by_change
        .iter()
        .map(|((from, to), n)| format!("{n} {from} -> {to}"))
        .collect();
    let changed = report.changed();
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    println!(
        "\n{} replayed: {changed} would change{kinds}, {} unchanged",
        report.replayed, report.unchanged
    );
    for s in &report.not_replayed {
        println!("not replayed: {} ({})", s.count, s.why);
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store::{FiredRuleRecord, PolicyTrail, RequirementRecord};

    use super::lifted;

    #[test]
    fn what_no_longer_denies_is_named_without_the_user() {
        let trail = PolicyTrail {
            result: "deny".into(),
            rules: vec![
                FiredRuleRecord {
                    id: "no_hr_deletes".into(),
                    action: "block".into(),
                    ..FiredRuleRecord::default()
                },
                FiredRuleRecord {
                    id: "hr-audit".into(),
                    action: "audit".into(),
                    ..FiredRuleRecord::default()
                },
            ],
            missing_grants: vec!["bob lacks DELETE on hr.employees in app".into()],
            requirements: vec![RequirementRecord {
                kind: "mfa".into(),
                policy: "prod-mfa".into(),
                met: false,
                detail: None,
            }],
            ..PolicyTrail::default()
        };
        assert_eq!(
            lifted(&trail),
            [
                "block `no_hr_deletes` no longer applies",
                "no longer required: mfa by `prod-mfa`",
                "now granted: DELETE on hr.employees",
            ]
        );
    }
}

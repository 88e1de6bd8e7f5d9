//! Loading the `cedar:` text: parse, check annotations, validate strictly against the Portcullis schema,
//! and report every problem at its `file:line:column` in the YAML file with Cedar's hint on how to fix it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet, PrincipalConstraint, ValidationMode, Validator};
use miette::Diagnostic;

use crate::cedar::annotations;
use crate::cedar::policies::{CedarEffect, CedarPolicies, CedarSets, CedarStatement, Check, Needs};
use crate::cedar::scope::Scope;
use crate::cedar::source_map::{Position, SourceMap};
use crate::cedar::vocabulary::Vocabulary;
use crate::error::PolicyError;

/// Parses and validates `text`, the value of the `cedar:` key of `yaml`. `rule_ids` are the file's rule
/// ids, which Cedar `@id`s must not repeat; `workflows` the workflows it defines, which `@approval`s
/// must name.
pub(crate) fn load(
    text: &str,
    yaml: &str,
    file: &str,
    rule_ids: &HashSet<&str>,
    workflows: &HashSet<String>,
) -> Result<CedarPolicies, Vec<PolicyError>> {
    let map = SourceMap::locate(yaml, text);
    let located = |offset: usize, message: String| {
        let Position { line, column, note } = map.position(text, offset);
        PolicyError {
            file: file.to_owned(),
            line,
            column,
            message: format!("{message}{note}"),
        }
    };
    let vocabulary = Vocabulary::get().map_err(|e| {
        let Position { line, column, .. } = map.key();
        vec![PolicyError {
            file: file.to_owned(),
            line,
            column,
            message: e,
        }]
    })?;

    let set = PolicySet::from_str(text).map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                let offset = first_label(e).unwrap_or(0);
                located(
                    offset,
                    format!("Cedar syntax error: {}", with_help(e, None)),
                )
            })
            .collect::<Vec<_>>()
    })?;

    let mut errors = Vec::new();
    for t in set.templates() {
        let offset = text.find(t.to_cedar().as_str()).unwrap_or(0);
        errors.push(located(offset, "Cedar templates (`?principal`, `?resource`) are not supported; name the entity, e.g. `principal == User::\"alice\"`".into()));
    }

    // Policies in file order (the parser numbers them policy0, policy1, ...), with their offsets.
    let mut policies: Vec<&Policy> = set.policies().collect();
    policies.sort_by_key(|p| number(p.id()));
    let mut statements: Vec<(CedarStatement, &Policy)> = Vec::new();
    let mut ids: HashMap<PolicyId, String> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = 0;
    for policy in policies {
        let source = policy.to_cedar().unwrap_or_default();
        let start = text
            .get(cursor..)
            .and_then(|rest| rest.find(source.as_str()))
            .map_or(cursor, |i| cursor + i);
        cursor = start + source.len();
        let line = map.position(text, start).line;
        if let Some(id) = policy.annotation("id") {
            ids.insert(policy.id().clone(), id.to_owned());
        }
        match annotations::statement(policy, &source, line) {
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| located(start + p.offset, p.message)),
            ),
            Ok(statement) => {
                if !seen.insert(statement.id.clone()) {
                    errors.push(located(
                        start,
                        format!(
                            "duplicate Cedar policy id `{}`; every policy needs its own @id",
                            statement.id
                        ),
                    ));
                } else if rule_ids.contains(statement.id.as_str()) {
                    errors.push(located(start, format!("Cedar policy id `{}` is also a rule id; give the policy another @id so audit records tell them apart", statement.id)));
                }
                for requirement in &statement.requirements {
                    if let crate::cedar::Requirement::Approval { workflow } = requirement {
                        if !workflows.contains(workflow) {
                            errors.push(located(start, format!("permit `{}` names workflow `{workflow}` in @approval, which this policy does not define; add it under `workflows:` (a workflow that does not exist could never approve)", statement.id)));
                        }
                    }
                }
                statements.push((statement, policy));
            }
        }
    }

    let validator = Validator::new(vocabulary.schema.clone());
    let result = validator.validate(&set, ValidationMode::Strict);
    // Warnings too (an impossible policy, an action that cannot apply): each is a mistake.
    let diagnostics = result
        .validation_errors()
        .map(|e| e as &dyn Diagnostic)
        .chain(result.validation_warnings().map(|w| w as &dyn Diagnostic));
    let mut reported: HashSet<(usize, String)> = HashSet::new();
    for d in diagnostics {
        let offset = first_label(d).unwrap_or(0);
        // The validator reports a problem once per action the policy applies to; the message (without
        // the action) once is enough.
        let message = validation_message(d, &ids);
        if reported.insert((offset, message.clone())) {
            errors.push(located(offset, message));
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(errors);
    }
    build(statements).map_err(|message| {
        let Position { line, column, .. } = map.key();
        vec![PolicyError {
            file: file.to_owned(),
            line,
            column,
            message,
        }]
    })
}

/// The evaluation checks, in file order.
fn build(statements: Vec<(CedarStatement, &Policy)>) -> Result<CedarPolicies, String> {
    let mut sets = CedarSets::default();
    let mut out = Vec::new();
    for (position, (statement, policy)) in statements.into_iter().enumerate() {
        let json = policy.to_json().map_err(|e| {
            format!(
                "internal error converting Cedar policy `{}`: {e}",
                statement.id
            )
        })?;
        let conditions = json
            .get("conditions")
            .map(|c| c.to_string())
            .unwrap_or_default();
        let reads = |var: &str| conditions.contains(&format!("\"Var\":\"{var}\""));
        let check = Check {
            position,
            scope: Scope::of(policy),
            conditions: conditions_only(policy, json, &statement.id)?,
            needs: Needs {
                principal: reads("principal"),
                action: reads("action"),
                resource: reads("resource"),
            },
            before_login: statement.effect == CedarEffect::Forbid
                && policy.principal_constraint() == PrincipalConstraint::Any
                && !reads("principal")
                && !conditions.contains("device_trust"),
        };
        match statement.effect {
            CedarEffect::Forbid => sets.forbids.push(check),
            CedarEffect::Permit => sets.permits.push(check),
        }
        out.push(statement);
    }
    Ok(CedarPolicies {
        statements: out,
        sets: Some(sets),
    })
}

/// `policy` with its scope opened up (`principal, action, resource`), as a one-policy set, or `None` when
/// it has no conditions. Its scope is checked by [`Scope`] instead.
fn conditions_only(
    policy: &Policy,
    mut json: serde_json::Value,
    id: &str,
) -> Result<Option<PolicySet>, String> {
    if !policy.has_non_scope_constraint() {
        return Ok(None);
    }
    let internal =
        |e: &dyn std::fmt::Display| format!("internal error preparing Cedar policy `{id}`: {e}");
    for var in ["principal", "action", "resource"] {
        if let Some(v) = json.get_mut(var) {
            *v = serde_json::json!({ "op": "All" });
        }
    }
    let opened = Policy::from_json(Some(PolicyId::new(id)), json).map_err(|e| internal(&e))?;
    PolicySet::from_policies([opened])
        .map(Some)
        .map_err(|e| internal(&e))
}

/// `3` for `policy3`.
fn number(id: &PolicyId) -> usize {
    id.to_string()
        .trim_start_matches("policy")
        .parse()
        .unwrap_or(usize::MAX)
}

fn first_label(d: &dyn Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

/// Cedar's message with its help appended (`...; did you mean `location`?`).
fn with_help(d: &dyn Diagnostic, fallback: Option<&str>) -> String {
    let help = d.help().map(|h| h.to_string());
    match help.as_deref().or(fallback) {
        Some(h) => format!("{d}; {h}"),
        None => d.to_string(),
    }
}

/// A validation message naming the policy by its `@id` instead of Cedar's `policyN`.
fn validation_message(d: &dyn Diagnostic, ids: &HashMap<PolicyId, String>) -> String {
    let message = with_help(
        d,
        Some("fix the policy or remove it (the schema is described in CEDAR.md)"),
    );
    let Some(rest) = message.strip_prefix("for policy `") else {
        return format!("Cedar validation: {message}");
    };
    let Some((cedar_id, rest)) = rest.split_once('`') else {
        return format!("Cedar validation: {message}");
    };
    let rest = rest.trim_start_matches([',', ':']).trim_start();
    let name = ids
        .get(&PolicyId::new(cedar_id))
        .cloned()
        .unwrap_or_else(|| cedar_id.to_owned());
    format!("Cedar policy `{name}`: {}", without_action(rest))
}

/// Drops ` for Action::"select"` from a message: the problem is reported once for every action.
fn without_action(message: &str) -> String {
    const MARK: &str = " for Action::\"";
    match message.find(MARK) {
        Some(start) => {
            let after = start + MARK.len();
            let end = message
                .get(after..)
                .and_then(|r| r.find('"'))
                .map_or(message.len(), |i| after + i + 1);
            format!(
                "{}{}",
                message.get(..start).unwrap_or(""),
                message.get(end..).unwrap_or("")
            )
        }
        None => message.to_owned(),
    }
}

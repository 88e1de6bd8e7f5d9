//! Startup parameters are session settings the client picks before its first statement. The server
//! applies each as `SET` would, so each is decided as the `SET` statement that makes it: the startup
//! packet must be no way around what a statement may not do (`-c role=postgres`, `-c log_statement=none`).

use std::sync::Arc;

use portcullis_policy::{Component, SessionCache, StatementComponent, Verdict};
use portcullis_sql::{quote_ident, MemoryCatalog, SearchPath, JUSTIFICATION_SETTING};
use portcullis_store::AuditEvent;

use super::statement::{Outcome, Refusal, Run};
use super::{Refused, SessionInfo};
use crate::listener::Shared;
use crate::policy;

/// Top-level startup parameters that are no session setting, or one every driver sends whose `SET`
/// changes nothing a policy decides (`options` is split into its settings instead).
const NOT_DECIDED: &[&str] = &[
    "user",
    "database",
    "options",
    "replication",
    "application_name",
    "client_encoding",
];

/// Why a startup parameter cannot be decided at all.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// The settings the client's startup parameters make, as `(name, value)` in the order the server applies
/// them: top-level parameters, then each `-c name=value` / `--name=value` of `options`.
pub fn settings(params: &[(String, String)]) -> Result<Vec<(String, String)>, Unreadable> {
    let mut settings = Vec::new();
    for (name, value) in params {
        if name == "options" {
            settings.extend(options_settings(value)?);
        } else if !NOT_DECIDED.contains(&name.as_str()) && !name.starts_with("_pq_.") {
            settings.push((name.clone(), value.clone()));
        }
    }
    Ok(settings)
}

/// The justification the startup packet gives (`options='-c portcullis.justification=…'`), the last one
/// if several: it meets a connect-stage `@justification` permit, which no statement could, and holds for
/// the session as `SET portcullis.justification` would.
pub fn justification(params: &[(String, String)]) -> Option<String> {
    settings(params)
        .ok()?
        .into_iter()
        .rev()
        .find(|(name, _)| name.eq_ignore_ascii_case(JUSTIFICATION_SETTING))
        .map(|(_, value)| value)
}

/// Splits `options` as the server does (`pg_split_opts`: whitespace separates, a backslash makes the
/// next character literal) and reads each switch as its command-line parser would. Only the switches
/// that set one named setting are accepted: the others (`-B`, `-d`, `-e`, clusters such as `-ec`) set
/// settings under other names, so reading them would mean re-implementing the server's switch table.
fn options_settings(options: &str) -> Result<Vec<(String, String)>, Unreadable> {
    let mut words = Vec::new();
    let mut chars = options.chars().peekable();
    // C's isspace in the server's locale-independent use: space, \t, \n, \v, \f, \r.
    let space = |c: &char| matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r');
    loop {
        while chars.next_if(space).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut escaped = false;
        while let Some(c) = chars.peek().copied() {
            if space(&c) && !escaped {
                break;
            }
            chars.next();
            if !escaped && c == '\\' {
                escaped = true;
            } else {
                escaped = false;
                word.push(c);
            }
        }
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words.next().ok_or_else(|| {
                Unreadable("the startup option -c is missing its name=value".into())
            })?
        } else if let Some(rest) = word.strip_prefix("--").or_else(|| word.strip_prefix("-c")) {
            rest.to_string()
        } else {
            return Err(Unreadable(format!(
                "the startup option {word:?} is not supported through the gateway; use -c name=value"
            )));
        };
        let Some((name, value)) = assignment.split_once('=') else {
            return Err(Unreadable(format!(
                "the startup option {assignment:?} has no value"
            )));
        };
        // The server's ParseLongOption reads dashes in the name as underscores.
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

/// The `SET` statement that has the effect of startup setting `name` = `value`. Setting names are
/// case-insensitive to the server, so the name is lower-cased; each dotted part is quoted as needed.
pub fn set_statement(name: &str, value: &str) -> String {
    let name = name
        .to_lowercase()
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".");
    format!("SET {name} = '{}'", value.replace('\'', "''"))
}

/// Decides every setting the client's startup parameters make, as the statement `SET` that would make
/// it; the first one the policy does not allow refuses the login. Its refused `SET` is recorded like
/// a refused statement, so the monitor shows the rule or grant that decided.
pub(super) async fn decide(
    shared: &Shared,
    info: &SessionInfo,
    params: &[(String, String)],
) -> Result<(), Refused> {
    let settings = settings(params).map_err(|Unreadable(why)| {
        Refused::new(
            "0A000",
            why.clone(),
            format!("startup options refused: {why}"),
        )
    })?;
    for (name, value) in settings {
        let sql = set_statement(&name, &value);
        let Err((refusal, run)) = decide_one(shared, info, &sql) else {
            continue;
        };
        let why = refusal
            .message
            .strip_prefix("portcullis denied the statement: ")
            .or_else(|| {
                refusal
                    .message
                    .strip_prefix("portcullis refused the statement: ")
            })
            .unwrap_or(&refusal.message)
            .to_string();
        if let Some(run) = run {
            let event: AuditEvent =
                run.into_event(&Arc::new(info.clone()), Outcome::Refused(&refusal));
            if let Err(e) = shared.audit.record(event).durable().await {
                tracing::error!(error = %e, "could not record a refused startup parameter");
                return Err(Refused::new(
                    "58000",
                    "the audit log is unavailable",
                    "audit unavailable",
                ));
            }
        }
        return Err(Refused::new(
            "42501",
            format!("startup parameter {name} is not allowed: {why}"),
            format!("startup parameter {name} refused: {why}"),
        ));
    }
    Ok(())
}

/// Runs `sql` through the analysis and the statement policy the session's statements go through.
fn decide_one(
    shared: &Shared,
    info: &SessionInfo,
    sql: &str,
) -> Result<(), (Refusal, Option<Box<Run>>)> {
    let analysis = shared
        .analyzer
        .analyze(sql)
        .map_err(|e| (Refusal::unanalysable(e), None))?;
    let [statement] = analysis.statements.as_slice() else {
        return Err((
            Refusal::unanalysable("the setting does not read as one SET statement"),
            None,
        ));
    };
    // A SET names no relation, so no search path or catalog is needed to resolve its objects.
    let mut run = Run::analysed(
        statement,
        statement,
        0,
        &SearchPath::default_path(),
        "",
        &MemoryCatalog::new(),
    );
    let active = shared.policy.current();
    let Some(version) = active.version else {
        return Err((Refusal::denied(policy::NO_POLICY), Some(Box::new(run))));
    };
    let now = shared.mfa.now();
    let mut ctx = info.ctx.clone();
    ctx.mfa_verified = shared.mfa.verified(&info.user, &info.resource, now);
    let decision = active.compiled.evaluate_statement_cached(
        &ctx,
        &run.components,
        now,
        &mut SessionCache::new(),
    );
    let actions = run.components.iter().map(Component::describe).collect();
    run.policy = Some(policy::statement_trail(
        Some(version),
        &ctx,
        actions,
        &decision,
    ));
    // A login cannot wait for an approval or an MFA verification: whatever is not allowed is refused.
    if decision.verdict == Verdict::Allow {
        return Ok(());
    }
    let refusal = match run.components.iter().find_map(Component::as_statement) {
        Some(StatementComponent {
            opaque: Some(why), ..
        }) => Refusal::unanalysable(why),
        _ => Refusal::denied(&decision.reason),
    };
    if let Some(trail) = run.policy.as_mut() {
        trail.result = "deny".into();
        trail.reason.clone_from(&refusal.message);
    }
    Err((refusal, Some(Box::new(run))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_split_as_the_server_splits_them() {
        let got = settings(&params(&[
            ("user", "alice"),
            ("application_name", "psql"),
            ("DateStyle", "ISO"),
            (
                "options",
                r"-c role=postgres  -csearch_path=hr\ ,\ public --log-statement=none -c a.b=x\\y",
            ),
            ("_pq_.x", "1"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("DateStyle".to_string(), "ISO".to_string()),
                ("role".into(), "postgres".into()),
                ("search_path".into(), "hr , public".into()),
                ("log_statement".into(), "none".into()),
                ("a.b".into(), r"x\y".into()),
            ]
        );
    }

    #[test]
    fn other_switches_and_missing_values_are_unreadable() {
        for options in ["-e", "-ec role=x", "-c", "-c role", "role=x", "-B 100"] {
            assert!(
                settings(&params(&[("options", options)])).is_err(),
                "{options}"
            );
        }
    }

    #[test]
    fn set_statements_quote_names_and_values() {
        assert_eq!(set_statement("Role", "postgres"), "SET role = 'postgres'");
        assert_eq!(
            set_statement("search_path", "it's"),
            "SET search_path = 'it''s'"
        );
        assert_eq!(set_statement("My.Setting", "v"), "SET my.setting = 'v'");
        assert_eq!(set_statement("a b", "v"), "SET \"a b\" = 'v'");
    }
}

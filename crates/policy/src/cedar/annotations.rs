//! Annotations: what a permit requires (`@mfa`, `@justification`, `@approval`), what a forbid does
//! (`@logout`, `@error`), and every policy's `@id`. A permit without a requirement is invalid (seed 002:
//! plain access is what grants are for), and an annotation on the wrong effect is an error rather than
//! something silently ignored.

use cedar_policy::{Effect, Policy};

use crate::cedar::policies::{CedarEffect, CedarStatement, Requirement};

const COMMON: &[&str] = &["id", "description"];
const PERMIT_ONLY: &[&str] = &["mfa", "justification", "approval"];
const FORBID_ONLY: &[&str] = &["logout", "error"];

/// A problem with one policy's annotations, at a byte offset into the policy's own text.
pub(crate) struct AnnotationError {
    pub offset: usize,
    pub message: String,
}

/// Reads `policy`'s annotations; `text` is the policy's source (for error positions).
pub(crate) fn statement(
    policy: &Policy,
    text: &str,
    line: Option<usize>,
) -> Result<CedarStatement, Vec<AnnotationError>> {
    let effect = match policy.effect() {
        Effect::Permit => CedarEffect::Permit,
        Effect::Forbid => CedarEffect::Forbid,
    };
    let mut errors = Vec::new();
    let at = |key: &str| annotation_offset(text, key);
    for (key, _) in policy.annotations() {
        let (wrong, right) = match effect {
            CedarEffect::Permit => (FORBID_ONLY, "forbid"),
            CedarEffect::Forbid => (PERMIT_ONLY, "permit"),
        };
        if wrong.contains(&key) {
            let why = match effect {
                CedarEffect::Forbid => "a forbid has no requirements: nothing the user does lifts it; write a separate permit",
                CedarEffect::Permit => "a permit does not deny; write a separate forbid",
            };
            errors.push(AnnotationError {
                offset: at(key),
                message: format!("`@{key}` applies to {right} policies only ({why})"),
            });
        } else if !COMMON.contains(&key)
            && !PERMIT_ONLY.contains(&key)
            && !FORBID_ONLY.contains(&key)
        {
            errors.push(AnnotationError {
                offset: at(key),
                message: format!(
                    "unknown annotation `@{key}`; use @id and @description, on permits @mfa, @justification(\"prompt\") and @approval(\"workflow\"), on forbids @logout(\"reason\") and @error(\"message\")"
                ),
            });
        }
    }
    let value = |key: &str| policy.annotation(key).map(|v| v.trim().to_owned());
    let optional = |v: Option<String>| v.filter(|s| !s.is_empty());
    let id = match value("id") {
        Some(id) if !id.is_empty() => id,
        Some(_) => {
            errors.push(AnnotationError {
                offset: at("id"),
                message: "`@id` is empty; give the policy a name such as @id(\"forbid-low-trust\")"
                    .into(),
            });
            String::new()
        }
        None => {
            errors.push(AnnotationError {
                offset: 0,
                message: "this Cedar policy has no `@id`; add one such as @id(\"forbid-low-trust\") before it, so decisions and audit records name it stably".into(),
            });
            String::new()
        }
    };
    let mut requirements = Vec::new();
    let mut logout = None;
    let mut error = None;
    match effect {
        CedarEffect::Permit => {
            if let Some(v) = value("mfa") {
                requirements.push(Requirement::Mfa {
                    prompt: optional(Some(v)),
                });
            }
            if let Some(v) = value("justification") {
                requirements.push(Requirement::Justification {
                    prompt: optional(Some(v)),
                });
            }
            match value("approval") {
                Some(w) if w.is_empty() => errors.push(AnnotationError {
                    offset: at("approval"),
                    message: "`@approval` needs the workflow's name, e.g. @approval(\"management-approval\")".into(),
                }),
                Some(workflow) => requirements.push(Requirement::Approval { workflow }),
                None => {}
            }
            if requirements.is_empty() && !PERMIT_ONLY.iter().any(|k| value(k).is_some()) {
                errors.push(AnnotationError {
                    offset: keyword_offset(text, "permit"),
                    message: "a permit needs at least one requirement: add @mfa, @justification(\"prompt\") or @approval(\"workflow\"); to give plain access, write a grant".into(),
                });
            }
        }
        CedarEffect::Forbid => {
            logout = value("logout");
            match value("error") {
                Some(e) if e.is_empty() => errors.push(AnnotationError {
                    offset: at("error"),
                    message: "`@error` needs the message shown to the user, e.g. @error(\"device not trusted\"); remove it to use the default".into(),
                }),
                e => error = e,
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CedarStatement {
        id,
        effect,
        requirements,
        logout,
        error,
        line,
        text: text.to_owned(),
    })
}

/// Offset of `@key` in `text` (0 when not found: the policy's start).
fn annotation_offset(text: &str, key: &str) -> usize {
    let needle = format!("@{key}");
    text.match_indices(&needle)
        .find(|(i, _)| {
            text.get(i + needle.len()..)
                .and_then(|r| r.chars().next())
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
        .map_or(0, |(i, _)| i)
}

/// Offset of the effect keyword (`permit(`) in `text`.
fn keyword_offset(text: &str, keyword: &str) -> usize {
    text.match_indices(keyword)
        .find(|(i, _)| {
            let before_ok = text
                .get(..*i)
                .and_then(|b| b.chars().next_back())
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"'));
            let after_ok = text
                .get(i + keyword.len()..)
                .is_some_and(|r| r.trim_start().starts_with('('));
            before_ok && after_ok
        })
        .map_or(0, |(i, _)| i)
}

//! Row-filter predicates: session variables (`:user.name`) become positional parameters (`$1`), and the
//! result must parse as one boolean expression without subqueries.
//!
//! The scanner follows PostgreSQL's lexer far enough to know what is *not* code: quoted strings (`'…'`,
//! `E'…'` with backslash escapes, `$tag$…$tag$`) and quoted identifiers (`"…"`) are copied untouched, so a
//! `:x` inside them is text, and `::` is a cast, never a variable. The admin writes the predicate, but
//! it is pasted into every statement on a protected table, so it must not be able to end the expression
//! early (`;`, unbalanced parentheses), hide text (comments) or read other relations (subqueries).

use portcullis_sql::{analyze_uncached, ObjectKind};

use super::model::{Predicate, SessionVariable};

/// Keywords that only start a subquery inside an expression (all reserved in PostgreSQL, so they cannot be
/// bare column names).
const SUBQUERY_KEYWORDS: &[&str] = &["select", "values", "table"];

const SUPPORTED: &str = "`:user.name`, `:user.roles`, `:resource` or `:user.attributes.<key>`";

/// Parameterises and checks `text`; the error says what is wrong and how to fix it.
pub(crate) fn parse(text: &str) -> Result<Predicate, String> {
    if text.trim().is_empty() {
        return Err("`predicate` is empty; write a boolean SQL expression such as `region = :user.attributes.region`".into());
    }
    let (parameterised, variables) = parameterise(text)?;
    check_parses(&parameterised)?;
    Ok(Predicate {
        text: text.to_owned(),
        parameterised,
        variables,
    })
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Replaces session variables with `$n` and rejects what could end or escape the expression.
fn parameterise(text: &str) -> Result<(String, Vec<SessionVariable>), String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut variables: Vec<SessionVariable> = Vec::new();
    let mut depth = 0usize;
    // Start of the text not yet copied to `out`.
    let mut copied = 0usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let prev = i.checked_sub(1).and_then(|p| bytes.get(p)).copied();
        let next = bytes.get(i + 1).copied();
        match b {
            b'\'' => {
                // `E'…'` (prefix just before, not part of a longer word) takes backslash escapes.
                let escapes = matches!(prev, Some(b'e' | b'E'))
                    && i.checked_sub(2)
                        .and_then(|p| bytes.get(p))
                        .is_none_or(|c| !is_ident_char(*c));
                i = skip_quoted(bytes, i, b'\'', escapes)
                    .ok_or("a string literal is not closed; close it with `'`")?;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false)
                    .ok_or("a quoted identifier is not closed; close it with `\"`")?;
            }
            b'$' if prev.is_some_and(is_ident_char) => i += 1,
            b'$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                return Err("positional parameters (`$1`) are reserved for session variables; write the variable itself, e.g. `:user.name`".into());
            }
            b'$' => i = skip_dollar_quoted(bytes, i)?,
            b':' if next == Some(b':') => i += 2,
            b':' if next.is_some_and(is_ident_start) => {
                let end = variable_end(bytes, i + 1);
                let name = text.get(i + 1..end).unwrap_or("");
                let variable = variable(name)?;
                let n = match variables.iter().position(|v| *v == variable) {
                    Some(p) => p + 1,
                    None => {
                        variables.push(variable);
                        variables.len()
                    }
                };
                out.push_str(text.get(copied..i).unwrap_or(""));
                out.push('$');
                out.push_str(&n.to_string());
                copied = end;
                i = end;
            }
            b';' => {
                return Err("a predicate is one boolean expression; remove the `;`".into());
            }
            b'-' if next == Some(b'-') => return Err(no_comments()),
            b'/' if next == Some(b'*') => return Err(no_comments()),
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or("a `)` has no matching `(`; balance the parentheses")?;
                i += 1;
            }
            _ if is_ident_start(b) && !prev.is_some_and(is_ident_char) => {
                i = checked_word(text, i)?;
            }
            _ if b.is_ascii_digit() && !prev.is_some_and(is_ident_char) => {
                // A number; a word right after it (`1select`) is a separate token to PostgreSQL.
                i += 1;
                while bytes
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == b'.')
                {
                    i += 1;
                }
                if bytes.get(i).copied().is_some_and(is_ident_start) {
                    i = checked_word(text, i)?;
                }
            }
            _ => i += 1,
        }
    }
    if depth != 0 {
        return Err("a `(` is not closed; balance the parentheses".into());
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Ok((out, variables))
}

fn no_comments() -> String {
    "comments are not allowed in a predicate (it is pasted into statements); remove them".into()
}

/// The index after the closing `quote` of the literal opening at `start`; a doubled quote is part of the
/// literal, and with `escapes` so is a backslash-escaped character. `None` when it is not closed.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *bytes.get(i)? {
            b'\\' if escapes => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
}

/// At a `$` not inside a word: skips a dollar-quoted string `$tag$…$tag$`, or just the `$` when it does
/// not open one (the parser will judge it).
fn skip_dollar_quoted(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut end = start + 1;
    if bytes.get(end).copied().is_some_and(is_ident_start) {
        while bytes
            .get(end)
            .copied()
            .is_some_and(|b| is_ident_char(b) && b != b'$')
        {
            end += 1;
        }
    }
    if bytes.get(end) != Some(&b'$') {
        return Ok(start + 1);
    }
    let delimiter = bytes.get(start..=end).unwrap_or(&[]);
    let body = end + 1;
    bytes
        .get(body..)
        .and_then(|rest| rest.windows(delimiter.len()).position(|w| w == delimiter))
        .map(|at| body + at + delimiter.len())
        .ok_or_else(|| {
            "a dollar-quoted string is not closed; close it with the same `$tag$`".into()
        })
}

/// The end of a variable name starting at `start`: identifiers joined by single dots.
fn variable_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    loop {
        while bytes
            .get(i)
            .copied()
            .is_some_and(|b| is_ident_char(b) && b != b'$')
        {
            i += 1;
        }
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).copied().is_some_and(is_ident_start) {
            i += 1;
        } else {
            return i;
        }
    }
}

/// Skips the word starting at `start`, rejecting keywords that start a subquery; returns its end.
fn checked_word(text: &str, start: usize) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let mut end = start;
    while bytes.get(end).copied().is_some_and(is_ident_char) {
        end += 1;
    }
    let word = text.get(start..end).unwrap_or("");
    if SUBQUERY_KEYWORDS
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
    {
        return Err(format!(
            "`{word}` starts a subquery, which a row filter may not contain; compare the row's own columns with constants and session variables"
        ));
    }
    Ok(end)
}

/// The variable named `name` (without the `:`).
fn variable(name: &str) -> Result<SessionVariable, String> {
    match name {
        "user.name" => Ok(SessionVariable::UserName),
        "user.roles" => Ok(SessionVariable::UserRoles),
        "resource" => Ok(SessionVariable::Resource),
        _ => match name.strip_prefix("user.attributes.") {
            Some(key) if !key.contains('.') => Ok(SessionVariable::Attribute(key.to_owned())),
            _ => Err(format!(
                "unknown session variable `:{name}`; use {SUPPORTED} (for an array slice write `[lo : hi]` with spaces)"
            )),
        },
    }
}

/// Parses the parameterised predicate as the condition of a query: it must be one statement that is not
/// opaque and reads no relation.
fn check_parses(parameterised: &str) -> Result<(), String> {
    // On lines of its own inside parentheses, so the text can only be an expression.
    let sql = format!("SELECT 1 WHERE (\n{parameterised}\n)");
    let analysis =
        analyze_uncached(&sql).map_err(|e| format!("predicate is not valid SQL: {e}"))?;
    let [statement] = analysis.statements.as_slice() else {
        return Err("a predicate is one boolean expression, not several statements".into());
    };
    if let Some(why) = &statement.opaque {
        return Err(format!(
            "predicate cannot be analysed ({why}); use only the row's columns, constants, operators and plain functions"
        ));
    }
    if let Some(o) = statement
        .objects
        .iter()
        .find(|o| o.kind != ObjectKind::Function)
    {
        return Err(format!(
            "predicate reads `{}`; a row filter may only use the row's own columns",
            o.object
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> (String, Vec<SessionVariable>) {
        let pred = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (pred.parameterised, pred.variables)
    }

    fn err(text: &str) -> String {
        parse(text).map(|p| p.parameterised).unwrap_err()
    }

    #[test]
    fn variables_become_numbered_parameters() {
        let (sql, vars) =
            p("region = :user.attributes.region AND owner = :user.name OR owner = :user.name");
        assert_eq!(sql, "region = $1 AND owner = $2 OR owner = $2");
        assert_eq!(
            vars,
            [
                SessionVariable::Attribute("region".into()),
                SessionVariable::UserName
            ]
        );
        let (sql, vars) = p("db = :resource AND 'hr' = ANY(string_to_array(:user.roles, ','))");
        assert_eq!(sql, "db = $1 AND 'hr' = ANY(string_to_array($2, ','))");
        assert_eq!(
            vars,
            [SessionVariable::Resource, SessionVariable::UserRoles]
        );
    }

    #[test]
    fn casts_strings_and_identifiers_are_not_variables() {
        let (sql, vars) = p("amount::numeric > 10 AND region = :user.attributes.region::text");
        assert_eq!(sql, "amount::numeric > 10 AND region = $1::text");
        assert_eq!(vars.len(), 1);
        for text in [
            "note <> ':user.name'",
            "note <> 'it''s :user.name'",
            "note <> E'\\':user.name'",
            "\"col:user.name\" = 1",
            "note <> $$ :user.name $$",
            "note <> $q$ :user.name $q$",
            "a$b = 1",
            "x1select = 1e5",
        ] {
            let (sql, vars) = p(text);
            assert_eq!(sql, text);
            assert!(vars.is_empty(), "{text}");
        }
    }

    #[test]
    fn what_could_escape_the_expression_is_rejected() {
        for (text, expect) in [
            ("true; DROP TABLE x", "remove the `;`"),
            ("true) OR (true", "no matching `(`"),
            ("(true", "not closed"),
            (
                "x IN (SELECT id FROM hr.employees)",
                "`SELECT` starts a subquery",
            ),
            ("EXISTS (values (1))", "starts a subquery"),
            ("x = 1select 2", "starts a subquery"),
            ("true -- all", "comments"),
            ("true /* all */", "comments"),
            ("owner = $1", "reserved"),
            (
                "owner = :user.email",
                "unknown session variable `:user.email`",
            ),
            ("owner = :user.attributes", "unknown session variable"),
            ("owner = 'open", "not closed"),
            ("owner = $$open", "not closed"),
            ("owner = = 1", "not valid SQL"),
            ("", "empty"),
            ("pg_read_file('/etc/passwd') <> ''", "cannot be analysed"),
        ] {
            let e = err(text);
            assert!(e.contains(expect), "{text}: expected {expect:?} in {e}");
        }
    }
}

//! Query shapes: the text with its numeric and string literals blanked out, so statements that differ only in
//! their constants (`... WHERE id = 17`, `... WHERE id = 18`) share one analysis instead of being parsed
//! each time.
//!
//! Sharing is only sound where constants cannot change the analysis. The analyser reads constants for
//! `SET`, `EXPLAIN` options and `set_config(...)`, so only plain DML whose analysis has no session effect, is
//! not opaque and calls no `set_config` is shared (see [`shareable`]).

use std::sync::Arc;

use crate::analysis::{Analysis, Statement};
use crate::kind::ObjectKind;

/// Stands for a blanked literal; NUL cannot occur in a query text, so a shape never equals a real query.
const LITERAL: char = '\0';

/// The shape of `sql`, or `None` when the text uses a form this scanner does not blank safely (dollar
/// quoting, `E'...'`/`B'...'`/`X'...'`/`U&'...'` strings, unterminated quotes or comments).
pub(crate) fn shape_key(sql: &str) -> Option<String> {
    // Surrounding blanks and a final semicolon do not change a statement.
    let sql = single_statement_text(sql);
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    let ident_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    while i < bytes.len() {
        let b = bytes[i];
        let prev = if i > 0 { bytes[i - 1] } else { b' ' };
        match b {
            b'\'' => {
                // A prefixed string (E'', B'', X'', U&'') has its own escape rules.
                if ident_char(prev) || prev == b'&' {
                    return None;
                }
                let end = string_end(bytes, i)?;
                out.push_str(&sql[copied..i]);
                out.push(LITERAL);
                i = end;
                copied = i;
            }
            b'"' => i = quoted_end(bytes, i, b'"')?,
            b'$' => {
                // `$1` parameters are kept; `$tag$` dollar quoting is not blanked.
                if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) || ident_char(prev) {
                    return None;
                }
                i += 1;
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(bytes.len(), |p| i + p);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let close = sql[i + 2..].find("*/")?;
                // Nested comments are legal in PostgreSQL; do not try to follow them.
                if sql[i + 2..i + 2 + close].contains("/*") {
                    return None;
                }
                i += 2 + close + 2;
            }
            b'0'..=b'9' | b'.' if !ident_char(prev) && starts_number(bytes, i) => {
                out.push_str(&sql[copied..i]);
                out.push(LITERAL);
                i = number_end(bytes, i)?;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

fn starts_number(bytes: &[u8], i: usize) -> bool {
    bytes[i].is_ascii_digit() || bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
}

/// Index just past a numeric literal (decimal, exponent, `_` separators, `0x`/`0o`/`0b`), or `None` when
/// it runs straight into an identifier character: such text is not blanked, so a blanked region never hides
/// a word.
fn number_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    let radix_prefix = bytes[i] == b'0'
        && bytes
            .get(i + 1)
            .is_some_and(|b| matches!(b, b'x' | b'X' | b'o' | b'O' | b'b' | b'B'));
    if radix_prefix {
        i += 2;
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_hexdigit() || *b == b'_')
        {
            i += 1;
        }
    } else {
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.' || *b == b'_')
        {
            i += 1;
        }
        if bytes.get(i).is_some_and(|b| matches!(b, b'e' | b'E')) {
            let mut j = i + 1;
            if bytes.get(j).is_some_and(|b| matches!(b, b'+' | b'-')) {
                j += 1;
            }
            if bytes.get(j).is_some_and(u8::is_ascii_digit) {
                i = j;
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
        }
    }
    match bytes.get(i) {
        Some(&b) if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => None,
        _ => Some(i),
    }
}

/// Index just past a `'...'` string starting at `start`, where `''` is an escaped quote.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match bytes.get(i)? {
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *bytes.get(i)? {
            q if q == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            q if q == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Whether `analysis` of `sql` may be reused for any text of the same shape.
pub(crate) fn shareable(analysis: &Analysis, sql: &str) -> bool {
    let [statement] = analysis.statements.as_slice() else {
        return false;
    };
    statement.kind.is_dml()
        && statement.effect.is_none()
        && statement.opaque.is_none()
        && !statement
            .objects
            .iter()
            .any(|o| o.kind == ObjectKind::Function && o.object.name == "set_config")
        && statement.text == single_statement_text(sql)
}

/// What the analyser gives as the text of a query holding exactly one statement.
fn single_statement_text(sql: &str) -> &str {
    let trimmed = sql.trim();
    trimmed.strip_suffix(';').map_or(trimmed, str::trim_end)
}

/// The shared analysis with the statement's own text put back.
pub(crate) fn with_text(template: &Analysis, sql: &str) -> Analysis {
    let statements = template
        .statements
        .iter()
        .map(|s| Statement {
            kind: s.kind.clone(),
            text: single_statement_text(sql).to_string(),
            location: s.location,
            // Shared, not copied: a repeated shape costs no allocation per object.
            objects: Arc::clone(&s.objects),
            opaque: s.opaque.clone(),
            effect: s.effect.clone(),
            param_refs: s.param_refs,
            bound_settings: s.bound_settings.clone(),
        })
        .collect();
    Analysis { statements }
}

#[cfg(test)]
mod tests {
    use super::shape_key;

    #[test]
    fn literals_are_blanked_and_the_rest_kept() {
        let a =
            shape_key("SELECT abalance FROM t1 WHERE aid = 17 AND s = 'x''y' -- it's\n").unwrap();
        let b =
            shape_key("SELECT abalance FROM t1 WHERE aid = 1.5e-3 AND s = 'zz' -- it's\n").unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a,
            shape_key("SELECT abalance FROM t2 WHERE aid = 17 AND s = 'x' -- it's\n").unwrap()
        );
        assert_eq!(
            shape_key("SELECT $1, \"a'b\" FROM x").unwrap(),
            "SELECT $1, \"a'b\" FROM x"
        );
    }

    #[test]
    fn forms_it_cannot_blank_safely_have_no_shape() {
        for sql in [
            "SELECT 1abc FROM t",
            "SELECT E'\\''",
            "SELECT $$x$$",
            "SELECT 'open",
            "SELECT /* a /* b */ */ 1",
            "SELECT x'ff'",
        ] {
            assert_eq!(shape_key(sql), None, "{sql}");
        }
    }
}

//! How the server's lexer reads a text under settings libpg_query does not model.
//!
//! libpg_query lexes with `standard_conforming_strings` on. With it off, the server reads a backslash in
//! a plain `'…'` string as an escape, so `'a\' , (SELECT …) --'` is one literal to the parser here and a
//! subquery to the server. The two lexers run in the same states up to the first backslash inside a
//! plain `'…'` string (the only rule the setting changes), so a text without one reads the same both ways.

use pg_query::protobuf::Token;

/// Whether `sql`, lexed as libpg_query lexes it, has a backslash inside a plain `'…'` string (not an
/// `E'…'`, dollar-quoted, bit or Unicode string, nor a comment): the one place where the server reads it
/// differently when `standard_conforming_strings` is off. A text the lexer cannot read counts as having
/// one when it holds any backslash.
pub fn backslash_in_plain_string(sql: &str) -> bool {
    if !sql.contains('\\') {
        return false;
    }
    let Ok(tokens) = pg_query::scan_tokens(sql) else {
        return true;
    };
    tokens.iter().any(|t| {
        if t.token != Token::Sconst as i32 {
            return false;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            return true;
        };
        match sql.get(start..end) {
            Some(text) => text.starts_with('\'') && text.contains('\\'),
            None => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::backslash_in_plain_string as b;

    #[test]
    fn only_plain_strings_count() {
        assert!(b(r"SELECT 'a\' AS c1, ' , (SELECT 1) --'"));
        assert!(b(r"SELECT N'a\'"));
        assert!(b("SELECT 'x'\n'\\'"));
        assert!(!b(r"SELECT E'a\'b'"));
        assert!(!b(r"SELECT $$a\$$, $t$\$t$"));
        assert!(!b(r"SELECT 1 -- a\b"));
        assert!(!b(r"SELECT /* \ */ 1"));
        assert!(!b(r#"SELECT 1 AS "a\b""#));
        assert!(!b("SELECT 'plain'"));
        // Unterminated: unreadable, and it holds a backslash.
        assert!(b(r"SELECT 'a\"));
    }
}

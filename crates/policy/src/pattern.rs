//! Object name patterns: `hr.employees`, `hr.*`, `*.*`, `*`, `hr.employees.salary`, `hr.emp_*`.
//!
//! Names are compared case-sensitively with names the analyser has already case-folded (unquoted
//! identifiers lower-case), so a policy writes `hr.employees`, and `"HR"."Emp"` only for a quoted name.
//! A part cannot contain a `.`; `*` inside a part matches any run of characters.

use std::fmt;

use portcullis_sql::ObjectKind;

/// A glob over one name part: `*` matches any run of characters, everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    exact: bool,
}

impl Glob {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            exact: !text.contains('*'),
        }
    }

    /// The literal text when the glob has no `*`.
    pub fn exact(&self) -> Option<&str> {
        self.exact.then_some(self.text.as_str())
    }

    /// Whether the glob is exactly `*`.
    pub fn is_any(&self) -> bool {
        self.text == "*"
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        if self.exact {
            return self.text == value;
        }
        // Split off the last piece instead of collecting the pieces: masking checks every column of every
        // relation a session reads, so matching must not allocate.
        let Some((head, last)) = self.text.rsplit_once('*') else {
            return self.text == value;
        };
        let mut pieces = head.split('*');
        let first = pieces.next().unwrap_or("");
        let Some(mut rest) = value.strip_prefix(first) else {
            return false;
        };
        for piece in pieces {
            match rest.find(piece) {
                Some(at) => rest = rest.get(at + piece.len()..).unwrap_or(""),
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// What an object pattern selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `*`: every object.
    All,
    /// One part (`hr`): objects that live outside schemas (schemas, databases, roles) with that name.
    Unqualified(Glob),
    /// `schema.name`. When `name` is `*` it also matches the schema object itself (`DROP SCHEMA hr`).
    Object {
        /// Schema part.
        schema: Glob,
        /// Object part.
        name: Glob,
    },
    /// `schema.table.column`.
    Column {
        /// Schema part.
        schema: Glob,
        /// Table part.
        name: Glob,
        /// Column part.
        column: Glob,
    },
}

/// A parsed object pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPattern {
    text: String,
    scope: Scope,
}

impl fmt::Display for ObjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ObjectPattern {
    /// Parses a pattern; the error says what a valid one looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "object pattern `{text}` has an empty part; write `schema.table`, `schema.*`, `*.*`, `*` or `schema.table.column`"
            ));
        }
        let scope = match parts.as_slice() {
            ["*"] => Scope::All,
            [one] => Scope::Unqualified(Glob::new(one)),
            [s, n] => Scope::Object {
                schema: Glob::new(s),
                name: Glob::new(n),
            },
            [s, n, c] => Scope::Column {
                schema: Glob::new(s),
                name: Glob::new(n),
                column: Glob::new(c),
            },
            _ => {
                return Err(format!(
                    "object pattern `{text}` has more than three parts; write `schema.table` or `schema.table.column` (the database is the resource)"
                ))
            }
        };
        Ok(Self {
            text: text.to_owned(),
            scope,
        })
    }

    /// What the pattern selects.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern names columns (`schema.table.column`).
    pub fn is_column(&self) -> bool {
        matches!(self.scope, Scope::Column { .. })
    }

    /// Whether the pattern selects the object `schema.name` (schema empty for schema-less objects) of
    /// `kind`, ignoring any column part.
    pub fn matches_object(&self, schema: &str, name: &str, kind: ObjectKind) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Unqualified(g) => schema.is_empty() && g.matches(name),
            Scope::Object { schema: s, name: n } => {
                (!schema.is_empty() && s.matches(schema) && n.matches(name))
                    || (kind == ObjectKind::Schema && n.is_any() && s.matches(name))
            }
            Scope::Column {
                schema: s, name: n, ..
            } => !schema.is_empty() && s.matches(schema) && n.matches(name),
        }
    }

    /// Rule matching: the object matches and, for a column pattern, one of `columns` matches — or the
    /// columns are not known (empty), which is treated as every column.
    pub fn matches_access(
        &self,
        schema: &str,
        name: &str,
        kind: ObjectKind,
        columns: &[String],
    ) -> bool {
        if !self.matches_object(schema, name, kind) {
            return false;
        }
        match &self.scope {
            Scope::Column { column, .. } => {
                columns.is_empty() || columns.iter().any(|c| column.matches(c))
            }
            _ => true,
        }
    }

    /// For a column pattern whose object matches: whether it matches `column`.
    pub fn matches_column(&self, column: &str) -> bool {
        match &self.scope {
            Scope::Column { column: c, .. } => c.matches(column),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ObjectKind::*;

    fn p(s: &str) -> ObjectPattern {
        ObjectPattern::parse(s).unwrap()
    }

    #[test]
    fn globs() {
        assert!(Glob::new("emp_*").matches("emp_x"));
        assert!(Glob::new("emp_*").matches("emp_"));
        assert!(!Glob::new("emp_*").matches("em"));
        assert!(Glob::new("*_log").matches("a_log"));
        assert!(Glob::new("a*b*c").matches("abc"));
        assert!(Glob::new("a*b*c").matches("aXbYc"));
        assert!(!Glob::new("a*b*c").matches("aXc"));
        assert!(!Glob::new("a*a").matches("a"));
        assert!(Glob::new("*").matches(""));
    }

    #[test]
    fn object_patterns() {
        assert!(p("hr.employees").matches_object("hr", "employees", Relation));
        assert!(!p("hr.employees").matches_object("hr", "Employees", Relation));
        assert!(p("hr.*").matches_object("hr", "departments", Relation));
        assert!(p("hr.*").matches_object("", "hr", Schema));
        assert!(!p("hr.*").matches_object("", "hr", Database));
        assert!(p("*.*").matches_object("public", "x", Relation));
        assert!(p("*").matches_object("", "prod", Database));
        assert!(p("hr").matches_object("", "hr", Schema));
        assert!(!p("hr").matches_object("hr", "employees", Relation));
        let col = p("hr.employees.salary");
        assert!(col.matches_access("hr", "employees", Relation, &[]));
        assert!(col.matches_access("hr", "employees", Relation, &["salary".into()]));
        assert!(!col.matches_access("hr", "employees", Relation, &["name".into()]));
        assert!(ObjectPattern::parse("hr..x").is_err());
        assert!(ObjectPattern::parse("a.b.c.d").is_err());
    }
}

//! Finding the protection rules that may select a relation without scanning them all: rules whose patterns
//! all name an exact schema are listed under those schemas, the rest under "any schema". Positions stay
//! ascending, so merging the two lists keeps file order (first match wins per column).

use std::collections::HashMap;
use std::iter::Peekable;
use std::slice::Iter;

use crate::pattern::{ObjectPattern, Scope};

/// Positions of rules by the schema their patterns name.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaIndex {
    exact: HashMap<String, Vec<usize>>,
    any: Vec<usize>,
}

impl SchemaIndex {
    /// Lists the rule at `position` (positions must be added in ascending order) with its patterns.
    pub(crate) fn add<'a>(
        &mut self,
        position: usize,
        patterns: impl IntoIterator<Item = &'a ObjectPattern>,
    ) {
        let mut schemas: Vec<&str> = Vec::new();
        for pattern in patterns {
            let schema = match pattern.scope() {
                Scope::Object { schema, .. } | Scope::Column { schema, .. } => schema.exact(),
                Scope::All | Scope::Unqualified(_) => None,
            };
            match schema {
                Some(s) if !schemas.contains(&s) => schemas.push(s),
                Some(_) => {}
                None => {
                    self.any.push(position);
                    return;
                }
            }
        }
        for s in schemas {
            self.exact.entry(s.to_owned()).or_default().push(position);
        }
    }

    /// Positions of the rules that may select a relation in `schema`, ascending.
    pub(crate) fn candidates(&self, schema: &str) -> Merged<'_> {
        let exact = self.exact.get(schema).map(Vec::as_slice).unwrap_or(&[]);
        Merged {
            a: exact.iter().peekable(),
            b: self.any.iter().peekable(),
        }
    }
}

/// Two ascending position lists merged, without allocating.
pub(crate) struct Merged<'a> {
    a: Peekable<Iter<'a, usize>>,
    b: Peekable<Iter<'a, usize>>,
}

impl Iterator for Merged<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if a <= b => self.a.next().copied(),
            (Some(_), Some(_)) | (None, Some(_)) => self.b.next().copied(),
            (Some(_), None) => self.a.next().copied(),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ObjectPattern {
        ObjectPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn candidates_keep_file_order() {
        let mut index = SchemaIndex::default();
        index.add(0, &[p("hr.employees.ssn"), p("hr.*.ssn")]);
        index.add(1, &[p("*.*.ssn")]);
        index.add(2, &[p("sales.orders.id"), p("hr.x.id")]);
        index.add(3, &[p("hr*.t.c")]);
        let hr: Vec<usize> = index.candidates("hr").collect();
        assert_eq!(hr, [0, 1, 2, 3]);
        let sales: Vec<usize> = index.candidates("sales").collect();
        assert_eq!(sales, [1, 2, 3]);
        let other: Vec<usize> = index.candidates("public").collect();
        assert_eq!(other, [1, 3]);
    }
}

//! The operators and types a query text names. Both can run code the statement does not call by name:
//! an operator runs its function, and a type may have a domain CHECK or a cast whose function runs when
//! a value is converted to it. Code defined outside `pg_catalog` may read data the gateway protects, so a
//! session with protections needs to know them.

use pg_query::NodeRef;

use crate::analysis::ObjectName;
use crate::children::for_each_child;
use crate::error::AnalysisError;
use crate::walker::string_list;

/// The operator and type names one query text uses, as written, qualified or not, each once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImplicitNames {
    /// Operators in expressions (`a = b`, `a OPERATOR(s.===) b`, `= ANY (…)`), in subquery comparisons
    /// and in `ORDER BY … USING`.
    pub operators: Vec<ObjectName>,
    /// Types in casts (`x::t`, `CAST(x AS t)`), column definitions and everywhere else a type is named.
    pub types: Vec<ObjectName>,
}

/// The operators and types `sql` names (parsed once for both).
pub fn implicit_names(sql: &str) -> Result<ImplicitNames, AnalysisError> {
    let tree = crate::parse::parse(sql)?;
    let mut names = ImplicitNames::default();
    for raw in &tree.stmts {
        if let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            collect(stmt.to_ref(), &mut names);
        }
    }
    Ok(names)
}

fn collect(node: NodeRef<'_>, names: &mut ImplicitNames) {
    let (list, parts) = match node {
        NodeRef::AExpr(e) => (&mut names.operators, string_list(&e.name)),
        NodeRef::SubLink(s) => (&mut names.operators, string_list(&s.oper_name)),
        NodeRef::SortBy(s) => (&mut names.operators, string_list(&s.use_op)),
        NodeRef::TypeName(t) => (&mut names.types, string_list(&t.names)),
        _ => (&mut names.operators, Vec::new()),
    };
    if let Some(name) = ObjectName::from_parts(&parts) {
        if !list.contains(&name) {
            list.push(name);
        }
    }
    for_each_child(node, &mut |child| collect(child, names));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(names: &[ObjectName]) -> Vec<String> {
        names
            .iter()
            .map(|n| match &n.schema {
                Some(schema) => format!("{schema}.{}", n.name),
                None => n.name.clone(),
            })
            .collect()
    }

    fn operators(sql: &str) -> Vec<String> {
        shown(&implicit_names(sql).unwrap().operators)
    }

    fn types(sql: &str) -> Vec<String> {
        shown(&implicit_names(sql).unwrap().types)
    }

    #[test]
    fn finds_operators_wherever_they_are_written() {
        assert_eq!(
            operators("SELECT a + 1 FROM t WHERE b OPERATOR(public.===) 2 AND c = ANY (ARRAY[1])"),
            ["+", "public.===", "="]
        );
        assert_eq!(
            operators("SELECT 1 WHERE (1, 2) <@> ANY (SELECT 1, 2) ORDER BY 1 USING ~<~"),
            ["<@>", "~<~"]
        );
        assert!(operators("SELECT f(x) FROM t").is_empty());
        assert!(implicit_names("SELEC").is_err());
    }

    #[test]
    fn finds_types_wherever_they_are_written() {
        assert_eq!(
            types("SELECT 1::d, CAST(x AS app.\"Money\"), '{}'::int[] FROM t"),
            ["d", "app.Money", "pg_catalog.int4"]
        );
        assert_eq!(
            types("CREATE TABLE t (a d DEFAULT 1); ALTER TABLE u ADD COLUMN b e"),
            ["d", "e"]
        );
        assert_eq!(
            types("SELECT (SELECT x FROM t WHERE y = '1'::s.e) FROM u"),
            ["s.e"]
        );
        assert!(types("SELECT a + 1 FROM t").is_empty());
    }
}

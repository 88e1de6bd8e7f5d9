//! The operators a query text uses, by name. An operator runs a function, and one defined outside
//! `pg_catalog` may read data the gateway protects, so a session with protections needs to know them.

use pg_query::NodeRef;

use crate::analysis::ObjectName;
use crate::children::for_each_child;
use crate::error::AnalysisError;
use crate::walker::string_list;

/// Every operator name `sql` uses: in expressions (`a = b`, `a OPERATOR(s.===) b`, `= ANY (…)`), in
/// subquery comparisons and in `ORDER BY … USING`. Names are as written, qualified or not.
pub fn operators_in(sql: &str) -> Result<Vec<ObjectName>, AnalysisError> {
    let tree = crate::parse::parse(sql)?;
    let mut names: Vec<ObjectName> = Vec::new();
    let mut add = |parts: Vec<String>| {
        if let Some(name) = ObjectName::from_parts(&parts) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    };
    for raw in &tree.stmts {
        if let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            collect(stmt.to_ref(), &mut add);
        }
    }
    Ok(names)
}

fn collect(node: NodeRef<'_>, add: &mut dyn FnMut(Vec<String>)) {
    match node {
        NodeRef::AExpr(e) => add(string_list(&e.name)),
        NodeRef::SubLink(s) => add(string_list(&s.oper_name)),
        NodeRef::SortBy(s) => add(string_list(&s.use_op)),
        _ => {}
    }
    for_each_child(node, &mut |child| collect(child, add));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        operators_in(sql)
            .unwrap()
            .into_iter()
            .map(|n| match n.schema {
                Some(schema) => format!("{schema}.{}", n.name),
                None => n.name,
            })
            .collect()
    }

    #[test]
    fn finds_operators_wherever_they_are_written() {
        assert_eq!(
            names("SELECT a + 1 FROM t WHERE b OPERATOR(public.===) 2 AND c = ANY (ARRAY[1])"),
            ["+", "public.===", "="]
        );
        assert_eq!(
            names("SELECT 1 WHERE (1, 2) <@> ANY (SELECT 1, 2) ORDER BY 1 USING ~<~"),
            ["<@>", "~<~"]
        );
        assert!(names("SELECT f(x) FROM t").is_empty());
        assert!(operators_in("SELEC").is_err());
    }
}

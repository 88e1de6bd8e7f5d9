//! The pieces of expanding a view that reads a protected relation: its definition parsed into a query, the
//! barrier a security-barrier view needs, and the subselect that takes the view's place.
//!
//! The walk (`walk.rs`) rewrites the parsed definition like any other query, so the protected relations
//! it reads become masked projections.

use pg_query::protobuf::{self, Alias};
use pg_query::NodeEnum;

use super::error::RewriteError;
use super::nodes::{int_const, node, string};
use crate::resolve::QualifiedName;

/// Schemas whose functions are PostgreSQL's own: their bodies read no user table. A function anywhere else
/// may read protected data the rewriter cannot see into.
pub const TRUSTED_FUNCTION_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// Views nested deeper than this are refused rather than expanded.
pub(crate) const MAX_VIEW_DEPTH: usize = 16;

/// The view's definition as a query tree.
pub(crate) fn parse_definition(view: &QualifiedName, sql: &str) -> Result<NodeEnum, RewriteError> {
    let tree = crate::parse::parse(sql)?;
    let mut stmts = tree.stmts.into_iter();
    match (stmts.next().and_then(|raw| raw.stmt), stmts.next()) {
        (Some(stmt), None) => match stmt.node {
            Some(query @ NodeEnum::SelectStmt(_)) => Ok(query),
            _ => Err(not_a_query(view)),
        },
        _ => Err(not_a_query(view)),
    }
}

fn not_a_query(view: &QualifiedName) -> RewriteError {
    RewriteError::unsupported(format!(
        "the definition of view {view} is not a single query"
    ))
}

/// Keeps the outer query's predicates out of a security-barrier view's query: PostgreSQL pushes no
/// predicate into, and pulls up no, subquery with an OFFSET. A view that has a LIMIT or OFFSET already
/// keeps them.
pub(crate) fn keep_barrier(query: &mut NodeEnum) {
    if let NodeEnum::SelectStmt(s) = query {
        if s.limit_offset.is_none() && s.limit_count.is_none() {
            s.limit_offset = Some(Box::new(int_const(0)));
        }
    }
}

/// The subselect that replaces the reference `rv` to the view: aliased like the reference, and naming the
/// view's columns when the reference does not rename them.
pub(crate) fn in_place_of(
    rv: &protobuf::RangeVar,
    query: NodeEnum,
    columns: Option<&[String]>,
) -> NodeEnum {
    let alias = match &rv.alias {
        Some(alias) => alias.clone(),
        None => Alias {
            aliasname: rv.relname.clone(),
            colnames: columns
                .unwrap_or_default()
                .iter()
                .map(|c| string(c))
                .collect(),
        },
    };
    NodeEnum::RangeSubselect(Box::new(protobuf::RangeSubselect {
        lateral: false,
        subquery: Some(Box::new(node(query))),
        alias: Some(alias),
    }))
}

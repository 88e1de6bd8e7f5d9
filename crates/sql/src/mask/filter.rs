//! Row filters: a policy predicate parsed into an expression tree, with its `$n` parameters replaced by text
//! literals and its bare column names qualified with the protected relation's name.

use std::collections::HashMap;
use std::sync::Mutex;

use pg_query::protobuf::{AExprKind, LimitOption, Node, SetOperation, SubLinkType};
use pg_query::NodeEnum;

use super::children_mut::{for_each_child_mut, ChildMut};
use super::error::RewriteError;
use super::nodes::{null_const, string, text_const};
use super::RowFilter;
use crate::resolve::QualifiedName;

/// The predicate of `filter` as an expression in which bare column names refer to `qualifier` (the name
/// the protected relation has where the predicate is placed).
pub(crate) fn filter_expression(
    filter: &RowFilter,
    relation: &QualifiedName,
    qualifier: &str,
) -> Result<Node, RewriteError> {
    let invalid = |reason: &str| RewriteError::InvalidRowFilter {
        relation: relation.clone(),
        rule: filter.rule.clone(),
        reason: reason.to_owned(),
    };
    let mut expr = parsed_predicate(&filter.predicate).map_err(|reason| invalid(&reason))?;
    let mut outcome = Ok(());
    if let Some(inner) = expr.node.as_mut() {
        prepare(inner, &filter.values, Some(qualifier), &mut outcome);
    }
    outcome.map_err(|reason| invalid(&reason))?;
    Ok(expr)
}

/// Parsed predicates by text: the same few policy predicates come with every statement, and parsing is the
/// larger part of building a filter. Bounded by clearing when full.
static PARSED: Mutex<Option<HashMap<String, Result<Node, String>>>> = Mutex::new(None);
const MAX_PARSED: usize = 1024;

/// The predicate's expression tree as parsed (before parameters are substituted), cached.
fn parsed_predicate(predicate: &str) -> Result<Node, String> {
    if let Ok(mut guard) = PARSED.lock() {
        let cache = guard.get_or_insert_with(HashMap::new);
        if let Some(hit) = cache.get(predicate) {
            return hit.clone();
        }
        let parsed = parse_predicate(predicate);
        if cache.len() >= MAX_PARSED {
            cache.clear();
        }
        cache.insert(predicate.to_owned(), parsed.clone());
        return parsed;
    }
    parse_predicate(predicate)
}

/// Parses `SELECT 1 WHERE <predicate>` and checks nothing but the WHERE clause came of it.
fn parse_predicate(predicate: &str) -> Result<Node, String> {
    let tree = crate::parse::parse(&format!("SELECT 1 WHERE {predicate}"))
        .map_err(|e| format!("it does not parse: {e}"))?;
    let mut stmts = tree.stmts.into_iter();
    let stmt = stmts.next().and_then(|s| s.stmt).and_then(|s| s.node);
    let Some(NodeEnum::SelectStmt(select)) = stmt else {
        return Err("it is not a single expression".into());
    };
    // Anything beyond `SELECT 1 WHERE expr` means the predicate text escaped its place.
    let plain = stmts.next().is_none()
        && select.target_list.len() == 1
        && select.distinct_clause.is_empty()
        && select.into_clause.is_none()
        && select.from_clause.is_empty()
        && select.group_clause.is_empty()
        && select.having_clause.is_none()
        && select.window_clause.is_empty()
        && select.values_lists.is_empty()
        && select.sort_clause.is_empty()
        && select.limit_offset.is_none()
        && select.limit_count.is_none()
        && select.limit_option == LimitOption::Default as i32
        && select.locking_clause.is_empty()
        && select.with_clause.is_none()
        && select.op == SetOperation::SetopNone as i32
        && select.larg.is_none()
        && select.rarg.is_none();
    select
        .where_clause
        .filter(|_| plain)
        .map(|w| *w)
        .ok_or_else(|| "it is not a single expression".into())
}

/// Substitutes parameters, pins operators, functions and types to pg_catalog, and qualifies bare column
/// names with `qualifier` (`None` inside subqueries, whose bare names are their own FROM items' columns).
fn prepare(
    node: &mut NodeEnum,
    values: &[Option<String>],
    qualifier: Option<&str>,
    outcome: &mut Result<(), String>,
) {
    match node {
        NodeEnum::ParamRef(p) => match parameter(p.number, values) {
            Ok(value) => *node = value,
            Err(e) => *outcome = Err(e),
        },
        NodeEnum::ColumnRef(c) => {
            if let Some(q) = qualifier {
                if matches!(
                    c.fields.as_slice(),
                    [Node {
                        node: Some(NodeEnum::String(_))
                    }]
                ) {
                    c.fields.insert(0, string(q));
                }
            }
        }
        NodeEnum::AExpr(e) if !pinnable(e) => {
            *outcome = Err(
                "BETWEEN, IS DISTINCT FROM, NULLIF and SIMILAR TO use operators found through the \
                 session's search_path; write them with OPERATOR(pg_catalog.op) instead"
                    .into(),
            );
        }
        NodeEnum::SubLink(s)
            if [
                SubLinkType::AnySublink,
                SubLinkType::AllSublink,
                SubLinkType::RowcompareSublink,
            ]
            .iter()
            .any(|k| *k as i32 == s.sub_link_type) =>
        {
            *outcome = Err(
                "IN / ANY / ALL with a subquery use an operator found through the session's \
                 search_path; use EXISTS (SELECT ... WHERE ... OPERATOR(pg_catalog.=) ...) instead"
                    .into(),
            );
        }
        NodeEnum::CaseExpr(c) if c.arg.is_some() => {
            *outcome = Err(
                "CASE x WHEN ... compares with an operator found through the session's search_path; \
                 write CASE WHEN x OPERATOR(pg_catalog.=) ... instead"
                    .into(),
            );
        }
        NodeEnum::SubLink(s) => {
            if let Some(inner) = s.subselect.as_mut().and_then(|t| t.node.as_mut()) {
                prepare(inner, values, None, outcome);
            }
        }
        _ => {
            pin_to_catalog(node);
            for_each_child_mut(node, &mut |child| match child {
                ChildMut::Node(n) => prepare(n, values, qualifier, outcome),
                ChildMut::Select(s) => {
                    let mut n = NodeEnum::SelectStmt(Box::new(std::mem::take(s)));
                    prepare(&mut n, values, None, outcome);
                    if let NodeEnum::SelectStmt(back) = n {
                        *s = *back;
                    }
                }
                ChildMut::With(w) => {
                    for cte in &mut w.ctes {
                        if let Some(n) = cte.node.as_mut() {
                            prepare(n, values, None, outcome);
                        }
                    }
                }
                ChildMut::RangeVar(_) => {}
            })
        }
    }
}

/// Whether an operator expression can be pinned to pg_catalog's operators: plain operators, `ANY`/`ALL`,
/// and the forms rewritten into them (`IN`, `LIKE`, `ILIKE`). The deparser only prints a qualified operator
/// for those, and PostgreSQL expands the others with unqualified operators.
fn pinnable(e: &pg_query::protobuf::AExpr) -> bool {
    [
        AExprKind::AexprOp,
        AExprKind::AexprOpAny,
        AExprKind::AexprOpAll,
        AExprKind::AexprIn,
        AExprKind::AexprLike,
        AExprKind::AexprIlike,
    ]
    .iter()
    .any(|k| *k as i32 == e.kind)
}

/// Rewrites `IN (list)` to `= ANY (ARRAY[list])` (`NOT IN` to `<> ALL`) and `[I]LIKE` to its operator, the
/// forms in which the operator can be qualified.
fn to_operator_form(e: &mut pg_query::protobuf::AExpr) {
    if e.kind == AExprKind::AexprIn as i32 {
        let all = matches!(e.name.as_slice(), [Node { node: Some(NodeEnum::String(s)) }] if s.sval == "<>");
        let elements = match e.rexpr.as_mut().and_then(|r| r.node.as_mut()) {
            Some(NodeEnum::List(list)) => std::mem::take(&mut list.items),
            _ => return,
        };
        e.rexpr = Some(Box::new(super::nodes::node(NodeEnum::AArrayExpr(
            pg_query::protobuf::AArrayExpr {
                elements,
                location: -1,
                list_start: -1,
                list_end: -1,
            },
        ))));
        e.kind = if all {
            AExprKind::AexprOpAll as i32
        } else {
            AExprKind::AexprOpAny as i32
        };
    } else if e.kind == AExprKind::AexprLike as i32 || e.kind == AExprKind::AexprIlike as i32 {
        e.kind = AExprKind::AexprOp as i32;
    }
}

/// Qualifies unqualified operators, functions and type names of a policy predicate with `pg_catalog`, so a
/// session's search_path cannot put its own `=` (or `lower`, or `text`) in the filter's place. A filter that
/// needs a function or type of its own must name its schema.
fn pin_to_catalog(node: &mut NodeEnum) {
    let pin = |names: &mut Vec<Node>| {
        if names.len() == 1 {
            names.insert(0, string("pg_catalog"));
        }
    };
    match node {
        NodeEnum::AExpr(e) => {
            to_operator_form(e);
            pin(&mut e.name);
        }
        NodeEnum::FuncCall(f) => pin(&mut f.funcname),
        NodeEnum::CollateClause(c) => pin(&mut c.collname),
        NodeEnum::TypeCast(t) => {
            if let Some(tn) = t.type_name.as_mut() {
                pin(&mut tn.names);
            }
        }
        _ => {}
    }
}

/// The literal for parameter `$number`: the value as a text literal, or NULL.
fn parameter(number: i32, values: &[Option<String>]) -> Result<NodeEnum, String> {
    let value = usize::try_from(number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| values.get(i))
        .ok_or_else(|| format!("parameter ${number} has no value"))?;
    let literal = match value {
        Some(v) => text_const(v),
        None => null_const(),
    };
    literal.node.ok_or_else(|| "empty literal".to_owned())
}

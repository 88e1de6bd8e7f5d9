//! Constructors for the few parse-tree nodes the rewriter builds itself (column references, constants,
//! target entries, conjunctions). Locations are -1: the nodes have no place in the client's text.

use pg_query::protobuf::{self, a_const, BoolExprType, Node};
use pg_query::NodeEnum;

/// Wraps a node variant.
pub(crate) fn node(inner: NodeEnum) -> Node {
    Node { node: Some(inner) }
}

/// A `String` node (identifier parts of names, column lists).
pub(crate) fn string(s: &str) -> Node {
    node(NodeEnum::String(protobuf::String { sval: s.to_owned() }))
}

/// A column reference `a.b.c` from its dotted parts.
pub(crate) fn column_ref(parts: &[&str]) -> Node {
    node(NodeEnum::ColumnRef(protobuf::ColumnRef {
        fields: parts.iter().map(|p| string(p)).collect(),
        location: -1,
    }))
}

/// A text literal (`'...'`, type unknown until PostgreSQL resolves it, as a literal in the text would be).
pub(crate) fn text_const(s: &str) -> Node {
    node(NodeEnum::AConst(protobuf::AConst {
        isnull: false,
        location: -1,
        val: Some(a_const::Val::Sval(protobuf::String { sval: s.to_owned() })),
    }))
}

/// An integer literal.
pub(crate) fn int_const(i: i32) -> Node {
    node(NodeEnum::AConst(protobuf::AConst {
        isnull: false,
        location: -1,
        val: Some(a_const::Val::Ival(protobuf::Integer { ival: i })),
    }))
}

/// The `NULL` literal.
pub(crate) fn null_const() -> Node {
    node(NodeEnum::AConst(protobuf::AConst {
        isnull: true,
        location: -1,
        val: None,
    }))
}

/// A target-list entry `val AS name` (`name` empty: no alias).
pub(crate) fn res_target(name: &str, val: Node) -> Node {
    node(NodeEnum::ResTarget(Box::new(protobuf::ResTarget {
        name: name.to_owned(),
        indirection: Vec::new(),
        val: Some(Box::new(val)),
        location: -1,
    })))
}

/// `a AND b AND ...`; a single operand is returned as is. `None` for no operands.
pub(crate) fn and_all(mut operands: Vec<Node>) -> Option<Node> {
    match operands.len() {
        0 => None,
        1 => operands.pop(),
        _ => Some(node(NodeEnum::BoolExpr(Box::new(protobuf::BoolExpr {
            xpr: None,
            boolop: BoolExprType::AndExpr as i32,
            args: operands,
            location: -1,
        })))),
    }
}

/// The `String` nodes of a list as strings (other nodes skipped).
pub(crate) fn strings(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

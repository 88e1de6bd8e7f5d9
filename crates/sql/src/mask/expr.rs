//! Mask expressions: each [`MaskKind`] as a parse-tree expression over a column reference.
//!
//! Each kind has a fixed SQL template, parsed once; a mask is built by cloning the template's tree and
//! substituting the column reference for the placeholder column and literal nodes for `$n`, so no
//! policy- or user-supplied text is ever pasted into SQL. Every function, operator and type is qualified
//! with `pg_catalog`, so a hostile `search_path` cannot replace them.
//!
//! Output types: the string masks (`Full`, `Partial`, `Hash`, `Null`, `Email`, `Regex`, `Constant`) produce
//! `text` whatever the column's type (the value is cast to text first); `Round` produces `numeric`, and NULL
//! for a value that is not a number. NULL stays NULL for every kind.

use std::sync::OnceLock;

use pg_query::protobuf::Node;
use pg_query::NodeEnum;

use super::children_mut::{for_each_child_mut, ChildMut};
use super::error::RewriteError;
use super::nodes::{int_const, text_const};
use super::MaskKind;

/// The placeholder column every template masks.
const VALUE: &str = "portcullis_masked_value";

const FULL: &str =
    "pg_catalog.repeat('X', pg_catalog.length(portcullis_masked_value::pg_catalog.text))";

/// `$1` keep_first, `$2` keep_last, `$3` their sum (precomputed, so the SQL never overflows).
const PARTIAL: &str = "CASE WHEN pg_catalog.length(portcullis_masked_value::pg_catalog.text) OPERATOR(pg_catalog.<=) $3 \
    THEN pg_catalog.repeat('X', pg_catalog.length(portcullis_masked_value::pg_catalog.text)) \
    ELSE pg_catalog.left(portcullis_masked_value::pg_catalog.text, $1) \
    OPERATOR(pg_catalog.||) pg_catalog.repeat('X', pg_catalog.length(portcullis_masked_value::pg_catalog.text) OPERATOR(pg_catalog.-) $3) \
    OPERATOR(pg_catalog.||) pg_catalog.right(portcullis_masked_value::pg_catalog.text, $2) END";

/// `$1` salt.
const HASH: &str = "pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(\
    $1::pg_catalog.text OPERATOR(pg_catalog.||) portcullis_masked_value::pg_catalog.text, 'UTF8')), 'hex')";

const NULL: &str = "NULL::pg_catalog.text";

/// The domain starts at the last `@` (a quoted local part may contain `@`); without an `@`, or with nothing
/// before it, the value is masked whole.
const EMAIL: &str = "CASE WHEN pg_catalog.strpos(pg_catalog.reverse(portcullis_masked_value::pg_catalog.text), '@') OPERATOR(pg_catalog.>) 0 \
    AND pg_catalog.strpos(pg_catalog.reverse(portcullis_masked_value::pg_catalog.text), '@') OPERATOR(pg_catalog.<) pg_catalog.length(portcullis_masked_value::pg_catalog.text) \
    THEN pg_catalog.left(portcullis_masked_value::pg_catalog.text, 1) OPERATOR(pg_catalog.||) '***' \
    OPERATOR(pg_catalog.||) pg_catalog.right(portcullis_masked_value::pg_catalog.text, pg_catalog.strpos(pg_catalog.reverse(portcullis_masked_value::pg_catalog.text), '@')) \
    ELSE pg_catalog.repeat('X', pg_catalog.length(portcullis_masked_value::pg_catalog.text)) END";

/// `$1` pattern, `$2` replacement.
const REGEX: &str = "pg_catalog.regexp_replace(portcullis_masked_value::pg_catalog.text, $1::pg_catalog.text, $2::pg_catalog.text, 'g')";

/// `$1` the constant.
const CONSTANT: &str =
    "CASE WHEN portcullis_masked_value IS NULL THEN NULL ELSE $1::pg_catalog.text END";

/// `$1` digits. A value that does not read as a number becomes NULL rather than failing the cast, whose
/// error message would quote it (a mask put on a text column by mistake must not leak through errors).
const ROUND: &str = "CASE WHEN portcullis_masked_value::pg_catalog.text OPERATOR(pg_catalog.~) \
    '^\\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\\s*$' \
    THEN pg_catalog.round(portcullis_masked_value::pg_catalog.text::pg_catalog.numeric, $1) END";

/// The parsed templates, in the order of the constants above.
fn template(text: &'static str) -> Result<&'static Node, RewriteError> {
    static CACHE: OnceLock<Vec<(&'static str, Result<Node, String>)>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        [FULL, PARTIAL, HASH, NULL, EMAIL, REGEX, CONSTANT, ROUND]
            .into_iter()
            .map(|t| (t, parse_expression(t)))
            .collect()
    });
    match cache.iter().find(|(t, _)| *t == text).map(|(_, r)| r) {
        Some(Ok(node)) => Ok(node),
        Some(Err(e)) => Err(RewriteError::Internal(format!("mask template: {e}"))),
        None => Err(RewriteError::Internal("unknown mask template".into())),
    }
}

/// Parses `SELECT <expr>` and returns the expression.
pub(crate) fn parse_expression(expr: &str) -> Result<Node, String> {
    let tree = crate::parse::parse(&format!("SELECT {expr}")).map_err(|e| e.to_string())?;
    let stmt = tree
        .stmts
        .into_iter()
        .next()
        .and_then(|s| s.stmt)
        .and_then(|s| s.node);
    let Some(NodeEnum::SelectStmt(select)) = stmt else {
        return Err("not a SELECT".into());
    };
    let target = select.target_list.into_iter().next().and_then(|t| t.node);
    match target {
        Some(NodeEnum::ResTarget(rt)) => rt.val.map(|v| *v).ok_or_else(|| "no value".into()),
        _ => Err("no target".into()),
    }
}

/// `mask` applied to `value` (a column reference), as an expression tree.
pub(crate) fn mask_expression(mask: &MaskKind, value: &Node) -> Result<Node, RewriteError> {
    let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let (text, args) = match mask {
        MaskKind::Full => (FULL, vec![]),
        MaskKind::Partial {
            keep_first,
            keep_last,
        } => {
            let (first, last) = (clamp(*keep_first), clamp(*keep_last));
            let total = first.saturating_add(last);
            (
                PARTIAL,
                vec![int_const(first), int_const(last), int_const(total)],
            )
        }
        MaskKind::Hash { salt } => (HASH, vec![text_const(salt)]),
        MaskKind::Null => (NULL, vec![]),
        MaskKind::Email => (EMAIL, vec![]),
        MaskKind::Regex {
            pattern,
            replacement,
        } => (REGEX, vec![text_const(pattern), text_const(replacement)]),
        MaskKind::Constant { value } => (CONSTANT, vec![text_const(value)]),
        MaskKind::Round { digits } => (ROUND, vec![int_const(*digits)]),
    };
    let mut expr = template(text)?.clone();
    let mut outcome = Ok(());
    if let Some(inner) = expr.node.as_mut() {
        substitute(inner, value, &args, &mut outcome);
    }
    outcome.map(|()| expr)
}

/// Replaces the placeholder column with `value` and `$n` with `args[n - 1]`.
fn substitute(
    node: &mut NodeEnum,
    value: &Node,
    args: &[Node],
    outcome: &mut Result<(), RewriteError>,
) {
    match node {
        NodeEnum::ColumnRef(c) if matches!(c.fields.as_slice(), [Node { node: Some(NodeEnum::String(s)) }] if s.sval == VALUE) => {
            if let Some(v) = &value.node {
                *node = v.clone();
            }
        }
        NodeEnum::ParamRef(p) => {
            let arg = usize::try_from(p.number)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| args.get(i))
                .and_then(|a| a.node.clone());
            match arg {
                Some(a) => *node = a,
                None => *outcome = Err(RewriteError::Internal("mask template parameter".into())),
            }
        }
        _ => for_each_child_mut(node, &mut |child| {
            if let ChildMut::Node(n) = child {
                substitute(n, value, args, outcome);
            }
        }),
    }
}

/// The SQL of `mask` applied to the column `column` (for documentation, tests and audit views).
pub fn mask_expression_sql(mask: &MaskKind, column: &str) -> Result<String, RewriteError> {
    let expr = mask_expression(mask, &super::nodes::column_ref(&[column]))?;
    let text = super::rewrite::deparse_node(NodeEnum::SelectStmt(Box::new(
        pg_query::protobuf::SelectStmt {
            target_list: vec![super::nodes::res_target("", expr)],
            limit_option: pg_query::protobuf::LimitOption::Default as i32,
            op: pg_query::protobuf::SetOperation::SetopNone as i32,
            ..Default::default()
        },
    )))?;
    Ok(text.strip_prefix("SELECT ").unwrap_or(&text).to_owned())
}

//! The masked projection that replaces a protected relation in a FROM list:
//! `(SELECT c1, <mask(c2)> AS c2, ... FROM [ONLY] schema.rel WHERE <filters> OFFSET 0) AS <alias>(<colnames>)`.
//!
//! `OFFSET 0` (added when there are row filters) keeps PostgreSQL from pulling the subquery up or pushing the
//! outer query's predicates into it, so a predicate of the user's (which may call a function that reports
//! its arguments) only ever runs on rows the filters let through, like a security-barrier view. It costs
//! index use for predicates on the filtered relation; masks alone need no barrier, as the outer query only
//! ever sees the masked expressions.

use pg_query::protobuf::{self, Alias, LimitOption, Node, SetOperation};
use pg_query::NodeEnum;

use super::error::RewriteError;
use super::expr::mask_expression;
use super::filter::filter_expression;
use super::nodes::{and_all, column_ref, int_const, node, res_target};
use super::walk::Context;
use super::RelationProtection;
use crate::resolve::QualifiedName;

/// A TABLESAMPLE clause moved inside the projection, so sampling still applies to the relation's rows.
pub(crate) struct Sample {
    pub(crate) method: Vec<Node>,
    pub(crate) args: Vec<Node>,
    pub(crate) repeatable: Option<Box<Node>>,
}

/// The subselect replacing `rv` (which resolved to `name`), aliased like `rv` so every reference to it
/// (`e.col`, `e.*`, `e`) sees the projection.
pub(crate) fn projection(
    ctx: &Context<'_>,
    rv: &protobuf::RangeVar,
    name: &QualifiedName,
    protection: &RelationProtection,
    sample: Option<Sample>,
) -> Result<NodeEnum, RewriteError> {
    let inner = protobuf::RangeVar {
        catalogname: rv.catalogname.clone(),
        schemaname: name.schema.clone(),
        relname: rv.relname.clone(),
        inh: rv.inh,
        relpersistence: if rv.relpersistence.is_empty() {
            "p".into()
        } else {
            rv.relpersistence.clone()
        },
        alias: None,
        location: -1,
    };
    let source = match sample {
        Some(s) => NodeEnum::RangeTableSample(Box::new(protobuf::RangeTableSample {
            relation: Some(Box::new(node(NodeEnum::RangeVar(inner)))),
            method: s.method,
            args: s.args,
            repeatable: s.repeatable,
            location: -1,
        })),
        None => NodeEnum::RangeVar(inner),
    };
    projection_over(ctx, rv, name, protection, source)
}

/// The subselect replacing `rv` (which resolved to `name`) that reads `source`, a FROM item whose reference
/// name is `rv`'s relation name: the relation itself, or an expanded view's query.
pub(crate) fn projection_over(
    ctx: &Context<'_>,
    rv: &protobuf::RangeVar,
    name: &QualifiedName,
    protection: &RelationProtection,
    source: NodeEnum,
) -> Result<NodeEnum, RewriteError> {
    let columns = ctx
        .protections
        .columns(name)
        .ok_or_else(|| RewriteError::UnknownColumns {
            relation: name.clone(),
        })?;
    let alias = match &rv.alias {
        Some(alias) => {
            // A column alias list renames by position, and denied columns are left out of the projection:
            // a denied column before the end of the list would shift the names onto other columns.
            let renamed = alias.colnames.len().min(columns.len());
            if let Some((column, _)) = protection
                .denied_columns
                .iter()
                .find(|(c, _)| columns[..renamed].contains(c))
            {
                return Err(RewriteError::unsupported(format!(
                    "a column alias list on {name} would rename columns around denied column {column}; \
                     alias the columns in the select list instead"
                )));
            }
            alias.clone()
        }
        None => Alias {
            aliasname: rv.relname.clone(),
            colnames: Vec::new(),
        },
    };
    let select = masked_select(&rv.relname, name, protection, columns, source)?;
    Ok(NodeEnum::RangeSubselect(Box::new(
        protobuf::RangeSubselect {
            lateral: false,
            subquery: Some(Box::new(node(NodeEnum::SelectStmt(Box::new(select))))),
            alias: Some(alias),
        },
    )))
}

/// `SELECT <masked columns> FROM source WHERE <filters> [OFFSET 0]`, where `relname` names `source`.
fn masked_select(
    relname: &str,
    name: &QualifiedName,
    protection: &RelationProtection,
    columns: &[String],
    source: NodeEnum,
) -> Result<protobuf::SelectStmt, RewriteError> {
    let mut targets = Vec::with_capacity(columns.len());
    for column in columns {
        if protection.denied_columns.iter().any(|(c, _)| c == column) {
            continue;
        }
        let reference = column_ref(&[relname, column]);
        let value = match protection.masks.iter().find(|m| &m.column == column) {
            Some(m) => mask_expression(&m.mask, &reference)?,
            None => reference,
        };
        targets.push(res_target(column, value));
    }
    let mut filters = Vec::with_capacity(protection.row_filters.len());
    for f in &protection.row_filters {
        filters.push(filter_expression(f, name, relname)?);
    }
    let barrier = (!filters.is_empty()).then(|| Box::new(int_const(0)));
    Ok(protobuf::SelectStmt {
        target_list: targets,
        from_clause: vec![node(source)],
        where_clause: and_all(filters).map(Box::new),
        limit_offset: barrier,
        limit_option: LimitOption::Default as i32,
        op: SetOperation::SetopNone as i32,
        ..Default::default()
    })
}

/// The query replacing `COPY rel [(columns)] TO`: `SELECT columns FROM <projection of rel>`.
pub(crate) fn copy_query(
    ctx: &Context<'_>,
    rv: &protobuf::RangeVar,
    name: &QualifiedName,
    protection: &RelationProtection,
    columns: &[String],
) -> Result<NodeEnum, RewriteError> {
    let bare = protobuf::RangeVar {
        alias: None,
        ..rv.clone()
    };
    let sub = projection(ctx, &bare, name, protection, None)?;
    let targets = if columns.is_empty() {
        vec![res_target(
            "",
            node(NodeEnum::ColumnRef(protobuf::ColumnRef {
                fields: vec![node(NodeEnum::AStar(protobuf::AStar {}))],
                location: -1,
            })),
        )]
    } else {
        columns
            .iter()
            .map(|c| res_target("", column_ref(&[&rv.relname, c])))
            .collect()
    };
    Ok(NodeEnum::SelectStmt(Box::new(protobuf::SelectStmt {
        target_list: targets,
        from_clause: vec![node(sub)],
        limit_option: LimitOption::Default as i32,
        op: SetOperation::SetopNone as i32,
        ..Default::default()
    })))
}

//! The rewriter's entry points: [`rewrite`] a query text, and the cheap [`touches_protected`] check.

use pg_query::protobuf::{self, RawStmt};
use pg_query::{NodeEnum, NodeRef};

use super::error::RewriteError;
use super::nodes::node;
use super::walk::{Context, Rewriter};
use super::Protections;
use crate::children::for_each_child;
use crate::resolve::{Catalog, QualifiedName, SearchPath};

/// The outcome of [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The text to send upstream instead of the original, or `None` when no statement touches a protected
    /// relation (send the original unchanged).
    pub sql: Option<String>,
    /// The protections put in place, per statement and relation, for the audit log.
    pub applied: Vec<Applied>,
}

/// The protection of one relation applied in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The statement's index in the query text (0-based).
    pub statement: usize,
    /// The protected relation.
    pub relation: QualifiedName,
    /// Masked columns with the rule masking each: `(column, rule)`.
    pub masked: Vec<(String, String)>,
    /// The rules of the row filters applied.
    pub row_filters: Vec<String>,
}

/// Whether any of `relations` (resolved names, e.g. the gateway's analysed objects) has a non-empty
/// protection or is a view to expand. When it returns false, [`rewrite`] would return the text untouched, so the gateway can skip it.
pub fn touches_protected<'a>(
    relations: impl IntoIterator<Item = &'a QualifiedName>,
    protections: &dyn Protections,
) -> bool {
    relations.into_iter().any(|r| {
        protections.protection(r).is_some_and(|p| !p.is_empty())
            || protections.view_to_expand(r).is_some()
    })
}

/// Rewrites `sql` (one or more statements) so that every reference to a protected relation reads a masked,
/// row-filtered projection of it, and write targets' masked columns are masked where referenced.
///
/// Names resolve as PostgreSQL would for a session with search path `path` and user `session_user`, using
/// `catalog`; `protections` says what is protected and lists protected relations' columns. Statements that
/// touch no protected relation are kept exactly as written; rewritten ones are deparsed from the parse tree.
/// A statement that cannot be rewritten with certainty fails the whole text (never a partial rewrite).
pub fn rewrite(
    sql: &str,
    path: &SearchPath,
    session_user: &str,
    catalog: &dyn Catalog,
    protections: &dyn Protections,
) -> Result<Rewrite, RewriteError> {
    let tree = crate::parse::parse(sql)?;
    let ctx = Context {
        path,
        session_user,
        catalog,
        protections,
    };
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    let mut applied = Vec::new();
    for (index, raw) in tree.stmts.iter().enumerate() {
        let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        let Some(protected) = first_protected(&ctx, stmt) else {
            continue;
        };
        let mut stmt = stmt.clone();
        let mut rewriter = Rewriter::new(&ctx);
        rewriter.statement(&mut stmt, &protected);
        let (changed, mut done) = rewriter.finish()?;
        if !changed {
            continue;
        }
        for a in &mut done {
            a.statement = index;
        }
        applied.extend(done);
        let text = deparse_node(stmt)?;
        let (start, end) = span(sql, raw)?;
        replacements.push((start, end, text));
    }
    if replacements.is_empty() {
        return Ok(Rewrite { sql: None, applied });
    }
    let mut out = String::with_capacity(sql.len() + 256);
    let mut at = 0;
    for (start, end, text) in &replacements {
        out.push_str(sql.get(at..*start).unwrap_or_default());
        out.push_str(text);
        at = *end;
    }
    out.push_str(sql.get(at..).unwrap_or_default());
    // The text between statements is the client's own separators and comments; check nothing there changed
    // how the result splits into statements. (A single statement's range runs to the end of the text.)
    if tree.stmts.len() == 1 {
        return Ok(Rewrite {
            sql: Some(out),
            applied,
        });
    }
    let check = crate::parse::parse(&out)
        .map_err(|e| RewriteError::Internal(format!("rewritten text does not parse: {e}")))?;
    if check.stmts.len() != tree.stmts.len() {
        return Err(RewriteError::Internal(
            "rewritten text has a different number of statements".into(),
        ));
    }
    Ok(Rewrite {
        sql: Some(out),
        applied,
    })
}

/// The byte range of a statement in the text (a length of 0 means "to the end").
fn span(sql: &str, raw: &RawStmt) -> Result<(usize, usize), RewriteError> {
    let bad = || RewriteError::Internal("statement position out of range".into());
    let start = usize::try_from(raw.stmt_location).map_err(|_| bad())?;
    let end = match usize::try_from(raw.stmt_len).map_err(|_| bad())? {
        0 => sql.len(),
        n => start.checked_add(n).ok_or_else(bad)?,
    };
    if start > end || end > sql.len() || !sql.is_char_boundary(start) || !sql.is_char_boundary(end)
    {
        return Err(bad());
    }
    Ok((start, end))
}

/// The first relation in `stmt` with a non-empty protection. Cheap and deliberately blind to CTE scopes (a
/// CTE named like a protected table only costs the full walk, which does scope them).
fn first_protected(ctx: &Context<'_>, stmt: &NodeEnum) -> Option<QualifiedName> {
    fn scan(ctx: &Context<'_>, n: NodeRef<'_>, found: &mut Option<QualifiedName>) {
        if found.is_some() {
            return;
        }
        if let NodeRef::RangeVar(rv) = n {
            let protected = ctx.protection_of(rv, &[]).map(|(name, _)| name);
            if let Some(name) = protected.or_else(|| ctx.view_of(rv, &[]).map(|(name, _)| name)) {
                *found = Some(name);
                return;
            }
        }
        for_each_child(n, &mut |child| scan(ctx, child, found));
    }
    let mut found = None;
    scan(ctx, stmt.to_ref(), &mut found);
    found
}

/// Deparses one statement (or a SELECT holding an expression) back to SQL.
pub(crate) fn deparse_node(stmt: NodeEnum) -> Result<String, RewriteError> {
    let tree = protobuf::ParseResult {
        version: PG_VERSION_NUM,
        stmts: vec![RawStmt {
            stmt: Some(Box::new(node(stmt))),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&tree, pg_query::DeparseOptions::default())
        .map_err(|e| RewriteError::Internal(format!("deparse: {e}")))
}

/// The parser version the deparser is told the tree comes from (pg_query 18's).
const PG_VERSION_NUM: i32 = 180001;

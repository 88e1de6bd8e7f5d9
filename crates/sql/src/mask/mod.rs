//! Data masking and row filters by statement rewriting: the types the policy engine hands the rewriter.
//!
//! The policy decides, per session and resource, which relations are protected and how
//! ([`RelationProtection`]); the rewriter replaces every reference to such a relation with a projection of it in
//! which protected columns are masked and rows filtered, so nothing downstream of the reference (expressions,
//! joins, predicates, error messages) ever sees a raw value.

//!
//! [`rewrite`] does the rewriting; [`touches_protected`] is the cheap check whether a statement needs it.
//!
//! What the rewrite does, in short:
//! - **Views** that read a protected relation are expanded in place into their definition, whose own
//!   references are then rewritten (names in it resolve through the path it was printed under, and are
//!   qualified so the session's path cannot change them); a security-barrier view keeps its barrier with
//!   `OFFSET 0`. Writing through such a view, or a definition calling a function outside `pg_catalog`, is
//!   refused.
//! - **Reads** (FROM, JOIN, subqueries, CTE bodies, LATERAL, set operations, `TABLE t`, the sources of
//!   INSERT/UPDATE/DELETE/MERGE, `COPY (query) TO`, `DECLARE CURSOR`, `PREPARE`, `EXPLAIN`, `CREATE TABLE AS`,
//!   `SELECT INTO`, `CREATE [MATERIALIZED] VIEW`): a protected relation becomes
//!   `(SELECT c1, <mask>(c2) AS c2, ... FROM [ONLY] schema.rel [TABLESAMPLE ...] WHERE <filters> [OFFSET 0]) AS alias`,
//!   keeping the alias (and column aliases), so `e.col`, `e.*`, `row_to_json(e)` and `SELECT e` all see the
//!   projection. Denied columns are left out of it. An unaliased reference is aliased by the relation's name,
//!   and column references naming it by schema (`hr.employees.ssn`, `db.hr.employees.*`), which PostgreSQL
//!   resolves only against a relation, are pointed at that alias (see `scope.rs`); where another item of the
//!   level has that name (`FROM hr.people, sales.people`) the projection is named `hr_people` instead.
//! - **`COPY rel [(cols)] TO`** becomes `COPY (SELECT cols FROM <projection>) TO`; `COPY ... FROM` is untouched.
//! - **Write targets** (UPDATE, DELETE, INSERT's ON CONFLICT and RETURNING): references to masked columns
//!   are replaced by the mask over them, row filters are ANDed into WHERE (and ON CONFLICT DO UPDATE's
//!   WHERE), `RETURNING *` / `t.*` expand to the masked columns; other whole-row references are refused.
//! - **Refused** ([`RewriteError`]): MERGE into a protected relation, any other statement type touching one
//!   (DDL, TRUNCATE, LOCK, ...), a protected relation in a position that is not a FROM item, a reference to
//!   a denied column, a protected relation whose columns are unknown, EXPLAIN or `current_query()` where a
//!   hash mask's salt would show, a column reference that would resolve to another item once rewritten (a
//!   bare name of same-named relations in two schemas; `hr.t.c` under an inner FROM item named `t`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::resolve::{QualifiedName, SearchPath};

#[rustfmt::skip]
mod children_mut;
mod error;
mod expr;
mod filter;
mod nodes;
mod projection;
mod rewrite;
mod scope;
mod view;
mod walk;

pub use error::RewriteError;
pub use expr::mask_expression_sql;
pub use rewrite::{rewrite, touches_protected, Applied, Rewrite};
pub use view::TRUSTED_FUNCTION_SCHEMAS;

/// How a protected column's values are replaced. Every kind maps NULL to NULL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MaskKind {
    /// Every character replaced by `X` (the length stays visible).
    Full,
    /// Keeps the first `keep_first` and last `keep_last` characters, the rest replaced by `X`; a value not longer
    /// than `keep_first + keep_last` is masked whole, so a short value is never shown in full.
    Partial {
        /// Characters kept at the start.
        #[serde(default)]
        keep_first: u32,
        /// Characters kept at the end.
        #[serde(default)]
        keep_last: u32,
    },
    /// Hex SHA-256 of `salt` followed by the value: equal values still join and group, but cannot be read.
    Hash {
        /// Prepended to the value before hashing, so a dictionary of common values cannot be precomputed.
        salt: String,
    },
    /// Always NULL.
    Null,
    /// An e-mail address with its local part masked after the first character: `a***@example.com`.
    Email,
    /// `regexp_replace(value, pattern, replacement, 'g')`.
    Regex {
        /// A POSIX regular expression as PostgreSQL understands it.
        pattern: String,
        /// The replacement, with `\1`-style back-references.
        replacement: String,
    },
    /// A constant text in place of every non-NULL value.
    Constant {
        /// The text shown.
        value: String,
    },
    /// A number rounded to `digits` decimal places (negative rounds to tens, hundreds, …).
    Round {
        /// Decimal places kept.
        #[serde(default)]
        digits: i32,
    },
}

/// One masked column of a relation and the policy rule that masks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMask {
    /// The column's name as stored in the catalog (case kept).
    pub column: String,
    /// How its values are replaced.
    pub mask: MaskKind,
    /// The id of the masking rule, for the audit log.
    pub rule: String,
}

/// A row filter: only rows for which the predicate is true are visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    /// A boolean SQL expression over the relation's columns, in which `$1`, `$2`, … stand for `values[0]`,
    /// `values[1]`, … (the session variables the policy substituted; `None` is NULL). The rewriter parses it
    /// and puts the values in as text literals in the parse tree, never by pasting strings.
    pub predicate: String,
    /// The values of the predicate's parameters.
    pub values: Vec<Option<String>>,
    /// The id of the row-filter rule, for the audit log.
    pub rule: String,
}

/// How one relation is protected for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationProtection {
    /// Masked columns.
    pub masks: Vec<ColumnMask>,
    /// Row filters; a row is visible only when all of them hold.
    pub row_filters: Vec<RowFilter>,
    /// Columns that may not be referenced at all, each with the rule that denies it.
    pub denied_columns: Vec<(String, String)>,
    /// Read only through a projection of the columns the catalog snapshot lists, though none of them is
    /// protected: a rule could select a column added since the snapshot was read, whose values must not
    /// come back unmasked before the gateway has seen it.
    pub pinned: bool,
}

impl RelationProtection {
    /// Whether nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
            && self.row_filters.is_empty()
            && self.denied_columns.is_empty()
            && !self.pinned
    }
}

/// A plain view's definition, for expanding the view in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDefinition {
    /// Its query, as `pg_get_viewdef` prints it.
    pub sql: String,
    /// The search path it was printed under: `pg_get_viewdef` leaves a name unqualified when this path
    /// finds it, so this path (not the session's) resolves it.
    pub path: Arc<SearchPath>,
    /// Whether it is a security barrier: the user's predicates must not run on rows it leaves out.
    pub security_barrier: bool,
}

/// What the rewriter asks about relations: their protection for this session, and their columns.
pub trait Protections {
    /// The protection of `relation` for this session, if any.
    fn protection(&self, relation: &QualifiedName) -> Option<&RelationProtection>;
    /// The relation's columns in order (attnum order, dropped ones left out), if known. A protected relation
    /// whose columns are unknown cannot be rewritten, so statements reading it are refused.
    fn columns(&self, relation: &QualifiedName) -> Option<&[String]>;
    /// The definition of a view that reads a protected relation, which the rewriter expands in place so the
    /// relation's protection applies inside it. `None` for every other relation (left as written).
    fn view_to_expand(&self, _view: &QualifiedName) -> Option<&ViewDefinition> {
        None
    }
}

#[cfg(test)]
mod tests;

/// Protections held in memory, for tests, benchmarks and tools (the gateway resolves its own from the
/// policy and its catalog snapshot).
#[derive(Debug, Clone, Default)]
pub struct MemoryProtections {
    /// The protection of each protected relation.
    pub protections: std::collections::HashMap<QualifiedName, RelationProtection>,
    /// The columns of each relation, in order.
    pub columns: std::collections::HashMap<QualifiedName, Vec<String>>,
    /// Views to expand, with their definitions.
    pub views: std::collections::HashMap<QualifiedName, ViewDefinition>,
}

impl Protections for MemoryProtections {
    fn protection(&self, relation: &QualifiedName) -> Option<&RelationProtection> {
        self.protections.get(relation)
    }

    fn columns(&self, relation: &QualifiedName) -> Option<&[String]> {
        self.columns.get(relation).map(Vec::as_slice)
    }

    fn view_to_expand(&self, view: &QualifiedName) -> Option<&ViewDefinition> {
        self.views.get(view)
    }
}

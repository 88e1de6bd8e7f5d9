//! The result of analysing one query text: statements and their components.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::kind::{ObjectKind, Operation, StatementKind};

/// Everything the analyser learnt from one query text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// The statements in text order; empty for an empty, whitespace-only or comment-only text.
    pub statements: Vec<Statement>,
}

impl Analysis {
    /// The first reason any statement is opaque, if one is.
    pub fn opaque_reason(&self) -> Option<&str> {
        self.statements.iter().find_map(|s| s.opaque.as_deref())
    }
}

/// One statement: its statement component, object components and session effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The statement component.
    pub kind: StatementKind,
    /// This statement's own text (trimmed), for per-statement audit records.
    pub text: String,
    /// Byte offset of `text` in the analysed query text.
    pub location: usize,
    /// The object components, deduplicated by (object, kind, operation), in first-seen order.
    pub objects: Arc<[ObjectAccess]>,
    /// `Some(reason)` when the analyser cannot attribute everything the statement does to objects; the
    /// gateway must deny such statements.
    pub opaque: Option<String>,
    /// Session state the gateway must track once the statement succeeds.
    pub effect: Option<SessionEffect>,
    /// The highest `$n` parameter referenced (0 when none).
    pub param_refs: u16,
    /// Parameters (`$n`, 1-based) whose bound value names a setting `set_config` changes: the statement
    /// is decided on the names at each execution.
    pub bound_settings: Vec<u16>,
}

impl Statement {
    /// Whether the statement could not be fully analysed.
    pub fn is_opaque(&self) -> bool {
        self.opaque.is_some()
    }
}

/// One object component: an object and what the statement does to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectAccess {
    /// The object, as written (not yet resolved against a search path; see [`crate::resolve`]).
    pub object: ObjectName,
    /// What kind of object it is.
    pub kind: ObjectKind,
    /// What the statement does to it.
    pub operation: Operation,
    /// The columns involved where the statement names them (INSERT column list, UPDATE SET targets, COPY
    /// column list, ...). Empty means "not known": treat it as every column.
    pub columns: Vec<String>,
}

/// An object name as written in the statement, already case-folded by the parser (unquoted identifiers
/// lower-cased, quoted ones kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectName {
    /// The database qualifier of a three-part name (`db.schema.name`).
    pub database: Option<String>,
    /// The schema qualifier, if written.
    pub schema: Option<String>,
    /// The object's own name.
    pub name: String,
}

impl ObjectName {
    /// An unqualified name.
    pub fn unqualified(name: impl Into<String>) -> Self {
        Self {
            database: None,
            schema: None,
            name: name.into(),
        }
    }

    /// A schema-qualified name.
    pub fn qualified(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            database: None,
            schema: Some(schema.into()),
            name: name.into(),
        }
    }

    /// Builds a name from 1 to 3 dotted parts (`name`, `schema.name`, `db.schema.name`).
    pub fn from_parts(parts: &[String]) -> Option<Self> {
        match parts {
            [name] => Some(Self::unqualified(name.clone())),
            [schema, name] => Some(Self::qualified(schema.clone(), name.clone())),
            [db, schema, name] => Some(Self {
                database: Some(db.clone()),
                schema: Some(schema.clone()),
                name: name.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{}.", crate::resolve::quote_ident(db))?;
        }
        if let Some(schema) = &self.schema {
            write!(f, "{}.", crate::resolve::quote_ident(schema))?;
        }
        f.write_str(&crate::resolve::quote_ident(&self.name))
    }
}

/// Session state a statement changes; the gateway applies it when the statement succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SessionEffect {
    /// `SET [SESSION] search_path ...` or `set_config('search_path', v, false)`: the new path, entries as
    /// PostgreSQL stores them (`$user` kept).
    SetSearchPath(Vec<String>),
    /// `SET LOCAL search_path ...` or `set_config('search_path', v, true)`: the path until the transaction ends.
    SetLocalSearchPath(Vec<String>),
    /// `RESET search_path`, `RESET ALL`, `SET search_path TO DEFAULT`: back to the session default.
    ResetSearchPath,
    /// `SET portcullis.justification = 'why'` (`Some`) or `RESET portcullis.justification` (`None`): the
    /// reason the user gives for what they do next, which policies may require. The upstream keeps it as
    /// a harmless placeholder setting.
    SetJustification(Option<String>),
    /// `DISCARD ALL`: resets the search path, deallocates every prepared statement, closes every cursor
    /// and unlistens everything.
    DiscardAll,
    /// SQL-level `PREPARE name AS statement`: the gateway applies `statement`'s components on `EXECUTE name`.
    Prepare {
        /// Prepared statement name.
        name: String,
        /// The analysed statement being prepared.
        statement: Box<Statement>,
    },
    /// `EXECUTE name` (also `EXPLAIN EXECUTE name`, `CREATE TABLE .. AS EXECUTE name`): runs the prepared
    /// statement `name`, whose components the gateway must apply.
    ExecutePrepared {
        /// Prepared statement name.
        name: String,
    },
    /// `DEALLOCATE name` / `DEALLOCATE ALL` (`None`).
    Deallocate {
        /// The statement deallocated, `None` for ALL.
        name: Option<String>,
    },
    /// `DECLARE name CURSOR FOR ...`.
    DeclareCursor {
        /// Cursor name.
        name: String,
    },
    /// `CLOSE name` / `CLOSE ALL` (`None`).
    CloseCursor {
        /// Cursor name, `None` for ALL.
        name: Option<String>,
    },
    /// `LISTEN channel`.
    Listen(String),
    /// `UNLISTEN channel` / `UNLISTEN *` (`None`).
    Unlisten(Option<String>),
}

impl SessionEffect {
    /// Whether the effect returns search_path to the session default.
    pub fn resets_search_path(&self) -> bool {
        matches!(self, Self::ResetSearchPath | Self::DiscardAll)
    }
}

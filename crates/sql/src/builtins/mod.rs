//! What PostgreSQL's own functions and catalog relations (`pg_catalog`, `information_schema`) do, so that
//! default deny can cover them: a built-in runs without a grant only when it is known to have no effect
//! outside the statement and to read nothing beyond its arguments, the catalog and the session's own
//! state; a catalog relation is read without a grant only when every role may read it and it shows no
//! other session's statements, the server's state or data values.
//!
//! The tables are generated from a live server's catalog by `generate.py` beside this file, which also
//! holds the reviewed lists behind each class. A name the tables lack (a newer server's, or one nobody
//! reviewed) is privileged: refused unless a grant names it.

mod functions;
mod relations;

/// What calling a built-in function does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionClass {
    /// Immutable in every overload: a function of its arguments alone.
    Pure,
    /// Reads only its arguments, the catalog, settings and the session's own state; no effect outside
    /// the statement.
    Reads,
    /// Has effects outside the statement (signals, locks, large objects, replication, WAL, sequences,
    /// configuration) or reads other sessions' or the server's state: needs a grant naming it.
    Privileged,
    /// Runs SQL given to it as text, which the gateway cannot analyse.
    RunsSql,
    /// Reaches the database server's files.
    ServerFiles,
}

impl FunctionClass {
    /// Whether a call needs no grant.
    pub fn is_harmless(self) -> bool {
        matches!(self, Self::Pure | Self::Reads)
    }

    /// Why a call makes the statement opaque, for the classes no grant can allow.
    pub fn unanalysable(self) -> Option<&'static str> {
        match self {
            Self::RunsSql => Some("runs SQL given as text, which the gateway cannot analyse"),
            Self::ServerFiles => Some("reaches the database server's files"),
            Self::Pure | Self::Reads | Self::Privileged => None,
        }
    }
}

/// Why a call of the built-in `name` with `args` arguments cannot be analysed, for names whose overloads
/// differ: the table classes such a name by its harmless overloads (`BY_ARITY` in `generate.py`), and the
/// others are told apart here by their argument count. `ts_rewrite(query, target, substitute)` is pure;
/// `ts_rewrite(query, 'SELECT …')` runs its second argument as SQL.
pub fn unanalysable_overload(name: &str, args: usize) -> Option<&'static str> {
    (name == "ts_rewrite" && args != 3)
        .then_some("with a query as text runs SQL given as text, which the gateway cannot analyse")
}

/// Whether a catalog relation may be read without a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationClass {
    /// Every role may read it, and it shows only definitions.
    Public,
    /// Not readable by every role, or it shows other sessions' statements, the server's state, data
    /// values (statistics) or secrets (user mapping options): needs a grant naming it.
    Privileged,
}

/// The schemas whose objects these tables classify.
pub const BUILTIN_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// The class of the built-in function `schema.name` (any overload); `None` outside the built-in schemas.
/// A built-in the table lacks is [`FunctionClass::Privileged`].
pub fn function_class(schema: &str, name: &str) -> Option<FunctionClass> {
    classify(
        functions::FUNCTIONS,
        schema,
        name,
        FunctionClass::Privileged,
    )
}

/// The class of the catalog relation `schema.name`; `None` outside the built-in schemas. A relation the
/// table lacks is [`RelationClass::Privileged`].
pub fn relation_class(schema: &str, name: &str) -> Option<RelationClass> {
    classify(
        relations::RELATIONS,
        schema,
        name,
        RelationClass::Privileged,
    )
}

/// Looks `schema.name` up in a table sorted by schema and name; `unlisted` for a built-in it lacks.
fn classify<C: Copy>(
    table: &[(&str, &str, C)],
    schema: &str,
    name: &str,
    unlisted: C,
) -> Option<C> {
    if !BUILTIN_SCHEMAS.contains(&schema) {
        return None;
    }
    let found = table
        .binary_search_by(|(s, n, _)| (*s, *n).cmp(&(schema, name)))
        .ok()
        .and_then(|i| table.get(i));
    Some(found.map_or(unlisted, |(_, _, class)| *class))
}

/// Every classified function, for the test that compares the table with a live server's catalog.
pub fn classified_functions() -> impl Iterator<Item = (&'static str, &'static str)> {
    functions::FUNCTIONS.iter().map(|(s, n, _)| (*s, *n))
}

/// Every classified relation, for the test that compares the table with a live server's catalog.
pub fn classified_relations() -> impl Iterator<Item = (&'static str, &'static str)> {
    relations::RELATIONS.iter().map(|(s, n, _)| (*s, *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(functions::FUNCTIONS
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
        assert!(relations::RELATIONS
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
    }

    #[test]
    fn classes_follow_what_a_function_does() {
        let class = |name| function_class("pg_catalog", name);
        assert_eq!(class("lower"), Some(FunctionClass::Pure));
        assert_eq!(class("now"), Some(FunctionClass::Reads));
        assert_eq!(class("pg_get_viewdef"), Some(FunctionClass::Reads));
        for privileged in [
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "lo_from_bytea",
            "lo_unlink",
            "pg_create_physical_replication_slot",
            "pg_switch_wal",
            "pg_stat_reset",
            "pg_notify",
            "pg_advisory_lock",
            "nextval",
            "setval",
            "pg_stat_get_activity",
            "pg_replication_origin_create",
            "no_such_builtin",
        ] {
            assert_eq!(
                class(privileged),
                Some(FunctionClass::Privileged),
                "{privileged}"
            );
        }
        assert_eq!(class("query_to_xml"), Some(FunctionClass::RunsSql));
        assert_eq!(class("pg_read_file"), Some(FunctionClass::ServerFiles));
        assert_eq!(class("lo_import"), Some(FunctionClass::ServerFiles));
        assert_eq!(function_class("public", "lower"), None);
        // ts_rewrite's three-argument form is pure; the two-argument one runs a query given as text.
        assert_eq!(class("ts_rewrite"), Some(FunctionClass::Pure));
        assert!(unanalysable_overload("ts_rewrite", 3).is_none());
        assert!(unanalysable_overload("ts_rewrite", 2).is_some());
        assert!(unanalysable_overload("lower", 1).is_none());
    }

    #[test]
    fn catalog_relations_that_reveal_need_a_grant() {
        let class = |name| relation_class("pg_catalog", name);
        assert_eq!(class("pg_class"), Some(RelationClass::Public));
        assert_eq!(
            relation_class("information_schema", "tables"),
            Some(RelationClass::Public)
        );
        for privileged in [
            "pg_stat_activity",
            "pg_authid",
            "pg_stats",
            "pg_settings",
            "pg_locks",
        ] {
            assert_eq!(
                class(privileged),
                Some(RelationClass::Privileged),
                "{privileged}"
            );
        }
    }
}

//! The statement component (kind) and the vocabulary of object components (object kind, operation).

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! tagged_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $tag:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The lowercase name used in rules, audit records and serialisation.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $tag,)* }
            }

            /// The variant whose [`as_str`](Self::as_str) is `tag` (ASCII case-insensitive).
            pub fn from_tag(tag: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(tag))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

tagged_enum! {
    /// What kind of database object an object component names.
    pub enum ObjectKind {
        /// Table, view, materialized view, foreign table, index or anything else in `pg_class`
        /// referenced where a relation is expected.
        Relation => "relation",
        /// Function, procedure or aggregate.
        Function => "function",
        /// Schema (namespace).
        Schema => "schema",
        /// Database.
        Database => "database",
        /// Sequence named in sequence DDL (sequences read in FROM are reported as relations).
        Sequence => "sequence",
        /// Type or domain.
        Type => "type",
        /// Role.
        Role => "role",
        /// A server setting (`SET`, `set_config`, `ALTER SYSTEM`, a startup parameter). A dotted name
        /// (`app.tenant`) is reported with its prefix as the schema, so `app.*` patterns select it.
        Setting => "setting",
        /// A `LISTEN`/`NOTIFY` channel.
        Channel => "channel",
        /// An operation on the server as a whole, named by what it does (`checkpoint`, `load`,
        /// `prepared_transactions`, `all_tables`).
        Server => "server",
        /// An extension (`CREATE EXTENSION`); extensions have no schema of their own.
        Extension => "extension",
        /// A logical-replication publication: which tables' changes are sent to subscribers.
        Publication => "publication",
        /// A logical-replication subscription: a connection to another server that writes into this one.
        Subscription => "subscription",
        /// An event trigger: a function run on DDL of any session.
        EventTrigger => "event-trigger",
        /// A foreign-data wrapper.
        ForeignDataWrapper => "foreign-data-wrapper",
        /// A foreign server; user mappings, which hold credentials for it, are reported as altering it.
        ForeignServer => "foreign-server",
        /// A tablespace (a directory on the database server).
        Tablespace => "tablespace",
        /// A procedural language.
        Language => "language",
        /// An index or table access method.
        AccessMethod => "access-method",
        /// A large object, named by its OID (`GRANT ... ON LARGE OBJECT 16409`).
        LargeObject => "large-object",
        /// Anything else: objects that live in schemas but are no relation, function or type (collation,
        /// conversion, operator, operator class and family, text search objects, statistics objects).
        Other => "other",
    }
}

impl ObjectKind {
    /// Whether objects of this kind live in a schema, so that an unqualified name is resolved through
    /// the search path. The others (schemas, databases, roles, settings, channels, server operations,
    /// extensions, publications, ...) have one name per database or server and are reported unqualified.
    pub fn lives_in_schema(self) -> bool {
        matches!(
            self,
            Self::Relation | Self::Function | Self::Sequence | Self::Type | Self::Other
        )
    }

    /// Whether a denial names this kind before the object (`lacks ADMIN on server checkpoint`), because
    /// the name alone does not say what it is: everything outside schemas but schemas, databases and
    /// roles, whose names read as what they are in the messages users know.
    pub fn named_in_messages(self) -> bool {
        !self.lives_in_schema() && !matches!(self, Self::Schema | Self::Database | Self::Role)
    }
}

tagged_enum! {
    /// What a statement does to one object.
    pub enum Operation {
        /// Rows are read (SELECT, subqueries, RETURNING, USING/FROM lists, MERGE source).
        Read => "read",
        /// Rows are inserted.
        Insert => "insert",
        /// Rows are updated.
        Update => "update",
        /// Rows are deleted.
        Delete => "delete",
        /// The relation is truncated.
        Truncate => "truncate",
        /// `COPY ... FROM` loads rows into the relation.
        CopyIn => "copy-in",
        /// `COPY ... TO` exports the relation's rows (or a query's rows read from it).
        CopyOut => "copy-out",
        /// A function or procedure is called.
        Execute => "execute",
        /// The object is created.
        Create => "create",
        /// The object's definition, owner, name, comment, ... is changed.
        Alter => "alter",
        /// The object is dropped.
        Drop => "drop",
        /// Privileges on the object are granted or revoked.
        Grant => "grant",
        /// The relation is explicitly locked.
        Lock => "lock",
        /// Maintenance: VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW.
        Maintain => "maintain",
        /// A setting that is not an ordinary user setting is changed for the session (`SET`, `RESET`,
        /// `set_config`, a startup parameter).
        Set => "set",
        /// A setting is changed for the whole server (`ALTER SYSTEM`).
        AlterSystem => "alter-system",
        /// A notification is sent on a channel (`NOTIFY`).
        Notify => "notify",
        /// The session listens on a channel (`LISTEN`).
        Listen => "listen",
        /// A server-wide operation (`CHECKPOINT`, `LOAD`, two-phase commit of any session's transaction).
        Admin => "admin",
        /// Any other access.
        Other => "other",
    }
}

/// The statement component: what kind of statement this is. [`as_str`](Self::as_str) gives PostgreSQL's
/// command-tag style name (`"SELECT"`, `"CREATE TABLE AS"`), which is also how it serialises.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE t` and set operations.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// `CREATE TABLE ... AS`.
    CreateTableAs,
    /// `SELECT ... INTO new_table`.
    SelectInto,
    /// `CREATE MATERIALIZED VIEW`.
    CreateMaterializedView,
    /// `REFRESH MATERIALIZED VIEW`.
    RefreshMaterializedView,
    /// `CREATE TABLE`.
    CreateTable,
    /// `CREATE VIEW`.
    CreateView,
    /// `ALTER TABLE` (also ALTER INDEX/VIEW/... that PostgreSQL parses as ALTER TABLE).
    AlterTable,
    /// `DROP <anything>` except DROP DATABASE/ROLE.
    Drop,
    /// `TRUNCATE`.
    Truncate,
    /// `COPY`.
    Copy,
    /// `SET`.
    Set,
    /// `SHOW`.
    Show,
    /// `RESET`.
    Reset,
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT`.
    Rollback,
    /// `SAVEPOINT`.
    Savepoint,
    /// `RELEASE SAVEPOINT`.
    Release,
    /// `ROLLBACK TO SAVEPOINT`.
    RollbackToSavepoint,
    /// `PREPARE TRANSACTION`.
    PrepareTransaction,
    /// `COMMIT PREPARED`.
    CommitPrepared,
    /// `ROLLBACK PREPARED`.
    RollbackPrepared,
    /// SQL-level `PREPARE name AS ...`.
    Prepare,
    /// SQL-level `EXECUTE name`.
    Execute,
    /// `DEALLOCATE`.
    Deallocate,
    /// `DECLARE ... CURSOR`.
    DeclareCursor,
    /// `FETCH`.
    Fetch,
    /// `MOVE`.
    Move,
    /// `CLOSE`.
    ClosePortal,
    /// `EXPLAIN`.
    Explain,
    /// `DO`.
    Do,
    /// `CALL`.
    Call,
    /// `GRANT` on objects.
    Grant,
    /// `REVOKE` on objects.
    Revoke,
    /// `GRANT role TO role`.
    GrantRole,
    /// `REVOKE role FROM role`.
    RevokeRole,
    /// `LISTEN`.
    Listen,
    /// `NOTIFY`.
    Notify,
    /// `UNLISTEN`.
    Unlisten,
    /// `DISCARD`.
    Discard,
    /// `VACUUM`.
    Vacuum,
    /// `ANALYZE`.
    Analyze,
    /// `CLUSTER`.
    Cluster,
    /// `REINDEX`.
    Reindex,
    /// `LOCK TABLE`.
    Lock,
    /// `CREATE INDEX`.
    CreateIndex,
    /// `CREATE FUNCTION`.
    CreateFunction,
    /// `CREATE PROCEDURE`.
    CreateProcedure,
    /// `CREATE SCHEMA`.
    CreateSchema,
    /// `CREATE SEQUENCE`.
    CreateSequence,
    /// `ALTER SEQUENCE`.
    AlterSequence,
    /// `COMMENT ON`.
    Comment,
    /// `CHECKPOINT`.
    Checkpoint,
    /// Any other statement; the string is its command tag (`"ALTER SYSTEM"`) or, for statement types the
    /// analyser does not support, the parse node's name.
    Other(String),
}

impl StatementKind {
    /// Every kind except [`StatementKind::Other`].
    pub const KNOWN: &'static [StatementKind] = &[
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Merge,
        Self::CreateTableAs,
        Self::SelectInto,
        Self::CreateMaterializedView,
        Self::RefreshMaterializedView,
        Self::CreateTable,
        Self::CreateView,
        Self::AlterTable,
        Self::Drop,
        Self::Truncate,
        Self::Copy,
        Self::Set,
        Self::Show,
        Self::Reset,
        Self::Begin,
        Self::Commit,
        Self::Rollback,
        Self::Savepoint,
        Self::Release,
        Self::RollbackToSavepoint,
        Self::PrepareTransaction,
        Self::CommitPrepared,
        Self::RollbackPrepared,
        Self::Prepare,
        Self::Execute,
        Self::Deallocate,
        Self::DeclareCursor,
        Self::Fetch,
        Self::Move,
        Self::ClosePortal,
        Self::Explain,
        Self::Do,
        Self::Call,
        Self::Grant,
        Self::Revoke,
        Self::GrantRole,
        Self::RevokeRole,
        Self::Listen,
        Self::Notify,
        Self::Unlisten,
        Self::Discard,
        Self::Vacuum,
        Self::Analyze,
        Self::Cluster,
        Self::Reindex,
        Self::Lock,
        Self::CreateIndex,
        Self::CreateFunction,
        Self::CreateProcedure,
        Self::CreateSchema,
        Self::CreateSequence,
        Self::AlterSequence,
        Self::Comment,
        Self::Checkpoint,
    ];

    /// The parse nodes of statement types the analyser leaves refused, as PostgreSQL's parser names them.
    /// None is a statement a client can send on its own — PL/pgSQL assignments, `RETURN` inside a
    /// `BEGIN ATOMIC` body, wrapper and post-analysis nodes — so a rule naming one is for completeness:
    /// whatever reaches the fallback can be named (see [`StatementKind::unanalysed`]).
    pub const UNANALYSED_NODES: &'static [&'static str] = &[
        "PlassignStmt",
        "RawStmt",
        "ReplicaIdentityStmt",
        "ReturnStmt",
        "SetOperationStmt",
    ];

    /// The kind of a statement whose parse node `node_name` (`ReturnStmt`) the analyser does not know:
    /// the node name upper-cased, as [`from_tag`](Self::from_tag) reads a rule's `ReturnStmt`, so an
    /// explicit `allow` rule can name it.
    pub fn unanalysed(node_name: &str) -> Self {
        Self::Other(node_name.to_ascii_uppercase())
    }

    /// Whether `self` is the kind of an unanalysed parse node listed in
    /// [`UNANALYSED_NODES`](Self::UNANALYSED_NODES).
    pub fn is_unanalysed_node(&self) -> bool {
        matches!(self, Self::Other(tag)
            if Self::UNANALYSED_NODES.iter().any(|n| n.eq_ignore_ascii_case(tag)))
    }

    /// Whether a statement of this kind that touches no object needs no privilege: it reads nothing,
    /// changes only the session's own state or transaction, or is judged by what it names elsewhere
    /// (`EXECUTE` by its prepared statement, `FETCH` by its cursor). Any other kind must come with at least
    /// one object component a grant can cover, or the analyser refuses it.
    pub fn needs_no_privilege(&self) -> bool {
        matches!(
            self,
            Self::Select
                | Self::Set
                | Self::Show
                | Self::Reset
                | Self::Begin
                | Self::Commit
                | Self::Rollback
                | Self::Savepoint
                | Self::Release
                | Self::RollbackToSavepoint
                | Self::Prepare
                | Self::Execute
                | Self::Deallocate
                | Self::DeclareCursor
                | Self::Fetch
                | Self::Move
                | Self::ClosePortal
                | Self::Explain
                | Self::Unlisten
                | Self::Discard
        ) || matches!(self, Self::Other(tag) if tag == "SET CONSTRAINTS")
    }

    /// Whether this is plain DML: `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `MERGE`.
    pub fn is_dml(&self) -> bool {
        matches!(
            self,
            Self::Select | Self::Insert | Self::Update | Self::Delete | Self::Merge
        )
    }

    /// Whether a statement of this kind can read or change rows, so that a row count means something:
    /// not transaction control, settings or DDL.
    pub fn moves_rows(&self) -> bool {
        matches!(
            self,
            Self::Select
                | Self::Insert
                | Self::Update
                | Self::Delete
                | Self::Merge
                | Self::CreateTableAs
                | Self::SelectInto
                | Self::CreateMaterializedView
                | Self::RefreshMaterializedView
                | Self::Copy
                | Self::Execute
                | Self::DeclareCursor
                | Self::Fetch
                | Self::Move
                | Self::Explain
                | Self::Call
        )
    }

    /// The command-tag style name: `"SELECT"`, `"CREATE TABLE AS"`, `"ROLLBACK TO SAVEPOINT"`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Merge => "MERGE",
            Self::CreateTableAs => "CREATE TABLE AS",
            Self::SelectInto => "SELECT INTO",
            Self::CreateMaterializedView => "CREATE MATERIALIZED VIEW",
            Self::RefreshMaterializedView => "REFRESH MATERIALIZED VIEW",
            Self::CreateTable => "CREATE TABLE",
            Self::CreateView => "CREATE VIEW",
            Self::AlterTable => "ALTER TABLE",
            Self::Drop => "DROP",
            Self::Truncate => "TRUNCATE",
            Self::Copy => "COPY",
            Self::Set => "SET",
            Self::Show => "SHOW",
            Self::Reset => "RESET",
            Self::Begin => "BEGIN",
            Self::Commit => "COMMIT",
            Self::Rollback => "ROLLBACK",
            Self::Savepoint => "SAVEPOINT",
            Self::Release => "RELEASE",
            Self::RollbackToSavepoint => "ROLLBACK TO SAVEPOINT",
            Self::PrepareTransaction => "PREPARE TRANSACTION",
            Self::CommitPrepared => "COMMIT PREPARED",
            Self::RollbackPrepared => "ROLLBACK PREPARED",
            Self::Prepare => "PREPARE",
            Self::Execute => "EXECUTE",
            Self::Deallocate => "DEALLOCATE",
            Self::DeclareCursor => "DECLARE CURSOR",
            Self::Fetch => "FETCH",
            Self::Move => "MOVE",
            Self::ClosePortal => "CLOSE",
            Self::Explain => "EXPLAIN",
            Self::Do => "DO",
            Self::Call => "CALL",
            Self::Grant => "GRANT",
            Self::Revoke => "REVOKE",
            Self::GrantRole => "GRANT ROLE",
            Self::RevokeRole => "REVOKE ROLE",
            Self::Listen => "LISTEN",
            Self::Notify => "NOTIFY",
            Self::Unlisten => "UNLISTEN",
            Self::Discard => "DISCARD",
            Self::Vacuum => "VACUUM",
            Self::Analyze => "ANALYZE",
            Self::Cluster => "CLUSTER",
            Self::Reindex => "REINDEX",
            Self::Lock => "LOCK TABLE",
            Self::CreateIndex => "CREATE INDEX",
            Self::CreateFunction => "CREATE FUNCTION",
            Self::CreateProcedure => "CREATE PROCEDURE",
            Self::CreateSchema => "CREATE SCHEMA",
            Self::CreateSequence => "CREATE SEQUENCE",
            Self::AlterSequence => "ALTER SEQUENCE",
            Self::Comment => "COMMENT",
            Self::Checkpoint => "CHECKPOINT",
            Self::Other(tag) => tag,
        }
    }

    /// The kind named `tag` (as in rule files): a known kind if the tag matches one (case- and
    /// whitespace-insensitive), otherwise `Other` with the tag upper-cased and its spaces normalised.
    pub fn from_tag(tag: &str) -> Self {
        let normal = tag
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        Self::KNOWN
            .iter()
            .find(|k| k.as_str() == normal)
            .cloned()
            .unwrap_or(Self::Other(normal))
    }
}

impl fmt::Display for StatementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StatementKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for k in StatementKind::KNOWN {
            assert_eq!(&StatementKind::from_tag(k.as_str()), k);
        }
        assert_eq!(
            StatementKind::from_tag("create  table as"),
            StatementKind::CreateTableAs
        );
        assert_eq!(
            StatementKind::from_tag("alter system"),
            StatementKind::Other("ALTER SYSTEM".into())
        );
        for op in Operation::ALL {
            assert_eq!(Operation::from_tag(op.as_str()), Some(*op));
        }
        assert_eq!(Operation::CopyOut.to_string(), "copy-out");
        assert_eq!(ObjectKind::from_tag("Relation"), Some(ObjectKind::Relation));
    }

    #[test]
    fn serialises_as_strings() {
        assert_eq!(
            serde_json::to_string(&StatementKind::CreateTableAs).unwrap(),
            "\"CREATE TABLE AS\""
        );
        assert_eq!(
            serde_json::to_string(&Operation::CopyIn).unwrap(),
            "\"copy-in\""
        );
        assert_eq!(
            serde_json::to_string(&ObjectKind::Function).unwrap(),
            "\"function\""
        );
    }
}

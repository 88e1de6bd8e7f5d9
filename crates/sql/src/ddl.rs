//! DDL beyond tables, views and functions: rules, statistics, range types, publications and
//! subscriptions, casts, operators, text search, foreign data, tablespaces, languages, access methods,
//! event triggers, default privileges, security labels and ownership changes.
//!
//! Each statement is reported as the objects it creates, alters or drops, in the vocabulary every other
//! statement uses, so a grant decides it like any DDL. What a created object will run later — a rule's
//! actions, a cast's or a language's function, an event trigger's function — is reported too: those
//! run with the owner's rights on statements of other sessions, so whoever creates them needs what they
//! do. Expressions inside (a statistics object's, a publication's row filter) are walked like any other.

use pg_query::protobuf::{
    self, node::Node as NodeEnum, AlterPublicationAction, ImportForeignSchemaType, ObjectType,
    PublicationObjSpecType,
};
use pg_query::NodeRef;

use crate::analysis::ObjectName;
use crate::kind::{ObjectKind, Operation, StatementKind};
use crate::statements::{
    add_parts, alter_kind, classify, name_parts, object_ref, role_name, server, ALL_TABLES,
};
use crate::walker::{string_list, Walker};

/// Fills `w` for a DDL statement handled here and returns its kind; `None` for a node this module does
/// not know (the caller refuses it).
pub(crate) fn classify_ddl(node: NodeRef<'_>, w: &mut Walker) -> Option<StatementKind> {
    use ObjectKind as O;
    use Operation::{Alter, Create, Drop, Execute};
    let kind = match node {
        NodeRef::RuleStmt(s) => {
            rule(s, w);
            tag("CREATE RULE")
        }
        NodeRef::CreateStatsStmt(s) => {
            statistics(s, w);
            tag("CREATE STATISTICS")
        }
        NodeRef::AlterStatsStmt(s) => {
            add_parts(w, &s.defnames, O::Other, Alter);
            tag("ALTER STATISTICS")
        }
        NodeRef::CreateRangeStmt(s) => {
            add_parts(w, &s.type_name, O::Type, Create);
            for d in def_elems(&s.params) {
                match d.defname.as_str() {
                    // The multirange type PostgreSQL creates alongside; by default it is named after
                    // the range, which the range's own component already covers.
                    "multirange_type_name" => named_arg(w, d, O::Type, Create),
                    "canonical" | "subtype_diff" => named_arg(w, d, O::Function, Execute),
                    _ => {}
                }
            }
            tag("CREATE TYPE")
        }
        NodeRef::AlterTypeStmt(s) => {
            add_parts(w, &s.type_name, O::Type, Alter);
            called_functions(w, &s.options);
            tag("ALTER TYPE")
        }
        NodeRef::AlterDomainStmt(s) => {
            add_parts(w, &s.type_name, O::Type, Alter);
            w.walk_opt(&s.def);
            tag("ALTER DOMAIN")
        }
        NodeRef::AlterOperatorStmt(s) => {
            if let Some(op) = &s.opername {
                add_parts(w, &op.objname, O::Other, Alter);
            }
            called_functions(w, &s.options);
            tag("ALTER OPERATOR")
        }
        NodeRef::CreateOpClassStmt(s) => {
            add_parts(w, &s.opclassname, O::Other, Create);
            if !s.opfamilyname.is_empty() {
                add_parts(w, &s.opfamilyname, O::Other, Alter);
            }
            support_functions(w, &s.items);
            tag("CREATE OPERATOR CLASS")
        }
        NodeRef::CreateOpFamilyStmt(s) => {
            add_parts(w, &s.opfamilyname, O::Other, Create);
            tag("CREATE OPERATOR FAMILY")
        }
        NodeRef::AlterOpFamilyStmt(s) => {
            add_parts(w, &s.opfamilyname, O::Other, Alter);
            support_functions(w, &s.items);
            tag("ALTER OPERATOR FAMILY")
        }
        NodeRef::AlterCollationStmt(s) => {
            add_parts(w, &s.collname, O::Other, Alter);
            tag("ALTER COLLATION")
        }
        NodeRef::CreateConversionStmt(s) => {
            add_parts(w, &s.conversion_name, O::Other, Create);
            add_parts(w, &s.func_name, O::Function, Execute);
            tag("CREATE CONVERSION")
        }
        NodeRef::AlterTsconfigurationStmt(s) => {
            add_parts(w, &s.cfgname, O::Other, Alter);
            tag("ALTER TEXT SEARCH CONFIGURATION")
        }
        NodeRef::AlterTsdictionaryStmt(s) => {
            add_parts(w, &s.dictname, O::Other, Alter);
            tag("ALTER TEXT SEARCH DICTIONARY")
        }
        NodeRef::CreateCastStmt(s) => {
            // A cast has no name: it changes how its two types convert, and PostgreSQL lets only the
            // owner of one of them create or drop it, so it is an alteration of both.
            for t in [&s.sourcetype, &s.targettype].into_iter().flatten() {
                add_parts(w, &t.names, O::Type, Alter);
            }
            if let Some(f) = &s.func {
                add_parts(w, &f.objname, O::Function, Execute);
            }
            tag("CREATE CAST")
        }
        NodeRef::CreateTransformStmt(s) => {
            if let Some(t) = &s.type_name {
                add_parts(w, &t.names, O::Type, Alter);
            }
            for f in [&s.fromsql, &s.tosql].into_iter().flatten() {
                add_parts(w, &f.objname, O::Function, Execute);
            }
            tag("CREATE TRANSFORM")
        }
        NodeRef::CreatePublicationStmt(s) => {
            global(w, &s.pubname, O::Publication, Create);
            publication_objects(w, &s.pubobjects, s.for_all_tables);
            tag("CREATE PUBLICATION")
        }
        NodeRef::AlterPublicationStmt(s) => {
            global(w, &s.pubname, O::Publication, Alter);
            // Removing tables sends less; only adding or setting them exposes rows.
            if s.action != AlterPublicationAction::ApDropObjects as i32 {
                publication_objects(w, &s.pubobjects, s.for_all_tables);
            }
            tag("ALTER PUBLICATION")
        }
        NodeRef::CreateSubscriptionStmt(s) => {
            global(w, &s.subname, O::Subscription, Create);
            tag("CREATE SUBSCRIPTION")
        }
        NodeRef::AlterSubscriptionStmt(s) => {
            global(w, &s.subname, O::Subscription, Alter);
            tag("ALTER SUBSCRIPTION")
        }
        NodeRef::DropSubscriptionStmt(s) => {
            global(w, &s.subname, O::Subscription, Drop);
            tag("DROP SUBSCRIPTION")
        }
        NodeRef::CreateEventTrigStmt(s) => {
            global(w, &s.trigname, O::EventTrigger, Create);
            add_parts(w, &s.funcname, O::Function, Execute);
            tag("CREATE EVENT TRIGGER")
        }
        NodeRef::AlterEventTrigStmt(s) => {
            global(w, &s.trigname, O::EventTrigger, Alter);
            tag("ALTER EVENT TRIGGER")
        }
        NodeRef::CreateFdwStmt(s) => {
            global(w, &s.fdwname, O::ForeignDataWrapper, Create);
            called_functions(w, &s.func_options);
            tag("CREATE FOREIGN DATA WRAPPER")
        }
        NodeRef::AlterFdwStmt(s) => {
            global(w, &s.fdwname, O::ForeignDataWrapper, Alter);
            called_functions(w, &s.func_options);
            tag("ALTER FOREIGN DATA WRAPPER")
        }
        NodeRef::CreateForeignServerStmt(s) => {
            global(w, &s.servername, O::ForeignServer, Create);
            tag("CREATE SERVER")
        }
        NodeRef::AlterForeignServerStmt(s) => {
            global(w, &s.servername, O::ForeignServer, Alter);
            tag("ALTER SERVER")
        }
        // A user mapping holds the credentials a role uses on a foreign server: it is part of the
        // server, and changing one is altering the server.
        NodeRef::CreateUserMappingStmt(s) => {
            global(w, &s.servername, O::ForeignServer, Alter);
            tag("CREATE USER MAPPING")
        }
        NodeRef::AlterUserMappingStmt(s) => {
            global(w, &s.servername, O::ForeignServer, Alter);
            tag("ALTER USER MAPPING")
        }
        NodeRef::DropUserMappingStmt(s) => {
            global(w, &s.servername, O::ForeignServer, Alter);
            tag("DROP USER MAPPING")
        }
        NodeRef::ImportForeignSchemaStmt(s) => {
            import_foreign_schema(s, w);
            tag("IMPORT FOREIGN SCHEMA")
        }
        NodeRef::CreateTableSpaceStmt(s) => {
            global(w, &s.tablespacename, O::Tablespace, Create);
            tag("CREATE TABLESPACE")
        }
        NodeRef::AlterTableSpaceOptionsStmt(s) => {
            global(w, &s.tablespacename, O::Tablespace, Alter);
            tag("ALTER TABLESPACE")
        }
        NodeRef::DropTableSpaceStmt(s) => {
            global(w, &s.tablespacename, O::Tablespace, Drop);
            tag("DROP TABLESPACE")
        }
        NodeRef::AlterTableMoveAllStmt(s) => {
            global(w, &s.orig_tablespacename, O::Tablespace, Alter);
            global(w, &s.new_tablespacename, O::Tablespace, Alter);
            // Which relations move is decided by the server (all of them in the tablespace, or a
            // role's): no grant on named tables can cover that.
            server(w, ALL_TABLES, Alter);
            alter_kind(s.objtype)
        }
        NodeRef::CreatePlangStmt(s) => {
            global(w, &s.plname, O::Language, Create);
            for f in [&s.plhandler, &s.plinline, &s.plvalidator] {
                if !f.is_empty() {
                    add_parts(w, f, O::Function, Execute);
                }
            }
            tag("CREATE LANGUAGE")
        }
        NodeRef::CreateAmStmt(s) => {
            global(w, &s.amname, O::AccessMethod, Create);
            add_parts(w, &s.handler_name, O::Function, Execute);
            tag("CREATE ACCESS METHOD")
        }
        NodeRef::AlterExtensionContentsStmt(s) => {
            global(w, &s.extname, O::Extension, Alter);
            match s.object.as_deref() {
                Some(o) => object_ref(w, s.objtype, o, Alter),
                None => w.opaque("ALTER EXTENSION without an object"),
            }
            tag("ALTER EXTENSION")
        }
        NodeRef::AlterObjectDependsStmt(s) => {
            match (&s.relation, s.object.as_deref()) {
                // A trigger or policy depends through its table; an index, view or matview is one.
                (Some(rel), _) => w.relation(rel, Alter, Vec::new()),
                (None, Some(o)) => object_ref(w, s.object_type, o, Alter),
                (None, None) => w.opaque("ALTER ... DEPENDS ON EXTENSION without an object"),
            }
            alter_kind(s.object_type)
        }
        NodeRef::AlterDatabaseRefreshCollStmt(s) => {
            global(w, &s.dbname, O::Database, Alter);
            tag("ALTER DATABASE")
        }
        NodeRef::AlterDefaultPrivilegesStmt(s) => {
            default_privileges(s, w);
            tag("ALTER DEFAULT PRIVILEGES")
        }
        NodeRef::SecLabelStmt(s) => {
            match s.object.as_deref() {
                Some(o) => object_ref(w, s.objtype, o, Alter),
                None => w.opaque("SECURITY LABEL without an object"),
            }
            tag("SECURITY LABEL")
        }
        // DROP OWNED drops everything the roles own (and revokes what they were granted): as much
        // as dropping the roles themselves.
        NodeRef::DropOwnedStmt(s) => {
            roles(w, &s.roles, Drop);
            tag("DROP OWNED")
        }
        NodeRef::ReassignOwnedStmt(s) => {
            roles(w, &s.roles, Alter);
            if let Some(r) = &s.newrole {
                global(w, &role_name(r), O::Role, Alter);
            }
            tag("REASSIGN OWNED")
        }
        _ => return None,
    };
    Some(kind)
}

fn tag(tag: &str) -> StatementKind {
    StatementKind::Other(tag.to_owned())
}

/// Records `operation` on an object without a schema (publication, tablespace, ...).
fn global(w: &mut Walker, name: &str, kind: ObjectKind, operation: Operation) {
    w.add(ObjectName::unqualified(name), kind, operation, Vec::new());
}

fn roles(w: &mut Walker, nodes: &[protobuf::Node], operation: Operation) {
    for r in nodes {
        match &r.node {
            Some(NodeEnum::RoleSpec(r)) => global(w, &role_name(r), ObjectKind::Role, operation),
            _ => w.opaque("unexpected node in a role list"),
        }
    }
}

fn def_elems(nodes: &[protobuf::Node]) -> impl Iterator<Item = &protobuf::DefElem> {
    nodes.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::DefElem(d)) => Some(d.as_ref()),
        _ => None,
    })
}

/// Records the object an option names (`canonical = my_fn`, `HANDLER my_handler`).
fn named_arg(w: &mut Walker, d: &protobuf::DefElem, kind: ObjectKind, operation: Operation) {
    match d.arg.as_deref() {
        // `NO HANDLER`, `RECEIVE = NONE`: nothing is named.
        None => {}
        Some(arg) => match name_parts(arg).as_deref().and_then(ObjectName::from_parts) {
            Some(name) if name.name.eq_ignore_ascii_case("none") && name.schema.is_none() => {}
            Some(name) => w.add(name, kind, operation, Vec::new()),
            None => w.opaque(format!(
                "option {} names an object the analyser cannot read",
                d.defname
            )),
        },
    }
}

/// The options of type, operator, aggregate, text search and foreign-data-wrapper definitions that
/// name a function the defined object will call: whoever defines it makes that function callable
/// through it, so it is executed.
const FUNCTION_OPTIONS: &[&str] = &[
    // CREATE/ALTER TYPE
    "input",
    "output",
    "receive",
    "send",
    "typmod_in",
    "typmod_out",
    "analyze",
    "subscript",
    // CREATE/ALTER OPERATOR
    "function",
    "procedure",
    "restrict",
    "join",
    // CREATE AGGREGATE
    "sfunc",
    "finalfunc",
    "combinefunc",
    "serialfunc",
    "deserialfunc",
    "msfunc",
    "minvfunc",
    "mfinalfunc",
    // CREATE TEXT SEARCH PARSER / TEMPLATE
    "start",
    "gettoken",
    "end",
    "headline",
    "lextypes",
    "init",
    "lexize",
    // CREATE/ALTER FOREIGN DATA WRAPPER
    "handler",
    "validator",
];

/// Records every function the definition options `options` name (see [`FUNCTION_OPTIONS`]).
pub(crate) fn called_functions(w: &mut Walker, options: &[protobuf::Node]) {
    for d in def_elems(options) {
        if FUNCTION_OPTIONS.contains(&d.defname.to_ascii_lowercase().as_str()) {
            named_arg(w, d, ObjectKind::Function, Operation::Execute);
        }
    }
}

/// The support functions of an operator class or family (`FUNCTION 1 my_cmp(int, int)`).
fn support_functions(w: &mut Walker, items: &[protobuf::Node]) {
    // CreateOpClassItem.itemtype: OPCLASS_ITEM_FUNCTION in PostgreSQL's parsenodes.h.
    const OPCLASS_ITEM_FUNCTION: i32 = 2;
    for item in items {
        if let Some(NodeEnum::CreateOpClassItem(i)) = &item.node {
            if i.itemtype == OPCLASS_ITEM_FUNCTION {
                if let Some(f) = &i.name {
                    add_parts(w, &f.objname, ObjectKind::Function, Operation::Execute);
                }
            }
        }
    }
}

/// `CREATE [OR REPLACE] RULE name AS ON event TO table [WHERE cond] DO [ALSO | INSTEAD] actions`: the
/// table is altered, and the actions are statements that will run, with the table owner's rights,
/// whenever anyone writes to it — so each action's objects are components of the rule.
fn rule(s: &protobuf::RuleStmt, w: &mut Walker) {
    match &s.relation {
        Some(rel) => w.relation(rel, Operation::Alter, Vec::new()),
        None => w.opaque("CREATE RULE without a table"),
    }
    w.walk_opt(&s.where_clause);
    for action in &s.actions {
        let Some(a) = &action.node else { continue };
        let mut inner = Walker::new();
        classify(a.to_ref(), &mut inner);
        // The action runs later, in other sessions: nothing it does changes this session's state.
        inner.effect = None;
        w.absorb(inner);
    }
}

/// `CREATE STATISTICS [name] ON columns-or-expressions FROM table`: PostgreSQL lets only the table's
/// owner do it, so the table is altered (on the columns named, where they are plain columns).
fn statistics(s: &protobuf::CreateStatsStmt, w: &mut Walker) {
    if !s.defnames.is_empty() {
        add_parts(w, &s.defnames, ObjectKind::Other, Operation::Create);
    }
    let mut columns = Vec::new();
    let mut every_column = false;
    for e in &s.exprs {
        match &e.node {
            Some(NodeEnum::StatsElem(el)) => {
                if el.name.is_empty() {
                    every_column = true;
                } else {
                    columns.push(el.name.clone());
                }
                w.walk_opt(&el.expr);
            }
            _ => w.opaque("unexpected node in CREATE STATISTICS"),
        }
    }
    if every_column {
        columns.clear();
    }
    for r in &s.relations {
        match &r.node {
            Some(NodeEnum::RangeVar(rv)) => w.relation(rv, Operation::Alter, columns.clone()),
            _ => w.opaque("CREATE STATISTICS on something other than a table"),
        }
    }
}

/// A publication sends every change of its tables to whoever subscribes: adding a table (or a
/// schema's tables, or all tables) reads it, on the columns listed, through the row filter given.
fn publication_objects(w: &mut Walker, objects: &[protobuf::Node], all_tables: bool) {
    if all_tables {
        server(w, ALL_TABLES, Operation::Read);
    }
    for o in objects {
        let Some(NodeEnum::PublicationObjSpec(spec)) = &o.node else {
            w.opaque("unexpected node in a publication's object list");
            continue;
        };
        if let Some(table) = &spec.pubtable {
            match &table.relation {
                Some(rel) => w.relation(rel, Operation::Read, string_list(&table.columns)),
                None => w.opaque("a publication table without a name"),
            }
            w.walk_opt(&table.where_clause);
            continue;
        }
        match PublicationObjSpecType::try_from(spec.pubobjtype) {
            Ok(PublicationObjSpecType::PublicationobjTablesInSchema)
            | Ok(PublicationObjSpecType::PublicationobjContinuation)
                if !spec.name.is_empty() =>
            {
                global(w, &spec.name, ObjectKind::Schema, Operation::Read)
            }
            // CURRENT_SCHEMA is the first schema of the session's path, which the analyser does not
            // pin down here: only a grant on all tables covers it.
            Ok(PublicationObjSpecType::PublicationobjTablesInCurSchema) => {
                server(w, ALL_TABLES, Operation::Read)
            }
            _ => w.opaque("a publication object the analyser cannot read"),
        }
    }
}

/// `IMPORT FOREIGN SCHEMA remote [LIMIT TO (t, ...)] FROM SERVER srv INTO local`: creates foreign
/// tables in `local` — the ones listed, or whichever the remote server has.
fn import_foreign_schema(s: &protobuf::ImportForeignSchemaStmt, w: &mut Walker) {
    if s.list_type == ImportForeignSchemaType::FdwImportSchemaLimitTo as i32 {
        for t in &s.table_list {
            match &t.node {
                Some(NodeEnum::RangeVar(rv)) => w.add(
                    ObjectName::qualified(s.local_schema.clone(), rv.relname.clone()),
                    ObjectKind::Relation,
                    Operation::Create,
                    Vec::new(),
                ),
                _ => w.opaque("unexpected node in IMPORT FOREIGN SCHEMA ... LIMIT TO"),
            }
        }
    } else {
        // Creating relations not named in the statement: covered by `create` on the schema, as
        // a grant on `local.*` gives.
        global(w, &s.local_schema, ObjectKind::Schema, Operation::Create);
    }
}

/// `ALTER DEFAULT PRIVILEGES [FOR ROLE r] [IN SCHEMA s] GRANT ...`: the privileges future objects of
/// the roles (by default the current user) get, in the schemas named (by default everywhere). Each
/// schema named is granted on; without one, the roles' defaults change database-wide.
fn default_privileges(s: &protobuf::AlterDefaultPrivilegesStmt, w: &mut Walker) {
    let mut schemas = Vec::new();
    let mut role_list = Vec::new();
    for d in def_elems(&s.options) {
        let items = match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
            Some(NodeEnum::List(l)) => &l.items,
            _ => {
                w.opaque("ALTER DEFAULT PRIVILEGES with an option the analyser cannot read");
                continue;
            }
        };
        match d.defname.as_str() {
            "schemas" => schemas.extend(string_list(items)),
            "roles" => role_list.extend(items.iter().cloned()),
            _ => w.opaque("ALTER DEFAULT PRIVILEGES with an option the analyser cannot read"),
        }
    }
    for schema in &schemas {
        global(w, schema, ObjectKind::Schema, Operation::Grant);
    }
    if schemas.is_empty() {
        if role_list.is_empty() {
            global(w, "current_user", ObjectKind::Role, Operation::Alter);
        } else {
            roles(w, &role_list, Operation::Alter);
        }
    }
}

/// Cast and transform objects in DROP, COMMENT and the like: `(source AS target)` and `FOR type
/// LANGUAGE lang` have no name; they are alterations of their types, as their creation is.
pub(crate) fn typed_object(w: &mut Walker, objtype: i32, node: &protobuf::Node) -> bool {
    let is_cast_or_transform = matches!(
        ObjectType::try_from(objtype),
        Ok(ObjectType::ObjectCast | ObjectType::ObjectTransform)
    );
    let Some(NodeEnum::List(l)) = &node.node else {
        return false;
    };
    if !is_cast_or_transform {
        return false;
    }
    for item in &l.items {
        match &item.node {
            Some(NodeEnum::TypeName(t)) => {
                add_parts(w, &t.names, ObjectKind::Type, Operation::Alter)
            }
            // The transform's language: its USAGE is PostgreSQL's business, not a changed object.
            Some(NodeEnum::String(_)) => {}
            _ => w.opaque("a cast or transform the analyser cannot read"),
        }
    }
    true
}

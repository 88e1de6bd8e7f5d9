//! Per statement type: the statement component and the objects each kind of statement touches.

use pg_query::protobuf::{
    self, node::Node as NodeEnum, DiscardMode, GrantTargetType, ObjectType, TransactionStmtKind,
    VariableSetKind,
};
use pg_query::NodeRef;

use crate::analysis::{ObjectName, SessionEffect, Statement};
use crate::children::{for_each_child, node_name};
use crate::kind::{ObjectKind, Operation, StatementKind};
use crate::settings::{setting_class, setting_object, SettingClass};
use crate::walker::{const_bool, const_string, created_name, range_var_name, string_list, Walker};

const IDENTITY_CHANGE: &str = "SET ROLE / SET SESSION AUTHORIZATION changes the upstream identity";

/// Analyses one top-level statement.
pub(crate) fn analyze_statement(
    node: Option<&NodeEnum>,
    text: String,
    location: usize,
) -> Statement {
    let mut w = Walker::new();
    let kind = match node {
        Some(n) => classify(n.to_ref(), &mut w),
        None => {
            w.opaque("empty statement node");
            StatementKind::Other("UNKNOWN".into())
        }
    };
    if w.objects.is_empty() && !kind.needs_no_privilege() {
        w.opaque(format!(
            "{kind} names no object a grant could cover, so the gateway cannot tell what privilege it needs"
        ));
    }
    Statement {
        kind,
        text,
        location,
        objects: w.objects.into(),
        opaque: w.opaque,
        effect: w.effect,
        param_refs: w.param_refs,
        bound_settings: w.bound_settings,
    }
}

fn other(tag: &str) -> StatementKind {
    StatementKind::Other(tag.to_owned())
}

/// Fills `w` with what `node` does and returns its kind.
pub(crate) fn classify(node: NodeRef<'_>, w: &mut Walker) -> StatementKind {
    use StatementKind as K;
    match node {
        NodeRef::SelectStmt(s) => {
            w.walk(node);
            if s.into_clause.is_some() {
                K::SelectInto
            } else {
                K::Select
            }
        }
        NodeRef::InsertStmt(_) => {
            w.walk(node);
            K::Insert
        }
        NodeRef::UpdateStmt(_) => {
            w.walk(node);
            K::Update
        }
        NodeRef::DeleteStmt(_) => {
            w.walk(node);
            K::Delete
        }
        NodeRef::MergeStmt(_) => {
            w.walk(node);
            K::Merge
        }
        NodeRef::CreateTableAsStmt(s) => {
            if let Some(into) = &s.into {
                if let Some(rel) = &into.rel {
                    w.add(
                        created_name(rel),
                        ObjectKind::Relation,
                        Operation::Create,
                        string_list(&into.col_names),
                    );
                }
            }
            match s.query.as_ref().and_then(|q| q.node.as_ref()) {
                Some(NodeEnum::ExecuteStmt(e)) => {
                    w.set_effect(SessionEffect::ExecutePrepared {
                        name: e.name.clone(),
                    });
                    w.walk_list(&e.params);
                }
                Some(q) => w.walk(q.to_ref()),
                None => w.opaque("CREATE TABLE AS without a query"),
            }
            if s.objtype == ObjectType::ObjectMatview as i32 {
                K::CreateMaterializedView
            } else {
                K::CreateTableAs
            }
        }
        NodeRef::ViewStmt(s) => {
            if let Some(view) = &s.view {
                w.add(
                    created_name(view),
                    ObjectKind::Relation,
                    Operation::Create,
                    string_list(&s.aliases),
                );
            }
            w.walk_opt(&s.query);
            K::CreateView
        }
        NodeRef::RefreshMatViewStmt(s) => {
            if let Some(rel) = &s.relation {
                w.relation(rel, Operation::Maintain, Vec::new());
            }
            K::RefreshMaterializedView
        }
        NodeRef::TruncateStmt(s) => {
            relations(w, &s.relations, Operation::Truncate);
            K::Truncate
        }
        NodeRef::LockStmt(s) => {
            relations(w, &s.relations, Operation::Lock);
            K::Lock
        }
        NodeRef::CopyStmt(s) => {
            copy(s, w);
            K::Copy
        }
        NodeRef::ExplainStmt(s) => {
            explain(s, w);
            K::Explain
        }
        NodeRef::PrepareStmt(s) => {
            let mut inner = Walker::new();
            let inner_kind = match s.query.as_ref().and_then(|q| q.node.as_ref()) {
                Some(q) => classify(q.to_ref(), &mut inner),
                None => {
                    inner.opaque("PREPARE without a statement");
                    other("UNKNOWN")
                }
            };
            let prepared = Statement {
                kind: inner_kind,
                text: String::new(),
                location: 0,
                objects: inner.objects.clone().into(),
                opaque: inner.opaque.clone(),
                effect: inner.effect.take(),
                param_refs: inner.param_refs,
                bound_settings: Vec::new(),
            };
            if !inner.bound_settings.is_empty() {
                // EXECUTE's arguments are expressions, not bound values the gateway can read.
                inner.opaque("set_config() in PREPARE with a setting name given as a parameter");
            }
            w.absorb(inner);
            w.set_effect(SessionEffect::Prepare {
                name: s.name.clone(),
                statement: Box::new(prepared),
            });
            K::Prepare
        }
        NodeRef::ExecuteStmt(s) => {
            w.walk_list(&s.params);
            w.set_effect(SessionEffect::ExecutePrepared {
                name: s.name.clone(),
            });
            K::Execute
        }
        NodeRef::DeallocateStmt(s) => {
            let name = (!s.isall && !s.name.is_empty()).then(|| s.name.clone());
            w.set_effect(SessionEffect::Deallocate { name });
            K::Deallocate
        }
        NodeRef::DeclareCursorStmt(s) => {
            w.walk_opt(&s.query);
            w.set_effect(SessionEffect::DeclareCursor {
                name: s.portalname.clone(),
            });
            K::DeclareCursor
        }
        NodeRef::FetchStmt(s) => {
            if s.ismove {
                K::Move
            } else {
                K::Fetch
            }
        }
        NodeRef::ClosePortalStmt(s) => {
            let name = (!s.portalname.is_empty()).then(|| s.portalname.clone());
            w.set_effect(SessionEffect::CloseCursor { name });
            K::ClosePortal
        }
        NodeRef::VariableSetStmt(s) => variable_set(s, w),
        NodeRef::VariableShowStmt(_) => K::Show,
        NodeRef::TransactionStmt(s) => match TransactionStmtKind::try_from(s.kind) {
            Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                K::Begin
            }
            Ok(TransactionStmtKind::TransStmtCommit) => K::Commit,
            Ok(TransactionStmtKind::TransStmtRollback) => K::Rollback,
            Ok(TransactionStmtKind::TransStmtSavepoint) => K::Savepoint,
            Ok(TransactionStmtKind::TransStmtRelease) => K::Release,
            Ok(TransactionStmtKind::TransStmtRollbackTo) => K::RollbackToSavepoint,
            // A prepared transaction outlives the session, holding its locks, and COMMIT/ROLLBACK PREPARED
            // end any session's: server administration, not the session's own transaction.
            Ok(TransactionStmtKind::TransStmtPrepare) => {
                server(w, "prepared_transactions", Operation::Admin);
                K::PrepareTransaction
            }
            Ok(TransactionStmtKind::TransStmtCommitPrepared) => {
                server(w, "prepared_transactions", Operation::Admin);
                K::CommitPrepared
            }
            Ok(TransactionStmtKind::TransStmtRollbackPrepared) => {
                server(w, "prepared_transactions", Operation::Admin);
                K::RollbackPrepared
            }
            _ => {
                w.opaque("unknown transaction statement");
                other("TRANSACTION")
            }
        },
        NodeRef::DiscardStmt(s) => {
            if s.target == DiscardMode::DiscardAll as i32 {
                w.set_effect(SessionEffect::DiscardAll);
            }
            K::Discard
        }
        NodeRef::ListenStmt(s) => {
            channel(w, &s.conditionname, Operation::Listen);
            w.set_effect(SessionEffect::Listen(s.conditionname.clone()));
            K::Listen
        }
        NodeRef::UnlistenStmt(s) => {
            let name = (!s.conditionname.is_empty()).then(|| s.conditionname.clone());
            w.set_effect(SessionEffect::Unlisten(name));
            K::Unlisten
        }
        NodeRef::NotifyStmt(s) => {
            channel(w, &s.conditionname, Operation::Notify);
            K::Notify
        }
        NodeRef::DoStmt(_) => {
            w.opaque("DO executes dynamic SQL the gateway cannot analyse");
            K::Do
        }
        NodeRef::CallStmt(s) => {
            match &s.funccall {
                Some(f) => w.walk(NodeRef::FuncCall(f)),
                None => w.opaque("CALL without a procedure"),
            }
            K::Call
        }
        NodeRef::CreateFunctionStmt(s) => {
            add_parts(w, &s.funcname, ObjectKind::Function, Operation::Create);
            if s.is_procedure {
                K::CreateProcedure
            } else {
                K::CreateFunction
            }
        }
        NodeRef::AlterFunctionStmt(s) => {
            if let Some(f) = &s.func {
                add_parts(w, &f.objname, ObjectKind::Function, Operation::Alter);
            }
            other(&format!("ALTER {}", object_type_word(s.objtype)))
        }
        NodeRef::CreateStmt(s) => {
            create_table(s, w);
            K::CreateTable
        }
        NodeRef::CreateForeignTableStmt(s) => {
            if let Some(base) = &s.base_stmt {
                create_table(base, w);
            }
            other("CREATE FOREIGN TABLE")
        }
        NodeRef::AlterTableStmt(s) => alter_table(s, w),
        NodeRef::DropStmt(s) => {
            for o in &s.objects {
                object_ref(w, s.remove_type, o, Operation::Drop);
            }
            K::Drop
        }
        NodeRef::IndexStmt(s) => {
            if let Some(rel) = &s.relation {
                if !s.idxname.is_empty() {
                    let mut index = range_var_name(rel);
                    index.name = s.idxname.clone();
                    w.add(index, ObjectKind::Relation, Operation::Create, Vec::new());
                }
                let columns = index_columns(&s.index_params);
                w.relation(rel, Operation::Alter, columns);
            }
            for_each_child(node, &mut |child| {
                if !matches!(child, NodeRef::RangeVar(_)) {
                    w.walk(child);
                }
            });
            K::CreateIndex
        }
        NodeRef::CreateSchemaStmt(s) => {
            let schema = if s.schemaname.is_empty() {
                s.authrole
                    .as_ref()
                    .map(|r| r.rolename.clone())
                    .unwrap_or_default()
            } else {
                s.schemaname.clone()
            };
            w.add(
                ObjectName::unqualified(schema.clone()),
                ObjectKind::Schema,
                Operation::Create,
                Vec::new(),
            );
            // PostgreSQL creates the schema's elements with search_path set to the new schema.
            let mut inner = Walker::new();
            for element in &s.schema_elts {
                if let Some(e) = &element.node {
                    classify(e.to_ref(), &mut inner);
                }
            }
            for o in &mut inner.objects {
                if o.object.schema.is_none()
                    && !matches!(
                        o.kind,
                        ObjectKind::Schema | ObjectKind::Database | ObjectKind::Role
                    )
                {
                    o.object.schema = Some(schema.clone());
                }
            }
            w.absorb(inner);
            K::CreateSchema
        }
        NodeRef::CreateSeqStmt(s) => {
            if let Some(seq) = &s.sequence {
                w.add(
                    created_name(seq),
                    ObjectKind::Sequence,
                    Operation::Create,
                    Vec::new(),
                );
            }
            w.walk_list(&s.options);
            K::CreateSequence
        }
        NodeRef::AlterSeqStmt(s) => {
            if let Some(seq) = &s.sequence {
                w.add(
                    range_var_name(seq),
                    ObjectKind::Sequence,
                    Operation::Alter,
                    Vec::new(),
                );
            }
            w.walk_list(&s.options);
            K::AlterSequence
        }
        NodeRef::GrantStmt(s) => {
            grant(s, w);
            if s.is_grant {
                K::Grant
            } else {
                K::Revoke
            }
        }
        NodeRef::GrantRoleStmt(s) => {
            for r in &s.granted_roles {
                if let Some(NodeEnum::AccessPriv(p)) = &r.node {
                    w.add(
                        ObjectName::unqualified(p.priv_name.clone()),
                        ObjectKind::Role,
                        Operation::Grant,
                        Vec::new(),
                    );
                }
            }
            if s.is_grant {
                K::GrantRole
            } else {
                K::RevokeRole
            }
        }
        NodeRef::VacuumStmt(s) => {
            for r in &s.rels {
                if let Some(NodeEnum::VacuumRelation(v)) = &r.node {
                    if let Some(rel) = &v.relation {
                        w.relation(rel, Operation::Maintain, string_list(&v.va_cols));
                    }
                }
            }
            if s.rels.is_empty() {
                server(w, ALL_TABLES, Operation::Maintain);
            }
            if s.is_vacuumcmd {
                K::Vacuum
            } else {
                K::Analyze
            }
        }
        NodeRef::ClusterStmt(s) => {
            match &s.relation {
                Some(rel) => w.relation(rel, Operation::Maintain, Vec::new()),
                None => server(w, ALL_TABLES, Operation::Maintain),
            }
            K::Cluster
        }
        NodeRef::ReindexStmt(s) => {
            if let Some(rel) = &s.relation {
                w.relation(rel, Operation::Maintain, Vec::new());
            } else if !s.name.is_empty() {
                let kind = if s.kind == protobuf::ReindexObjectType::ReindexObjectSchema as i32 {
                    ObjectKind::Schema
                } else {
                    ObjectKind::Database
                };
                w.add(
                    ObjectName::unqualified(s.name.clone()),
                    kind,
                    Operation::Maintain,
                    Vec::new(),
                );
            }
            K::Reindex
        }
        NodeRef::CommentStmt(s) => {
            match s.object.as_deref() {
                Some(o) => object_ref(w, s.objtype, o, Operation::Alter),
                None => w.opaque("COMMENT without an object"),
            }
            K::Comment
        }
        NodeRef::RenameStmt(s) => {
            if let Some(rel) = &s.relation {
                let columns = if s.rename_type == ObjectType::ObjectColumn as i32 {
                    vec![s.subname.clone()]
                } else {
                    Vec::new()
                };
                w.relation(rel, Operation::Alter, columns);
            } else if let Some(o) = s.object.as_deref() {
                object_ref(w, s.rename_type, o, Operation::Alter);
            } else {
                w.add(
                    ObjectName::unqualified(s.subname.clone()),
                    object_kind(s.rename_type),
                    Operation::Alter,
                    Vec::new(),
                );
            }
            alter_kind(s.rename_type)
        }
        NodeRef::AlterObjectSchemaStmt(s) => {
            if let Some(rel) = &s.relation {
                w.relation(rel, Operation::Alter, Vec::new());
            } else if let Some(o) = s.object.as_deref() {
                object_ref(w, s.object_type, o, Operation::Alter);
            }
            alter_kind(s.object_type)
        }
        NodeRef::AlterOwnerStmt(s) => {
            if let Some(rel) = &s.relation {
                w.relation(rel, Operation::Alter, Vec::new());
            } else if let Some(o) = s.object.as_deref() {
                object_ref(w, s.object_type, o, Operation::Alter);
            }
            alter_kind(s.object_type)
        }
        NodeRef::CreateExtensionStmt(s) => {
            w.add(
                ObjectName::unqualified(s.extname.clone()),
                ObjectKind::Extension,
                Operation::Create,
                Vec::new(),
            );
            other("CREATE EXTENSION")
        }
        NodeRef::AlterExtensionStmt(s) => {
            w.add(
                ObjectName::unqualified(s.extname.clone()),
                ObjectKind::Extension,
                Operation::Alter,
                Vec::new(),
            );
            other("ALTER EXTENSION")
        }
        NodeRef::AlterSystemStmt(s) => {
            let name = s
                .setstmt
                .as_ref()
                .map(|v| v.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or("all");
            w.add(
                setting_object(name),
                ObjectKind::Setting,
                Operation::AlterSystem,
                Vec::new(),
            );
            other("ALTER SYSTEM")
        }
        NodeRef::LoadStmt(_) => {
            server(w, "load", Operation::Admin);
            other("LOAD")
        }
        NodeRef::CheckPointStmt(_) => {
            server(w, "checkpoint", Operation::Admin);
            K::Checkpoint
        }
        NodeRef::ConstraintsSetStmt(_) => other("SET CONSTRAINTS"),
        NodeRef::CreatedbStmt(s) => {
            w.add(
                ObjectName::unqualified(s.dbname.clone()),
                ObjectKind::Database,
                Operation::Create,
                Vec::new(),
            );
            other("CREATE DATABASE")
        }
        NodeRef::DropdbStmt(s) => {
            w.add(
                ObjectName::unqualified(s.dbname.clone()),
                ObjectKind::Database,
                Operation::Drop,
                Vec::new(),
            );
            other("DROP DATABASE")
        }
        NodeRef::AlterDatabaseStmt(s) => {
            w.add(
                ObjectName::unqualified(s.dbname.clone()),
                ObjectKind::Database,
                Operation::Alter,
                Vec::new(),
            );
            other("ALTER DATABASE")
        }
        NodeRef::AlterDatabaseSetStmt(s) => {
            w.add(
                ObjectName::unqualified(s.dbname.clone()),
                ObjectKind::Database,
                Operation::Alter,
                Vec::new(),
            );
            if s.setstmt
                .as_ref()
                .is_some_and(|v| is_identity_setting(&v.name))
            {
                w.opaque(IDENTITY_CHANGE);
            }
            other("ALTER DATABASE")
        }
        NodeRef::CreateRoleStmt(s) => {
            w.add(
                ObjectName::unqualified(s.role.clone()),
                ObjectKind::Role,
                Operation::Create,
                Vec::new(),
            );
            other("CREATE ROLE")
        }
        NodeRef::AlterRoleStmt(s) => {
            if let Some(r) = &s.role {
                w.add(
                    ObjectName::unqualified(role_name(r)),
                    ObjectKind::Role,
                    Operation::Alter,
                    Vec::new(),
                );
            }
            other("ALTER ROLE")
        }
        NodeRef::AlterRoleSetStmt(s) => {
            match &s.role {
                Some(r) => w.add(
                    ObjectName::unqualified(role_name(r)),
                    ObjectKind::Role,
                    Operation::Alter,
                    Vec::new(),
                ),
                None => w.opaque("ALTER ROLE ALL changes every role's settings"),
            }
            if s.setstmt
                .as_ref()
                .is_some_and(|v| is_identity_setting(&v.name))
            {
                w.opaque(IDENTITY_CHANGE);
            }
            other("ALTER ROLE")
        }
        NodeRef::DropRoleStmt(s) => {
            for r in &s.roles {
                if let Some(NodeEnum::RoleSpec(r)) = &r.node {
                    w.add(
                        ObjectName::unqualified(role_name(r)),
                        ObjectKind::Role,
                        Operation::Drop,
                        Vec::new(),
                    );
                }
            }
            other("DROP ROLE")
        }
        NodeRef::CreateTrigStmt(s) => {
            if let Some(rel) = &s.relation {
                w.relation(rel, Operation::Alter, Vec::new());
            }
            add_parts(w, &s.funcname, ObjectKind::Function, Operation::Execute);
            w.walk_opt(&s.when_clause);
            other("CREATE TRIGGER")
        }
        NodeRef::CreatePolicyStmt(s) => {
            if let Some(rel) = &s.table {
                w.relation(rel, Operation::Alter, Vec::new());
            }
            w.walk_opt(&s.qual);
            w.walk_opt(&s.with_check);
            other("CREATE POLICY")
        }
        NodeRef::AlterPolicyStmt(s) => {
            if let Some(rel) = &s.table {
                w.relation(rel, Operation::Alter, Vec::new());
            }
            w.walk_opt(&s.qual);
            w.walk_opt(&s.with_check);
            other("ALTER POLICY")
        }
        NodeRef::CompositeTypeStmt(s) => {
            if let Some(t) = &s.typevar {
                w.add(
                    range_var_name(t),
                    ObjectKind::Type,
                    Operation::Create,
                    Vec::new(),
                );
            }
            other("CREATE TYPE")
        }
        NodeRef::CreateEnumStmt(s) => {
            add_parts(w, &s.type_name, ObjectKind::Type, Operation::Create);
            other("CREATE TYPE")
        }
        NodeRef::AlterEnumStmt(s) => {
            add_parts(w, &s.type_name, ObjectKind::Type, Operation::Alter);
            other("ALTER TYPE")
        }
        NodeRef::CreateDomainStmt(s) => {
            add_parts(w, &s.domainname, ObjectKind::Type, Operation::Create);
            w.walk_list(&s.constraints);
            other("CREATE DOMAIN")
        }
        NodeRef::DefineStmt(s) => {
            add_parts(w, &s.defnames, object_kind(s.kind), Operation::Create);
            crate::ddl::called_functions(w, &s.definition);
            format_create(s.kind)
        }
        other_node => match crate::ddl::classify_ddl(other_node, w) {
            Some(kind) => kind,
            None => {
                let name = node_name(other_node);
                w.opaque(format!(
                    "statement type {name} is not supported by the analyser"
                ));
                StatementKind::unanalysed(name)
            }
        },
    }
}

/// The server object whole-database maintenance (`VACUUM`, `ANALYZE`, `CLUSTER` without a table) names.
pub(crate) const ALL_TABLES: &str = "all_tables";

/// Records `operation` on the server-wide object `name`.
pub(crate) fn server(w: &mut Walker, name: &str, operation: Operation) {
    w.add(
        ObjectName::unqualified(name),
        ObjectKind::Server,
        operation,
        Vec::new(),
    );
}

/// Records `operation` on a LISTEN/NOTIFY channel.
fn channel(w: &mut Walker, name: &str, operation: Operation) {
    w.add(
        ObjectName::unqualified(name),
        ObjectKind::Channel,
        operation,
        Vec::new(),
    );
}

fn relations(w: &mut Walker, nodes: &[protobuf::Node], operation: Operation) {
    for n in nodes {
        match &n.node {
            Some(NodeEnum::RangeVar(rv)) => w.relation(rv, operation, Vec::new()),
            _ => w.opaque("unexpected node in relation list"),
        }
    }
}

pub(crate) fn add_parts(
    w: &mut Walker,
    parts: &[protobuf::Node],
    kind: ObjectKind,
    operation: Operation,
) {
    let names = string_list(parts);
    match ObjectName::from_parts(&names) {
        Some(name) if names.len() == parts.len() => w.add(name, kind, operation, Vec::new()),
        _ => w.opaque("an object name the analyser cannot read"),
    }
}

pub(crate) fn role_name(r: &protobuf::RoleSpec) -> String {
    if r.rolename.is_empty() {
        // CURRENT_USER, SESSION_USER, PUBLIC, ...: keep the keyword so a rule can still match it.
        match protobuf::RoleSpecType::try_from(r.roletype) {
            Ok(protobuf::RoleSpecType::RolespecCurrentUser) => "current_user".into(),
            Ok(protobuf::RoleSpecType::RolespecSessionUser) => "session_user".into(),
            Ok(protobuf::RoleSpecType::RolespecCurrentRole) => "current_role".into(),
            Ok(protobuf::RoleSpecType::RolespecPublic) => "public".into(),
            _ => String::new(),
        }
    } else {
        r.rolename.clone()
    }
}

fn is_identity_setting(name: &str) -> bool {
    setting_class(name) == SettingClass::Identity
}

/// The setting through which native clients give a justification (`SET portcullis.justification = '…'`).
pub const JUSTIFICATION_SETTING: &str = "portcullis.justification";

fn variable_set(s: &protobuf::VariableSetStmt, w: &mut Walker) -> StatementKind {
    let kind = VariableSetKind::try_from(s.kind);
    let is_reset = matches!(
        kind,
        Ok(VariableSetKind::VarReset | VariableSetKind::VarResetAll)
    );
    if is_identity_setting(&s.name) {
        w.opaque(IDENTITY_CHANGE);
    } else if s.name.eq_ignore_ascii_case("search_path") {
        match kind {
            Ok(VariableSetKind::VarSetValue) => {
                let values: Option<Vec<String>> = s.args.iter().map(const_string).collect();
                match values {
                    Some(v) if s.is_local => w.set_effect(SessionEffect::SetLocalSearchPath(v)),
                    Some(v) => w.set_effect(SessionEffect::SetSearchPath(v)),
                    None => w.opaque("SET search_path to a value the analyser cannot read"),
                }
            }
            Ok(VariableSetKind::VarSetDefault | VariableSetKind::VarReset) if !s.is_local => {
                w.set_effect(SessionEffect::ResetSearchPath)
            }
            Ok(VariableSetKind::VarSetCurrent) => {}
            _ => w.opaque("SET LOCAL search_path TO DEFAULT is not supported by the analyser"),
        }
    } else if s.name.eq_ignore_ascii_case(JUSTIFICATION_SETTING) {
        match kind {
            Ok(VariableSetKind::VarSetValue) => match s.args.first().and_then(const_string) {
                Some(why) if s.args.len() == 1 => {
                    w.set_effect(SessionEffect::SetJustification(Some(why)))
                }
                _ => w.opaque("SET portcullis.justification takes one string constant"),
            },
            _ => w.set_effect(SessionEffect::SetJustification(None)),
        }
    } else if matches!(kind, Ok(VariableSetKind::VarResetAll)) {
        w.set_effect(SessionEffect::ResetSearchPath);
    }
    // Going back to a default undoes a change; only giving a value needs the privilege.
    let sets_value = matches!(
        kind,
        Ok(VariableSetKind::VarSetValue
            | VariableSetKind::VarSetMulti
            | VariableSetKind::VarSetCurrent)
    );
    if sets_value && setting_class(&s.name) == SettingClass::Privileged {
        w.add(
            setting_object(&s.name),
            ObjectKind::Setting,
            Operation::Set,
            Vec::new(),
        );
    }
    if is_reset {
        StatementKind::Reset
    } else {
        StatementKind::Set
    }
}

fn copy(s: &protobuf::CopyStmt, w: &mut Walker) {
    if s.is_program || !s.filename.is_empty() {
        w.opaque("COPY ... PROGRAM/FILE accesses the database server's files");
    }
    let operation = if s.is_from {
        Operation::CopyIn
    } else {
        Operation::CopyOut
    };
    if let Some(rel) = &s.relation {
        w.relation(rel, operation, string_list(&s.attlist));
    }
    if let Some(q) = s.query.as_ref().and_then(|q| q.node.as_ref()) {
        let mut inner = Walker::new();
        inner.walk(q.to_ref());
        let read: Vec<_> = inner
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Relation && o.operation == Operation::Read)
            .map(|o| o.object.clone())
            .collect();
        w.absorb(inner);
        for object in read {
            w.add(object, ObjectKind::Relation, Operation::CopyOut, Vec::new());
        }
    }
    w.walk_opt(&s.where_clause);
}

fn explain(s: &protobuf::ExplainStmt, w: &mut Walker) {
    let Some(q) = s.query.as_ref().and_then(|q| q.node.as_ref()) else {
        w.opaque("EXPLAIN without a statement");
        return;
    };
    let analyze = s.options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) => {
            d.defname.eq_ignore_ascii_case("analyze")
                && d.arg
                    .as_deref()
                    .and_then(const_bool_or_word)
                    .unwrap_or(true)
        }
        _ => false,
    });
    let mut inner = Walker::new();
    classify(q.to_ref(), &mut inner);
    // Only EXPLAIN ANALYZE runs the statement; EXPLAIN EXECUTE still needs the prepared statement mapped.
    if !analyze && !matches!(inner.effect, Some(SessionEffect::ExecutePrepared { .. })) {
        inner.effect = None;
    }
    w.absorb(inner);
}

/// EXPLAIN options are written as `ANALYZE`, `ANALYZE true`, `ANALYZE off`, ...
fn const_bool_or_word(node: &protobuf::Node) -> Option<bool> {
    const_bool(node).or_else(|| match &node.node {
        Some(NodeEnum::String(s)) => match s.sval.to_ascii_lowercase().as_str() {
            "true" | "on" => Some(true),
            "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

fn create_table(s: &protobuf::CreateStmt, w: &mut Walker) {
    if let Some(rel) = &s.relation {
        w.add(
            created_name(rel),
            ObjectKind::Relation,
            Operation::Create,
            Vec::new(),
        );
    }
    // Inheriting from or becoming a partition of a table changes that table.
    for parent in &s.inh_relations {
        match &parent.node {
            Some(NodeEnum::RangeVar(rv)) => w.relation(rv, Operation::Alter, Vec::new()),
            _ => w.opaque("unexpected node in INHERITS list"),
        }
    }
    let node = NodeRef::CreateStmt(s);
    let target = s.relation.as_ref();
    for_each_child(node, &mut |child| match child {
        NodeRef::RangeVar(rv) if target.is_some_and(|t| std::ptr::eq(t, rv)) => {}
        NodeRef::RangeVar(_) => {} // the INHERITS list, handled above
        other => w.walk(other),
    });
}

fn alter_table(s: &protobuf::AlterTableStmt, w: &mut Walker) -> StatementKind {
    let kind = match ObjectType::try_from(s.objtype) {
        Ok(ObjectType::ObjectSequence) => ObjectKind::Sequence,
        Ok(ObjectType::ObjectType) => ObjectKind::Type,
        _ => ObjectKind::Relation,
    };
    if let Some(rel) = &s.relation {
        w.add(range_var_name(rel), kind, Operation::Alter, Vec::new());
    }
    for cmd in &s.cmds {
        match &cmd.node {
            Some(NodeEnum::AlterTableCmd(c)) => {
                match c.def.as_ref().and_then(|d| d.node.as_ref()) {
                    // ATTACH/DETACH PARTITION changes the partition too.
                    Some(NodeEnum::PartitionCmd(p)) => {
                        if let Some(part) = &p.name {
                            w.relation(part, Operation::Alter, Vec::new());
                        }
                    }
                    // REPLICA IDENTITY names an index of the table itself, already altered.
                    Some(NodeEnum::ReplicaIdentityStmt(_)) => {}
                    Some(def) => w.walk(def.to_ref()),
                    None => {}
                }
            }
            Some(other) => w.walk(other.to_ref()),
            None => {}
        }
    }
    match ObjectType::try_from(s.objtype) {
        Ok(ObjectType::ObjectTable) => StatementKind::AlterTable,
        Ok(ObjectType::ObjectSequence) => StatementKind::AlterSequence,
        _ => other(&format!("ALTER {}", object_type_word(s.objtype))),
    }
}

fn grant(s: &protobuf::GrantStmt, w: &mut Walker) {
    let columns: Vec<String> = s
        .privileges
        .iter()
        .filter_map(|p| match &p.node {
            Some(NodeEnum::AccessPriv(a)) => Some(string_list(&a.cols)),
            _ => None,
        })
        .flatten()
        .collect();
    if s.targtype == GrantTargetType::AclTargetAllInSchema as i32 {
        for o in &s.objects {
            match &o.node {
                Some(NodeEnum::String(schema)) => w.add(
                    ObjectName::unqualified(schema.sval.clone()),
                    ObjectKind::Schema,
                    Operation::Grant,
                    Vec::new(),
                ),
                _ => w.opaque("unexpected node in GRANT ... IN SCHEMA"),
            }
        }
        return;
    }
    for o in &s.objects {
        match &o.node {
            Some(NodeEnum::RangeVar(rv)) => {
                let kind = if s.objtype == ObjectType::ObjectSequence as i32 {
                    ObjectKind::Sequence
                } else {
                    ObjectKind::Relation
                };
                w.add(range_var_name(rv), kind, Operation::Grant, columns.clone());
            }
            _ => object_ref(w, s.objtype, o, Operation::Grant),
        }
    }
}

/// The columns an index is built on, where they are plain columns.
fn index_columns(params: &[protobuf::Node]) -> Vec<String> {
    let mut columns = Vec::new();
    for p in params {
        match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => columns.push(e.name.clone()),
            // An expression index may use any column.
            _ => return Vec::new(),
        }
    }
    columns
}

/// The dotted name parts of an object reference in DROP/COMMENT/ALTER ... OWNER and the like.
pub(crate) fn name_parts(node: &protobuf::Node) -> Option<Vec<String>> {
    match node.node.as_ref()? {
        NodeEnum::String(s) => Some(vec![s.sval.clone()]),
        // Large objects are named by their OID.
        NodeEnum::Integer(i) => Some(vec![i.ival.to_string()]),
        NodeEnum::Float(f) => Some(vec![f.fval.clone()]),
        NodeEnum::List(l) => {
            let parts = string_list(&l.items);
            (parts.len() == l.items.len()).then_some(parts)
        }
        NodeEnum::ObjectWithArgs(o) => {
            let parts = string_list(&o.objname);
            (parts.len() == o.objname.len()).then_some(parts)
        }
        NodeEnum::TypeName(t) => {
            let parts = string_list(&t.names);
            (parts.len() == t.names.len()).then_some(parts)
        }
        NodeEnum::RangeVar(rv) => {
            let n = range_var_name(rv);
            Some(
                n.database
                    .into_iter()
                    .chain(n.schema)
                    .chain(std::iter::once(n.name))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Records `operation` on the object `node` of type `objtype`. Sub-objects of a table (column, constraint,
/// trigger, rule, policy) are reported as an alteration of the table.
pub(crate) fn object_ref(
    w: &mut Walker,
    objtype: i32,
    node: &protobuf::Node,
    operation: Operation,
) {
    if crate::ddl::typed_object(w, objtype, node) {
        return;
    }
    if objtype == ObjectType::ObjectParameterAcl as i32 {
        match &node.node {
            Some(NodeEnum::String(name)) => w.add(
                setting_object(&name.sval),
                ObjectKind::Setting,
                operation,
                Vec::new(),
            ),
            _ => w.opaque("a parameter name the analyser cannot read"),
        }
        return;
    }
    // A domain constraint is part of its domain: `COMMENT ON CONSTRAINT c ON DOMAIN d` names
    // (d, c), `ALTER DOMAIN d RENAME CONSTRAINT` the domain alone.
    if objtype == ObjectType::ObjectDomconstraint as i32 {
        let domain = match &node.node {
            Some(NodeEnum::List(l)) => match l.items.first().and_then(|i| i.node.as_ref()) {
                Some(NodeEnum::TypeName(t)) => Some(&t.names),
                _ => Some(&l.items),
            },
            _ => None,
        };
        match domain {
            Some(names) => add_parts(w, names, ObjectKind::Type, Operation::Alter),
            None => w.opaque("a domain constraint the analyser cannot read"),
        }
        return;
    }
    let Some(mut parts) = name_parts(node) else {
        w.opaque(format!(
            "{} {} on an object the analyser cannot read",
            operation,
            object_type_word(objtype)
        ));
        return;
    };
    let sub = match ObjectType::try_from(objtype) {
        Ok(ObjectType::ObjectColumn) => Some(true),
        Ok(
            ObjectType::ObjectTabconstraint
            | ObjectType::ObjectTrigger
            | ObjectType::ObjectRule
            | ObjectType::ObjectPolicy,
        ) => Some(false),
        _ => None,
    };
    // Operator classes and families are written `name USING access_method`, which the parser stores
    // with the access method first; it is not part of the name.
    if matches!(
        ObjectType::try_from(objtype),
        Ok(ObjectType::ObjectOpclass | ObjectType::ObjectOpfamily)
    ) && !parts.is_empty()
    {
        parts.remove(0);
    }
    if let Some(is_column) = sub {
        let Some(last) = parts.pop() else {
            w.opaque("an object name the analyser cannot read");
            return;
        };
        match ObjectName::from_parts(&parts) {
            Some(table) => {
                let columns = if is_column { vec![last] } else { Vec::new() };
                w.add(table, ObjectKind::Relation, Operation::Alter, columns);
            }
            None => w.opaque("an object name the analyser cannot read"),
        }
        return;
    }
    match ObjectName::from_parts(&parts) {
        Some(name) => w.add(name, object_kind(objtype), operation, Vec::new()),
        None => w.opaque("an object name the analyser cannot read"),
    }
}

fn object_kind(objtype: i32) -> ObjectKind {
    use ObjectType as T;
    match T::try_from(objtype) {
        Ok(
            T::ObjectTable
            | T::ObjectView
            | T::ObjectMatview
            | T::ObjectIndex
            | T::ObjectForeignTable
            | T::ObjectColumn,
        ) => ObjectKind::Relation,
        Ok(T::ObjectSequence) => ObjectKind::Sequence,
        Ok(T::ObjectFunction | T::ObjectProcedure | T::ObjectRoutine | T::ObjectAggregate) => {
            ObjectKind::Function
        }
        Ok(T::ObjectSchema) => ObjectKind::Schema,
        Ok(T::ObjectDatabase) => ObjectKind::Database,
        Ok(T::ObjectRole) => ObjectKind::Role,
        Ok(T::ObjectType | T::ObjectDomain) => ObjectKind::Type,
        Ok(T::ObjectExtension) => ObjectKind::Extension,
        Ok(T::ObjectPublication) => ObjectKind::Publication,
        Ok(T::ObjectSubscription) => ObjectKind::Subscription,
        Ok(T::ObjectEventTrigger) => ObjectKind::EventTrigger,
        Ok(T::ObjectFdw) => ObjectKind::ForeignDataWrapper,
        Ok(T::ObjectForeignServer) => ObjectKind::ForeignServer,
        Ok(T::ObjectTablespace) => ObjectKind::Tablespace,
        Ok(T::ObjectLanguage) => ObjectKind::Language,
        Ok(T::ObjectAccessMethod) => ObjectKind::AccessMethod,
        Ok(T::ObjectLargeobject) => ObjectKind::LargeObject,
        Ok(T::ObjectParameterAcl) => ObjectKind::Setting,
        _ => ObjectKind::Other,
    }
}

pub(crate) fn alter_kind(objtype: i32) -> StatementKind {
    if objtype == ObjectType::ObjectTable as i32 || objtype == ObjectType::ObjectColumn as i32 {
        StatementKind::AlterTable
    } else {
        other(&format!("ALTER {}", object_type_word(objtype)))
    }
}

fn format_create(objtype: i32) -> StatementKind {
    other(&format!("CREATE {}", object_type_word(objtype)))
}

/// The SQL words for an object type, as used in command tags.
fn object_type_word(objtype: i32) -> &'static str {
    use ObjectType as T;
    match T::try_from(objtype) {
        Ok(T::ObjectAccessMethod) => "ACCESS METHOD",
        Ok(T::ObjectAggregate) => "AGGREGATE",
        Ok(T::ObjectCast) => "CAST",
        Ok(T::ObjectColumn) => "COLUMN",
        Ok(T::ObjectCollation) => "COLLATION",
        Ok(T::ObjectConversion) => "CONVERSION",
        Ok(T::ObjectDatabase) => "DATABASE",
        Ok(T::ObjectDomain) => "DOMAIN",
        Ok(T::ObjectEventTrigger) => "EVENT TRIGGER",
        Ok(T::ObjectExtension) => "EXTENSION",
        Ok(T::ObjectFdw) => "FOREIGN DATA WRAPPER",
        Ok(T::ObjectForeignServer) => "SERVER",
        Ok(T::ObjectForeignTable) => "FOREIGN TABLE",
        Ok(T::ObjectFunction) => "FUNCTION",
        Ok(T::ObjectIndex) => "INDEX",
        Ok(T::ObjectLanguage) => "LANGUAGE",
        Ok(T::ObjectLargeobject) => "LARGE OBJECT",
        Ok(T::ObjectMatview) => "MATERIALIZED VIEW",
        Ok(T::ObjectOpclass) => "OPERATOR CLASS",
        Ok(T::ObjectOperator) => "OPERATOR",
        Ok(T::ObjectParameterAcl) => "PARAMETER",
        Ok(T::ObjectOpfamily) => "OPERATOR FAMILY",
        Ok(T::ObjectPolicy) => "POLICY",
        Ok(T::ObjectProcedure) => "PROCEDURE",
        Ok(T::ObjectPublication) => "PUBLICATION",
        Ok(T::ObjectRole) => "ROLE",
        Ok(T::ObjectRoutine) => "ROUTINE",
        Ok(T::ObjectRule) => "RULE",
        Ok(T::ObjectSchema) => "SCHEMA",
        Ok(T::ObjectSequence) => "SEQUENCE",
        Ok(T::ObjectSubscription) => "SUBSCRIPTION",
        Ok(T::ObjectStatisticExt) => "STATISTICS",
        Ok(T::ObjectTabconstraint) => "CONSTRAINT",
        Ok(T::ObjectTable) => "TABLE",
        Ok(T::ObjectTablespace) => "TABLESPACE",
        Ok(T::ObjectTransform) => "TRANSFORM",
        Ok(T::ObjectTrigger) => "TRIGGER",
        Ok(T::ObjectTsconfiguration) => "TEXT SEARCH CONFIGURATION",
        Ok(T::ObjectTsdictionary) => "TEXT SEARCH DICTIONARY",
        Ok(T::ObjectTsparser) => "TEXT SEARCH PARSER",
        Ok(T::ObjectTstemplate) => "TEXT SEARCH TEMPLATE",
        Ok(T::ObjectType) => "TYPE",
        Ok(T::ObjectUserMapping) => "USER MAPPING",
        Ok(T::ObjectView) => "VIEW",
        _ => "OBJECT",
    }
}

/// The justification a message gives in a leading comment, `/* justification: why */ SELECT …` or
/// `-- justification: why` on the first line; it applies to the statements of that message only.
pub fn leading_justification(sql: &str) -> Option<&str> {
    let text = sql.trim_start();
    let comment = if let Some(rest) = text.strip_prefix("/*") {
        &rest[..rest.find("*/")?]
    } else if let Some(rest) = text.strip_prefix("--") {
        rest.lines().next().unwrap_or_default()
    } else {
        return None;
    };
    let comment = comment.trim();
    let (label, why) = comment.split_once(':')?;
    let why = why.trim();
    (label.trim().eq_ignore_ascii_case("justification") && !why.is_empty()).then_some(why)
}

#[cfg(test)]
mod justification_tests {
    use super::leading_justification;

    #[test]
    fn reads_a_leading_comment_only() {
        assert_eq!(
            leading_justification("/* Justification: ticket 42 */ SELECT 1"),
            Some("ticket 42")
        );
        assert_eq!(
            leading_justification("  -- justification: audit\nSELECT 1"),
            Some("audit")
        );
        assert_eq!(
            leading_justification("SELECT 1 /* justification: x */"),
            None
        );
        assert_eq!(leading_justification("/* note: x */ SELECT 1"), None);
        assert_eq!(leading_justification("/* justification: */ SELECT 1"), None);
        assert_eq!(leading_justification("/* justification: open"), None);
    }
}

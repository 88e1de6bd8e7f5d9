//! The tree walk: finds every relation, function and subquery in a statement and records what is done to
//! each, tracking CTE scopes so references to CTEs are not reported as objects.

use pg_query::protobuf::{self, a_const, node::Node as NodeEnum, CmdType, OnConflictAction};
use pg_query::NodeRef;

use crate::analysis::{ObjectAccess, ObjectName, SessionEffect};
use crate::builtins;
use crate::children::{for_each_child, node_name};
use crate::kind::{ObjectKind, Operation};
use crate::resolve::SearchPath;
use crate::settings::{setting_class, setting_object, SettingClass};

/// How deep the walk goes before giving up (fail closed). The protobuf decoder already limits nesting to
/// about 100 messages, so this is a second line of defence for the stack.
const MAX_DEPTH: usize = 400;

/// Collects the object components of one statement.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    pub(crate) objects: Vec<ObjectAccess>,
    pub(crate) opaque: Option<String>,
    pub(crate) param_refs: u16,
    pub(crate) bound_settings: Vec<u16>,
    pub(crate) effect: Option<SessionEffect>,
    ctes: Vec<String>,
    depth: usize,
}

impl Walker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Marks the statement opaque; the first reason wins.
    pub(crate) fn opaque(&mut self, reason: impl Into<String>) {
        if self.opaque.is_none() {
            self.opaque = Some(reason.into());
        }
    }

    /// Records an object component, merging with an earlier one for the same object and operation. Columns
    /// merge by union, except that "unknown" (empty) absorbs everything.
    pub(crate) fn add(
        &mut self,
        object: ObjectName,
        kind: ObjectKind,
        operation: Operation,
        columns: Vec<String>,
    ) {
        if let Some(existing) = self
            .objects
            .iter_mut()
            .find(|o| o.kind == kind && o.operation == operation && o.object == object)
        {
            if existing.columns.is_empty() || columns.is_empty() {
                existing.columns.clear();
            } else {
                for c in columns {
                    if !existing.columns.contains(&c) {
                        existing.columns.push(c);
                    }
                }
            }
            return;
        }
        self.objects.push(ObjectAccess {
            object,
            kind,
            operation,
            columns,
        });
    }

    /// Records `operation` on the relation `rv` (never treated as a CTE reference).
    pub(crate) fn relation(
        &mut self,
        rv: &protobuf::RangeVar,
        operation: Operation,
        columns: Vec<String>,
    ) {
        self.add(range_var_name(rv), ObjectKind::Relation, operation, columns);
    }

    /// Merges another walker's findings (used for nested statements such as EXPLAIN's).
    pub(crate) fn absorb(&mut self, other: Walker) {
        for o in other.objects {
            self.add(o.object, o.kind, o.operation, o.columns);
        }
        if let Some(reason) = other.opaque {
            self.opaque(reason);
        }
        self.param_refs = self.param_refs.max(other.param_refs);
        self.bound_settings.extend(other.bound_settings);
        if let Some(effect) = other.effect {
            self.set_effect(effect);
        }
    }

    pub(crate) fn set_effect(&mut self, effect: SessionEffect) {
        if self.effect.is_some() {
            self.opaque("the statement changes session state more than once");
        } else {
            self.effect = Some(effect);
        }
    }

    /// Walks an optional boxed node.
    pub(crate) fn walk_opt(&mut self, node: &Option<Box<protobuf::Node>>) {
        if let Some(inner) = node.as_ref().and_then(|n| n.node.as_ref()) {
            self.walk(inner.to_ref());
        }
    }

    /// Walks every node of a list.
    pub(crate) fn walk_list(&mut self, nodes: &[protobuf::Node]) {
        for n in nodes {
            if let Some(inner) = &n.node {
                self.walk(inner.to_ref());
            }
        }
    }

    /// Walks any node: statements that can nest (SELECT and the DML ones) get their own handling, relations
    /// found are read, function calls executed, and everything else is descended into generically.
    pub(crate) fn walk(&mut self, node: NodeRef<'_>) {
        if self.depth >= MAX_DEPTH {
            self.opaque("the statement is nested too deeply to analyse");
            return;
        }
        self.depth += 1;
        match node {
            NodeRef::SelectStmt(s) => self.select(s),
            NodeRef::InsertStmt(s) => self.insert(s),
            NodeRef::UpdateStmt(s) => self.update(s),
            NodeRef::DeleteStmt(s) => self.delete(s),
            NodeRef::MergeStmt(s) => self.merge(s),
            NodeRef::RangeVar(rv) => self.read_range_var(rv),
            NodeRef::FuncCall(f) => self.func_call(f),
            NodeRef::ParamRef(p) => {
                let n = u16::try_from(p.number.max(0)).unwrap_or(u16::MAX);
                self.param_refs = self.param_refs.max(n);
            }
            // FOR UPDATE OF names are aliases of FROM items already seen, not relations.
            NodeRef::LockingClause(_) => {}
            NodeRef::WithClause(w) => {
                // Only reached when an enclosing node does not scope its WITH itself; keep names visible
                // to the rest of that node by not popping them.
                self.with_ctes(w);
            }
            other => {
                let name = node_name(other);
                if name.ends_with("Stmt") {
                    self.opaque(format!("a nested {name} is not supported by the analyser"));
                } else {
                    for_each_child(other, &mut |child| self.walk(child));
                }
            }
        }
        self.depth -= 1;
    }

    fn read_range_var(&mut self, rv: &protobuf::RangeVar) {
        let is_cte = rv.schemaname.is_empty()
            && rv.catalogname.is_empty()
            && self.ctes.contains(&rv.relname);
        if !is_cte {
            self.relation(rv, Operation::Read, Vec::new());
        }
    }

    /// Puts the CTEs of `with` in scope, walking their queries: a plain WITH's query sees the CTEs before it,
    /// a recursive WITH's queries see all of them.
    fn with_ctes(&mut self, with: &protobuf::WithClause) {
        let ctes = with.ctes.iter().filter_map(|n| match &n.node {
            Some(NodeEnum::CommonTableExpr(c)) => Some(c.as_ref()),
            _ => None,
        });
        if with
            .ctes
            .iter()
            .any(|n| !matches!(n.node, Some(NodeEnum::CommonTableExpr(_))))
        {
            self.opaque("unexpected node in WITH clause");
        }
        if with.recursive {
            self.ctes.extend(ctes.clone().map(|c| c.ctename.clone()));
            for cte in ctes {
                self.walk_opt(&cte.ctequery);
            }
        } else {
            for cte in ctes {
                self.walk_opt(&cte.ctequery);
                self.ctes.push(cte.ctename.clone());
            }
        }
    }

    /// Runs `body` with the CTEs of `with` in scope, then drops them.
    fn scoped(&mut self, with: Option<&protobuf::WithClause>, body: impl FnOnce(&mut Self)) {
        let mark = self.ctes.len();
        if let Some(w) = with {
            self.with_ctes(w);
        }
        body(self);
        self.ctes.truncate(mark);
    }

    fn select(&mut self, s: &protobuf::SelectStmt) {
        self.scoped(s.with_clause.as_ref(), |w| {
            if let Some(rel) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                let cols = s
                    .into_clause
                    .as_ref()
                    .map(|i| string_list(&i.col_names))
                    .unwrap_or_default();
                w.add(
                    created_name(rel),
                    ObjectKind::Relation,
                    Operation::Create,
                    cols,
                );
            }
            for_each_child(NodeRef::SelectStmt(s), &mut |child| match child {
                NodeRef::WithClause(_) | NodeRef::IntoClause(_) => {}
                other => w.walk(other),
            });
            w.row_locks(s);
        });
    }

    /// `FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` lock rows against writers, which PostgreSQL allows
    /// only to a role that may update the relation: each locked relation is also updated. `OF name` picks
    /// FROM items by alias or name; a clause without names, or a name that is not a plain relation (a
    /// subquery, a CTE), locks every relation the FROM list reads.
    fn row_locks(&mut self, s: &protobuf::SelectStmt) {
        if s.locking_clause.is_empty() {
            return;
        }
        let mut named = Vec::new();
        from_relations(&s.from_clause, &mut named);
        named.retain(|(_, rv)| {
            !(rv.schemaname.is_empty()
                && rv.catalogname.is_empty()
                && self.ctes.contains(&rv.relname))
        });
        let mut every = false;
        let mut locked = Vec::new();
        for clause in &s.locking_clause {
            let Some(NodeEnum::LockingClause(lc)) = &clause.node else {
                self.opaque("unexpected node in a locking clause");
                continue;
            };
            if lc.locked_rels.is_empty() {
                every = true;
            }
            for rel in &lc.locked_rels {
                let target = match &rel.node {
                    Some(NodeEnum::RangeVar(rv)) => named
                        .iter()
                        .find(|(alias, _)| *alias == rv.relname)
                        .map(|(_, rv)| range_var_name(rv)),
                    _ => None,
                };
                match target {
                    Some(name) => locked.push(name),
                    None => every = true,
                }
            }
        }
        if every {
            let mut from = Walker {
                ctes: self.ctes.clone(),
                ..Walker::new()
            };
            from.walk_list(&s.from_clause);
            locked.extend(
                from.objects
                    .into_iter()
                    .filter(|o| o.kind == ObjectKind::Relation && o.operation == Operation::Read)
                    .map(|o| o.object),
            );
        }
        for name in locked {
            self.add(name, ObjectKind::Relation, Operation::Update, Vec::new());
        }
    }

    fn returning(
        &mut self,
        target: &protobuf::RangeVar,
        returning: &Option<protobuf::ReturningClause>,
    ) {
        if let Some(r) = returning {
            if !r.exprs.is_empty() {
                self.relation(target, Operation::Read, Vec::new());
            }
            self.walk_list(&r.exprs);
        }
    }

    fn insert(&mut self, s: &protobuf::InsertStmt) {
        self.scoped(s.with_clause.as_ref(), |w| {
            let Some(target) = &s.relation else {
                w.opaque("INSERT without a target relation");
                return;
            };
            w.relation(target, Operation::Insert, res_target_names(&s.cols));
            w.walk_opt(&s.select_stmt);
            if let Some(oc) = &s.on_conflict_clause {
                if oc.action == OnConflictAction::OnconflictUpdate as i32 {
                    w.relation(target, Operation::Update, res_target_names(&oc.target_list));
                }
                if let Some(infer) = &oc.infer {
                    w.walk(NodeRef::InferClause(infer));
                }
                w.walk_res_target_values(&oc.target_list);
                w.walk_opt(&oc.where_clause);
            }
            w.returning(target, &s.returning_clause);
        });
    }

    /// A WHERE clause reads the target's rows (PostgreSQL requires SELECT for it, and the row count tells
    /// what matched), so a filtered UPDATE or DELETE is also a read of its target.
    fn filtered_target(&mut self, target: &protobuf::RangeVar, filtered: bool) {
        if filtered {
            self.relation(target, Operation::Read, Vec::new());
        }
    }

    fn update(&mut self, s: &protobuf::UpdateStmt) {
        self.scoped(s.with_clause.as_ref(), |w| {
            let Some(target) = &s.relation else {
                w.opaque("UPDATE without a target relation");
                return;
            };
            w.relation(target, Operation::Update, res_target_names(&s.target_list));
            w.filtered_target(target, s.where_clause.is_some());
            w.walk_res_target_values(&s.target_list);
            w.walk_list(&s.from_clause);
            w.walk_opt(&s.where_clause);
            w.returning(target, &s.returning_clause);
        });
    }

    fn delete(&mut self, s: &protobuf::DeleteStmt) {
        self.scoped(s.with_clause.as_ref(), |w| {
            let Some(target) = &s.relation else {
                w.opaque("DELETE without a target relation");
                return;
            };
            w.relation(target, Operation::Delete, Vec::new());
            w.filtered_target(target, s.where_clause.is_some());
            w.walk_list(&s.using_clause);
            w.walk_opt(&s.where_clause);
            w.returning(target, &s.returning_clause);
        });
    }

    fn merge(&mut self, s: &protobuf::MergeStmt) {
        self.scoped(s.with_clause.as_ref(), |w| {
            let Some(target) = &s.relation else {
                w.opaque("MERGE without a target relation");
                return;
            };
            w.walk_opt(&s.source_relation);
            w.walk_opt(&s.join_condition);
            for clause in &s.merge_when_clauses {
                let Some(NodeEnum::MergeWhenClause(when)) = &clause.node else {
                    w.opaque("unexpected node in MERGE WHEN list");
                    continue;
                };
                let columns = res_target_names(&when.target_list);
                match CmdType::try_from(when.command_type) {
                    Ok(CmdType::CmdInsert) => w.relation(target, Operation::Insert, columns),
                    Ok(CmdType::CmdUpdate) => w.relation(target, Operation::Update, columns),
                    Ok(CmdType::CmdDelete) => w.relation(target, Operation::Delete, Vec::new()),
                    Ok(CmdType::CmdNothing) => {}
                    _ => w.opaque("unknown MERGE action"),
                }
                w.walk_opt(&when.condition);
                w.walk_res_target_values(&when.target_list);
                w.walk_list(&when.values);
            }
            w.returning(target, &s.returning_clause);
        });
    }

    /// Walks the value expressions of SET/INSERT target lists (the names are columns, not references).
    fn walk_res_target_values(&mut self, targets: &[protobuf::Node]) {
        for t in targets {
            match &t.node {
                Some(NodeEnum::ResTarget(rt)) => {
                    self.walk_opt(&rt.val);
                    self.walk_list(&rt.indirection);
                }
                Some(other) => self.walk(other.to_ref()),
                None => {}
            }
        }
    }

    fn func_call(&mut self, f: &protobuf::FuncCall) {
        let parts = string_list(&f.funcname);
        match ObjectName::from_parts(&parts) {
            Some(name) if parts.len() == f.funcname.len() => {
                let builtin = name.schema.as_deref().is_none_or(|s| s == "pg_catalog");
                let is_set_config = builtin && name.name == "set_config";
                if let Some(why) = builtin
                    .then(|| builtins::function_class("pg_catalog", &name.name))
                    .flatten()
                    .and_then(builtins::FunctionClass::unanalysable)
                    .or_else(|| {
                        builtin
                            .then(|| builtins::unanalysable_overload(&name.name, f.args.len()))
                            .flatten()
                    })
                    .or_else(|| {
                        // dblink's functions, wherever the extension lives, run SQL given as text.
                        name.name
                            .starts_with("dblink")
                            .then_some("runs SQL given as text, which the gateway cannot analyse")
                    })
                {
                    self.opaque(format!("{}() {why}", name.name));
                }
                self.add(name, ObjectKind::Function, Operation::Execute, Vec::new());
                if is_set_config {
                    self.set_config(&f.args);
                }
            }
            _ => self.opaque("a function call with an unrecognised name"),
        }
        for_each_child(NodeRef::FuncCall(f), &mut |child| self.walk(child));
    }

    /// `set_config(name, value, is_local)` is `SET` in function form: track search_path changes and refuse
    /// identity changes and anything not spelled out in constants.
    fn set_config(&mut self, args: &[protobuf::Node]) {
        if let Some(n) = args.first().and_then(param_number) {
            // Known at Bind: the gateway decides the bound name there.
            self.bound_settings.push(n);
            return;
        }
        let Some(setting) = args.first().and_then(const_string) else {
            self.opaque("set_config() with a non-constant setting name may change the session's identity or search_path");
            return;
        };
        match setting_class(&setting) {
            SettingClass::Identity => {
                self.opaque("set_config() of role changes the upstream identity")
            }
            SettingClass::Privileged => self.add(
                setting_object(&setting),
                ObjectKind::Setting,
                Operation::Set,
                Vec::new(),
            ),
            SettingClass::Ordinary => {}
        }
        if setting.eq_ignore_ascii_case("search_path") {
            let value = args.get(1).and_then(const_string);
            let local = args.get(2).and_then(const_bool);
            match (value, local) {
                (Some(v), Some(false)) => self.set_effect(SessionEffect::SetSearchPath(
                    SearchPath::from_setting(&v).entries().to_vec(),
                )),
                (Some(v), Some(true)) => self.set_effect(SessionEffect::SetLocalSearchPath(
                    SearchPath::from_setting(&v).entries().to_vec(),
                )),
                _ => self.opaque("set_config() of search_path with a non-constant value"),
            }
        }
    }
}

/// The plain relations of a FROM list (through joins) with the name a locking clause would use for
/// each: its alias, else its own name.
fn from_relations<'a>(
    items: &'a [protobuf::Node],
    out: &mut Vec<(&'a str, &'a protobuf::RangeVar)>,
) {
    for item in items {
        match &item.node {
            Some(NodeEnum::RangeVar(rv)) => {
                let alias = rv
                    .alias
                    .as_ref()
                    .map_or(rv.relname.as_str(), |a| a.aliasname.as_str());
                out.push((alias, rv));
            }
            Some(NodeEnum::JoinExpr(j)) => {
                for side in [&j.larg, &j.rarg].into_iter().flatten() {
                    from_relations(std::slice::from_ref(side.as_ref()), out);
                }
            }
            _ => {}
        }
    }
}

/// The name of a RangeVar as written.
pub(crate) fn range_var_name(rv: &protobuf::RangeVar) -> ObjectName {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    ObjectName {
        database: non_empty(&rv.catalogname),
        schema: non_empty(&rv.schemaname),
        name: rv.relname.clone(),
    }
}

/// A created relation's name; `CREATE TEMP ...` without a schema lands in the session's temporary schema.
pub(crate) fn created_name(rv: &protobuf::RangeVar) -> ObjectName {
    let mut name = range_var_name(rv);
    if name.schema.is_none() && rv.relpersistence == "t" {
        name.schema = Some("pg_temp".into());
    }
    name
}

/// The `String` nodes of a list (other nodes are skipped; callers compare lengths when it matters).
pub(crate) fn string_list(nodes: &[protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The names of ResTarget nodes (INSERT column lists, SET targets).
pub(crate) fn res_target_names(nodes: &[protobuf::Node]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in nodes {
        if let Some(NodeEnum::ResTarget(rt)) = &n.node {
            if !rt.name.is_empty() && !names.contains(&rt.name) {
                names.push(rt.name.clone());
            }
        }
    }
    names
}

/// A string constant (`'x'`, possibly cast, e.g. `'x'::text`).
pub(crate) fn const_string(node: &protobuf::Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        NodeEnum::TypeCast(tc) => const_string(tc.arg.as_deref()?),
        _ => None,
    }
}

/// The number of a parameter reference (`$2`, possibly cast).
fn param_number(node: &protobuf::Node) -> Option<u16> {
    match node.node.as_ref()? {
        NodeEnum::ParamRef(p) => u16::try_from(p.number).ok().filter(|n| *n > 0),
        NodeEnum::TypeCast(tc) => param_number(tc.arg.as_deref()?),
        _ => None,
    }
}

/// A boolean constant (`true`, `'false'`, possibly cast).
pub(crate) fn const_bool(node: &protobuf::Node) -> Option<bool> {
    match node.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            a_const::Val::Boolval(b) => Some(b.boolval),
            a_const::Val::Sval(s) => match s.sval.to_ascii_lowercase().as_str() {
                "t" | "true" | "on" | "yes" | "1" => Some(true),
                "f" | "false" | "off" | "no" | "0" => Some(false),
                _ => None,
            },
            a_const::Val::Ival(i) => Some(i.ival != 0),
            _ => None,
        },
        NodeEnum::TypeCast(tc) => const_bool(tc.arg.as_deref()?),
        _ => None,
    }
}

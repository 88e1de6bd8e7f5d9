//! The tree rewrite of one statement: every reference to a protected relation in a reading position becomes a
//! masked, filtered projection of it; references to the columns of a protected write target are masked in
//! place. Tracks CTE scopes so a CTE that shadows a table name is left alone.

use std::collections::HashSet;

use pg_query::protobuf::{self, Node, OnConflictAction};
use pg_query::NodeEnum;

use super::children_mut::{
    children_of_RangeVar, children_of_SelectStmt, for_each_child_mut, ChildMut,
};
use super::error::RewriteError;
use super::expr::mask_expression;
use super::filter::filter_expression;
use super::nodes::{and_all, column_ref, node, res_target, string};
use super::projection::{projection, projection_over, Sample};
use super::rewrite::Applied;
use super::scope::{self, Item, Replaced, Resolution, Scopes};
use super::view::{self, MAX_VIEW_DEPTH, TRUSTED_FUNCTION_SCHEMAS};
use super::{MaskKind, Protections, RelationProtection, ViewDefinition};
use crate::analysis::ObjectName;
use crate::kind::ObjectKind;
use crate::resolve::{resolve, Catalog, QualifiedName, SearchPath};
use crate::walker::range_var_name;

/// How deep the rewrite recurses before refusing (the protobuf decoder already limits nesting to about 100).
const MAX_DEPTH: usize = 1000;

/// What the rewriter needs to resolve names and find protections.
pub(crate) struct Context<'a> {
    pub(crate) path: &'a SearchPath,
    pub(crate) session_user: &'a str,
    pub(crate) catalog: &'a dyn Catalog,
    pub(crate) protections: &'a dyn Protections,
}

impl<'a> Context<'a> {
    /// The protection of the relation `rv` names, when it is not empty. `ctes` are the CTE names in scope,
    /// which shadow unqualified relation names.
    pub(crate) fn protection_of(
        &self,
        rv: &protobuf::RangeVar,
        ctes: &[String],
    ) -> Option<(QualifiedName, &'a RelationProtection)> {
        let name = self.relation(rv, ctes)?;
        let protection = self.protections.protection(&name)?;
        (!protection.is_empty()).then_some((name, protection))
    }

    /// The view `rv` names, when it reads a protected relation and so is expanded into its definition.
    pub(crate) fn view_of(
        &self,
        rv: &protobuf::RangeVar,
        ctes: &[String],
    ) -> Option<(QualifiedName, &'a ViewDefinition)> {
        let name = self.relation(rv, ctes)?;
        let view = self.protections.view_to_expand(&name)?;
        Some((name, view))
    }

    /// The relation `rv` names; `None` when it names a CTE in scope.
    pub(crate) fn relation(
        &self,
        rv: &protobuf::RangeVar,
        ctes: &[String],
    ) -> Option<QualifiedName> {
        if rv.schemaname.is_empty() && rv.catalogname.is_empty() && ctes.contains(&rv.relname) {
            return None;
        }
        Some(resolve(
            &range_var_name(rv),
            ObjectKind::Relation,
            self.path,
            self.session_user,
            self.catalog,
        ))
    }
}

/// A protected write target (UPDATE, DELETE, INSERT) whose column references are masked in place.
struct Target {
    relation: QualifiedName,
    /// The names the target's columns can be qualified with (its alias or name; in RETURNING also `old`/`new`).
    refnames: Vec<String>,
    masks: Vec<(String, MaskKind)>,
    /// Known columns, required when anything is masked or denied.
    columns: Vec<String>,
    /// Whether a whole-row reference would show something the protection hides.
    sensitive: bool,
}

/// The rewrite of one statement.
pub(crate) struct Rewriter<'a> {
    ctx: &'a Context<'a>,
    ctes: Vec<String>,
    targets: Vec<Target>,
    depth: usize,
    error: Option<RewriteError>,
    /// Whether the tree was changed.
    pub(crate) changed: bool,
    /// Protections put in place.
    pub(crate) applied: Vec<Applied>,
    /// Denied columns of every protected relation the statement touches: (relation, column, rule).
    denied: Vec<(QualifiedName, String, String)>,
    /// Column names the statement references (last field of column references, SET and INSERT targets, ...).
    referenced: HashSet<String>,
    hashed: Option<QualifiedName>,
    explains: bool,
    current_query: bool,
    /// The view whose definition is being walked: its names are qualified, and its functions must be
    /// PostgreSQL's own.
    in_view: Option<QualifiedName>,
    /// How many views enclose the definition being walked.
    view_depth: usize,
    /// The FROM items of the query levels enclosing the node being walked.
    scopes: Scopes,
}

impl<'a> Rewriter<'a> {
    pub(crate) fn new(ctx: &'a Context<'a>) -> Self {
        Self {
            ctx,
            ctes: Vec::new(),
            targets: Vec::new(),
            depth: 0,
            error: None,
            changed: false,
            applied: Vec::new(),
            denied: Vec::new(),
            referenced: HashSet::new(),
            hashed: None,
            explains: false,
            current_query: false,
            in_view: None,
            view_depth: 0,
            scopes: Scopes::default(),
        }
    }

    fn fail(&mut self, error: RewriteError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Rewrites a top-level statement. `protected` names a protected relation the statement references,
    /// for messages about statements that cannot be rewritten at all.
    pub(crate) fn statement(&mut self, stmt: &mut NodeEnum, protected: &QualifiedName) {
        self.top(stmt, protected);
        if self.error.is_none() {
            self.final_checks();
        }
    }

    /// The outcome: an error, or whether anything changed.
    pub(crate) fn finish(self) -> Result<(bool, Vec<Applied>), RewriteError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok((self.changed, self.applied)),
        }
    }

    fn top(&mut self, stmt: &mut NodeEnum, protected: &QualifiedName) {
        match stmt {
            NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_) => self.expr(stmt),
            NodeEnum::ExplainStmt(e) => {
                self.explains = true;
                self.top_opt(&mut e.query, protected);
            }
            NodeEnum::DeclareCursorStmt(d) => self.top_opt(&mut d.query, protected),
            NodeEnum::PrepareStmt(p) => self.top_opt(&mut p.query, protected),
            NodeEnum::CreateTableAsStmt(c) => {
                if let Some(rel) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.not_a_target(rel, "created by CREATE TABLE AS");
                }
                self.top_opt(&mut c.query, protected);
            }
            NodeEnum::ViewStmt(v) => {
                if let Some(rel) = &v.view {
                    self.not_a_target(rel, "created by CREATE VIEW");
                }
                self.top_opt(&mut v.query, protected);
            }
            NodeEnum::CopyStmt(c) => self.copy(c, protected),
            other => {
                let name = crate::children::node_name(other.to_ref());
                self.fail(RewriteError::unsupported(format!(
                    "{} on protected relation {protected} cannot be masked",
                    statement_name(name)
                )));
            }
        }
    }

    fn top_opt(&mut self, query: &mut Option<Box<Node>>, protected: &QualifiedName) {
        match query.as_mut().and_then(|q| q.node.as_mut()) {
            Some(q) => self.top(q, protected),
            None => self.fail(RewriteError::unsupported("a statement without its query")),
        }
    }

    /// Checks made once the whole statement was walked.
    fn final_checks(&mut self) {
        if let Some((relation, column, rule)) = self
            .denied
            .iter()
            .find(|(_, column, _)| self.referenced.contains(column))
        {
            let error = RewriteError::DeniedColumn {
                relation: relation.clone(),
                column: column.clone(),
                rule: rule.clone(),
            };
            self.fail(error);
            return;
        }
        if let Some(relation) = self.hashed.clone() {
            if self.explains {
                self.fail(RewriteError::unsupported(format!(
                    "EXPLAIN would show the secret salt of the hash mask on {relation}"
                )));
            } else if self.current_query {
                self.fail(RewriteError::unsupported(format!(
                    "current_query() would show the secret salt of the hash mask on {relation}"
                )));
            }
        }
    }

    /// Records a protected relation's protection as applied, and its denied columns for the final check.
    fn record(&mut self, relation: &QualifiedName, protection: &RelationProtection) {
        for (column, rule) in &protection.denied_columns {
            if !self
                .denied
                .iter()
                .any(|(r, c, _)| r == relation && c == column)
            {
                self.denied
                    .push((relation.clone(), column.clone(), rule.clone()));
            }
        }
        if protection
            .masks
            .iter()
            .any(|m| matches!(m.mask, MaskKind::Hash { .. }))
        {
            self.hashed = Some(relation.clone());
        }
        if self.applied.iter().any(|a| &a.relation == relation) {
            return;
        }
        self.applied.push(Applied {
            statement: 0,
            relation: relation.clone(),
            masked: protection
                .masks
                .iter()
                .map(|m| (m.column.clone(), m.rule.clone()))
                .collect(),
            row_filters: protection
                .row_filters
                .iter()
                .map(|f| f.rule.clone())
                .collect(),
        });
    }

    /// A relation named where a statement creates one: a protected name there cannot be rewritten.
    fn not_a_target(&mut self, rv: &protobuf::RangeVar, role: &str) {
        if let Some((name, _)) = self.ctx.protection_of(rv, &self.ctes) {
            self.fail(RewriteError::unsupported(format!(
                "protected relation {name} is {role}"
            )));
        } else if let Some((name, _)) = self.ctx.view_of(rv, &self.ctes) {
            self.fail(RewriteError::unsupported(format!(
                "view {name}, which reads a protected relation, is {role}"
            )));
        }
    }

    /// Any node: statements that nest get their own handling, everything else is descended into.
    fn expr(&mut self, n: &mut NodeEnum) {
        if self.error.is_some() {
            return;
        }
        if self.depth >= MAX_DEPTH {
            self.fail(RewriteError::unsupported(
                "the statement is nested too deeply to rewrite",
            ));
            return;
        }
        self.depth += 1;
        match n {
            NodeEnum::SelectStmt(s) => self.select(s),
            NodeEnum::InsertStmt(_) => self.insert(n),
            NodeEnum::UpdateStmt(_) => self.update(n),
            NodeEnum::DeleteStmt(_) => self.delete(n),
            NodeEnum::MergeStmt(_) => self.merge(n),
            NodeEnum::RangeVar(rv) => self.stray_range_var(rv),
            NodeEnum::JoinExpr(_) | NodeEnum::RangeSubselect(_) | NodeEnum::RangeTableSample(_) => {
                self.range_item(n)
            }
            NodeEnum::ColumnRef(_) => self.column_ref(n),
            NodeEnum::IndexElem(ie) => {
                if !ie.name.is_empty() {
                    self.referenced.insert(ie.name.clone());
                }
                self.generic(n);
            }
            NodeEnum::FuncCall(f) => {
                if let Some(Some(NodeEnum::String(s))) = f.funcname.last().map(|p| &p.node) {
                    if s.sval == "current_query" {
                        self.current_query = true;
                    }
                }
                if self.in_view.is_some() {
                    self.view_function(&mut f.funcname);
                }
                self.generic(n);
            }
            _ => {
                let name = crate::children::node_name(n.to_ref());
                if name.ends_with("Stmt") {
                    self.fail(RewriteError::unsupported(format!(
                        "a nested {} cannot be rewritten",
                        statement_name(name)
                    )));
                } else {
                    self.generic(n);
                }
            }
        }
        self.depth -= 1;
    }

    fn expr_opt(&mut self, n: &mut Option<Box<Node>>) {
        if let Some(inner) = n.as_mut().and_then(|b| b.node.as_mut()) {
            self.expr(inner);
        }
    }

    fn expr_list(&mut self, list: &mut [Node]) {
        for item in list {
            if let Some(inner) = item.node.as_mut() {
                self.expr(inner);
            }
        }
    }

    /// Descends into every child of `n`.
    fn generic(&mut self, n: &mut NodeEnum) {
        for_each_child_mut(n, &mut |child| self.child(child));
    }

    fn child(&mut self, child: ChildMut<'_>) {
        match child {
            ChildMut::Node(n) => self.expr(n),
            ChildMut::RangeVar(rv) => self.stray_range_var(rv),
            ChildMut::Select(s) => self.select(s),
            // Only reached when an enclosing node does not scope its WITH itself: keep the names visible
            // to the rest of that node.
            ChildMut::With(w) => self.with_ctes(w),
        }
    }

    /// A relation reference outside a FROM list (or a typed one the statement handler did not take).
    fn stray_range_var(&mut self, rv: &mut protobuf::RangeVar) {
        if let Some((name, _)) = self.ctx.protection_of(rv, &self.ctes) {
            self.fail(RewriteError::unsupported(format!(
                "protected relation {name} is referenced where it cannot be replaced by a masked projection"
            )));
        } else if let Some((name, _)) = self.ctx.view_of(rv, &self.ctes) {
            self.fail(RewriteError::unsupported(format!(
                "view {name}, which reads a protected relation, is referenced where it cannot be expanded"
            )));
        } else {
            children_of_RangeVar(rv, &mut |child| self.child(child));
        }
    }

    /// Puts the CTEs of `with` in scope, rewriting their queries (with no write target in scope: a CTE
    /// cannot see the enclosing statement's target).
    fn with_ctes(&mut self, with: &mut protobuf::WithClause) {
        let names: Vec<String> = with
            .ctes
            .iter()
            .filter_map(|c| match &c.node {
                Some(NodeEnum::CommonTableExpr(cte)) => Some(cte.ctename.clone()),
                _ => None,
            })
            .collect();
        if names.len() != with.ctes.len() {
            self.fail(RewriteError::unsupported("unexpected node in WITH clause"));
            return;
        }
        let targets = std::mem::take(&mut self.targets);
        if with.recursive {
            self.ctes.extend(names);
        }
        for cte in &mut with.ctes {
            if let Some(NodeEnum::CommonTableExpr(c)) = cte.node.as_mut() {
                self.expr_opt(&mut c.ctequery);
                if !with.recursive {
                    self.ctes.push(c.ctename.clone());
                }
            }
        }
        self.targets = targets;
    }

    fn select(&mut self, s: &mut protobuf::SelectStmt) {
        let mark = self.ctes.len();
        let mut with = s.with_clause.take();
        if let Some(w) = with.as_mut() {
            self.with_ctes(w);
        }
        let into = s.into_clause.take();
        if let Some(rel) = into.as_ref().and_then(|i| i.rel.as_ref()) {
            self.not_a_target(rel, "created by SELECT INTO");
        }
        let mut from = std::mem::take(&mut s.from_clause);
        self.enter(&from, None);
        self.range_list(&mut from);
        children_of_SelectStmt(s, &mut |child| self.child(child));
        self.leave(&mut from);
        s.from_clause = from;
        s.with_clause = with;
        s.into_clause = into;
        self.ctes.truncate(mark);
    }

    fn range_list(&mut self, items: &mut [Node]) {
        for item in items {
            if let Some(inner) = item.node.as_mut() {
                self.range_item(inner);
            }
        }
    }

    /// Enters a query level whose FROM list is `from` and whose write target (UPDATE, DELETE, MERGE) is
    /// `target`.
    fn enter(&mut self, from: &[Node], target: Option<&protobuf::RangeVar>) {
        let mut names = Vec::new();
        if let Some(rv) = target {
            names.push(scope::range_var_refname(rv));
        }
        scope::from_names(from, &mut names);
        self.scopes.push(names);
    }

    /// Leaves the query level whose (rewritten) FROM list is `from`.
    fn leave(&mut self, from: &mut [Node]) {
        let level = self.scopes.pop();
        if self.error.is_none() {
            if let Err(e) = scope::apply_catalogs(&level, from) {
                self.fail(e);
            }
        }
    }

    /// A write target or other relation reference that stays as written, as an item of the current level.
    fn add_relation_item(&mut self, rv: &protobuf::RangeVar, ctes: &[String]) {
        let relation = if rv.alias.is_none() {
            self.ctx.relation(rv, ctes)
        } else {
            None
        };
        let mut item = Item::named(Some(scope::range_var_refname(rv)));
        item.relation = relation;
        item.catalog = rv.catalogname.clone();
        self.scopes.add(item);
    }

    /// `rv`, to be replaced by a projection or view of `name`: an unaliased one gets the relation's name as
    /// alias, or a new one where another item of its level has that name too. Adds it as an item of the level.
    fn replaced_item(
        &mut self,
        rv: &protobuf::RangeVar,
        name: &QualifiedName,
        replaced: Replaced,
    ) -> protobuf::RangeVar {
        if rv.alias.is_none() && self.scopes.has_relation(name) {
            // PostgreSQL refuses this ("specified more than once"); the new names the projections would get
            // must not make it run.
            self.fail(RewriteError::unsupported(format!(
                "table name {} is specified more than once; give the references to {name} aliases",
                rv.relname
            )));
        }
        let mut item = Item::named(Some(scope::range_var_refname(rv)));
        item.replaced = replaced;
        item.catalog = rv.catalogname.clone();
        let mut renamed = rv.clone();
        if rv.alias.is_none() {
            item.relation = Some(name.clone());
            let alias = self.scopes.projection_name(&rv.relname, name);
            if alias != rv.relname {
                renamed.alias = Some(protobuf::Alias {
                    aliasname: alias.clone(),
                    colnames: Vec::new(),
                });
            }
            item.after = Some(alias);
        }
        self.scopes.add(item);
        renamed
    }

    /// An item of a FROM list (or of a join): protected relations become masked projections.
    fn range_item(&mut self, n: &mut NodeEnum) {
        if self.error.is_some() {
            return;
        }
        match n {
            NodeEnum::RangeVar(rv) => {
                if let Some((name, view)) = self.ctx.view_of(rv, &self.ctes) {
                    let renamed = self.replaced_item(rv, &name, Replaced::View);
                    match self.expand_view(&renamed, &name, view) {
                        Ok(sub) => {
                            *n = sub;
                            self.changed = true;
                        }
                        Err(e) => self.fail(e),
                    }
                } else if let Some((name, protection)) = self.ctx.protection_of(rv, &self.ctes) {
                    self.record(&name, protection);
                    let renamed = self.replaced_item(rv, &name, Replaced::Projection);
                    match projection(self.ctx, &renamed, &name, protection, None) {
                        Ok(sub) => {
                            *n = sub;
                            self.changed = true;
                        }
                        Err(e) => self.fail(e),
                    }
                } else {
                    let ctes = self.ctes.clone();
                    self.add_relation_item(rv, &ctes);
                    if self.in_view.is_some() {
                        self.qualify(rv);
                    }
                }
            }
            NodeEnum::JoinExpr(j) => {
                let mark = self.scopes.mark();
                if let Some(l) = j.larg.as_mut().and_then(|b| b.node.as_mut()) {
                    self.range_item(l);
                }
                if let Some(r) = j.rarg.as_mut().and_then(|b| b.node.as_mut()) {
                    self.range_item(r);
                }
                self.expr_opt(&mut j.quals);
                // An aliased join hides the items inside it from the rest of the query.
                if let Some(alias) = &j.alias {
                    self.scopes.hide_since(mark);
                    self.scopes.add(Item::named(Some(alias.aliasname.clone())));
                }
                if let Some(alias) = &j.join_using_alias {
                    self.scopes.add(Item::named(Some(alias.aliasname.clone())));
                }
            }
            NodeEnum::RangeSubselect(rs) => {
                // Only a LATERAL subquery sees the items before it in its FROM list.
                let hidden = self.scopes.set_hidden(!rs.lateral);
                self.expr_opt(&mut rs.subquery);
                self.scopes.set_hidden(hidden);
                let name = rs.alias.as_ref().map(|a| a.aliasname.clone());
                self.scopes.add(Item::named(name));
            }
            NodeEnum::RangeTableSample(ts) => {
                self.expr_list(&mut ts.args);
                self.expr_opt(&mut ts.repeatable);
                let protected = match ts.relation.as_ref().and_then(|r| r.node.as_ref()) {
                    Some(NodeEnum::RangeVar(rv)) => match self.ctx.protection_of(rv, &self.ctes) {
                        Some((name, p)) => Some((rv.clone(), name, p)),
                        None => {
                            let (rv, ctes) = (rv.clone(), self.ctes.clone());
                            self.add_relation_item(&rv, &ctes);
                            None
                        }
                    },
                    _ => None,
                };
                if let Some((rv, name, protection)) = protected {
                    self.record(&name, protection);
                    let renamed = self.replaced_item(&rv, &name, Replaced::Projection);
                    let sample = Sample {
                        method: ts.method.clone(),
                        args: ts.args.clone(),
                        repeatable: ts.repeatable.clone(),
                    };
                    match projection(self.ctx, &renamed, &name, protection, Some(sample)) {
                        Ok(sub) => {
                            *n = sub;
                            self.changed = true;
                        }
                        Err(e) => self.fail(e),
                    }
                }
            }
            // Functions (LATERAL or not, as PostgreSQL makes them) and table functions see the items
            // before them.
            _ => {
                let name = scope::item_refname(n);
                self.expr(n);
                self.scopes.add(Item::named(name));
            }
        }
    }

    /// Expands the view `rv` names (`name`, reading a protected relation) into its definition, rewritten
    /// like the statement around it.
    fn expand_view(
        &mut self,
        rv: &protobuf::RangeVar,
        name: &QualifiedName,
        definition: &ViewDefinition,
    ) -> Result<NodeEnum, RewriteError> {
        if self.view_depth >= MAX_VIEW_DEPTH {
            return Err(RewriteError::unsupported(format!(
                "view {name} is nested in more than {MAX_VIEW_DEPTH} views"
            )));
        }
        let mut query = view::parse_definition(name, &definition.sql)?;
        let ctx = Context {
            path: &definition.path,
            session_user: self.ctx.session_user,
            catalog: self.ctx.catalog,
            protections: self.ctx.protections,
        };
        let mut inner = Rewriter::new(&ctx);
        inner.in_view = Some(name.clone());
        inner.view_depth = self.view_depth + 1;
        inner.expr(&mut query);
        if inner.error.is_none() {
            inner.final_checks();
        }
        if let Some(hashed) = inner.hashed.take() {
            self.hashed = Some(hashed);
        }
        for applied in inner.applied {
            if !self.applied.iter().any(|a| a.relation == applied.relation) {
                self.applied.push(applied);
            }
        }
        if let Some(e) = inner.error {
            return Err(e);
        }
        if definition.security_barrier {
            view::keep_barrier(&mut query);
        }
        let columns = self.ctx.protections.columns(name);
        // The view's own protections, if the policy names it too, apply over its expanded query.
        match self
            .ctx
            .protections
            .protection(name)
            .filter(|p| !p.is_empty())
        {
            Some(protection) => {
                self.record(name, protection);
                let bare = protobuf::RangeVar {
                    alias: None,
                    ..rv.clone()
                };
                let source = view::in_place_of(&bare, query, columns);
                projection_over(self.ctx, rv, name, protection, source)
            }
            None => Ok(view::in_place_of(rv, query, columns)),
        }
    }

    /// Names a relation of a view's definition by its schema, as resolved through the path the definition
    /// was printed under: the session's own path may find another relation of that name.
    fn qualify(&mut self, rv: &mut protobuf::RangeVar) {
        if let Some(name) = self.ctx.relation(rv, &self.ctes) {
            rv.schemaname = name.schema;
        }
    }

    /// A function a view's definition calls: PostgreSQL's own ones are named by their schema; any other
    /// may read protected data from its body, so the view cannot be expanded.
    fn view_function(&mut self, funcname: &mut Vec<Node>) {
        let parts = crate::mask::nodes::strings(funcname);
        let object = match parts.as_slice() {
            [name] => ObjectName {
                database: None,
                schema: None,
                name: name.clone(),
            },
            [.., schema, name] => ObjectName {
                database: None,
                schema: Some(schema.clone()),
                name: name.clone(),
            },
            [] => return,
        };
        let function = resolve(
            &object,
            ObjectKind::Function,
            self.ctx.path,
            self.ctx.session_user,
            self.ctx.catalog,
        );
        if !TRUSTED_FUNCTION_SCHEMAS.contains(&function.schema.as_str()) {
            let view = self.in_view.clone().unwrap_or_else(|| function.clone());
            self.fail(RewriteError::unsupported(format!(
                "view {view} calls function {function}, which may read protected data the gateway cannot mask"
            )));
            return;
        }
        if parts.len() == 1 {
            *funcname = vec![
                crate::mask::nodes::string(&function.schema),
                crate::mask::nodes::string(&function.name),
            ];
            self.changed = true;
        }
    }

    /// The protected write target `rv`, if it is protected.
    fn write_target(&mut self, rv: &mut protobuf::RangeVar) -> Option<Target> {
        // A write target is always a table: PostgreSQL does not look it up among the CTEs.
        if let Some((name, _)) = self.ctx.view_of(rv, &[]) {
            self.fail(RewriteError::unsupported(format!(
                "writing through view {name}, which reads a protected relation, cannot be masked; write to \
                 the relation itself"
            )));
            return None;
        }
        let (relation, protection) = self.ctx.protection_of(rv, &[])?;
        self.record(&relation, protection);
        let sensitive = !protection.masks.is_empty() || !protection.denied_columns.is_empty();
        let columns = match self.ctx.protections.columns(&relation) {
            Some(c) => c.to_vec(),
            None if sensitive => {
                self.fail(RewriteError::UnknownColumns { relation });
                return None;
            }
            None => Vec::new(),
        };
        let refname = rv
            .alias
            .as_ref()
            .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone());
        // Name the target by its schema, so the upstream writes exactly the relation whose protection was
        // applied, whatever it makes of the session's search_path.
        if rv.schemaname != relation.schema {
            rv.schemaname = relation.schema.clone();
            self.changed = true;
        }
        Some(Target {
            relation,
            refnames: vec![refname],
            masks: protection
                .masks
                .iter()
                .map(|m| (m.column.clone(), m.mask.clone()))
                .collect(),
            columns,
            sensitive,
        })
    }

    /// The row filters of a protected write target, over its reference name.
    fn target_filters(&mut self, rv: &protobuf::RangeVar) -> Vec<Node> {
        let Some((relation, protection)) = self.ctx.protection_of(rv, &[]) else {
            return Vec::new();
        };
        let refname = rv
            .alias
            .as_ref()
            .map_or(rv.relname.as_str(), |a| a.aliasname.as_str());
        let mut filters = Vec::new();
        for f in &protection.row_filters {
            match filter_expression(f, &relation, refname) {
                Ok(e) => filters.push(e),
                Err(e) => self.fail(e),
            }
        }
        filters
    }

    /// ANDs `filters` into `clause`.
    fn add_filters(&mut self, clause: &mut Option<Box<Node>>, filters: Vec<Node>) {
        if filters.is_empty() {
            return;
        }
        let mut operands: Vec<Node> = clause.take().map(|b| *b).into_iter().collect();
        operands.extend(filters);
        *clause = and_all(operands).map(Box::new);
        self.changed = true;
    }

    /// A column reference: remembered for the denied-column check, and masked when it names a masked column
    /// of a write target in scope. A whole-row reference to a sensitive write target is refused.
    fn column_ref(&mut self, n: &mut NodeEnum) {
        let NodeEnum::ColumnRef(c) = n else { return };
        if let Err(e) = self.requalify(c) {
            self.fail(e);
            return;
        }
        let parts: Vec<Option<&str>> = c
            .fields
            .iter()
            .map(|f| match &f.node {
                Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                _ => None,
            })
            .collect();
        if let Some(Some(last)) = parts.last() {
            self.referenced.insert((*last).to_owned());
        }
        let mut replacement = None;
        let mut refusal = None;
        for t in self.targets.iter().rev() {
            let qualified_by_target = parts.len() >= 2
                && parts[parts.len() - 2].is_some_and(|q| t.refnames.iter().any(|r| r == q));
            match parts.as_slice() {
                [Some(col)] => {
                    if let Some((_, mask)) = t.masks.iter().find(|(c, _)| c == col) {
                        replacement = Some(mask.clone());
                    } else if t.sensitive
                        && t.refnames.iter().any(|r| r == col)
                        && !t.columns.iter().any(|c| c == col)
                    {
                        refusal = Some(format!(
                            "a whole-row reference to protected write target {} ({col})",
                            t.relation
                        ));
                    }
                }
                [.., None] if qualified_by_target && t.sensitive => {
                    refusal = Some(format!(
                        "a whole-row reference to protected write target {} (.*)",
                        t.relation
                    ));
                }
                [.., Some(col)] if qualified_by_target => {
                    if let Some((_, mask)) = t.masks.iter().find(|(c, _)| c == col) {
                        replacement = Some(mask.clone());
                    } else if t.sensitive && !t.columns.iter().any(|c| c == col) {
                        refusal = Some(format!(
                            "{col} is not a column of protected write target {} (a function called on the whole row?)",
                            t.relation
                        ));
                    }
                }
                _ => {}
            }
            if replacement.is_some() || refusal.is_some() {
                break;
            }
        }
        if let Some(reason) = refusal {
            self.fail(RewriteError::unsupported(reason));
        } else if let Some(mask) = replacement {
            match mask_expression(&mask, &node(n.clone())) {
                Ok(Node { node: Some(masked) }) => {
                    *n = masked;
                    self.changed = true;
                }
                Ok(_) => self.fail(RewriteError::Internal("empty mask expression".into())),
                Err(e) => self.fail(e),
            }
        }
    }

    /// Points a column reference that names a replaced relation (`[db.]schema.rel.col`, `schema.rel.*`) or
    /// a renamed projection's original name at the projection, whose alias is the only name PostgreSQL
    /// resolves it by; refuses one that would resolve differently after the rewrite.
    fn requalify(&mut self, c: &mut protobuf::ColumnRef) -> Result<(), RewriteError> {
        let parts: Vec<Option<String>> = c
            .fields
            .iter()
            .map(|f| match &f.node {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect();
        let shown = || {
            parts
                .iter()
                .map(|p| p.as_deref().unwrap_or("*"))
                .collect::<Vec<_>>()
                .join(".")
        };
        // The last part is a column (or function) name or `*`; the ones before it name the item.
        let (catalog, schema, rel, qualifier) = match parts.as_slice() {
            [Some(q), _] => (None, None, None, q.as_str()),
            [Some(s), Some(r), _] => (None, Some(s.as_str()), Some(r.as_str()), r.as_str()),
            [Some(d), Some(s), Some(r), _] => (
                Some(d.as_str()),
                Some(s.as_str()),
                Some(r.as_str()),
                r.as_str(),
            ),
            [Some(name)] => return self.scopes.bare(name),
            // More parts than a catalog-qualified column is an error PostgreSQL reports by itself.
            _ => return Ok(()),
        };
        let resolution = match (schema, rel) {
            (Some(schema), Some(rel)) => self.scopes.qualified(catalog, schema, rel, &shown())?,
            _ => self.scopes.by_name(qualifier, &shown())?,
        };
        if let Resolution::Rename(alias) = resolution {
            let last = c.fields.pop();
            c.fields = vec![string(&alias)];
            c.fields.extend(last);
            self.changed = true;
        }
        Ok(())
    }

    /// Remembers the column names of SET / INSERT target lists (writing a denied column is a reference).
    fn target_names(&mut self, list: &[Node]) {
        for item in list {
            if let Some(NodeEnum::ResTarget(rt)) = &item.node {
                if !rt.name.is_empty() {
                    self.referenced.insert(rt.name.clone());
                }
            }
        }
    }

    /// RETURNING of a write, with the target in scope: `*` and `target.*` expand to the target's columns
    /// (then masked like any column reference), and `old`/`new` (or their renamed aliases) name the target too.
    fn returning(
        &mut self,
        clause: &mut Option<protobuf::ReturningClause>,
        target: Option<Target>,
        other_from_items: bool,
    ) {
        let Some(rc) = clause.as_mut() else { return };
        let Some(mut target) = target else {
            self.expr_list(&mut rc.exprs);
            return;
        };
        target.refnames.extend(["old".to_owned(), "new".to_owned()]);
        for o in &rc.options {
            if let Some(NodeEnum::ReturningOption(opt)) = &o.node {
                if !opt.value.is_empty() {
                    target.refnames.push(opt.value.clone());
                }
            }
        }
        if target.sensitive {
            let exprs = std::mem::take(&mut rc.exprs);
            rc.exprs = self.expand_stars(exprs, &target, other_from_items);
        }
        self.targets.push(target);
        self.expr_list(&mut rc.exprs);
        self.targets.pop();
    }

    /// Replaces `*` and `target.*` entries of a RETURNING list by the target's (not denied) columns.
    fn expand_stars(
        &mut self,
        exprs: Vec<Node>,
        target: &Target,
        other_from_items: bool,
    ) -> Vec<Node> {
        let denied: Vec<&String> = self
            .denied
            .iter()
            .filter(|(r, _, _)| r == &target.relation)
            .map(|(_, c, _)| c)
            .collect();
        let mut out = Vec::with_capacity(exprs.len());
        let mut refusal = None;
        for e in exprs {
            let star = match &e.node {
                Some(NodeEnum::ResTarget(rt)) => {
                    match rt.val.as_ref().and_then(|v| v.node.as_ref()) {
                        Some(NodeEnum::ColumnRef(c)) => match c.fields.as_slice() {
                            [Node {
                                node: Some(NodeEnum::AStar(_)),
                            }] => Some(None),
                            [.., Node {
                                node: Some(NodeEnum::String(q)),
                            }, Node {
                                node: Some(NodeEnum::AStar(_)),
                            }] if target.refnames.contains(&q.sval) => Some(Some(q.sval.clone())),
                            _ => None,
                        },
                        _ => None,
                    }
                }
                _ => None,
            };
            match star {
                Some(None) if other_from_items => {
                    refusal = Some(format!(
                        "RETURNING * with other FROM/USING items on protected write target {}; list the columns instead",
                        target.relation
                    ));
                }
                Some(qualifier) => {
                    let q = qualifier
                        .or_else(|| target.refnames.first().cloned())
                        .unwrap_or_default();
                    for col in target.columns.iter().filter(|c| !denied.contains(c)) {
                        out.push(res_target(col, column_ref(&[&q, col])));
                    }
                    self.changed = true;
                }
                None => out.push(e),
            }
        }
        if let Some(reason) = refusal {
            self.fail(RewriteError::unsupported(reason));
        }
        out
    }

    fn insert(&mut self, n: &mut NodeEnum) {
        let NodeEnum::InsertStmt(s) = n else { return };
        let mark = self.ctes.len();
        let mut with = s.with_clause.take();
        if let Some(w) = with.as_mut() {
            self.with_ctes(w);
        }
        let Some(mut relation) = s.relation.take() else {
            self.fail(RewriteError::unsupported(
                "INSERT without a target relation",
            ));
            return;
        };
        let mut target = self.write_target(&mut relation);
        self.target_names(&s.cols);
        self.expr_list(&mut s.cols);
        // The source query cannot see the target.
        self.expr_opt(&mut s.select_stmt);
        // ON CONFLICT and RETURNING see the target and `excluded`.
        self.enter(&[], Some(&relation));
        self.add_relation_item(&relation, &[]);
        self.scopes.add(Item::named(Some("excluded".to_owned())));
        let mut returning = s.returning_clause.take();
        if let Some(mut oc) = s.on_conflict_clause.take() {
            self.target_names(&oc.target_list);
            let pushed = match target.take() {
                Some(t) => {
                    self.targets.push(t);
                    true
                }
                None => false,
            };
            let mut oc_node = NodeEnum::OnConflictClause(oc);
            self.generic(&mut oc_node);
            if let NodeEnum::OnConflictClause(back) = oc_node {
                oc = back;
            } else {
                self.scopes.pop();
                self.fail(RewriteError::Internal("ON CONFLICT clause lost".into()));
                return;
            }
            if pushed {
                target = self.targets.pop();
            }
            if oc.action == OnConflictAction::OnconflictUpdate as i32 {
                let filters = self.target_filters(&relation);
                self.add_filters(&mut oc.where_clause, filters);
            }
            s.on_conflict_clause = Some(oc);
        }
        self.returning(&mut returning, target, false);
        self.leave(&mut []);
        s.returning_clause = returning;
        s.relation = Some(relation);
        s.with_clause = with;
        self.ctes.truncate(mark);
    }

    fn update(&mut self, n: &mut NodeEnum) {
        let NodeEnum::UpdateStmt(s) = n else { return };
        let mark = self.ctes.len();
        let mut with = s.with_clause.take();
        if let Some(w) = with.as_mut() {
            self.with_ctes(w);
        }
        let Some(mut relation) = s.relation.take() else {
            self.fail(RewriteError::unsupported(
                "UPDATE without a target relation",
            ));
            return;
        };
        let target = self.write_target(&mut relation);
        let mut from = std::mem::take(&mut s.from_clause);
        self.enter(&from, Some(&relation));
        self.add_relation_item(&relation, &[]);
        self.range_list(&mut from);
        self.target_names(&s.target_list);
        let mut returning = s.returning_clause.take();
        let pushed = match target {
            Some(t) => {
                self.targets.push(t);
                true
            }
            None => false,
        };
        for item in &mut s.target_list {
            if let Some(NodeEnum::ResTarget(rt)) = item.node.as_mut() {
                self.expr_opt(&mut rt.val);
                self.expr_list(&mut rt.indirection);
            } else if let Some(other) = item.node.as_mut() {
                self.expr(other);
            }
        }
        self.expr_opt(&mut s.where_clause);
        let target = if pushed { self.targets.pop() } else { None };
        let filters = self.target_filters(&relation);
        self.add_filters(&mut s.where_clause, filters);
        self.returning(&mut returning, target, !from.is_empty());
        self.leave(&mut from);
        s.returning_clause = returning;
        s.from_clause = from;
        s.relation = Some(relation);
        s.with_clause = with;
        self.ctes.truncate(mark);
    }

    fn delete(&mut self, n: &mut NodeEnum) {
        let NodeEnum::DeleteStmt(s) = n else { return };
        let mark = self.ctes.len();
        let mut with = s.with_clause.take();
        if let Some(w) = with.as_mut() {
            self.with_ctes(w);
        }
        let Some(mut relation) = s.relation.take() else {
            self.fail(RewriteError::unsupported(
                "DELETE without a target relation",
            ));
            return;
        };
        let target = self.write_target(&mut relation);
        let mut using = std::mem::take(&mut s.using_clause);
        self.enter(&using, Some(&relation));
        self.add_relation_item(&relation, &[]);
        self.range_list(&mut using);
        let mut returning = s.returning_clause.take();
        let pushed = match target {
            Some(t) => {
                self.targets.push(t);
                true
            }
            None => false,
        };
        self.expr_opt(&mut s.where_clause);
        let target = if pushed { self.targets.pop() } else { None };
        let filters = self.target_filters(&relation);
        self.add_filters(&mut s.where_clause, filters);
        self.returning(&mut returning, target, !using.is_empty());
        self.leave(&mut using);
        s.returning_clause = returning;
        s.using_clause = using;
        s.relation = Some(relation);
        s.with_clause = with;
        self.ctes.truncate(mark);
    }

    fn merge(&mut self, n: &mut NodeEnum) {
        let NodeEnum::MergeStmt(s) = n else { return };
        let mark = self.ctes.len();
        let mut with = s.with_clause.take();
        if let Some(w) = with.as_mut() {
            self.with_ctes(w);
        }
        let relation = s.relation.take();
        if let Some(rv) = &relation {
            if let Some((name, _)) = self.ctx.protection_of(rv, &[]) {
                self.fail(RewriteError::unsupported(format!(
                    "MERGE into protected relation {name} cannot be masked; use UPDATE, INSERT or DELETE"
                )));
            } else if let Some((name, _)) = self.ctx.view_of(rv, &[]) {
                self.fail(RewriteError::unsupported(format!(
                    "MERGE into view {name}, which reads a protected relation, cannot be masked"
                )));
            }
        }
        let mut source: Vec<Node> = s.source_relation.take().map(|b| *b).into_iter().collect();
        self.enter(&source, relation.as_ref());
        if let Some(rv) = &relation {
            self.add_relation_item(rv, &[]);
        }
        self.range_list(&mut source);
        self.generic(n);
        self.leave(&mut source);
        let source = source.pop().map(Box::new);
        if let NodeEnum::MergeStmt(s) = n {
            s.source_relation = source;
            s.relation = relation;
            s.with_clause = with;
        }
        self.ctes.truncate(mark);
    }

    /// `COPY protected [(cols)] TO ...` becomes `COPY (SELECT cols FROM <projection>) TO ...`; `COPY (query)
    /// TO` rewrites the query; `COPY ... FROM` writes and is left alone.
    fn copy(&mut self, c: &mut protobuf::CopyStmt, protected: &QualifiedName) {
        if let Some(q) = c.query.as_mut().and_then(|b| b.node.as_mut()) {
            self.top(q, protected);
            return;
        }
        if c.is_from {
            return;
        }
        let Some(rv) = c.relation.clone() else {
            return;
        };
        let Some((name, protection)) = self.ctx.protection_of(&rv, &self.ctes) else {
            return;
        };
        self.record(&name, protection);
        let columns = crate::mask::nodes::strings(&c.attlist);
        self.referenced.extend(columns.iter().cloned());
        match super::projection::copy_query(self.ctx, &rv, &name, protection, &columns) {
            Ok(query) => {
                c.relation = None;
                c.attlist.clear();
                c.query = Some(Box::new(node(query)));
                self.changed = true;
            }
            Err(e) => self.fail(e),
        }
    }
}

/// `SelectStmt` → `SELECT`, for messages.
fn statement_name(node_name: &str) -> String {
    let base = node_name.strip_suffix("Stmt").unwrap_or(node_name);
    let mut out = String::new();
    for (i, ch) in base.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

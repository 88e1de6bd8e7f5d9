//! Indexes so that a decision looks only at rules and grants that can apply: rules by resource, then by
//! object (exact `schema.name`, `schema.*`, other wildcards) or statement kind; grants by principal and
//! resource. Statement and post-connection rules are further keyed by the users and roles they name.
//! Every list holds rule positions in ascending order, and candidates from several lists are
//! merged by position, so priority order is kept without scanning all rules.

use std::collections::HashMap;

use portcullis_sql::{ObjectKind, Operation, StatementKind};

use crate::context::Context;
use crate::model::{Grant, Principal, Rule, Stage};
use crate::pattern::{ObjectPattern, Scope};

/// Values keyed by resource, with a slot for rules or grants on every resource (`*`).
#[derive(Debug, Default)]
pub(crate) struct ByResource<T> {
    exact: HashMap<String, T>,
    any: T,
}

impl<T: Default> ByResource<T> {
    fn slot(&mut self, resource: &str) -> &mut T {
        if resource == "*" {
            &mut self.any
        } else {
            self.exact.entry(resource.to_owned()).or_default()
        }
    }

    /// The slots that apply to `resource`: its own, then the `*` one.
    pub(crate) fn lookup(&self, resource: &str) -> [Option<&T>; 2] {
        [self.exact.get(resource), Some(&self.any)]
    }

    fn slots_for(&mut self, resources: &[String], mut f: impl FnMut(&mut T)) {
        if resources.is_empty() || resources.iter().any(|r| r == "*") {
            f(&mut self.any);
        } else {
            for r in resources {
                f(self.slot(r));
            }
        }
    }
}

/// Values keyed by the rule's subject (`users`/`roles` filter), with a slot for rules on anyone.
#[derive(Debug, Default)]
pub(crate) struct BySubject<T> {
    any: T,
    users: HashMap<String, T>,
    roles: HashMap<String, T>,
}

impl<T: Default> BySubject<T> {
    fn slots_for(&mut self, users: &[String], roles: &[String], mut f: impl FnMut(&mut T)) {
        if users.is_empty() && roles.is_empty() {
            f(&mut self.any);
            return;
        }
        for u in users {
            f(self.users.entry(u.clone()).or_default());
        }
        for r in roles {
            f(self.roles.entry(r.clone()).or_default());
        }
    }

    /// The slots that apply to `ctx`'s user and roles. Without a user, rules naming users are candidates
    /// too (they are indeterminate, not silently skipped).
    fn lookup<'a>(&'a self, ctx: &Context, mut f: impl FnMut(&'a T)) {
        f(&self.any);
        match &ctx.user {
            Some(u) => {
                if let Some(t) = self.users.get(u) {
                    f(t);
                }
            }
            None => self.users.values().for_each(&mut f),
        }
        for r in &ctx.roles {
            if let Some(t) = self.roles.get(r) {
                f(t);
            }
        }
    }
}

fn push(list: &mut Vec<u32>, pos: u32) {
    if list.last() != Some(&pos) {
        list.push(pos);
    }
}

/// Object rules by the objects they name.
#[derive(Debug, Default)]
pub(crate) struct ObjectBuckets {
    exact: HashMap<String, HashMap<String, Vec<u32>>>,
    schema: HashMap<String, Vec<u32>>,
    wild: Vec<u32>,
}

impl ObjectBuckets {
    fn insert(&mut self, patterns: &[ObjectPattern], pos: u32) {
        if patterns.is_empty() {
            push(&mut self.wild, pos);
        }
        for p in patterns {
            let (schema, name) = match p.scope() {
                Scope::All => (None, None),
                Scope::Unqualified(n) => (Some(""), n.exact()),
                Scope::Object { schema, name } | Scope::Column { schema, name, .. } => (
                    schema.exact(),
                    if name.is_any() {
                        Some("*")
                    } else {
                        name.exact()
                    },
                ),
            };
            match (schema, name) {
                (Some(s), Some("*")) => push(self.schema.entry(s.to_owned()).or_default(), pos),
                (Some(s), Some(n)) => push(
                    self.exact
                        .entry(s.to_owned())
                        .or_default()
                        .entry(n.to_owned())
                        .or_default(),
                    pos,
                ),
                _ => push(&mut self.wild, pos),
            }
        }
    }

    fn candidates<'a>(&'a self, schema: &str, name: &str, kind: ObjectKind, out: &mut Merge<'a>) {
        if let Some(l) = self.exact.get(schema).and_then(|m| m.get(name)) {
            out.add(l);
        }
        if let Some(l) = self.schema.get(schema) {
            out.add(l);
        }
        if kind == ObjectKind::Schema {
            // `hr.*` also selects the schema object `hr` itself.
            if let Some(l) = self.schema.get(name) {
                out.add(l);
            }
        }
        out.add(&self.wild);
    }
}

/// Object rules by the operations they name; rules naming none match every operation, except that a
/// passive one (allow, audit, alert) leaves `create` to the statement component (see the crate docs).
#[derive(Debug, Default)]
pub(crate) struct ByOperation {
    by_op: HashMap<Operation, ObjectBuckets>,
    default: ObjectBuckets,
}

impl ByOperation {
    fn insert(&mut self, ops: &[Operation], patterns: &[ObjectPattern], pos: u32, passive: bool) {
        if ops.is_empty() {
            self.default.insert(patterns, pos);
            if !passive {
                self.by_op
                    .entry(Operation::Create)
                    .or_default()
                    .insert(patterns, pos);
            }
        }
        for op in ops {
            self.by_op.entry(*op).or_default().insert(patterns, pos);
        }
    }

    fn candidates<'a>(
        &'a self,
        op: Operation,
        schema: &str,
        name: &str,
        kind: ObjectKind,
        out: &mut Merge<'a>,
    ) {
        if let Some(b) = self.by_op.get(&op) {
            b.candidates(schema, name, kind, out);
        }
        if op != Operation::Create {
            self.default.candidates(schema, name, kind, out);
        }
    }
}

/// Statement-component rules by statement kind.
#[derive(Debug, Default)]
pub(crate) struct KindBuckets {
    by_kind: HashMap<StatementKind, Vec<u32>>,
    any: Vec<u32>,
}

/// Statement-stage rules for one resource slot.
#[derive(Debug, Default)]
pub(crate) struct StatementRules {
    objects: ByOperation,
    statement: KindBuckets,
    forbid: Vec<u32>,
}

/// How a statement-stage rule takes part in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleClass {
    /// Blocking, context-only: decided first, whatever its rank.
    Forbid,
    /// Matches object components.
    Object,
    /// Matches the statement component.
    Statement,
}

/// Classifies a statement-stage rule.
pub(crate) fn classify(rule: &Rule) -> RuleClass {
    if rule.is_context_only() && rule.action.denies() {
        RuleClass::Forbid
    } else if rule.is_object_rule() {
        RuleClass::Object
    } else {
        RuleClass::Statement
    }
}

/// Every rule, indexed.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    statement: ByResource<BySubject<StatementRules>>,
    pre: ByResource<Vec<u32>>,
    post: ByResource<BySubject<Vec<u32>>>,
}

impl RuleIndex {
    /// Indexes `rules`; positions above `u32::MAX` are not representable and are rejected by the caller.
    pub(crate) fn build(rules: &[Rule]) -> Self {
        let mut ix = RuleIndex::default();
        for (pos, rule) in rules.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            let w = &rule.when;
            match rule.stage {
                Stage::PreConnection => ix.pre.slots_for(&w.resources, |l| push(l, pos)),
                Stage::PostConnection => ix.post.slots_for(&w.resources, |b| {
                    b.slots_for(&w.users, &w.roles, |l| push(l, pos))
                }),
                Stage::Statement => {
                    let class = classify(rule);
                    let (users, roles) = (&w.users, &w.roles);
                    ix.statement.slots_for(&w.resources, |b| {
                        b.slots_for(users, roles, |s| match class {
                            RuleClass::Forbid => push(&mut s.forbid, pos),
                            RuleClass::Object => s.objects.insert(
                                &w.operations,
                                &w.objects,
                                pos,
                                rule.action.is_passive(),
                            ),
                            RuleClass::Statement if w.statement_kinds.is_empty() => {
                                push(&mut s.statement.any, pos)
                            }
                            RuleClass::Statement => {
                                for k in &w.statement_kinds {
                                    push(s.statement.by_kind.entry(k.clone()).or_default(), pos);
                                }
                            }
                        })
                    });
                }
            }
        }
        ix
    }

    /// Forbid statements for `resource`, by priority.
    pub(crate) fn forbid<'a>(&'a self, ctx: &Context) -> Merge<'a> {
        let mut m = Merge::default();
        for b in self.statement.lookup(&ctx.resource).into_iter().flatten() {
            b.lookup(ctx, |s| m.add(&s.forbid));
        }
        m
    }

    /// Object rules that may match an object component, by priority.
    pub(crate) fn object_rules<'a>(
        &'a self,
        ctx: &Context,
        op: Operation,
        schema: &str,
        name: &str,
        kind: ObjectKind,
    ) -> Merge<'a> {
        let mut m = Merge::default();
        for b in self.statement.lookup(&ctx.resource).into_iter().flatten() {
            b.lookup(ctx, |s| {
                s.objects.candidates(op, schema, name, kind, &mut m)
            });
        }
        m
    }

    /// Statement-component rules that may match a statement of `kind`, by priority.
    pub(crate) fn statement_rules<'a>(&'a self, ctx: &Context, kind: &StatementKind) -> Merge<'a> {
        let mut m = Merge::default();
        for b in self.statement.lookup(&ctx.resource).into_iter().flatten() {
            b.lookup(ctx, |s| {
                if let Some(l) = s.statement.by_kind.get(kind) {
                    m.add(l);
                }
                m.add(&s.statement.any);
            });
        }
        m
    }

    /// Connection rules of `stage` for `resource`, by priority.
    pub(crate) fn connection<'a>(&'a self, stage: Stage, ctx: &Context) -> Merge<'a> {
        let mut m = Merge::default();
        if stage == Stage::PreConnection {
            for l in self.pre.lookup(&ctx.resource).into_iter().flatten() {
                m.add(l);
            }
        } else {
            for b in self.post.lookup(&ctx.resource).into_iter().flatten() {
                b.lookup(ctx, |l| m.add(l));
            }
        }
        m
    }
}

/// Merges ascending lists of positions into one ascending, duplicate-free sequence.
#[derive(Debug, Default)]
pub(crate) struct Merge<'a> {
    lists: Vec<&'a [u32]>,
    last: Option<u32>,
}

impl<'a> Merge<'a> {
    fn add(&mut self, list: &'a [u32]) {
        if !list.is_empty() {
            self.lists.push(list);
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        loop {
            let (i, &head) = self
                .lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.first().map(|h| (i, h)))
                .min_by_key(|(_, h)| **h)?;
            if let Some(l) = self.lists.get_mut(i) {
                *l = l.get(1..).unwrap_or(&[]);
            }
            if self.last == Some(head) {
                continue;
            }
            self.last = Some(head);
            return Some(head as usize);
        }
    }
}

/// Grants by principal and resource.
#[derive(Debug, Default)]
pub(crate) struct GrantIndex {
    users: HashMap<String, ByResource<Vec<u32>>>,
    roles: HashMap<String, ByResource<Vec<u32>>>,
}

impl GrantIndex {
    pub(crate) fn build(grants: &[Grant]) -> Self {
        let mut ix = GrantIndex::default();
        for (pos, g) in grants.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            let by = match &g.to {
                Principal::User(u) => ix.users.entry(u.clone()).or_default(),
                Principal::Role(r) => ix.roles.entry(r.clone()).or_default(),
            };
            push(by.slot(&g.resource), pos);
        }
        ix
    }

    /// Positions of the grants given to the context's user or roles for its resource (any validity).
    pub(crate) fn for_context(&self, ctx: &Context) -> Vec<usize> {
        let mut out = Vec::new();
        let user = ctx.user.as_ref().and_then(|u| self.users.get(u));
        let roles = ctx.roles.iter().filter_map(|r| self.roles.get(r));
        for by in user.into_iter().chain(roles) {
            for l in by.lookup(&ctx.resource).into_iter().flatten() {
                out.extend(l.iter().map(|p| *p as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

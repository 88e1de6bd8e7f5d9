//! The compiled policy and its decisions (ARCHITECTURE §2, §3).

use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_sql::builtins::{self, FunctionClass, RelationClass};
use portcullis_sql::{ObjectKind, Operation, StatementKind};
use time::OffsetDateTime;

use crate::cedar::decide::{CedarCall, CedarOutcome};
use crate::cedar::{CedarPolicies, Requirement, SessionCache};
use crate::components::{Component, ObjectComponent, StatementComponent};
use crate::context::{Context, Observed};
use crate::decision::{
    ConnectionDecision, FiredRule, MissingGrant, OutcomeDecision, PendingComponent, PendingOutcome,
    StatementDecision, Verdict,
};
use crate::index::{GrantIndex, RuleIndex};
use crate::model::{privilege_name, Action, Grant, Policy, Rule, Stage, DEFAULT_WORKFLOW};
use crate::protection::{
    ColumnDenyRule, MaskRule, ProtectionRules, ProtectionStatus, RowFilterRule, SessionProtections,
};

/// A connection stage for [`CompiledPolicy::evaluate_connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStage {
    /// Before authentication.
    Pre,
    /// After authentication.
    Post,
}

/// A policy ready for evaluation: immutable, `Send + Sync`, cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CompiledPolicy {
    rules: Vec<Rule>,
    grants: Vec<Grant>,
    rule_index: RuleIndex,
    grant_index: GrantIndex,
    cedar: CedarPolicies,
    protection: ProtectionRules,
    /// Unique per compilation, so a [`SessionCache`] never serves answers from another policy.
    generation: u64,
}

/// Source of [`CompiledPolicy::generation`]; 0 is never handed out (an empty cache's value).
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Three-valued filter result: a condition that cannot be evaluated is `Indeterminate`, never a silent miss.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Match,
    NoMatch,
    Indeterminate(String),
}

/// What one rule is being matched against.
struct Subject<'a> {
    stmt: Option<&'a StatementComponent>,
    object: Option<&'a ObjectComponent>,
}

impl CompiledPolicy {
    /// Compiles `policy` (clones it; the original can be dropped).
    pub fn compile(policy: &Policy) -> CompiledPolicy {
        CompiledPolicy {
            rule_index: RuleIndex::build(&policy.rules),
            grant_index: GrantIndex::build(&policy.grants),
            rules: policy.rules.clone(),
            grants: policy.grants.clone(),
            cedar: policy.cedar.clone(),
            protection: ProtectionRules::build(policy),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The Cedar permit and forbid statements, in file order.
    pub fn cedar(&self) -> &CedarPolicies {
        &self.cedar
    }

    /// The rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The masking, row-filter and column-deny rules that apply to `ctx` at `now`: resource matched,
    /// exemptions applied, conditions (time window, location, device trust, client address) checked, and
    /// row-filter parameters filled from the context. Cheap when the policy has no protection rules (no
    /// allocation). Call it once per session and policy version, and again after
    /// [`SessionProtections::valid_until`].
    pub fn protections(&self, ctx: &Context, now: OffsetDateTime) -> SessionProtections {
        self.protection.session(ctx, now)
    }

    /// Every protection rule (masks, then row filters, then column denies, each in file order) and whether
    /// it applies to `ctx` at `now`, and why not: what `policy explain` shows.
    pub fn protection_status(&self, ctx: &Context, now: OffsetDateTime) -> Vec<ProtectionStatus> {
        self.protection.status(ctx, now)
    }

    /// The masking rules, in file order.
    pub fn masks(&self) -> impl Iterator<Item = &MaskRule> {
        self.protection.masks()
    }

    /// The row-filter rules, in file order.
    pub fn row_filters(&self) -> impl Iterator<Item = &RowFilterRule> {
        self.protection.row_filters()
    }

    /// The column-deny rules, in file order.
    pub fn column_denies(&self) -> impl Iterator<Item = &ColumnDenyRule> {
        self.protection.column_denies()
    }

    /// Decides one statement before it runs. `components` come from
    /// [`components`](crate::components::components) (object components and one statement component).
    pub fn evaluate_statement(
        &self,
        ctx: &Context,
        components: &[Component],
        now: OffsetDateTime,
    ) -> StatementDecision {
        self.evaluate_statement_with(ctx, components, now, None)
    }

    /// [`evaluate_statement`](Self::evaluate_statement), reusing the session's cached Cedar answers.
    pub fn evaluate_statement_cached(
        &self,
        ctx: &Context,
        components: &[Component],
        now: OffsetDateTime,
        cache: &mut SessionCache,
    ) -> StatementDecision {
        self.evaluate_statement_with(ctx, components, now, Some(cache))
    }

    fn cedar_call<'a>(&'a self, ctx: &'a Context, now: OffsetDateTime) -> CedarCall<'a> {
        CedarCall {
            policies: &self.cedar,
            generation: self.generation,
            ctx,
            now,
        }
    }

    fn evaluate_statement_with(
        &self,
        ctx: &Context,
        components: &[Component],
        now: OffsetDateTime,
        cache: Option<&mut SessionCache>,
    ) -> StatementDecision {
        let stmt = components.iter().find_map(Component::as_statement);
        let mut fired = Fired::default();
        let mut reasons: Vec<String> = Vec::new();
        // Decided once the statement component's rule is known: only an explicit allow lifts it.
        let opaque = stmt.and_then(|s| s.opaque.as_ref().map(|why| (s, why)));
        let mut statement_rule: Option<usize> = None;

        // 1. Forbid statements: context-only blocks, whatever their rank.
        for pos in self.rule_index.forbid(ctx) {
            let Some(rule) = self.rules.get(pos) else {
                continue;
            };
            match self.matches(rule, ctx, now, &Subject { stmt, object: None }) {
                Tri::NoMatch => {}
                Tri::Match => fired.add(rule, pos, None, None),
                Tri::Indeterminate(why) => fired.add(rule, pos, None, Some(why)),
            }
        }

        // 1. and 3. Cedar: forbids that apply, and the matching permits' requirements and coverage.
        let cedar = self.cedar_call(ctx, now).statement(components, cache);

        // 2. Global Access: every object component needs a grant, unless a permit covers it.
        let missing = self.missing_grants(ctx, components, now, &cedar.covered);

        // 4. Priority rules, per component: the first matching rule fires. Outcome (rows) rules ranked
        // above it stay pending until the row count is known.
        let mut pending = PendingOutcome::default();
        for (i, component) in components.iter().enumerate() {
            let (candidates, subject) = match component {
                Component::Object(o) => (
                    self.rule_index
                        .object_rules(ctx, o.operation, &o.schema, &o.name, o.kind),
                    Subject {
                        stmt,
                        object: Some(o),
                    },
                ),
                Component::Statement(s) => (
                    self.rule_index.statement_rules(ctx, &s.kind),
                    Subject {
                        stmt: Some(s),
                        object: None,
                    },
                ),
            };
            let mut outcome_rules = Vec::new();
            let mut first: Option<(usize, Option<String>)> = None;
            for pos in candidates {
                let Some(rule) = self.rules.get(pos) else {
                    continue;
                };
                match self.matches(rule, ctx, now, &subject) {
                    Tri::NoMatch => continue,
                    Tri::Indeterminate(why) => {
                        first = Some((pos, Some(why)));
                        break;
                    }
                    Tri::Match if rule.when.rows_above.is_some() => outcome_rules.push(pos),
                    Tri::Match => {
                        first = Some((pos, None));
                        break;
                    }
                }
            }
            let defer = !outcome_rules.is_empty()
                && first.as_ref().is_none_or(|(pos, why)| {
                    why.is_none() && self.rules.get(*pos).is_some_and(|r| r.action.is_passive())
                });
            if defer {
                pending.components.push(PendingComponent {
                    component: i,
                    rules: outcome_rules,
                    fallback: first.map(|(pos, _)| pos),
                });
            } else if let Some((pos, why)) = first {
                if let Some(rule) = self.rules.get(pos) {
                    if why.is_none() && component.as_statement().is_some() {
                        statement_rule = Some(pos);
                    }
                    fired.add(rule, pos, Some(i), why);
                }
            }
        }

        if let Some((s, why)) = opaque {
            let allowed = statement_rule
                .and_then(|pos| self.rules.get(pos))
                .is_some_and(|rule| rule.explicitly_allows(&s.kind));
            if !allowed {
                reasons.insert(0, format!("the statement cannot be fully analysed ({why})"));
            }
        }

        let fired = fired.finish();
        pending.fired_before = fired.iter().map(|f| f.position).collect();
        let logout = cedar.logout || fired.iter().any(|f| f.action == Action::Logout);
        reasons.extend(cedar.forbidden.iter().cloned());
        for f in fired.iter().filter(|f| f.denies()) {
            reasons.push(describe_denial(f));
        }
        reasons.extend(missing.iter().map(|m| m.message.clone()));
        reasons.extend(cedar.unmet_denying());
        let (approvals, approvals_needed) = unmet_approvals(&cedar, &fired, ctx);
        let verdict = if !reasons.is_empty() {
            Verdict::Deny
        } else if !approvals.is_empty() {
            Verdict::RequireApproval
        } else {
            Verdict::Allow
        };
        let reason = match verdict {
            Verdict::Deny => reasons.join("; "),
            Verdict::RequireApproval => approvals.join("; "),
            Verdict::Allow => with_permits(allowed_reason(&fired, !pending.is_empty()), &cedar),
        };
        if verdict == Verdict::Deny {
            // The statement will not run: nothing is left to decide after execution.
            pending.components.clear();
        }
        StatementDecision {
            verdict,
            logout,
            fired,
            missing_grants: missing,
            post_execution: pending,
            policies: cedar.policies,
            requirements: cedar.requirements,
            approvals_needed,
            reason,
        }
    }

    /// Decides the outcome rules left pending once the statement ran and fetched or affected `rows` rows:
    /// per component, the first pending rule whose threshold `rows` exceeds fires, else the passive rule
    /// that matched below them.
    pub fn evaluate_outcome(&self, pending: &PendingOutcome, rows: u64) -> OutcomeDecision {
        let mut fired = Fired::default();
        for pc in &pending.components {
            let hit = pc
                .rules
                .iter()
                .copied()
                .find(|pos| {
                    self.rules
                        .get(*pos)
                        .and_then(|r| r.when.rows_above)
                        .is_some_and(|n| rows > n)
                })
                .or(pc.fallback);
            if let Some(pos) = hit.filter(|p| !pending.fired_before.contains(p)) {
                if let Some(rule) = self.rules.get(pos) {
                    fired.add(rule, pos, Some(pc.component), None);
                }
            }
        }
        let fired = fired.finish();
        let denials: Vec<String> = fired
            .iter()
            .filter(|f| f.denies())
            .map(describe_denial)
            .collect();
        if denials.is_empty() {
            OutcomeDecision {
                verdict: Verdict::Allow,
                reason: allowed_reason(&fired, false),
                fired,
            }
        } else {
            OutcomeDecision {
                verdict: Verdict::Deny,
                reason: format!("{} ({rows} rows)", denials.join("; ")),
                fired,
            }
        }
    }

    /// Decides a connection stage: the first matching rule of that stage decides, and Cedar forbids on
    /// `connect` deny (before authentication only those that do not depend on the user). After
    /// authentication the matching permits impose their requirements, and the user must hold at least
    /// one active grant on the resource or be covered by a matching permit.
    pub fn evaluate_connection(
        &self,
        stage: ConnectionStage,
        ctx: &Context,
        now: OffsetDateTime,
    ) -> ConnectionDecision {
        self.evaluate_connection_with(stage, ctx, now, None)
    }

    /// [`evaluate_connection`](Self::evaluate_connection), reusing the session's cached Cedar answers.
    pub fn evaluate_connection_cached(
        &self,
        stage: ConnectionStage,
        ctx: &Context,
        now: OffsetDateTime,
        cache: &mut SessionCache,
    ) -> ConnectionDecision {
        self.evaluate_connection_with(stage, ctx, now, Some(cache))
    }

    fn evaluate_connection_with(
        &self,
        stage: ConnectionStage,
        ctx: &Context,
        now: OffsetDateTime,
        cache: Option<&mut SessionCache>,
    ) -> ConnectionDecision {
        let cedar = self
            .cedar_call(ctx, now)
            .connection(stage == ConnectionStage::Pre, cache);
        let stage = match stage {
            ConnectionStage::Pre => Stage::PreConnection,
            ConnectionStage::Post => Stage::PostConnection,
        };
        let subject = Subject {
            stmt: None,
            object: None,
        };
        let mut fired = None;
        for pos in self.rule_index.connection(stage, ctx) {
            let Some(rule) = self.rules.get(pos) else {
                continue;
            };
            let why = match self.matches(rule, ctx, now, &subject) {
                Tri::NoMatch => continue,
                Tri::Match => None,
                Tri::Indeterminate(why) => Some(why),
            };
            let mut f = Fired::default();
            f.add(rule, pos, None, why);
            fired = f.finish().pop();
            break;
        }
        let no_grant = stage == Stage::PostConnection
            && !cedar.covered.contains(&None)
            && !self
                .grant_index
                .for_context(ctx)
                .iter()
                .any(|g| self.grants.get(*g).is_some_and(|g| g.is_active(now)));
        let mut reasons = cedar.forbidden.clone();
        if let Some(f) = fired.as_ref().filter(|f| f.denies()) {
            reasons.push(describe_denial(f));
        }
        if no_grant {
            reasons.push(format!(
                "{} has no active grant on {}",
                ctx.user_label(),
                ctx.resource
            ));
        }
        reasons.extend(cedar.unmet_denying());
        let (approvals, approvals_needed) = unmet_approvals(&cedar, fired.as_slice(), ctx);
        let logout = cedar.logout || fired.as_ref().is_some_and(|f| f.action == Action::Logout);
        let (verdict, reason) = if !reasons.is_empty() {
            (Verdict::Deny, reasons.join("; "))
        } else if !approvals.is_empty() {
            (Verdict::RequireApproval, approvals.join("; "))
        } else {
            (
                Verdict::Allow,
                with_permits(allowed_reason(fired.as_slice(), false), &cedar),
            )
        };
        ConnectionDecision {
            verdict,
            logout,
            fired,
            policies: cedar.policies,
            requirements: cedar.requirements,
            approvals_needed: if verdict == Verdict::RequireApproval {
                approvals_needed
            } else {
                Vec::new()
            },
            reason,
        }
    }

    fn missing_grants(
        &self,
        ctx: &Context,
        components: &[Component],
        now: OffsetDateTime,
        covered: &[Option<usize>],
    ) -> Vec<MissingGrant> {
        let objects: Vec<(usize, &ObjectComponent)> = components
            .iter()
            .enumerate()
            .filter(|(i, _)| !covered.contains(&Some(*i)))
            .filter_map(|(i, c)| c.as_object().map(|o| (i, o)))
            .collect();
        if objects.is_empty() {
            return Vec::new();
        }
        let grants: Vec<&Grant> = self
            .grant_index
            .for_context(ctx)
            .into_iter()
            .filter_map(|g| self.grants.get(g))
            .filter(|g| g.is_active(now))
            .collect();
        let mut missing = Vec::new();
        for (i, o) in objects {
            if let Some(uncovered) = uncovered(&grants, o) {
                let object = match uncovered {
                    Some(col) => format!("{}.{col}", o.display_name()),
                    None => o.display_name(),
                };
                // Settings, channels, server operations, publications, ... are no tables: say which
                // kind is meant (`foreign-server` reads as `foreign server`).
                let kind = if o.kind.named_in_messages() {
                    o.kind.as_str().replace('-', " ")
                } else {
                    String::new()
                };
                missing.push(MissingGrant {
                    component: i,
                    message: format!(
                        "{} lacks {} on {kind}{}{object} in {}",
                        ctx.user_label(),
                        privilege_name(o.operation),
                        if kind.is_empty() { "" } else { " " },
                        ctx.resource
                    ),
                    object,
                    operation: o.operation,
                });
            }
        }
        missing
    }

    fn matches(
        &self,
        rule: &Rule,
        ctx: &Context,
        now: OffsetDateTime,
        subject: &Subject<'_>,
    ) -> Tri {
        let w = &rule.when;
        let mut indeterminate: Option<String> = None;
        let mut unknown = |why: String| {
            indeterminate.get_or_insert(why);
        };

        if !w.users.is_empty() || !w.roles.is_empty() {
            let role_hit = ctx.roles.iter().any(|r| w.roles.contains(r));
            let user_hit = ctx.user.as_ref().is_some_and(|u| w.users.contains(u));
            if !role_hit && !user_hit {
                if ctx.user.is_none() && !w.users.is_empty() {
                    unknown("the user is not known yet".into());
                } else {
                    return Tri::NoMatch;
                }
            }
        }
        if !w.resources.is_empty() && !w.resources.iter().any(|r| r == "*" || *r == ctx.resource) {
            return Tri::NoMatch;
        }
        if !w.client_cidrs.is_empty() {
            match ctx.client_addr {
                Some(addr) if w.client_cidrs.iter().any(|c| c.contains(addr)) => {}
                Some(_) => return Tri::NoMatch,
                None => unknown("the client address is not known".into()),
            }
        }
        if let Some(t) = &w.time {
            if !t.contains(now) {
                return Tri::NoMatch;
            }
        }
        if !w.locations.is_empty() {
            let hit = match &ctx.location {
                Observed::Known(c) => w
                    .locations
                    .iter()
                    .flatten()
                    .any(|l| l.eq_ignore_ascii_case(c)),
                Observed::Unknown => w.locations.contains(&None),
            };
            if !hit {
                return Tri::NoMatch;
            }
        }
        if !w.device_trust.is_empty() {
            let hit = match ctx.device_trust {
                Observed::Known(t) => w.device_trust.contains(&Some(t)),
                Observed::Unknown => w.device_trust.contains(&None),
            };
            if !hit {
                return Tri::NoMatch;
            }
        }
        if !w.statement_kinds.is_empty() || !w.statement_kinds_not.is_empty() {
            match subject.stmt {
                Some(s) => {
                    let listed = |l: &[StatementKind]| l.contains(&s.kind);
                    if (!w.statement_kinds.is_empty() && !listed(&w.statement_kinds))
                        || (!w.statement_kinds_not.is_empty() && listed(&w.statement_kinds_not))
                    {
                        return Tri::NoMatch;
                    }
                }
                None => unknown("the statement kind is not known".into()),
            }
        }
        if rule.is_object_rule() {
            let Some(o) = subject.object else {
                return Tri::NoMatch;
            };
            let op_hit = if w.operations.is_empty() {
                o.operation != Operation::Create || !rule.action.is_passive()
            } else {
                w.operations.contains(&o.operation)
            };
            if !op_hit {
                return Tri::NoMatch;
            }
            if !w.objects.is_empty()
                && !w
                    .objects
                    .iter()
                    .any(|p| p.matches_access(&o.schema, &o.name, o.kind, &o.columns))
            {
                return Tri::NoMatch;
            }
        }
        // BEGIN, SET or CREATE TABLE move no rows: a row-count rule matching them would make
        // transactions and DDL impossible.
        if w.rows_above.is_some() && subject.stmt.is_some_and(|s| !s.kind.moves_rows()) {
            return Tri::NoMatch;
        }
        if let Some(re) = &w.text_regex {
            match subject.stmt {
                Some(s) if re.0.is_match(&s.text) => {}
                Some(_) => return Tri::NoMatch,
                None => unknown("the statement text is not known".into()),
            }
        }
        match indeterminate {
            Some(why) => Tri::Indeterminate(why),
            None => Tri::Match,
        }
    }
}

/// `None` when `grants` cover the access; `Some(None)` when the object is not covered, `Some(Some(col))`
/// when column grants cover some columns but not `col`.
fn uncovered(grants: &[&Grant], o: &ObjectComponent) -> Option<Option<String>> {
    if implicitly_granted(o) {
        return None;
    }
    let relevant = || {
        grants
            .iter()
            .filter(|g| g.privileges.contains(&o.operation))
    };
    let table_level = relevant().any(|g| {
        g.objects
            .iter()
            .any(|p| !p.is_column() && p.matches_object(&o.schema, &o.name, o.kind))
    });
    if table_level {
        return None;
    }
    let column_patterns: Vec<_> = relevant()
        .flat_map(|g| g.objects.iter())
        .filter(|p| p.is_column() && p.matches_object(&o.schema, &o.name, o.kind))
        .collect();
    if column_patterns.is_empty() || o.columns.is_empty() {
        return Some(None);
    }
    o.columns
        .iter()
        .find(|c| !column_patterns.iter().any(|p| p.matches_column(c)))
        .map(|c| Some(c.clone()))
}

/// What every user may do without a grant, as every PostgreSQL role may: call a harmless built-in
/// function and read a catalog relation that shows only definitions (see `portcullis_sql::builtins`).
pub fn implicitly_granted(o: &ObjectComponent) -> bool {
    match (o.kind, o.operation) {
        (ObjectKind::Function, Operation::Execute) => {
            builtins::function_class(&o.schema, &o.name).is_some_and(FunctionClass::is_harmless)
        }
        (ObjectKind::Relation, Operation::Read) => {
            builtins::relation_class(&o.schema, &o.name) == Some(RelationClass::Public)
        }
        _ => false,
    }
}

/// Fired rules, one entry per rule with every component that fired it.
#[derive(Default)]
struct Fired(Vec<FiredRule>);

impl Fired {
    fn add(
        &mut self,
        rule: &Rule,
        pos: usize,
        component: Option<usize>,
        indeterminate: Option<String>,
    ) {
        if let Some(existing) = self.0.iter_mut().find(|f| f.position == pos) {
            existing.components.extend(component);
            if existing.indeterminate.is_none() {
                existing.indeterminate = indeterminate;
            }
            return;
        }
        self.0.push(FiredRule {
            position: pos,
            id: rule.id.clone(),
            name: rule.name.clone(),
            action: rule.action,
            severity: rule.severity,
            message: rule.message.clone(),
            components: component.into_iter().collect(),
            indeterminate,
            workflow: rule.workflow.clone(),
        });
    }

    fn finish(mut self) -> Vec<FiredRule> {
        self.0.sort_by_key(|f| f.position);
        self.0
    }
}

/// The approvals a decision still waits for: why (one line each) and the workflows that give them
/// (each once, in the order found). A `require-approval` rule is met by an approval via its workflow,
/// as a Cedar `@approval` is.
fn unmet_approvals(
    cedar: &CedarOutcome,
    fired: &[FiredRule],
    ctx: &Context,
) -> (Vec<String>, Vec<String>) {
    let mut approvals = cedar.unmet_approvals();
    let mut needed: Vec<String> = cedar
        .requirements
        .iter()
        .filter(|r| !r.met)
        .filter_map(|r| match &r.requirement {
            Requirement::Approval { workflow } => Some(workflow.clone()),
            _ => None,
        })
        .collect();
    for f in fired.iter().filter(|f| f.action == Action::RequireApproval) {
        let workflow = f.workflow.as_deref().unwrap_or(DEFAULT_WORKFLOW);
        if ctx.approvals.iter().any(|a| a == workflow) {
            continue;
        }
        approvals.push(format!(
            "approval via workflow `{workflow}` required by rule `{}`{}",
            f.id,
            suffix(&f.message)
        ));
        needed.push(workflow.to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    needed.retain(|w| seen.insert(w.clone()));
    (approvals, needed)
}

fn suffix(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

fn describe_denial(f: &FiredRule) -> String {
    match &f.indeterminate {
        Some(why) => format!(
            "rule `{}` could not be evaluated ({why}); denied to fail closed",
            f.id
        ),
        None if f.action == Action::Logout => {
            format!("rule `{}` forces logout{}", f.id, suffix(&f.message))
        }
        None => format!("blocked by rule `{}`{}", f.id, suffix(&f.message)),
    }
}

/// `reason` plus the permits whose requirements were met, which the monitor records as deciding.
fn with_permits(mut reason: String, cedar: &CedarOutcome) -> String {
    let met = cedar.satisfied_permits();
    if !met.is_empty() {
        let ids: Vec<String> = met.iter().map(|id| format!("`{id}`")).collect();
        reason.push_str(&format!("; permit requirements met: {}", ids.join(", ")));
    }
    reason
}

fn allowed_reason(fired: &[FiredRule], pending: bool) -> String {
    use std::fmt::Write;
    let mut reason = String::from("allowed");
    for (i, f) in fired.iter().enumerate() {
        let lead = if i == 0 { "; rules fired: " } else { ", " };
        // Writing to a String cannot fail.
        let _ = write!(reason, "{lead}`{}` ({})", f.id, f.action);
    }
    if pending {
        reason.push_str("; row-count rules decided after execution");
    }
    reason
}

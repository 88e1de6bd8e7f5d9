//! Which protection rules apply to a session, and what they make of one relation.

use std::sync::Arc;

use portcullis_sql::mask::{ColumnMask, RelationProtection, RowFilter};
use portcullis_sql::QualifiedName;
use time::{Duration, OffsetDateTime};

use super::index::SchemaIndex;
use super::model::{
    selects_relation, ColumnDenyRule, Conditions, Exemption, MaskRule, RowFilterRule,
};
use crate::context::{Context, Observed};
use crate::model::{Policy, TimeWindow};
use crate::pattern::ObjectPattern;

/// The protection rules of a compiled policy, shared with every [`SessionProtections`] built from them.
#[derive(Debug, Default)]
pub(crate) struct ProtectionRules {
    masks: Vec<Arc<MaskRule>>,
    row_filters: Vec<Arc<RowFilterRule>>,
    column_denies: Vec<Arc<ColumnDenyRule>>,
}

/// Which kind of protection rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionKind {
    /// A `masks` entry.
    Mask,
    /// A `row_filters` entry.
    RowFilter,
    /// A `column_denies` entry.
    ColumnDeny,
}

impl ProtectionKind {
    /// The name used in reports (`mask`, `row-filter`, `column-deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mask => "mask",
            Self::RowFilter => "row-filter",
            Self::ColumnDeny => "column-deny",
        }
    }
}

/// Whether a protection rule applies to a session, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applicability {
    /// It applies. `Some(why)` when it applies only because a condition could not be evaluated.
    Applies(Option<String>),
    /// It is for another resource.
    OtherResource,
    /// The user or one of the user's roles is exempt (`user alice`, `role hr-admins`).
    Exempt(String),
    /// A condition does not hold (`outside the time window`, ...).
    ConditionNotMet(String),
}

impl Applicability {
    /// Whether the rule applies.
    pub fn applies(&self) -> bool {
        matches!(self, Self::Applies(_))
    }
}

/// One protection rule and whether it applies to a session, for `policy explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionStatus {
    /// The rule's id.
    pub id: String,
    /// Its kind.
    pub kind: ProtectionKind,
    /// The patterns it selects, as written (columns, or the table of a row filter).
    pub targets: Vec<String>,
    /// Whether it applies.
    pub applicability: Applicability,
}

/// The protection rules that apply to one session (user, roles, resource, time, location, device trust),
/// exemptions applied, with row-filter values taken from the context. Build it with
/// [`CompiledPolicy::protections`](crate::CompiledPolicy::protections) once per session and policy
/// version, and again after [`valid_until`](Self::valid_until).
#[derive(Debug, Clone, Default)]
pub struct SessionProtections {
    masks: Vec<Arc<MaskRule>>,
    row_filters: Vec<(Arc<RowFilterRule>, Vec<Option<String>>)>,
    column_denies: Vec<Arc<ColumnDenyRule>>,
    valid_until: Option<OffsetDateTime>,
    /// Positions in `masks`, `column_denies` and `row_filters` by schema, so a relation's lookup visits
    /// only the rules that may select it.
    mask_index: SchemaIndex,
    deny_index: SchemaIndex,
    filter_index: SchemaIndex,
}

impl ProtectionRules {
    pub(crate) fn build(policy: &Policy) -> Self {
        Self {
            masks: policy.masks.iter().cloned().map(Arc::new).collect(),
            row_filters: policy.row_filters.iter().cloned().map(Arc::new).collect(),
            column_denies: policy.column_denies.iter().cloned().map(Arc::new).collect(),
        }
    }

    pub(crate) fn masks(&self) -> impl Iterator<Item = &MaskRule> {
        self.masks.iter().map(|m| &**m)
    }

    pub(crate) fn row_filters(&self) -> impl Iterator<Item = &RowFilterRule> {
        self.row_filters.iter().map(|r| &**r)
    }

    pub(crate) fn column_denies(&self) -> impl Iterator<Item = &ColumnDenyRule> {
        self.column_denies.iter().map(|c| &**c)
    }

    pub(crate) fn session(&self, ctx: &Context, now: OffsetDateTime) -> SessionProtections {
        let mut out = SessionProtections::default();
        let mut until = Until::default();
        for m in &self.masks {
            if until.applies(&m.resource, &m.exempt, &m.when, ctx, now) {
                out.masks.push(Arc::clone(m));
            }
        }
        for r in &self.row_filters {
            if until.applies(&r.resource, &r.exempt, &r.when, ctx, now) {
                let values = r.predicate.variables.iter().map(|v| v.value(ctx)).collect();
                out.row_filters.push((Arc::clone(r), values));
            }
        }
        for c in &self.column_denies {
            if until.applies(&c.resource, &c.exempt, &c.when, ctx, now) {
                out.column_denies.push(Arc::clone(c));
            }
        }
        out.valid_until = until.0;
        for (i, m) in out.masks.iter().enumerate() {
            out.mask_index.add(i, &m.columns);
        }
        for (i, c) in out.column_denies.iter().enumerate() {
            out.deny_index.add(i, &c.columns);
        }
        for (i, (r, _)) in out.row_filters.iter().enumerate() {
            out.filter_index.add(i, [&r.table]);
        }
        out
    }

    pub(crate) fn status(&self, ctx: &Context, now: OffsetDateTime) -> Vec<ProtectionStatus> {
        let texts = |p: &[ObjectPattern]| p.iter().map(|p| p.as_str().to_owned()).collect();
        let masks = self.masks.iter().map(|m| ProtectionStatus {
            id: m.id.clone(),
            kind: ProtectionKind::Mask,
            targets: texts(&m.columns),
            applicability: applicability(&m.resource, &m.exempt, &m.when, ctx, now),
        });
        let filters = self.row_filters.iter().map(|r| ProtectionStatus {
            id: r.id.clone(),
            kind: ProtectionKind::RowFilter,
            targets: vec![r.table.as_str().to_owned()],
            applicability: applicability(&r.resource, &r.exempt, &r.when, ctx, now),
        });
        let denies = self.column_denies.iter().map(|c| ProtectionStatus {
            id: c.id.clone(),
            kind: ProtectionKind::ColumnDeny,
            targets: texts(&c.columns),
            applicability: applicability(&c.resource, &c.exempt, &c.when, ctx, now),
        });
        masks.chain(filters).chain(denies).collect()
    }
}

/// The earliest instant at which a time window seen so far may open or close.
#[derive(Default)]
struct Until(Option<OffsetDateTime>);

impl Until {
    fn applies(
        &mut self,
        resource: &str,
        exempt: &Exemption,
        when: &Conditions,
        ctx: &Context,
        now: OffsetDateTime,
    ) -> bool {
        let a = applicability(resource, exempt, when, ctx, now);
        if matches!(
            a,
            Applicability::Applies(_) | Applicability::ConditionNotMet(_)
        ) {
            if let Some(window) = &when.time {
                let next = next_boundary(window, now);
                self.0 = Some(self.0.map_or(next, |u| u.min(next)));
            }
        }
        a.applies()
    }
}

/// Whether a rule with this resource, exemption and conditions applies in `ctx` at `now`.
fn applicability(
    resource: &str,
    exempt: &Exemption,
    when: &Conditions,
    ctx: &Context,
    now: OffsetDateTime,
) -> Applicability {
    if resource != "*" && resource != ctx.resource {
        return Applicability::OtherResource;
    }
    if let Some(who) = exempt.exempts(ctx) {
        return Applicability::Exempt(who);
    }
    if when.time.as_ref().is_some_and(|t| !t.contains(now)) {
        return Applicability::ConditionNotMet("outside the time window".into());
    }
    if !when.locations.is_empty() {
        let hit = match &ctx.location {
            Observed::Known(c) => when
                .locations
                .iter()
                .flatten()
                .any(|l| l.eq_ignore_ascii_case(c)),
            Observed::Unknown => when.locations.contains(&None),
        };
        if !hit {
            return Applicability::ConditionNotMet(format!(
                "location {} is not listed",
                observed(&ctx.location)
            ));
        }
    }
    if !when.device_trust.is_empty() {
        let hit = match ctx.device_trust {
            Observed::Known(t) => when.device_trust.contains(&Some(t)),
            Observed::Unknown => when.device_trust.contains(&None),
        };
        if !hit {
            let trust = match ctx.device_trust {
                Observed::Known(t) => t.as_str(),
                Observed::Unknown => "unknown",
            };
            return Applicability::ConditionNotMet(format!("device trust {trust} is not listed"));
        }
    }
    if !when.client_cidrs.is_empty() {
        match ctx.client_addr {
            Some(addr) if when.client_cidrs.iter().any(|c| c.contains(addr)) => {}
            Some(addr) => {
                return Applicability::ConditionNotMet(format!(
                    "client address {addr} is not in client_cidrs"
                ))
            }
            None => {
                return Applicability::Applies(Some(
                    "the client address is not known; applied to fail closed".into(),
                ))
            }
        }
    }
    Applicability::Applies(None)
}

fn observed(value: &Observed<String>) -> &str {
    match value {
        Observed::Known(v) => v,
        Observed::Unknown => "unknown",
    }
}

/// The next instant after `now` at which `window` may open or close: its next `from` or `to` minute in
/// its zone (conservatively ignoring `days`, so at most a day ahead).
fn next_boundary(window: &TimeWindow, now: OffsetDateTime) -> OffsetDateTime {
    let local = now.to_offset(window.zone);
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let start_of_minute = now
        - Duration::seconds(i64::from(local.second()))
        - Duration::nanoseconds(i64::from(local.nanosecond()));
    [window.from, window.to]
        .into_iter()
        .map(|boundary| {
            let ahead = (i64::from(boundary) - minute).rem_euclid(24 * 60);
            let ahead = if ahead == 0 { 24 * 60 } else { ahead };
            start_of_minute + Duration::minutes(ahead)
        })
        .min()
        .unwrap_or(start_of_minute + Duration::days(1))
}

impl SessionProtections {
    /// Whether no protection rule applies to the session (the gateway can skip rewriting altogether).
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty() && self.row_filters.is_empty() && self.column_denies.is_empty()
    }

    /// When the applicable rules may change because a rule's time window opens or closes; `None` when no
    /// rule that could apply to the session has a time window. Build the protections again from then on.
    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        self.valid_until
    }

    /// Whether some applicable rule selects `relation` (a mask's or deny's column pattern, a row filter's
    /// table), without looking at columns: when `false`, the relation needs no rewriting and its columns
    /// need not be fetched. When `true` and its columns are unknown, statements reading it must be refused.
    pub fn may_protect(&self, relation: &QualifiedName) -> bool {
        let (schema, name) = (relation.schema.as_str(), relation.name.as_str());
        let selects =
            |patterns: &[ObjectPattern]| patterns.iter().any(|p| selects_relation(p, schema, name));
        self.mask_candidates(schema).any(|m| selects(&m.columns))
            || self.deny_candidates(schema).any(|c| selects(&c.columns))
            || self
                .filter_candidates(schema)
                .any(|(r, _)| selects_relation(&r.table, schema, name))
    }

    /// How `relation` is protected, given its complete column list as stored in the catalog: per column the
    /// first mask rule (in file order) selecting it, per column the first deny rule selecting it, and every
    /// row filter selecting the table with its values from the session. `None` when nothing applies.
    /// A column may be both denied and masked: references to it are refused, and wherever the rewritten
    /// projection still carries it, it is masked.
    pub fn protection_for(
        &self,
        relation: &QualifiedName,
        columns: &[String],
    ) -> Option<RelationProtection> {
        let (schema, name) = (relation.schema.as_str(), relation.name.as_str());
        // Vectors allocate on first push only, so a relation nothing applies to costs no allocation.
        let mut protection = RelationProtection::default();
        for column in columns {
            let selects = |patterns: &[ObjectPattern]| {
                patterns
                    .iter()
                    .any(|p| selects_relation(p, schema, name) && p.matches_column(column))
            };
            if let Some(m) = self.mask_candidates(schema).find(|m| selects(&m.columns)) {
                protection.masks.push(ColumnMask {
                    column: column.clone(),
                    mask: m.mask.clone(),
                    rule: m.id.clone(),
                });
            }
            if let Some(c) = self.deny_candidates(schema).find(|c| selects(&c.columns)) {
                protection
                    .denied_columns
                    .push((column.clone(), c.id.clone()));
            }
        }
        for (r, values) in self.filter_candidates(schema) {
            if selects_relation(&r.table, schema, name) {
                protection.row_filters.push(RowFilter {
                    predicate: r.predicate.parameterised.clone(),
                    values: values.clone(),
                    rule: r.id.clone(),
                });
            }
        }
        (!protection.is_empty()).then_some(protection)
    }

    fn mask_candidates<'a>(&'a self, schema: &str) -> impl Iterator<Item = &'a Arc<MaskRule>> {
        self.mask_index
            .candidates(schema)
            .filter_map(|i| self.masks.get(i))
    }

    fn deny_candidates<'a>(
        &'a self,
        schema: &str,
    ) -> impl Iterator<Item = &'a Arc<ColumnDenyRule>> {
        self.deny_index
            .candidates(schema)
            .filter_map(|i| self.column_denies.get(i))
    }

    fn filter_candidates<'a>(
        &'a self,
        schema: &str,
    ) -> impl Iterator<Item = &'a (Arc<RowFilterRule>, Vec<Option<String>>)> {
        self.filter_index
            .candidates(schema)
            .filter_map(|i| self.row_filters.get(i))
    }

    /// The mask rules that apply, in file order.
    pub fn masks(&self) -> impl Iterator<Item = &MaskRule> {
        self.masks.iter().map(|m| &**m)
    }

    /// The row-filter rules that apply, in file order, each with its parameter values.
    pub fn row_filters(&self) -> impl Iterator<Item = (&RowFilterRule, &[Option<String>])> {
        self.row_filters.iter().map(|(r, v)| (&**r, v.as_slice()))
    }

    /// The column-deny rules that apply, in file order.
    pub fn column_denies(&self) -> impl Iterator<Item = &ColumnDenyRule> {
        self.column_denies.iter().map(|c| &**c)
    }
}

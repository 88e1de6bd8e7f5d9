//! Loading a policy from YAML. Validation runs inside deserialisation so that every error carries the
//! position of the node it is about: scalars report their own position, whole-grant and whole-rule checks
//! (and duplicate rule ids) the position of the grant or rule.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use portcullis_sql::{Operation, StatementKind};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use time::{UtcOffset, Weekday};

use crate::cedar::{self, CedarPolicies};
use crate::error::{PolicyError, PolicyErrors};
use crate::model::{
    Action, Cidr, Grant, OnDemand, Policy, Principal, Reservation, Rule, Severity, Stage,
    TextRegex, Workflow,
};
use crate::pattern::ObjectPattern;
use crate::protection::{ColumnDenyRule, MaskRule, RowFilterRule};
use crate::validate::{self, Clock, FromScalar, Instant, Location, Privileges, Trust};
use crate::workflow::KnownWorkflows;

thread_local! {
    /// Rule ids seen so far in the document being loaded (duplicate ids are reported at the duplicate).
    static SEEN_IDS: RefCell<Option<HashSet<String>>> = const { RefCell::new(None) };
}

/// Clears [`SEEN_IDS`] however loading ends.
struct SeenIdsGuard;

impl SeenIdsGuard {
    fn start() -> Self {
        SEEN_IDS.with(|s| *s.borrow_mut() = Some(HashSet::new()));
        SeenIdsGuard
    }
}

impl Drop for SeenIdsGuard {
    fn drop(&mut self) {
        SEEN_IDS.with(|s| *s.borrow_mut() = None);
    }
}

/// A scalar parsed and validated by [`FromScalar`] inside the deserialiser, so errors get its position.
pub(crate) struct Parsed<T>(pub T);

struct ParsedVisitor<T>(PhantomData<T>);

impl<T: FromScalar> Visitor<'_> for ParsedVisitor<T> {
    type Value = Parsed<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::from_scalar(v.trim()).map(Parsed).map_err(E::custom)
    }
}

impl<'de, T: FromScalar> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ParsedVisitor(PhantomData))
    }
}

/// A grant as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrant {
    pub to: Principal,
    pub resource: String,
    pub objects: Vec<Parsed<ObjectPattern>>,
    pub privileges: Vec<Parsed<Privileges>>,
    pub expires: Option<Parsed<Instant>>,
    pub valid: Option<RawValid>,
}

/// A grant's validity period as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawValid {
    pub from: Option<Parsed<Instant>>,
    pub until: Option<Parsed<Instant>>,
}

/// A rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: String,
    pub name: Option<String>,
    pub stage: Option<Parsed<Stage>>,
    pub when: Option<RawWhen>,
    pub action: Parsed<Action>,
    pub severity: Option<Parsed<Severity>>,
    pub message: Option<String>,
    pub workflow: Option<String>,
}

/// A rule's filter as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhen {
    pub users: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub client_cidrs: Option<Vec<Parsed<Cidr>>>,
    pub time: Option<RawTime>,
    pub locations: Option<Vec<Parsed<Location>>>,
    pub device_trust: Option<Vec<Parsed<Trust>>>,
    pub statement_kinds: Option<Vec<Parsed<StatementKind>>>,
    pub statement_kinds_not: Option<Vec<Parsed<StatementKind>>>,
    pub objects: Option<Vec<Parsed<ObjectPattern>>>,
    pub operations: Option<Vec<Parsed<Operation>>>,
    pub text_regex: Option<Parsed<TextRegex>>,
    pub rows_above: Option<u64>,
}

/// A time window as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTime {
    pub days: Option<Vec<Parsed<Weekday>>>,
    pub from: Option<Parsed<Clock>>,
    pub to: Option<Parsed<Clock>>,
    pub zone: Option<Parsed<UtcOffset>>,
}

/// Deserialises a mapping as `R`, then checks it with `check`; an error from either gets the mapping's
/// position because it is returned from inside the deserialiser's `visit_map`.
pub(crate) fn checked_map<'de, D, R, T>(
    d: D,
    check: fn(R) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    struct V<R, T>(fn(R) -> Result<T, String>);
    impl<'de, R: Deserialize<'de>, T> Visitor<'de> for V<R, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.0)(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(check))
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, validate::grant)
    }
}

/// Records `id` as used in the document being loaded; a second use is an error naming `what` it is on.
/// Rules, masks, row filters and column denies share one namespace: audit records name them by id alone.
pub(crate) fn claim_id(id: &str, what: &str) -> Result<(), String> {
    let duplicate = SEEN_IDS.with(|s| match s.borrow_mut().as_mut() {
        Some(seen) => !seen.insert(id.to_owned()),
        None => false,
    });
    if duplicate {
        return Err(format!(
            "duplicate {what} id `{id}`; every rule, mask, row filter and column deny needs its own id"
        ));
    }
    Ok(())
}

fn check_rule(raw: RawRule) -> Result<Rule, String> {
    let rule = validate::rule(raw)?;
    claim_id(&rule.id, "rule")?;
    Ok(rule)
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, check_rule)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawTo {
            user: Option<String>,
            role: Option<String>,
        }
        checked_map(d, |raw: RawTo| match (raw.user, raw.role) {
            (Some(u), None) if !u.trim().is_empty() => Ok(Principal::User(u)),
            (None, Some(r)) if !r.trim().is_empty() => Ok(Principal::Role(r)),
            _ => Err("`to` needs exactly one of `user: NAME` or `role: NAME`".into()),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    rules: Vec<Rule>,
    /// Cedar policy text, usually a block scalar (`cedar: |`).
    cedar: Option<String>,
    #[serde(default)]
    masks: Vec<MaskRule>,
    #[serde(default)]
    row_filters: Vec<RowFilterRule>,
    #[serde(default)]
    column_denies: Vec<ColumnDenyRule>,
    #[serde(default)]
    workflows: Vec<Workflow>,
    #[serde(default)]
    on_demand: Vec<OnDemand>,
    #[serde(default)]
    reservations: Vec<Reservation>,
}

impl Policy {
    /// Parses and validates a policy file. `file_name` is only used in error messages
    /// (`policy.yaml:7:5: ...`). An empty document is an empty policy (no grants: everything denied).
    pub fn from_yaml(text: &str, file_name: &str) -> Result<Policy, PolicyErrors> {
        if text.trim().is_empty() {
            return Ok(Policy::default());
        }
        let _guard = SeenIdsGuard::start();
        let known = KnownWorkflows::start(text);
        let raw = serde_yaml_ng::from_str::<RawPolicy>(text).map_err(|e| PolicyErrors {
            errors: vec![convert(&e, file_name)],
        })?;
        let cedar = match raw.cedar.as_deref() {
            None => CedarPolicies::default(),
            Some(cedar_text) => {
                // Protection rules share the rules' id namespace (audit records name them by id).
                let rule_ids: HashSet<&str> = raw
                    .rules
                    .iter()
                    .map(|r| r.id.as_str())
                    .chain(raw.masks.iter().map(|m| m.id.as_str()))
                    .chain(raw.row_filters.iter().map(|r| r.id.as_str()))
                    .chain(raw.column_denies.iter().map(|c| c.id.as_str()))
                    .collect();
                let workflows = known.names();
                cedar::load(cedar_text, text, file_name, &rule_ids, &workflows)
                    .map_err(|errors| PolicyErrors { errors })?
            }
        };
        Ok(Policy {
            grants: raw.grants,
            rules: raw.rules,
            cedar,
            masks: raw.masks,
            row_filters: raw.row_filters,
            column_denies: raw.column_denies,
            workflows: raw.workflows,
            on_demand: raw.on_demand,
            reservations: raw.reservations,
        })
    }
}

fn convert(e: &serde_yaml_ng::Error, file_name: &str) -> PolicyError {
    let mut message = e.to_string();
    let location = e.location();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    PolicyError {
        file: file_name.to_owned(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message,
    }
}

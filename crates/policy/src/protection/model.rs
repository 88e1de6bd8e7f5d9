//! Masking, row-filter and column-deny rules as written (validated), and the conditions and exemptions
//! they share.

use portcullis_sql::mask::MaskKind;
use portcullis_sql::ObjectKind;

use crate::context::{Context, DeviceTrust};
use crate::model::{Cidr, TimeWindow};
use crate::pattern::ObjectPattern;

/// A masking rule (`masks:`): the columns it selects are shown through `mask` unless the session is
/// exempt. Per column the first rule in file order that selects it wins.
#[derive(Debug, Clone)]
pub struct MaskRule {
    /// Unique id, recorded in the audit log with every masked column.
    pub id: String,
    /// The resource name, or `*` for every resource.
    pub resource: String,
    /// Column patterns (`schema.table.column`, `*` allowed inside each part).
    pub columns: Vec<ObjectPattern>,
    /// How the values are replaced.
    pub mask: MaskKind,
    /// Users and roles the rule does not apply to.
    pub exempt: Exemption,
    /// When the rule applies (always when empty).
    pub when: Conditions,
}

/// A row-filter rule (`row_filters:`): only rows for which the predicate holds are visible in the tables it
/// selects. Every applicable filter of a table applies (they are ANDed).
#[derive(Debug, Clone)]
pub struct RowFilterRule {
    /// Unique id, recorded in the audit log.
    pub id: String,
    /// The resource name, or `*` for every resource.
    pub resource: String,
    /// The tables filtered (a `schema.table` pattern).
    pub table: ObjectPattern,
    /// The filter.
    pub predicate: Predicate,
    /// Users and roles the rule does not apply to.
    pub exempt: Exemption,
    /// When the rule applies (always when empty).
    pub when: Conditions,
}

/// A column-deny rule (`column_denies:`): statements may not reference the columns it selects.
#[derive(Debug, Clone)]
pub struct ColumnDenyRule {
    /// Unique id, recorded in the audit log and named in the refusal.
    pub id: String,
    /// The resource name, or `*` for every resource.
    pub resource: String,
    /// Column patterns (`schema.table.column`).
    pub columns: Vec<ObjectPattern>,
    /// Users and roles the rule does not apply to.
    pub exempt: Exemption,
    /// When the rule applies (always when empty).
    pub when: Conditions,
}

/// Users and roles a protection rule does not apply to: a listed user, or a member of a listed role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemption {
    /// Exempt users.
    pub users: Vec<String>,
    /// Exempt roles.
    pub roles: Vec<String>,
}

impl Exemption {
    /// Why `ctx` is exempt (`user alice`, `role hr-admins`), or `None` when it is not. A session without a
    /// user is exempt only through a role.
    pub fn exempts(&self, ctx: &Context) -> Option<String> {
        if let Some(user) = ctx.user.as_ref().filter(|u| self.users.contains(u)) {
            return Some(format!("user {user}"));
        }
        ctx.roles
            .iter()
            .find(|r| self.roles.contains(r))
            .map(|r| format!("role {r}"))
    }
}

/// When a protection rule applies: every given condition must hold; empty lists and `None` mean "any".
/// Location and device trust match `unknown` only when it is listed (as in rules); a condition that cannot
/// be evaluated (no client address for `client_cidrs`) makes the rule apply, so protection fails closed.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// A weekly time window.
    pub time: Option<TimeWindow>,
    /// Countries (upper-case alpha-2), `None` for `unknown`.
    pub locations: Vec<Option<String>>,
    /// Device trust levels, `None` for `unknown`.
    pub device_trust: Vec<Option<DeviceTrust>>,
    /// Client address ranges.
    pub client_cidrs: Vec<Cidr>,
}

impl Conditions {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        self.time.is_none()
            && self.locations.is_empty()
            && self.device_trust.is_empty()
            && self.client_cidrs.is_empty()
    }
}

/// A row filter's predicate: the text as written and its parameterised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    /// As written in the policy file.
    pub text: String,
    /// With every session variable replaced by `$1`, `$2`, … (one number per distinct variable).
    pub parameterised: String,
    /// The variable each parameter stands for: `$n` is `variables[n - 1]`.
    pub variables: Vec<SessionVariable>,
}

/// A session variable a row-filter predicate may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionVariable {
    /// `:user.name`: the gateway user (NULL before authentication).
    UserName,
    /// `:user.roles`: the user's roles joined with `,` in the order the context lists them (empty text when
    /// there are none); test membership with `'x' = ANY(string_to_array(:user.roles, ','))`.
    UserRoles,
    /// `:resource`: the resource the session targets.
    Resource,
    /// `:user.attributes.<key>`: an attribute of the user ([`Context::attributes`]); NULL when missing.
    Attribute(String),
}

impl SessionVariable {
    /// The variable as written in a predicate, without the leading `:`.
    pub fn name(&self) -> String {
        match self {
            Self::UserName => "user.name".into(),
            Self::UserRoles => "user.roles".into(),
            Self::Resource => "resource".into(),
            Self::Attribute(key) => format!("user.attributes.{key}"),
        }
    }

    /// The variable's value in `ctx`; `None` is NULL.
    pub fn value(&self, ctx: &Context) -> Option<String> {
        match self {
            Self::UserName => ctx.user.clone(),
            Self::UserRoles => Some(ctx.roles.join(",")),
            Self::Resource => Some(ctx.resource.clone()),
            Self::Attribute(key) => ctx.attributes.get(key).cloned(),
        }
    }
}

/// Whether `pattern` selects the relation `schema.name` (ignoring any column part).
pub(crate) fn selects_relation(pattern: &ObjectPattern, schema: &str, name: &str) -> bool {
    pattern.matches_object(schema, name, ObjectKind::Relation)
}

//! The Portcullis policy engine: a pure library (no I/O, no async, no clock — the caller passes `now`).
//!
//! A [`Policy`] is loaded from YAML ([`Policy::from_yaml`]), compiled ([`CompiledPolicy::compile`]) and
//! asked three questions: may this client connect ([`CompiledPolicy::evaluate_connection`]), may this
//! statement run ([`CompiledPolicy::evaluate_statement`]), and — for row-count rules — may its outcome
//! stand ([`CompiledPolicy::evaluate_outcome`]); and one about data: what must this session not see in
//! clear ([`CompiledPolicy::protections`]).
//!
//! # Decision order for a statement (ARCHITECTURE §3)
//! 1. **Forbid statements**: statement-stage `block`/`logout` rules whose filter only looks at who/what/
//!    when (users, roles, resources, client_cidrs, time, locations, device_trust) deny whatever their rank.
//!    This is how "an unconditional block blocks whatever its rank" (seed 004) holds.
//! 2. **Global Access**: every object component must be covered by an active grant (the user's or one of
//!    the user's roles', for the resource or `*`, an object pattern matching it, a privilege for its
//!    operation); otherwise deny naming it: `alice lacks SELECT on hr.employees in prod`. Column grants
//!    (`hr.employees.salary`) cover an access only when its columns are known and all covered. Statement
//!    components (SET, BEGIN, SHOW, ...) need no grant. Calling a harmless built-in function and reading
//!    a catalog relation that shows only definitions is implicitly granted ([`implicitly_granted`]);
//!    other functions need `execute`, other catalog relations `select`.
//! 3. **Permit statements with requirements** ([`cedar`], seed 002): Cedar `permit`/`forbid` policies
//!    under the file's `cedar:` key, validated against the Portcullis schema at load. A matching Cedar
//!    forbid denies in step 1 (with logout when it has `@logout`; one whose evaluation fails applies, to
//!    fail closed). Every matching permit imposes its requirements (`@mfa`, `@justification`,
//!    `@approval`), checked against the [`Context`]: unmet MFA or justification denies, an unmet
//!    approval alone makes the verdict RequireApproval, and [`StatementDecision::requirements`] lists
//!    each one met or not. A permit also covers the objects it matched: they need no grant. The
//!    policies that decided are in [`StatementDecision::policies`]. A [`SessionCache`] keeps Cedar's
//!    answers for a session (`*_cached` methods). See `crates/policy/CEDAR.md`.
//! 4. **Priority rules, per component**: each component fires only the first rule, in file order, whose
//!    filter matches it. Object rules (with `objects` or `operations`) match object components;
//!    other rules (with `statement_kinds`, `statement_kinds_not`, or only context/`text_regex` filters)
//!    match the statement component, so they fire at most once per statement. A rule fired by several
//!    components is reported once per statement, listing the components (one audit event per rule per
//!    statement).
//!
//! # Object creation (seed 004's CTAS)
//! An object rule **without** an `operations` filter matches every operation on the objects it names.
//! A rule that denies or holds (`block`, `logout`, `require-approval`) also matches creating a new object
//! its pattern names (`{objects: ['hr.*'], action: block}` refuses `CREATE TABLE hr.evil`); a passive one
//! (`allow`, `audit`, `alert`) leaves the creation to the statement component (its kind), as seed 004's
//! audit trail expects — list `create` in `operations` to fire one on creation. Creating always needs a
//! `create` grant. So with rules 1 `objects: [hr.employees]`, 2 `objects: ["hr.*"]`, 3 `objects: ["*.*"]`,
//! 4 `statement_kinds_not: [SELECT]` (all audit), `SELECT * FROM hr.employees` fires \[1\] and
//! `CREATE TABLE x AS SELECT … FROM hr.employees e JOIN hr.departments d …` fires [1 (employees),
//! 2 (departments), 4 (the CREATE TABLE AS)] — the new `public.x` fires nothing, as in the seed.
//!
//! # Row-count rules
//! Rules with `rows_above` need the outcome. While walking a component's candidates in order, a matching
//! row rule is set aside as pending and the walk continues to the first matching rule without one. If that
//! rule denies (block, logout) or holds (require-approval) it acts before execution, whatever the rank.
//! Otherwise the component's result waits for [`CompiledPolicy::evaluate_outcome`]: the first pending
//! rule whose threshold the row count exceeds fires, else the passive rule found below them. So "allow
//! rows > 1" ranked above "block rows > 10" lets 40 rows through, and swapped blocks them.
//!
//! # Unknown values and failing closed
//! Location and device trust are [`Observed`]: `unknown` is a value rules match. A condition that cannot
//! be evaluated at all (no client address for `client_cidrs`, no user for `users`, no statement component
//! for `statement_kinds`) makes the rule *indeterminate*: if it would be the deciding rule it is applied as
//! a denial (reported with [`FiredRule::indeterminate`]), so it never silently fails to block.
//!
//! # Connection stages
//! `pre-connection` and `post-connection` rules are evaluated in order, first match wins (`logout` denies
//! and disconnects). Cedar forbids on `connect` deny too; before authentication only those that depend
//! neither on the user nor on the device trust are evaluated (the rest wait for post-connection). After
//! authentication the matching Cedar permits impose their requirements, and the user must hold at least
//! one active grant on the resource or be covered by a matching permit.
//!
//! # Masks, row filters and column denies (ARCHITECTURE §5, `crates/policy/MASKING.md`)
//! Three more top-level keys protect data by statement rewriting: `masks` (columns shown through a
//! [`MaskKind`](portcullis_sql::mask::MaskKind)), `row_filters` (a predicate over a table's rows, with
//! session variables `:user.name`, `:user.roles`, `:resource`, `:user.attributes.<key>`) and
//! `column_denies` (columns that may not be referenced). Each names a `resource` (or `*`), may exempt
//! `users`/`roles` and may have `when` conditions (time window, locations, device trust, client
//! addresses). [`CompiledPolicy::protections`] picks the rules that apply to a session;
//! [`SessionProtections::protection_for`] turns them into the rewriter's
//! [`RelationProtection`](portcullis_sql::mask::RelationProtection) for one relation. Per column the
//! first mask (and the first deny) in file order wins; every row filter selecting a table applies.
//!
//! Names are matched case-sensitively against names the SQL analyser already folded ([`pattern`]).

pub mod cedar;
mod compiled;
mod components;
mod context;
mod decision;
mod error;
pub mod explain;
mod index;
mod model;
pub mod pattern;
mod protection;
mod validate;
mod workflow;
mod yaml;

pub use cedar::{CedarEffect, CedarPolicies, CedarStatement, Requirement, SessionCache};
pub use compiled::{implicitly_granted, CompiledPolicy, ConnectionStage};
pub use components::{
    components, components_with, Component, ObjectComponent, ResolvedAccess, StatementComponent,
};
pub use context::{Context, DeviceTrust, Observed};
pub use decision::{
    ConnectionDecision, DecidingPolicy, FiredRule, MissingGrant, OutcomeDecision, PendingComponent,
    PendingOutcome, RequirementStatus, StatementDecision, Verdict,
};
pub use error::{PolicyError, PolicyErrors};
pub use model::{
    privilege_name, reservation_for, Action, BundleGrant, Cidr, Grant, OnDemand, OnTimeout, Policy,
    Principal, Reservation, Rule, Severity, Stage, TextRegex, TimeWindow, When, Workflow,
    DEFAULT_WORKFLOW,
};
pub use pattern::ObjectPattern;
pub use protection::{
    Applicability, ColumnDenyRule, Conditions, Exemption, MaskRule, Predicate, ProtectionKind,
    ProtectionStatus, RowFilterRule, SessionProtections, SessionVariable,
};
pub use workflow::{
    parse_duration, parse_privilege, DEFAULT_EXPIRE_AFTER, DEFAULT_MAX_DURATION,
    DEFAULT_MAX_WINDOW, DEFAULT_NOTICE_BEFORE, DEFAULT_VALID_FOR,
};

#[cfg(test)]
mod ddl_tests;
#[cfg(test)]
mod tests;

//! Permit and forbid statements written in Cedar (seed 002), under the `cedar:` key of a policy file.
//!
//! # Schema
//! Policies are validated strictly, at load, against the Portcullis schema
//! ([`SCHEMA_TEXT`], `portcullis.cedarschema`):
//! - principals are `User::"alice"`, members of `Role::"developers"` (`principal in Role::"developers"`);
//! - a `Resource::"prod"` is a database the gateway fronts; its objects form a hierarchy
//!   `Table::"hr.employees" in Schema::"hr" in Resource::"prod"` (also `Function`, and `Object` for
//!   databases, types, roles and other DDL targets). Every object has `schema` and `name` attributes.
//!   Ids omit the resource: each request's entities describe the one resource the session is on, so
//!   `resource in Resource::"prod"` picks the database;
//! - actions: `connect` (opening a session, on the resource), `statement` (every statement, on the
//!   resource) and one action per SQL operation of an object component, named like the YAML privileges:
//!   `select`, `insert`, `update`, `delete`, `truncate`, `copy-in`, `copy-out`, `execute`, `create`,
//!   `alter`, `drop`, `grant`, `lock`, `maintain`, `set`, `alter-system`, `notify`, `listen`, `admin`,
//!   `other`; groups `read` (select, copy-out), `write` (insert, update, delete, truncate, copy-in), `ddl`
//!   (create, alter, drop, truncate, grant), `copy`, `administer` (set, alter-system, admin) and `sql`
//!   (everything but `connect`);
//! - context: `location` (`"DE"` or `"unknown"`), `device_trust` (`DeviceTrust::"low"`, an enumerated
//!   entity so a misspelt level fails validation), optional `client_addr` (absent without an IP address:
//!   strict validation makes a policy test `context has client_addr` before reading it), and UTC time
//!   `date` (yyyymmdd), `hour`, `minute`, `weekday` (`Weekday::"sat"`).
//!
//! # Annotations
//! Every policy needs `@id("...")` (decisions and audit records name it). Permits carry their
//! requirements — `@mfa` (optionally `@mfa("message")`), `@justification("prompt")`,
//! `@approval("workflow")` — and a permit with none is rejected: plain access is given with grants.
//! Forbids may carry `@logout("reason")` (end the session) and `@error("message shown")`. An annotation
//! on the wrong effect, or an unknown one, is a load error (`@description` is allowed on both).
//!
//! # Semantics (ARCHITECTURE §3)
//! A statement makes one Cedar request per object component (its operation's action on the object) and
//! one `statement` request on the resource; a connection makes a `connect` request. Forbids and permits
//! are evaluated separately so that every match is known:
//! - a matching forbid denies (with logout when it has `@logout`). A forbid whose evaluation fails — Cedar
//!   skips such a policy — is treated as matching: a forbid never silently does not apply;
//! - every matching permit imposes its requirements, checked against the [`Context`](crate::Context)
//!   (`mfa_verified`, `justification`, `approvals`). Unmet MFA or justification denies, naming what is
//!   missing; when only approvals are missing the verdict is RequireApproval. A permit also covers its
//!   request: an object it matched needs no grant, and a `connect` it matched counts as access to the
//!   resource. A permit whose evaluation fails imposes its requirements but covers nothing;
//! - before authentication (pre-connection), only forbids that constrain neither the principal nor read
//!   it or the device trust are evaluated; the rest wait for post-connection, which evaluates them all.
//!
//! # Cost
//! Cedar evaluates every policy of a set for every request and needs an entity store for `in`, so the
//! engine decides each policy's scope itself (`scope.rs`) and asks Cedar only about the conditions of
//! the policies the scope admits, with only the entities those conditions read; conditions on the
//! context alone are asked once per evaluation. Answers can be cached per session ([`SessionCache`]).
//!
//! crates/policy/CEDAR.md is the user-facing description, with examples.

mod annotations;
mod cache;
pub(crate) mod decide;
mod engine;
mod load;
mod policies;
mod request;
mod scope;
mod source_map;
mod vocabulary;

#[cfg(test)]
mod tests;

pub use cache::SessionCache;
pub(crate) use load::load;
pub use policies::{CedarEffect, CedarPolicies, CedarStatement, Requirement};
pub use vocabulary::SCHEMA_TEXT;

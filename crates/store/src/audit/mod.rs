//! The append-only audit log: event types, the group-committing writer and queries.

mod event;
pub(crate) mod journal;
mod query;
pub(crate) mod writer;

pub use event::{
    AuditEvent, AuditObject, AuditRecord, ConnectionEvent, ConnectionPhase, DecisionEvent,
    FiredRuleRecord, MfaEvent, PolicyTrail, RequirementRecord, StatementEvent, WorkflowEvent,
};
pub use query::{AuditFilter, AuditKindFilter};
pub use writer::{AuditSink, AuditTicket};

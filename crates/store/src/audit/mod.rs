//! The audit log: event types, the journal that holds them (append-only, hash-chained, signed), the
//! writer that appends to it, the SQLite index built from it, and queries on the index.

mod decode;
mod event;
mod group_commit;
pub(crate) mod index;
pub(crate) mod journal;
mod maintenance;
mod query;
mod row;
pub(crate) mod writer;

pub use event::{
    AuditEvent, AuditObject, AuditRecord, ConnectionEvent, ConnectionPhase, DecisionEvent,
    FiredRuleRecord, MfaEvent, PolicyTrail, RequirementRecord, StatementEvent, WorkflowEvent,
};
pub use index::decode_event;
pub use journal::appender::SegmentLimits;
pub use journal::reader::{JournalCursor, JournalRecord, JournalTail};
pub use journal::retention::{RetentionOutcome, RetentionPolicy};
pub use journal::verify::{VerifyProblem, VerifyReport};
pub use maintenance::IndexStatus;
pub use query::{AuditFilter, AuditKindFilter};
pub use writer::{AuditSink, AuditTicket};

//! One statement on its way through the gateway: what it is, when it started, and how it ended, turned into
//! an audit event when it completes.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use portcullis_sql::{resolve, Catalog, ObjectKind, Operation, SearchPath, Statement};
use portcullis_store::{AuditEvent, AuditObject, StatementEvent};

use super::SessionInfo;

/// A statement sent upstream (or refused) whose outcome is still to be recorded.
#[derive(Debug)]
pub struct Run {
    text: String,
    kind: String,
    objects: Vec<AuditObject>,
    params: u32,
    at: i64,
    started: Instant,
    /// DataRows seen so far (for results whose command tag carries no count).
    pub rows_seen: u64,
    /// The statement changes the catalog, so resolution data must be read again when it succeeds.
    pub changes_catalog: bool,
}

/// How a statement ended.
pub enum Outcome<'a> {
    /// Completed; the command tag.
    Done(&'a str),
    /// A portal ran out of rows to fetch for now.
    Suspended,
    /// Failed upstream with this SQLSTATE and message.
    Failed(Option<&'a str>, Option<&'a str>),
    /// The gateway refused it.
    Refused(&'a Refusal),
}

/// Why the gateway refuses a statement, as the client will read it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// SQLSTATE.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl Refusal {
    /// A statement the gateway cannot analyse fully.
    pub fn unanalysable(why: impl std::fmt::Display) -> Self {
        Refusal {
            code: "0A000",
            message: format!("portcullis refused the statement: {why}"),
        }
    }

    /// A request the gateway does not relay at all.
    pub fn unsupported(what: &str) -> Self {
        Refusal {
            code: "0A000",
            message: format!(
                "portcullis refused the request: {what} is not supported through the gateway"
            ),
        }
    }
}

/// Microseconds since the Unix epoch, the audit log's clock.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Run {
    /// A run for an analysed statement, the objects of `objects_of` (itself, or for `EXECUTE` the
    /// prepared statement) resolved against the session's search path.
    pub fn analysed(
        statement: &Statement,
        objects_of: &Statement,
        params: u32,
        path: &SearchPath,
        session_user: &str,
        catalog: &dyn Catalog,
    ) -> Run {
        let objects = objects_of
            .objects
            .iter()
            .map(|access| AuditObject {
                name: resolve(&access.object, access.kind, path, session_user, catalog).to_string(),
                operation: access.operation.to_string(),
            })
            .collect();
        let changes_catalog = objects_of.objects.iter().any(|access| {
            matches!(
                access.operation,
                Operation::Create | Operation::Alter | Operation::Drop
            ) && matches!(
                access.kind,
                ObjectKind::Relation
                    | ObjectKind::Schema
                    | ObjectKind::Function
                    | ObjectKind::Sequence
            )
        });
        Run {
            text: statement.text.to_string(),
            kind: statement.kind.to_string(),
            objects,
            params,
            at: now_micros(),
            started: Instant::now(),
            rows_seen: 0,
            changes_catalog,
        }
    }

    /// A run for text the gateway could not analyse (so it has no kind or objects).
    pub fn opaque(text: &str, kind: &str) -> Run {
        Run {
            text: text.to_string(),
            kind: kind.to_string(),
            objects: Vec::new(),
            params: 0,
            at: now_micros(),
            started: Instant::now(),
            rows_seen: 0,
            changes_catalog: false,
        }
    }

    /// Restarts the clock, for statements queued behind others in one message.
    pub fn restart_clock(&mut self) {
        self.at = now_micros();
        self.started = Instant::now();
    }

    /// The audit event for this run's end.
    pub fn into_event(self, info: &Arc<SessionInfo>, outcome: Outcome<'_>) -> AuditEvent {
        let (decision, result, rows, sqlstate, message) = match outcome {
            Outcome::Done(tag) => (
                "allow",
                "ok",
                portcullis_wire::command_tag_rows(tag).or(Some(self.rows_seen)),
                None,
                None,
            ),
            Outcome::Suspended => ("allow", "ok", Some(self.rows_seen), None, None),
            Outcome::Failed(code, message) => (
                "allow",
                if code == Some("57014") {
                    "cancelled"
                } else {
                    "error"
                },
                None,
                code.map(str::to_string),
                message.map(str::to_string),
            ),
            Outcome::Refused(refusal) => (
                "deny",
                "denied",
                None,
                Some(refusal.code.to_string()),
                Some(refusal.message.clone()),
            ),
        };
        AuditEvent::Statement(StatementEvent {
            session_id: info.id.clone(),
            at: self.at,
            user: info.user.clone(),
            resource: info.resource.clone(),
            client_addr: info.client_addr.clone(),
            text: self.text,
            kind: self.kind,
            objects: self.objects,
            param_count: self.params,
            rows,
            duration_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            decision: decision.to_string(),
            outcome: result.to_string(),
            sqlstate,
            message,
        })
    }
}

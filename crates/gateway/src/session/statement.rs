//! One statement on its way through the gateway: what it is, when it started, and how it ended, turned into
//! an audit event when it completes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use portcullis_policy::{Component, OutcomeDecision, PendingOutcome, ResolvedAccess};
use portcullis_sql::{
    resolve, Catalog, ObjectKind, Operation, QualifiedName, SearchPath, Statement,
};
use portcullis_store::{AuditEvent, AuditObject, PolicyTrail, StatementEvent};

use super::SessionInfo;
use crate::alerts::Alerter;
use crate::policy::{self, ActivePolicy, RowLimits};

/// A statement sent upstream (or refused) whose outcome is still to be recorded.
#[derive(Debug)]
pub struct Run {
    text: String,
    kind: String,
    objects: Vec<AuditObject>,
    params: u32,
    /// What the policy decides on: each object access and the statement itself.
    pub components: Vec<Component>,
    /// The policy decision, once made.
    pub policy: Option<PolicyTrail>,
    /// Row-count rules to decide once the statement's rows are known.
    pub outcome_rules: Option<OutcomeRules>,
    /// Where those rules deny: the statement must then run guarded (see `row_guard`).
    pub row_limits: Option<RowLimits>,
    at: i64,
    started: Instant,
    /// DataRows seen so far (for results whose command tag carries no count).
    pub rows_seen: u64,
    /// The statement changes the catalog, so resolution data must be read again when it succeeds.
    pub changes_catalog: bool,
    /// The names of what it changes, when every object it changes is a relation, function or schema
    /// named in it (`None`: it may change anything, e.g. a type, or renames or cascades).
    pub changed_names: Option<HashSet<String>>,
    /// The objects whose catalog entries its decision reads, each with whether it does so in any
    /// session (an unqualified name resolved through the search path, or a relation whose result
    /// columns are checked against the snapshot) or only where masks apply.
    pub catalog_names: Vec<(QualifiedName, bool)>,
    /// The OIDs of the tables its result columns may come from, when the catalog snapshot knows every
    /// relation it reads; the upstream's RowDescription is checked against them.
    pub origins: Option<Vec<(u32, i16)>>,
    /// Its text was rewritten for masks or row filters, so its errors' details (which may quote a row's
    /// raw values, e.g. "Failing row contains …") are not shown.
    pub masked: bool,
}

/// Row-count rules a statement's decision left to its outcome, with the policy that set them.
#[derive(Debug)]
pub struct OutcomeRules {
    /// The policy in force when the statement was decided.
    pub active: Arc<ActivePolicy>,
    /// The rules still to decide, per component.
    pub pending: PendingOutcome,
    /// Where the `alert` rules among them raise their alerts.
    pub alerts: Alerter,
}

impl OutcomeRules {
    /// What the rules decide for `rows` rows.
    pub fn evaluate(&self, rows: u64) -> OutcomeDecision {
        self.active.compiled.evaluate_outcome(&self.pending, rows)
    }
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
    /// It ran, and the gateway stopped it once a row-count rule denied this many rows.
    Stopped(&'a Refusal, u64),
}

/// SQLSTATE `query_canceled`.
const CANCELLED: &str = "57014";

/// Why the gateway refuses a statement, as the client will read it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// SQLSTATE.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// Where in the query text the error points (a syntax error's position), 1-based in characters.
    pub position: Option<u32>,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Self {
        Refusal {
            code,
            message,
            position: None,
        }
    }

    /// A statement the policy denies.
    pub fn denied(reason: &str) -> Self {
        Self::new(
            "42501",
            format!("portcullis denied the statement: {reason}"),
        )
    }

    /// A statement a row-count rule denied while it ran: cut off, and its changes rolled back.
    pub fn stopped(reason: &str) -> Self {
        Self::new(
            "42501",
            format!("portcullis stopped the statement: {reason}; nothing it changed was kept"),
        )
    }

    /// A statement that waits for an approval.
    pub fn approval_required(reason: &str) -> Self {
        Self::new("42501", format!("portcullis holds the statement: {reason}"))
    }

    /// A statement held for approval, with the request an approver decides.
    pub fn held(request: i64, workflow: &str, reason: &str) -> Self {
        Self::new(
            "42501",
            format!(
                "portcullis holds the statement for approval: request {request} (workflow {workflow}): \
                 {reason}; an approver runs `portcullis approve {request}`, then run the same statement again"
            ),
        )
    }

    /// A statement PostgreSQL's grammar rejects: answered as PostgreSQL answers it (`42601`, the
    /// parser's message and position), so clients show the usual pointer into the text.
    pub fn syntax(message: &str, position: Option<u32>) -> Self {
        Refusal {
            position,
            ..Self::new("42601", message.to_owned())
        }
    }

    /// A statement the gateway cannot analyse fully.
    pub fn unanalysable(why: impl std::fmt::Display) -> Self {
        Self::new("0A000", format!("portcullis refused the statement: {why}"))
    }

    /// A statement that depends on a catalog change the gateway could not read in time (SQLSTATE
    /// `57014` when the read took longer than `catalog_timeout_secs`, else `58000`).
    pub fn catalog_unread(resource: &str, error: &impl std::fmt::Display) -> Self {
        let error = error.to_string();
        let code = if error.contains("longer than") {
            CANCELLED
        } else {
            "58000"
        };
        Self::new(
            code,
            format!(
                "portcullis could not read the catalog of \"{resource}\", which changed in what this \
                 statement names: {error}; the session goes on, and the statement can be run again"
            ),
        )
    }

    /// A statement the client cancelled while the gateway held it: answered as PostgreSQL answers a
    /// cancelled query.
    pub fn cancelled() -> Self {
        Self::new(
            CANCELLED,
            "canceling statement due to user request".to_owned(),
        )
    }
}

/// Microseconds since the Unix epoch, the audit log's clock.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Kinds of object a DDL statement's change is known by name for; any other may change what the
/// snapshot holds about objects the statement does not name (a type's casts, an operator).
fn named_kind(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Relation | ObjectKind::Function | ObjectKind::Sequence | ObjectKind::Schema
    )
}

/// What a statement changes by name (see [`Run::changed_names`]) and the names its decision reads the
/// catalog for (see [`Run::catalog_names`]).
fn catalog_names(
    statement: &Statement,
    resolved: &[ResolvedAccess],
    changes_catalog: bool,
) -> (Option<HashSet<String>>, Vec<(QualifiedName, bool)>) {
    let checks_results = statement.kind.is_dml();
    let mut reads = Vec::new();
    let mut changed = Some(HashSet::new());
    for (access, (name, kind, operation, _)) in statement.objects.iter().zip(resolved) {
        if changes_catalog
            && matches!(
                operation,
                Operation::Create | Operation::Alter | Operation::Drop
            )
        {
            match changed.as_mut() {
                Some(names) if named_kind(*kind) => {
                    names.insert(name.name.clone());
                }
                _ => changed = None,
            }
        }
        if named_kind(*kind) {
            let always =
                access.object.schema.is_none() || (checks_results && *kind == ObjectKind::Relation);
            reads.push((name.clone(), always));
        }
    }
    // A new name (RENAME, SET SCHEMA) is not among the objects; CASCADE drops objects not named.
    if changes_catalog && changed.is_some() {
        let text = statement.text.to_ascii_lowercase();
        if ["rename", "cascade", "set schema"]
            .iter()
            .any(|word| text.contains(word))
        {
            changed = None;
        }
    }
    (changed, reads)
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
        let resolved: Vec<ResolvedAccess> = objects_of
            .objects
            .iter()
            .map(|access| {
                let mut name = resolve(&access.object, access.kind, path, session_user, catalog);
                // A name found nowhere resolves to where it would be created, which for `$user`
                // spells the upstream role: clients must not learn the gateway's credential.
                if !session_user.is_empty()
                    && access.object.schema.is_none()
                    && name.schema == session_user
                    && !catalog.has_schema(session_user)
                {
                    name.schema = "$user".into();
                }
                (name, access.kind, access.operation, access.columns.clone())
            })
            .collect();
        let objects = resolved
            .iter()
            .map(|(name, _, operation, _)| AuditObject {
                name: name.to_string(),
                operation: operation.to_string(),
            })
            .collect();
        // Any DDL: a snapshot also holds types, operators, casts, triggers and event triggers.
        let changes_catalog = objects_of.objects.iter().any(|access| {
            matches!(
                access.operation,
                Operation::Create | Operation::Alter | Operation::Drop
            )
        });
        let (changed_names, catalog_names) = catalog_names(objects_of, &resolved, changes_catalog);
        // `EXECUTE name` is decided as the statement it runs: its kind, text and objects.
        let components = portcullis_policy::components(objects_of, resolved);
        Run {
            text: statement.text.to_string(),
            kind: statement.kind.to_string(),
            objects,
            params,
            components,
            policy: None,
            outcome_rules: None,
            row_limits: None,
            at: now_micros(),
            started: Instant::now(),
            rows_seen: 0,
            changes_catalog,
            changed_names,
            catalog_names,
            origins: None,
            masked: false,
        }
    }

    /// A run for text the gateway could not analyse (so it has no kind or objects).
    pub fn opaque(text: &str, kind: &str) -> Run {
        Run {
            text: text.to_string(),
            kind: kind.to_string(),
            objects: Vec::new(),
            params: 0,
            components: Vec::new(),
            policy: None,
            outcome_rules: None,
            row_limits: None,
            at: now_micros(),
            started: Instant::now(),
            rows_seen: 0,
            changes_catalog: false,
            changed_names: None,
            catalog_names: Vec::new(),
            origins: None,
            masked: false,
        }
    }

    /// The statement's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Restarts the clock, for statements queued behind others in one message.
    pub fn restart_clock(&mut self) {
        self.at = now_micros();
        self.started = Instant::now();
    }

    /// The audit event for this run's end.
    pub fn into_event(self, info: &Arc<SessionInfo>, outcome: Outcome<'_>) -> AuditEvent {
        let stopped = matches!(outcome, Outcome::Stopped(..));
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
                if code == Some(CANCELLED) {
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
                if refusal.code == CANCELLED {
                    "cancelled"
                } else {
                    "denied"
                },
                None,
                Some(refusal.code.to_string()),
                Some(refusal.message.clone()),
            ),
            Outcome::Stopped(refusal, rows) => (
                "deny",
                "denied",
                Some(rows),
                Some(refusal.code.to_string()),
                Some(refusal.message.clone()),
            ),
        };
        let mut policy = self.policy;
        if let (Some(rules), Some(trail), Some(rows)) = (&self.outcome_rules, policy.as_mut(), rows)
        {
            let outcome = rules.evaluate(rows);
            rules
                .alerts
                .fired(info, &outcome.fired, &trail.actions, Some(&self.text));
            policy::add_outcome(trail, &outcome);
            if stopped {
                trail.result = "deny".into();
            }
        }
        crate::metrics::statement_recorded(decision, policy.as_ref());
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
            policy,
        })
    }
}

//! An event as a row of `audit_events`: what the index inserts and what `verify` compares it with.

use rusqlite::types::Value;

use super::event::{AuditEvent, PolicyTrail};
use crate::error::StoreError;

/// The columns an event fills, in [`VALUES`] order.
pub(crate) const COLUMNS: &str = "kind, at, session_id, user_name, resource, client_addr, \
    phase, auth_result, tls, application_name, bytes_in, bytes_out, detail, \
    statement_text, statement_kind, objects, object_names, param_count, row_count, duration_us, \
    decision, outcome, sqlstate, message";

/// Inserts one row.
pub(crate) static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert(1));

/// Rows one [`INSERT_MANY`] inserts.
pub(crate) const ROWS_PER_INSERT: usize = 16;

/// [`INSERT`] for [`ROWS_PER_INSERT`] rows at once.
pub(crate) static INSERT_MANY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert(ROWS_PER_INSERT));

/// An `INSERT` of `rows` rows, each `seq` and then [`COLUMNS`]. `OR ROLLBACK`: a row that breaks a
/// constraint rolls the batch's transaction back, as any error in it does, so SQLite keeps no statement
/// journal to undo one statement alone (it copied every page a multi-row insert touched and, past 64
/// KiB, wrote them to a temporary file: two thirds of the index thread's system calls, and about a
/// tenth of its CPU).
fn insert(rows: usize) -> String {
    let one = (0..=WIDTH).map(|_| "?").collect::<Vec<_>>().join(", ");
    let rows = vec![format!("({one})"); rows].join(", ");
    format!(
        "INSERT OR ROLLBACK INTO audit_events (seq, {COLUMNS}) VALUES {rows} \
         ON CONFLICT (seq) DO NOTHING"
    )
}

/// How many columns [`COLUMNS`] names.
pub(crate) const WIDTH: usize = 24;

/// SQL integers are signed 64-bit; counters beyond that saturate.
fn sat(v: u64) -> Value {
    Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

/// Positions in [`COLUMNS`] past the six every kind fills (kind, at, session, user, resource, client).
mod col {
    pub const PHASE: usize = 6;
    pub const AUTH_RESULT: usize = 7;
    pub const TLS: usize = 8;
    pub const APPLICATION_NAME: usize = 9;
    pub const BYTES_IN: usize = 10;
    pub const BYTES_OUT: usize = 11;
    pub const DETAIL: usize = 12;
    pub const STATEMENT_TEXT: usize = 13;
    pub const STATEMENT_KIND: usize = 14;
    pub const OBJECTS: usize = 15;
    pub const OBJECT_NAMES: usize = 16;
    pub const PARAM_COUNT: usize = 17;
    pub const ROW_COUNT: usize = 18;
    pub const DURATION_US: usize = 19;
    pub const DECISION: usize = 20;
    pub const OUTCOME: usize = 21;
    pub const SQLSTATE: usize = 22;
    pub const MESSAGE: usize = 23;
}

/// A row being filled: the shared columns first, each kind's own by name, the rest `NULL`.
struct Row([Value; WIDTH]);

impl Row {
    fn new(kind: &str, at: i64, session: &str, user: &str, resource: &str, client: &str) -> Row {
        let mut values: [Value; WIDTH] = std::array::from_fn(|_| Value::Null);
        values[..6].clone_from_slice(&[
            text(kind),
            Value::Integer(at),
            text(session),
            text(user),
            text(resource),
            text(client),
        ]);
        Row(values)
    }

    fn set(mut self, column: usize, value: Value) -> Row {
        self.0[column] = value;
        self
    }
}

/// The row of `event`, in [`COLUMNS`] order.
pub(crate) fn row(event: &AuditEvent) -> Result<[Value; WIDTH], StoreError> {
    use col::*;
    let row = match event {
        AuditEvent::Connection(c) => Row::new(
            "connection",
            c.at,
            &c.session_id,
            &c.user,
            &c.resource,
            &c.client_addr,
        )
        .set(PHASE, text(c.phase.as_str()))
        .set(AUTH_RESULT, text(&c.auth_result))
        .set(TLS, Value::Integer(i64::from(c.tls)))
        .set(APPLICATION_NAME, opt_text(c.application_name.as_deref()))
        .set(BYTES_IN, sat(c.bytes_in))
        .set(BYTES_OUT, sat(c.bytes_out))
        .set(DETAIL, opt_text(c.detail.as_deref())),
        AuditEvent::Statement(s) => {
            let objects = serde_json::to_string(&s.objects)
                .map_err(|e| StoreError::AuditWrite(format!("cannot encode objects: {e}")))?;
            // One name per line: lets the object filter match a name substring with a plain LIKE.
            let object_names = s
                .objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let trail = s.policy.as_ref().map(encode_trail).transpose()?;
            Row::new(
                "statement",
                s.at,
                &s.session_id,
                &s.user,
                &s.resource,
                &s.client_addr,
            )
            .set(DETAIL, trail.map_or(Value::Null, Value::Text))
            .set(STATEMENT_TEXT, text(&s.text))
            .set(STATEMENT_KIND, text(&s.kind))
            .set(OBJECTS, Value::Text(objects))
            .set(OBJECT_NAMES, Value::Text(object_names))
            .set(PARAM_COUNT, Value::Integer(i64::from(s.param_count)))
            .set(ROW_COUNT, s.rows.map_or(Value::Null, sat))
            .set(DURATION_US, sat(s.duration_us))
            .set(DECISION, text(&s.decision))
            .set(OUTCOME, text(&s.outcome))
            .set(SQLSTATE, opt_text(s.sqlstate.as_deref()))
            .set(MESSAGE, opt_text(s.message.as_deref()))
        }
        AuditEvent::Decision(d) => Row::new(
            "decision",
            d.at,
            &d.session_id,
            &d.user,
            &d.resource,
            &d.client_addr,
        )
        .set(PHASE, text(&d.policy.stage))
        .set(DETAIL, Value::Text(encode_trail(&d.policy)?))
        .set(DECISION, text(&d.policy.result))
        .set(MESSAGE, text(&d.policy.reason)),
        AuditEvent::Workflow(w) => {
            // The whole event as JSON in `detail`; the shared columns let the usual filters find it.
            let json = serde_json::to_string(w).map_err(|e| {
                StoreError::AuditWrite(format!("cannot encode workflow event: {e}"))
            })?;
            Row::new("workflow", w.at, &w.session_id, &w.user, &w.resource, "")
                .set(PHASE, text(&w.action))
                .set(DETAIL, Value::Text(json))
                .set(DECISION, text(&w.action))
                .set(MESSAGE, text(&w.detail))
        }
        // The action in `phase`, the result in `outcome`, the detail in `message`.
        AuditEvent::Mfa(m) => Row::new(
            "mfa",
            m.at,
            &m.session_id,
            &m.user,
            &m.resource,
            &m.client_addr,
        )
        .set(PHASE, text(&m.action))
        .set(OUTCOME, text(&m.result))
        .set(MESSAGE, opt_text(m.detail.as_deref())),
    };
    Ok(row.0)
}

/// The policy trail goes into the `detail` column as JSON: read back whole, searched with LIKE.
fn encode_trail(trail: &PolicyTrail) -> Result<String, StoreError> {
    serde_json::to_string(trail)
        .map_err(|e| StoreError::AuditWrite(format!("cannot encode the policy trail: {e}")))
}

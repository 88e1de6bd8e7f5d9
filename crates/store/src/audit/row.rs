//! An event as a row of `audit_events`: what the index inserts and what `verify` compares it with.

use rusqlite::types::Value;

use super::event::{AuditEvent, PolicyTrail};
use crate::error::StoreError;

/// The columns an event fills, in [`VALUES`] order.
pub(crate) const COLUMNS: &str = "kind, at, session_id, user_name, resource, client_addr, \
    phase, auth_result, tls, application_name, bytes_in, bytes_out, detail, \
    statement_text, statement_kind, objects, object_names, param_count, row_count, duration_us, \
    decision, outcome, sqlstate, message";

pub(crate) const INSERT: &str = "INSERT INTO audit_events (seq, kind, at, session_id, user_name, \
    resource, client_addr, phase, auth_result, tls, application_name, bytes_in, bytes_out, detail, \
    statement_text, statement_kind, objects, object_names, param_count, row_count, duration_us, \
    decision, outcome, sqlstate, message) VALUES \
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
    ?21, ?22, ?23, ?24, ?25) ON CONFLICT (seq) DO NOTHING";

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

/// The row of `event`, in [`COLUMNS`] order.
pub(crate) fn row(event: &AuditEvent) -> Result<[Value; WIDTH], StoreError> {
    use Value::Null;
    Ok(match event {
        AuditEvent::Connection(c) => [
            text("connection"),
            Value::Integer(c.at),
            text(&c.session_id),
            text(&c.user),
            text(&c.resource),
            text(&c.client_addr),
            text(c.phase.as_str()),
            text(&c.auth_result),
            Value::Integer(i64::from(c.tls)),
            opt_text(c.application_name.as_deref()),
            sat(c.bytes_in),
            sat(c.bytes_out),
            opt_text(c.detail.as_deref()),
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
        ],
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
            [
                text("statement"),
                Value::Integer(s.at),
                text(&s.session_id),
                text(&s.user),
                text(&s.resource),
                text(&s.client_addr),
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                s.policy
                    .as_ref()
                    .map(encode_trail)
                    .transpose()?
                    .map_or(Null, Value::Text),
                text(&s.text),
                text(&s.kind),
                Value::Text(objects),
                Value::Text(object_names),
                Value::Integer(i64::from(s.param_count)),
                s.rows.map_or(Null, sat),
                sat(s.duration_us),
                text(&s.decision),
                text(&s.outcome),
                opt_text(s.sqlstate.as_deref()),
                opt_text(s.message.as_deref()),
            ]
        }
        AuditEvent::Decision(d) => [
            text("decision"),
            Value::Integer(d.at),
            text(&d.session_id),
            text(&d.user),
            text(&d.resource),
            text(&d.client_addr),
            text(&d.policy.stage),
            Null,
            Null,
            Null,
            Null,
            Null,
            Value::Text(encode_trail(&d.policy)?),
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            text(&d.policy.result),
            Null,
            Null,
            text(&d.policy.reason),
        ],
        AuditEvent::Workflow(w) => {
            // The whole event as JSON in `detail`; the shared columns let the usual filters find it.
            let json = serde_json::to_string(w).map_err(|e| {
                StoreError::AuditWrite(format!("cannot encode workflow event: {e}"))
            })?;
            [
                text("workflow"),
                Value::Integer(w.at),
                text(&w.session_id),
                text(&w.user),
                text(&w.resource),
                text(""),
                text(&w.action),
                Null,
                Null,
                Null,
                Null,
                Null,
                Value::Text(json),
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                text(&w.action),
                Null,
                Null,
                text(&w.detail),
            ]
        }
        // The action in `phase`, the result in `outcome`, the detail in `message`.
        AuditEvent::Mfa(m) => [
            text("mfa"),
            Value::Integer(m.at),
            text(&m.session_id),
            text(&m.user),
            text(&m.resource),
            text(&m.client_addr),
            text(&m.action),
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            Null,
            text(&m.result),
            Null,
            opt_text(m.detail.as_deref()),
        ],
    })
}

/// The policy trail goes into the `detail` column as JSON: read back whole, searched with LIKE.
fn encode_trail(trail: &PolicyTrail) -> Result<String, StoreError> {
    serde_json::to_string(trail)
        .map_err(|e| StoreError::AuditWrite(format!("cannot encode the policy trail: {e}")))
}

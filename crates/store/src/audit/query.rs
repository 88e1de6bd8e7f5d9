//! Reading the audit log back with filters.

use rusqlite::types::Value;
use rusqlite::Row;

use super::event::{
    AuditEvent, AuditObject, AuditRecord, ConnectionEvent, DecisionEvent, MfaEvent, PolicyTrail,
    StatementEvent, WorkflowEvent,
};
use crate::error::StoreError;
use crate::{Result, Store};

/// Which event kinds a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditKindFilter {
    /// Connection events only.
    Connections,
    /// Statement events only.
    Statements,
    /// MFA events only (enrolments, verifications, holds).
    Mfa,
    /// Policy monitor records: connection-stage decisions and statement events.
    Monitor,
    /// Approval request steps (requested, endorsed, approved, rejected, expired, used).
    Workflows,
    /// Everything.
    #[default]
    All,
}

/// Conditions on audit records; all given conditions must hold. Statement-only conditions
/// (`text_contains`, `object`, `decision`) exclude connection events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact gateway user name.
    pub user: Option<String>,
    /// Exact resource name.
    pub resource: Option<String>,
    /// Exact session id.
    pub session_id: Option<String>,
    /// `at >= since` (unix microseconds).
    pub since: Option<i64>,
    /// `at < until` (unix microseconds).
    pub until: Option<i64>,
    /// Statement text contains this (ASCII case-insensitive).
    pub text_contains: Option<String>,
    /// Some object name contains this (ASCII case-insensitive).
    pub object: Option<String>,
    /// Event kinds; `None` means all.
    pub kind: Option<AuditKindFilter>,
    /// Exact decision, "allow" or "deny" (or "require-approval" for connection-stage decisions).
    pub decision: Option<String>,
    /// A rule or policy with this exact id decided.
    pub rule: Option<String>,
    /// Only policy decisions of this stage: `pre-connection`, `post-connection` or `statement`.
    pub stage: Option<String>,
    /// At most this many records, the newest ones; 0 means no limit.
    pub limit: usize,
}

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter {
            user: None,
            resource: None,
            session_id: None,
            since: None,
            until: None,
            text_contains: None,
            object: None,
            kind: None,
            decision: None,
            rule: None,
            stage: None,
            limit: 100,
        }
    }
}

/// `%` and `_` in user text are literal; `\` is the escape character.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

const COLUMNS: &str = "id, kind, at, session_id, user_name, resource, client_addr, \
    phase, auth_result, tls, application_name, bytes_in, bytes_out, detail, \
    statement_text, statement_kind, objects, param_count, row_count, duration_us, \
    decision, outcome, sqlstate, message";

fn build_query(filter: &AuditFilter) -> (String, Vec<Value>) {
    let mut conds: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    // Placeholders are positional (`?`), so conditions and arguments are pushed in the same order.
    if let Some(user) = &filter.user {
        conds.push("user_name = ?");
        args.push(Value::Text(user.clone()));
    }
    if let Some(resource) = &filter.resource {
        conds.push("resource = ?");
        args.push(Value::Text(resource.clone()));
    }
    if let Some(session) = &filter.session_id {
        conds.push("session_id = ?");
        args.push(Value::Text(session.clone()));
    }
    if let Some(since) = filter.since {
        conds.push("at >= ?");
        args.push(Value::Integer(since));
    }
    if let Some(until) = filter.until {
        conds.push("at < ?");
        args.push(Value::Integer(until));
    }
    if let Some(text) = &filter.text_contains {
        conds.push("statement_text LIKE ? ESCAPE '\\'");
        args.push(Value::Text(like_pattern(text)));
    }
    if let Some(object) = &filter.object {
        conds.push("object_names LIKE ? ESCAPE '\\'");
        args.push(Value::Text(like_pattern(object)));
    }
    match filter.kind.unwrap_or_default() {
        AuditKindFilter::Connections => conds.push("kind = 'connection'"),
        AuditKindFilter::Statements => conds.push("kind = 'statement'"),
        AuditKindFilter::Workflows => conds.push("kind = 'workflow'"),
        AuditKindFilter::Mfa => conds.push("kind = 'mfa'"),
        // A statement's decision is its trail in `detail`; one refused before analysis has none.
        AuditKindFilter::Monitor => {
            conds.push("(kind = 'decision' OR (kind = 'statement' AND detail IS NOT NULL))")
        }
        AuditKindFilter::All => {}
    }
    if let Some(decision) = &filter.decision {
        conds.push("decision = ?");
        args.push(Value::Text(decision.clone()));
    }
    match filter.stage.as_deref() {
        None => {}
        Some("statement") => conds.push("kind = 'statement' AND detail IS NOT NULL"),
        // Connection-stage decisions keep their stage in `phase`.
        Some(stage) => {
            conds.push("kind = 'decision' AND phase = ?");
            args.push(Value::Text(stage.to_owned()));
        }
    }
    if let Some(rule) = &filter.rule {
        // The trail is JSON in `detail`; an id appears there exactly as `"id":"<json string>"`.
        let quoted = serde_json::to_string(rule).unwrap_or_default();
        conds.push("detail LIKE ? ESCAPE '\\'");
        args.push(Value::Text(like_pattern(&format!("\"id\":{quoted}"))));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events");
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(" ORDER BY id DESC");
    if filter.limit > 0 {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(
            i64::try_from(filter.limit).unwrap_or(i64::MAX),
        ));
    }
    (sql, args)
}

fn unsigned<T: TryFrom<i64>>(column: &str, id: i64, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("audit record {id}: {column} = {v}")))
}

fn record_from_row(r: &Row<'_>) -> Result<AuditRecord> {
    let id: i64 = r.get(0)?;
    let kind: String = r.get(1)?;
    let missing = |col: &str| StoreError::Corrupt(format!("audit record {id}: {col} is NULL"));
    let event = match kind.as_str() {
        "connection" => {
            let phase: Option<String> = r.get(7)?;
            let bytes_in: Option<i64> = r.get(11)?;
            let bytes_out: Option<i64> = r.get(12)?;
            AuditEvent::Connection(ConnectionEvent {
                at: r.get(2)?,
                session_id: r.get(3)?,
                user: r.get(4)?,
                resource: r.get(5)?,
                client_addr: r.get(6)?,
                phase: phase
                    .ok_or_else(|| missing("phase"))?
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("audit record {id}: {e}")))?,
                auth_result: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                tls: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
                application_name: r.get(10)?,
                bytes_in: unsigned("bytes_in", id, bytes_in.unwrap_or(0))?,
                bytes_out: unsigned("bytes_out", id, bytes_out.unwrap_or(0))?,
                detail: r.get(13)?,
            })
        }
        "statement" => {
            let objects: Option<String> = r.get(16)?;
            let objects: Vec<AuditObject> = match objects {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("audit record {id}: objects: {e}")))?,
                None => Vec::new(),
            };
            let param_count: Option<i64> = r.get(17)?;
            let rows: Option<i64> = r.get(18)?;
            let duration: Option<i64> = r.get(19)?;
            AuditEvent::Statement(StatementEvent {
                at: r.get(2)?,
                session_id: r.get(3)?,
                user: r.get(4)?,
                resource: r.get(5)?,
                client_addr: r.get(6)?,
                text: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                kind: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
                objects,
                param_count: unsigned("param_count", id, param_count.unwrap_or(0))?,
                rows: rows.map(|v| unsigned("row_count", id, v)).transpose()?,
                duration_us: unsigned("duration_us", id, duration.unwrap_or(0))?,
                decision: r.get::<_, Option<String>>(20)?.unwrap_or_default(),
                outcome: r.get::<_, Option<String>>(21)?.unwrap_or_default(),
                sqlstate: r.get(22)?,
                message: r.get(23)?,
                policy: trail(id, r.get(13)?)?,
            })
        }
        "decision" => AuditEvent::Decision(DecisionEvent {
            at: r.get(2)?,
            session_id: r.get(3)?,
            user: r.get(4)?,
            resource: r.get(5)?,
            client_addr: r.get(6)?,
            policy: trail(id, r.get(13)?)?.ok_or_else(|| missing("detail"))?,
        }),
        "workflow" => {
            let json: Option<String> = r.get(13)?;
            let event: WorkflowEvent =
                serde_json::from_str(&json.ok_or_else(|| missing("detail"))?).map_err(|e| {
                    StoreError::Corrupt(format!("audit record {id}: workflow event: {e}"))
                })?;
            AuditEvent::Workflow(event)
        }
        "mfa" => AuditEvent::Mfa(MfaEvent {
            at: r.get(2)?,
            session_id: r.get(3)?,
            user: r.get(4)?,
            resource: r.get(5)?,
            client_addr: r.get(6)?,
            action: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            result: r.get::<_, Option<String>>(21)?.unwrap_or_default(),
            detail: r.get(23)?,
        }),
        other => {
            return Err(StoreError::Corrupt(format!(
                "audit record {id}: unknown kind {other:?}"
            )))
        }
    };
    Ok(AuditRecord { id, event })
}

fn trail(id: i64, json: Option<String>) -> Result<Option<PolicyTrail>> {
    json.map(|json| {
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("audit record {id}: policy trail: {e}")))
    })
    .transpose()
}

impl Store {
    /// Audit records matching `filter`, newest first.
    pub fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let (sql, args) = build_query(filter);
        let mut conn = self.conn();
        self.catch_up_index(&mut conn);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(record_from_row(row)?);
        }
        Ok(out)
    }
}

impl Store {
    /// The audit record with this id.
    pub fn audit_record(&self, id: i64) -> Result<Option<AuditRecord>> {
        let mut conn = self.conn();
        self.catch_up_index(&mut conn);
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM audit_events WHERE id = ?1"))?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some(record_from_row(row)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}

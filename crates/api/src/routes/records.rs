//! The audit log and the policy monitor (auditor): the same filters as `portcullis audit` and
//! `portcullis monitor`, on the same store query.

use axum::extract::State;
use axum::Json;
use portcullis_store::{AuditEvent, AuditFilter, AuditKindFilter, AuditRecord};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Reader;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Params, Query};
use crate::state::ApiState;

/// The most records one query returns.
const MAX_LIMIT: usize = 10_000;

/// An audit record: `id`, `type` (connection, statement, decision, workflow, mfa) and the event's
/// fields, as `portcullis audit --json` prints them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct RecordView(pub AuditRecord);

/// Audit event kinds.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Connections (opened, closed, rejected; API logins too).
    Connections,
    /// Statements.
    Statements,
    /// Approval request steps.
    Workflows,
    /// MFA events.
    Mfa,
}

/// `GET /api/v1/audit` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this gateway user.
    pub user: Option<String>,
    /// Only this resource.
    pub resource: Option<String>,
    /// From this time on: RFC 3339, or relative (`15m`, `2h`, `1d`).
    pub since: Option<String>,
    /// Up to this time (same forms).
    pub until: Option<String>,
    /// At most this many records, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Statement text contains this.
    pub text: Option<String>,
    /// Touches an object whose name contains this.
    pub object: Option<String>,
    /// Only this kind of event.
    pub kind: Option<Kind>,
    /// Only this decision (`allow`, `deny`).
    pub decision: Option<String>,
    /// Only records of this session id.
    pub session: Option<String>,
}

/// `GET /api/v1/monitor` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonitorQuery {
    /// Only this gateway user.
    pub user: Option<String>,
    /// Only this resource.
    pub resource: Option<String>,
    /// From this time on: RFC 3339, or relative (`15m`, `2h`, `1d`).
    pub since: Option<String>,
    /// Up to this time (same forms).
    pub until: Option<String>,
    /// At most this many records, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Only this result: `allow`, `deny` or `require-approval`.
    pub result: Option<String>,
    /// Only decisions this rule or policy id took part in.
    pub rule: Option<String>,
    /// Only this stage: `pre-connection`, `post-connection` or `statement`.
    pub stage: Option<String>,
}

/// Unix microseconds of RFC 3339 text or of a duration back from `now` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(text: &str, now: OffsetDateTime) -> Result<i64, String> {
    let at = if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        at
    } else {
        // Split before the last character, not byte: the text is whatever the caller sent.
        let cut = text.char_indices().last().map_or(0, |(i, _)| i);
        let (number, unit) = text.split_at(cut);
        let n: i64 = number.parse().map_err(|_| {
            format!("{text:?}: expected RFC 3339 (2026-11-23T10:00:00Z) or a duration like 15m")
        })?;
        let seconds = match unit {
            "s" => Some(n),
            "m" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            "d" => n.checked_mul(86_400),
            _ => return Err(format!("{text:?}: a relative time ends in s, m, h or d")),
        };
        seconds
            .and_then(|s| now.checked_sub(Duration::seconds(s)))
            .ok_or_else(|| format!("{text:?}: too far back"))?
    };
    Ok(i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX))
}

fn common(
    user: Option<String>,
    resource: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
) -> ApiResult<AuditFilter> {
    let now = OffsetDateTime::now_utc();
    let time = |t: Option<String>, name: &str| {
        t.map(|t| parse_time(&t, now).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    Ok(AuditFilter {
        user,
        resource,
        since: time(since, "since")?,
        until: time(until, "until")?,
        limit: limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        ..AuditFilter::default()
    })
}

/// Audit records, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "records", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<RecordView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<ApiState>,
    _: Reader,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<RecordView>>> {
    let filter = AuditFilter {
        text_contains: q.text,
        object: q.object,
        kind: q.kind.map(|k| match k {
            Kind::Connections => AuditKindFilter::Connections,
            Kind::Statements => AuditKindFilter::Statements,
            Kind::Workflows => AuditKindFilter::Workflows,
            Kind::Mfa => AuditKindFilter::Mfa,
        }),
        decision: q.decision,
        session_id: q.session,
        ..common(q.user, q.resource, q.since, q.until, q.limit)?
    };
    state
        .blocking(move |store, _| {
            let records = store.query_audit(&filter)?.into_iter();
            Ok(Json(records.map(RecordView).collect()))
        })
        .await
}

/// One audit record.
#[utoipa::path(get, path = "/api/v1/audit/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = i64, Path, description = "record id")),
    responses((status = 200, body = RecordView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn record(
    State(state): State<ApiState>,
    _: Reader,
    Params(id): Params<i64>,
) -> ApiResult<Json<RecordView>> {
    state
        .blocking(move |store, _| match store.audit_record(id)? {
            Some(record) => Ok(Json(RecordView(record))),
            None => Err(ApiError::not_found(format!(
                "there is no audit record {id}"
            ))),
        })
        .await
}

/// Policy monitor records (every decision and why), newest first.
#[utoipa::path(get, path = "/api/v1/monitor", tag = "records", security(("bearer" = [])), params(MonitorQuery),
    responses((status = 200, body = Vec<RecordView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn monitor(
    State(state): State<ApiState>,
    _: Reader,
    Query(q): Query<MonitorQuery>,
) -> ApiResult<Json<Vec<RecordView>>> {
    let filter = AuditFilter {
        kind: Some(AuditKindFilter::Monitor),
        decision: q.result,
        rule: q.rule,
        stage: q.stage,
        ..common(q.user, q.resource, q.since, q.until, q.limit)?
    };
    state
        .blocking(move |store, _| {
            let records = store.query_audit(&filter)?.into_iter();
            let decided = records.filter(|r| match &r.event {
                AuditEvent::Statement(s) => s.policy.is_some(),
                other => matches!(other, AuditEvent::Decision(_)),
            });
            Ok(Json(decided.map(RecordView).collect()))
        })
        .await
}

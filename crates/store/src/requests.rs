//! Approval requests and their endorsements: on-demand access (a grant for a while), held statements
//! (query approval), held connections (connection-stage approval) and reservations (a connection
//! window). The store only keeps them; the rules of the flow (who may endorse, how many approvals,
//! expiry) live in `portcullis-workflows`. Times are Unix milliseconds.

use std::str::FromStr;

use rusqlite::{OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::error::{is_unique_violation, StoreError};
use crate::{validate_name, Result, Store};

/// What is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Access to a resource (a bundle, or objects and privileges) for a while.
    Access,
    /// Running one exact statement.
    Query,
    /// Connecting to a resource (a post-connection rule or permit requires approval).
    Connection,
    /// Connecting to a resource during a window (the resource requires a reservation).
    Reservation,
}

/// Where a request stands. Everything but `Pending` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for endorsements.
    Pending,
    /// Approved by enough approvers.
    Approved,
    /// Rejected by an approver, or by the gateway when nobody decided in time (`on_timeout: reject`).
    Rejected,
    /// Nobody decided in time.
    Expired,
}

/// An approver's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndorsementDecision {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
}

macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident => $text:literal),+) => {
        impl $ty {
            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(StoreError::Corrupt(format!(concat!("unknown ", $what, " {:?}"), other))),
                }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(RequestKind, "request kind", Access => "access", Query => "query", Connection => "connection", Reservation => "reservation");
text_enum!(RequestStatus, "request status", Pending => "pending", Approved => "approved", Rejected => "rejected", Expired => "expired");
text_enum!(EndorsementDecision, "endorsement decision", Approve => "approve", Reject => "reject");

/// What an access request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessDetail {
    /// The on-demand bundle, when one was requested.
    pub bundle: Option<String>,
    /// Object patterns (as policy files write them).
    pub objects: Vec<String>,
    /// Privilege names (as policy files write them).
    pub privileges: Vec<String>,
    /// How long the grant lasts once approved.
    pub duration_ms: i64,
}

/// The statement a query request holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryDetail {
    /// The exact statement text.
    pub text: String,
    /// Hex SHA-256 of `text`: the key an approval is looked up by.
    pub sha256: String,
    /// What the statement does, for the approver (`delete public.orders; statement DELETE`).
    pub summary: String,
}

/// The connection window a reservation asks for; from inclusive, until exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReservationWindow {
    /// When connections may start.
    pub from: i64,
    /// When the window closes (and sessions in it end).
    pub until: i64,
}

/// A request to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Access or query.
    pub kind: RequestKind,
    /// Who asks.
    pub requester: String,
    /// On which resource.
    pub resource: String,
    /// The workflow that decides.
    pub workflow: String,
    /// Why (the requester's reason, or the policy's for a held statement).
    pub reason: String,
    /// When it is made (the caller's clock, which tests move).
    pub created_at: i64,
    /// When it expires if still pending.
    pub expires_at: i64,
    /// For access requests.
    pub access: Option<AccessDetail>,
    /// For query requests.
    pub query: Option<QueryDetail>,
    /// For reservations.
    pub window: Option<ReservationWindow>,
}

/// One approver's endorsement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endorsement {
    /// Who.
    pub approver: String,
    /// Approve or reject.
    pub decision: EndorsementDecision,
    /// When.
    pub at: i64,
    /// What they said.
    pub comment: Option<String>,
}

/// A stored request with its endorsements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// Its number, quoted to users (`portcullis approve 17`).
    pub id: i64,
    /// Access or query.
    pub kind: RequestKind,
    /// Who asked.
    pub requester: String,
    /// On which resource.
    pub resource: String,
    /// The workflow that decides.
    pub workflow: String,
    /// Why.
    pub reason: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was made.
    pub created_at: i64,
    /// When it expires if still pending.
    pub expires_at: i64,
    /// When it was approved, rejected or expired.
    pub decided_at: Option<i64>,
    /// For access requests.
    pub access: Option<AccessDetail>,
    /// For query requests.
    pub query: Option<QueryDetail>,
    /// For reservations.
    pub window: Option<ReservationWindow>,
    /// When its workflow's escalation approvers joined (`escalate_after` passed while it was pending).
    pub escalated_at: Option<i64>,
    /// Once approved: the grant (access), the approval (query, connection) or the window (reservation)
    /// lasts until then.
    pub valid_until: Option<i64>,
    /// Endorsements so far, oldest first.
    pub endorsements: Vec<Endorsement>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only this status.
    pub status: Option<RequestStatus>,
    /// Only this requester's.
    pub requester: Option<String>,
}

/// How an endorsement concludes a request, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conclusion {
    /// Approved or rejected.
    pub status: RequestStatus,
    /// For an approval: until when it lasts.
    pub valid_until: Option<i64>,
}

const COLUMNS: &str = "id, kind, requester, resource, workflow, reason, status, created_at, expires_at, \
    decided_at, bundle, objects, privileges, duration_ms, statement_text, statement_sha256, summary, \
    valid_until, window_from, window_until, escalated_at";

fn strings(id: i64, json: Option<String>) -> rusqlite::Result<Vec<String>> {
    match json {
        None => Ok(Vec::new()),
        Some(j) => serde_json::from_str(&j).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("request {id}: {e}").into(),
            )
        }),
    }
}

pub(crate) fn parse<T: FromStr<Err = StoreError>>(text: String) -> rusqlite::Result<T> {
    text.parse().map_err(|e: StoreError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn request_from_row(r: &Row<'_>) -> rusqlite::Result<Request> {
    let id: i64 = r.get(0)?;
    let kind: RequestKind = parse(r.get(1)?)?;
    let access = match kind {
        RequestKind::Access => Some(AccessDetail {
            bundle: r.get(10)?,
            objects: strings(id, r.get(11)?)?,
            privileges: strings(id, r.get(12)?)?,
            duration_ms: r.get::<_, Option<i64>>(13)?.unwrap_or(0),
        }),
        _ => None,
    };
    let query = match kind {
        RequestKind::Query => Some(QueryDetail {
            text: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
            sha256: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
            summary: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
        }),
        _ => None,
    };
    let window = match (r.get::<_, Option<i64>>(18)?, r.get::<_, Option<i64>>(19)?) {
        (Some(from), Some(until)) => Some(ReservationWindow { from, until }),
        _ => None,
    };
    Ok(Request {
        id,
        kind,
        requester: r.get(2)?,
        resource: r.get(3)?,
        workflow: r.get(4)?,
        reason: r.get(5)?,
        status: parse(r.get(6)?)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        decided_at: r.get(9)?,
        access,
        query,
        window,
        escalated_at: r.get(20)?,
        valid_until: r.get(17)?,
        endorsements: Vec::new(),
    })
}

fn endorsements_of(conn: &rusqlite::Connection, id: i64) -> Result<Vec<Endorsement>> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver, decision, at, comment FROM endorsements WHERE request_id = ?1 ORDER BY at, approver",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Endorsement {
            approver: r.get(0)?,
            decision: parse(r.get(1)?)?,
            at: r.get(2)?,
            comment: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// Stores a new pending request and returns it.
    pub fn create_request(&self, new: &NewRequest) -> Result<Request> {
        validate_name("user name", &new.requester)?;
        validate_name("resource name", &new.resource)?;
        let invalid = |reason: &str| StoreError::Invalid {
            what: "request",
            reason: reason.to_owned(),
        };
        match (new.kind, &new.access, &new.query, &new.window) {
            (RequestKind::Access, Some(_), None, None)
            | (RequestKind::Query, None, Some(_), None)
            | (RequestKind::Connection, None, None, None) => {}
            (RequestKind::Reservation, None, None, Some(w)) if w.from < w.until => {}
            _ => {
                return Err(invalid(
                    "an access request needs access details, a query request the statement, a reservation \
                     a window that ends after it starts, and a connection request none of them",
                ))
            }
        }
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let conn = self.conn();
        conn.execute(
            "INSERT INTO requests (kind, requester, resource, workflow, reason, status, created_at, expires_at, \
             bundle, objects, privileges, duration_ms, statement_text, statement_sha256, summary, \
             window_from, window_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            rusqlite::params![
                new.kind.as_str(),
                new.requester,
                new.resource,
                new.workflow,
                new.reason,
                new.created_at,
                new.expires_at,
                new.access.as_ref().and_then(|a| a.bundle.clone()),
                new.access.as_ref().map(|a| json(&a.objects)),
                new.access.as_ref().map(|a| json(&a.privileges)),
                new.access.as_ref().map(|a| a.duration_ms),
                new.query.as_ref().map(|q| q.text.clone()),
                new.query.as_ref().map(|q| q.sha256.clone()),
                new.query.as_ref().map(|q| q.summary.clone()),
                new.window.map(|w| w.from),
                new.window.map(|w| w.until),
            ],
        )?;
        let id = conn.last_insert_rowid();
        drop(conn);
        self.request(id)?.ok_or_else(|| StoreError::NotFound {
            kind: "request",
            name: id.to_string(),
        })
    }

    /// The request with this id, with its endorsements.
    pub fn request(&self, id: i64) -> Result<Option<Request>> {
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"),
                [id],
                request_from_row,
            )
            .optional()?;
        match found {
            Some(mut request) => {
                request.endorsements = endorsements_of(&conn, id)?;
                Ok(Some(request))
            }
            None => Ok(None),
        }
    }

    /// Requests matching `filter`, newest first, with their endorsements.
    pub fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM requests WHERE (?1 IS NULL OR status = ?1) \
             AND (?2 IS NULL OR requester = ?2) ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![filter.status.map(|s| s.as_str()), filter.requester],
            request_from_row,
        )?;
        let mut requests = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for request in &mut requests {
            request.endorsements = endorsements_of(&conn, request.id)?;
        }
        Ok(requests)
    }

    /// The newest request of `kind` by `requester` on `resource` via `workflow` that has `status`, for
    /// the statement with hash `sha256` (query requests) or the connection itself (`None`: connection
    /// requests); for `Approved`, only one still valid at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn find_held_request(
        &self,
        kind: RequestKind,
        requester: &str,
        resource: &str,
        sha256: Option<&str>,
        workflow: &str,
        status: RequestStatus,
        now: i64,
    ) -> Result<Option<Request>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM requests WHERE kind = ?7 AND requester = ?1 AND resource = ?2 \
                     AND statement_sha256 IS ?3 AND workflow = ?4 AND status = ?5 \
                     AND (status <> 'approved' OR valid_until > ?6) ORDER BY id DESC LIMIT 1"
                ),
                rusqlite::params![
                    requester,
                    resource,
                    sha256,
                    workflow,
                    status.as_str(),
                    now,
                    kind.as_str()
                ],
                request_from_row,
            )
            .optional()?)
    }

    /// The approved reservation of `requester` on `resource` whose window covers `now`, the one that
    /// closes last when several do.
    pub fn covering_reservation(
        &self,
        requester: &str,
        resource: &str,
        now: i64,
    ) -> Result<Option<Request>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM requests WHERE kind = 'reservation' AND requester = ?1 \
                     AND resource = ?2 AND status = 'approved' AND window_from <= ?3 AND window_until > ?3 \
                     ORDER BY window_until DESC LIMIT 1"
                ),
                rusqlite::params![requester, resource, now],
                request_from_row,
            )
            .optional()?)
    }

    /// Records `endorsement` of pending request `id`, and concludes it when `conclusion` says so, in one
    /// transaction. Refused when the request is not pending (any more) or the approver already endorsed.
    pub fn endorse(
        &self,
        id: i64,
        endorsement: &Endorsement,
        conclusion: Option<Conclusion>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM requests WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match status.as_deref() {
            None => {
                return Err(StoreError::NotFound {
                    kind: "request",
                    name: id.to_string(),
                })
            }
            Some("pending") => {}
            Some(other) => {
                return Err(StoreError::Invalid {
                    what: "endorsement",
                    reason: format!("request {id} is {other}, and its decision is final"),
                })
            }
        }
        tx.execute(
            "INSERT INTO endorsements (request_id, approver, decision, at, comment) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                id,
                endorsement.approver,
                endorsement.decision.as_str(),
                endorsement.at,
                endorsement.comment
            ],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    kind: "endorsement",
                    name: format!("of request {id} by {}", endorsement.approver),
                }
            } else {
                e.into()
            }
        })?;
        if let Some(c) = conclusion {
            tx.execute(
                "UPDATE requests SET status = ?2, decided_at = ?3, valid_until = ?4 WHERE id = ?1",
                rusqlite::params![id, c.status.as_str(), endorsement.at, c.valid_until],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Concludes every pending request whose `expires_at` is at or before `now` and returns them: those of
    /// the workflows in `reject` are rejected (`on_timeout: reject`), the others expire.
    pub fn expire_requests(&self, now: i64, reject: &[&str]) -> Result<Vec<Request>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let expired = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM requests WHERE status = 'pending' AND expires_at <= ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([now], request_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut update =
            tx.prepare("UPDATE requests SET status = ?2, decided_at = ?3 WHERE id = ?1")?;
        let mut concluded = Vec::with_capacity(expired.len());
        for mut request in expired {
            request.status = if reject.contains(&request.workflow.as_str()) {
                RequestStatus::Rejected
            } else {
                RequestStatus::Expired
            };
            request.decided_at = Some(now);
            update.execute(rusqlite::params![request.id, request.status.as_str(), now])?;
            concluded.push(request);
        }
        drop(update);
        tx.commit()?;
        Ok(concluded)
    }

    /// Marks pending requests that `escalate_after(workflow)` says are due for escalation at `now` as
    /// escalated (once each) and returns them.
    pub fn escalate_requests(
        &self,
        now: i64,
        escalate_after: impl Fn(&str) -> Option<i64>,
    ) -> Result<Vec<Request>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM requests WHERE status = 'pending' AND escalated_at IS NULL ORDER BY id"
            ))?;
            let rows = stmt.query_map([], request_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut update = tx.prepare("UPDATE requests SET escalated_at = ?2 WHERE id = ?1")?;
        let mut escalated = Vec::new();
        for mut request in due {
            let Some(after) = escalate_after(&request.workflow) else {
                continue;
            };
            if request.created_at.saturating_add(after) > now {
                continue;
            }
            update.execute(rusqlite::params![request.id, now])?;
            request.escalated_at = Some(now);
            escalated.push(request);
        }
        drop(update);
        tx.commit()?;
        Ok(escalated)
    }

    /// Approved access requests whose grant is still valid at `now`.
    pub fn active_access_requests(&self, now: i64) -> Result<Vec<Request>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM requests WHERE kind = 'access' AND status = 'approved' AND valid_until > ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([now], request_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A number that changes whenever an access request is approved: gateways poll it (with the policy
    /// version) to add new grants within a second. Approvals are final, so a count is enough.
    pub fn access_grants_version(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM requests WHERE kind = 'access' AND status = 'approved'",
            [],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{now_millis, Durability, MasterKey};

    fn query(text: &str, expires_at: i64) -> NewRequest {
        NewRequest {
            kind: RequestKind::Query,
            requester: "alice".into(),
            resource: "app".into(),
            workflow: "dba".into(),
            reason: "deletes are reviewed".into(),
            created_at: 0,
            expires_at,
            access: None,
            query: Some(QueryDetail {
                text: text.into(),
                sha256: format!("sha-of-{text}"),
                summary: "delete public.t".into(),
            }),
            window: None,
        }
    }

    fn approve(approver: &str, at: i64) -> Endorsement {
        Endorsement {
            approver: approver.into(),
            decision: EndorsementDecision::Approve,
            at,
            comment: Some("ok".into()),
        }
    }

    #[test]
    fn requests_are_endorsed_once_concluded_finally_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        let far = now_millis() + 3_600_000;
        let r = store.create_request(&query("DELETE 1", far)).unwrap();
        assert_eq!(r.status, RequestStatus::Pending);
        let find = |status, now| {
            store
                .find_held_request(
                    RequestKind::Query,
                    "alice",
                    "app",
                    Some("sha-of-DELETE 1"),
                    "dba",
                    status,
                    now,
                )
                .unwrap()
                .map(|r| r.id)
        };
        assert_eq!(find(RequestStatus::Pending, 0), Some(r.id));
        assert_eq!(find(RequestStatus::Approved, 0), None);

        store.endorse(r.id, &approve("carol", 10), None).unwrap();
        assert!(matches!(
            store.endorse(r.id, &approve("carol", 11), None),
            Err(StoreError::AlreadyExists { .. })
        ));
        let approved = Conclusion {
            status: RequestStatus::Approved,
            valid_until: Some(1_000),
        };
        store
            .endorse(r.id, &approve("dave", 12), Some(approved))
            .unwrap();
        let stored = store.request(r.id).unwrap().unwrap();
        assert_eq!(stored.status, RequestStatus::Approved);
        assert_eq!(stored.decided_at, Some(12));
        assert_eq!(stored.endorsements.len(), 2);
        // Valid until 1000: found before, not after.
        assert_eq!(find(RequestStatus::Approved, 999), Some(r.id));
        assert_eq!(find(RequestStatus::Approved, 1_000), None);
        let e = store.endorse(r.id, &approve("erin", 13), None).unwrap_err();
        assert!(e.to_string().contains("is approved"), "{e}");

        let old = store.create_request(&query("DELETE 2", 5)).unwrap();
        let expired = store.expire_requests(5, &[]).unwrap();
        assert_eq!(expired.iter().map(|r| r.id).collect::<Vec<_>>(), [old.id]);
        assert!(store.expire_requests(5, &[]).unwrap().is_empty());
        let pending = store
            .list_requests(&RequestFilter {
                status: Some(RequestStatus::Pending),
                requester: None,
            })
            .unwrap();
        assert!(pending.is_empty());
        assert_eq!(
            store
                .list_requests(&RequestFilter::default())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.access_grants_version().unwrap(), 0);
        assert!(store
            .create_request(&NewRequest {
                access: None,
                query: None,
                ..query("x", far)
            })
            .is_err());
    }

    #[test]
    fn reservations_cover_their_window_and_timeouts_reject_or_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        let reservation = |workflow: &str, from, until| NewRequest {
            kind: RequestKind::Reservation,
            workflow: workflow.into(),
            reason: "release".into(),
            query: None,
            window: Some(ReservationWindow { from, until }),
            ..query("x", 100)
        };
        let r = store
            .create_request(&reservation("dba", 1_000, 2_000))
            .unwrap();
        assert_eq!(
            r.window,
            Some(ReservationWindow {
                from: 1_000,
                until: 2_000
            })
        );
        assert!(store
            .create_request(&reservation("dba", 2_000, 2_000))
            .is_err());
        let approved = Conclusion {
            status: RequestStatus::Approved,
            valid_until: Some(2_000),
        };
        store
            .endorse(r.id, &approve("carol", 10), Some(approved))
            .unwrap();
        let covering = |now| {
            store
                .covering_reservation("alice", "app", now)
                .unwrap()
                .map(|r| r.id)
        };
        assert_eq!(covering(999), None);
        assert_eq!(covering(1_000), Some(r.id));
        assert_eq!(covering(1_999), Some(r.id));
        assert_eq!(covering(2_000), None);

        let strict = store.create_request(&reservation("strict", 1, 5)).unwrap();
        let lax = store.create_request(&reservation("dba", 1, 5)).unwrap();
        // Escalation is due 50 ms after creation (created_at 0) for `strict` only, and happens once.
        let after = |w: &str| (w == "strict").then_some(50);
        assert!(store.escalate_requests(49, after).unwrap().is_empty());
        let escalated = store.escalate_requests(50, after).unwrap();
        assert_eq!(
            escalated.iter().map(|r| r.id).collect::<Vec<_>>(),
            [strict.id]
        );
        assert!(store.escalate_requests(60, after).unwrap().is_empty());
        assert_eq!(
            store.request(strict.id).unwrap().unwrap().escalated_at,
            Some(50)
        );

        let concluded = store.expire_requests(100, &["strict"]).unwrap();
        let statuses: Vec<(i64, RequestStatus)> =
            concluded.iter().map(|r| (r.id, r.status)).collect();
        assert_eq!(
            statuses,
            [
                (strict.id, RequestStatus::Rejected),
                (lax.id, RequestStatus::Expired)
            ]
        );
        assert_eq!(
            store.request(strict.id).unwrap().unwrap().status,
            RequestStatus::Rejected
        );

        let connection = NewRequest {
            kind: RequestKind::Connection,
            query: None,
            ..query("x", 10_000)
        };
        let c = store.create_request(&connection).unwrap();
        let find = |sha: Option<&str>, kind| {
            store
                .find_held_request(kind, "alice", "app", sha, "dba", RequestStatus::Pending, 0)
                .unwrap()
                .map(|r| r.id)
        };
        assert_eq!(find(None, RequestKind::Connection), Some(c.id));
        assert_eq!(find(None, RequestKind::Query), None);
    }
}

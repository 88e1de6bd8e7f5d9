//! Notifications of workflow steps. A notification is written when a request is filed or concluded: the
//! message, one inbox entry per recipient, and — once a gateway's delivery worker has read it against its
//! configuration — the outbox of e-mail and webhook deliveries, each retried until delivered or given up,
//! every attempt kept. The store only keeps them; rendering and delivery live in `portcullis-notify`.
//! Times are Unix milliseconds.

use rusqlite::{OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::requests::{parse, text_enum};
use crate::{Result, Store, StoreError};

/// A notification to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The request it is about.
    pub request_id: i64,
    /// The workflow step: `requested`, `approved`, `rejected` or `expired`.
    pub event: String,
    /// Who filed the request.
    pub requester: String,
    /// The request's resource.
    pub resource: String,
    /// The request's workflow.
    pub workflow: String,
    /// Gateway users it is for; each gets an inbox entry and, with an `email` attribute, an e-mail.
    pub recipients: Vec<String>,
    /// One line.
    pub subject: String,
    /// Plain text, for e-mail and chat.
    pub body: String,
    /// JSON object of the fields, for webhooks.
    pub payload: String,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Its id.
    pub id: i64,
    /// The request it is about.
    pub request_id: i64,
    /// The workflow step.
    pub event: String,
    /// Who filed the request.
    pub requester: String,
    /// The request's resource.
    pub resource: String,
    /// The request's workflow.
    pub workflow: String,
    /// Gateway users it is for.
    pub recipients: Vec<String>,
    /// One line.
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// JSON object of the fields.
    #[serde(skip)]
    pub payload: String,
    /// When it was written.
    pub created_at: i64,
}

/// One notification in a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxEntry {
    /// The notification.
    #[serde(flatten)]
    pub notification: Notification,
    /// When the user marked it read; `None` while unread.
    pub read_at: Option<i64>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up after the last attempt failed.
    Failed,
}

text_enum!(DeliveryStatus, "delivery status", Pending => "pending", Delivered => "delivered", Failed => "failed");

/// One e-mail or webhook delivery of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// `email` or `webhook`.
    pub channel: String,
    /// The e-mail address or the webhook's name.
    pub target: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it is due next (while pending).
    pub next_attempt_at: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// What is delivered.
    pub notification: Notification,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered.
    Delivered,
    /// Failed with this error; tried again at `retry_at`, or given up when `None`.
    Failed {
        /// What went wrong.
        error: String,
        /// When to try again.
        retry_at: Option<i64>,
    },
}

const NOTIFICATION_COLUMNS: &str =
    "n.id, n.request_id, n.event, n.requester, n.resource, n.workflow, \
    n.recipients, n.subject, n.body, n.payload, n.created_at";

/// Reads [`NOTIFICATION_COLUMNS`] starting at column `at`.
fn notification_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Notification> {
    let id: i64 = r.get(at)?;
    let recipients: String = r.get(at + 6)?;
    let recipients = serde_json::from_str(&recipients).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            at + 6,
            rusqlite::types::Type::Text,
            format!("notification {id}: {e}").into(),
        )
    })?;
    Ok(Notification {
        id,
        request_id: r.get(at + 1)?,
        event: r.get(at + 2)?,
        requester: r.get(at + 3)?,
        resource: r.get(at + 4)?,
        workflow: r.get(at + 5)?,
        recipients,
        subject: r.get(at + 7)?,
        body: r.get(at + 8)?,
        payload: r.get(at + 9)?,
        created_at: r.get(at + 10)?,
    })
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.channel, d.target, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at";

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        channel: r.get(1)?,
        target: r.get(2)?,
        status: parse(r.get(3)?)?,
        attempts: r.get(4)?,
        next_attempt_at: r.get(5)?,
        last_error: r.get(6)?,
        delivered_at: r.get(7)?,
        notification: notification_from_row(r, 8)?,
    })
}

impl Store {
    /// Writes a notification and its recipients' inbox entries, in one transaction; returns its id.
    pub fn add_notification(&self, new: &NewNotification, now: i64) -> Result<i64> {
        let recipients =
            serde_json::to_string(&new.recipients).map_err(|e| StoreError::Invalid {
                what: "notification",
                reason: e.to_string(),
            })?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO notifications (request_id, event, requester, resource, workflow, recipients, \
             subject, body, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                new.request_id,
                new.event,
                new.requester,
                new.resource,
                new.workflow,
                recipients,
                new.subject,
                new.body,
                new.payload,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        for user in &new.recipients {
            tx.execute(
                "INSERT OR IGNORE INTO notification_inbox (notification_id, user_name) VALUES (?1, ?2)",
                rusqlite::params![id, user],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// `user`'s notifications, unread first, then newest first; only unread ones when `unread_only`.
    pub fn inbox_notifications(
        &self,
        user: &str,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<InboxEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {NOTIFICATION_COLUMNS}, i.read_at FROM notification_inbox i \
             JOIN notifications n ON n.id = i.notification_id \
             WHERE i.user_name = ?1 AND (?2 = 0 OR i.read_at IS NULL) \
             ORDER BY i.read_at IS NOT NULL, n.id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(rusqlite::params![user, unread_only, limit], |r| {
            Ok(InboxEntry {
                notification: notification_from_row(r, 0)?,
                read_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Marks `user`'s notifications `ids` (all of them when `None`) read at `now`; returns how many were
    /// unread.
    pub fn mark_notifications_read(
        &self,
        user: &str,
        ids: Option<&[i64]>,
        now: i64,
    ) -> Result<usize> {
        let conn = self.conn();
        match ids {
            None => Ok(conn.execute(
                "UPDATE notification_inbox SET read_at = ?2 WHERE user_name = ?1 AND read_at IS NULL",
                rusqlite::params![user, now],
            )?),
            Some(ids) => {
                let mut stmt = conn.prepare_cached(
                    "UPDATE notification_inbox SET read_at = ?3 \
                     WHERE user_name = ?1 AND notification_id = ?2 AND read_at IS NULL",
                )?;
                let mut marked = 0;
                for id in ids {
                    marked += stmt.execute(rusqlite::params![user, id, now])?;
                }
                Ok(marked)
            }
        }
    }

    /// Notifications no delivery worker has planned deliveries for yet, oldest first.
    pub fn unplanned_notifications(&self, limit: u32) -> Result<Vec<Notification>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.fanned_out = 0 ORDER BY n.id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], |r| notification_from_row(r, 0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Plans notification `id`'s deliveries (`(channel, target)` pairs), due at `now`, in one transaction.
    /// Returns false, planning nothing, when another worker planned them first.
    pub fn plan_deliveries(
        &self,
        id: i64,
        deliveries: &[(String, String)],
        now: i64,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = tx.execute(
            "UPDATE notifications SET fanned_out = 1 WHERE id = ?1 AND fanned_out = 0",
            [id],
        )?;
        if claimed == 0 {
            return Ok(false);
        }
        for (channel, target) in deliveries {
            tx.execute(
                "INSERT INTO notification_deliveries (notification_id, channel, target, status, next_attempt_at) \
                 VALUES (?1, ?2, ?3, 'pending', ?4)",
                rusqlite::params![id, channel, target, now],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Takes up to `limit` pending deliveries due at `now` and pushes their next attempt to
    /// `now + lease_ms`, so no other worker takes them meanwhile and a crashed worker's are taken again.
    pub fn claim_due_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS}, {NOTIFICATION_COLUMNS} FROM notification_deliveries d \
                 JOIN notifications n ON n.id = d.notification_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at, d.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(rusqlite::params![now, limit], delivery_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for delivery in &due {
            tx.execute(
                "UPDATE notification_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                rusqlite::params![delivery.id, now.saturating_add(lease_ms)],
            )?;
        }
        tx.commit()?;
        Ok(due)
    }

    /// Records an attempt at delivery `id` made at `now` and where the delivery stands after it.
    /// Returns the attempt's number.
    pub fn record_delivery_attempt(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: i64,
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let attempts: i64 = tx
            .query_row(
                "SELECT attempts FROM notification_deliveries WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "notification delivery",
                name: id.to_string(),
            })?;
        let attempt = attempts + 1;
        let error = match outcome {
            DeliveryOutcome::Delivered => None,
            DeliveryOutcome::Failed { error, .. } => Some(error.as_str()),
        };
        tx.execute(
            "INSERT INTO notification_attempts (delivery_id, attempt, at, error) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, attempt, now, error],
        )?;
        match outcome {
            DeliveryOutcome::Delivered => tx.execute(
                "UPDATE notification_deliveries SET status = 'delivered', attempts = ?2, delivered_at = ?3 \
                 WHERE id = ?1",
                rusqlite::params![id, attempt, now],
            )?,
            DeliveryOutcome::Failed { error, retry_at } => tx.execute(
                "UPDATE notification_deliveries SET status = ?2, attempts = ?3, last_error = ?4, \
                 next_attempt_at = ?5 WHERE id = ?1",
                rusqlite::params![
                    id,
                    if retry_at.is_some() { "pending" } else { "failed" },
                    attempt,
                    error,
                    retry_at.unwrap_or(now)
                ],
            )?,
        };
        tx.commit()?;
        Ok(attempt)
    }

    /// The deliveries of request `request_id`'s notifications (all requests' when `None`), newest first.
    pub fn list_deliveries(&self, request_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS}, {NOTIFICATION_COLUMNS} FROM notification_deliveries d \
             JOIN notifications n ON n.id = d.notification_id \
             WHERE ?1 IS NULL OR n.request_id = ?1 ORDER BY d.id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(rusqlite::params![request_id, limit], delivery_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The errors of delivery `id`'s failed attempts, in order: `(attempt, at, error)`.
    pub fn delivery_errors(&self, id: i64) -> Result<Vec<(i64, i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT attempt, at, error FROM notification_attempts \
             WHERE delivery_id = ?1 AND error IS NOT NULL ORDER BY attempt",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, MasterKey};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.sqlite"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        (dir, store)
    }

    fn note(request_id: i64, recipients: &[&str]) -> NewNotification {
        NewNotification {
            request_id,
            event: "requested".into(),
            requester: "alice".into(),
            resource: "app".into(),
            workflow: "default".into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            subject: format!("request {request_id}"),
            body: "body".into(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn the_inbox_lists_unread_first_and_marks_read() {
        let (_dir, store) = store();
        let first = store
            .add_notification(&note(1, &["carol", "dave"]), 10)
            .unwrap();
        let second = store.add_notification(&note(2, &["carol"]), 20).unwrap();
        let third = store.add_notification(&note(3, &["carol"]), 30).unwrap();
        assert_eq!(
            store
                .mark_notifications_read("carol", Some(&[third]), 40)
                .unwrap(),
            1
        );
        let ids = |entries: Vec<InboxEntry>| -> Vec<i64> {
            entries.iter().map(|e| e.notification.id).collect()
        };
        assert_eq!(
            ids(store.inbox_notifications("carol", false, 10).unwrap()),
            [second, first, third]
        );
        assert_eq!(
            ids(store.inbox_notifications("carol", true, 10).unwrap()),
            [second, first]
        );
        assert_eq!(
            ids(store.inbox_notifications("dave", true, 10).unwrap()),
            [first]
        );
        assert_eq!(store.mark_notifications_read("carol", None, 50).unwrap(), 2);
        assert!(store
            .inbox_notifications("carol", true, 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn deliveries_are_planned_once_claimed_with_a_lease_and_retried() {
        let (_dir, store) = store();
        let id = store.add_notification(&note(1, &["carol"]), 10).unwrap();
        assert_eq!(store.unplanned_notifications(10).unwrap().len(), 1);
        let plan = [("webhook".to_string(), "ops".to_string())];
        assert!(store.plan_deliveries(id, &plan, 10).unwrap());
        assert!(
            !store.plan_deliveries(id, &plan, 10).unwrap(),
            "planned twice"
        );
        assert!(store.unplanned_notifications(10).unwrap().is_empty());

        let due = store.claim_due_deliveries(100, 1_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(
            store
                .claim_due_deliveries(200, 1_000, 10)
                .unwrap()
                .is_empty(),
            "leased"
        );
        let failed = DeliveryOutcome::Failed {
            error: "HTTP 500".into(),
            retry_at: Some(300),
        };
        assert_eq!(
            store
                .record_delivery_attempt(due[0].id, &failed, 200)
                .unwrap(),
            1
        );
        let again = store.claim_due_deliveries(300, 1_000, 10).unwrap();
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
        store
            .record_delivery_attempt(due[0].id, &DeliveryOutcome::Delivered, 310)
            .unwrap();
        let listed = store.list_deliveries(Some(1), 10).unwrap();
        assert_eq!(listed[0].status, DeliveryStatus::Delivered);
        assert_eq!(listed[0].attempts, 2);
        assert_eq!(
            store.delivery_errors(due[0].id).unwrap(),
            [(1, 200, "HTTP 500".to_string())]
        );
        assert!(store
            .claim_due_deliveries(10_000, 1_000, 10)
            .unwrap()
            .is_empty());
    }
}

//! What auditors and operators do with the journal: export its public key, verify it, rebuild the
//! index from it, see how far the index is behind.

use std::path::PathBuf;

use super::index;
use super::journal::{reader::JournalCursor, retention, signing, verify};
use super::{RetentionOutcome, RetentionPolicy};
use crate::error::StoreError;
use crate::{Result, Store, VerifyReport};

/// How far the index is behind the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStatus {
    /// The last journal record the index has read.
    pub indexed: u64,
    /// The last record in the journal.
    pub journal_end: u64,
}

impl IndexStatus {
    /// Records in the journal the index does not hold yet.
    pub fn lag(&self) -> u64 {
        self.journal_end.saturating_sub(self.indexed)
    }
}

impl Store {
    /// Brings the index up to date before a query; a failure leaves the query to what is indexed.
    pub(crate) fn catch_up_index(&self, conn: &mut rusqlite::Connection) {
        if let Err(e) = self.audit().catch_up(conn) {
            tracing::warn!(error = %e, "the audit index is behind the journal");
        }
    }

    /// The journal's public key, hex-encoded: what auditors verify checkpoints with.
    pub fn audit_public_key(&self) -> String {
        signing::hex(&self.audit().public_key())
    }

    /// Verifies the journal from the segment holding record `from` on, with `public_key` (hex; the
    /// journal's own key when `None`), and the index against it.
    pub fn verify_audit(&self, from: u64, public_key: Option<&str>) -> Result<VerifyReport> {
        let key = match public_key {
            Some(hex) => signing::parse_hex(hex).ok_or_else(|| StoreError::Invalid {
                what: "public key",
                reason: "expected the hex string `portcullis audit public-key` prints".into(),
            })?,
            None => self.audit().public_key(),
        };
        let sink = self.audit();
        let mut conn = self.conn();
        // Records journaled just before are indexed first, so their rows are compared too; an index
        // that cannot be written does not stop the journal's verification.
        self.catch_up_index(&mut conn);
        verify::verify(sink.dir(), &conn, &key, from)
    }

    /// Rebuilds the index from the journal: deletes the rows of every record the journal holds and
    /// reads them again. Returns how many rows the index then has for them.
    pub fn reindex_audit(&self) -> Result<u64> {
        let sink = self.audit();
        sink.flush()?;
        let mut conn = self.conn();
        let dir = sink.dir().to_path_buf();
        let first = super::journal::segments(&dir)
            .map_err(|source| StoreError::Io {
                path: dir.clone(),
                source,
            })?
            .first()
            .map_or(1, |(first, _)| *first);
        {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM audit_events WHERE seq >= ?1",
                [i64::try_from(first).unwrap_or(i64::MAX)],
            )?;
            tx.execute(
                "UPDATE audit_index SET seq = ?1 WHERE id = 1",
                [i64::try_from(first - 1).unwrap_or(0)],
            )?;
            tx.commit()?;
        }
        sink.catch_up(&mut conn)?;
        let rows: i64 = conn.query_row(
            "SELECT COUNT(*) FROM audit_events WHERE seq >= ?1",
            [i64::try_from(first).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(rows).unwrap_or(0))
    }

    /// How far the index is behind the journal.
    pub fn audit_index_status(&self) -> Result<IndexStatus> {
        let sink = self.audit();
        let mut cursor = JournalCursor::new(sink.dir(), sink.indexed() + 1);
        let mut journal_end = sink.indexed();
        loop {
            let records = cursor
                .read(4096)
                .map_err(|e| StoreError::AuditWrite(e.to_string()))?;
            match records.last() {
                Some(last) => journal_end = last.seq,
                None => break,
            }
        }
        Ok(IndexStatus {
            indexed: index::read_position(&self.conn())?,
            journal_end,
        })
    }

    /// The audit journal's folder (`<database>.journal/`): where readers such as the sinks read it and
    /// keep their cursors.
    pub fn audit_journal_dir(&self) -> PathBuf {
        self.audit().dir().to_path_buf()
    }

    /// Notified after each audit record this process appends (see [`crate::AuditSink::appended`]).
    pub fn audit_appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.audit().appended()
    }

    /// Removes the journal's old sealed segments as `policy` says, never one holding record `hold` or
    /// later (the first record some sink has not delivered) unless past the hard cap, and deletes the
    /// index rows of the records removed. See [`retention`].
    pub fn apply_audit_retention(
        &self,
        policy: &RetentionPolicy,
        hold: Option<u64>,
    ) -> Result<RetentionOutcome> {
        self.apply_audit_retention_at(policy, hold, crate::now_millis())
    }

    /// [`Store::apply_audit_retention`] as if it were `now_ms` (milliseconds since the epoch).
    pub fn apply_audit_retention_at(
        &self,
        policy: &RetentionPolicy,
        hold: Option<u64>,
        now_ms: i64,
    ) -> Result<RetentionOutcome> {
        let sink = self.audit();
        let dir = sink.dir().to_path_buf();
        let indexed = index::read_position(&self.conn())?;
        let outcome = retention::apply(&dir, policy, hold, indexed, now_ms)
            .map_err(|source| StoreError::Io { path: dir, source })?;
        if let Some(first) = outcome.first_kept {
            self.conn().execute(
                "DELETE FROM audit_events WHERE seq < ?1",
                [i64::try_from(first).unwrap_or(i64::MAX)],
            )?;
        }
        Ok(outcome)
    }
}

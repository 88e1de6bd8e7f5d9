//! Applied policies. Every `apply` adds a version; the newest is the one in force. The store keeps the
//! text as the admin wrote it: the policy engine validates it before it is applied and compiles it
//! when a gateway loads it.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::{now_millis, Result, Store};

/// One applied version of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPolicy {
    /// Increases with every apply.
    pub version: i64,
    /// Where the text came from (the file name given to `policy apply`).
    pub source: String,
    /// The policy document.
    pub text: String,
    /// Unix milliseconds.
    pub applied_at: i64,
    /// Who applied it (the OS user running the CLI, or an API user).
    pub applied_by: String,
}

impl Store {
    /// Stores `text` as the policy in force and returns its version.
    pub fn apply_policy(&self, source: &str, text: &str, applied_by: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO policies (source, text, applied_at, applied_by) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![source, text, now_millis(), applied_by],
        )?;
        let version = conn.last_insert_rowid();
        tracing::info!(version, source, "policy applied");
        Ok(version)
    }

    /// The policy in force, if one was ever applied.
    pub fn active_policy(&self) -> Result<Option<StoredPolicy>> {
        self.one_policy("ORDER BY version DESC LIMIT 1", None)
    }

    /// Every applied version, newest first, at most `limit`: the history an admin reviews and diffs.
    pub fn policy_versions(&self, limit: usize) -> Result<Vec<StoredPolicy>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT_POLICY} ORDER BY version DESC LIMIT ?1"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], stored)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Version `version`, if it was ever applied.
    pub fn policy_version(&self, version: i64) -> Result<Option<StoredPolicy>> {
        self.one_policy("WHERE version = ?1", Some(version))
    }

    /// The version applied just before `version` (what a diff of `version` compares against).
    pub fn policy_before(&self, version: i64) -> Result<Option<StoredPolicy>> {
        self.one_policy(
            "WHERE version < ?1 ORDER BY version DESC LIMIT 1",
            Some(version),
        )
    }

    /// The first policy row `clause` selects (with `version` as its `?1`, if any).
    fn one_policy(&self, clause: &str, version: Option<i64>) -> Result<Option<StoredPolicy>> {
        let sql = format!("{SELECT_POLICY} {clause}");
        let conn = self.conn();
        let row = match version {
            Some(v) => conn.query_row(&sql, [v], stored),
            None => conn.query_row(&sql, [], stored),
        };
        Ok(row.optional()?)
    }

    /// The version of the policy in force: a cheap check for gateways watching for a new one.
    pub fn active_policy_version(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row("SELECT MAX(version) FROM policies", [], |r| r.get(0))?)
    }
}

/// The columns [`stored`] reads.
const SELECT_POLICY: &str = "SELECT version, source, text, applied_at, applied_by FROM policies";

/// A `policies` row as [`SELECT_POLICY`] selects it.
fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPolicy> {
    Ok(StoredPolicy {
        version: r.get(0)?,
        source: r.get(1)?,
        text: r.get(2)?,
        applied_at: r.get(3)?,
        applied_by: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{Durability, MasterKey, Store};

    #[test]
    fn newest_apply_is_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        assert_eq!(store.active_policy().unwrap(), None);
        assert_eq!(store.active_policy_version().unwrap(), None);
        let v1 = store.apply_policy("a.yaml", "grants: []", "admin").unwrap();
        let v2 = store.apply_policy("b.yaml", "rules: []", "admin").unwrap();
        assert!(v2 > v1);
        let active = store.active_policy().unwrap().unwrap();
        assert_eq!((active.version, active.text.as_str()), (v2, "rules: []"));
        assert_eq!(store.active_policy_version().unwrap(), Some(v2));
        let versions: Vec<i64> = store
            .policy_versions(10)
            .unwrap()
            .iter()
            .map(|p| p.version)
            .collect();
        assert_eq!(versions, [v2, v1]);
        assert_eq!(store.policy_versions(1).unwrap().len(), 1);
        let before = store.policy_before(v2).unwrap().unwrap();
        assert_eq!((before.version, before.text.as_str()), (v1, "grants: []"));
        assert_eq!(store.policy_before(v1).unwrap(), None);
        assert_eq!(store.policy_version(v1).unwrap().unwrap().source, "a.yaml");
        assert_eq!(store.policy_version(v2 + 1).unwrap(), None);
    }
}

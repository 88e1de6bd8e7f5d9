//! Device trust reports. An endpoint-management integration reports, for a user, the address their
//! device connects from and its trust level; a session from that user at that address takes the level
//! while the report is fresh. Without a fresh report the level is unknown.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::{now_millis, validate_name, Result, Store, StoreError};

/// One report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceReport {
    /// The gateway user on the device.
    pub user: String,
    /// The IP address the device connects from.
    pub address: String,
    /// The device's identifier in the reporting system.
    pub device: String,
    /// `high`, `medium`, `low` or `exempt`.
    pub trust: String,
    /// Unix milliseconds.
    pub reported_at: i64,
    /// Unix milliseconds after which the report no longer counts.
    pub expires_at: i64,
}

impl Store {
    /// Records (replacing any earlier one) the trust of `user`'s device at `address`, valid for
    /// `ttl_millis`. The caller validates `trust` and `address`.
    pub fn report_device(
        &self,
        user: &str,
        address: &str,
        device: &str,
        trust: &str,
        ttl_millis: i64,
    ) -> Result<DeviceReport> {
        validate_name("user name", user)?;
        if ttl_millis <= 0 {
            return Err(StoreError::Invalid {
                what: "device report",
                reason: "the validity must be positive".into(),
            });
        }
        let now = now_millis();
        let report = DeviceReport {
            user: user.to_owned(),
            address: address.to_owned(),
            device: device.to_owned(),
            trust: trust.to_owned(),
            reported_at: now,
            expires_at: now.saturating_add(ttl_millis),
        };
        self.conn().execute(
            "INSERT INTO device_reports (user_name, address, device, trust, reported_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (user_name, address) DO UPDATE SET device = excluded.device, \
             trust = excluded.trust, reported_at = excluded.reported_at, expires_at = excluded.expires_at",
            rusqlite::params![
                report.user,
                report.address,
                report.device,
                report.trust,
                report.reported_at,
                report.expires_at
            ],
        )?;
        tracing::info!(user, address, device, trust, "device trust reported");
        Ok(report)
    }

    /// The fresh report for `user` at `address`, if any.
    pub fn device_report(&self, user: &str, address: &str) -> Result<Option<DeviceReport>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT user_name, address, device, trust, reported_at, expires_at \
                 FROM device_reports WHERE user_name = ?1 AND address = ?2 AND expires_at > ?3",
                rusqlite::params![user, address, now_millis()],
                report_from_row,
            )
            .optional()?)
    }

    /// Every report, fresh or not, by user and address.
    pub fn list_device_reports(&self) -> Result<Vec<DeviceReport>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT user_name, address, device, trust, reported_at, expires_at \
             FROM device_reports ORDER BY user_name, address",
        )?;
        let rows = stmt.query_map([], report_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

fn report_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceReport> {
    Ok(DeviceReport {
        user: r.get(0)?,
        address: r.get(1)?,
        device: r.get(2)?,
        trust: r.get(3)?,
        reported_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{Durability, MasterKey, Store};

    #[test]
    fn fresh_reports_count_and_replace_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        store
            .report_device("alice", "10.0.0.5", "laptop-1", "low", 60_000)
            .unwrap();
        store
            .report_device("alice", "10.0.0.5", "laptop-1", "high", 60_000)
            .unwrap();
        let report = store.device_report("alice", "10.0.0.5").unwrap().unwrap();
        assert_eq!(report.trust, "high");
        assert_eq!(store.device_report("bob", "10.0.0.5").unwrap(), None);
        store
            .report_device("bob", "10.0.0.6", "pc", "low", 1)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(store.device_report("bob", "10.0.0.6").unwrap(), None);
        assert_eq!(store.list_device_reports().unwrap().len(), 2);
        assert!(store.report_device("bob", "x", "pc", "low", 0).is_err());
    }
}

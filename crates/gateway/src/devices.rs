//! Device trust for open sessions. A report that lowers a user's trust must reach the sessions that user
//! already has, at their next statement (a forbid with `@logout` then ends them), not only new logins. The
//! reports are read again from the store every reload interval, so a statement's decision looks its
//! session's trust up in memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_policy::{DeviceTrust, Observed};
use portcullis_store::{DeviceReport, Store};

use crate::error::GatewayError;

/// user → (address, trust, expiry in Unix milliseconds).
type Reports = HashMap<String, Vec<(IpAddr, DeviceTrust, i64)>>;

/// The device reports in force, shared by every session.
#[derive(Default)]
pub struct DeviceTrusts {
    reports: RwLock<Reports>,
}

impl DeviceTrusts {
    /// Reads every report again.
    pub fn refresh(&self, store: &Store) -> Result<(), GatewayError> {
        let reports = index(store.list_device_reports()?);
        *self.reports.write().unwrap_or_else(|p| p.into_inner()) = reports;
        Ok(())
    }

    /// The trust of `user`'s device at `address`, as last reported; unknown without a fresh report.
    pub fn trust(&self, user: &str, address: IpAddr) -> Observed<DeviceTrust> {
        let now_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.trust_at(user, address, now_millis)
    }

    fn trust_at(&self, user: &str, address: IpAddr, now_millis: i64) -> Observed<DeviceTrust> {
        self.reports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .and_then(|devices| {
                devices
                    .iter()
                    .find(|(a, _, expires)| *a == address && *expires > now_millis)
            })
            .map_or(Observed::Unknown, |(_, trust, _)| Observed::Known(*trust))
    }
}

fn index(reports: Vec<DeviceReport>) -> Reports {
    let mut by_user: Reports = HashMap::new();
    for report in reports {
        // A level or address this gateway cannot read counts as no report, as at login.
        let trust = DeviceTrust::from_tag(&report.trust);
        if let (Some(trust), Ok(address)) = (trust, report.address.parse::<IpAddr>()) {
            by_user
                .entry(report.user)
                .or_default()
                .push((address, trust, report.expires_at));
        }
    }
    by_user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_reports_for_the_address_count() {
        let report = |address: &str, trust: &str, expires_at| DeviceReport {
            user: "alice".into(),
            address: address.into(),
            device: "laptop".into(),
            trust: trust.into(),
            reported_at: 0,
            expires_at,
        };
        let trusts = DeviceTrusts::default();
        *trusts.reports.write().unwrap() = index(vec![
            report("10.0.0.1", "low", 2_000),
            report("10.0.0.2", "high", 500),
            report("10.0.0.3", "bogus", 2_000),
        ]);
        let at = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(
            trusts.trust_at("alice", at("10.0.0.1"), 1_000),
            Observed::Known(DeviceTrust::Low)
        );
        assert_eq!(
            trusts.trust_at("alice", at("10.0.0.2"), 1_000),
            Observed::Unknown
        );
        assert_eq!(
            trusts.trust_at("alice", at("10.0.0.3"), 1_000),
            Observed::Unknown
        );
        assert_eq!(
            trusts.trust_at("bob", at("10.0.0.1"), 1_000),
            Observed::Unknown
        );
    }
}

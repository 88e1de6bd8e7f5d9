//! `portcullis device`: device trust as an endpoint-management integration reports it. A report binds a
//! user and the address their device connects from to a trust level; sessions of that user from that
//! address are decided with it while the report is fresh, others with `unknown`.

use std::net::IpAddr;

use anyhow::{bail, Result};
use clap::Subcommand;
use portcullis_policy::DeviceTrust;
use portcullis_store::Store;

use super::audit::format_micros;
use crate::table;

/// `device` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Report the trust of a user's device at an address (replaces the previous report for them).
    Report {
        /// The gateway user on the device.
        #[arg(long)]
        user: String,
        /// The IP address the device connects from.
        #[arg(long)]
        address: IpAddr,
        /// high, medium, low or exempt.
        #[arg(long)]
        trust: String,
        /// The device's id in the reporting system (for the record).
        #[arg(long, default_value = "")]
        device: String,
        /// How long the report counts: seconds, or with a unit (90s, 30m, 8h, 1d).
        #[arg(long, default_value = "8h")]
        ttl: String,
    },
    /// List reports.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `device` subcommand.
pub fn run(store: &Store, command: DeviceCommand) -> Result<()> {
    match command {
        DeviceCommand::Report {
            user,
            address,
            trust,
            device,
            ttl,
        } => {
            let Some(level) = DeviceTrust::from_tag(&trust) else {
                bail!("--trust `{trust}`: use high, medium, low or exempt");
            };
            let report = store.report_device(
                &user,
                &canonical(address).to_string(),
                &device,
                level.as_str(),
                parse_ttl_millis(&ttl)?,
            )?;
            println!(
                "{}'s device at {} is {} until {}",
                report.user,
                report.address,
                report.trust,
                format_micros(report.expires_at.saturating_mul(1000))
            );
            Ok(())
        }
        DeviceCommand::List { json } => {
            let reports = store.list_device_reports()?;
            if json {
                for r in &reports {
                    println!("{}", serde_json::to_string(r)?);
                }
                return Ok(());
            }
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    vec![
                        r.user.clone(),
                        r.address.clone(),
                        r.device.clone(),
                        r.trust.clone(),
                        format_micros(r.expires_at.saturating_mul(1000)),
                    ]
                })
                .collect();
            table::print(&["USER", "ADDRESS", "DEVICE", "TRUST", "UNTIL"], &rows);
            Ok(())
        }
    }
}

/// Sessions see IPv4 clients as IPv4 even on a dual-stack listener; store reports the same way.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_ttl_millis(text: &str) -> Result<i64> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = match number.parse() {
        Ok(n) if n > 0 => n,
        _ => bail!("--ttl `{text}`: write a positive duration such as 90s, 30m, 8h or 1d"),
    };
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("--ttl `{text}`: the unit is s, m, h or d"),
    };
    Ok(n.saturating_mul(unit_ms))
}

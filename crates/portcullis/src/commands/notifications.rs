//! A user's notifications, as `portcullis inbox --notifications` shows them and `--mark-read` marks them,
//! and the deliveries of all of them, as `portcullis notifications` lists them for an administrator.

use anyhow::{bail, Result};
use clap::Args;
use portcullis_store::{InboxEntry, Store};
use time::OffsetDateTime;

use crate::commands::audit::one_line;
use crate::commands::requests::format_millis;
use crate::table;

/// The most notifications one listing shows.
const LIMIT: u32 = 1000;

/// Lists `user`'s notifications, unread first (only those when `unread_only`).
pub fn show(store: &Store, user: &str, unread_only: bool, json: bool) -> Result<()> {
    let entries = store.inbox_notifications(user, unread_only, LIMIT)?;
    if json {
        for entry in &entries {
            println!("{}", serde_json::to_string(entry)?);
        }
        return Ok(());
    }
    print(&entries);
    Ok(())
}

/// After the requests to decide: the unread notifications, if any.
pub fn show_unread_summary(store: &Store, user: &str) -> Result<()> {
    let entries = store.inbox_notifications(user, true, LIMIT)?;
    if !entries.is_empty() {
        println!(
            "\n{} unread notification(s) (portcullis inbox --notifications; --mark-read IDS|all):",
            entries.len()
        );
        print(&entries);
    }
    Ok(())
}

fn print(entries: &[InboxEntry]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let n = &e.notification;
            vec![
                n.id.to_string(),
                format_millis(n.created_at),
                n.request_id.to_string(),
                n.event.clone(),
                if e.read_at.is_some() {
                    "read"
                } else {
                    "unread"
                }
                .to_owned(),
                one_line(&n.subject, 90),
            ]
        })
        .collect();
    table::print(
        &["ID", "TIME", "REQUEST", "EVENT", "STATE", "SUBJECT"],
        &rows,
    );
}

/// Marks `user`'s notifications `ids` (`3,4` or `all`) read.
pub fn mark_read(store: &Store, user: &str, ids: &str) -> Result<()> {
    let ids: Option<Vec<i64>> = if ids.trim().eq_ignore_ascii_case("all") {
        None
    } else {
        let parsed: Result<Vec<i64>, _> = ids.split(',').map(|id| id.trim().parse()).collect();
        match parsed {
            Ok(ids) => Some(ids),
            Err(_) => bail!("--mark-read takes notification ids (3,4) or `all`, not `{ids}`"),
        }
    };
    let now = OffsetDateTime::now_utc()
        .unix_timestamp()
        .saturating_mul(1000);
    let marked = store.mark_notifications_read(user, ids.as_deref(), now)?;
    println!("{marked} notification(s) marked read");
    Ok(())
}

/// `notifications` options.
#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only the deliveries of this request's notifications.
    #[arg(long, value_name = "ID")]
    pub request: Option<i64>,
    /// JSON lines (with every failed attempt's error) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Lists notification deliveries, newest first.
pub fn deliveries(store: &Store, args: &DeliveriesArgs) -> Result<()> {
    let deliveries = store.list_deliveries(args.request, args.limit)?;
    if args.json {
        for d in &deliveries {
            let errors: Vec<serde_json::Value> = store
                .delivery_errors(d.id)?
                .into_iter()
                .map(|(attempt, at, error)| serde_json::json!({"attempt": attempt, "at": at, "error": error}))
                .collect();
            let mut line = serde_json::to_value(d)?;
            line["errors"] = serde_json::Value::Array(errors);
            println!("{line}");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.notification.request_id.to_string(),
                d.notification.event.clone(),
                d.channel.clone(),
                d.target.clone(),
                d.status.to_string(),
                d.attempts.to_string(),
                one_line(d.last_error.as_deref().unwrap_or(""), 60),
            ]
        })
        .collect();
    table::print(
        &[
            "ID",
            "REQUEST",
            "EVENT",
            "CHANNEL",
            "TARGET",
            "STATUS",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    );
    Ok(())
}

//! `portcullis monitor`: the policy monitor. Every decision — each connection stage and each statement,
//! allowed or denied — with the user, address, location, device trust, requirements and the rules and
//! policies that decided.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use portcullis_store::{AuditEvent, AuditFilter, AuditKindFilter, AuditRecord, PolicyTrail, Store};

use super::audit::{format_micros, one_line, record_filter};
use crate::cli::RecordArgs;
use crate::table;

/// `monitor` arguments: list with filters, or `show ID`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Show one record in full.
    #[command(subcommand)]
    pub show: Option<MonitorCommand>,
    /// Who, where, when, how many, and the output form.
    #[command(flatten)]
    pub records: RecordArgs,
    /// Only this result: allow, deny or require-approval.
    #[arg(long)]
    pub result: Option<String>,
    /// Only decisions this rule or policy id took part in.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only this stage: pre-connection, post-connection or statement.
    #[arg(long, value_parser = ["pre-connection", "post-connection", "statement"])]
    pub stage: Option<String>,
}

/// `monitor` subcommands.
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// One decision in detail.
    Show {
        /// The record's id (first column of the list).
        id: i64,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A monitor record: the event and its decision.
struct Decided<'a> {
    record: &'a AuditRecord,
    at: i64,
    user: &'a str,
    resource: &'a str,
    client_addr: &'a str,
    target: String,
    trail: &'a PolicyTrail,
}

fn decided(record: &AuditRecord) -> Option<Decided<'_>> {
    match &record.event {
        AuditEvent::Decision(d) => Some(Decided {
            record,
            at: d.at,
            user: &d.user,
            resource: &d.resource,
            client_addr: &d.client_addr,
            target: format!("connect {}", d.resource),
            trail: &d.policy,
        }),
        AuditEvent::Statement(s) => s.policy.as_ref().map(|trail| Decided {
            record,
            at: s.at,
            user: &s.user,
            resource: &s.resource,
            client_addr: &s.client_addr,
            target: s.text.clone(),
            trail,
        }),
        AuditEvent::Connection(_) | AuditEvent::Workflow(_) | AuditEvent::Mfa(_) => None,
    }
}

/// Runs `monitor`.
pub fn run(store: &Store, args: &MonitorArgs) -> Result<()> {
    if let Some(MonitorCommand::Show { id, json }) = &args.show {
        return show(store, *id, *json);
    }
    let filter = AuditFilter {
        kind: Some(AuditKindFilter::Monitor),
        decision: args.result.clone(),
        rule: args.rule.clone(),
        stage: args.stage.clone(),
        ..record_filter(&args.records)?
    };
    let records = store.query_audit(&filter)?;
    let decisions = records.iter().filter_map(decided);
    if args.records.json {
        for d in decisions {
            println!("{}", serde_json::to_string(d.record)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = decisions
        .map(|d| {
            vec![
                d.record.id.to_string(),
                format_micros(d.at),
                d.user.to_string(),
                d.resource.to_string(),
                d.trail.stage.clone(),
                d.trail.result.clone(),
                d.trail
                    .rules
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                one_line(&d.target, 60),
            ]
        })
        .collect();
    table::print(
        &[
            "ID", "TIME", "USER", "RESOURCE", "STAGE", "RESULT", "RULES", "TARGET",
        ],
        &rows,
    );
    Ok(())
}

fn show(store: &Store, id: i64, json: bool) -> Result<()> {
    let Some(record) = store.audit_record(id)? else {
        bail!("there is no audit record {id}");
    };
    let Some(d) = decided(&record) else {
        bail!("audit record {id} is not a policy decision (see `portcullis audit`)");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    let t = d.trail;
    println!("decision {id}: {}", t.result);
    println!("  time:          {}", format_micros(d.at));
    println!("  stage:         {}", t.stage);
    println!("  user:          {}", d.user);
    println!("  resource:      {}", d.resource);
    println!("  target:        {}", one_line(&d.target, 200));
    println!("  client:        {}", d.client_addr);
    println!("  location:      {}", t.location);
    println!("  device trust:  {}", t.device_trust);
    if let Some(why) = &t.justification {
        println!("  justification: {why}");
    }
    match t.policy_version {
        Some(v) => println!("  policy:        version {v}"),
        None => println!("  policy:        none applied"),
    }
    println!("  reason:        {}", t.reason);
    if t.logout {
        println!("  logout:        the session was ended");
    }
    if !t.actions.is_empty() {
        println!("  evaluated:");
        for a in &t.actions {
            println!("    - {a}");
        }
    }
    if !t.rules.is_empty() {
        println!("  decided by:");
        for r in &t.rules {
            let name = r
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let on = if r.components.is_empty() {
                String::new()
            } else {
                format!(" on {}", r.components.join(", "))
            };
            let message = r
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            println!("    - {}{name}: {}{on}{message}", r.id, r.action);
        }
    }
    if !t.requirements.is_empty() {
        println!("  requirements:");
        for r in &t.requirements {
            let state = if r.met { "met" } else { "missing" };
            let detail = r
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            println!("    - {}{detail} from {}: {state}", r.kind, r.policy);
        }
    }
    if !t.missing_grants.is_empty() {
        println!("  missing grants:");
        for m in &t.missing_grants {
            println!("    - {m}");
        }
    }
    Ok(())
}

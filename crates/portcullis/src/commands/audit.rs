//! `portcullis audit`: query the audit log.

use anyhow::{bail, Context, Result};
use portcullis_sinks::{read_state, SinkConfig, SinkStatus};
use portcullis_store::{AuditEvent, AuditFilter, AuditKindFilter, Store, VerifyReport};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::{AuditAction, AuditArgs, RecordArgs};
use crate::table;

/// Prints the audit records that match the filters, newest first, or runs a subcommand.
pub fn run(store: &Store, args: &AuditArgs, sinks: &[SinkConfig]) -> Result<()> {
    match &args.action {
        Some(AuditAction::Verify {
            from,
            public_key,
            json,
        }) => return verify(store, *from, public_key.as_deref(), *json),
        Some(AuditAction::Reindex) => {
            let rows = store.reindex_audit()?;
            println!("index rebuilt from the journal: {rows} records");
            return Ok(());
        }
        Some(AuditAction::PublicKey) => {
            println!("{}", store.audit_public_key());
            return Ok(());
        }
        Some(AuditAction::Status { json }) => return status(store, sinks, *json),
        None => {}
    }
    let filter = AuditFilter {
        text_contains: args.text.clone(),
        object: args.object.clone(),
        kind: match args.kind.as_deref() {
            Some("connections") => Some(AuditKindFilter::Connections),
            Some("statements") => Some(AuditKindFilter::Statements),
            Some("workflows") => Some(AuditKindFilter::Workflows),
            Some("mfa") => Some(AuditKindFilter::Mfa),
            _ => None,
        },
        decision: args.decision.clone(),
        session_id: args.session.clone(),
        ..record_filter(&args.records)?
    };
    let records = store.query_audit(&filter)?;
    if args.records.json {
        for record in &records {
            println!("{}", serde_json::to_string(record)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| match &record.event {
            AuditEvent::Connection(c) => vec![
                record.id.to_string(),
                format_micros(c.at),
                c.user.clone(),
                c.resource.clone(),
                format!("{:?}", c.phase).to_lowercase(),
                c.auth_result.clone(),
                format!("{} in={} out={}", c.client_addr, c.bytes_in, c.bytes_out),
            ],
            AuditEvent::Statement(s) => vec![
                record.id.to_string(),
                format_micros(s.at),
                s.user.clone(),
                s.resource.clone(),
                s.kind.clone(),
                format!(
                    "{}{}",
                    s.outcome,
                    s.sqlstate
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                ),
                one_line(&s.text, 80),
            ],
            AuditEvent::Decision(d) => vec![
                record.id.to_string(),
                format_micros(d.at),
                d.user.clone(),
                d.resource.clone(),
                d.policy.stage.clone(),
                d.policy.result.clone(),
                one_line(&d.policy.reason, 80),
            ],
            AuditEvent::Workflow(w) => vec![
                record.id.to_string(),
                format_micros(w.at),
                w.user.clone(),
                w.resource.clone(),
                format!("request {}", w.request_id),
                w.action.clone(),
                one_line(&format!("{}: {}", w.workflow, w.detail), 80),
            ],
            AuditEvent::Mfa(m) => vec![
                record.id.to_string(),
                format_micros(m.at),
                m.user.clone(),
                m.resource.clone(),
                format!("mfa {}", m.action),
                m.result.clone(),
                one_line(m.detail.as_deref().unwrap_or_default(), 80),
            ],
        })
        .collect();
    table::print(
        &["ID", "TIME", "USER", "RESOURCE", "WHAT", "RESULT", "DETAIL"],
        &rows,
    );
    Ok(())
}

/// The filter for the options `audit` and `monitor` share.
pub fn record_filter(args: &RecordArgs) -> Result<AuditFilter> {
    let now = OffsetDateTime::now_utc();
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| portcullis_api::parse_time(t, now).map_err(anyhow::Error::msg))
            .transpose()
    };
    Ok(AuditFilter {
        user: args.user.clone(),
        resource: args.resource.clone(),
        since: time(&args.since)?,
        until: time(&args.until)?,
        limit: args.limit,
        ..AuditFilter::default()
    })
}

pub fn format_micros(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| micros.to_string())
}

pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// `audit verify`: the report, and a failure exit when anything was tampered with.
fn verify(store: &Store, from: u64, public_key: Option<&str>, json: bool) -> Result<()> {
    let report = store.verify_audit(from, public_key)?;
    if json {
        println!("{}", serde_json::to_string(&report_json(&report))?);
    } else {
        print_report(&report);
    }
    if !report.is_intact() {
        bail!("the audit journal does not verify");
    }
    Ok(())
}

fn print_report(report: &VerifyReport) {
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!("records {first} to {last}"),
        _ => "no records".to_owned(),
    };
    println!(
        "{} segments, {range}: {} events, {} checkpoints; signed through record {}",
        report.segments,
        report.events,
        report.checkpoints,
        report
            .signed_through
            .map_or_else(|| "none".to_owned(), |s| s.to_string())
    );
    if let Some(first) = report.retained_from {
        println!(
            "removed_by_retention: {} segments (the journal is kept from record {first}, as its signed retention note says)",
            report.removed_by_retention
        );
    }
    for p in &report.problems {
        let seq = p.seq.map(|s| format!("record {s}, ")).unwrap_or_default();
        println!(
            "TAMPERED {} at byte {} ({seq}): {}",
            p.segment, p.offset, p.what
        );
    }
    if let Some(torn) = &report.torn_tail {
        println!("torn tail (a crash, not tampering): {torn}");
    }
    for p in &report.index_problems {
        println!("INDEX {p}");
    }
    if report.is_intact() {
        println!("OK: the journal and its index verify");
    }
}

fn report_json(report: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "intact": report.is_intact(),
        "segments": report.segments,
        "events": report.events,
        "checkpoints": report.checkpoints,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "signed_through": report.signed_through,
        "indexed_through": report.indexed_through,
        "removed_by_retention": report.removed_by_retention,
        "retained_from": report.retained_from,
        "torn_tail": report.torn_tail,
        "problems": report.problems.iter().map(|p| serde_json::json!({
            "segment": p.segment, "offset": p.offset, "seq": p.seq, "what": p.what,
        })).collect::<Vec<_>>(),
        "index_problems": report.index_problems,
    })
}

/// `audit status`: how far the index and each configured sink are behind the journal.
fn status(store: &Store, sinks: &[SinkConfig], json: bool) -> Result<()> {
    let index = store.audit_index_status()?;
    let journal = store.audit_journal_dir();
    let mut tail = portcullis_store::JournalTail::new(&journal);
    tail.refresh()
        .with_context(|| format!("cannot read the audit journal in {}", journal.display()))?;
    let sinks = sinks
        .iter()
        .map(|sink| {
            let state = read_state(&journal, sink.name())?;
            Ok(SinkStatus::of(sink, state.as_ref(), tail.last_event_seq))
        })
        .collect::<Result<Vec<_>>>()?;
    if json {
        let value = serde_json::json!({
            "journal_end": index.journal_end,
            "indexed": index.indexed,
            "index_lag": index.lag(),
            "sinks": sinks,
        });
        println!("{}", serde_json::to_string(&value)?);
        return Ok(());
    }
    println!(
        "journal ends at record {}; index at {} ({} behind)",
        index.journal_end,
        index.indexed,
        index.lag()
    );
    let when =
        |ms: Option<i64>| ms.map_or_else(|| "never".to_owned(), |ms| format_micros(ms * 1000));
    let rows: Vec<Vec<String>> = sinks
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.kind.clone(),
                s.next_seq
                    .map_or_else(|| "not started".to_owned(), |n| n.to_string()),
                s.lag.to_string(),
                when(s.last_delivery_ms),
                match (&s.last_error, s.failing) {
                    (Some(e), true) => format!("FAILING since {}: {e}", when(s.last_error_ms)),
                    (Some(e), false) => format!("(recovered) {}: {e}", when(s.last_error_ms)),
                    (None, _) => String::new(),
                },
                s.gaps
                    .iter()
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table::print(
            &[
                "SINK",
                "TYPE",
                "NEXT",
                "LAG",
                "LAST DELIVERY",
                "LAST ERROR",
                "GAPS",
            ],
            &rows,
        );
    }
    Ok(())
}

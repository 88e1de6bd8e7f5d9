//! What recording one statement's audit event costs, per durability mode: `journaled` (the record is
//! written to the journal) and `strict` (and `fdatasync`ed — from one thread, so no group commit shares
//! it). First the session's share (the `record` call, in wall time), then the process's CPU time for
//! recording and indexing it (the index thread's insert into SQLite): CPU, because the index thread
//! lingers between batches, and its sleep is no cost. The event is what `pgbench -S` leaves: one object,
//! one rule fired, the policy trail.
//!
//! Run with `cargo bench -p portcullis-store --bench audit_record -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_store::{
    AuditEvent, AuditObject, Durability, FiredRuleRecord, MasterKey, PolicyTrail, StatementEvent,
    Store,
};

fn pgbench_select() -> AuditEvent {
    let read = "read public.pgbench_accounts".to_string();
    AuditEvent::Statement(StatementEvent {
        session_id: "92f9f7e8a202bf6f".into(),
        at: 1_796_325_168_579_757,
        user: "benchuser".into(),
        resource: "bench".into(),
        client_addr: "127.0.0.1:37930".into(),
        text: "SELECT abalance FROM pgbench_accounts WHERE aid = $1".into(),
        kind: "SELECT".into(),
        objects: vec![AuditObject {
            name: "public.pgbench_accounts".into(),
            operation: "read".into(),
        }],
        param_count: 1,
        rows: Some(1),
        duration_us: 150,
        decision: "allow".into(),
        outcome: "ok".into(),
        sqlstate: None,
        message: None,
        policy: Some(PolicyTrail {
            stage: "statement".into(),
            result: "allow".into(),
            policy_version: Some(1),
            actions: vec![read.clone(), "statement SELECT".into()],
            location: "unknown".into(),
            device_trust: "unknown".into(),
            rules: vec![FiredRuleRecord {
                id: "accounts_read".into(),
                name: None,
                action: "audit".into(),
                severity: "info".into(),
                components: vec![read],
                message: None,
            }],
            reason: "allowed; rules fired: `accounts_read` (audit)".into(),
            ..PolicyTrail::default()
        }),
    })
}

/// Events recorded between two flushes (untimed), at which the index catches up with the journal.
const CHUNK: u64 = 4096;

fn record(c: &mut Criterion) {
    let event = pgbench_select();
    for (name, durability) in [
        ("journaled", Durability::Journaled),
        ("strict", Durability::Strict),
    ] {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = Store::open(
            &dir.path().join("portcullis.sqlite"),
            MasterKey::generate(),
            durability,
        )
        .expect("a store");
        let sink = store.audit();
        // The session's share: recording, timed in chunks the index catches up between (untimed).
        c.bench_function(&format!("record a statement event ({name})"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(CHUNK);
                    let events: Vec<AuditEvent> = (0..n).map(|_| event.clone()).collect();
                    let start = Instant::now();
                    for event in events {
                        black_box(sink.record(event).wait_blocking()).expect("recorded");
                    }
                    spent += start.elapsed();
                    sink.flush().expect("committed");
                    left -= n;
                }
                spent
            })
        });
        // The index thread's share as well: the CPU of recording and indexing, per event.
        c.bench_function(
            &format!("record and index a statement event, CPU ({name})"),
            |b| {
                b.iter_custom(|iters| {
                    let events: Vec<AuditEvent> = (0..iters).map(|_| event.clone()).collect();
                    let start = process_cpu();
                    for event in events {
                        black_box(sink.record(event).wait_blocking()).expect("recorded");
                    }
                    sink.flush().expect("committed");
                    process_cpu().saturating_sub(start)
                })
            },
        );
    }
}

/// CPU time this process's threads have used: the recording thread's and the index thread's.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

criterion_group!(benches, record);
criterion_main!(benches);

//! Decision time per statement: 10,000 ordered rules and 1,001 grants (the engine's worst realistic
//! case), then the same with 50 Cedar permit/forbid statements, without and with a per-session cache.
//!
//! Run with `cargo bench -p portcullis-policy --bench decision -- --warm-up-time 1 --measurement-time 3`.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_policy::{
    CompiledPolicy, Component, Context, DeviceTrust, ObjectComponent, Observed, Policy,
    SessionCache, StatementComponent, Verdict,
};
use portcullis_sql::{ObjectKind, Operation, StatementKind};
use time::macros::datetime;
use time::OffsetDateTime;

#[path = "large_policy.rs"]
mod large_policy;

const NOW: OffsetDateTime = datetime!(2024-01-01 10:00 UTC);
const SESSIONS: usize = 100;

/// 50 Cedar statements of the seed 002 shapes: 20 forbids, 30 permits with requirements.
fn cedar_policies() -> String {
    let mut cedar = String::from(
        "workflows:\n  - {name: management, approvers: {roles: [managers]}}\ncedar: |\n",
    );
    for i in 0..20 {
        let body = match i % 4 {
            0 => format!("forbid(principal in Role::\"r{i}\", action in Action::\"ddl\", resource in Schema::\"s{i}\")\n    when {{ context.location == \"unknown\" }};"),
            1 => format!("forbid(principal, action == Action::\"delete\", resource == Table::\"s{i}.t{i}\")\n    when {{ context.device_trust == DeviceTrust::\"low\" }};"),
            2 => format!("forbid(principal == User::\"p{i}\", action, resource in Resource::\"db{}\")\n    when {{ context.hour >= 23 }};", i % 10),
            _ => format!("forbid(principal, action, resource)\n    unless {{ context has client_addr || context.weekday != Weekday::\"sun\" || context.location != \"XX{i}\" }};"),
        };
        let _ = write!(cedar, "  @id(\"forbid-{i}\")\n  {body}\n");
    }
    for i in 0..30 {
        let (annotations, body) = match i % 3 {
            0 => (
                "@mfa\n  @justification(\"why?\")",
                format!("permit(principal in Role::\"r{}\", action in Action::\"write\", resource in Schema::\"s{i}\");", i % 20),
            ),
            1 => (
                "@approval(\"management\")",
                format!("permit(principal == User::\"p{i}\", action, resource in Resource::\"db{}\")\n    when {{ context.device_trust == DeviceTrust::\"low\" }};", i % 10),
            ),
            _ => (
                "@mfa(\"low trust\")",
                format!("permit(principal, action == Action::\"select\", resource)\n    when {{ resource.schema == \"s{i}\" && context.device_trust == DeviceTrust::\"medium\" }};"),
            ),
        };
        let _ = write!(cedar, "  @id(\"permit-{i}\")\n  {annotations}\n  {body}\n");
    }
    cedar
}

fn object(schema: String, name: String, operation: Operation, columns: &[&str]) -> Component {
    Component::Object(ObjectComponent {
        schema,
        name,
        kind: ObjectKind::Relation,
        operation,
        columns: columns.iter().map(|c| c.to_string()).collect(),
    })
}

/// 10,000 statements; statement `i` belongs to session `i % 100` (its context depends only on that).
fn statements() -> Vec<(Context, Vec<Component>)> {
    (0..10_000u32)
        .map(|i| {
            let ctx = Context::new(format!("p{}", i % 100), format!("db{}", i % 10))
                .with_roles([format!("r{}", i % 20), "everyone".into()])
                .with_location(Observed::Known("DE".into()))
                .with_device_trust(Observed::Known(DeviceTrust::High))
                .with_addr([10, 0, 0, (i % 100) as u8].into());
            let comps = vec![
                object(
                    format!("s{}", i % 50),
                    format!("t{}", i % 1000),
                    Operation::Read,
                    &["c1"],
                ),
                object(
                    format!("s{}", (i + 1) % 50),
                    format!("t{}", (i + 7) % 1000),
                    Operation::Update,
                    &[],
                ),
                Component::Statement(StatementComponent {
                    kind: if i % 2 == 0 {
                        StatementKind::Select
                    } else {
                        StatementKind::Delete
                    },
                    text: String::new(),
                    opaque: None,
                }),
            ];
            (ctx, comps)
        })
        .collect()
}

fn compile(yaml: &str) -> CompiledPolicy {
    match Policy::from_yaml(yaml, "bench.yaml") {
        Ok(p) => CompiledPolicy::compile(&p),
        Err(e) => panic!("{e}"),
    }
}

fn decision(c: &mut Criterion) {
    let base = large_policy::rules_and_grants();
    let plain = compile(&base);
    let with_cedar = compile(&format!("{base}{}", cedar_policies()));
    assert_eq!(with_cedar.cedar().len(), 50);
    let stmts = statements();
    let allowed = stmts
        .iter()
        .filter(|(ctx, comps)| {
            with_cedar.evaluate_statement(ctx, comps, NOW).verdict == Verdict::Allow
        })
        .count();
    eprintln!(
        "with Cedar: {allowed} of {} statements allowed",
        stmts.len()
    );

    let mut group = c.benchmark_group("statement");
    let mut i = 0usize;
    group.bench_function("10k rules, 1k grants", |b| {
        b.iter(|| {
            let (ctx, comps) = &stmts[i % stmts.len()];
            i += 1;
            black_box(plain.evaluate_statement(ctx, comps, NOW))
        })
    });
    let mut i = 0usize;
    group.bench_function("+ 50 Cedar, no cache", |b| {
        b.iter(|| {
            let (ctx, comps) = &stmts[i % stmts.len()];
            i += 1;
            black_box(with_cedar.evaluate_statement(ctx, comps, NOW))
        })
    });
    let mut caches: Vec<SessionCache> = (0..SESSIONS).map(|_| SessionCache::new()).collect();
    let mut i = 0usize;
    group.bench_function("+ 50 Cedar, session cache", |b| {
        b.iter(|| {
            let (ctx, comps) = &stmts[i % stmts.len()];
            let cache = &mut caches[i % SESSIONS];
            i += 1;
            black_box(with_cedar.evaluate_statement_cached(ctx, comps, NOW, cache))
        })
    });
    group.finish();
    let (hits, misses) = caches
        .iter()
        .fold((0, 0), |(h, m), c| (h + c.hits(), m + c.misses()));
    eprintln!("session cache: {hits} hits, {misses} misses");
}

criterion_group!(benches, decision);
criterion_main!(benches);

//! What a statement pays for metrics: the calls on its path, each an atomic add on a counter made at
//! start-up.
//!
//! Run with `cargo bench -p portcullis-metrics --bench counters -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_metrics::{audit, gateway};

fn per_statement(c: &mut Criterion) {
    // Creates the registry outside the measurement.
    gateway::statement(gateway::Decision::Allow);
    c.bench_function("statement + decision + journal_appended", |b| {
        b.iter(|| {
            gateway::decision(
                gateway::Stage::Statement,
                black_box(gateway::Decision::Allow),
            );
            gateway::statement(black_box(gateway::Decision::Allow));
            audit::journal_appended(black_box(180), black_box(42));
        })
    });
    c.bench_function("encode (scrape)", |b| b.iter(portcullis_metrics::encode));
}

criterion_group!(benches, per_statement);
criterion_main!(benches);

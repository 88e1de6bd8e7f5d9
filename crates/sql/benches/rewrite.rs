//! Rewrite cost per statement: a typical masked SELECT with a join and a row filter, the same through a view
//! the rewriter expands, the same text touching no protected relation (the fast path: parse and a name
//! scan, no deparse), and the gateway's cheap pre-check on resolved names.
//!
//! Run with `cargo bench -p portcullis-sql --bench rewrite -- --warm-up-time 1 --measurement-time 3`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_sql::mask::{
    rewrite, touches_protected, ColumnMask, MaskKind, MemoryProtections, RelationProtection,
    RowFilter, ViewDefinition,
};
use portcullis_sql::{MemoryCatalog, QualifiedName, SearchPath};

/// The protections the rewriter is given here.
type Fixture = MemoryProtections;

fn name(schema: &str, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.into(),
        name: name.into(),
    }
}

fn fixture() -> Fixture {
    let employees = name("hr", "employees");
    let protection = RelationProtection {
        masks: vec![
            ColumnMask {
                column: "ssn".into(),
                mask: MaskKind::Partial {
                    keep_first: 0,
                    keep_last: 4,
                },
                rule: "ssn".into(),
            },
            ColumnMask {
                column: "email".into(),
                mask: MaskKind::Email,
                rule: "email".into(),
            },
            ColumnMask {
                column: "salary".into(),
                mask: MaskKind::Round { digits: -3 },
                rule: "salary".into(),
            },
        ],
        row_filters: vec![RowFilter {
            predicate: "region = $1".into(),
            values: vec![Some("eu".into())],
            rule: "eu-only".into(),
        }],
        denied_columns: vec![("notes".into(), "notes".into())],
        pinned: true,
    };
    let columns = [
        "id", "name", "ssn", "email", "salary", "dept_id", "region", "hired", "notes",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    let staff = ViewDefinition {
        sql: "SELECT e.id, e.name, e.ssn, e.email, e.salary, e.dept_id FROM employees e;".into(),
        path: Arc::new(SearchPath::from_setting("hr")),
        security_barrier: false,
    };
    Fixture {
        protections: HashMap::from([(employees.clone(), protection)]),
        columns: HashMap::from([(employees, columns)]),
        views: HashMap::from([(name("hr", "staff"), staff)]),
    }
}

fn bench(c: &mut Criterion) {
    let catalog = MemoryCatalog::new()
        .with_relation("hr", "employees")
        .with_relation("hr", "departments")
        .with_relation("hr", "staff")
        .with_relation("public", "orders");
    let path = SearchPath::from_setting("hr, public");
    let fixture = fixture();
    let masked = "SELECT e.name, e.ssn, e.email, d.title FROM employees e \
                  JOIN departments d ON d.dept_id = e.dept_id WHERE e.salary > 50000 ORDER BY e.name LIMIT 100";
    let through_view = "SELECT e.name, e.ssn, e.email, d.title FROM staff e \
                        JOIN departments d ON d.dept_id = e.dept_id WHERE e.salary > 50000 ORDER BY e.name LIMIT 100";
    let plain = "SELECT o.id, o.total, d.title FROM orders o \
                 JOIN departments d ON d.dept_id = o.dept_id WHERE o.total > 50000 ORDER BY o.id LIMIT 100";
    assert!(rewrite(masked, &path, "alice", &catalog, &fixture).is_ok_and(|r| r.sql.is_some()));
    assert!(
        rewrite(through_view, &path, "alice", &catalog, &fixture).is_ok_and(|r| r.sql.is_some())
    );
    assert!(rewrite(plain, &path, "alice", &catalog, &fixture).is_ok_and(|r| r.sql.is_none()));

    c.bench_function("rewrite masked select with join", |b| {
        b.iter(|| rewrite(black_box(masked), &path, "alice", &catalog, &fixture))
    });
    c.bench_function("rewrite masked select through a view", |b| {
        b.iter(|| rewrite(black_box(through_view), &path, "alice", &catalog, &fixture))
    });
    c.bench_function("rewrite untouched select (fast path)", |b| {
        b.iter(|| rewrite(black_box(plain), &path, "alice", &catalog, &fixture))
    });
    let resolved = [name("public", "orders"), name("hr", "departments")];
    c.bench_function("touches_protected on resolved names", |b| {
        b.iter(|| touches_protected(black_box(&resolved), &fixture))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

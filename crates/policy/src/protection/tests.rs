//! Protection rules: loading and its errors, which rules apply to a session, what they make of a relation.

use portcullis_sql::mask::{MaskKind, RowFilter};
use portcullis_sql::QualifiedName;
use time::macros::datetime;

use crate::tests::{load, load_err, MONDAY_10};
use crate::*;

const POLICY: &str = "
masks:
  - id: mask-ssn
    resource: app
    columns: [hr.employees.ssn, 'hr.*.ssn']
    mask: {kind: partial, keep_last: 4}
    exempt: {users: [alice], roles: [hr-admins]}
  - id: hash-hr-ids
    resource: '*'
    columns: ['hr.*.ssn', 'hr.*.*_id']
    mask: {kind: hash, salt: s3cret}
  - id: night-salary
    resource: app
    columns: [hr.employees.salary]
    mask: {kind: round, digits: -3}
    when: {time: {from: '18:00', to: '08:00', zone: '+01:00'}}
  - id: abroad-email
    resource: app
    columns: [hr.employees.email]
    mask: {kind: email}
    when: {locations: [US, unknown], device_trust: [low, unknown]}
row_filters:
  - id: own-region
    resource: app
    table: 'sales.*'
    predicate: \"region = :user.attributes.region AND created::date > '2020-01-01'\"
    exempt: {roles: [auditors]}
  - id: own-rows
    resource: other
    table: sales.orders
    predicate: owner = :user.name
column_denies:
  - id: no-card-numbers
    resource: app
    columns: [billing.cards.number]
    exempt: {roles: [pci]}
";

fn rel(schema: &str, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.into(),
        name: name.into(),
    }
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| c.to_string()).collect()
}

fn bob() -> Context {
    Context::new("bob", "app")
}

/// (column, rule) pairs of the masks `ctx` sees on `relation`.
fn masked(
    p: &CompiledPolicy,
    ctx: &Context,
    relation: QualifiedName,
    columns: &[&str],
) -> Vec<(String, String)> {
    p.protections(ctx, MONDAY_10)
        .protection_for(&relation, &cols(columns))
        .map(|prot| prot.masks.into_iter().map(|m| (m.column, m.rule)).collect())
        .unwrap_or_default()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn loads_every_key() {
    let policy = Policy::from_yaml(POLICY, "p.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.masks.len(), 4);
    assert_eq!(
        policy.masks[0].mask,
        MaskKind::Partial {
            keep_first: 0,
            keep_last: 4
        }
    );
    assert_eq!(policy.masks[0].exempt.roles, ["hr-admins"]);
    assert_eq!(policy.masks[2].mask, MaskKind::Round { digits: -3 });
    assert_eq!(
        policy.row_filters[0].predicate.parameterised,
        "region = $1 AND created::date > '2020-01-01'"
    );
    assert_eq!(
        policy.row_filters[0].predicate.variables,
        [SessionVariable::Attribute("region".into())]
    );
    assert_eq!(
        policy.column_denies[0].columns[0].as_str(),
        "billing.cards.number"
    );
    // Every kind and its parameters.
    let yaml = "masks:
  - {id: a, resource: app, columns: [s.t.a], mask: {kind: full}}
  - {id: b, resource: app, columns: [s.t.b], mask: {kind: null}}
  - {id: c, resource: app, columns: [s.t.c], mask: {kind: 'null'}}
  - {id: d, resource: app, columns: [s.t.d], mask: {kind: regex, pattern: '(\\d{3})\\d+', replacement: '\\1***'}}
  - {id: e, resource: app, columns: [s.t.e], mask: {kind: constant, value: hidden}}
  - {id: f, resource: app, columns: [s.t.f], mask: {kind: partial, keep_first: 1, keep_last: 2}}
  - {id: g, resource: app, columns: [s.t.g], mask: {kind: regex, pattern: '\\m\\w+(?=@)', replacement: x}}
";
    let policy = Policy::from_yaml(yaml, "p.yaml").unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&MaskKind> = policy.masks.iter().map(|m| &m.mask).collect();
    assert_eq!(kinds[0], &MaskKind::Full);
    assert_eq!(kinds[1], &MaskKind::Null);
    assert_eq!(kinds[2], &MaskKind::Null);
    assert_eq!(
        kinds[3],
        &MaskKind::Regex {
            pattern: "(\\d{3})\\d+".into(),
            replacement: "\\1***".into()
        }
    );
    assert_eq!(
        kinds[4],
        &MaskKind::Constant {
            value: "hidden".into()
        }
    );
}

#[test]
fn load_errors_name_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        // Unknown keys: at the key.
        ("masks:\n  - id: a\n    resource: app\n    colums: [s.t.c]\n    mask: {kind: full}\n", "policy.yaml:4:5: ", "unknown field `colums`"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: partial, keep-last: 4}\n", "policy.yaml:5:27: ", "unknown field `keep-last`"),
        ("row-filters: []\n", "policy.yaml:1:1: ", "unknown field `row-filters`"),
        // Patterns: at the scalar.
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c, hr.employees]\n    mask: {kind: full}\n", "policy.yaml:4:22: ", "not a column pattern"),
        ("masks:\n  - id: a\n    resource: app\n    columns: ['s..c']\n    mask: {kind: full}\n", "policy.yaml:4:15: ", "empty part"),
        ("row_filters:\n  - id: a\n    resource: app\n    table: sales.orders.region\n    predicate: 'true'\n", "policy.yaml:4:12: ", "not a table pattern"),
        // Whole entries: at the entry.
        ("masks:\n  - id: a\n    resource: app\n    columns: []\n    mask: {kind: full}\n", "policy.yaml:2:5: ", "`columns` is empty; list at least one"),
        ("masks:\n  - id: a\n    resource: ''\n    columns: [s.t.c]\n    mask: {kind: full}\n", "policy.yaml:2:5: ", "`resource` must not be empty"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full}\ncolumn_denies:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n", "policy.yaml:7:5: ", "duplicate column deny id `a`"),
        ("rules:\n  - id: a\n    action: audit\nrow_filters:\n  - id: a\n    resource: app\n    table: s.t\n    predicate: 'true'\n", "policy.yaml:5:5: ", "duplicate row filter id `a`"),
        // Mask parameters: at the `mask` mapping.
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full, keep_last: 4}\n", "policy.yaml:5:11: ", "`keep_last` is a parameter of `kind: partial`"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: round, digits: 5000}\n", "policy.yaml:5:11: ", "out of range"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: hash}\n", "policy.yaml:5:11: ", "`kind: hash` needs `salt`"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: partial}\n", "policy.yaml:5:11: ", "keeps nothing"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: regex, pattern: '(a', replacement: x}\n", "policy.yaml:5:11: ", "invalid regular expression"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: blur}\n", "policy.yaml:5:18: ", "unknown mask kind `blur`; use one of: full, partial"),
        // Exemptions and conditions: at their mapping or scalar.
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full}\n    exempt: {}\n", "policy.yaml:6:13: ", "names nobody"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full}\n    when: {device_trust: [hi]}\n", "policy.yaml:6:27: ", "unknown device trust level `hi`"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full}\n    when: {time: {from: '9:00'}}\n", "policy.yaml:6:25: ", "write HH:MM"),
        ("masks:\n  - id: a\n    resource: app\n    columns: [s.t.c]\n    mask: {kind: full}\n    when: {statement_kinds: [SELECT]}\n", "policy.yaml:6:12: ", "unknown field `statement_kinds`"),
        // Predicates: at the scalar.
        ("row_filters:\n  - id: a\n    resource: app\n    table: s.t\n    predicate: owner = :user.email\n", "policy.yaml:5:16: ", "unknown session variable `:user.email`"),
        ("row_filters:\n  - id: a\n    resource: app\n    table: s.t\n    predicate: \"true; DELETE FROM s.t\"\n", "policy.yaml:5:16: ", "remove the `;`"),
        ("row_filters:\n  - id: a\n    resource: app\n    table: s.t\n    predicate: id IN (SELECT id FROM s.u)\n", "policy.yaml:5:16: ", "starts a subquery"),
        ("row_filters:\n  - id: a\n    resource: app\n    table: s.t\n    predicate: region = = 1\n", "policy.yaml:5:16: ", "not valid SQL"),
    ];
    for (yaml, at, expect) in cases {
        let e = load_err(yaml);
        assert!(e.starts_with(at), "expected {at:?} for {expect:?}: {e}");
        assert!(e.contains(expect), "expected {expect:?} in {e}");
    }
}

#[test]
fn exemptions_by_user_and_role() {
    let p = load(POLICY);
    let employees = || rel("hr", "employees");
    // Bob sees the first matching mask; Alice (user) and HR admins (role) are exempt from it and fall through
    // to the next rule that selects the column.
    assert_eq!(
        masked(&p, &bob(), employees(), &["ssn"]),
        pairs(&[("ssn", "mask-ssn")])
    );
    let alice = Context::new("alice", "app");
    assert_eq!(
        masked(&p, &alice, employees(), &["ssn"]),
        pairs(&[("ssn", "hash-hr-ids")])
    );
    let admin = bob().with_roles(["staff", "hr-admins"]);
    assert_eq!(
        masked(&p, &admin, employees(), &["ssn"]),
        pairs(&[("ssn", "hash-hr-ids")])
    );
    // Column denies and row filters are exempted the same way.
    let cards = rel("billing", "cards");
    let number = cols(&["id", "number"]);
    let prot = p
        .protections(&bob(), MONDAY_10)
        .protection_for(&cards, &number);
    assert_eq!(
        prot.map(|p| p.denied_columns),
        Some(vec![("number".to_string(), "no-card-numbers".to_string())])
    );
    let pci = bob().with_roles(["pci"]);
    assert_eq!(
        p.protections(&pci, MONDAY_10)
            .protection_for(&cards, &number),
        None
    );
    let orders = rel("sales", "orders");
    assert!(p.protections(&bob(), MONDAY_10).may_protect(&orders));
    assert!(!p
        .protections(&bob().with_roles(["auditors"]), MONDAY_10)
        .may_protect(&orders));
}

#[test]
fn resources() {
    let p = load(POLICY);
    let other = Context::new("bob", "other");
    // Only the `*` mask applies on another resource, and the row filter written for it.
    let s = p.protections(&other, MONDAY_10);
    let ids: Vec<&str> = s.masks().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["hash-hr-ids"]);
    let filters: Vec<&str> = s.row_filters().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(filters, ["own-rows"]);
    assert!(s.column_denies().next().is_none());
}

#[test]
fn time_window_conditions() {
    let p = load(POLICY);
    let employees = rel("hr", "employees");
    let salary = cols(&["salary"]);
    // 18:00–08:00 at +01:00: Monday 10:00 UTC is 11:00 local, outside; 20:00 UTC is 21:00, inside.
    let day = p.protections(&bob(), MONDAY_10);
    assert_eq!(day.protection_for(&employees, &salary), None);
    let evening = p.protections(&bob(), datetime!(2024-01-01 20:00 UTC));
    let prot = evening.protection_for(&employees, &salary);
    assert_eq!(
        prot.map(|p| p.masks.into_iter().map(|m| m.mask).collect::<Vec<_>>()),
        Some(vec![MaskKind::Round { digits: -3 }])
    );
    // The window opens at 17:00 UTC, so the daytime protections must be rebuilt then; in the evening they
    // hold until the window closes at 07:00 UTC.
    assert_eq!(day.valid_until(), Some(datetime!(2024-01-01 17:00 UTC)));
    assert_eq!(
        p.protections(&bob(), datetime!(2024-01-01 20:00:30 UTC))
            .valid_until(),
        Some(datetime!(2024-01-02 07:00 UTC))
    );
    // Nothing time-dependent applies to Alice on another resource.
    let policy = load("masks:\n  - {id: a, resource: app, columns: [s.t.c], mask: {kind: full}}\n");
    assert_eq!(policy.protections(&bob(), MONDAY_10).valid_until(), None);
}

#[test]
fn location_and_device_trust_conditions() {
    let p = load(POLICY);
    let employees = || rel("hr", "employees");
    let email = &["email"];
    // Applies when the location is US or unknown AND the device trust is low or unknown.
    let unknown_everything = bob();
    assert_eq!(
        masked(&p, &unknown_everything, employees(), email),
        pairs(&[("email", "abroad-email")])
    );
    let us_low = bob()
        .with_location(Observed::Known("US".into()))
        .with_device_trust(Observed::Known(DeviceTrust::Low));
    assert_eq!(
        masked(&p, &us_low, employees(), email),
        pairs(&[("email", "abroad-email")])
    );
    let de = bob().with_location(Observed::Known("DE".into()));
    assert!(masked(&p, &de, employees(), email).is_empty());
    let us_high = bob()
        .with_location(Observed::Known("US".into()))
        .with_device_trust(Observed::Known(DeviceTrust::High));
    assert!(masked(&p, &us_high, employees(), email).is_empty());
    // Explain says why.
    let status = p.protection_status(&us_high, MONDAY_10);
    let abroad = status.iter().find(|s| s.id == "abroad-email");
    assert_eq!(
        abroad.map(|s| &s.applicability),
        Some(&Applicability::ConditionNotMet(
            "device trust high is not listed".into()
        ))
    );
    let ssn = status.iter().find(|s| s.id == "mask-ssn");
    assert_eq!(ssn.map(|s| s.applicability.applies()), Some(true));
    let alice = p.protection_status(&Context::new("alice", "app"), MONDAY_10);
    assert_eq!(
        alice[0].applicability,
        Applicability::Exempt("user alice".into())
    );
    assert_eq!(alice[0].kind, ProtectionKind::Mask);
    assert_eq!(alice[0].targets, ["hr.employees.ssn", "hr.*.ssn"]);
}

#[test]
fn unknown_client_address_applies_the_rule() {
    let p = load("masks:\n  - {id: a, resource: app, columns: [s.t.c], mask: {kind: full}, when: {client_cidrs: [10.0.0.0/8]}}\n");
    let t = rel("s", "t");
    assert!(p.protections(&bob(), MONDAY_10).may_protect(&t));
    let outside = bob().with_addr("192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}")));
    assert!(!p.protections(&outside, MONDAY_10).may_protect(&t));
    let inside = bob().with_addr("10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}")));
    assert!(p.protections(&inside, MONDAY_10).may_protect(&t));
}

#[test]
fn wildcard_columns_and_first_match_wins_per_column() {
    let p = load(POLICY);
    // hr.payroll: `hr.*.ssn` (mask-ssn, first) and `hr.*.*_id` (hash-hr-ids) select different columns; the
    // column both select gets the first rule's mask. Columns nothing selects stay out, in catalog order.
    let got = masked(
        &p,
        &bob(),
        rel("hr", "payroll"),
        &["emp_id", "name", "ssn", "dept_id"],
    );
    assert_eq!(
        got,
        pairs(&[
            ("emp_id", "hash-hr-ids"),
            ("ssn", "mask-ssn"),
            ("dept_id", "hash-hr-ids")
        ])
    );
    // Matching is case-sensitive against catalog names.
    assert!(masked(&p, &bob(), rel("hr", "payroll"), &["SSN"]).is_empty());
    assert!(masked(&p, &bob(), rel("HR", "payroll"), &["ssn"]).is_empty());
    // `schema.table.*` selects every column.
    let all = load("masks:\n  - {id: all, resource: app, columns: ['s.t.*'], mask: {kind: full}}\n  - {id: later, resource: app, columns: [s.t.b], mask: {kind: 'null'}}\n");
    assert_eq!(
        masked(&all, &bob(), rel("s", "t"), &["a", "b"]),
        pairs(&[("a", "all"), ("b", "all")])
    );
}

#[test]
fn row_filter_values_come_from_the_context() {
    let p = load(POLICY);
    let orders = rel("sales", "orders");
    let ctx = bob().with_attribute("region", "emea");
    let prot = p
        .protections(&ctx, MONDAY_10)
        .protection_for(&orders, &cols(&["id", "region"]));
    assert_eq!(
        prot.map(|p| p.row_filters),
        Some(vec![RowFilter {
            predicate: "region = $1 AND created::date > '2020-01-01'".into(),
            values: vec![Some("emea".into())],
            rule: "own-region".into(),
        }])
    );
    // A missing attribute is NULL, so the filter shows nothing rather than everything.
    let prot = p
        .protections(&bob(), MONDAY_10)
        .protection_for(&orders, &cols(&["id"]));
    assert_eq!(
        prot.map(|p| p
            .row_filters
            .into_iter()
            .map(|f| f.values)
            .collect::<Vec<_>>()),
        Some(vec![vec![None]])
    );
    // Every variable.
    let p = load("row_filters:\n  - id: all\n    resource: '*'\n    table: s.t\n    predicate: \"a = :user.name AND b = :resource AND c = ANY(string_to_array(:user.roles, ',')) AND note <> ':user.name' AND d = :user.name\"\n");
    let ctx = Context::new("carol", "db1").with_roles(["x", "y"]);
    let prot = p
        .protections(&ctx, MONDAY_10)
        .protection_for(&rel("s", "t"), &cols(&["a"]));
    let filter = prot.map(|p| p.row_filters).unwrap_or_default();
    assert_eq!(
        filter[0].predicate,
        "a = $1 AND b = $2 AND c = ANY(string_to_array($3, ',')) AND note <> ':user.name' AND d = $1"
    );
    assert_eq!(
        filter[0].values,
        [Some("carol".into()), Some("db1".into()), Some("x,y".into())]
    );
}

#[test]
fn may_protect_and_empty_sessions() {
    let p = load(POLICY);
    let s = p.protections(&bob(), MONDAY_10);
    assert!(!s.is_empty());
    assert!(s.may_protect(&rel("hr", "employees")));
    assert!(s.may_protect(&rel("hr", "anything")));
    assert!(s.may_protect(&rel("sales", "orders")));
    assert!(s.may_protect(&rel("billing", "cards")));
    assert!(!s.may_protect(&rel("public", "orders")));
    assert!(!s.may_protect(&rel("billing", "invoices")));
    // A relation selected only by column patterns whose columns it lacks has no protection.
    assert_eq!(
        s.protection_for(&rel("hr", "departments"), &cols(&["name"])),
        None
    );
    // A policy without protection rules.
    let none = load("grants: []\n");
    let s = none.protections(&bob(), MONDAY_10);
    assert!(s.is_empty());
    assert!(!s.may_protect(&rel("hr", "employees")));
    assert_eq!(
        s.protection_for(&rel("hr", "employees"), &cols(&["ssn"])),
        None
    );
    // A session exempt from everything on the resource.
    let exempt = load(
        "masks:\n  - {id: a, resource: app, columns: ['*.*.*'], mask: {kind: full}, exempt: {roles: [dba]}}\n",
    );
    assert!(exempt
        .protections(&bob().with_roles(["dba"]), MONDAY_10)
        .is_empty());
    assert!(!exempt.protections(&bob(), MONDAY_10).is_empty());
}

#[test]
fn compiled_policy_lists_its_rules() {
    let p = load(POLICY);
    assert_eq!(p.masks().count(), 4);
    assert_eq!(p.row_filters().count(), 2);
    assert_eq!(p.column_denies().count(), 1);
    assert_eq!(p.protection_status(&bob(), MONDAY_10).len(), 7);
}

#[test]
fn the_example_in_masking_md_loads() {
    let doc = include_str!("../../MASKING.md");
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or("");
    let policy = Policy::from_yaml(example, "MASKING.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            policy.masks.len(),
            policy.row_filters.len(),
            policy.column_denies.len()
        ),
        (1, 1, 1)
    );
    assert!(policy.masks[0].when.time.is_some());
    assert_eq!(policy.masks[0].when.client_cidrs.len(), 1);
}

/// Not a benchmark with assertions: prints what the gateway pays per session and per relation with 1,000
/// masks, 100 row filters and 100 column denies.
#[test]
fn protection_cost_with_many_rules() {
    let mut yaml = String::from("masks:\n");
    for i in 0..1000 {
        yaml.push_str(&format!(
            "  - {{id: m{i}, resource: '*', columns: ['s{}.t{i}.c*', 's{}.*.secret{i}'], mask: {{kind: full}}, exempt: {{roles: [r{}]}}}}\n",
            i % 50,
            i % 50,
            i % 20
        ));
    }
    yaml.push_str("row_filters:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "  - {{id: f{i}, resource: db{}, table: s{i}.t{i}, predicate: 'region = :user.attributes.region'}}\n",
            i % 10
        ));
    }
    yaml.push_str("column_denies:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "  - {{id: d{i}, resource: '*', columns: ['s{i}.t{i}.card'], exempt: {{users: [p{i}]}}}}\n"
        ));
    }
    let p = load(&yaml);
    let ctx = Context::new("p1", "db1")
        .with_roles(["r1", "everyone"])
        .with_attribute("region", "emea");
    let columns = cols(&["id", "c1", "name", "card", "secret7", "region"]);
    let start = std::time::Instant::now();
    let mut sessions = 0usize;
    for _ in 0..100 {
        sessions += usize::from(!p.protections(&ctx, MONDAY_10).is_empty());
    }
    let per_session = start.elapsed().as_nanos() / 100;
    let s = p.protections(&ctx, MONDAY_10);
    let start = std::time::Instant::now();
    let mut protected = 0usize;
    for i in 0..1000 {
        let relation = rel(&format!("s{}", i % 60), &format!("t{i}"));
        if s.may_protect(&relation) {
            protected += usize::from(s.protection_for(&relation, &columns).is_some());
        }
    }
    let per_relation = start.elapsed().as_nanos() / 1000;
    println!("1200 protection rules: {per_session} ns per session, {per_relation} ns per relation ({protected} of 1000 protected)");
    assert_eq!(sessions, 100);
    assert!(protected > 0);
}

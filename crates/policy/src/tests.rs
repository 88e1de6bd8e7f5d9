//! Engine tests: seed 004, grants, row thresholds, context, connection stages, loading errors.

use std::net::IpAddr;

use portcullis_sql::{
    analyze_uncached, resolve, MemoryCatalog, ObjectKind, Operation, SearchPath, StatementKind,
};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::*;

/// Monday 2024-01-01 10:00 UTC.
pub(crate) const MONDAY_10: OffsetDateTime = datetime!(2024-01-01 10:00 UTC);

pub(crate) fn load(yaml: &str) -> CompiledPolicy {
    let policy = Policy::from_yaml(yaml, "policy.yaml").unwrap_or_else(|e| panic!("{e}"));
    CompiledPolicy::compile(&policy)
}

pub(crate) fn load_err(yaml: &str) -> String {
    Policy::from_yaml(yaml, "policy.yaml")
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

/// Components of the first statement of `sql`, resolved against the default search path.
pub(crate) fn comps(sql: &str) -> Vec<Component> {
    let analysis = analyze_uncached(sql).unwrap();
    let stmt = &analysis.statements[0];
    let catalog = MemoryCatalog::new()
        .with_relation("hr", "employees")
        .with_relation("hr", "departments")
        .with_relation("public", "orders")
        .with_function("pg_catalog", "now")
        .with_function("pg_catalog", "lower");
    let path = SearchPath::default_path();
    components_with(stmt, |o| {
        resolve(&o.object, o.kind, &path, "alice", &catalog)
    })
}

fn obj(schema: &str, name: &str, operation: Operation, columns: &[&str]) -> Component {
    Component::Object(ObjectComponent {
        schema: schema.into(),
        name: name.into(),
        kind: ObjectKind::Relation,
        operation,
        columns: columns.iter().map(|c| c.to_string()).collect(),
    })
}

fn stmt(kind: StatementKind) -> Component {
    Component::Statement(StatementComponent {
        kind,
        text: String::new(),
        opaque: None,
    })
}

fn ids(fired: &[FiredRule]) -> Vec<&str> {
    fired.iter().map(|f| f.id.as_str()).collect()
}

fn alice() -> Context {
    Context::new("alice", "prod")
}

const ALL_GRANT: &str = "
grants:
  - to: {user: alice}
    resource: prod
    objects: ['*']
    privileges: [all]
";

const SEED_004: &str = "
grants:
  - to: {user: alice}
    resource: prod
    objects: ['*']
    privileges: [all]
rules:
  - id: 1st_EmployeesTable
    when: {objects: [hr.employees]}
    action: audit
  - id: 2nd_auditHRschema
    when: {objects: ['hr.*']}
    action: audit
  - id: 3rd_audit_db
    when: {objects: ['*.*']}
    action: audit
  - id: QueryTypes
    when: {statement_kinds_not: [SELECT]}
    action: audit
";

#[test]
fn seed_004_select_fires_only_the_table_rule() {
    let p = load(SEED_004);
    let d = p.evaluate_statement(&alice(), &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert_eq!(ids(&d.fired), ["1st_EmployeesTable"]);
}

#[test]
fn seed_004_ctas_fires_three_rules_one_per_component() {
    let p = load(SEED_004);
    let c = comps(
        "CREATE TABLE x AS SELECT e.name, d.name AS dept FROM hr.employees e JOIN hr.departments d ON e.dept_id = d.id",
    );
    // public.x (create), hr.employees, hr.departments, and the statement component.
    assert_eq!(c.len(), 4, "{c:?}");
    let d = p.evaluate_statement(&alice(), &c, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert_eq!(
        ids(&d.fired),
        ["1st_EmployeesTable", "2nd_auditHRschema", "QueryTypes"]
    );
    let described: Vec<String> = d
        .fired
        .iter()
        .map(|f| c[f.components[0]].describe())
        .collect();
    assert_eq!(
        described,
        [
            "read hr.employees",
            "read hr.departments",
            "statement CREATE TABLE AS"
        ]
    );
    // Creation fires an object rule only when the rule lists `create`.
    let p = load(&SEED_004.replace(
        "when: {objects: ['*.*']}",
        "when: {objects: ['*.*'], operations: [create]}",
    ));
    let d = p.evaluate_statement(&alice(), &c, MONDAY_10);
    assert_eq!(
        ids(&d.fired),
        [
            "1st_EmployeesTable",
            "2nd_auditHRschema",
            "3rd_audit_db",
            "QueryTypes"
        ]
    );
}

#[test]
fn a_rule_fired_by_two_components_is_reported_once() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: hr\n    when: {{objects: ['hr.*']}}\n    action: audit\n"
    ));
    let c = comps("SELECT * FROM hr.employees JOIN hr.departments USING (dept_id)");
    let d = p.evaluate_statement(&alice(), &c, MONDAY_10);
    assert_eq!(ids(&d.fired), ["hr"]);
    assert_eq!(d.fired[0].components, [0, 1]);
}

#[test]
fn higher_ranked_rule_shadows_a_lower_one_for_the_same_component() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: audit-hr\n    when: {{objects: ['hr.*']}}\n    action: audit\n  - id: block-emp\n    when: {{objects: [hr.employees]}}\n    action: block\n"
    ));
    let d = p.evaluate_statement(&alice(), &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(ids(&d.fired), ["audit-hr"]);
}

const GRANTS: &str = "
grants:
  - to: {user: alice}
    resource: prod
    objects: [hr.employees]
    privileges: [select]
  - to: {role: analysts}
    resource: prod
    objects: ['sales.*']
    privileges: [select, copy-out]
  - to: {user: alice}
    resource: '*'
    objects: [public.orders]
    privileges: [insert]
    expires: 2024-01-01T12:00:00Z
  - to: {user: alice}
    resource: prod
    objects: [hr.employees.name, hr.employees.email]
    privileges: [update]
  - to: {user: bob}
    resource: prod
    objects: ['*']
    privileges: [select]
    valid: {from: 2024-01-01T09:00:00Z, until: 2024-01-01T17:00:00Z}
";

#[test]
fn missing_privilege_is_named() {
    let p = load(GRANTS);
    let d = p.evaluate_statement(&alice(), &comps("DELETE FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, "alice lacks DELETE on hr.employees in prod");
    assert_eq!(d.missing_grants.len(), 1);
    let d = p.evaluate_statement(
        &alice(),
        &comps("SELECT * FROM hr.employees JOIN hr.departments USING (id)"),
        MONDAY_10,
    );
    assert_eq!(d.reason, "alice lacks SELECT on hr.departments in prod");
    let d = p.evaluate_statement(&alice(), &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    // Another resource: the prod grant does not apply.
    let d = p.evaluate_statement(
        &Context::new("alice", "staging"),
        &comps("SELECT * FROM hr.employees"),
        MONDAY_10,
    );
    assert_eq!(d.reason, "alice lacks SELECT on hr.employees in staging");
}

#[test]
fn role_grants_and_wildcards() {
    let p = load(GRANTS);
    let carol = Context::new("carol", "prod").with_roles(["analysts"]);
    let d = p.evaluate_statement(
        &carol,
        &[
            obj("sales", "orders", Operation::Read, &[]),
            stmt(StatementKind::Select),
        ],
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    let d = p.evaluate_statement(
        &carol,
        &[
            obj("sales", "orders", Operation::CopyOut, &[]),
            stmt(StatementKind::Copy),
        ],
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    let d = p.evaluate_statement(
        &carol,
        &[
            obj("sales", "orders", Operation::Update, &[]),
            stmt(StatementKind::Update),
        ],
        MONDAY_10,
    );
    assert_eq!(d.reason, "carol lacks UPDATE on sales.orders in prod");
    let no_role = Context::new("carol", "prod");
    let d = p.evaluate_statement(
        &no_role,
        &[
            obj("sales", "orders", Operation::Read, &[]),
            stmt(StatementKind::Select),
        ],
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::Deny);
}

#[test]
fn grant_expiry_and_validity_window() {
    let p = load(GRANTS);
    let insert = comps("INSERT INTO orders (id) VALUES (1)");
    assert_eq!(
        p.evaluate_statement(&alice(), &insert, MONDAY_10).verdict,
        Verdict::Allow
    );
    let after = datetime!(2024-01-01 12:00 UTC);
    let d = p.evaluate_statement(&alice(), &insert, after);
    assert_eq!(d.reason, "alice lacks INSERT on public.orders in prod");
    let bob = Context::new("bob", "prod");
    let sel = comps("SELECT * FROM hr.employees");
    assert_eq!(
        p.evaluate_statement(&bob, &sel, MONDAY_10).verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate_statement(&bob, &sel, datetime!(2024-01-01 08:59 UTC))
            .verdict,
        Verdict::Deny
    );
    assert_eq!(
        p.evaluate_statement(&bob, &sel, datetime!(2024-01-01 17:00 UTC))
            .verdict,
        Verdict::Deny
    );
}

#[test]
fn column_grants_cover_only_their_columns() {
    let p = load(GRANTS);
    let d = p.evaluate_statement(
        &alice(),
        &comps("UPDATE hr.employees SET name = 'x', email = 'y'"),
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    let d = p.evaluate_statement(
        &alice(),
        &comps("UPDATE hr.employees SET name = 'x', salary = 1"),
        MONDAY_10,
    );
    assert!(
        d.reason
            .contains("alice lacks UPDATE on hr.employees.salary in prod"),
        "{}",
        d.reason
    );
    // Unknown columns mean every column: not covered by column grants.
    let d = p.evaluate_statement(
        &alice(),
        &[
            obj("hr", "employees", Operation::Update, &[]),
            stmt(StatementKind::Update),
        ],
        MONDAY_10,
    );
    assert_eq!(d.reason, "alice lacks UPDATE on hr.employees in prod");
}

#[test]
fn statements_without_objects_and_catalog_functions_need_no_grant() {
    let p = load("");
    for sql in [
        "SET search_path = hr",
        "BEGIN",
        "SHOW work_mem",
        "SELECT now(), lower('A')",
    ] {
        let d = p.evaluate_statement(&alice(), &comps(sql), MONDAY_10);
        assert_eq!(d.verdict, Verdict::Allow, "{sql}: {}", d.reason);
    }
    let d = p.evaluate_statement(&alice(), &comps("SELECT public.my_fn()"), MONDAY_10);
    assert_eq!(d.reason, "alice lacks EXECUTE on public.my_fn in prod");
}

#[test]
fn opaque_statements_are_denied() {
    let p = load(ALL_GRANT);
    let d = p.evaluate_statement(&alice(), &comps("DO $$ BEGIN PERFORM 1; END $$"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.contains("cannot be fully analysed"),
        "{}",
        d.reason
    );
}

#[test]
fn only_an_explicit_allow_for_named_users_lets_an_opaque_statement_run() {
    let do_block = comps("DO $$ BEGIN PERFORM 1; END $$");
    for (rule, allowed) in [
        ("  - id: dba-do\n    when: {users: [alice], statement_kinds: [DO]}\n    action: allow\n", true),
        // For everyone, by exclusion, or for someone else: still denied.
        ("  - id: all-do\n    when: {statement_kinds: [DO]}\n    action: allow\n", false),
        ("  - id: not-select\n    when: {users: [alice], statement_kinds_not: [SELECT]}\n    action: allow\n", false),
        ("  - id: bob-do\n    when: {users: [bob], statement_kinds: [DO]}\n    action: allow\n", false),
        ("  - id: audit-do\n    when: {users: [alice], statement_kinds: [DO]}\n    action: audit\n", false),
    ] {
        let p = load(&format!("{ALL_GRANT}\nrules:\n{rule}"));
        let d = p.evaluate_statement(&alice(), &do_block, MONDAY_10);
        assert_eq!(d.verdict == Verdict::Allow, allowed, "{rule}: {}", d.reason);
    }
}

fn rows_policy(first: &str, second: &str) -> CompiledPolicy {
    load(&format!("{ALL_GRANT}\nrules:\n{first}{second}"))
}

const ALLOW_ABOVE_1: &str = "  - id: allow-1\n    when: {rows_above: 1}\n    action: allow\n";
const BLOCK_ABOVE_10: &str = "  - id: block-10\n    when: {rows_above: 10}\n    action: block\n";
const BLOCK_ALL: &str = "  - id: block-all\n    action: block\n    message: maintenance\n";

#[test]
fn row_thresholds_follow_priority() {
    let sel = comps("SELECT * FROM hr.employees");
    let p = rows_policy(ALLOW_ABOVE_1, BLOCK_ABOVE_10);
    let d = p.evaluate_statement(&alice(), &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.fired.is_empty());
    assert_eq!(d.post_execution.components.len(), 1);
    let out = p.evaluate_outcome(&d.post_execution, 40);
    assert_eq!(out.verdict, Verdict::Allow);
    assert_eq!(ids(&out.fired), ["allow-1"]);

    let p = rows_policy(BLOCK_ABOVE_10, ALLOW_ABOVE_1);
    let d = p.evaluate_statement(&alice(), &sel, MONDAY_10);
    let out = p.evaluate_outcome(&d.post_execution, 40);
    assert_eq!(out.verdict, Verdict::Deny);
    assert_eq!(ids(&out.fired), ["block-10"]);
    assert!(
        out.reason.contains("blocked by rule `block-10`"),
        "{}",
        out.reason
    );
    let out = p.evaluate_outcome(&d.post_execution, 5);
    assert_eq!(out.verdict, Verdict::Allow);
    assert_eq!(ids(&out.fired), ["allow-1"]);
    let out = p.evaluate_outcome(&d.post_execution, 1);
    assert!(out.fired.is_empty());
}

#[test]
fn unconditional_block_blocks_whatever_its_rank() {
    let sel = comps("SELECT * FROM hr.employees");
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n{ALLOW_ABOVE_1}{BLOCK_ABOVE_10}{BLOCK_ALL}"
    ));
    let d = p.evaluate_statement(&alice(), &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, "blocked by rule `block-all`: maintenance");
    // Also below an `allow` with no rows filter on the same statement.
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: allow-sel\n    when: {{statement_kinds: [SELECT]}}\n    action: allow\n{BLOCK_ALL}"
    ));
    assert_eq!(
        p.evaluate_statement(&alice(), &sel, MONDAY_10).verdict,
        Verdict::Deny
    );
}

#[test]
fn object_block_below_row_rule_acts_before_execution() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n{ALLOW_ABOVE_1}  - id: block-emp\n    when: {{objects: [hr.employees]}}\n    action: block\n"
    ));
    let d = p.evaluate_statement(&alice(), &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.post_execution.is_empty());
}

#[test]
fn passive_rule_below_row_rules_is_the_fallback() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: block-10\n    when: {{objects: ['hr.*'], rows_above: 10}}\n    action: block\n  - id: audit-emp\n    when: {{objects: [hr.employees]}}\n    action: audit\n"
    ));
    let d = p.evaluate_statement(&alice(), &comps("SELECT * FROM hr.employees"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.fired.is_empty());
    assert_eq!(
        ids(&p.evaluate_outcome(&d.post_execution, 3).fired),
        ["audit-emp"]
    );
    assert_eq!(
        ids(&p.evaluate_outcome(&d.post_execution, 30).fired),
        ["block-10"]
    );
}

const CONTEXT_RULES: &str = "
rules:
  - id: unknown-place
    when: {locations: [unknown]}
    action: block
    message: location unknown
  - id: office
    when: {client_cidrs: [10.0.0.0/8]}
    action: audit
";

#[test]
fn unknown_location_is_matchable() {
    let p = load(&format!("{ALL_GRANT}{CONTEXT_RULES}"));
    let sel = comps("SELECT 1");
    let here = alice().with_addr("10.1.2.3".parse().unwrap());
    let d = p.evaluate_statement(&here, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "blocked by rule `unknown-place`: location unknown"
    );
    let de = here.clone().with_location(Observed::Known("de".into()));
    let d = p.evaluate_statement(&de, &sel, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert_eq!(ids(&d.fired), ["office"]);
}

#[test]
fn a_condition_that_cannot_be_evaluated_denies() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: office-only\n    when: {{client_cidrs: [10.0.0.0/8], statement_kinds: [DELETE]}}\n    action: audit\n"
    ));
    let del = comps("DELETE FROM hr.employees");
    let no_addr = alice();
    let d = p.evaluate_statement(&no_addr, &del, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.fired[0].indeterminate.is_some());
    assert!(d.reason.contains("could not be evaluated"), "{}", d.reason);
    // The other conditions decide first: a SELECT does not match, so nothing is indeterminate.
    assert_eq!(
        p.evaluate_statement(&no_addr, &comps("SELECT 1"), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
    // A forbid with a cidr and no address blocks.
    let p = load(&format!("{ALL_GRANT}\nrules:\n  - id: no-vpn\n    when: {{client_cidrs: [192.0.2.0/24]}}\n    action: block\n"));
    assert_eq!(
        p.evaluate_statement(&no_addr, &del, MONDAY_10).verdict,
        Verdict::Deny
    );
    let outside = alice().with_addr("198.51.100.1".parse().unwrap());
    assert_eq!(
        p.evaluate_statement(&outside, &del, MONDAY_10).verdict,
        Verdict::Allow
    );
}

#[test]
fn time_windows_users_roles_and_regex() {
    let p = load(&format!(
        "{ALL_GRANT}
rules:
  - id: night
    when:
      roles: [contractors]
      time: {{days: [mon, tue, wed, thu, fri], from: '22:00', to: '06:00', zone: '+02:00'}}
    action: block
  - id: drops
    when: {{text_regex: '(?i)\\bdrop\\b'}}
    action: require-approval
workflows:
  - {{name: default, approvers: {{roles: [dba]}}}}
"
    ));
    let contractor = alice().with_roles(["contractors"]);
    let sel = comps("SELECT 1");
    // Monday 10:00 UTC = 12:00 +02:00: inside no window.
    assert_eq!(
        p.evaluate_statement(&contractor, &sel, MONDAY_10).verdict,
        Verdict::Allow
    );
    // Monday 21:00 UTC = 23:00 local Monday.
    assert_eq!(
        p.evaluate_statement(&contractor, &sel, datetime!(2024-01-01 21:00 UTC))
            .verdict,
        Verdict::Deny
    );
    // Tuesday 03:00 UTC = 05:00 local, window started Monday.
    assert_eq!(
        p.evaluate_statement(&contractor, &sel, datetime!(2024-01-02 03:00 UTC))
            .verdict,
        Verdict::Deny
    );
    // Sunday 03:00 local belongs to Saturday's window: no.
    assert_eq!(
        p.evaluate_statement(&contractor, &sel, datetime!(2024-01-07 01:00 UTC))
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate_statement(&alice(), &sel, datetime!(2024-01-01 21:00 UTC))
            .verdict,
        Verdict::Allow
    );
    let drop = comps("DROP TABLE hr.employees");
    let d = p.evaluate_statement(&alice(), &drop, MONDAY_10);
    assert_eq!(d.verdict, Verdict::RequireApproval, "{}", d.reason);
}

#[test]
fn logout_forbid_and_device_trust() {
    let p = load(&format!(
        "{ALL_GRANT}\nrules:\n  - id: low-trust\n    when: {{device_trust: [low, unknown]}}\n    action: logout\n    message: enrol your device\n"
    ));
    let d = p.evaluate_statement(&alice(), &comps("SELECT 1"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.logout);
    let trusted = alice().with_device_trust(Observed::Known(DeviceTrust::High));
    assert_eq!(
        p.evaluate_statement(&trusted, &comps("SELECT 1"), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
}

#[test]
fn connection_stages() {
    let p = load(&format!(
        "{ALL_GRANT}
rules:
  - id: only-office
    stage: pre-connection
    when: {{client_cidrs: ['192.0.2.0/24', '2001:db8::/32']}}
    action: allow
  - id: everyone-else
    stage: pre-connection
    action: block
  - id: low-trust
    stage: post-connection
    when: {{device_trust: [low]}}
    action: logout
    message: low device trust
"
    ));
    let mut ctx = alice().with_addr("192.0.2.9".parse().unwrap());
    let d = p.evaluate_connection(ConnectionStage::Pre, &ctx, MONDAY_10);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.fired.unwrap().id, "only-office");
    let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
    ctx.client_addr = Some(mapped);
    assert_eq!(
        p.evaluate_connection(ConnectionStage::Pre, &ctx, MONDAY_10)
            .verdict,
        Verdict::Allow
    );
    ctx.client_addr = Some("203.0.113.1".parse().unwrap());
    assert_eq!(
        p.evaluate_connection(ConnectionStage::Pre, &ctx, MONDAY_10)
            .verdict,
        Verdict::Deny
    );
    let low = alice().with_device_trust(Observed::Known(DeviceTrust::Low));
    let d = p.evaluate_connection(ConnectionStage::Post, &low, MONDAY_10);
    assert_eq!((d.verdict, d.logout), (Verdict::Deny, true));
    assert_eq!(d.reason, "rule `low-trust` forces logout: low device trust");
    assert_eq!(
        p.evaluate_connection(ConnectionStage::Post, &alice(), MONDAY_10)
            .verdict,
        Verdict::Allow
    );
    let d = p.evaluate_connection(
        ConnectionStage::Post,
        &Context::new("mallory", "prod"),
        MONDAY_10,
    );
    assert_eq!(d.reason, "mallory has no active grant on prod");
}

#[test]
fn yaml_errors_name_file_line_column() {
    // Unknown privilege: reported at the scalar.
    let e = load_err(
        "grants:
  - to: {user: alice}
    resource: prod
    objects: [hr.employees]
    privileges:
      - select
      - selekt
",
    );
    assert!(e.starts_with("policy.yaml:7:9: "), "{e}");
    assert!(
        e.contains("unknown privilege `selekt`; use one of: select"),
        "{e}"
    );

    // Unknown key in a rule's filter: reported at the filter mapping.
    let e = load_err("rules:\n  - id: a\n    action: audit\n    when:\n      objets: [hr.x]\n");
    assert!(e.starts_with("policy.yaml:5:7: "), "{e}");
    assert!(e.contains("unknown field `objets`"), "{e}");

    // Whole-rule checks: at the rule item.
    let e = load_err("rules:\n  - id: a\n    action: audit\n  - id: a\n    action: block\n");
    assert!(e.starts_with("policy.yaml:4:5: "), "{e}");
    assert!(e.contains("duplicate rule id `a`"), "{e}");
    let e = load_err("rules:\n  - id: a\n    stage: pre-connection\n    when: {users: [bob]}\n    action: block\n");
    assert!(
        e.starts_with("policy.yaml:2:5: ") && e.contains("not known before authentication"),
        "{e}"
    );
    let e = load_err("rules:\n  - id: a\n    when: {statement_kinds: [SELECT], statement_kinds_not: [DELETE]}\n    action: audit\n");
    assert!(
        e.contains("either `statement_kinds` or `statement_kinds_not`"),
        "{e}"
    );
    let e =
        load_err("rules:\n  - id: a\n    when: {rows_above: 3}\n    action: require-approval\nworkflows:\n  - {name: default, approvers: {users: [carol]}}\n");
    assert!(e.contains("decided after execution"), "{e}");

    for (yaml, expect) in [
        ("rules:\n  - id: a\n    when: {text_regex: '(unclosed'}\n    action: audit\n", "invalid text_regex"),
        ("rules:\n  - id: a\n    when: {client_cidrs: [10.0.0.1/8]}\n    action: audit\n", "did you mean `10.0.0.0/8`"),
        ("rules:\n  - id: a\n    when: {client_cidrs: [10.0.0.0/33]}\n    action: audit\n", "invalid address range"),
        ("rules:\n  - id: a\n    when: {time: {from: '9:00', to: '18:00'}}\n    action: audit\n", "write HH:MM"),
        ("rules:\n  - id: a\n    when: {time: {days: [mon], zone: Europe/Berlin}}\n    action: audit\n", "named zones are not supported"),
        ("rules:\n  - id: a\n    when: {time: {days: [monday, funday]}}\n    action: audit\n", "unknown day `funday`"),
        ("rules:\n  - id: a\n    when: {statement_kinds: [SELCT]}\n    action: audit\n", "unknown statement kind `SELCT`"),
        ("rules:\n  - id: a\n    when: {operations: [reed]}\n    action: audit\n", "unknown operation `reed`"),
        ("rules:\n  - id: a\n    when: {users: []}\n    action: audit\n", "`users` is an empty list"),
        ("rules:\n  - id: a\n    when: {locations: [Germany]}\n    action: audit\n", "alpha-2"),
        ("rules:\n  - id: a\n    action: deny\n", "unknown action `deny`"),
        ("grants:\n  - to: {user: a, role: b}\n    resource: prod\n    objects: ['*']\n    privileges: [select]\n", "exactly one of"),
        ("grants:\n  - to: {user: a}\n    resource: prod\n    objects: ['*']\n    privileges: [select]\n    expires: tomorrow\n", "RFC 3339"),
        ("grants:\n  - to: {user: a}\n    resource: prod\n    objects: ['a..b']\n    privileges: [select]\n", "empty part"),
        ("rulez: []\n", "unknown field `rulez`"),
    ] {
        let e = load_err(yaml);
        assert!(e.starts_with("policy.yaml:"), "{e}");
        assert!(e.contains(expect), "expected {expect:?} in {e}");
    }
    let e =
        load_err("rules:\n  - id: a\n    when: {client_cidrs: [10.0.0.0/33]}\n    action: audit\n");
    assert!(e.starts_with("policy.yaml:3:27: "), "{e}");
    // Kinds that the analyser reports as `Other` can be named.
    assert!(Policy::from_yaml("rules:\n  - id: a\n    when: {statement_kinds: [alter system, CREATE ROLE]}\n    action: block\n", "p").is_ok());
}

#[path = "../benches/large_policy.rs"]
mod large_policy;

/// Not a benchmark with assertions: prints the cost per statement for a large policy.
#[test]
fn large_policy_cost_per_statement() {
    let yaml = large_policy::rules_and_grants();
    let policy = Policy::from_yaml(&yaml, "big.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((policy.rules.len(), policy.grants.len()), (10_000, 1001));
    let compiled = CompiledPolicy::compile(&policy);
    let statements: Vec<(Context, Vec<Component>)> = (0..10_000u32)
        .map(|i| {
            let ctx = Context::new(format!("p{}", i % 100), format!("db{}", i % 10))
                .with_roles([format!("r{}", i % 20), "everyone".into()]);
            let comps = vec![
                obj(
                    &format!("s{}", i % 50),
                    &format!("t{}", i % 1000),
                    Operation::Read,
                    &["c1"],
                ),
                obj(
                    &format!("s{}", (i + 1) % 50),
                    &format!("t{}", (i + 7) % 1000),
                    Operation::Update,
                    &[],
                ),
                stmt(if i % 2 == 0 {
                    StatementKind::Select
                } else {
                    StatementKind::Delete
                }),
            ];
            (ctx, comps)
        })
        .collect();
    let mut fired = 0usize;
    let mut best = u128::MAX;
    for _pass in 0..3 {
        let start = std::time::Instant::now();
        fired = 0;
        for (ctx, comps) in &statements {
            fired += compiled
                .evaluate_statement(ctx, comps, MONDAY_10)
                .fired
                .len();
        }
        best = best.min(start.elapsed().as_nanos() / statements.len() as u128);
    }
    println!("10000 rules, 1001 grants: {best} ns/statement, best of 3 passes ({fired} rules fired per pass)");
    assert!(fired > 0);
}

const WORKFLOWS: &str = "workflows:
  - name: dba
    approvers: {users: [carol], roles: [dba]}
    required: 1
    valid_for: 2h
  - name: default
    approvers: {users: [carol, dave]}
    required: 2
";

#[test]
fn workflows_and_on_demand_load_with_defaults() {
    let policy = Policy::from_yaml(
        &format!(
            "{WORKFLOWS}on_demand:
  - name: hr-read
    resource: app
    grants: [{{objects: ['hr.*'], privileges: [select]}}]
    workflow: dba
  - name: app-any
    resource: app
    workflow: default
    max_duration: 30m
"
        ),
        "p.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dba = policy.workflow("dba").unwrap();
    assert_eq!(dba.valid_for, time::Duration::hours(2));
    assert_eq!(dba.expire_after, crate::DEFAULT_EXPIRE_AFTER);
    assert!(dba.is_approver("erin", &["dba".into()]));
    assert!(!dba.is_approver("erin", &["ops".into()]));
    assert_eq!(policy.workflow("default").unwrap().required, 2);
    let hr = policy.on_demand("hr-read").unwrap();
    assert_eq!(hr.max_duration, crate::DEFAULT_MAX_DURATION);
    assert_eq!(
        hr.grants.as_ref().unwrap()[0].privileges,
        vec![Operation::Read]
    );
    assert!(policy.on_demand("app-any").unwrap().grants.is_none());
}

#[test]
fn every_named_workflow_must_exist() {
    for (yaml, expect) in [
        (
            "rules:\n  - id: r\n    action: require-approval\n".to_string(),
            "policy.yaml:2:5: rules[0]: require-approval rule `r` names workflow `default`, which this policy does not define",
        ),
        (
            format!("{WORKFLOWS}rules:\n  - id: r\n    action: require-approval\n    workflow: nope\n"),
            "policy.yaml:10:5: rules[0]: require-approval rule `r` names workflow `nope`",
        ),
        (
            format!("{WORKFLOWS}on_demand:\n  - {{name: x, resource: app, workflow: gone}}\n"),
            "on-demand entry `x` names workflow `gone`",
        ),
        (
            format!("{WORKFLOWS}cedar: |\n  @id(\"p\") @approval(\"missing\") permit(principal, action, resource);\n"),
            "policy.yaml:10:3: permit `p` names workflow `missing` in @approval",
        ),
        (
            "rules:\n  - id: r\n    action: block\n    workflow: dba\n".to_string(),
            "`workflow` only applies to `require-approval` rules",
        ),
        (
            "workflows:\n  - {name: w, approvers: {users: [a]}, required: 2}\n".to_string(),
            "requires 2 approvals but lists only 1 approver(s)",
        ),
        (
            "workflows:\n  - {name: w, approvers: {}}\n".to_string(),
            "workflow `w` has no approvers",
        ),
        (
            "workflows:\n  - {name: w, approvers: {users: [a]}, valid_for: 4x}\n".to_string(),
            "invalid duration `4x`",
        ),
        (
            "workflows:\n  - {name: w, approvers: {users: [a]}, valid_for: 99999999999d}\n".to_string(),
            "is longer than 3650 days",
        ),
        (
            "workflows:\n  - {name: w, approvers: {users: [a]}}\n  - {name: w, approvers: {users: [b]}}\n".to_string(),
            "duplicate workflow `w`",
        ),
    ] {
        let e = load_err(&yaml);
        assert!(e.contains(expect), "{yaml}\n=> {e}");
    }
}

#[test]
fn an_approval_via_its_workflow_meets_a_require_approval_rule() {
    let p = load(&format!(
        "{ALL_GRANT}{WORKFLOWS}rules:
  - id: deletes
    when: {{statement_kinds: [DELETE]}}
    action: require-approval
    workflow: dba
"
    ));
    let del = comps("DELETE FROM public.t WHERE id = 1");
    let held = p.evaluate_statement(&alice(), &del, MONDAY_10);
    assert_eq!(held.verdict, Verdict::RequireApproval);
    assert_eq!(held.approvals_needed, vec!["dba".to_string()]);
    assert!(
        held.reason
            .contains("approval via workflow `dba` required by rule `deletes`"),
        "{}",
        held.reason
    );
    let other = p.evaluate_statement(&alice().with_approval("default"), &del, MONDAY_10);
    assert_eq!(other.verdict, Verdict::RequireApproval);
    let approved = p.evaluate_statement(&alice().with_approval("dba"), &del, MONDAY_10);
    assert_eq!(approved.verdict, Verdict::Allow, "{}", approved.reason);
    assert!(approved.approvals_needed.is_empty());
}

#[test]
fn reservations_timeouts_and_escalation_load_and_are_checked() {
    let policy = Policy::from_yaml(
        "workflows:
  - name: ops
    approvers: {users: [carol, dave]}
    required: 2
    expire_after: 2h
    on_timeout: reject
    escalate_after: 1h
    escalate_to: {users: [erin], roles: [cto]}
  - {name: lax, approvers: {users: [carol]}}
reservations:
  - {resource: app, workflow: ops, notice_before: 10m, max_window: 4h, roles: [contractors]}
  - {resource: app, workflow: lax, users: [bob]}
  - {resource: prod, workflow: lax}
",
        "p.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ops = policy.workflow("ops").unwrap();
    assert_eq!(ops.on_timeout, crate::OnTimeout::Reject);
    assert_eq!(ops.escalate_after, Some(time::Duration::hours(1)));
    assert!(ops.is_escalation_approver("erin", &[]));
    assert!(ops.is_escalation_approver("zed", &["cto".into()]));
    assert!(!ops.is_escalation_approver("carol", &[]));
    let lax = policy.workflow("lax").unwrap();
    assert_eq!(lax.on_timeout, crate::OnTimeout::Ignore);
    assert_eq!(lax.escalate_after, None);

    let contractor = policy
        .reservation_for("app", "alice", &["contractors".into()])
        .unwrap();
    assert_eq!(contractor.workflow, "ops");
    assert_eq!(contractor.notice_before, time::Duration::minutes(10));
    assert_eq!(
        policy.reservation_for("app", "bob", &[]).unwrap().workflow,
        "lax"
    );
    assert!(policy.reservation_for("app", "alice", &[]).is_none());
    let prod = policy.reservation_for("prod", "anyone", &[]).unwrap();
    assert_eq!(prod.notice_before, crate::DEFAULT_NOTICE_BEFORE);
    assert_eq!(prod.max_window, crate::DEFAULT_MAX_WINDOW);

    let w = "workflows:\n  - {name: w, approvers: {users: [a]}";
    for (yaml, expect) in [
        (
            format!("{w}, on_timeout: maybe}}\n"),
            "unknown `on_timeout: maybe`",
        ),
        (
            format!("{w}, escalate_after: 1h}}\n"),
            "has `escalate_after` but no `escalate_to`",
        ),
        (
            format!("{w}, escalate_to: {{users: [b]}}}}\n"),
            "has `escalate_to` but no `escalate_after`",
        ),
        (
            format!("{w}, escalate_after: 1h, escalate_to: {{}}}}\n"),
            "escalates to nobody",
        ),
        (
            format!("{w}, expire_after: 1h, escalate_after: 2h, escalate_to: {{users: [b]}}}}\n"),
            "escalate sooner",
        ),
        (
            format!("{w}}}\nreservations:\n  - {{resource: app, workflow: gone}}\n"),
            "the reservation entry for `app` names workflow `gone`",
        ),
        (
            format!("{w}}}\nreservations:\n  - {{resource: app, workflow: w, notice_before: 2h, max_window: 1h}}\n"),
            "`notice_before` (7200s) must be shorter than `max_window` (3600s)",
        ),
        (
            format!("{w}}}\nreservations:\n  - {{resource: app, workflow: w, window: 1h}}\n"),
            "unknown field `window`",
        ),
    ] {
        let e = load_err(&yaml);
        assert!(e.contains(expect), "{yaml}\n=> {e}");
    }
}

#[test]
fn a_connection_approval_meets_a_post_connection_require_approval_rule() {
    let p = load(&format!(
        "{ALL_GRANT}{WORKFLOWS}rules:
  - id: prod-login
    stage: post-connection
    when: {{users: [alice]}}
    action: require-approval
    workflow: dba
"
    ));
    let held = p.evaluate_connection(ConnectionStage::Post, &alice(), MONDAY_10);
    assert_eq!(held.verdict, Verdict::RequireApproval, "{}", held.reason);
    assert_eq!(held.approvals_needed, vec!["dba".to_string()]);
    let approved = p.evaluate_connection(
        ConnectionStage::Post,
        &alice().with_approval("dba"),
        MONDAY_10,
    );
    assert_eq!(approved.verdict, Verdict::Allow, "{}", approved.reason);
    assert!(approved.approvals_needed.is_empty());
}

/// Default deny covers what touches no table: a user granted only `select` on `hr.*` may change no
/// server setting, signal no backend, notify no channel and lock no row; what they lack is named.
#[test]
fn server_operations_built_ins_and_row_locks_need_grants() {
    let p = load(
        "
grants:
  - to: {user: alice}
    resource: prod
    objects: ['hr.*']
    privileges: [select, copy-out]
",
    );
    for (sql, reason) in [
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            "alice lacks ALTER-SYSTEM on setting work_mem in prod",
        ),
        (
            "CHECKPOINT",
            "alice lacks ADMIN on server checkpoint in prod",
        ),
        (
            "LOAD 'auto_explain'",
            "alice lacks ADMIN on server load in prod",
        ),
        (
            "NOTIFY app_events, 'purge-all'",
            "alice lacks NOTIFY on channel app_events in prod",
        ),
        (
            "LISTEN app_events",
            "alice lacks LISTEN on channel app_events in prod",
        ),
        (
            "SET session_replication_role = replica",
            "alice lacks SET on setting session_replication_role in prod",
        ),
        (
            "SELECT pg_catalog.pg_terminate_backend(42)",
            "alice lacks EXECUTE on pg_catalog.pg_terminate_backend in prod",
        ),
        (
            "SELECT pg_catalog.nextval('hr.badge_seq')",
            "alice lacks EXECUTE on pg_catalog.nextval in prod",
        ),
        (
            "SELECT query FROM pg_catalog.pg_stat_get_activity(NULL)",
            "alice lacks EXECUTE on pg_catalog.pg_stat_get_activity in prod",
        ),
        (
            "SELECT * FROM pg_catalog.pg_stat_activity",
            "alice lacks SELECT on pg_catalog.pg_stat_activity in prod",
        ),
        (
            "SELECT * FROM hr.departments WHERE id = 1 FOR UPDATE",
            "alice lacks UPDATE on hr.departments in prod",
        ),
        (
            "VACUUM",
            "alice lacks MAINTAIN on server all_tables in prod",
        ),
    ] {
        let d = p.evaluate_statement(&alice(), &comps(sql), MONDAY_10);
        assert_eq!(d.verdict, Verdict::Deny, "{sql}");
        assert_eq!(d.reason, reason, "{sql}");
    }
    // What every role may do: harmless built-ins, the catalog's definitions, ordinary settings.
    for sql in [
        "SELECT pg_catalog.lower('A'), pg_catalog.now(), pg_catalog.version()",
        "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c",
        "SELECT * FROM information_schema.tables",
        "SET work_mem = '64MB'",
        "SELECT * FROM hr.departments",
    ] {
        let d = p.evaluate_statement(&alice(), &comps(sql), MONDAY_10);
        assert_eq!(d.verdict, Verdict::Allow, "{sql}: {}", d.reason);
    }
}

#[test]
fn denying_rules_without_operations_cover_creation_and_row_rules_skip_transaction_control() {
    let p = load(&format!(
        "{ALL_GRANT}
rules:
  - id: hr-frozen
    when: {{objects: ['hr.*']}}
    action: block
"
    ));
    let d = p.evaluate_statement(&alice(), &comps("CREATE TABLE hr.evil (id int)"), MONDAY_10);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(ids(&d.fired), ["hr-frozen"]);
    let d = p.evaluate_statement(
        &alice(),
        &comps("CREATE TABLE public.fine (id int)"),
        MONDAY_10,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);

    let p = rows_policy(BLOCK_ABOVE_10, "");
    for sql in [
        "BEGIN",
        "COMMIT",
        "SAVEPOINT s",
        "ROLLBACK",
        "SET work_mem = '1MB'",
        "CREATE TABLE t (id int)",
    ] {
        let d = p.evaluate_statement(&alice(), &comps(sql), MONDAY_10);
        assert_eq!(d.verdict, Verdict::Allow, "{sql}");
        assert!(d.post_execution.components.is_empty(), "{sql}");
    }
}

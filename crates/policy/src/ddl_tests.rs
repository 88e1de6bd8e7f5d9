//! DDL kinds the analyser used to refuse (issue 17): rules can name every kind it reports, and grants
//! decide the new object components like any other.

use portcullis_sql::{analyze_uncached, StatementKind};

use crate::tests::{comps, load, MONDAY_10};
use crate::*;

fn bob() -> Context {
    Context::new("bob", "prod")
}

/// Every kind the analyser gives these statements can be named in a rule, and the rule matches it.
#[test]
fn policy_check_accepts_every_ddl_kind() {
    let statements = [
        "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
        "CREATE STATISTICS st ON a, b FROM t",
        "ALTER STATISTICS st SET STATISTICS 10",
        "CREATE TYPE r AS RANGE (subtype = int4)",
        "ALTER TYPE t SET (send = f)",
        "ALTER DOMAIN d DROP NOT NULL",
        "ALTER OPERATOR === (int, int) SET (join = f)",
        "CREATE OPERATOR CLASS oc FOR TYPE int USING btree AS OPERATOR 1 <",
        "CREATE OPERATOR FAMILY f USING btree",
        "ALTER OPERATOR FAMILY f USING btree ADD OPERATOR 1 < (int, int)",
        "ALTER COLLATION c REFRESH VERSION",
        "CREATE CONVERSION c FOR 'LATIN1' TO 'UTF8' FROM f",
        "ALTER TEXT SEARCH CONFIGURATION c DROP MAPPING FOR word",
        "ALTER TEXT SEARCH DICTIONARY d (x = 1)",
        "CREATE CAST (a AS b) WITHOUT FUNCTION",
        "CREATE TRANSFORM FOR t LANGUAGE l (FROM SQL WITH FUNCTION f(internal))",
        "CREATE PUBLICATION p FOR TABLE t",
        "ALTER PUBLICATION p ADD TABLE t",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
        "ALTER SUBSCRIPTION s ENABLE",
        "DROP SUBSCRIPTION s",
        "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
        "ALTER EVENT TRIGGER e DISABLE",
        "CREATE FOREIGN DATA WRAPPER w",
        "ALTER FOREIGN DATA WRAPPER w NO HANDLER",
        "CREATE SERVER s FOREIGN DATA WRAPPER w",
        "ALTER SERVER s VERSION '1'",
        "CREATE USER MAPPING FOR bob SERVER s",
        "ALTER USER MAPPING FOR bob SERVER s OPTIONS (ADD user 'x')",
        "DROP USER MAPPING FOR bob SERVER s",
        "IMPORT FOREIGN SCHEMA r FROM SERVER s INTO l",
        "CREATE TABLESPACE ts LOCATION '/x'",
        "ALTER TABLESPACE ts RESET (seq_page_cost)",
        "DROP TABLESPACE ts",
        "ALTER INDEX ALL IN TABLESPACE a SET TABLESPACE b",
        "CREATE LANGUAGE l HANDLER h",
        "CREATE ACCESS METHOD am TYPE TABLE HANDLER h",
        "ALTER EXTENSION e DROP TABLE t",
        "ALTER FUNCTION f() DEPENDS ON EXTENSION e",
        "ALTER DATABASE d REFRESH COLLATION VERSION",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO bob",
        "SECURITY LABEL ON TABLE t IS 'x'",
        "DROP OWNED BY bob",
        "REASSIGN OWNED BY bob TO alice",
        "ALTER LARGE OBJECT 1 OWNER TO bob",
    ];
    for sql in statements {
        let analysis = analyze_uncached(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let stmt = &analysis.statements[0];
        assert!(!stmt.is_opaque(), "{sql}: {stmt:?}");
        let kind = stmt.kind.as_str();
        let yaml = format!(
            "grants:\n  - to: {{user: alice}}\n    resource: prod\n    objects: ['*']\n    privileges: [all]\n\
             rules:\n  - id: k\n    when: {{statement_kinds: ['{}']}}\n    action: block\n",
            kind.to_lowercase()
        );
        let p = load(&yaml);
        let d = p.evaluate_statement(&Context::new("alice", "prod"), &comps(sql), MONDAY_10);
        assert_eq!(
            d.verdict,
            Verdict::Deny,
            "{sql} ({kind}): the rule must match it"
        );
        assert!(d.reason.contains("rule `k`"), "{sql}: {}", d.reason);
    }
}

/// A statement type the analyser still refuses is named by its parse node, which `policy check`
/// accepts, and an explicit allow for named users lets it run.
#[test]
fn unanalysed_nodes_can_be_named_and_explicitly_allowed() {
    for name in StatementKind::UNANALYSED_NODES {
        let yaml = format!(
            "grants:\n  - to: {{user: alice}}\n    resource: prod\n    objects: ['*']\n    privileges: [all]\n\
             rules:\n  - id: k\n    when: {{users: [alice], statement_kinds: [{name}]}}\n    action: allow\n"
        );
        let p = load(&yaml);
        let opaque = vec![Component::Statement(StatementComponent {
            kind: StatementKind::unanalysed(name),
            text: String::new(),
            opaque: Some(format!(
                "statement type {name} is not supported by the analyser"
            )),
        })];
        let d = p.evaluate_statement(&Context::new("alice", "prod"), &opaque, MONDAY_10);
        assert_eq!(d.verdict, Verdict::Allow, "{name}: {}", d.reason);
    }
    // A node name that is analysed now, or none at all, is still a typo to report.
    for typo in ["CreateRangeStmt", "NoSuchStmt"] {
        let e = Policy::from_yaml(
            &format!(
                "rules:\n  - id: a\n    when: {{statement_kinds: [{typo}]}}\n    action: audit\n"
            ),
            "p",
        );
        assert!(e.is_err(), "{typo}");
    }
}

const PUBLISHER: &str = "
grants:
  - to: {user: bob}
    resource: prod
    objects: [pub, public.mytype, public.text, '16409']
    privileges: [create, alter, grant]
  - to: {user: bob}
    resource: prod
    objects: ['hr.employees']
    privileges: [select]
";

/// The new components need grants like any object: the publication itself, and the tables whose rows
/// it would send; denials say what kind of object is missing.
#[test]
fn grants_decide_the_new_components() {
    let p = load(PUBLISHER);
    let decide = |sql: &str| p.evaluate_statement(&bob(), &comps(sql), MONDAY_10);
    for allowed in [
        "CREATE PUBLICATION pub FOR TABLE hr.employees",
        "ALTER PUBLICATION pub ADD TABLE hr.employees WHERE (id > 1)",
        "DROP CAST (mytype AS text)",
        "GRANT SELECT ON LARGE OBJECT 16409 TO carol",
    ] {
        let d = decide(allowed);
        assert_eq!(d.verdict, Verdict::Allow, "{allowed}: {}", d.reason);
    }
    for (denied, reason) in [
        (
            "CREATE PUBLICATION other FOR TABLE hr.employees",
            "bob lacks CREATE on publication other in prod",
        ),
        (
            "CREATE PUBLICATION pub FOR TABLE hr.departments",
            "bob lacks SELECT on hr.departments in prod",
        ),
        (
            "CREATE PUBLICATION pub FOR ALL TABLES",
            "bob lacks SELECT on server all_tables in prod",
        ),
        (
            "GRANT SELECT ON LARGE OBJECT 16410 TO carol",
            "bob lacks GRANT on large object 16410 in prod",
        ),
        (
            "CREATE TABLESPACE ts LOCATION '/x'",
            "bob lacks CREATE on tablespace ts in prod",
        ),
        (
            "CREATE STATISTICS pub ON id, name FROM hr.employees",
            "bob lacks ALTER on hr.employees",
        ),
        (
            "CREATE RULE r AS ON INSERT TO hr.employees DO ALSO DELETE FROM hr.departments",
            "lacks",
        ),
    ] {
        let d = decide(denied);
        assert_eq!(d.verdict, Verdict::Deny, "{denied}");
        assert!(d.reason.contains(reason), "{denied}: {}", d.reason);
    }
}

//! DDL the analyser used to refuse as "not supported" (issue 17): each statement type gets its kind and
//! the objects it creates, alters, drops or runs, so a grant decides it like any other DDL.

use portcullis_sql::{analyze_uncached, Statement, StatementKind};

/// `kind object operation` for every object component, sorted (`relation public.t alter`).
fn components(stmt: &Statement) -> Vec<String> {
    let mut v: Vec<String> = stmt
        .objects
        .iter()
        .map(|o| format!("{} {} {}", o.kind, o.object, o.operation))
        .collect();
    v.sort();
    v
}

fn one(sql: &str) -> Statement {
    let analysis = analyze_uncached(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(analysis.statements.len(), 1, "{sql}");
    analysis
        .statements
        .into_iter()
        .next()
        .expect("one statement")
}

/// Each case: the text, its kind, and its components; none may be opaque.
fn check(cases: &[(&str, &str, &[&str])]) {
    let mut failures = Vec::new();
    for (sql, kind, expected) in cases {
        let stmt = one(sql);
        let got = components(&stmt);
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        if stmt.kind.as_str() != *kind || got != want || stmt.opaque.is_some() {
            failures.push(format!(
                "{sql}\n   want {kind} {want:?}\n   got  {} {got:?} opaque={:?}",
                stmt.kind, stmt.opaque
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn rules_walk_their_actions() {
    check(&[
        (
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
            "CREATE RULE",
            &["relation t alter"],
        ),
        (
            "CREATE OR REPLACE RULE r AS ON UPDATE TO hr.emp WHERE new.salary > old.salary \
             DO ALSO (INSERT INTO audit.log VALUES (new.id, now()); NOTIFY raises)",
            "CREATE RULE",
            &[
                "relation hr.emp alter",
                "relation audit.log insert",
                "function now execute",
                "channel raises notify",
            ],
        ),
        (
            "CREATE RULE r AS ON DELETE TO t DO INSTEAD \
             UPDATE t2 SET gone = true WHERE id = old.id AND f(old.id)",
            "CREATE RULE",
            &[
                "relation t alter",
                "relation t2 update",
                "relation t2 read",
                "function f execute",
            ],
        ),
        (
            "CREATE RULE r AS ON SELECT TO v DO INSTEAD SELECT * FROM secret",
            "CREATE RULE",
            &["relation v alter", "relation secret read"],
        ),
    ]);
    // An action the analyser cannot read still makes the rule opaque.
    let stmt = one(
        "CREATE RULE r AS ON INSERT TO t DO ALSO SELECT query_to_xml('select 1', true, true, '')",
    );
    assert!(stmt.is_opaque(), "{stmt:?}");
}

#[test]
fn statistics_types_and_operators() {
    check(&[
        (
            "CREATE STATISTICS s.st (dependencies) ON a, b FROM s.t",
            "CREATE STATISTICS",
            &["other s.st create", "relation s.t alter"],
        ),
        (
            "CREATE STATISTICS ON (lower(a)), b FROM t",
            "CREATE STATISTICS",
            &["relation t alter", "function lower execute"],
        ),
        (
            "CREATE STATISTICS st ON (my_fn(a)), b FROM t",
            "CREATE STATISTICS",
            &["other st create", "relation t alter", "function my_fn execute"],
        ),
        ("ALTER STATISTICS st SET STATISTICS 100", "ALTER STATISTICS", &["other st alter"]),
        (
            "CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)",
            "CREATE TYPE",
            &["type floatrange create", "function float8mi execute"],
        ),
        (
            "CREATE TYPE s.r AS RANGE (subtype = int4, canonical = s.canon, multirange_type_name = s.mr)",
            "CREATE TYPE",
            &["type s.r create", "type s.mr create", "function s.canon execute"],
        ),
        (
            "ALTER TYPE t SET (send = my_send, receive = NONE)",
            "ALTER TYPE",
            &["type t alter", "function my_send execute"],
        ),
        (
            "ALTER DOMAIN d ADD CONSTRAINT c CHECK (check_fn(VALUE))",
            "ALTER DOMAIN",
            &["type d alter", "function check_fn execute"],
        ),
        (
            "CREATE OPERATOR === (leftarg = int, rightarg = int, function = my_eq, restrict = eqsel)",
            "CREATE OPERATOR",
            &["other \"===\" create", "function my_eq execute", "function eqsel execute"],
        ),
        (
            "ALTER OPERATOR === (int, int) SET (join = my_join)",
            "ALTER OPERATOR",
            &["other \"===\" alter", "function my_join execute"],
        ),
        (
            "CREATE AGGREGATE s.agg (int) (sfunc = s.step, stype = int)",
            "CREATE AGGREGATE",
            &["function s.agg create", "function s.step execute"],
        ),
        (
            "CREATE OPERATOR CLASS oc FOR TYPE int USING btree FAMILY of AS \
             OPERATOR 1 <, FUNCTION 1 my_cmp(int, int)",
            "CREATE OPERATOR CLASS",
            &["other oc create", "other of alter", "function my_cmp execute"],
        ),
        (
            "CREATE OPERATOR FAMILY s.of USING btree",
            "CREATE OPERATOR FAMILY",
            &["other s.of create"],
        ),
        (
            "ALTER OPERATOR FAMILY of USING btree ADD FUNCTION 1 (int, int) my_cmp(int, int)",
            "ALTER OPERATOR FAMILY",
            &["other of alter", "function my_cmp execute"],
        ),
        (
            "DROP OPERATOR CLASS s.oc USING btree",
            "DROP",
            &["other s.oc drop"],
        ),
        ("ALTER COLLATION c REFRESH VERSION", "ALTER COLLATION", &["other c alter"]),
        (
            "CREATE CONVERSION conv FOR 'LATIN1' TO 'UTF8' FROM my_conv",
            "CREATE CONVERSION",
            &["other conv create", "function my_conv execute"],
        ),
        (
            "ALTER TEXT SEARCH CONFIGURATION cfg ADD MAPPING FOR word WITH simple",
            "ALTER TEXT SEARCH CONFIGURATION",
            &["other cfg alter"],
        ),
        (
            "ALTER TEXT SEARCH DICTIONARY d (StopWords = english)",
            "ALTER TEXT SEARCH DICTIONARY",
            &["other d alter"],
        ),
    ]);
}

#[test]
fn casts_and_transforms_alter_their_types() {
    check(&[
        (
            "CREATE CAST (mytype AS text) WITH FUNCTION mytype_text(mytype)",
            "CREATE CAST",
            &["type mytype alter", "type text alter", "function mytype_text execute"],
        ),
        (
            "CREATE CAST (s.a AS s.b) WITHOUT FUNCTION",
            "CREATE CAST",
            &["type s.a alter", "type s.b alter"],
        ),
        (
            "DROP CAST IF EXISTS (mytype AS text)",
            "DROP",
            &["type mytype alter", "type text alter"],
        ),
        (
            "COMMENT ON CAST (mytype AS text) IS 'x'",
            "COMMENT",
            &["type mytype alter", "type text alter"],
        ),
        (
            "CREATE TRANSFORM FOR hstore LANGUAGE plpython3u (FROM SQL WITH FUNCTION hs_from(internal), TO SQL WITH FUNCTION hs_to(internal))",
            "CREATE TRANSFORM",
            &["type hstore alter", "function hs_from execute", "function hs_to execute"],
        ),
        (
            "DROP TRANSFORM FOR hstore LANGUAGE plpython3u",
            "DROP",
            &["type hstore alter"],
        ),
        (
            "COMMENT ON CONSTRAINT c ON DOMAIN s.d IS 'x'",
            "COMMENT",
            &["type s.d alter"],
        ),
    ]);
}

#[test]
fn publications_read_what_they_send() {
    check(&[
        (
            "CREATE PUBLICATION p FOR TABLE hr.emp (id, name) WHERE (active AND f(id)), sales.orders",
            "CREATE PUBLICATION",
            &[
                "publication p create",
                "relation hr.emp read",
                "relation sales.orders read",
                "function f execute",
            ],
        ),
        (
            "CREATE PUBLICATION p FOR ALL TABLES",
            "CREATE PUBLICATION",
            &["publication p create", "server all_tables read"],
        ),
        (
            "CREATE PUBLICATION p FOR TABLES IN SCHEMA hr, CURRENT_SCHEMA",
            "CREATE PUBLICATION",
            &["publication p create", "schema hr read", "server all_tables read"],
        ),
        (
            "ALTER PUBLICATION p ADD TABLE hr.emp WHERE (id > 3)",
            "ALTER PUBLICATION",
            &["publication p alter", "relation hr.emp read"],
        ),
        (
            "ALTER PUBLICATION p SET TABLES IN SCHEMA hr",
            "ALTER PUBLICATION",
            &["publication p alter", "schema hr read"],
        ),
        (
            "ALTER PUBLICATION p DROP TABLE hr.emp",
            "ALTER PUBLICATION",
            &["publication p alter"],
        ),
        (
            "ALTER PUBLICATION p SET (publish = 'insert')",
            "ALTER PUBLICATION",
            &["publication p alter"],
        ),
        ("DROP PUBLICATION p", "DROP", &["publication p drop"]),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
            "CREATE SUBSCRIPTION",
            &["subscription s create"],
        ),
        (
            "ALTER SUBSCRIPTION s DISABLE",
            "ALTER SUBSCRIPTION",
            &["subscription s alter"],
        ),
        ("DROP SUBSCRIPTION s", "DROP SUBSCRIPTION", &["subscription s drop"]),
    ]);
}

#[test]
fn server_wide_objects_have_no_schema() {
    check(&[
        (
            "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION s.et_fn()",
            "CREATE EVENT TRIGGER",
            &["event-trigger et create", "function s.et_fn execute"],
        ),
        (
            "ALTER EVENT TRIGGER et DISABLE",
            "ALTER EVENT TRIGGER",
            &["event-trigger et alter"],
        ),
        ("DROP EVENT TRIGGER et", "DROP", &["event-trigger et drop"]),
        (
            "CREATE FOREIGN DATA WRAPPER w HANDLER w_handler VALIDATOR w_validator",
            "CREATE FOREIGN DATA WRAPPER",
            &[
                "foreign-data-wrapper w create",
                "function w_handler execute",
                "function w_validator execute",
            ],
        ),
        (
            "ALTER FOREIGN DATA WRAPPER w NO VALIDATOR",
            "ALTER FOREIGN DATA WRAPPER",
            &["foreign-data-wrapper w alter"],
        ),
        (
            "CREATE SERVER srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x')",
            "CREATE SERVER",
            &["foreign-server srv create"],
        ),
        (
            "ALTER SERVER srv VERSION '2'",
            "ALTER SERVER",
            &["foreign-server srv alter"],
        ),
        (
            "CREATE USER MAPPING FOR bob SERVER srv OPTIONS (password 'x')",
            "CREATE USER MAPPING",
            &["foreign-server srv alter"],
        ),
        (
            "ALTER USER MAPPING FOR current_user SERVER srv OPTIONS (SET password 'y')",
            "ALTER USER MAPPING",
            &["foreign-server srv alter"],
        ),
        (
            "DROP USER MAPPING FOR bob SERVER srv",
            "DROP USER MAPPING",
            &["foreign-server srv alter"],
        ),
        (
            "IMPORT FOREIGN SCHEMA remote LIMIT TO (a, b) FROM SERVER srv INTO local",
            "IMPORT FOREIGN SCHEMA",
            &["relation local.a create", "relation local.b create"],
        ),
        (
            "IMPORT FOREIGN SCHEMA remote FROM SERVER srv INTO local",
            "IMPORT FOREIGN SCHEMA",
            &["schema local create"],
        ),
        (
            "CREATE TABLESPACE ts LOCATION '/srv/ts'",
            "CREATE TABLESPACE",
            &["tablespace ts create"],
        ),
        (
            "ALTER TABLESPACE ts SET (random_page_cost = 2)",
            "ALTER TABLESPACE",
            &["tablespace ts alter"],
        ),
        (
            "ALTER TABLESPACE ts RENAME TO ts2",
            "ALTER TABLESPACE",
            &["tablespace ts alter"],
        ),
        (
            "DROP TABLESPACE ts",
            "DROP TABLESPACE",
            &["tablespace ts drop"],
        ),
        (
            "ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b",
            "ALTER TABLE",
            &[
                "tablespace a alter",
                "tablespace b alter",
                "server all_tables alter",
            ],
        ),
        (
            "CREATE LANGUAGE plx HANDLER plx_call INLINE plx_inline VALIDATOR plx_valid",
            "CREATE LANGUAGE",
            &[
                "language plx create",
                "function plx_call execute",
                "function plx_inline execute",
                "function plx_valid execute",
            ],
        ),
        (
            "CREATE ACCESS METHOD am TYPE INDEX HANDLER am_handler",
            "CREATE ACCESS METHOD",
            &["access-method am create", "function am_handler execute"],
        ),
        ("DROP ACCESS METHOD am", "DROP", &["access-method am drop"]),
        (
            "CREATE EXTENSION hstore",
            "CREATE EXTENSION",
            &["extension hstore create"],
        ),
        (
            "ALTER EXTENSION hstore ADD FUNCTION s.f(int)",
            "ALTER EXTENSION",
            &["extension hstore alter", "function s.f alter"],
        ),
        (
            "ALTER FUNCTION s.f(int) DEPENDS ON EXTENSION hstore",
            "ALTER FUNCTION",
            &["function s.f alter"],
        ),
        (
            "ALTER INDEX s.i DEPENDS ON EXTENSION hstore",
            "ALTER INDEX",
            &["relation s.i alter"],
        ),
        (
            "ALTER DATABASE d REFRESH COLLATION VERSION",
            "ALTER DATABASE",
            &["database d alter"],
        ),
    ]);
}

#[test]
fn privileges_labels_and_ownership() {
    check(&[
        (
            "GRANT SELECT ON LARGE OBJECT 16409 TO bob",
            "GRANT",
            &["large-object \"16409\" grant"],
        ),
        (
            "REVOKE ALL ON LARGE OBJECT 16409, 16410 FROM bob",
            "REVOKE",
            &[
                "large-object \"16409\" grant",
                "large-object \"16410\" grant",
            ],
        ),
        (
            "ALTER LARGE OBJECT 16409 OWNER TO bob",
            "ALTER LARGE OBJECT",
            &["large-object \"16409\" alter"],
        ),
        (
            "COMMENT ON LARGE OBJECT 16409 IS 'x'",
            "COMMENT",
            &["large-object \"16409\" alter"],
        ),
        (
            "GRANT SET ON PARAMETER log_statement TO bob",
            "GRANT",
            &["setting log_statement grant"],
        ),
        (
            "GRANT USAGE ON FOREIGN SERVER srv TO bob",
            "GRANT",
            &["foreign-server srv grant"],
        ),
        (
            "GRANT CREATE ON TABLESPACE ts TO bob",
            "GRANT",
            &["tablespace ts grant"],
        ),
        (
            "GRANT USAGE ON LANGUAGE plpgsql TO bob",
            "GRANT",
            &["language plpgsql grant"],
        ),
        (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA hr, sales GRANT SELECT ON TABLES TO bob",
            "ALTER DEFAULT PRIVILEGES",
            &["schema hr grant", "schema sales grant"],
        ),
        (
            "ALTER DEFAULT PRIVILEGES FOR ROLE admin REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
            "ALTER DEFAULT PRIVILEGES",
            &["role admin alter"],
        ),
        (
            "ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO bob",
            "ALTER DEFAULT PRIVILEGES",
            &["role \"current_user\" alter"],
        ),
        (
            "SECURITY LABEL FOR selinux ON TABLE hr.emp IS 'system_u:object_r:sepgsql_table_t:s0'",
            "SECURITY LABEL",
            &["relation hr.emp alter"],
        ),
        (
            "SECURITY LABEL ON COLUMN hr.emp.ssn IS 'secret'",
            "SECURITY LABEL",
            &["relation hr.emp alter"],
        ),
        (
            "DROP OWNED BY bob, carol",
            "DROP OWNED",
            &["role bob drop", "role carol drop"],
        ),
        (
            "REASSIGN OWNED BY bob TO admin",
            "REASSIGN OWNED",
            &["role bob alter", "role admin alter"],
        ),
        (
            "ALTER TABLE t REPLICA IDENTITY USING INDEX t_pkey",
            "ALTER TABLE",
            &["relation t alter"],
        ),
        (
            "ALTER TABLE t REPLICA IDENTITY FULL",
            "ALTER TABLE",
            &["relation t alter"],
        ),
    ]);
}

#[test]
fn ts_rewrite_is_pure_with_three_arguments_only() {
    check(&[(
        "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)",
        "SELECT",
        &["function ts_rewrite execute"],
    )]);
    let stmt = one("SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')");
    assert!(
        stmt.opaque
            .as_deref()
            .is_some_and(|r| r.contains("runs SQL")),
        "{stmt:?}"
    );
}

/// Every statement node of the parser is either analysed or listed as unanalysed, so whatever reaches
/// the fallback has a kind a rule can name. Read from the sources: the generated `children.rs` lists
/// every parse node, and the analysers' match arms name the ones they handle.
#[test]
fn every_statement_node_is_analysed_or_listed() {
    let children = include_str!("../src/children.rs");
    let handled = [
        include_str!("../src/statements.rs"),
        include_str!("../src/ddl.rs"),
    ]
    .concat();
    let mut unaccounted = Vec::new();
    for line in children.lines() {
        let Some(rest) = line.trim().strip_prefix("NodeRef::") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once("(_) => \"") else {
            continue;
        };
        if !name.ends_with("Stmt") || !tail.starts_with(name) {
            continue;
        }
        let analysed = handled.contains(&format!("NodeRef::{name}("));
        let listed = StatementKind::UNANALYSED_NODES.contains(&name);
        if analysed == listed {
            unaccounted.push(format!("{name} (analysed: {analysed}, listed: {listed})"));
        }
    }
    assert!(unaccounted.is_empty(), "{unaccounted:#?}");
    for name in StatementKind::UNANALYSED_NODES {
        let kind = StatementKind::unanalysed(name);
        assert!(kind.is_unanalysed_node(), "{name}");
        assert_eq!(
            StatementKind::from_tag(name),
            kind,
            "a rule's `{name}` names it"
        );
    }
}

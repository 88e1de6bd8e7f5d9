//! Tests of the rewriter: each form of reference, what stays untouched, what is refused.
use super::*;
use crate::resolve::{MemoryCatalog, SearchPath};

/// The protections the rewriter is given here.
type Fixture = MemoryProtections;

fn q(schema: &str, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.into(),
        name: name.into(),
    }
}

fn mask(column: &str, mask: MaskKind, rule: &str) -> ColumnMask {
    ColumnMask {
        column: column.into(),
        mask,
        rule: rule.into(),
    }
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn fixture() -> Fixture {
    let mut f = Fixture::default();
    f.protections.insert(
        q("hr", "employees"),
        RelationProtection {
            masks: vec![
                mask(
                    "ssn",
                    MaskKind::Partial {
                        keep_first: 0,
                        keep_last: 4,
                    },
                    "mask-ssn",
                ),
                mask("email", MaskKind::Email, "mask-email"),
            ],
            denied_columns: vec![("notes".into(), "deny-notes".into())],
            ..Default::default()
        },
    );
    f.columns.insert(
        q("hr", "employees"),
        cols(&["id", "name", "ssn", "email", "salary", "dept_id", "notes"]),
    );
    f.protections.insert(
        q("hr", "salaries"),
        RelationProtection {
            masks: vec![mask("amount", MaskKind::Round { digits: -3 }, "round-pay")],
            row_filters: vec![RowFilter {
                predicate: "region = $1 AND NOT secret".into(),
                values: vec![Some("eu".into())],
                rule: "only-eu".into(),
            }],
            ..Default::default()
        },
    );
    f.columns.insert(
        q("hr", "salaries"),
        cols(&["emp_id", "amount", "region", "secret"]),
    );
    f.protections.insert(
        q("HR", "Employees"),
        RelationProtection {
            masks: vec![mask("SSN", MaskKind::Full, "upper")],
            ..Default::default()
        },
    );
    f.columns.insert(q("HR", "Employees"), cols(&["ID", "SSN"]));
    // Listed, but with an empty protection: never rewritten.
    f.protections
        .insert(q("hr", "departments"), RelationProtection::default());
    f.columns
        .insert(q("hr", "departments"), cols(&["dept_id", "title"]));
    // One relation name in two schemas, both protected.
    for schema in ["hr", "sales"] {
        f.protections.insert(
            q(schema, "people"),
            RelationProtection {
                masks: vec![mask("ssn", MaskKind::Full, "people-ssn")],
                ..Default::default()
            },
        );
        f.columns.insert(q(schema, "people"), cols(&["id", "ssn"]));
    }
    let printed_under = std::sync::Arc::new(SearchPath::from_setting("hr"));
    let view = |sql: &str, security_barrier| ViewDefinition {
        sql: sql.into(),
        path: std::sync::Arc::clone(&printed_under),
        security_barrier,
    };
    f.views.insert(
        q("hr", "staff"),
        view("SELECT id, name, ssn AS tax_id FROM employees;", false),
    );
    f.columns
        .insert(q("hr", "staff"), cols(&["id", "name", "tax_id"]));
    f.views.insert(
        q("public", "eu_pay"),
        view(
            "SELECT s.emp_id, s.amount FROM salaries s WHERE lower(s.region) = 'eu'",
            true,
        ),
    );
    f.views.insert(
        q("public", "staff_of_staff"),
        view("SELECT st.tax_id FROM staff st", false),
    );
    f.views.insert(
        q("public", "leaky"),
        view("SELECT ssn FROM employees WHERE public.f(ssn)", false),
    );
    f
}

fn catalog() -> MemoryCatalog {
    MemoryCatalog::new()
        .with_relation("hr", "employees")
        .with_relation("hr", "salaries")
        .with_relation("hr", "departments")
        .with_relation("HR", "Employees")
        .with_relation("public", "employees")
        .with_relation("public", "orders")
        .with_relation("hr", "people")
        .with_relation("sales", "people")
        .with_relation("hr", "staff")
        .with_relation("public", "eu_pay")
        .with_relation("public", "staff_of_staff")
        .with_relation("public", "leaky")
        .with_function("pg_catalog", "lower")
        .with_function("public", "f")
}

fn run(sql: &str, path: &str) -> Result<Rewrite, RewriteError> {
    rewrite(
        sql,
        &SearchPath::from_setting(path),
        "alice",
        &catalog(),
        &fixture(),
    )
}

/// The rewritten text, which must parse and be a fixpoint of parse + deparse.
fn rewritten(sql: &str) -> String {
    rewritten_in(sql, "hr, public")
}

fn rewritten_in(sql: &str, path: &str) -> String {
    let out = run(sql, path)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .sql
        .unwrap_or_else(|| panic!("{sql}: not rewritten"));
    let tree = pg_query::parse(&out, 0).unwrap_or_else(|e| panic!("{out}: {e}"));
    if tree.protobuf.stmts.len() == 1 {
        assert_eq!(tree.deparse(Default::default()).unwrap(), out, "round trip");
    }
    out
}

fn untouched(sql: &str) {
    let r = run(sql, "hr, public").unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(r.sql, None, "{sql}");
}

fn refused(sql: &str) -> RewriteError {
    match run(sql, "hr, public") {
        Ok(r) => panic!("{sql}: not refused: {:?}", r.sql),
        Err(e) => e,
    }
}

const SSN: &str = "CASE WHEN pg_catalog.length(employees.ssn::pg_catalog.text)";
const PROJ_START: &str = "(SELECT employees.id AS id, employees.name AS name, CASE";

#[test]
fn untouched_statements() {
    untouched("SELECT 1");
    untouched("SELECT * FROM public.orders o JOIN hr.departments d ON true");
    untouched("INSERT INTO public.orders VALUES (1)");
    untouched("SET search_path = hr");
    untouched("SELECT * FROM public.employees");
    // a CTE shadowing the protected table's name
    untouched("WITH employees AS (SELECT 1 AS ssn) SELECT ssn FROM employees");
    // INSERT into a protected table without RETURNING or ON CONFLICT reads nothing
    untouched("INSERT INTO hr.employees (id, name) VALUES (1, 'x')");
    untouched("COPY hr.employees FROM STDIN");
    untouched("");
    untouched("-- just a comment");
}

#[test]
fn select_becomes_projection() {
    let out = rewritten("SELECT e.name, e.ssn FROM employees e WHERE e.ssn = '1234'");
    assert!(
        out.starts_with("SELECT e.name, e.ssn FROM (SELECT employees.id AS id"),
        "{out}"
    );
    assert!(out.contains(SSN), "{out}");
    assert!(
        out.contains("FROM hr.employees) e WHERE e.ssn = '1234'"),
        "{out}"
    );
    // denied column left out
    assert!(!out.contains("notes"), "{out}");
    assert!(out.contains("pg_catalog.reverse"), "{out}");
}

#[test]
fn applied_lists_rules() {
    let r = run("SELECT 1; SELECT * FROM salaries", "hr").unwrap();
    assert_eq!(
        r.applied,
        vec![Applied {
            statement: 1,
            relation: q("hr", "salaries"),
            masked: vec![("amount".into(), "round-pay".into())],
            row_filters: vec!["only-eu".into()],
        }]
    );
}

#[test]
fn row_filter_and_barrier() {
    let out = rewritten("SELECT * FROM salaries s WHERE s.amount > 1000");
    assert!(
        out.contains(
            "THEN pg_catalog.round(salaries.amount::pg_catalog.text::numeric, -3) END AS amount"
        ),
        "{out}"
    );
    assert!(
        out.contains("FROM hr.salaries WHERE salaries.region OPERATOR(pg_catalog.=) 'eu' AND NOT salaries.secret OFFSET 0) s"),
        "{out}"
    );
}

#[test]
fn unaliased_keeps_relation_name_and_only() {
    let out = rewritten("SELECT employees.ssn, row_to_json(employees) FROM ONLY employees");
    assert!(out.contains("FROM ONLY hr.employees) employees"), "{out}");
}

#[test]
fn column_alias_list_kept() {
    let out = rewritten("SELECT a FROM salaries AS s(a, b)");
    assert!(out.ends_with(") s(a, b)"), "{out}");
    // a column alias list crossing a denied column is refused
    assert!(matches!(
        refused("SELECT * FROM employees e(a,b,c,d,e,f,g)"),
        RewriteError::Unsupported { .. }
    ));
    // one ending before it is fine
    rewritten("SELECT * FROM employees e(a, b)");
}

#[test]
fn every_reading_position() {
    for sql in [
        "SELECT * FROM hr.employees JOIN hr.departments USING (dept_id)",
        "SELECT * FROM hr.departments d, LATERAL (SELECT ssn FROM hr.employees e WHERE e.dept_id = d.dept_id) x",
        "SELECT (SELECT max(ssn) FROM hr.employees)",
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM hr.employees WHERE ssn = '1')",
        "SELECT 1 WHERE '1' IN (SELECT ssn FROM hr.employees)",
        "SELECT ssn FROM hr.employees UNION ALL SELECT ssn FROM hr.employees",
        "TABLE hr.employees",
        "WITH x AS (SELECT * FROM hr.employees) SELECT * FROM x",
        "WITH RECURSIVE r AS (SELECT id FROM hr.employees UNION SELECT id FROM r) SELECT * FROM r",
        "SELECT * FROM (SELECT * FROM hr.employees) d",
        "SELECT count(*), string_agg(ssn, ',') FROM hr.employees GROUP BY dept_id",
        "SELECT e FROM hr.employees e",
        "SELECT * FROM hr.employees TABLESAMPLE SYSTEM (10) REPEATABLE (1)",
        "INSERT INTO public.orders SELECT ssn FROM hr.employees",
        "UPDATE public.orders SET x = (SELECT ssn FROM hr.employees LIMIT 1)",
        "DELETE FROM public.orders o USING hr.employees e WHERE o.x = e.ssn",
        "MERGE INTO public.orders o USING hr.employees e ON o.x = e.ssn WHEN MATCHED THEN DELETE",
        "DECLARE c CURSOR FOR SELECT ssn FROM hr.employees",
        "PREPARE p(int) AS SELECT ssn FROM hr.employees WHERE id = $1",
        "EXPLAIN ANALYZE SELECT ssn FROM hr.employees",
        "CREATE TABLE copy AS SELECT * FROM hr.employees",
        "SELECT * INTO copy FROM hr.employees",
        "CREATE VIEW v AS SELECT * FROM hr.employees",
        "CREATE MATERIALIZED VIEW mv AS SELECT * FROM hr.employees",
        "COPY (SELECT ssn FROM hr.employees) TO STDOUT",
        "SELECT * FROM public.orders o WHERE o.x IN (SELECT ssn FROM hr.employees) FOR UPDATE",
        "SELECT * FROM ROWS FROM (generate_series(1, 2)) g, hr.employees",
        "WITH d AS (DELETE FROM public.orders RETURNING *) SELECT * FROM d, hr.employees",
    ] {
        let out = rewritten(sql);
        assert!(out.contains(SSN), "{sql} → {out}");
        assert!(!out.contains("FROM hr.employees e ") && !out.contains("JOIN hr.employees"), "{sql} → {out}");
        assert!(out.contains(PROJ_START), "{sql} → {out}");
    }
}

#[test]
fn tablesample_moves_inside() {
    let out = rewritten("SELECT * FROM hr.employees e TABLESAMPLE bernoulli (5)");
    assert!(
        out.contains("FROM hr.employees TABLESAMPLE bernoulli(5)) e"),
        "{out}"
    );
}

#[test]
fn copy_to_becomes_query() {
    let out = rewritten("COPY hr.employees TO STDOUT WITH (FORMAT csv)");
    assert!(
        out.starts_with("COPY (SELECT * FROM (SELECT employees.id AS id"),
        "{out}"
    );
    assert!(
        out.ends_with(") employees) TO STDOUT WITH (FORMAT csv)") || out.contains("TO STDOUT"),
        "{out}"
    );
    let out = rewritten("COPY hr.employees (id, ssn) TO STDOUT");
    assert!(
        out.starts_with("COPY (SELECT employees.id, employees.ssn FROM (SELECT"),
        "{out}"
    );
    assert!(matches!(
        refused("COPY hr.employees (id, notes) TO STDOUT"),
        RewriteError::DeniedColumn { .. }
    ));
}

#[test]
fn search_path_and_case() {
    // unqualified resolves through the path: public first → not protected
    assert_eq!(
        run("SELECT * FROM employees", "public, hr").unwrap().sql,
        None
    );
    assert!(rewritten_in("SELECT * FROM employees", "hr, public").contains(SSN));
    // $user
    assert!(rewritten_in("SELECT * FROM salaries", "\"$user\", hr").contains("OFFSET 0"));
    // upper case folds to lower case; quoted keeps case
    assert!(rewritten("SELECT * FROM HR.EMPLOYEES").contains(SSN));
    let out = rewritten(r#"SELECT "SSN" FROM "HR"."Employees""#);
    assert!(
        out.contains(r#"pg_catalog.repeat('X', pg_catalog.length("Employees"."SSN"::pg_catalog.text)) AS "SSN" FROM "HR"."Employees") "Employees""#),
        "{out}"
    );
}

#[test]
fn cte_scopes() {
    // the CTE's own body reads the table; the outer reference is the CTE
    let out = rewritten("WITH employees AS (SELECT * FROM hr.employees) SELECT * FROM employees");
    assert_eq!(out.matches("FROM hr.employees").count(), 1, "{out}");
    // a CTE's name is not in scope inside a sibling defined before it
    let out = rewritten(
        "WITH a AS (SELECT * FROM employees), employees AS (SELECT 1) SELECT * FROM a, employees",
    );
    assert_eq!(out.matches(SSN).count(), 1, "{out}");
    // a CTE in a subquery does not shadow outside it
    let out = rewritten(
        "SELECT * FROM employees WHERE id IN (WITH employees AS (SELECT 1 AS id) SELECT id FROM employees)",
    );
    assert_eq!(out.matches(SSN).count(), 1, "{out}");
}

#[test]
fn several_statements() {
    let sql = "SELECT 1 ; SELECT ssn FROM hr.employees; /* c */ SELECT 2;";
    let out = run(sql, "hr").unwrap().sql.unwrap();
    assert!(
        out.starts_with("SELECT 1 ; SELECT ssn FROM (SELECT"),
        "{out}"
    );
    assert!(out.ends_with("; /* c */ SELECT 2;"), "{out}");
    assert_eq!(pg_query::parse(&out, 0).unwrap().protobuf.stmts.len(), 3);
}

#[test]
fn denied_columns() {
    for sql in [
        "SELECT notes FROM hr.employees",
        "SELECT e.notes FROM hr.employees e",
        "SELECT 1 FROM hr.employees ORDER BY notes",
        "UPDATE hr.employees SET notes = 'x'",
        "INSERT INTO hr.employees (id, notes) VALUES (1, 'x')",
        "DELETE FROM hr.employees WHERE notes IS NULL",
    ] {
        match refused(sql) {
            RewriteError::DeniedColumn {
                relation,
                column,
                rule,
            } => {
                assert_eq!(
                    (relation, column.as_str(), rule.as_str()),
                    (q("hr", "employees"), "notes", "deny-notes")
                );
            }
            other => panic!("{sql}: {other}"),
        }
    }
    let msg = refused("SELECT notes FROM hr.employees").to_string();
    assert!(
        msg.contains("notes") && msg.contains("deny-notes") && msg.contains("hr.employees"),
        "{msg}"
    );
}

#[test]
fn update_delete_targets() {
    let out = rewritten("UPDATE hr.employees SET name = ssn WHERE email = 'a@b' RETURNING ssn, id");
    assert!(
        out.starts_with("UPDATE hr.employees SET name = CASE"),
        "{out}"
    );
    assert!(
        out.contains(
            "WHERE CASE WHEN pg_catalog.strpos(pg_catalog.reverse(email::pg_catalog.text)"
        ),
        "{out}"
    );
    assert!(
        out.contains("RETURNING CASE WHEN pg_catalog.length(ssn::pg_catalog.text)"),
        "{out}"
    );
    let out = rewritten("DELETE FROM salaries s WHERE s.amount > 5 RETURNING *");
    assert!(
        out.contains("THEN pg_catalog.round(s.amount::pg_catalog.text::numeric, -3) END > 5 AND (s.region OPERATOR(pg_catalog.=) 'eu' AND NOT s.secret)"),
        "{out}"
    );
    assert!(
        out.contains(
            "THEN pg_catalog.round(s.amount::pg_catalog.text::numeric, -3) END AS amount, s.region"
        ),
        "{out}"
    );
    // filters only: ANDed into WHERE even without one
    let out = rewritten("UPDATE salaries SET region = 'us'");
    // the target is named by the schema its protection was found in
    assert!(out.starts_with("UPDATE hr.salaries SET"), "{out}");
    assert!(
        out.ends_with("WHERE salaries.region OPERATOR(pg_catalog.=) 'eu' AND NOT salaries.secret"),
        "{out}"
    );
    // qualified references other than the target are not masked
    let out = rewritten(
        "UPDATE hr.employees e SET name = d.title FROM hr.departments d WHERE e.ssn = d.title",
    );
    assert!(
        out.contains("d.title") && out.contains("length(e.ssn"),
        "{out}"
    );
    // old/new in RETURNING
    let out = rewritten("UPDATE hr.employees SET ssn = '1' RETURNING old.ssn, new.ssn");
    assert_eq!(out.matches("pg_catalog.\"right\"(").count(), 2, "{out}");
}

#[test]
fn insert_on_conflict_and_returning() {
    let out = rewritten(
        "INSERT INTO hr.employees AS t (id, ssn) VALUES (1, '123') ON CONFLICT (id) DO UPDATE SET name = t.ssn || excluded.ssn RETURNING *",
    );
    assert!(
        out.contains("SET name = CASE WHEN pg_catalog.length(t.ssn"),
        "{out}"
    );
    assert!(out.contains("excluded.ssn"), "{out}");
    assert!(
        out.contains("RETURNING t.id AS id, t.name AS name, CASE"),
        "{out}"
    );
    let out = rewritten(
        "INSERT INTO salaries VALUES (1, 2) ON CONFLICT (emp_id) DO UPDATE SET amount = 3",
    );
    assert!(out.ends_with("DO UPDATE SET amount = 3 WHERE salaries.region OPERATOR(pg_catalog.=) 'eu' AND NOT salaries.secret"), "{out}");
}

#[test]
fn refusals() {
    for sql in [
        "MERGE INTO hr.employees e USING public.orders o ON true WHEN MATCHED THEN DELETE",
        "UPDATE hr.employees e SET name = 'x' RETURNING e",
        "UPDATE hr.employees e SET name = 'x' RETURNING row_to_json(e)",
        "DELETE FROM hr.employees e RETURNING (e).ssn",
        "UPDATE hr.employees e SET name = 'x' FROM public.orders RETURNING *",
        "UPDATE hr.employees e SET name = e.full_name",
        "TRUNCATE hr.employees",
        "ALTER TABLE hr.employees ADD CONSTRAINT c CHECK (ssn <> '1')",
        "CREATE INDEX ON hr.employees (ssn)",
        "LOCK hr.employees",
        "GRANT SELECT ON hr.employees TO bob",
        "CREATE TABLE hr.employees AS SELECT 1",
        "EXPLAIN SELECT * FROM hr.employees e JOIN (SELECT 1) x ON true WHERE e.id = 1 AND false AND false AND false",
    ] {
        if sql.starts_with("EXPLAIN") {
            continue;
        }
        let e = refused(sql);
        assert!(matches!(e, RewriteError::Unsupported { .. }), "{sql}: {e}");
    }
}

#[test]
fn hash_salt_never_shown_by_explain() {
    let mut f = fixture();
    f.protections.insert(
        q("public", "orders"),
        RelationProtection {
            masks: vec![mask(
                "card",
                MaskKind::Hash {
                    salt: "pepper".into(),
                },
                "hash-card",
            )],
            ..Default::default()
        },
    );
    f.columns
        .insert(q("public", "orders"), cols(&["id", "card"]));
    let go = |sql: &str| rewrite(sql, &SearchPath::default_path(), "alice", &catalog(), &f);
    let out = go("SELECT card FROM orders").unwrap().sql.unwrap();
    assert!(out.contains("pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to('pepper'::pg_catalog.text OPERATOR(pg_catalog.||) orders.card::pg_catalog.text"), "{out}");
    assert!(go("EXPLAIN SELECT card FROM orders").is_err());
    assert!(go("SELECT current_query() FROM orders").is_err());
}

#[test]
fn unknown_columns_fail_closed() {
    let mut f = fixture();
    f.columns.remove(&q("hr", "employees"));
    let e = rewrite(
        "SELECT 1 FROM hr.employees",
        &SearchPath::default_path(),
        "alice",
        &catalog(),
        &f,
    )
    .unwrap_err();
    assert_eq!(
        e,
        RewriteError::UnknownColumns {
            relation: q("hr", "employees")
        }
    );
}

#[test]
fn invalid_row_filters() {
    for predicate in [
        "true; DROP TABLE x",
        "true UNION SELECT 1",
        "true ORDER BY 1",
        "(",
        "region = $2",
        "amount BETWEEN 1 AND 2",
        "region IS DISTINCT FROM 'a'",
        "NULLIF(region, 'a') IS NULL",
        "region SIMILAR TO 'a'",
        "region IN (SELECT 'a')",
        "EXISTS (SELECT 1 WHERE 1 IN (SELECT 1))",
        "EXISTS (SELECT 1 WHERE 1 BETWEEN 0 AND 2)",
        "CASE region WHEN 'a' THEN true END",
    ] {
        let mut f = fixture();
        if let Some(p) = f.protections.get_mut(&q("hr", "salaries")) {
            p.row_filters[0].predicate = predicate.into();
        }
        let e = rewrite(
            "SELECT 1 FROM hr.salaries",
            &SearchPath::default_path(),
            "alice",
            &catalog(),
            &f,
        )
        .unwrap_err();
        assert!(
            matches!(e, RewriteError::InvalidRowFilter { .. }),
            "{predicate}: {e}"
        );
    }
    // NULL values and values with quotes go in as literals
    let mut f = fixture();
    if let Some(p) = f.protections.get_mut(&q("hr", "salaries")) {
        p.row_filters[0].predicate =
            "region = $1 OR region = $2 OR EXISTS (SELECT 1 FROM app.regions r WHERE r.name = $1 AND lower(r.x) = region) OR lower(region)::text LIKE 'x%' OR region IN ('a', 'b') OR region NOT IN ('c') OR region ILIKE 'd'".into();
        p.row_filters[0].values = vec![Some("it's".into()), None];
    }
    let out = rewrite(
        "SELECT 1 FROM hr.salaries",
        &SearchPath::default_path(),
        "alice",
        &catalog(),
        &f,
    )
    .unwrap()
    .sql
    .unwrap();
    assert!(out.contains("salaries.region OPERATOR(pg_catalog.=) 'it''s' OR salaries.region OPERATOR(pg_catalog.=) NULL OR EXISTS (SELECT 1 FROM app.regions r WHERE r.name OPERATOR(pg_catalog.=) 'it''s' AND pg_catalog.lower(r.x) OPERATOR(pg_catalog.=) region)"), "{out}");
    assert!(
        !out.contains(" = ") && !out.contains(" lower(") && !out.contains("::text"),
        "{out}"
    );
    let tree = pg_query::parse(&out, 0).unwrap();
    assert_eq!(tree.deparse(Default::default()).unwrap(), out);
}

#[test]
fn mask_expressions() {
    let sql = |m: MaskKind| mask_expression_sql(&m, "c").unwrap();
    assert_eq!(
        sql(MaskKind::Full),
        "pg_catalog.repeat('X', pg_catalog.length(c::pg_catalog.text))"
    );
    assert_eq!(sql(MaskKind::Null), "NULL::pg_catalog.text");
    // `numeric` is a keyword type: the grammar always makes it pg_catalog.numeric
    assert_eq!(
        sql(MaskKind::Round { digits: 2 }),
        "CASE WHEN c::pg_catalog.text OPERATOR(pg_catalog.~) \
         E'^\\\\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\\\\s*$' \
         THEN pg_catalog.round(c::pg_catalog.text::numeric, 2) END"
    );
    assert_eq!(
        sql(MaskKind::Constant {
            value: "n/a".into()
        }),
        "CASE WHEN c IS NULL THEN NULL ELSE 'n/a'::pg_catalog.text END"
    );
    assert_eq!(
        sql(MaskKind::Regex {
            pattern: r"\d".into(),
            replacement: "'#'".into()
        }),
        r"pg_catalog.regexp_replace(c::pg_catalog.text, E'\\d'::pg_catalog.text, '''#'''::pg_catalog.text, 'g')"
    );
    let partial = sql(MaskKind::Partial {
        keep_first: 2,
        keep_last: u32::MAX,
    });
    assert!(
        partial.contains("OPERATOR(pg_catalog.<=) 2147483647 "),
        "{partial}"
    );
    for m in [
        MaskKind::Full,
        MaskKind::Partial {
            keep_first: 1,
            keep_last: 2,
        },
        MaskKind::Hash {
            salt: "s'\\".into(),
        },
        MaskKind::Null,
        MaskKind::Email,
        MaskKind::Regex {
            pattern: "a".into(),
            replacement: "b".into(),
        },
        MaskKind::Constant { value: "x".into() },
        MaskKind::Round { digits: -2 },
    ] {
        let expr = sql(m.clone());
        let text = format!("SELECT {expr}");
        let tree = pg_query::parse(&text, 0).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(tree.deparse(Default::default()).unwrap(), text);
        // every function and operator is pg_catalog's
        for f in tree.functions() {
            assert!(f.starts_with("pg_catalog."), "{m:?}: {f}");
        }
    }
}

#[test]
fn odd_input_never_panics() {
    let samples = [
        "", ";", ";;;", "SELECT", "SELECT * FROM", "\u{0}", "SELECT 'é' FROM hr.employees",
        "SELECT * FROM hr.employees e(", "WITH RECURSIVE employees AS (SELECT * FROM employees) SELECT * FROM employees",
        "SELECT * FROM a.b.c.d", "SELECT * FROM hr.employees, hr.employees", "SELECT (((((((((1)))))))))",
        "DO $$ BEGIN PERFORM 1 FROM hr.employees; END $$", "CALL p((SELECT ssn FROM hr.employees))",
        "SELECT * FROM xmltable('/a' PASSING (SELECT ssn::xml FROM hr.employees) COLUMNS a int)",
        "SELECT * FROM json_table((SELECT '{}'::jsonb FROM hr.employees), '$' COLUMNS (a int PATH '$.a'))",
        "VALUES ((SELECT ssn FROM hr.employees))", "EXECUTE p(1)", "EXPLAIN EXECUTE p",
        "COPY hr.employees TO '/tmp/x'", "SELECT * FROM hr.employees AS e(a) NATURAL JOIN hr.employees",
    ];
    for s in samples {
        let _ = run(s, "hr, public");
        let _ = run(&s.repeat(3), "hr");
    }
    let deep = format!(
        "SELECT {}1{} FROM hr.employees",
        "(".repeat(500),
        ")".repeat(500)
    );
    let _ = run(&deep, "hr");
    let deep = format!(
        "{}SELECT ssn FROM hr.employees{}",
        "SELECT * FROM (".repeat(60),
        ") x".repeat(60)
    );
    let _ = run(&deep, "hr");
}

/// The generated mutable visitor reaches the same leaves as the analyser's visitor.
#[test]
fn mutable_visitor_covers_the_tree() {
    use super::children_mut::{for_each_child_mut, ChildMut};
    use crate::children::for_each_child;
    use pg_query::{NodeEnum, NodeRef};

    fn count_ref(n: NodeRef<'_>, acc: &mut [usize; 3]) {
        match n {
            NodeRef::ColumnRef(_) => acc[0] += 1,
            NodeRef::RangeVar(_) => acc[1] += 1,
            NodeRef::AConst(_) => acc[2] += 1,
            _ => {}
        }
        for_each_child(n, &mut |c| count_ref(c, acc));
    }
    fn count_mut(n: &mut NodeEnum, acc: &mut [usize; 3]) {
        match n {
            NodeEnum::ColumnRef(_) => acc[0] += 1,
            NodeEnum::RangeVar(_) => acc[1] += 1,
            NodeEnum::AConst(_) => acc[2] += 1,
            _ => {}
        }
        for_each_child_mut(n, &mut |c| match c {
            ChildMut::Node(n) => count_mut(n, acc),
            ChildMut::RangeVar(rv) => {
                let mut n = NodeEnum::RangeVar(rv.clone());
                count_mut(&mut n, acc);
            }
            ChildMut::Select(s) => {
                let mut n = NodeEnum::SelectStmt(Box::new(s.clone()));
                count_mut(&mut n, acc);
            }
            ChildMut::With(w) => {
                let mut n = NodeEnum::WithClause(w.clone());
                count_mut(&mut n, acc);
            }
        });
    }
    for sql in [
        "WITH RECURSIVE r(a) AS (SELECT 1 UNION SELECT a + 1 FROM r WHERE a < 3) SELECT * FROM r, t AS x(b) WHERE b IN (SELECT c FROM u) ORDER BY 1 LIMIT 2 OFFSET 1",
        "SELECT sum(a) FILTER (WHERE b > 1) OVER (PARTITION BY c ORDER BY d ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t GROUP BY ROLLUP (e, f) HAVING count(*) > 1",
        "INSERT INTO t AS x (a, b[1]) SELECT 1, 2 FROM u ON CONFLICT (a) WHERE a > 0 DO UPDATE SET b = excluded.b WHERE x.a = 1 RETURNING WITH (OLD AS o) o.a, *",
        "UPDATE t SET (a, b) = (SELECT 1, 2) FROM u WHERE t.c = u.c RETURNING t.*",
        "MERGE INTO t USING u ON t.a = u.a WHEN MATCHED AND u.b > 1 THEN UPDATE SET c = 1 WHEN NOT MATCHED THEN INSERT VALUES (u.a) RETURNING merge_action()",
        "SELECT xmlelement(name a, xmlattributes(1 AS b), 'c'), json_object('a' VALUE 1), CAST(x AS int[]), x COLLATE \"C\", CASE WHEN a THEN 1 ELSE 2 END FROM t TABLESAMPLE system (1) REPEATABLE (2)",
        "SELECT * FROM xmltable('/a' PASSING x COLUMNS b int PATH 'b' DEFAULT 1), json_table(j, '$' COLUMNS (a int PATH '$.a' DEFAULT 2 ON EMPTY)), LATERAL ROWS FROM (f(1), g(2)) WITH ORDINALITY",
        "COPY (SELECT 1 FROM t) TO STDOUT",
        "CREATE TABLE n (a int DEFAULT 1 CHECK (a > 0), LIKE t)",
        "ALTER TABLE t ADD COLUMN b int DEFAULT 2, ALTER COLUMN c TYPE text USING c::text",
    ] {
        let tree = crate::parse::parse(sql).unwrap();
        let node = tree.stmts[0].stmt.as_ref().unwrap().node.as_ref().unwrap();
        let mut a = [0; 3];
        count_ref(node.to_ref(), &mut a);
        let mut b = [0; 3];
        count_mut(&mut node.clone(), &mut b);
        assert_eq!(a, b, "{sql}");
    }
}

#[test]
fn cheap_check_on_resolved_names() {
    let f = fixture();
    assert!(touches_protected(
        &[q("public", "orders"), q("hr", "employees")],
        &f
    ));
    // listed with an empty protection, or not listed
    assert!(!touches_protected(
        &[q("hr", "departments"), q("public", "orders")],
        &f
    ));
    assert!(!touches_protected(&[], &f));
}

#[test]
fn write_target_is_never_a_cte() {
    // PostgreSQL looks write targets up among tables only, whatever CTEs are in scope
    let out = rewritten("WITH employees AS (SELECT 1) UPDATE employees SET name = ssn");
    assert!(out.contains("UPDATE hr.employees SET name = CASE"), "{out}");
}

#[test]
fn pinned_filters_deparse() {
    for predicate in [
        "NOT region LIKE 'a!%' ESCAPE '!'",
        "-amount < 0 AND region ~ '^e'",
        "(region, amount) = ('eu', 1)",
        "(region, amount) IN (('eu', 1))",
        "region COLLATE \"C\" >= 'a'",
        "CASE WHEN region = 'eu' THEN true ELSE false END",
        "coalesce(region, '') <> '' AND greatest(amount, 0) > 1",
        "region = ANY (ARRAY[$1, 'x']) AND amount::int % 2 = 0",
        "EXISTS (SELECT 1 FROM app.r WHERE r.x = region GROUP BY r.y HAVING count(*) > 1 ORDER BY 1)",
    ] {
        let mut f = fixture();
        if let Some(p) = f.protections.get_mut(&q("hr", "salaries")) {
            p.row_filters[0].predicate = predicate.into();
        }
        let out = rewrite(
            "SELECT 1 FROM hr.salaries",
            &SearchPath::default_path(),
            "alice",
            &catalog(),
            &f,
        )
        .unwrap_or_else(|e| panic!("{predicate}: {e}"))
        .sql
        .unwrap_or_default();
        let tree = pg_query::parse(&out, 0).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(tree.deparse(Default::default()).unwrap(), out);
        assert!(!out.contains(" = ") && !out.contains(" < "), "{out}");
    }
}

#[test]
fn views_over_protected_relations_expand_into_their_masked_definitions() {
    // The definition's names resolve through the path it was printed under (`hr`), whatever the session's.
    let out = rewritten_in("SELECT tax_id FROM staff", "hr");
    assert!(
        out.starts_with(
            "SELECT tax_id FROM (SELECT id, name, ssn AS tax_id FROM (SELECT employees.id AS id"
        ),
        "{out}"
    );
    assert!(out.contains(SSN), "{out}");
    assert!(out.contains(") staff(id, name, tax_id)"), "{out}");
    // A view through a view; the user's alias is kept.
    let out = rewritten_in("SELECT x.tax_id FROM public.staff_of_staff x", "public");
    assert!(out.contains("FROM hr.employees) employees) st) x"), "{out}");
    assert!(out.contains(SSN), "{out}");
    // A security barrier keeps the user's predicate out of the view's query; its function is named by schema.
    let out = rewritten_in("SELECT * FROM eu_pay WHERE amount > 5", "public");
    assert!(
        out.contains("pg_catalog.lower(s.region) = 'eu' OFFSET 0) eu_pay"),
        "{out}"
    );
    assert!(out.contains("FROM hr.salaries WHERE"), "{out}");
    let done = run("SELECT * FROM eu_pay", "public").unwrap();
    assert_eq!(done.applied.len(), 1);
    assert_eq!(done.applied[0].relation, q("hr", "salaries"));
}

#[test]
fn views_over_protected_relations_refuse_what_cannot_be_masked() {
    for (sql, expected) in [
        ("SELECT * FROM public.leaky", "calls function public.f"),
        (
            "UPDATE hr.staff SET name = 'x'",
            "writing through view hr.staff",
        ),
        ("DELETE FROM hr.staff", "writing through view hr.staff"),
        (
            "INSERT INTO hr.staff (id) VALUES (1)",
            "writing through view hr.staff",
        ),
        (
            "CREATE TABLE hr.staff AS SELECT 1",
            "view hr.staff, which reads a protected relation",
        ),
    ] {
        let e = refused(sql).to_string();
        assert!(e.contains(expected), "{sql}: {e}");
    }
    // A denied column read inside the definition is still denied.
    let mut f = fixture();
    f.views.insert(
        q("hr", "staff"),
        ViewDefinition {
            sql: "SELECT id, notes FROM employees".into(),
            path: std::sync::Arc::new(SearchPath::from_setting("hr")),
            security_barrier: false,
        },
    );
    let e = rewrite(
        "SELECT id FROM hr.staff",
        &SearchPath::from_setting("public"),
        "alice",
        &catalog(),
        &f,
    )
    .unwrap_err();
    assert!(matches!(e, RewriteError::DeniedColumn { .. }), "{e}");
}

/// A relation a rule could protect once it gains a column is read through the columns the catalog
/// snapshot lists, so a column added since (an `ssn` a `hr.*.ssn` mask selects) never comes back raw.
#[test]
fn pinned_relations_show_only_the_columns_the_snapshot_knows() {
    let mut f = fixture();
    f.protections.insert(
        q("hr", "departments"),
        RelationProtection {
            pinned: true,
            ..Default::default()
        },
    );
    f.columns
        .insert(q("hr", "departments"), cols(&["id", "name"]));
    let catalog = catalog();
    let path = SearchPath::from_setting("hr, public");
    let out = rewrite(
        "SELECT * FROM hr.departments d WHERE d.id = 1",
        &path,
        "alice",
        &catalog,
        &f,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .sql
    .expect("rewritten");
    assert_eq!(
        out,
        "SELECT * FROM (SELECT departments.id AS id, departments.name AS name FROM hr.departments) d \
         WHERE d.id = 1"
    );
}
/// Every reference to hr.employees in `out` is its masked projection, and no column reference still names
/// it by schema (which PostgreSQL could no longer resolve).
fn assert_masked(sql: &str, out: &str) {
    assert!(!out.contains("hr.employees."), "{sql} → {out}");
    let relations = out.matches("hr.employees").count();
    assert!(relations > 0, "{sql} → {out}");
    assert_eq!(relations, out.matches(SSN).count(), "{sql} → {out}");
}

#[test]
fn every_form_of_column_reference_reaches_the_projection() {
    for (sql, expected) in [
        // schema-qualified column: pointed at the projection's alias
        (
            "SELECT hr.employees.ssn FROM hr.employees",
            "SELECT employees.ssn FROM (SELECT",
        ),
        (
            r#"SELECT "hr"."employees"."ssn" FROM "hr"."employees""#,
            "SELECT employees.ssn FROM (SELECT",
        ),
        ("SELECT employees.ssn FROM hr.employees", "SELECT employees.ssn FROM"),
        ("SELECT e.ssn FROM hr.employees e", "SELECT e.ssn FROM"),
        ("SELECT (e).ssn FROM hr.employees e", "SELECT (e).ssn FROM"),
        (
            "SELECT (employees.*).ssn FROM hr.employees",
            "SELECT (employees.*).ssn FROM",
        ),
        (
            "SELECT (hr.employees.*).ssn FROM hr.employees",
            "SELECT (employees.*).ssn FROM",
        ),
        ("SELECT employees.* FROM hr.employees", "SELECT employees.* FROM"),
        ("SELECT hr.employees.* FROM hr.employees", "SELECT employees.* FROM"),
        ("SELECT row_to_json(e.*) FROM hr.employees e", "row_to_json(e.*)"),
        (
            "SELECT row_to_json(hr.employees.*) FROM hr.employees",
            "row_to_json(employees.*)",
        ),
        ("SELECT to_jsonb(e) FROM hr.employees e", "to_jsonb(e)"),
        ("SELECT ROW(e.*) FROM hr.employees e", "SELECT ROW(e.*) FROM"),
        (
            "SELECT ROW(hr.employees.*)::text FROM hr.employees",
            "SELECT ROW(employees.*)::text FROM",
        ),
        ("SELECT e FROM hr.employees e", "SELECT e FROM"),
        ("SELECT employees FROM hr.employees", "SELECT employees FROM"),
        // every clause
        (
            "SELECT id FROM hr.employees WHERE hr.employees.ssn LIKE '1%'",
            "WHERE employees.ssn LIKE '1%'",
        ),
        (
            "SELECT id FROM hr.employees ORDER BY hr.employees.ssn",
            "ORDER BY employees.ssn",
        ),
        (
            "SELECT hr.employees.ssn, count(*) FROM hr.employees GROUP BY hr.employees.ssn HAVING max(hr.employees.ssn) > '1'",
            "GROUP BY employees.ssn HAVING max(employees.ssn) > '1'",
        ),
        (
            "SELECT d.title FROM hr.departments d JOIN hr.employees ON hr.employees.dept_id = d.dept_id AND hr.employees.ssn > '1'",
            "ON employees.dept_id = d.dept_id AND employees.ssn > '1'",
        ),
        (
            "SELECT id FROM hr.employees WHERE EXISTS (SELECT 1 FROM public.orders o WHERE o.x = hr.employees.ssn)",
            "WHERE o.x = employees.ssn)",
        ),
        (
            "SELECT (SELECT hr.employees.ssn) FROM hr.employees",
            "SELECT (SELECT employees.ssn) FROM",
        ),
        (
            "SELECT s.x FROM hr.employees, LATERAL (SELECT hr.employees.ssn AS x) s",
            "LATERAL (SELECT employees.ssn AS x) s",
        ),
        (
            "SELECT u FROM hr.employees, unnest(ARRAY[hr.employees.ssn]) u",
            "unnest(ARRAY[employees.ssn]) u",
        ),
        (
            "WITH c AS (SELECT hr.employees.ssn FROM hr.employees) SELECT * FROM c",
            "WITH c AS (SELECT employees.ssn FROM (SELECT",
        ),
        (
            "UPDATE public.orders SET x = hr.employees.ssn FROM hr.employees WHERE hr.employees.id = 1 RETURNING hr.employees.ssn",
            "SET x = employees.ssn FROM (SELECT",
        ),
        (
            "DELETE FROM public.orders USING hr.employees WHERE public.orders.x = hr.employees.ssn RETURNING hr.employees.*",
            "WHERE public.orders.x = employees.ssn RETURNING employees.*",
        ),
        (
            "MERGE INTO public.orders o USING hr.employees ON o.x = hr.employees.ssn WHEN MATCHED THEN UPDATE SET x = hr.employees.ssn",
            "ON o.x = employees.ssn WHEN MATCHED THEN UPDATE SET x = employees.ssn",
        ),
        (
            "SELECT hr.employees.ssn FROM hr.employees TABLESAMPLE SYSTEM (50)",
            "SELECT employees.ssn FROM (SELECT",
        ),
        (
            "SELECT x.ssn FROM (SELECT hr.employees.ssn FROM hr.employees) x",
            "(SELECT employees.ssn FROM (SELECT",
        ),
        (
            "SELECT hr.employees.ssn FROM hr.employees UNION SELECT hr.employees.email FROM hr.employees",
            "SELECT employees.email FROM (SELECT",
        ),
    ] {
        let out = rewritten(sql);
        assert!(out.contains(expected), "{sql} → {out}");
        assert_masked(sql, &out);
    }
    // UPDATE ... RETURNING names the projection too
    let out =
        rewritten("UPDATE public.orders SET x = 1 FROM hr.employees RETURNING hr.employees.ssn");
    assert!(out.ends_with("RETURNING employees.ssn"), "{out}");
}

#[test]
fn search_path_and_catalog_qualified_references() {
    // The FROM item resolved through the path; the reference names it by schema.
    let out = rewritten_in("SELECT hr.employees.ssn FROM employees", "hr, public");
    assert!(
        out.starts_with("SELECT employees.ssn FROM (SELECT"),
        "{out}"
    );
    assert_masked("", &out);
    // Resolved elsewhere through the path: the reference names no item and is left to fail as it would.
    assert_eq!(
        run("SELECT hr.employees.ssn FROM employees", "public")
            .unwrap()
            .sql,
        None
    );
    // A database name is moved onto the relation inside the projection, where PostgreSQL still checks it.
    for sql in [
        "SELECT db.hr.employees.ssn FROM hr.employees",
        "SELECT db.hr.employees.ssn FROM db.hr.employees",
        "SELECT db.hr.employees.* FROM hr.employees",
        "SELECT row_to_json(db.hr.employees.*) FROM hr.employees TABLESAMPLE SYSTEM (1)",
    ] {
        let out = rewritten(sql);
        assert!(out.contains("FROM db.hr.employees"), "{sql} → {out}");
        assert!(
            !out.contains("db.hr.employees.") && !out.contains("db.hr.employees *"),
            "{sql} → {out}"
        );
        assert_masked(sql, &out);
    }
    // Two databases in one statement cannot both be the current one.
    for sql in [
        "SELECT a.hr.employees.ssn, b.hr.employees.id FROM hr.employees",
        "SELECT a.hr.employees.ssn FROM b.hr.employees",
    ] {
        let e = refused(sql);
        assert!(e.to_string().contains("cross-database"), "{sql}: {e}");
    }
}

#[test]
fn one_relation_name_in_two_schemas() {
    // Both protected: each projection gets a name of its own, which the schema-qualified references use.
    let out = rewritten("SELECT hr.people.ssn, sales.people.ssn FROM hr.people, sales.people");
    assert!(
        out.starts_with("SELECT hr_people.ssn, sales_people.ssn FROM (SELECT"),
        "{out}"
    );
    assert!(out.contains("FROM hr.people) hr_people, (SELECT"), "{out}");
    assert!(out.ends_with("FROM sales.people) sales_people"), "{out}");
    assert!(
        !out.contains("hr.people.") && !out.contains("sales.people."),
        "{out}"
    );
    assert_eq!(out.matches("pg_catalog.repeat('X'").count(), 2, "{out}");
    // One protected, one not: the unprotected one stays a relation of that name.
    let out = rewritten(
        "SELECT hr.employees.ssn, public.employees.id FROM hr.employees JOIN public.employees ON hr.employees.id = public.employees.id",
    );
    assert!(
        out.starts_with("SELECT hr_employees.ssn, public.employees.id FROM (SELECT"),
        "{out}"
    );
    assert!(
        out.ends_with(
            ") hr_employees JOIN public.employees ON hr_employees.id = public.employees.id"
        ),
        "{out}"
    );
    assert_masked("", &out);
    // A write target of the same name.
    let out = rewritten(
        "UPDATE public.employees SET id = hr.employees.id FROM hr.employees WHERE hr.employees.ssn = '1'",
    );
    assert!(
        out.contains("SET id = hr_employees.id FROM (SELECT")
            && out.ends_with("hr_employees WHERE hr_employees.ssn = '1'"),
        "{out}"
    );
    // The new name avoids every name in scope.
    let out =
        rewritten("SELECT hr.people.ssn FROM public.orders hr_people, hr.people, sales.people");
    assert!(out.starts_with("SELECT hr_people_2.ssn FROM"), "{out}");
    // One relation twice without aliases is an error in PostgreSQL; the new names must not hide it.
    let e = refused("SELECT 1 FROM hr.people, public.orders, hr.people");
    assert!(e.to_string().contains("more than once"), "{e}");
    // Once hidden by an aliased join it is not.
    rewritten("SELECT 1 FROM (hr.people JOIN public.orders o ON true) j, hr.people");
    // A bare name was ambiguous in the original: refused rather than resolved to one of them.
    for sql in [
        "SELECT people.ssn FROM hr.people, sales.people",
        "SELECT people.* FROM hr.people, sales.people",
        "SELECT row_to_json(people) FROM hr.people, sales.people",
        "SELECT employees.ssn FROM hr.employees, public.employees",
    ] {
        let e = refused(sql);
        assert!(e.to_string().contains("ambiguous"), "{sql}: {e}");
    }
    // Inside a join's ON clause only its own sides are in scope, so a bare name there is not ambiguous.
    let out = rewritten(
        "SELECT 1 FROM (hr.people JOIN public.orders o ON people.id = o.x) j, sales.people",
    );
    assert!(out.contains("ON hr_people.id = o.x ) j"), "{out}");
}

#[test]
fn references_that_cannot_be_pointed_at_the_projection_are_refused() {
    // The inner FROM item named `employees` would capture the rewritten reference.
    let e =
        refused("SELECT (SELECT hr.employees.ssn FROM public.orders employees) FROM hr.employees");
    assert!(e.to_string().contains("also named employees"), "{e}");
    // An aliased relation cannot be named by schema in PostgreSQL either: left as written (it fails there).
    let out = rewritten("SELECT hr.employees.ssn FROM hr.employees e");
    assert!(
        out.starts_with("SELECT hr.employees.ssn FROM (SELECT"),
        "{out}"
    );
    // A non-LATERAL subquery does not see its FROM list's other items: left as written too.
    let out = rewritten("SELECT * FROM hr.employees, (SELECT hr.employees.ssn) s");
    assert!(out.contains("(SELECT hr.employees.ssn) s"), "{out}");
    // Denied columns stay denied however they are named.
    for sql in [
        "SELECT hr.employees.notes FROM hr.employees",
        "SELECT db.hr.employees.notes FROM hr.employees",
    ] {
        assert!(
            matches!(refused(sql), RewriteError::DeniedColumn { .. }),
            "{sql}"
        );
    }
}

#[test]
fn write_targets_named_by_schema_are_masked_in_place() {
    let out = rewritten(
        "UPDATE hr.employees SET name = 'x' WHERE hr.employees.ssn = '1' RETURNING hr.employees.ssn, hr.employees.*",
    );
    assert!(
        out.starts_with(
            "UPDATE hr.employees SET name = 'x' WHERE CASE WHEN pg_catalog.length(hr.employees.ssn"
        ),
        "{out}"
    );
    assert!(
        out.contains("RETURNING CASE WHEN pg_catalog.length(hr.employees.ssn"),
        "{out}"
    );
    assert!(
        out.contains("END AS ssn, CASE WHEN pg_catalog.strpos"),
        "{out}"
    );
    let out = rewritten("DELETE FROM hr.employees WHERE hr.employees.ssn = '1'");
    assert!(
        out.contains("WHERE CASE WHEN pg_catalog.length(hr.employees.ssn"),
        "{out}"
    );
}

#[test]
fn views_named_by_schema() {
    let out = rewritten_in("SELECT hr.staff.tax_id FROM hr.staff", "public");
    assert!(out.starts_with("SELECT staff.tax_id FROM (SELECT"), "{out}");
    assert!(out.contains(SSN), "{out}");
    let e = run("SELECT db.hr.staff.tax_id FROM hr.staff", "public").unwrap_err();
    assert!(e.to_string().contains("leave out the database name"), "{e}");
}

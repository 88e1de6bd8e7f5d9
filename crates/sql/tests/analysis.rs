//! Table-driven checks: statement kind, object components (name as written, operation) and opacity.

use portcullis_sql::{
    analyze_uncached, Analyzer, ObjectKind, SessionEffect, Statement, StatementKind,
};

/// `name:operation` for every object component, sorted. Non-relations are prefixed with their kind.
fn components(stmt: &Statement) -> Vec<String> {
    let mut v: Vec<String> = stmt
        .objects
        .iter()
        .map(|o| {
            let prefix = match o.kind {
                ObjectKind::Relation => "",
                ObjectKind::Function => "f:",
                ObjectKind::Schema => "s:",
                ObjectKind::Database => "db:",
                ObjectKind::Sequence => "seq:",
                ObjectKind::Type => "t:",
                ObjectKind::Role => "r:",
                ObjectKind::Setting => "set:",
                ObjectKind::Channel => "ch:",
                ObjectKind::Server => "srv:",
                ObjectKind::Other => "o:",
                other => return format!("{other}:{}:{}", o.object, o.operation),
            };
            format!("{prefix}{}:{}", o.object, o.operation)
        })
        .collect();
    v.sort();
    v
}

fn one(sql: &str) -> Statement {
    let analysis = analyze_uncached(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(analysis.statements.len(), 1, "{sql}");
    analysis.statements.into_iter().next().unwrap()
}

/// (sql, kind, components, opaque)
type Case = (&'static str, &'static str, &'static [&'static str], bool);

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for (sql, kind, expected, opaque) in cases {
        let stmt = one(sql);
        let got = components(&stmt);
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        if stmt.kind.as_str() != *kind || got != want || stmt.opaque.is_some() != *opaque {
            failures.push(format!(
                "{sql}\n   want {kind} {want:?} opaque={opaque}\n   got  {} {got:?} opaque={:?}",
                stmt.kind, stmt.opaque
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn selects() {
    check(&[
        ("SELECT 1", "SELECT", &[], false),
        ("SELECT * FROM t", "SELECT", &["t:read"], false),
        ("select * from HR.Employees", "SELECT", &["hr.employees:read"], false),
        (r#"SELECT * FROM "HR"."Employees""#, "SELECT", &[r#""HR"."Employees":read"#], false),
        ("SELECT * FROM db1.hr.employees", "SELECT", &["db1.hr.employees:read"], false),
        (
            "SELECT * FROM hr.employees e JOIN hr.departments d ON e.dept = d.id LEFT JOIN x USING (k)",
            "SELECT",
            &["hr.employees:read", "hr.departments:read", "x:read"],
            false,
        ),
        ("SELECT * FROM a, a AS a2", "SELECT", &["a:read"], false),
        ("SELECT * FROM (SELECT * FROM inner_t) s", "SELECT", &["inner_t:read"], false),
        ("SELECT * FROM t WHERE id IN (SELECT id FROM u)", "SELECT", &["t:read", "u:read"], false),
        ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", "SELECT", &["t:read", "u:read"], false),
        ("SELECT (SELECT max(x) FROM u) AS m", "SELECT", &["u:read", "f:max:execute"], false),
        (
            "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.a = t.a) l",
            "SELECT",
            &["t:read", "u:read"],
            false,
        ),
        ("SELECT * FROM t CROSS JOIN LATERAL f(t.x)", "SELECT", &["t:read", "f:f:execute"], false),
        ("SELECT a FROM t UNION SELECT a FROM u", "SELECT", &["t:read", "u:read"], false),
        ("SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT SELECT a FROM v", "SELECT", &["t:read", "u:read", "v:read"], false),
        ("TABLE t", "SELECT", &["t:read"], false),
        ("TABLE s.t", "SELECT", &["s.t:read"], false),
        ("VALUES (1, 2), (3, 4)", "SELECT", &[], false),
        ("SELECT * FROM (VALUES (1), ((SELECT 1 FROM u))) v(x)", "SELECT", &["u:read"], false),
        ("SELECT * FROM t ORDER BY (SELECT 1 FROM u LIMIT 1)", "SELECT", &["t:read", "u:read"], false),
        ("SELECT * FROM t FOR UPDATE OF t", "SELECT", &["t:read", "t:update"], false),
        ("SELECT * FROM t AS x FOR SHARE OF x", "SELECT", &["t:read", "t:update"], false),
        ("SELECT * FROM t TABLESAMPLE SYSTEM ((SELECT 10 FROM u))", "SELECT", &["t:read", "u:read"], false),
        ("SELECT * FROM ONLY t", "SELECT", &["t:read"], false),
        ("SELECT count(*), now() FROM t", "SELECT", &["t:read", "f:count:execute", "f:now:execute"], false),
        // Server files and SQL given as text cannot be attributed to objects.
        ("SELECT pg_read_file('/etc/passwd')", "SELECT", &["f:pg_read_file:execute"], true),
        ("SELECT lo_import('/etc/passwd')", "SELECT", &["f:lo_import:execute"], true),
        ("SELECT query_to_xml('SELECT * FROM t', true, true, '')", "SELECT", &["f:query_to_xml:execute"], true),
        ("SELECT pg_catalog.table_to_xml('t', true, true, '')", "SELECT", &["f:pg_catalog.table_to_xml:execute"], true),
        ("SELECT * FROM dblink('conn', 'select 1') AS t(a int)", "SELECT", &["f:dblink:execute"], true),
        ("SELECT nextval('s')", "SELECT", &["f:nextval:execute"], false),
        ("SELECT public.my_fn(1)", "SELECT", &["f:public.my_fn:execute"], false),
        ("SELECT x FROM t WHERE y = $1 AND z = $3", "SELECT", &["t:read"], false),
        ("SELECT sum(x) OVER (PARTITION BY (SELECT 1 FROM w)) FROM t", "SELECT", &["t:read", "w:read", "f:sum:execute"], false),
        ("SELECT CASE WHEN x THEN (SELECT 1 FROM u) ELSE 0 END FROM t", "SELECT", &["t:read", "u:read"], false),
        ("SELECT ARRAY(SELECT a FROM u)", "SELECT", &["u:read"], false),
        ("SELECT * FROM XMLTABLE('/r' PASSING (SELECT x FROM u) COLUMNS a int)", "SELECT", &["u:read"], false),
        ("SELECT * FROM ROWS FROM (f1(), f2()) AS r", "SELECT", &["f:f1:execute", "f:f2:execute"], false),
        ("SELECT extract(year from now())", "SELECT", &["f:pg_catalog.extract:execute", "f:now:execute"], false),
        ("SELECT 'x'::regclass, CURRENT_USER", "SELECT", &[], false),
    ]);
}

#[test]
fn ctes() {
    check(&[
        ("WITH c AS (SELECT * FROM t) SELECT * FROM c", "SELECT", &["t:read"], false),
        // a schema-qualified name never refers to a CTE
        ("WITH c AS (SELECT 1) SELECT * FROM c, public.c", "SELECT", &["public.c:read"], false),
        // the CTE's own query sees the real table of the same name (non-recursive)
        ("WITH t AS (SELECT * FROM t) SELECT * FROM t", "SELECT", &["t:read"], false),
        ("WITH emp AS (SELECT 1) SELECT * FROM emp", "SELECT", &[], false),
        // outside the CTE's scope the name is the real table
        ("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) x, c", "SELECT", &["c:read"], false),
        ("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", "SELECT", &[], false),
        // later CTEs are not visible to earlier ones without RECURSIVE
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "SELECT", &["b:read"], false),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
            "SELECT",
            &[],
            false,
        ),
        (
            "WITH RECURSIVE tree AS (SELECT id FROM nodes WHERE parent IS NULL UNION ALL SELECT n.id FROM nodes n JOIN tree ON n.parent = tree.id) SELECT * FROM tree",
            "SELECT",
            &["nodes:read"],
            false,
        ),
        ("SELECT * FROM t WHERE x IN (WITH c AS (SELECT 1) SELECT * FROM c)", "SELECT", &["t:read"], false),
        (
            "WITH d AS (DELETE FROM t WHERE x RETURNING *) SELECT * FROM d",
            "SELECT",
            &["t:delete", "t:read"],
            false,
        ),
        (
            "WITH d AS (DELETE FROM t) SELECT 1",
            "SELECT",
            &["t:delete"],
            false,
        ),
        (
            "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved",
            "INSERT",
            &["a:delete", "a:read", "b:insert"],
            false,
        ),
        (
            "WITH u AS (UPDATE t SET x = 1 RETURNING id) SELECT * FROM u",
            "SELECT",
            &["t:update", "t:read"],
            false,
        ),
    ]);
}

#[test]
fn dml() {
    check(&[
        ("INSERT INTO t (a, b) VALUES (1, 2)", "INSERT", &["t:insert"], false),
        ("INSERT INTO s.t SELECT * FROM u", "INSERT", &["s.t:insert", "u:read"], false),
        ("INSERT INTO t VALUES ((SELECT max(a) FROM u))", "INSERT", &["t:insert", "u:read", "f:max:execute"], false),
        ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING", "INSERT", &["t:insert"], false),
        (
            "INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = EXCLUDED.b",
            "INSERT",
            &["t:insert", "t:update"],
            false,
        ),
        ("INSERT INTO t (a) VALUES (1) RETURNING *", "INSERT", &["t:insert", "t:read"], false),
        ("INSERT INTO t DEFAULT VALUES RETURNING id, (SELECT 1 FROM u)", "INSERT", &["t:insert", "t:read", "u:read"], false),
        ("UPDATE t SET a = 1, b = 2 WHERE id = 3", "UPDATE", &["t:update", "t:read"], false),
        ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", "UPDATE", &["t:update", "t:read", "u:read"], false),
        ("UPDATE t SET a = (SELECT max(a) FROM u) WHERE id IN (SELECT id FROM v)", "UPDATE", &["t:update", "t:read", "u:read", "v:read", "f:max:execute"], false),
        ("UPDATE t SET (a, b) = (SELECT a, b FROM u) RETURNING a", "UPDATE", &["t:update", "u:read", "t:read"], false),
        ("DELETE FROM t WHERE id = 1", "DELETE", &["t:delete", "t:read"], false),
        ("DELETE FROM t USING u WHERE t.id = u.id", "DELETE", &["t:delete", "t:read", "u:read"], false),
        ("DELETE FROM t WHERE id IN (SELECT id FROM u) RETURNING *", "DELETE", &["t:delete", "t:read", "u:read"], false),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.del THEN DELETE WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)",
            "MERGE",
            &["t:delete", "t:update", "t:insert", "s:read"],
            false,
        ),
        (
            "MERGE INTO t USING (SELECT * FROM src) s ON t.id = s.id WHEN NOT MATCHED THEN DO NOTHING",
            "MERGE",
            &["src:read"],
            false,
        ),
        ("SELECT * INTO newt FROM t", "SELECT INTO", &["newt:create", "t:read"], false),
        ("SELECT * INTO TEMP newt FROM t", "SELECT INTO", &["pg_temp.newt:create", "t:read"], false),
        ("CREATE TABLE x AS SELECT * FROM hr.employees e JOIN hr.departments d ON true", "CREATE TABLE AS", &["x:create", "hr.employees:read", "hr.departments:read"], false),
        ("CREATE TABLE x AS EXECUTE p", "CREATE TABLE AS", &["x:create"], false),
        ("CREATE VIEW v AS SELECT * FROM t", "CREATE VIEW", &["v:create", "t:read"], false),
        ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", "CREATE MATERIALIZED VIEW", &["mv:create", "t:read"], false),
        ("REFRESH MATERIALIZED VIEW mv", "REFRESH MATERIALIZED VIEW", &["mv:maintain"], false),
        ("TRUNCATE a, s.b", "TRUNCATE", &["a:truncate", "s.b:truncate"], false),
    ]);
}

#[test]
fn columns_are_reported() {
    let s = one("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = 3");
    let cols: Vec<_> = s
        .objects
        .iter()
        .map(|o| (o.operation.as_str(), o.columns.join(",")))
        .collect();
    assert_eq!(
        cols,
        [("insert", "a,b".to_string()), ("update", "b".to_string())]
    );
    let s = one("UPDATE t SET a = 1, (b, c) = (2, 3)");
    assert_eq!(s.objects[0].columns, ["a", "b", "c"]);
    let s = one("COPY t (x, y) TO STDOUT");
    assert_eq!(s.objects[0].columns, ["x", "y"]);
    let s = one("MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET v = 1 WHEN NOT MATCHED THEN INSERT (id) VALUES (1)");
    let t: Vec<_> = s
        .objects
        .iter()
        .filter(|o| o.object.name == "t")
        .map(|o| o.columns.join(","))
        .collect();
    assert_eq!(t, ["v", "id"]);
}

#[test]
fn copy_explain_prepare_cursors() {
    check(&[
        ("COPY t TO STDOUT", "COPY", &["t:copy-out"], false),
        (
            "COPY t (a, b) TO STDOUT WITH (FORMAT csv)",
            "COPY",
            &["t:copy-out"],
            false,
        ),
        (
            "COPY (SELECT * FROM t JOIN u USING (id)) TO STDOUT",
            "COPY",
            &["t:read", "t:copy-out", "u:read", "u:copy-out"],
            false,
        ),
        ("COPY t FROM STDIN", "COPY", &["t:copy-in"], false),
        (
            "COPY t FROM STDIN WHERE a > (SELECT 1 FROM u)",
            "COPY",
            &["t:copy-in", "u:read"],
            false,
        ),
        ("COPY t TO '/tmp/x'", "COPY", &["t:copy-out"], true),
        ("COPY t FROM '/etc/passwd'", "COPY", &["t:copy-in"], true),
        ("COPY t FROM PROGRAM 'id'", "COPY", &["t:copy-in"], true),
        ("COPY (SELECT 1) TO PROGRAM 'sh'", "COPY", &[], true),
        ("EXPLAIN SELECT * FROM t", "EXPLAIN", &["t:read"], false),
        (
            "EXPLAIN ANALYZE DELETE FROM t",
            "EXPLAIN",
            &["t:delete"],
            false,
        ),
        (
            "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1",
            "EXPLAIN",
            &["t:update"],
            false,
        ),
        ("EXPLAIN EXECUTE p", "EXPLAIN", &[], false),
        (
            "PREPARE p AS SELECT * FROM t WHERE id = $1",
            "PREPARE",
            &["t:read"],
            false,
        ),
        (
            "PREPARE q (int) AS INSERT INTO t VALUES ($1)",
            "PREPARE",
            &["t:insert"],
            false,
        ),
        (
            "PREPARE d AS SELECT set_config('role', 'x', false)",
            "PREPARE",
            &["f:set_config:execute"],
            true,
        ),
        ("EXECUTE p(1)", "EXECUTE", &[], false),
        (
            "EXECUTE p((SELECT secret FROM s))",
            "EXECUTE",
            &["s:read"],
            false,
        ),
        ("DEALLOCATE p", "DEALLOCATE", &[], false),
        ("DEALLOCATE ALL", "DEALLOCATE", &[], false),
        (
            "DECLARE c CURSOR FOR SELECT * FROM t",
            "DECLARE CURSOR",
            &["t:read"],
            false,
        ),
        (
            "DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t JOIN u USING (id)",
            "DECLARE CURSOR",
            &["t:read", "u:read"],
            false,
        ),
        ("FETCH 10 FROM c", "FETCH", &[], false),
        ("FETCH ALL IN c", "FETCH", &[], false),
        ("MOVE NEXT IN c", "MOVE", &[], false),
        ("CLOSE c", "CLOSE", &[], false),
        ("CLOSE ALL", "CLOSE", &[], false),
    ]);
}

#[test]
fn routines() {
    check(&[
        ("CALL my_proc(1, 2)", "CALL", &["f:my_proc:execute"], false),
        (
            "CALL s.p((SELECT x FROM t))",
            "CALL",
            &["f:s.p:execute", "t:read"],
            false,
        ),
        (
            "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$",
            "DO",
            &[],
            true,
        ),
        ("DO LANGUAGE plpgsql 'BEGIN NULL; END'", "DO", &[], true),
        (
            "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a FROM secret $$",
            "CREATE FUNCTION",
            &["f:f:create"],
            false,
        ),
        (
            "CREATE OR REPLACE FUNCTION s.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
            "CREATE FUNCTION",
            &["f:s.f:create"],
            false,
        ),
        (
            "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'",
            "CREATE PROCEDURE",
            &["f:p:create"],
            false,
        ),
        (
            "ALTER FUNCTION f(int) OWNER TO bob",
            "ALTER FUNCTION",
            &["f:f:alter"],
            false,
        ),
        (
            "DROP FUNCTION f(int), s.g()",
            "DROP",
            &["f:f:drop", "f:s.g:drop"],
            false,
        ),
        ("DROP PROCEDURE p", "DROP", &["f:p:drop"], false),
    ]);
}

#[test]
fn ddl() {
    check(&[
        (
            "CREATE TABLE t (id int PRIMARY KEY, v text DEFAULT now())",
            "CREATE TABLE",
            &["t:create", "f:now:execute"],
            false,
        ),
        (
            "CREATE TABLE s.t (id int REFERENCES s.parent(id))",
            "CREATE TABLE",
            &["s.t:create", "s.parent:read"],
            false,
        ),
        (
            "CREATE TEMP TABLE tt (a int)",
            "CREATE TABLE",
            &["pg_temp.tt:create"],
            false,
        ),
        (
            "CREATE TABLE c (LIKE t INCLUDING ALL)",
            "CREATE TABLE",
            &["c:create", "t:read"],
            false,
        ),
        (
            "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)",
            "CREATE TABLE",
            &["p1:create", "p:alter"],
            false,
        ),
        (
            "CREATE TABLE ch () INHERITS (par)",
            "CREATE TABLE",
            &["ch:create", "par:alter"],
            false,
        ),
        (
            "ALTER TABLE t ADD COLUMN c int",
            "ALTER TABLE",
            &["t:alter"],
            false,
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id)",
            "ALTER TABLE",
            &["t:alter", "u:read"],
            false,
        ),
        (
            "ALTER TABLE p ATTACH PARTITION p2 FOR VALUES IN (2)",
            "ALTER TABLE",
            &["p:alter", "p2:alter"],
            false,
        ),
        (
            "ALTER TABLE t RENAME TO t2",
            "ALTER TABLE",
            &["t:alter"],
            false,
        ),
        (
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE",
            &["t:alter"],
            false,
        ),
        (
            "ALTER TABLE t OWNER TO bob",
            "ALTER TABLE",
            &["t:alter"],
            false,
        ),
        (
            "ALTER TABLE t SET SCHEMA s2",
            "ALTER TABLE",
            &["t:alter"],
            false,
        ),
        (
            "ALTER INDEX i RENAME TO j",
            "ALTER INDEX",
            &["i:alter"],
            false,
        ),
        (
            "ALTER VIEW v OWNER TO bob",
            "ALTER VIEW",
            &["v:alter"],
            false,
        ),
        (
            "DROP TABLE a, s.b CASCADE",
            "DROP",
            &["a:drop", "s.b:drop"],
            false,
        ),
        ("DROP VIEW IF EXISTS v", "DROP", &["v:drop"], false),
        ("DROP INDEX s.i", "DROP", &["s.i:drop"], false),
        ("DROP SCHEMA hr CASCADE", "DROP", &["s:hr:drop"], false),
        ("DROP SEQUENCE seq1", "DROP", &["seq:seq1:drop"], false),
        ("DROP TYPE mood", "DROP", &["t:mood:drop"], false),
        ("DROP TRIGGER trg ON s.t", "DROP", &["s.t:alter"], false),
        ("DROP POLICY pol ON t", "DROP", &["t:alter"], false),
        (
            "DROP EXTENSION dblink",
            "DROP",
            &["extension:dblink:drop"],
            false,
        ),
        (
            "CREATE INDEX idx ON t (a, b)",
            "CREATE INDEX",
            &["idx:create", "t:alter"],
            false,
        ),
        (
            "CREATE UNIQUE INDEX ON s.t (lower(a))",
            "CREATE INDEX",
            &["s.t:alter", "f:lower:execute"],
            false,
        ),
        ("CREATE SCHEMA hr", "CREATE SCHEMA", &["s:hr:create"], false),
        (
            "CREATE SCHEMA hr CREATE TABLE emp (id int)",
            "CREATE SCHEMA",
            &["s:hr:create", "hr.emp:create"],
            false,
        ),
        (
            "CREATE SEQUENCE s1",
            "CREATE SEQUENCE",
            &["seq:s1:create"],
            false,
        ),
        (
            "ALTER SEQUENCE s1 RESTART",
            "ALTER SEQUENCE",
            &["seq:s1:alter"],
            false,
        ),
        (
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
            "CREATE EXTENSION",
            &["extension:pgcrypto:create"],
            false,
        ),
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            "ALTER SYSTEM",
            &["set:work_mem:alter-system"],
            false,
        ),
        ("LOAD 'auto_explain'", "LOAD", &["srv:load:admin"], false),
        ("COMMENT ON TABLE t IS 'x'", "COMMENT", &["t:alter"], false),
        (
            "COMMENT ON COLUMN s.t.c IS 'x'",
            "COMMENT",
            &["s.t:alter"],
            false,
        ),
        (
            "CREATE TYPE mood AS ENUM ('a', 'b')",
            "CREATE TYPE",
            &["t:mood:create"],
            false,
        ),
        (
            "CREATE DOMAIN d AS int CHECK (VALUE > 0)",
            "CREATE DOMAIN",
            &["t:d:create"],
            false,
        ),
        (
            "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg_fn()",
            "CREATE TRIGGER",
            &["t:alter", "f:trg_fn:execute"],
            false,
        ),
        (
            "CREATE POLICY p ON t USING (owner = current_user)",
            "CREATE POLICY",
            &["t:alter"],
            false,
        ),
        (
            "CREATE DATABASE d2",
            "CREATE DATABASE",
            &["db:d2:create"],
            false,
        ),
        ("DROP DATABASE d2", "DROP DATABASE", &["db:d2:drop"], false),
        (
            "CREATE ROLE bob LOGIN",
            "CREATE ROLE",
            &["r:bob:create"],
            false,
        ),
        ("DROP ROLE bob", "DROP ROLE", &["r:bob:drop"], false),
        (
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
            "CREATE RULE",
            &["t:alter"],
            false,
        ),
    ]);
}

#[test]
fn privileges_and_maintenance() {
    check(&[
        (
            "GRANT SELECT ON hr.employees TO bob",
            "GRANT",
            &["hr.employees:grant"],
            false,
        ),
        (
            "GRANT SELECT (a, b) ON t TO bob",
            "GRANT",
            &["t:grant"],
            false,
        ),
        (
            "REVOKE ALL ON TABLE a, b FROM bob",
            "REVOKE",
            &["a:grant", "b:grant"],
            false,
        ),
        (
            "GRANT ALL ON ALL TABLES IN SCHEMA hr TO bob",
            "GRANT",
            &["s:hr:grant"],
            false,
        ),
        (
            "GRANT USAGE ON SCHEMA hr TO bob",
            "GRANT",
            &["s:hr:grant"],
            false,
        ),
        (
            "GRANT EXECUTE ON FUNCTION f(int) TO bob",
            "GRANT",
            &["f:f:grant"],
            false,
        ),
        (
            "GRANT USAGE ON SEQUENCE s1 TO bob",
            "GRANT",
            &["seq:s1:grant"],
            false,
        ),
        (
            "GRANT CONNECT ON DATABASE d TO bob",
            "GRANT",
            &["db:d:grant"],
            false,
        ),
        (
            "GRANT admin TO bob",
            "GRANT ROLE",
            &["r:admin:grant"],
            false,
        ),
        (
            "REVOKE admin FROM bob",
            "REVOKE ROLE",
            &["r:admin:grant"],
            false,
        ),
        (
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLE",
            &["t:lock"],
            false,
        ),
        ("LOCK a, s.b", "LOCK TABLE", &["a:lock", "s.b:lock"], false),
        ("VACUUM", "VACUUM", &["srv:all_tables:maintain"], false),
        (
            "VACUUM (FULL, ANALYZE) t, s.u (a)",
            "VACUUM",
            &["t:maintain", "s.u:maintain"],
            false,
        ),
        ("ANALYZE t", "ANALYZE", &["t:maintain"], false),
        ("CLUSTER t USING idx", "CLUSTER", &["t:maintain"], false),
        ("REINDEX TABLE t", "REINDEX", &["t:maintain"], false),
        ("REINDEX SCHEMA hr", "REINDEX", &["s:hr:maintain"], false),
        ("CHECKPOINT", "CHECKPOINT", &["srv:checkpoint:admin"], false),
    ]);
}

#[test]
fn session_statements() {
    check(&[
        ("SET search_path TO hr, public", "SET", &[], false),
        ("SET extra_float_digits = 3", "SET", &[], false),
        (
            "SET application_name = 'PostgreSQL JDBC Driver'",
            "SET",
            &[],
            false,
        ),
        ("SET TIME ZONE 'UTC'", "SET", &[], false),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET",
            &[],
            false,
        ),
        ("SET TRANSACTION READ ONLY", "SET", &[], false),
        ("SET ROLE admin", "SET", &[], true),
        ("SET LOCAL ROLE admin", "SET", &[], true),
        ("SET SESSION AUTHORIZATION alice", "SET", &[], true),
        ("RESET ROLE", "RESET", &[], true),
        ("RESET SESSION AUTHORIZATION", "RESET", &[], true),
        ("RESET ALL", "RESET", &[], false),
        ("SHOW search_path", "SHOW", &[], false),
        ("SHOW ALL", "SHOW", &[], false),
        ("SHOW transaction_isolation", "SHOW", &[], false),
        ("BEGIN", "BEGIN", &[], false),
        (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            "BEGIN",
            &[],
            false,
        ),
        ("START TRANSACTION", "BEGIN", &[], false),
        ("COMMIT", "COMMIT", &[], false),
        ("END", "COMMIT", &[], false),
        ("ROLLBACK", "ROLLBACK", &[], false),
        ("SAVEPOINT s1", "SAVEPOINT", &[], false),
        ("RELEASE SAVEPOINT s1", "RELEASE", &[], false),
        (
            "ROLLBACK TO SAVEPOINT s1",
            "ROLLBACK TO SAVEPOINT",
            &[],
            false,
        ),
        (
            "PREPARE TRANSACTION 'x'",
            "PREPARE TRANSACTION",
            &["srv:prepared_transactions:admin"],
            false,
        ),
        ("DISCARD ALL", "DISCARD", &[], false),
        ("DISCARD PLANS", "DISCARD", &[], false),
        ("LISTEN chan", "LISTEN", &["ch:chan:listen"], false),
        ("UNLISTEN *", "UNLISTEN", &[], false),
        (
            "NOTIFY chan, 'payload'",
            "NOTIFY",
            &["ch:chan:notify"],
            false,
        ),
        (
            "SELECT pg_notify('chan', 'x')",
            "SELECT",
            &["f:pg_notify:execute"],
            false,
        ),
        (
            "SET CONSTRAINTS ALL DEFERRED",
            "SET CONSTRAINTS",
            &[],
            false,
        ),
        (
            "SELECT set_config('application_name', 'x', false)",
            "SELECT",
            &["f:set_config:execute"],
            false,
        ),
        (
            "SELECT set_config('role', 'admin', false)",
            "SELECT",
            &["f:set_config:execute"],
            true,
        ),
        (
            "SELECT pg_catalog.set_config('Session_Authorization', 'x', false)",
            "SELECT",
            &["f:pg_catalog.set_config:execute"],
            true,
        ),
        (
            // Decided at Bind, on the bound name.
            "SELECT set_config($1, 'x', false)",
            "SELECT",
            &["f:set_config:execute"],
            false,
        ),
        (
            "PREPARE s AS SELECT set_config($1, 'x', false)",
            "PREPARE",
            &["f:set_config:execute"],
            true,
        ),
        (
            "SELECT set_config('search_path', $1, false)",
            "SELECT",
            &["f:set_config:execute"],
            true,
        ),
        (
            "ALTER ROLE bob SET role = 'admin'",
            "ALTER ROLE",
            &["r:bob:alter"],
            true,
        ),
    ]);
}

#[test]
fn set_config_names_given_as_parameters_are_left_to_bind() {
    assert_eq!(
        one("SELECT set_config($2::text, $1, true), $3").bound_settings,
        vec![2]
    );
    assert!(one("SELECT set_config('work_mem', '1MB', false)")
        .bound_settings
        .is_empty());
}

fn effect(sql: &str) -> Option<SessionEffect> {
    one(sql).effect
}

#[test]
fn session_effects() {
    let path = |v: &[&str]| {
        Some(SessionEffect::SetSearchPath(
            v.iter().map(|s| s.to_string()).collect(),
        ))
    };
    assert_eq!(
        effect("SET search_path TO hr, public"),
        path(&["hr", "public"])
    );
    assert_eq!(
        effect("SET SESSION search_path = \"$user\", \"HR\", Sales"),
        path(&["$user", "HR", "sales"])
    );
    assert_eq!(effect("SET search_path = 'a, b'"), path(&["a, b"]));
    assert_eq!(effect("set search_path to ''"), path(&[""]));
    assert_eq!(
        effect("SET LOCAL search_path TO hr"),
        Some(SessionEffect::SetLocalSearchPath(vec!["hr".into()]))
    );
    assert_eq!(
        effect("SET search_path TO DEFAULT"),
        Some(SessionEffect::ResetSearchPath)
    );
    assert_eq!(
        effect("RESET search_path"),
        Some(SessionEffect::ResetSearchPath)
    );
    assert_eq!(effect("RESET ALL"), Some(SessionEffect::ResetSearchPath));
    assert_eq!(effect("DISCARD ALL"), Some(SessionEffect::DiscardAll));
    assert!(SessionEffect::DiscardAll.resets_search_path());
    assert_eq!(effect("SET work_mem = '1MB'"), None);
    assert_eq!(
        effect("SELECT pg_catalog.set_config('search_path', '', false)"),
        path(&[])
    );
    assert_eq!(
        effect("SELECT set_config('search_path', '\"$user\", public', false)"),
        path(&["$user", "public"])
    );
    assert_eq!(
        effect("SELECT set_config('search_path', 'hr', true)"),
        Some(SessionEffect::SetLocalSearchPath(vec!["hr".into()]))
    );
    // plain EXPLAIN does not run the statement; EXPLAIN ANALYZE does
    assert_eq!(
        effect("EXPLAIN SELECT set_config('search_path', 'hr', false)"),
        None
    );
    assert_eq!(
        effect("EXPLAIN ANALYZE SELECT set_config('search_path', 'hr', false)"),
        path(&["hr"])
    );
    assert_eq!(
        effect("EXECUTE p(1)"),
        Some(SessionEffect::ExecutePrepared { name: "p".into() })
    );
    assert_eq!(
        effect("EXPLAIN EXECUTE p"),
        Some(SessionEffect::ExecutePrepared { name: "p".into() })
    );
    assert_eq!(
        effect("DEALLOCATE PREPARE p"),
        Some(SessionEffect::Deallocate {
            name: Some("p".into())
        })
    );
    assert_eq!(
        effect("DEALLOCATE ALL"),
        Some(SessionEffect::Deallocate { name: None })
    );
    assert_eq!(
        effect("DECLARE c CURSOR FOR SELECT 1"),
        Some(SessionEffect::DeclareCursor { name: "c".into() })
    );
    assert_eq!(
        effect("CLOSE c"),
        Some(SessionEffect::CloseCursor {
            name: Some("c".into())
        })
    );
    assert_eq!(
        effect("CLOSE ALL"),
        Some(SessionEffect::CloseCursor { name: None })
    );
    assert_eq!(
        effect("LISTEN \"Chan\""),
        Some(SessionEffect::Listen("Chan".into()))
    );
    assert_eq!(
        effect("UNLISTEN chan"),
        Some(SessionEffect::Unlisten(Some("chan".into())))
    );
    assert_eq!(effect("UNLISTEN *"), Some(SessionEffect::Unlisten(None)));

    let prepared = one("PREPARE p (int) AS DELETE FROM t WHERE id = $1");
    match prepared.effect {
        Some(SessionEffect::Prepare { name, statement }) => {
            assert_eq!(name, "p");
            assert_eq!(statement.kind, StatementKind::Delete);
            assert_eq!(components(&statement), ["t:delete", "t:read"]);
            assert_eq!(statement.param_refs, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn multi_statement_texts() {
    let sql = "SELECT 1;  INSERT INTO t VALUES (1) ;\n-- trailing\nDELETE FROM u";
    let a = analyze_uncached(sql).unwrap();
    let kinds: Vec<_> = a.statements.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["SELECT", "INSERT", "DELETE"]);
    let texts: Vec<_> = a.statements.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        ["SELECT 1", "INSERT INTO t VALUES (1)", "DELETE FROM u"]
    );
    for s in &a.statements {
        assert!(sql[s.location..].starts_with(&s.text));
    }
    assert_eq!(components(&a.statements[2]), ["u:delete"]);

    for empty in ["", "   ", "-- just a comment", "/* c */ ;", ";;"] {
        assert!(
            analyze_uncached(empty).unwrap().statements.is_empty(),
            "{empty:?}"
        );
    }
}

#[test]
fn param_refs_are_counted() {
    assert_eq!(one("SELECT $1, $3").param_refs, 3);
    assert_eq!(one("SELECT 1").param_refs, 0);
    assert_eq!(
        one("INSERT INTO t VALUES ($2) ON CONFLICT DO NOTHING").param_refs,
        2
    );
    assert_eq!(
        one("UPDATE t SET a = $1 WHERE b IN (SELECT c FROM u WHERE d = $7)").param_refs,
        7
    );
}

#[test]
fn formerly_unsupported_statements_are_analysed() {
    for sql in [
        "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM u",
        "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw",
        "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
        "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
        "SECURITY LABEL ON TABLE t IS 'x'",
        "REASSIGN OWNED BY a TO b",
    ] {
        // Each is DDL with named objects now (issue 17); `ddl_kinds.rs` lists their components.
        let s = one(sql);
        assert!(!s.is_opaque(), "{sql}: {s:?}");
        assert!(!s.objects.is_empty(), "{sql}: {s:?}");
        assert!(s.kind.as_str().contains(' '), "{sql}: {}", s.kind);
    }
}

#[test]
fn parse_errors_are_errors() {
    match analyze_uncached("SELECT * FORM t") {
        Err(portcullis_sql::AnalysisError::Parse { message, position }) => {
            assert!(message.contains("syntax error"));
            assert_eq!(position, Some(10));
        }
        other => panic!("{other:?}"),
    }
    assert!(analyze_uncached("SELECT 1; SELEC 2").is_err());
    assert!(analyze_uncached("SELECT 'unterminated").is_err());
}

#[test]
fn analyzer_caches_and_limits() {
    let analyzer = Analyzer::new(128);
    let a = analyzer.analyze("SELECT * FROM t").unwrap();
    let b = analyzer.analyze("SELECT * FROM t").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let c = analyzer.analyze("SELECT * FROM  t").unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    let small = Analyzer::new(4).with_max_query_bytes(10);
    assert_eq!(
        small.analyze("SELECT * FROM t").unwrap_err(),
        portcullis_sql::AnalysisError::TooLarge
    );
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep_concat = format!("SELECT {}", vec!["a"; 5000].join(" || "));
    let deep_parens = format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000));
    let deep_sub = format!(
        "SELECT * FROM {}t{}",
        "(SELECT * FROM ".repeat(300),
        ") x".repeat(300)
    );
    let many_unions = vec!["SELECT 1"; 2000].join(" UNION ALL ");
    let inputs = [
        "\0".to_string(),
        "SELECT '\u{0}'".to_string(),
        "SELECT 'ü', \"日本\" FROM \"表\"".to_string(),
        deep_concat,
        deep_parens,
        deep_sub,
        many_unions,
        "SELECT $99999999".to_string(),
        ";".repeat(10_000),
    ];
    for sql in &inputs {
        let _ = analyze_uncached(sql);
    }
    // Nesting beyond the decoder's limit (~100 protobuf levels) fails closed with an error.
    let unions = vec!["SELECT 1"; 200].join(" UNION ALL ");
    assert_eq!(
        analyze_uncached(&unions).unwrap_err(),
        portcullis_sql::AnalysisError::TooDeep
    );
    let s = one("SELECT $99999999");
    assert_eq!(s.param_refs, u16::MAX);
    assert_eq!(components(&one("SELECT 'ü' FROM \"表\"")), ["\"表\":read"]);
}

/// What psql, JDBC, psycopg, asyncpg and node-pg send around connecting; none may be opaque.
#[test]
fn driver_queries_are_analysed() {
    let queries = [
        // psql \d
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;",
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;",
        "SELECT n.nspname as \"Schema\", c.relname as \"Name\", CASE c.relkind WHEN 'r' THEN 'table' END as \"Type\", pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;",
        // JDBC
        "SET extra_float_digits = 3",
        "SET application_name = 'PostgreSQL JDBC Driver'",
        "select current_schema()",
        "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp ON sp.nspoid = typnamespace WHERE pg_type.oid = $1 ORDER BY sp.r, pg_type.oid DESC",
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        "SHOW TRANSACTION ISOLATION LEVEL",
        // psycopg / SQLAlchemy
        "SHOW standard_conforming_strings",
        "select pg_catalog.version()",
        "SELECT CAST('test plain returns' AS VARCHAR(60)) AS anon_1",
        "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = $1 AND pg_catalog.pg_class.relkind = ANY (ARRAY[$2, $3]) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != $4",
        // asyncpg introspection (abridged)
        "WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype, attrtypoids, attrnames, depth) AS (SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim, ti.range_subtype, ti.attrtypoids, ti.attrnames, 0 FROM (SELECT t.oid, ns.nspname AS ns, t.typname AS name, t.typtype AS kind FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace)) AS ti WHERE ti.oid = any($1::oid[]) UNION ALL SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim, ti.range_subtype, ti.attrtypoids, ti.attrnames, tt.depth + 1 FROM pg_catalog.pg_type ti, typeinfo_tree tt WHERE (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)) SELECT DISTINCT *, basetype::regtype::text AS basetype_name FROM typeinfo_tree ORDER BY depth DESC",
        "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;",
        // node-pg / pg_dump / pgAdmin
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "SET client_encoding = 'UTF8'",
        "DISCARD ALL",
        "SELECT oid, typname FROM pg_type WHERE typname = ANY($1)",
    ];
    for sql in queries {
        let a = analyze_uncached(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(
            a.opaque_reason().is_none(),
            "{sql}: {:?}",
            a.opaque_reason()
        );
    }
    let cte = one(queries[13]);
    assert!(cte.objects.iter().all(|o| o.object.name != "typeinfo_tree"));
    assert!(components(&cte).contains(&"pg_catalog.pg_type:read".to_string()));
}

#[test]
fn serialises_to_json() {
    let s = one("INSERT INTO hr.t (a) VALUES (1)");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["kind"], "INSERT");
    assert_eq!(json["objects"][0]["operation"], "insert");
    assert_eq!(json["objects"][0]["kind"], "relation");
    assert_eq!(json["objects"][0]["object"]["schema"], "hr");
}

/// Statements that differ only in constants share one parse; anything whose analysis could depend on a
/// constant is parsed every time.
#[test]
fn constants_share_an_analysis_only_where_they_cannot_change_it() {
    let analyzer = portcullis_sql::Analyzer::new(100);
    let first = analyzer
        .analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 17;")
        .unwrap();
    let second = analyzer
        .analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 4242")
        .unwrap();
    assert_eq!(analyzer.parse_count(), 1);
    assert_eq!(
        second.statements[0].text,
        "SELECT abalance FROM pgbench_accounts WHERE aid = 4242"
    );
    assert_eq!(first.statements[0].objects, second.statements[0].objects);

    // set_config's arguments decide whether a statement is allowed at all: never shared.
    let benign = analyzer
        .analyze("SELECT set_config('application_name', 'x', false)")
        .unwrap();
    assert!(benign.statements[0].opaque.is_none());
    let role = analyzer
        .analyze("SELECT set_config('role', 'postgres', false)")
        .unwrap();
    assert!(role.statements[0].opaque.is_some(), "{role:?}");
    // Nor SET, whose value is an effect.
    analyzer.analyze("SET search_path = 'a'").unwrap();
    let other = analyzer.analyze("SET search_path = 'b'").unwrap();
    assert!(format!("{:?}", other.statements[0].effect).contains("\"b\""));
}

/// Default deny covers what touches no table: server-wide statements, settings, channels and row locks
/// are components a grant must cover, and a kind with nothing to grant is refused.
#[test]
fn server_settings_channels_and_row_locks_are_components() {
    check(&[
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            "ALTER SYSTEM",
            &["set:work_mem:alter-system"],
            false,
        ),
        (
            "ALTER SYSTEM RESET ALL",
            "ALTER SYSTEM",
            &["set:\"all\":alter-system"],
            false,
        ),
        ("CHECKPOINT", "CHECKPOINT", &["srv:checkpoint:admin"], false),
        ("LOAD 'auto_explain'", "LOAD", &["srv:load:admin"], false),
        (
            "NOTIFY app_events, 'purge-all'",
            "NOTIFY",
            &["ch:app_events:notify"],
            false,
        ),
        (
            "LISTEN app_events",
            "LISTEN",
            &["ch:app_events:listen"],
            false,
        ),
        ("UNLISTEN *", "UNLISTEN", &[], false),
        (
            "PREPARE TRANSACTION 'x'",
            "PREPARE TRANSACTION",
            &["srv:prepared_transactions:admin"],
            false,
        ),
        (
            "COMMIT PREPARED 'x'",
            "COMMIT PREPARED",
            &["srv:prepared_transactions:admin"],
            false,
        ),
        ("VACUUM", "VACUUM", &["srv:all_tables:maintain"], false),
        ("ANALYZE", "ANALYZE", &["srv:all_tables:maintain"], false),
        (
            "VACUUM hr.employees",
            "VACUUM",
            &["hr.employees:maintain"],
            false,
        ),
        ("CLUSTER", "CLUSTER", &["srv:all_tables:maintain"], false),
        (
            "SET session_replication_role = replica",
            "SET",
            &["set:session_replication_role:set"],
            false,
        ),
        (
            "SET log_statement TO 'none'",
            "SET",
            &["set:log_statement:set"],
            false,
        ),
        (
            "SET LOCAL log_min_duration_statement = -1",
            "SET",
            &["set:log_min_duration_statement:set"],
            false,
        ),
        (
            "SET app.tenant = '7'",
            "SET",
            &["set:app.tenant:set"],
            false,
        ),
        ("RESET log_statement", "RESET", &[], false),
        ("SET work_mem = '64MB'", "SET", &[], false),
        ("SET TIME ZONE 'UTC'", "SET", &[], false),
        (
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET",
            &[],
            false,
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET",
            &[],
            false,
        ),
        ("SET NAMES 'UTF8'", "SET", &[], false),
        ("SET ROLE postgres", "SET", &[], true),
        (
            "SELECT set_config('log_statement', 'none', false)",
            "SELECT",
            &["f:set_config:execute", "set:log_statement:set"],
            false,
        ),
        (
            "SELECT set_config('work_mem', '1MB', false)",
            "SELECT",
            &["f:set_config:execute"],
            false,
        ),
        (
            "SELECT * FROM hr.departments WHERE id = 1 FOR UPDATE",
            "SELECT",
            &["hr.departments:read", "hr.departments:update"],
            false,
        ),
        (
            "SELECT * FROM hr.departments d FOR SHARE",
            "SELECT",
            &["hr.departments:read", "hr.departments:update"],
            false,
        ),
        (
            "SELECT * FROM hr.a x JOIN hr.b y ON x.id = y.id FOR NO KEY UPDATE OF y",
            "SELECT",
            &["hr.a:read", "hr.b:read", "hr.b:update"],
            false,
        ),
        (
            "SELECT * FROM hr.a x, (SELECT * FROM hr.b) s FOR KEY SHARE OF s",
            "SELECT",
            &["hr.a:read", "hr.b:read", "hr.a:update", "hr.b:update"],
            false,
        ),
        (
            "SELECT * FROM hr.a WHERE id IN (SELECT id FROM hr.b FOR UPDATE)",
            "SELECT",
            &["hr.a:read", "hr.b:read", "hr.b:update"],
            false,
        ),
        (
            "SELECT query_to_xml('select 1', true, true, '')",
            "SELECT",
            &["f:query_to_xml:execute"],
            true,
        ),
    ]);
}

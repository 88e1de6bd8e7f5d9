//! DDL the analyser used to refuse as "not supported" (issue 17) is decided by grants like any other:
//! `CREATE STATISTICS`, `CREATE RULE`, `CREATE TYPE … AS RANGE`, `ALTER PUBLICATION`, `DROP CAST` and
//! `GRANT … ON LARGE OBJECT` are refused without a grant that covers them and run with one — each
//! checked on the server, whose gateway login is a superuser. And `policy check` accepts rules naming
//! these kinds, and the parse-node names of what the analyser still refuses.

mod common;

use common::{denial, direct, fresh_database, Gateway, ALICE_PASSWORD, BOB_PASSWORD};

/// bob may read and insert into `app.*`, nothing more.
const READER: &str = "
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['app.*']
    privileges: [select, insert]
";

/// bob may also create and alter in `app`, alter the publication `pub` and the type `text` (a cast
/// from `app.mood` changes it), and grant on large object 16409.
const DDL: &str = "
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: ['app.*']
    privileges: [select, insert, create, alter]
  - to: {user: bob}
    resource: app
    objects: [pub, pg_catalog.text]
    privileges: [alter]
  - to: {user: bob}
    resource: app
    objects: ['16409']
    privileges: [grant]
";

/// Each statement, what the refusal names, and a query on the server that is true once it ran.
const CASES: &[(&str, &str, &str)] = &[
    (
        "CREATE STATISTICS app.st (dependencies) ON a, b FROM app.t",
        "bob lacks CREATE on app.st",
        "SELECT count(*) = 1 FROM pg_statistic_ext WHERE stxname = 'st'",
    ),
    (
        "CREATE RULE log_ins AS ON INSERT TO app.t DO ALSO INSERT INTO app.log VALUES (new.a)",
        "bob lacks ALTER on app.t",
        "SELECT count(*) = 1 FROM pg_rules WHERE rulename = 'log_ins'",
    ),
    (
        "CREATE TYPE app.r AS RANGE (subtype = int4)",
        "bob lacks CREATE on app.r",
        "SELECT count(*) = 1 FROM pg_type WHERE typname = 'r'",
    ),
    (
        "ALTER PUBLICATION pub ADD TABLE app.t",
        "bob lacks ALTER on publication pub",
        "SELECT count(*) = 1 FROM pg_publication_tables WHERE pubname = 'pub' AND tablename = 't'",
    ),
    (
        "DROP CAST (app.mood AS pg_catalog.text)",
        "bob lacks ALTER on app.mood",
        "SELECT count(*) = 0 FROM pg_cast WHERE castsource = 'app.mood'::regtype",
    ),
    (
        "GRANT SELECT ON LARGE OBJECT 16409 TO PUBLIC",
        "bob lacks GRANT on large object 16409",
        "SELECT lomacl IS NOT NULL FROM pg_largeobject_metadata WHERE oid = 16409",
    ),
];

async fn holds(up: &tokio_postgres::Client, check: &str) -> bool {
    up.query_one(check, &[])
        .await
        .unwrap_or_else(|e| panic!("{check}: {e}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn ddl_kinds_need_a_grant_and_run_with_one() {
    let db = "ddl_kinds";
    let pg = fresh_database(db);
    let gw = Gateway::start_with_policy(pg, db, "", Some(READER));
    gw.use_superuser_credential();
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA app;
             CREATE TABLE app.t(a int, b int);
             CREATE TABLE app.log(a int);
             CREATE TYPE app.mood AS ENUM ('ok', 'bad');
             CREATE CAST (app.mood AS text) WITH INOUT;
             CREATE PUBLICATION pub;
             SELECT lo_create(16409);",
        )
        .await
        .expect("fixtures");
    let up = direct(pg, db).await;

    let bob = gw.connect("bob", BOB_PASSWORD).await;
    for (sql, reason, effect) in CASES {
        let (code, message) = denial(bob.simple_query(sql).await);
        assert_eq!(code, "42501", "{sql}: {message}");
        assert!(message.contains(reason), "{sql}: {message}");
        assert!(!holds(&up, effect).await, "{sql} ran although refused");
    }
    drop(bob);

    gw.apply_policy_live(DDL);
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    for (sql, _, effect) in CASES {
        bob.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(holds(&up, effect).await, "{sql} had no effect");
    }
    // The rule's action is bob's insert into app.log, which the grant covers; it runs on the server.
    bob.batch_execute("INSERT INTO app.t VALUES (7, 8)")
        .await
        .expect("insert through the rule");
    assert!(holds(&up, "SELECT count(*) = 1 FROM app.log WHERE a = 7").await);
}

#[test]
fn policy_check_accepts_rules_naming_ddl_and_unanalysed_kinds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "rules:
  - id: ddl
    when: {statement_kinds: [CREATE STATISTICS, CREATE RULE, ALTER PUBLICATION, CREATE TYPE, SECURITY LABEL, IMPORT FOREIGN SCHEMA]}
    action: audit
  - id: refused-kinds
    when: {users: [dba], statement_kinds: [ReturnStmt, PlassignStmt, DO]}
    action: allow
",
    )
    .expect("write policy");
    let out = std::process::Command::new(common::binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["policy", "check", "-f", &path.to_string_lossy()])
        .output()
        .expect("run policy check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

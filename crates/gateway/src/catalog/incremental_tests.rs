//! Incremental catalog reads against a real PostgreSQL: after each change made straight on the server,
//! the resource's next read must take the incremental path and hold exactly what a full read of the
//! same catalog holds — a change the incremental read missed shows up as a difference (and in the
//! assertion that names what the step changed).

use std::collections::BTreeSet;
use std::time::Duration;

use portcullis_sql::{Catalog, Operation, QualifiedName};
use portcullis_store::{Resource, ResourceInfo, Secret, TlsMode};
use portcullis_testkit::{PgServer, APP_PASSWORD, APP_USER};

use super::{CatalogCache, CatalogHandle, CatalogSnapshot, Changed, Need};

fn resource(pg: &PgServer, db: &str) -> Resource {
    Resource {
        info: ResourceInfo {
            name: db.to_owned(),
            host: pg.host().to_owned(),
            port: pg.port(),
            database: db.to_owned(),
            tls: TlsMode::Disable,
            created_at: 0,
            updated_at: 0,
        },
        username: APP_USER.to_owned(),
        password: Secret::new(APP_PASSWORD),
    }
}

fn name(schema: &str, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.to_owned(),
        name: name.to_owned(),
    }
}

/// Everything a snapshot holds that decisions read, one sorted line per fact.
fn summary(s: &CatalogSnapshot) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    lines.extend(s.schemas.iter().map(|n| format!("schema {n}")));
    for (schema, names) in &s.relations {
        lines.extend(names.iter().map(|n| format!("relation {schema}.{n}")));
    }
    lines.extend(
        s.relation_oids
            .iter()
            .map(|(n, oid)| format!("oid {n} {oid}")),
    );
    lines.extend(
        s.names_by_oid
            .iter()
            .map(|(oid, n)| format!("named {oid} {n}")),
    );
    for (schema, names) in &s.functions {
        lines.extend(names.iter().map(|n| format!("function {schema}.{n}")));
    }
    lines.extend(s.columns.iter().map(|(r, c)| format!("columns {r} {c:?}")));
    lines.extend(
        s.last_column
            .iter()
            .map(|(oid, n)| format!("last {oid} {n}")),
    );
    let sorted = |v: &Vec<QualifiedName>| {
        let mut v: Vec<String> = v.iter().map(ToString::to_string).collect();
        v.sort();
        v
    };
    lines.extend(
        s.parents
            .iter()
            .map(|(r, p)| format!("parents {r} {:?}", sorted(p))),
    );
    lines.extend(
        s.view_reads
            .iter()
            .map(|(r, p)| format!("reads {r} {:?}", sorted(p))),
    );
    lines.extend(
        s.view_calls
            .iter()
            .map(|(r, p)| format!("calls {r} {:?}", sorted(p))),
    );
    lines.extend(s.materialized.iter().map(|r| format!("matview {r}")));
    for (name, schemas) in &s.operators {
        let mut schemas = schemas.clone();
        schemas.sort();
        lines.insert(format!("operator {name} {schemas:?}"));
    }
    lines.extend(s.views.iter().map(|(v, d)| {
        format!(
            "view {v} {:?} {} {:?}",
            d.sql,
            d.security_barrier,
            d.path.entries()
        )
    }));
    for (r, fires) in &s.fires {
        let mut fires = fires.clone();
        fires.sort();
        lines.insert(format!("fires {r} {fires:?}"));
    }
    for (t, risky) in &s.risky_types {
        let mut risky = risky.clone();
        risky.sort();
        lines.insert(format!("type {t} {risky:?}"));
    }
    let mut events = s.event_triggers.clone();
    events.sort();
    lines.extend(events.into_iter().map(|e| format!("event {e}")));
    lines.insert(format!("complete {}", s.complete));
    lines
}

/// Reads the catalog in full on a cache of its own.
async fn full_read(resource: &Resource) -> std::sync::Arc<CatalogSnapshot> {
    let cache = CatalogCache::new(Duration::from_secs(3600), Duration::from_secs(60));
    cache
        .handle("full")
        .snapshot(resource, Need::default())
        .await
        .expect("full read")
}

struct Reader {
    handle: CatalogHandle,
    resource: Resource,
    pg: &'static PgServer,
    db: String,
    changes: u64,
}

impl Reader {
    /// Runs `sql` straight on the server, tells the handle the catalog changed (as the fingerprint check
    /// would), and reads it again; the read must be incremental (or, with `full`, must not be) and hold
    /// what a full read holds.
    async fn after(
        &mut self,
        step: &str,
        sql: &str,
        full: bool,
    ) -> std::sync::Arc<CatalogSnapshot> {
        self.pg.psql(&self.db, sql).expect(step);
        self.handle.changed(Changed::Unknown);
        self.changes += 1;
        let need = Need {
            generation: self.changes,
            since: None,
        };
        let read = self
            .handle
            .snapshot(&self.resource, need)
            .await
            .expect(step);
        assert_eq!(
            read.is_incremental(),
            !full,
            "{step}: the read was {}",
            if full { "incremental" } else { "a full one" }
        );
        let reference = full_read(&self.resource).await;
        let (mine, theirs) = (summary(&read), summary(&reference));
        let missing: Vec<_> = theirs.difference(&mine).collect();
        let extra: Vec<_> = mine.difference(&theirs).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{step}: the incremental read differs from a full one\nmissing: {missing:#?}\nextra: {extra:#?}"
        );
        read
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_reads_see_every_change_a_full_read_sees() {
    let pg = PgServer::shared();
    let db = "catalog_incremental";
    pg.create_database(db).expect("create database");
    pg.psql(
        db,
        "CREATE SCHEMA app;
         CREATE TABLE app.people(id int PRIMARY KEY, ssn text);
         CREATE TABLE app.scratch(x int);
         CREATE TABLE app.notes(id int, body text);
         CREATE FUNCTION app.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
         CREATE VIEW app.v AS SELECT id, ssn FROM app.people;
         CREATE VIEW app.vv AS SELECT id FROM app.v;",
    )
    .expect("setup");
    let resource = resource(pg, db);
    let cache = CatalogCache::new(Duration::from_secs(3600), Duration::from_secs(60));
    let handle = cache.handle(db);
    let first = handle
        .snapshot(&resource, Need::default())
        .await
        .expect("first read");
    assert!(!first.is_incremental());
    assert!(first.digest().is_some(), "PostgreSQL 13+ gives a digest");
    let mut r = Reader {
        handle,
        resource,
        pg,
        db: db.to_owned(),
        changes: 0,
    };
    let people = name("app", "people");

    // A column added elsewhere: seen, numbered, so a result column carrying it is known.
    let s = r
        .after(
            "add a column",
            "ALTER TABLE app.people ADD COLUMN ss_backup text",
            false,
        )
        .await;
    assert_eq!(
        s.columns(&people).unwrap_or_default(),
        ["id", "ssn", "ss_backup"]
    );
    let oid = s.relation_oids[&people];
    assert_eq!(s.last_column(oid), 3);

    // A column renamed: pg_attribute alone changes; the view printing it is read again too.
    let s = r
        .after(
            "rename a column",
            "ALTER TABLE app.people RENAME COLUMN ssn TO ss_number",
            false,
        )
        .await;
    assert_eq!(
        s.columns(&people).unwrap_or_default(),
        ["id", "ss_number", "ss_backup"]
    );
    let v = s.view_definition(&name("app", "v")).expect("definition");
    assert!(v.sql.contains("ss_number"), "{}", v.sql);

    // A relation renamed: the old name disappears, views reading it name the new one.
    let s = r
        .after(
            "rename a table",
            "ALTER TABLE app.people RENAME TO persons",
            false,
        )
        .await;
    let persons = name("app", "persons");
    assert!(s.knows(&persons) && !s.knows(&people));
    assert!(s.related(&name("app", "vv")).contains(&&persons));

    // A relation dropped disappears.
    let s = r
        .after("drop a table", "DROP TABLE app.scratch", false)
        .await;
    assert!(!s.knows(&name("app", "scratch")));

    // Functions created and dropped.
    let s = r
        .after(
            "create a function",
            "CREATE FUNCTION app.g() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            false,
        )
        .await;
    assert!(s.has_function("app", "g"));
    let s = r
        .after("drop a function", "DROP FUNCTION app.g()", false)
        .await;
    assert!(!s.has_function("app", "g"));

    // A view over the masked table, then its definition altered to call a function.
    let s = r
        .after(
            "create a view over a masked table",
            "CREATE VIEW app.pv AS SELECT ss_number FROM app.persons",
            false,
        )
        .await;
    let pv = name("app", "pv");
    assert!(s.related(&pv).contains(&&persons));
    assert!(s.view_definition(&pv).is_some());
    let s = r
        .after(
            "alter a view's definition",
            "CREATE OR REPLACE VIEW app.pv AS SELECT ss_number, app.f(id) AS n FROM app.persons",
            false,
        )
        .await;
    assert_eq!(s.view_calls(&pv), [name("app", "f")]);
    assert!(s.view_definition(&pv).is_some_and(|d| d.sql.contains("f(")));

    // A function a view calls renamed: the view's rows name it.
    let s = r
        .after(
            "rename a function a view calls",
            "ALTER FUNCTION app.f(int) RENAME TO f2",
            false,
        )
        .await;
    assert_eq!(s.view_calls(&pv), [name("app", "f2")]);

    // A trigger calling an untrusted function, on a child: it runs for the parent's writes too.
    let s = r
        .after(
            "add a trigger calling an untrusted function",
            "CREATE FUNCTION app.spy() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
             CREATE TABLE app.kid() INHERITS (app.persons);
             CREATE TRIGGER spy BEFORE INSERT ON app.kid FOR EACH ROW EXECUTE FUNCTION app.spy()",
            false,
        )
        .await;
    assert!(s
        .runs_untrusted_code(&name("app", "kid"), Operation::Insert)
        .is_some());
    assert!(s.runs_untrusted_code(&persons, Operation::Insert).is_some());

    // Dropped rows leave no xmin: the trigger and the inheritance are found gone by count.
    let s = r
        .after("drop the trigger", "DROP TRIGGER spy ON app.kid", false)
        .await;
    assert!(s
        .runs_untrusted_code(&name("app", "kid"), Operation::Insert)
        .is_none());
    pg.psql(
        db,
        "CREATE TRIGGER spy BEFORE INSERT ON app.kid FOR EACH ROW EXECUTE FUNCTION app.spy()",
    )
    .expect("trigger again");
    let s = r
        .after(
            "end the inheritance",
            "ALTER TABLE app.kid NO INHERIT app.persons",
            false,
        )
        .await;
    assert!(s.ancestors(&name("app", "kid")).is_empty());
    assert!(s.runs_untrusted_code(&persons, Operation::Insert).is_none());

    // A schema renamed changes every name in it: read in full, then incremental again.
    let s = r
        .after("rename a schema", "ALTER SCHEMA app RENAME TO crm", true)
        .await;
    assert!(s.knows(&name("crm", "persons")) && !s.knows(&persons));
    let s = r
        .after(
            "add a column after a full read",
            "ALTER TABLE crm.notes ADD COLUMN secret text",
            false,
        )
        .await;
    assert_eq!(
        s.columns(&name("crm", "notes")).unwrap_or_default(),
        ["id", "body", "secret"]
    );
    // A domain whose CHECK calls an untrusted function: types change what every column runs.
    r.after(
        "create a risky domain",
        "CREATE FUNCTION crm.ok(text) RETURNS bool LANGUAGE sql AS 'SELECT true';
         CREATE DOMAIN crm.checked AS text CHECK (crm.ok(VALUE))",
        true,
    )
    .await;
    let s = r
        .after(
            "a column of the risky type",
            "ALTER TABLE crm.notes ADD COLUMN c crm.checked",
            false,
        )
        .await;
    assert!(s
        .runs_untrusted_code(&name("crm", "notes"), Operation::Insert)
        .is_some());
}

//! Runs rewritten statements on a real PostgreSQL and checks what comes back. Needs a server the test can
//! reach with `psql`: set `PORTCULLIS_MASK_PG` to psql connection options (e.g. `-h /tmp/sock -p 5432 -U
//! postgres`); without it the test only says it was skipped (the end-to-end suite covers the gateway).

use std::collections::HashMap;
use std::process::Command;

use portcullis_sql::mask::{
    rewrite, ColumnMask, MaskKind, Protections, RelationProtection, RowFilter,
};
use portcullis_sql::{MemoryCatalog, QualifiedName, SearchPath};

struct Fixture(HashMap<QualifiedName, (RelationProtection, Vec<String>)>);

impl Protections for Fixture {
    fn protection(&self, relation: &QualifiedName) -> Option<&RelationProtection> {
        self.0.get(relation).map(|(p, _)| p)
    }
    fn columns(&self, relation: &QualifiedName) -> Option<&[String]> {
        self.0.get(relation).map(|(_, c)| c.as_slice())
    }
}

fn psql(options: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(options.split_whitespace())
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGOPTIONS", "-c search_path=mt")
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn mask(column: &str, mask: MaskKind) -> ColumnMask {
    ColumnMask {
        column: column.into(),
        mask,
        rule: format!("r-{column}"),
    }
}

#[test]
fn masks_on_postgres() {
    let Ok(options) = std::env::var("PORTCULLIS_MASK_PG") else {
        eprintln!("skipped: PORTCULLIS_MASK_PG not set");
        return;
    };
    psql(
        &options,
        "DROP SCHEMA IF EXISTS mt CASCADE; CREATE SCHEMA mt; \
         CREATE TABLE mt.people (id int, name text, ssn text, email text, salary numeric, card text, note text, \
         region text, code text, secret text); \
         INSERT INTO mt.people VALUES \
         (1, 'Ann', '123-45-6789', 'ann.lee@example.com', 51234.56, '4111', 'x', 'eu', 'AB12', 's1'), \
         (2, 'Bob', '12', 'no-at-sign', 999.5, '4111', NULL, 'us', NULL, 's2'), \
         (3, 'Cy', NULL, '\"a@b\"@corp.org', NULL, NULL, 'y', 'eu', 'ZZ99', NULL);",
    );
    let people = QualifiedName {
        schema: "mt".into(),
        name: "people".into(),
    };
    let columns = [
        "id", "name", "ssn", "email", "salary", "card", "note", "region", "code", "secret",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    let protection = RelationProtection {
        masks: vec![
            mask(
                "ssn",
                MaskKind::Partial {
                    keep_first: 0,
                    keep_last: 4,
                },
            ),
            mask("email", MaskKind::Email),
            mask("salary", MaskKind::Round { digits: -3 }),
            mask(
                "card",
                MaskKind::Hash {
                    salt: "pepper".into(),
                },
            ),
            mask(
                "note",
                MaskKind::Constant {
                    value: "hidden".into(),
                },
            ),
            mask("name", MaskKind::Full),
            mask(
                "code",
                MaskKind::Regex {
                    pattern: "[0-9]".into(),
                    replacement: "#".into(),
                },
            ),
            mask("secret", MaskKind::Null),
        ],
        row_filters: vec![RowFilter {
            predicate: "region = $1".into(),
            values: vec![Some("eu".into())],
            rule: "eu".into(),
        }],
        denied_columns: vec![],
    };
    let fixture = Fixture(HashMap::from([(people, (protection, columns))]));
    let catalog = MemoryCatalog::new().with_relation("mt", "people");
    let path = SearchPath::from_setting("mt");
    let run = |sql: &str| {
        let r = rewrite(sql, &path, "postgres", &catalog, &fixture).expect("rewrites");
        psql(&options, r.sql.as_deref().unwrap_or(sql))
    };
    assert_eq!(
        run("SELECT id, name, ssn, email, salary, note, code, secret FROM people ORDER BY id"),
        "1|XXX|XXXXXXX6789|a***@example.com|51000|hidden|AB##|\n3|XX||\"***@corp.org||hidden|ZZ##|"
    );
    // equal values hash equally, and the hash is sha256(salt || value)
    assert_eq!(
        run("SELECT card = encode(sha256(convert_to('pepper4111', 'UTF8')), 'hex') FROM people WHERE id = 1"),
        "t"
    );
    // predicates compare masked values; filtered rows are not there to compare
    assert_eq!(
        run("SELECT count(*) FROM people WHERE ssn LIKE '%6789'"),
        "1"
    );
    assert_eq!(
        run("SELECT count(*) FROM people WHERE ssn = '123-45-6789'"),
        "0"
    );
    assert_eq!(
        run("SELECT count(*) FROM people p WHERE p.region = 'us'"),
        "0"
    );
    // whole-row references see the projection
    assert_eq!(
        run("SELECT row_to_json(p)->>'ssn' FROM people p WHERE id = 1"),
        "XXXXXXX6789"
    );
    // a failing cast shows the masked value only
    let r = rewrite(
        "SELECT ssn::int FROM people",
        &path,
        "postgres",
        &catalog,
        &fixture,
    )
    .expect("rewrites");
    let out = Command::new("psql")
        .args(options.split_whitespace())
        .args(["-X", "-q", "-c", r.sql.as_deref().unwrap_or_default()])
        .env("PGOPTIONS", "-c search_path=mt")
        .output()
        .expect("psql runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("XXXXXXX6789") && !stderr.contains("123-45"),
        "{stderr}"
    );
    // writes: the target's masked columns are masked in RETURNING, filtered rows are not touched
    assert_eq!(
        run("UPDATE people SET salary = salary WHERE id IN (1, 2) RETURNING id, ssn"),
        "1|XXXXXXX6789"
    );
    assert_eq!(run("DELETE FROM people WHERE id = 2 RETURNING id"), "");
    psql(&options, "DROP SCHEMA mt CASCADE");
}

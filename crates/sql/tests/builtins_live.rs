//! The classification of built-in functions, catalog relations and settings against a live PostgreSQL's
//! own catalog: a built-in nobody classified fails here, so it is looked at before it can be used (until
//! then the gateway treats it as privileged).

use std::collections::BTreeSet;

use portcullis_sql::builtins::{classified_functions, classified_relations};
use portcullis_sql::{setting_class, SettingClass};
use portcullis_testkit::{PgServer, APP_DB};

fn rows(sql: &str) -> Vec<(String, String)> {
    PgServer::shared()
        .psql(APP_DB, sql)
        .expect("query the catalog")
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

fn unclassified(live: Vec<(String, String)>, known: BTreeSet<(&str, &str)>) -> Vec<String> {
    live.iter()
        .filter(|(s, n)| !known.contains(&(s.as_str(), n.as_str())))
        .map(|(s, n)| format!("{s}.{n}"))
        .collect()
}

#[test]
fn builtins_are_classified() {
    let functions = rows(
        "SELECT DISTINCT n.nspname, p.proname FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname IN ('pg_catalog', 'information_schema')",
    );
    assert!(functions.len() > 1000, "the catalog query found too little");
    let missing = unclassified(functions, classified_functions().collect());
    assert!(
        missing.is_empty(),
        "built-in functions nobody classified (run crates/sql/src/builtins/generate.py and review): {missing:?}"
    );
    let relations = rows(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
    );
    let missing = unclassified(relations, classified_relations().collect());
    assert!(
        missing.is_empty(),
        "catalog relations nobody classified (run crates/sql/src/builtins/generate.py and review): {missing:?}"
    );
}

#[test]
fn settings_any_role_may_change_are_the_ordinary_ones() {
    let mut wrong = Vec::new();
    for (name, context) in rows("SELECT name, context FROM pg_catalog.pg_settings") {
        let ordinary = context == "user" && name != "local_preload_libraries";
        let class = setting_class(&name);
        if ordinary != (class == SettingClass::Ordinary) {
            wrong.push(format!("{name} ({context}): {class:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "settings classified against their context: {wrong:?}"
    );
}

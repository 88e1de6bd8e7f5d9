//! The large policy the engine's test and benchmark share: 1,001 grants and 10,000 rules of five shapes.
//! Included by path from both (a bench cannot see the crate's test code).

use std::fmt::Write;

/// The large policy of the engine's tests: 1,001 grants and 10,000 rules of five shapes.
pub fn rules_and_grants() -> String {
    let mut yaml = String::from("grants:\n");
    for g in 0..1000 {
        let _ = write!(
            yaml,
            "  - to: {{{}: p{}}}\n    resource: db{}\n    objects: ['s{}.*', s{}.t{}]\n    privileges: [select, insert, update]\n",
            if g % 2 == 0 { "user" } else { "role" },
            g % 100,
            g % 10,
            g % 50,
            g % 50,
            g
        );
    }
    yaml.push_str(
        "  - to: {role: everyone}\n    resource: '*'\n    objects: ['*']\n    privileges: [select]\n",
    );
    yaml.push_str("rules:\n");
    for r in 0..10_000 {
        let filter = match r % 5 {
            0 => format!("{{objects: [s{}.t{}]}}", r % 50, r % 1000),
            1 => format!(
                "{{objects: ['s{}.*'], operations: [update, delete]}}",
                r % 50
            ),
            2 => format!("{{statement_kinds: [DELETE], users: [p{}]}}", r % 100),
            3 => format!(
                "{{resources: [db{}], objects: [s{}.t{}], rows_above: {}}}",
                r % 10,
                r % 50,
                r % 1000,
                r
            ),
            _ => format!(
                "{{roles: [r{}], objects: [s{}.t{}.c{}]}}",
                r % 20,
                r % 50,
                r % 1000,
                r % 7
            ),
        };
        let _ = write!(
            yaml,
            "  - id: r{r}\n    when: {filter}\n    action: {}\n",
            if r % 3 == 0 { "audit" } else { "alert" }
        );
    }
    yaml
}

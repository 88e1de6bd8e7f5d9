//! PostgreSQL name resolution: search paths and resolving names as written to schema-qualified names.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::analysis::ObjectName;
use crate::kind::ObjectKind;

/// What the analyser needs to know about the database to resolve unqualified names.
pub trait Catalog {
    /// Whether `schema.name` is a relation (table, view, sequence, ...).
    fn has_relation(&self, schema: &str, name: &str) -> bool;
    /// Whether the schema exists.
    fn has_schema(&self, schema: &str) -> bool;
    /// Whether a function or procedure `schema.name` exists (any signature).
    fn has_function(&self, _schema: &str, _name: &str) -> bool {
        false
    }
}

/// A catalog held in memory, for tests and for gateways that snapshot the upstream catalog.
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalog {
    schemas: HashSet<String>,
    relations: HashSet<(String, String)>,
    functions: HashSet<(String, String)>,
}

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a schema.
    pub fn with_schema(mut self, schema: &str) -> Self {
        self.schemas.insert(schema.to_owned());
        self
    }

    /// Adds a relation (and its schema).
    pub fn with_relation(mut self, schema: &str, name: &str) -> Self {
        self.schemas.insert(schema.to_owned());
        self.relations.insert((schema.to_owned(), name.to_owned()));
        self
    }

    /// Adds a function (and its schema).
    pub fn with_function(mut self, schema: &str, name: &str) -> Self {
        self.schemas.insert(schema.to_owned());
        self.functions.insert((schema.to_owned(), name.to_owned()));
        self
    }
}

impl Catalog for MemoryCatalog {
    fn has_relation(&self, schema: &str, name: &str) -> bool {
        self.relations
            .contains(&(schema.to_owned(), name.to_owned()))
    }
    fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }
    fn has_function(&self, schema: &str, name: &str) -> bool {
        self.functions
            .contains(&(schema.to_owned(), name.to_owned()))
    }
}

/// A session's search_path: schema names in order, as PostgreSQL stores them (`$user` kept literally).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SearchPath {
    entries: Vec<String>,
}

impl SearchPath {
    /// The schemas the path lists, in order, with `$user` standing for `session_user`.
    pub fn schemas<'a>(&'a self, session_user: &'a str) -> impl Iterator<Item = &'a str> {
        self.entries.iter().map(move |e| {
            if e == "$user" {
                session_user
            } else {
                e.as_str()
            }
        })
    }

    /// PostgreSQL's default, `"$user", public`.
    pub fn default_path() -> Self {
        Self {
            entries: vec!["$user".into(), "public".into()],
        }
    }

    /// Parses a setting value as `SHOW search_path` prints it or `set_config` accepts it: a comma-separated
    /// list of identifiers, unquoted ones lower-cased, `"quoted"` ones kept (with `""` as an escaped quote).
    /// Malformed pieces are kept as best understood; PostgreSQL would reject such a value anyway.
    pub fn from_setting(value: &str) -> Self {
        let mut entries = Vec::new();
        let mut chars = value.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.peek().is_none() {
                break;
            }
            let mut entry = String::new();
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.next_if_eq(&'"').is_some() {
                            entry.push('"');
                        } else {
                            break;
                        }
                    } else {
                        entry.push(c);
                    }
                }
                while chars.next_if(|c| *c != ',').is_some() {}
            } else {
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    entry.push(c);
                }
                let trimmed = entry.trim_end().to_lowercase();
                entry = trimmed;
            }
            chars.next_if_eq(&',');
            if !entry.is_empty() {
                entries.push(entry);
            }
        }
        Self { entries }
    }

    /// A path from already-parsed entries (e.g. [`crate::SessionEffect::SetSearchPath`]).
    pub fn from_list(entries: Vec<String>) -> Self {
        Self { entries }
    }

    /// The entries in order.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The value in `SHOW search_path` form.
    pub fn to_setting(&self) -> String {
        self.entries
            .iter()
            .map(|e| quote_ident(e))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for SearchPath {
    fn default() -> Self {
        Self::default_path()
    }
}

/// A fully qualified name. For kinds that live outside schemas (schemas, databases, roles) `schema` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct QualifiedName {
    /// The schema.
    pub schema: String,
    /// The object's name.
    pub name: String,
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.schema.is_empty() {
            f.write_str(&quote_ident(&self.schema))?;
            f.write_str(".")?;
        }
        f.write_str(&quote_ident(&self.name))
    }
}

/// Resolves `name` the way PostgreSQL would for this session. Qualified names are returned as written.
/// Unqualified relations are looked up in the effective path: `pg_temp` (unless listed), `pg_catalog`
/// (unless listed), then the path's entries with `$user` standing for `session_user`; functions skip
/// `pg_temp`. A name found nowhere resolves to the schema `CREATE` would use: the first listed schema that
/// exists, else the first listed entry, else `pg_catalog`.
pub fn resolve(
    name: &ObjectName,
    kind: ObjectKind,
    path: &SearchPath,
    session_user: &str,
    catalog: &dyn Catalog,
) -> QualifiedName {
    if let Some(schema) = &name.schema {
        return QualifiedName {
            schema: schema.clone(),
            name: name.name.clone(),
        };
    }
    if !kind.lives_in_schema() {
        return QualifiedName {
            schema: String::new(),
            name: name.name.clone(),
        };
    }
    let is_function = kind == ObjectKind::Function;
    let listed: Vec<&str> = path.schemas(session_user).collect();
    let mut effective: Vec<&str> = Vec::with_capacity(listed.len() + 2);
    if !is_function && !listed.contains(&"pg_temp") {
        effective.push("pg_temp");
    }
    if !listed.contains(&"pg_catalog") {
        effective.push("pg_catalog");
    }
    effective.extend(
        listed
            .iter()
            .copied()
            .filter(|s| !(is_function && *s == "pg_temp")),
    );
    let exists = |schema: &str| {
        if is_function {
            catalog.has_function(schema, &name.name)
        } else {
            catalog.has_relation(schema, &name.name)
        }
    };
    let schema = effective
        .iter()
        .find(|s| exists(s))
        .or_else(|| {
            listed
                .iter()
                .find(|s| **s == "pg_temp" || catalog.has_schema(s))
        })
        .or_else(|| listed.first())
        .copied()
        .unwrap_or("pg_catalog");
    QualifiedName {
        schema: schema.to_owned(),
        name: name.name.clone(),
    }
}

/// Quotes an identifier the way `quote_ident` does when it needs it (not lower-case, not a plain
/// identifier, or a reserved word).
pub fn quote_ident(ident: &str) -> Cow<'_, str> {
    let plain = ident
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
        && ident
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && RESERVED.binary_search(&ident).is_err();
    if plain {
        Cow::Borrowed(ident)
    } else {
        Cow::Owned(format!("\"{}\"", ident.replace('"', "\"\"")))
    }
}

/// PostgreSQL's reserved key words (those that can never be bare identifiers), sorted for binary search.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_sorted_for_binary_search() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
    }

    fn catalog() -> MemoryCatalog {
        MemoryCatalog::new()
            .with_relation("pg_catalog", "pg_class")
            .with_relation("public", "orders")
            .with_relation("alice", "orders")
            .with_relation("hr", "employees")
            .with_relation("HR", "Employees")
            .with_schema("sales")
            .with_relation("pg_temp", "scratch")
            .with_function("pg_catalog", "now")
            .with_function("util", "now")
            .with_function("util", "helper")
    }

    fn r(name: ObjectName, kind: ObjectKind, path: &str) -> String {
        resolve(
            &name,
            kind,
            &SearchPath::from_setting(path),
            "alice",
            &catalog(),
        )
        .to_string()
    }

    #[test]
    fn search_path_parsing() {
        let p = SearchPath::from_setting(r#""$user", public, "My ""Schema""", Sales "#);
        assert_eq!(p.entries(), ["$user", "public", "My \"Schema\"", "sales"]);
        assert_eq!(p.to_setting(), r#""$user", public, "My ""Schema""", sales"#);
        assert_eq!(SearchPath::from_setting("").entries(), [] as [String; 0]);
        assert_eq!(
            SearchPath::from_setting(r#""""#).entries(),
            [] as [String; 0]
        );
        assert_eq!(SearchPath::default_path().entries(), ["$user", "public"]);
    }

    #[test]
    fn resolution_follows_postgres() {
        use ObjectKind::*;
        let u = ObjectName::unqualified;
        // $user first when that schema has the relation
        assert_eq!(
            r(u("orders"), Relation, "\"$user\", public"),
            "alice.orders"
        );
        assert_eq!(
            r(u("orders"), Relation, "public, \"$user\""),
            "public.orders"
        );
        // pg_catalog is searched first implicitly, but where listed when listed
        assert_eq!(r(u("pg_class"), Relation, "public"), "pg_catalog.pg_class");
        // temp relations shadow everything unless pg_temp is listed
        assert_eq!(r(u("scratch"), Relation, "public"), "pg_temp.scratch");
        // not found: the first existing schema (where CREATE would put it)
        assert_eq!(
            r(u("newtab"), Relation, "\"$user\", nosuch, sales, public"),
            "alice.newtab"
        );
        let bob = resolve(
            &u("newtab"),
            Relation,
            &SearchPath::default_path(),
            "bob",
            &catalog(),
        );
        assert_eq!(bob.to_string(), "public.newtab");
        assert_eq!(
            r(u("newtab"), Relation, "nosuch, sales, public"),
            "sales.newtab"
        );
        assert_eq!(r(u("newtab"), Relation, "nosuch"), "nosuch.newtab");
        assert_eq!(r(u("newtab"), Relation, ""), "pg_catalog.newtab");
        // qualified names are kept, case included
        assert_eq!(
            r(ObjectName::qualified("HR", "Employees"), Relation, "public"),
            "\"HR\".\"Employees\""
        );
        assert_eq!(
            r(ObjectName::qualified("hr", "employees"), Relation, "public"),
            "hr.employees"
        );
        // functions: pg_catalog first unless listed later explicitly
        assert_eq!(r(u("now"), Function, "util, public"), "pg_catalog.now");
        assert_eq!(r(u("now"), Function, "util, pg_catalog"), "util.now");
        assert_eq!(r(u("helper"), Function, "public, util"), "util.helper");
        assert_eq!(r(u("hr"), Schema, "public"), "hr");
    }
}

//! Per-resource snapshots of the upstream catalog: which schemas, relations and functions exist, so that
//! unqualified names resolve through `search_path` the way PostgreSQL resolves them; and, for masking,
//! each relation's columns, inheritance parents and the relations each view reads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_sql::{Catalog, QualifiedName};

/// The query whose rows build a snapshot: (kind, schema, name, a, b) with kind `n` schema, `r` relation,
/// `f` function, `c` column `a` of relation `name` (in column order), `i` relation `name` inheriting from
/// `a.b`, `d` view or materialised view `name` reading relation `a.b`.
pub const SNAPSHOT_QUERY: &str = "SELECT 'r', n.nspname, c.relname, '', '' FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','v','m','f','p','S') AND n.nspname !~ '^pg_(toast|temp)' \
     UNION ALL SELECT 'n', nspname, '', '', '' FROM pg_catalog.pg_namespace \
     UNION ALL SELECT DISTINCT 'f', n.nspname, p.proname, '', '' FROM pg_catalog.pg_proc p \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     UNION ALL SELECT * FROM (SELECT 'c', n.nspname, c.relname, a.attname, '' FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','f','p') \
     AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
     ORDER BY n.nspname, c.relname, a.attnum) columns \
     UNION ALL SELECT 'i', cn.nspname, c.relname, pn.nspname, p.relname FROM pg_catalog.pg_inherits i \
     JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
     JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
     UNION ALL SELECT DISTINCT 'd', vn.nspname, v.relname, bn.nspname, b.relname FROM pg_catalog.pg_rewrite r \
     JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace \
     JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid \
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
     JOIN pg_catalog.pg_class b ON b.oid = d.refobjid AND b.oid <> v.oid \
     JOIN pg_catalog.pg_namespace bn ON bn.oid = b.relnamespace \
     WHERE v.relkind IN ('v','m') AND vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema'";

/// One row of [`SNAPSHOT_QUERY`].
pub type CatalogRow = [String; 5];

/// A row of [`SNAPSHOT_QUERY`] from its decoded columns (NULL read as empty); `None` when columns are missing.
pub fn catalog_row(columns: Vec<Option<String>>) -> Option<CatalogRow> {
    let mut it = columns.into_iter().map(Option::unwrap_or_default);
    Some([it.next()?, it.next()?, it.next()?, it.next()?, it.next()?])
}

/// What one resource's catalog held when it was read.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    schemas: HashSet<String>,
    relations: HashMap<String, HashSet<String>>,
    functions: HashMap<String, HashSet<String>>,
    columns: HashMap<QualifiedName, Vec<String>>,
    parents: HashMap<QualifiedName, Vec<QualifiedName>>,
    view_reads: HashMap<QualifiedName, Vec<QualifiedName>>,
}

fn qualified(schema: String, name: String) -> QualifiedName {
    QualifiedName { schema, name }
}

impl CatalogSnapshot {
    /// Builds a snapshot from the rows of [`SNAPSHOT_QUERY`].
    pub fn from_rows(rows: impl IntoIterator<Item = CatalogRow>) -> Self {
        let mut snapshot = CatalogSnapshot::default();
        for [kind, schema, name, a, b] in rows {
            match kind.as_str() {
                "n" => {
                    snapshot.schemas.insert(schema);
                }
                "r" => {
                    snapshot.relations.entry(schema).or_default().insert(name);
                }
                "f" => {
                    snapshot.functions.entry(schema).or_default().insert(name);
                }
                "c" => snapshot
                    .columns
                    .entry(qualified(schema, name))
                    .or_default()
                    .push(a),
                "i" => snapshot
                    .parents
                    .entry(qualified(schema, name))
                    .or_default()
                    .push(qualified(a, b)),
                "d" => snapshot
                    .view_reads
                    .entry(qualified(schema, name))
                    .or_default()
                    .push(qualified(a, b)),
                _ => {}
            }
        }
        snapshot
    }

    /// The relation's columns in order, if it has any the snapshot knows.
    pub fn columns(&self, relation: &QualifiedName) -> Option<&[String]> {
        self.columns.get(relation).map(Vec::as_slice)
    }

    /// Every relation whose columns the snapshot holds.
    pub fn relations_with_columns(&self) -> impl Iterator<Item = &QualifiedName> {
        self.columns.keys()
    }

    /// Whether the relation exists in the snapshot.
    pub fn knows(&self, relation: &QualifiedName) -> bool {
        self.has_relation(&relation.schema, &relation.name)
    }

    /// The relation's ancestors through inheritance and partitioning, nearest first.
    pub fn ancestors(&self, relation: &QualifiedName) -> Vec<&QualifiedName> {
        self.closure(relation, &self.parents)
    }

    /// Each view and materialised view with every relation it reads, through other views too.
    pub fn view_bases(&self) -> impl Iterator<Item = (&QualifiedName, Vec<&QualifiedName>)> {
        self.view_reads
            .keys()
            .map(|view| (view, self.closure(view, &self.view_reads)))
    }

    fn closure<'a>(
        &'a self,
        start: &QualifiedName,
        edges: &'a HashMap<QualifiedName, Vec<QualifiedName>>,
    ) -> Vec<&'a QualifiedName> {
        let mut found: Vec<&QualifiedName> = Vec::new();
        let mut next = 0;
        found.extend(edges.get(start).into_iter().flatten());
        while let Some(current) = found.get(next).copied() {
            next += 1;
            for up in edges.get(current).into_iter().flatten() {
                if !found.contains(&up) && up != start {
                    found.push(up);
                }
            }
        }
        found
    }
}

impl Catalog for CatalogSnapshot {
    fn has_relation(&self, schema: &str, name: &str) -> bool {
        self.relations
            .get(schema)
            .is_some_and(|names| names.contains(name))
    }

    fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }

    fn has_function(&self, schema: &str, name: &str) -> bool {
        self.functions
            .get(schema)
            .is_some_and(|names| names.contains(name))
    }
}

/// Snapshots shared by all sessions of a gateway, one per resource, trusted for a while and dropped when a
/// session sees DDL.
pub struct CatalogCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<CatalogSnapshot>)>>,
}

impl CatalogCache {
    /// An empty cache whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        CatalogCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The resource's snapshot if one was read less than the TTL ago.
    pub fn fresh(&self, resource: &str) -> Option<Arc<CatalogSnapshot>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(resource)
            .filter(|(read, _)| read.elapsed() < self.ttl)
            .map(|(_, snapshot)| Arc::clone(snapshot))
    }

    /// Publishes a newly read snapshot.
    pub fn put(&self, resource: &str, snapshot: Arc<CatalogSnapshot>) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(resource.to_string(), (Instant::now(), snapshot));
    }

    /// Forgets a resource's snapshot, e.g. after DDL changed its catalog.
    pub fn invalidate(&self, resource: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(resource);
    }
}

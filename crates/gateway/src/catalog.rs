//! Per-resource snapshots of the upstream catalog: which schemas, relations and functions exist, so that
//! unqualified names resolve through `search_path` the way PostgreSQL resolves them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_sql::Catalog;

/// The query whose rows build a snapshot: (kind, schema, name) with kind `n` schema, `r` relation,
/// `f` function.
pub const SNAPSHOT_QUERY: &str = "SELECT 'r', n.nspname, c.relname FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','v','m','f','p','S') AND n.nspname !~ '^pg_(toast|temp)' \
     UNION ALL SELECT 'n', nspname, '' FROM pg_catalog.pg_namespace \
     UNION ALL SELECT DISTINCT 'f', n.nspname, p.proname FROM pg_catalog.pg_proc p \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace";

/// What one resource's catalog held when it was read.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    schemas: HashSet<String>,
    relations: HashMap<String, HashSet<String>>,
    functions: HashMap<String, HashSet<String>>,
}

impl CatalogSnapshot {
    /// Builds a snapshot from the rows of [`SNAPSHOT_QUERY`].
    pub fn from_rows(rows: impl IntoIterator<Item = [String; 3]>) -> Self {
        let mut snapshot = CatalogSnapshot::default();
        for [kind, schema, name] in rows {
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
                _ => {}
            }
        }
        snapshot
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

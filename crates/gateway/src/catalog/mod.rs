//! Per-resource snapshots of the upstream catalog: which schemas, relations and functions exist, so that
//! unqualified names resolve through `search_path` the way PostgreSQL resolves them; and, for masking,
//! each relation's columns, inheritance parents, the relations each view reads and each view's definition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_sql::mask::{ViewDefinition, TRUSTED_FUNCTION_SCHEMAS};
use portcullis_sql::{Catalog, Operation, QualifiedName, SearchPath};

mod cache;
mod changes;
#[cfg(test)]
mod incremental_tests;

pub use cache::{CatalogCache, CatalogHandle, Changed, FunctionByOid, Need};
use changes::{Delta, Digest};

/// The query whose rows build a snapshot: (kind, schema, name, a, b) with kind `n` schema, `r` relation
/// (its OID in `a`), `f` function, `c` column `a` of relation `name` (its number in `b`; the gateway puts
/// them in order, sparing the server a sort of every column), `i` relation `name` inheriting from `a.b`,
/// `d` view or materialised view `name` reading relation `a.b`, `g` view or materialised view `name`
/// calling function `a.b` (directly or as an operator), `o` operator `name` in schema `schema`, `m`
/// materialised view `name`, `v` view `name` defined as `a` (`b` is `t` for a security barrier), `p` the
/// search path (in `schema`) the definitions were printed under (`pg_get_viewdef` leaves a name unqualified
/// when that path finds it), and, for code outside the trusted schemas that PostgreSQL runs without the
/// statement naming it: `x` relation `name` running it on the events `a` (`i`nsert, `u`pdate, `d`elete,
/// `t`runcate, or `r` for any access) because of `b` (a trigger, a rule, a default, a constraint, an index
/// expression, a row security policy, a column's type), `y` type `name` whose domain CHECK or DEFAULT or
/// whose casts run it (`a` says which), and `e` event trigger `name` running function `a` on DDL.
///
/// The trusted schemas are written out in the first CTE: they must be [`TRUSTED_FUNCTION_SCHEMAS`].
pub const SNAPSHOT_QUERY: &str = "WITH untrusted AS (SELECT p.oid, \
     pg_catalog.format('%I.%I', n.nspname, p.proname) AS name FROM pg_catalog.pg_proc p \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')), \
     calls AS (SELECT d.classid, d.objid, u.name FROM pg_catalog.pg_depend d JOIN untrusted u ON u.oid = d.refobjid \
     WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
     UNION ALL SELECT d.classid, d.objid, u.name FROM pg_catalog.pg_depend d \
     JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid JOIN untrusted u ON u.oid = o.oprcode::pg_catalog.oid \
     WHERE d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass), \
     risky_types AS (SELECT t.oid, 'iu' AS events, 'its CHECK or DEFAULT calls function ' || k.name AS why \
     FROM pg_catalog.pg_type t JOIN calls k ON (k.classid = 'pg_catalog.pg_type'::pg_catalog.regclass \
     AND k.objid = t.oid) OR (k.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.objid IN \
     (SELECT c.oid FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid)) WHERE t.typtype = 'd' \
     UNION ALL SELECT c.castsource, 'r', 'a cast from it calls function ' || u.name FROM pg_catalog.pg_cast c \
     JOIN untrusted u ON u.oid = c.castfunc \
     UNION ALL SELECT c.casttarget, 'r', 'a cast to it calls function ' || u.name FROM pg_catalog.pg_cast c \
     JOIN untrusted u ON u.oid = c.castfunc), \
     typed AS (SELECT t.oid, r.events, r.why FROM risky_types r \
     JOIN pg_catalog.pg_type rt ON rt.oid = r.oid JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.typnamespace \
     JOIN pg_catalog.pg_type t ON t.oid = r.oid OR t.typelem = r.oid OR t.typbasetype = r.oid \
     WHERE rn.nspname NOT IN ('pg_catalog', 'information_schema')), \
     fires AS (SELECT t.tgrelid AS rel, pg_catalog.concat(CASE WHEN t.tgtype & 4 <> 0 THEN 'i' END, \
     CASE WHEN t.tgtype & 16 <> 0 THEN 'u' END, CASE WHEN t.tgtype & 8 <> 0 THEN 'd' END, \
     CASE WHEN t.tgtype & 32 <> 0 THEN 't' END) AS events, \
     pg_catalog.format('trigger %I runs function %s', t.tgname, u.name) AS why \
     FROM pg_catalog.pg_trigger t JOIN untrusted u ON u.oid = t.tgfoid WHERE NOT t.tgisinternal \
     UNION ALL SELECT r.ev_class, CASE r.ev_type WHEN '2' THEN 'u' WHEN '3' THEN 'i' WHEN '4' THEN 'd' ELSE 'r' END, \
     pg_catalog.format('rule %I runs statements of its own', r.rulename) FROM pg_catalog.pg_rewrite r \
     WHERE r.rulename <> '_RETURN' \
     UNION ALL SELECT a.adrelid, 'iu', 'a column default or generated column calls function ' || k.name \
     FROM pg_catalog.pg_attrdef a JOIN calls k ON k.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
     AND k.objid = a.oid \
     UNION ALL SELECT c.conrelid, 'iu', pg_catalog.format('constraint %I calls function %s', c.conname, k.name) \
     FROM pg_catalog.pg_constraint c JOIN calls k ON k.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass \
     AND k.objid = c.oid WHERE c.conrelid <> 0 \
     UNION ALL SELECT i.indrelid, 'iu', pg_catalog.format('index %s calls function %s', \
     i.indexrelid::pg_catalog.regclass, k.name) FROM pg_catalog.pg_index i \
     JOIN calls k ON k.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND k.objid = i.indexrelid \
     UNION ALL SELECT p.polrelid, 'r', pg_catalog.format('row security policy %I calls function %s', p.polname, \
     k.name) FROM pg_catalog.pg_policy p \
     JOIN calls k ON k.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND k.objid = p.oid \
     UNION ALL SELECT a.attrelid, y.events, pg_catalog.format('column %I has type %s: %s', a.attname, \
     pg_catalog.format_type(a.atttypid, NULL), y.why) FROM pg_catalog.pg_attribute a \
     JOIN typed y ON y.oid = a.atttypid WHERE a.attnum > 0 AND NOT a.attisdropped) \
     SELECT 'r', n.nspname, c.relname, c.oid::pg_catalog.text, '', c.oid FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','v','m','f','p','S') AND n.nspname !~ '^pg_(toast|temp)' \
     UNION ALL SELECT 'n', nspname, '', '', '', 0::pg_catalog.oid FROM pg_catalog.pg_namespace \
     UNION ALL SELECT DISTINCT 'f', n.nspname, p.proname, '', '', 0::pg_catalog.oid FROM pg_catalog.pg_proc p \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     UNION ALL SELECT 'c', n.nspname, c.relname, a.attname, a.attnum::pg_catalog.text, c.oid \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','f','p') \
     AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
     UNION ALL SELECT 'i', cn.nspname, c.relname, pn.nspname, p.relname, c.oid FROM pg_catalog.pg_inherits i \
     JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
     JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
     UNION ALL SELECT DISTINCT 'd', vn.nspname, v.relname, bn.nspname, b.relname, v.oid FROM pg_catalog.pg_rewrite r \
     JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace \
     JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid \
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
     JOIN pg_catalog.pg_class b ON b.oid = d.refobjid AND b.oid <> v.oid \
     JOIN pg_catalog.pg_namespace bn ON bn.oid = b.relnamespace \
     WHERE v.relkind IN ('v','m') AND vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema' \
     UNION ALL SELECT DISTINCT 'g', vn.nspname, v.relname, fn.nspname, f.proname, v.oid FROM pg_catalog.pg_rewrite r \
     JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace \
     JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid \
     JOIN pg_catalog.pg_proc f ON f.oid = CASE d.refclassid \
     WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid \
     WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN (SELECT o.oprcode::pg_catalog.oid \
     FROM pg_catalog.pg_operator o WHERE o.oid = d.refobjid) END \
     JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace \
     WHERE v.relkind IN ('v','m') AND vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema' \
     UNION ALL SELECT DISTINCT 'o', n.nspname, o.oprname, '', '', 0::pg_catalog.oid FROM pg_catalog.pg_operator o \
     JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname <> 'pg_catalog' \
     UNION ALL SELECT 'm', n.nspname, c.relname, '', '', c.oid FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' \
     UNION ALL SELECT 'v', n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid), \
     CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.unnest(c.reloptions) o \
     WHERE o OPERATOR(pg_catalog.~*) '^security_barrier=(t|true|on|y|yes|1)$') THEN 't' ELSE '' END, c.oid \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'v' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
     UNION ALL SELECT 'p', pg_catalog.current_setting('search_path'), '', '', '', 0::pg_catalog.oid \
     UNION ALL SELECT 'x', n.nspname, c.relname, f.events, f.why, c.oid FROM fires f \
     JOIN pg_catalog.pg_class c ON c.oid = f.rel JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     UNION ALL SELECT 'y', n.nspname, t.typname, y.why, '', 0::pg_catalog.oid FROM typed y JOIN pg_catalog.pg_type t ON t.oid = y.oid \
     JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.typcategory <> 'A' \
     UNION ALL SELECT 'e', '', e.evtname, u.name, '', 0::pg_catalog.oid FROM pg_catalog.pg_event_trigger e \
     JOIN untrusted u ON u.oid = e.evtfoid WHERE e.evtenabled <> 'D'";

/// The catalogs whatever a snapshot holds comes from, but for the two largest: a column added changes
/// its relation's `pg_class` row too, and one renamed or dropped behind the gateway's back fails the
/// projection a protected relation is read through rather than showing anything (and a type matters
/// once a column, a cast or a constraint uses it, which the catalogs here show).
const WATCHED_CATALOGS: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_proc",
    "pg_rewrite",
    "pg_trigger",
    "pg_inherits",
    "pg_policy",
    "pg_attrdef",
    "pg_constraint",
    "pg_index",
    "pg_cast",
    "pg_operator",
    "pg_event_trigger",
];

/// A query for a cheap fingerprint of what a snapshot holds: each watched catalog's row count and the
/// sum of its rows' `xmin`, which changes whenever DDL — through the gateway or not — inserts, updates
/// or deletes a row. It scans the catalogs but builds nothing.
pub fn fingerprint_query() -> String {
    let parts: Vec<String> = WATCHED_CATALOGS
        .iter()
        .map(|catalog| {
            format!(
                "(SELECT pg_catalog.count(*) || ':' || pg_catalog.sum(xmin::text::int8) \
                 FROM pg_catalog.{catalog})"
            )
        })
        .collect();
    format!("SELECT pg_catalog.concat_ws(',', {})", parts.join(", "))
}

/// [`SNAPSHOT_QUERY`] without view definitions: `pg_get_viewdef` locks the relations a view reads, and
/// a migration may hold such a lock for minutes.
pub fn snapshot_query_without_definitions() -> String {
    SNAPSHOT_QUERY.replace("pg_catalog.pg_get_viewdef(c.oid)", "NULL")
}

/// One row of [`SNAPSHOT_QUERY`].
pub type CatalogRow = [String; 5];

/// A row of [`SNAPSHOT_QUERY`] from its decoded columns (NULL read as empty); `None` when columns are missing.
pub fn catalog_row(columns: Vec<Option<String>>) -> Option<CatalogRow> {
    let mut it = columns.into_iter().map(Option::unwrap_or_default);
    Some([it.next()?, it.next()?, it.next()?, it.next()?, it.next()?])
}

/// What one resource's catalog held when it was read.
#[derive(Debug, Clone)]
pub struct CatalogSnapshot {
    /// When the query that read it began: DDL committed before then is in it.
    began: Instant,
    /// When the last full read it was built on began: an incremental read builds on a snapshot only
    /// while that is younger than the TTL.
    full_began: Instant,
    /// Read by re-reading only what changed since the snapshot it was built on.
    incremental: bool,
    /// The resource's change count when the query began (see [`CatalogHandle::changed`]).
    generation: u64,
    /// Every view's definition was read.
    complete: bool,
    /// What the catalog looked like when the rows were read (see [`changes`]); `None` when the server
    /// could not say, and then the next read is a full one.
    digest: Option<Arc<Digest>>,
    schemas: HashSet<String>,
    relations: HashMap<String, HashSet<String>>,
    relation_oids: HashMap<QualifiedName, u32>,
    /// The same, the other way round: what an incremental read forgets when a relation changed.
    names_by_oid: HashMap<u32, QualifiedName>,
    functions: HashMap<String, HashSet<String>>,
    columns: HashMap<QualifiedName, Vec<String>>,
    /// Each relation's highest column number: a result column numbered higher was added since.
    last_column: HashMap<u32, i16>,
    parents: HashMap<QualifiedName, Vec<QualifiedName>>,
    view_reads: HashMap<QualifiedName, Vec<QualifiedName>>,
    view_calls: HashMap<QualifiedName, Vec<QualifiedName>>,
    materialized: HashSet<QualifiedName>,
    /// Operators outside the trusted schemas: name → schemas defining one.
    operators: HashMap<String, Vec<String>>,
    views: HashMap<QualifiedName, ViewDefinition>,
    /// The search path view definitions were printed under.
    printed_under: Option<Arc<SearchPath>>,
    /// Relations that run untrusted code by themselves (the `x` rows), before their parents get them.
    own_fires: HashMap<QualifiedName, Vec<(String, String)>>,
    /// Relations that run untrusted code, by themselves or through a child: on which events (see
    /// [`SNAPSHOT_QUERY`]), and why.
    fires: HashMap<QualifiedName, Vec<(String, String)>>,
    /// Types outside the trusted schemas whose domain checks or casts run untrusted code: name → (schema,
    /// why).
    risky_types: HashMap<String, Vec<(String, String)>>,
    /// Enabled event triggers running untrusted code on DDL: `trigger runs function f`.
    event_triggers: Vec<String>,
}

/// What rows leave to be put in place once all are in: columns to order, definitions to attach a path to.
#[derive(Default)]
struct Pending {
    definitions: Vec<(QualifiedName, String, bool)>,
    numbered: HashMap<QualifiedName, Vec<(i32, String)>>,
}

fn qualified(schema: String, name: String) -> QualifiedName {
    QualifiedName { schema, name }
}

impl CatalogSnapshot {
    /// Builds a snapshot from the rows of [`SNAPSHOT_QUERY`].
    #[cfg(test)]
    pub fn from_rows(rows: impl IntoIterator<Item = CatalogRow>) -> Self {
        Self::read(rows, Instant::now(), 0, None)
    }

    /// Builds a snapshot from the rows of a query that began at `began`, when the resource's change count
    /// was `generation`, with the digest taken with them.
    fn read(
        rows: impl IntoIterator<Item = CatalogRow>,
        began: Instant,
        generation: u64,
        digest: Option<Digest>,
    ) -> Self {
        let mut snapshot = CatalogSnapshot {
            began,
            full_began: began,
            incremental: false,
            generation,
            complete: true,
            digest: digest.map(Arc::new),
            schemas: HashSet::new(),
            relations: HashMap::new(),
            relation_oids: HashMap::new(),
            names_by_oid: HashMap::new(),
            functions: HashMap::new(),
            columns: HashMap::new(),
            parents: HashMap::new(),
            view_reads: HashMap::new(),
            view_calls: HashMap::new(),
            materialized: HashSet::new(),
            operators: HashMap::new(),
            views: HashMap::new(),
            printed_under: None,
            own_fires: HashMap::new(),
            fires: HashMap::new(),
            risky_types: HashMap::new(),
            event_triggers: Vec::new(),
            last_column: HashMap::new(),
        };
        let pending = snapshot.apply(rows);
        snapshot.finish(pending);
        snapshot
    }

    /// This snapshot with the relations `delta` names forgotten and the rows of [`changes::delta_query`]
    /// (read at `began`, at change count `generation`, with `digest`) put in their place.
    fn rebuilt(
        &self,
        delta: &Delta,
        rows: impl IntoIterator<Item = CatalogRow>,
        began: Instant,
        generation: u64,
        digest: Digest,
    ) -> Self {
        let mut next = self.clone();
        next.began = began;
        next.generation = generation;
        next.incremental = true;
        next.digest = Some(Arc::new(digest));
        for oid in delta.gone.iter().chain(&delta.dirty) {
            next.forget(*oid);
        }
        // A relation read again under a name another relation had when the snapshot was read: that
        // one was renamed or dropped since (the digest and the rows are read in one transaction, so it
        // is among the dirty or gone ones), but forget it whatever the rows' order.
        let rows: Vec<CatalogRow> = rows.into_iter().collect();
        for [kind, schema, name, a, _] in &rows {
            if kind != "r" {
                continue;
            }
            let relation = qualified(schema.clone(), name.clone());
            if let Some(other) = next.relation_oids.get(&relation).copied() {
                if a.parse::<u32>().ok() != Some(other) {
                    next.forget(other);
                }
            }
        }
        // Read again whole: cheap, and a function's or operator's drop leaves no trace to find.
        next.functions.clear();
        next.operators.clear();
        next.event_triggers.clear();
        let pending = next.apply(rows);
        next.finish(pending);
        next
    }

    /// Forgets what the snapshot holds about the relation whose OID is `oid`.
    fn forget(&mut self, oid: u32) {
        let Some(name) = self.names_by_oid.remove(&oid) else {
            return;
        };
        self.last_column.remove(&oid);
        // The name may have been taken by another relation since (read in the same delta).
        if self.relation_oids.get(&name) != Some(&oid) {
            return;
        }
        self.relation_oids.remove(&name);
        if let Some(names) = self.relations.get_mut(&name.schema) {
            names.remove(&name.name);
        }
        self.columns.remove(&name);
        self.parents.remove(&name);
        self.view_reads.remove(&name);
        self.view_calls.remove(&name);
        self.materialized.remove(&name);
        self.views.remove(&name);
        self.own_fires.remove(&name);
    }

    /// Puts rows of [`SNAPSHOT_QUERY`] in the snapshot; what needs all of them is left in the result.
    fn apply(&mut self, rows: impl IntoIterator<Item = CatalogRow>) -> Pending {
        let mut pending = Pending::default();
        for [kind, schema, name, a, b] in rows {
            match kind.as_str() {
                "n" => {
                    self.schemas.insert(schema);
                }
                "r" => {
                    if let Ok(oid) = a.parse() {
                        let relation = qualified(schema.clone(), name.clone());
                        if let Some(other) = self.relation_oids.insert(relation.clone(), oid) {
                            if other != oid {
                                self.names_by_oid.remove(&other);
                            }
                        }
                        self.names_by_oid.insert(oid, relation);
                    }
                    self.relations.entry(schema).or_default().insert(name);
                }
                "f" => {
                    self.functions.entry(schema).or_default().insert(name);
                }
                "c" => pending
                    .numbered
                    .entry(qualified(schema, name))
                    .or_default()
                    .push((b.parse::<i32>().unwrap_or(0), a)),
                "i" => self
                    .parents
                    .entry(qualified(schema, name))
                    .or_default()
                    .push(qualified(a, b)),
                "d" => self
                    .view_reads
                    .entry(qualified(schema, name))
                    .or_default()
                    .push(qualified(a, b)),
                "g" => {
                    let view = qualified(schema, name);
                    // Listed among the views even when it reads no relation.
                    self.view_reads.entry(view.clone()).or_default();
                    self.view_calls
                        .entry(view)
                        .or_default()
                        .push(qualified(a, b));
                }
                "m" => {
                    self.materialized.insert(qualified(schema, name));
                }
                "o" if !TRUSTED_FUNCTION_SCHEMAS.contains(&schema.as_str()) => {
                    self.operators.entry(name).or_default().push(schema);
                }
                // Without a definition (read by the query that skips them) a view reading a protected
                // relation is refused to masked sessions rather than expanded.
                "v" if a.is_empty() => self.complete = false,
                "v" => pending
                    .definitions
                    .push((qualified(schema, name), a, b == "t")),
                "p" => self.printed_under = Some(Arc::new(SearchPath::from_setting(&schema))),
                "x" => self
                    .own_fires
                    .entry(qualified(schema, name))
                    .or_default()
                    .push((a, b)),
                "y" => self.risky_types.entry(name).or_default().push((schema, a)),
                "e" => self
                    .event_triggers
                    .push(format!("event trigger {name} runs function {a}")),
                _ => {}
            }
        }
        pending
    }

    /// Orders the columns the rows brought, attaches definitions to their path and works out what
    /// relations run through their children.
    fn finish(&mut self, pending: Pending) {
        for (relation, mut columns) in pending.numbered {
            columns.sort_by_key(|(number, _)| *number);
            if let (Some(oid), Some((last, _))) =
                (self.relation_oids.get(&relation), columns.last())
            {
                let last = i16::try_from(*last).unwrap_or(i16::MAX);
                self.last_column.insert(*oid, last);
            }
            self.columns.insert(
                relation,
                columns.into_iter().map(|(_, name)| name).collect(),
            );
        }
        // A write to a parent reaches its children's rows (UPDATE, DELETE, TRUNCATE) or is routed to a
        // partition (INSERT), where their triggers and rules run too.
        let mut fires = self.own_fires.clone();
        for (child, own) in &self.own_fires {
            for parent in self.closure(child, &self.parents) {
                let inherited = own
                    .iter()
                    .map(|(events, why)| (events.clone(), format!("{why} on {child}")));
                fires.entry(parent.clone()).or_default().extend(inherited);
            }
        }
        self.fires = fires;
        // Without the path they were printed under, the definitions' unqualified names cannot be resolved.
        if let Some(path) = &self.printed_under {
            for (view, sql, security_barrier) in pending.definitions {
                let definition = ViewDefinition {
                    sql,
                    path: Arc::clone(path),
                    security_barrier,
                };
                self.views.insert(view, definition);
            }
        }
    }

    /// Whether the snapshot was read by re-reading only what changed.
    pub fn is_incremental(&self) -> bool {
        self.incremental
    }

    /// The digest taken with the rows, if the server gave one.
    fn digest(&self) -> Option<&Digest> {
        self.digest.as_deref()
    }

    /// The OIDs of the relations the snapshot knows.
    fn known_relations(&self) -> HashSet<u32> {
        self.names_by_oid.keys().copied().collect()
    }

    /// Whether a read may build on this snapshot rather than read everything: it has a digest and every
    /// view's definition, and the full read under it began less than `ttl` ago (the TTL stays the
    /// backstop for whatever a digest could miss).
    fn can_build_on(&self, ttl: Duration) -> bool {
        self.complete && self.digest.is_some() && self.full_began.elapsed() < ttl
    }

    /// When the query that read it began.
    pub fn began(&self) -> Instant {
        self.began
    }

    /// A view's definition, when the snapshot holds it (plain views, not materialised ones).
    pub fn view_definition(&self, view: &QualifiedName) -> Option<&ViewDefinition> {
        self.views.get(view)
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

    /// The OIDs of the tables a result column read from `relation` may name as its origin: the relation's
    /// own and, for a view, those of every relation it reads (a masked session reads a view through its
    /// definition). `None` when the snapshot does not know the relation.
    pub fn origins(&self, relation: &QualifiedName) -> Option<Vec<u32>> {
        let own = *self.relation_oids.get(relation)?;
        let bases = self.closure(relation, &self.view_reads);
        let mut oids = Vec::with_capacity(1 + bases.len());
        oids.push(own);
        oids.extend(bases.iter().filter_map(|b| self.relation_oids.get(*b)));
        Some(oids)
    }

    /// The highest column number the snapshot knows of the relation whose OID is `oid` (0 when it knows
    /// no column of it).
    pub fn last_column(&self, oid: u32) -> i16 {
        self.last_column.get(&oid).copied().unwrap_or(0)
    }

    /// The relations a decision about `relation` also reads the snapshot's entries for: its ancestors,
    /// and the relations a view reads (through other views too).
    pub fn related(&self, relation: &QualifiedName) -> Vec<&QualifiedName> {
        let mut related = self.closure(relation, &self.view_reads);
        related.extend(self.closure(relation, &self.parents));
        related
    }

    /// The change count of the resource when the query that read it began.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The relation whose OID is `oid`, when the snapshot knows it.
    pub fn relation_named_by(&self, oid: u32) -> Option<&QualifiedName> {
        self.names_by_oid.get(&oid)
    }

    /// Each view and materialised view with every relation it reads, through other views too.
    pub fn view_bases(&self) -> impl Iterator<Item = (&QualifiedName, Vec<&QualifiedName>)> {
        self.view_reads
            .keys()
            .map(|view| (view, self.closure(view, &self.view_reads)))
    }

    /// The schemas outside `pg_catalog` that define an operator named `name`; operators run functions,
    /// whose bodies there may read anything.
    pub fn untrusted_operator_schemas(&self, name: &str) -> &[String] {
        self.operators.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether `relation` is a materialised view.
    pub fn is_materialized(&self, relation: &QualifiedName) -> bool {
        self.materialized.contains(relation)
    }

    /// The functions a view or materialised view calls itself (not through the views it reads).
    pub fn view_calls(&self, view: &QualifiedName) -> &[QualifiedName] {
        self.view_calls.get(view).map_or(&[], Vec::as_slice)
    }

    /// Why `operation` on `relation` runs code outside the trusted schemas that the statement does not
    /// name (a trigger, a rule, a default, a constraint, an index expression, a row security policy, a
    /// column's type), if it does. Maintenance and DDL may evaluate any of them.
    pub fn runs_untrusted_code(
        &self,
        relation: &QualifiedName,
        operation: Operation,
    ) -> Option<&str> {
        let event = match operation {
            Operation::Read | Operation::CopyOut => 'r',
            Operation::Insert | Operation::CopyIn => 'i',
            Operation::Update => 'u',
            Operation::Delete => 'd',
            Operation::Truncate => 't',
            Operation::Alter | Operation::Maintain => '*',
            _ => return None,
        };
        self.fires
            .get(relation)?
            .iter()
            .find(|(events, _)| event == '*' || events.contains(event) || events.contains('r'))
            .map(|(_, why)| why.as_str())
    }

    /// The schemas outside the trusted ones defining a type named `name` whose domain checks or casts run
    /// untrusted code, each with why.
    pub fn risky_type_schemas(&self, name: &str) -> &[(String, String)] {
        self.risky_types.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether a statement's operators or types may run untrusted code: then they need looking at.
    pub fn has_untrusted_names(&self) -> bool {
        !self.operators.is_empty() || !self.risky_types.is_empty()
    }

    /// The enabled event triggers that run untrusted code on DDL, described.
    pub fn untrusted_event_triggers(&self) -> &[String] {
        &self.event_triggers
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, schema: &str, name: &str, a: &str, b: &str) -> CatalogRow {
        [kind, schema, name, a, b].map(str::to_owned)
    }

    #[test]
    fn views_keep_their_definitions_calls_and_kind() {
        let rows = vec![
            row("r", "hr", "people", "", ""),
            row("r", "hr", "staff", "", ""),
            row("d", "hr", "staff", "hr", "people"),
            row("v", "hr", "staff", "SELECT ssn FROM people;", "t"),
            row("g", "hr", "calls_only", "public", "f"),
            row("m", "hr", "copy", "", ""),
            row("o", "public", "===", "", ""),
            row("o", "information_schema", "+", "", ""),
            row("p", "hr, public", "", "", ""),
        ];
        let snapshot = CatalogSnapshot::from_rows(rows.clone());
        let staff = qualified("hr".into(), "staff".into());
        let definition = snapshot.view_definition(&staff).unwrap();
        assert_eq!(definition.sql, "SELECT ssn FROM people;");
        assert!(definition.security_barrier);
        assert_eq!(
            definition.path.entries(),
            ["hr".to_owned(), "public".to_owned()]
        );
        let calls_only = qualified("hr".into(), "calls_only".into());
        assert!(snapshot.view_bases().any(|(v, _)| *v == calls_only));
        assert_eq!(snapshot.view_calls(&calls_only)[0].name, "f");
        assert!(snapshot.is_materialized(&qualified("hr".into(), "copy".into())));
        assert_eq!(snapshot.untrusted_operator_schemas("==="), ["public"]);
        assert!(snapshot.untrusted_operator_schemas("+").is_empty());

        // Without the path they were printed under, definitions cannot be resolved: none is kept.
        let without_path = CatalogSnapshot::from_rows(rows.into_iter().filter(|r| r[0] != "p"));
        assert!(without_path.view_definition(&staff).is_none());
    }

    #[test]
    fn code_a_relation_or_type_runs_is_kept_per_event_and_reaches_parents() {
        let notes = qualified("public".into(), "notes".into());
        let child = qualified("public".into(), "notes_child".into());
        let snapshot = CatalogSnapshot::from_rows(vec![
            row("r", "public", "notes", "", ""),
            row("r", "public", "notes_child", "", ""),
            row("i", "public", "notes_child", "public", "notes"),
            row(
                "x",
                "public",
                "notes",
                "iu",
                "trigger spy runs function public.spy",
            ),
            row(
                "x",
                "public",
                "notes_child",
                "d",
                "rule r runs statements of its own",
            ),
            row("x", "public", "boxes", "r", "column w has type wrapped"),
            row(
                "y",
                "public",
                "checked",
                "its CHECK or DEFAULT calls function public.f",
                "",
            ),
            row("e", "", "spy_ddl", "public.on_ddl", ""),
        ]);
        assert_eq!(
            snapshot.runs_untrusted_code(&notes, Operation::CopyIn),
            Some("trigger spy runs function public.spy")
        );
        assert_eq!(snapshot.runs_untrusted_code(&notes, Operation::Read), None);
        assert_eq!(
            snapshot.runs_untrusted_code(&notes, Operation::Delete),
            Some("rule r runs statements of its own on public.notes_child")
        );
        assert_eq!(
            snapshot.runs_untrusted_code(&child, Operation::Update),
            None
        );
        assert!(snapshot
            .runs_untrusted_code(&child, Operation::Maintain)
            .is_some());
        let boxes = qualified("public".into(), "boxes".into());
        assert!(snapshot
            .runs_untrusted_code(&boxes, Operation::Read)
            .is_some());
        assert_eq!(snapshot.runs_untrusted_code(&boxes, Operation::Lock), None);
        assert_eq!(snapshot.risky_type_schemas("checked")[0].0, "public");
        assert!(snapshot.has_untrusted_names());
        assert_eq!(
            snapshot.untrusted_event_triggers(),
            ["event trigger spy_ddl runs function public.on_ddl"]
        );
    }

    #[test]
    fn the_query_trusts_exactly_the_trusted_schemas() {
        let listed = TRUSTED_FUNCTION_SCHEMAS
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            SNAPSHOT_QUERY
                .matches(&format!("NOT IN ({listed})"))
                .count(),
            2,
            "the query's trusted schemas differ from TRUSTED_FUNCTION_SCHEMAS"
        );
    }
}

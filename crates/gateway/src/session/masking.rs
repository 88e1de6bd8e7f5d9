//! Data masking and row filters for one session: the protections the policy gives this session, resolved
//! against the resource's catalog into what the statement rewriter asks (`portcullis_sql::mask`).
//!
//! Besides the rewrite itself, a session with protections may not read what the rewriter cannot see into:
//! materialised views over a protected relation (their rows are a copy), functions outside `pg_catalog`
//! (their bodies may read protected data), views calling such functions, and the catalog views that show
//! column values or other sessions' statement texts. Nor may it run such functions without naming them:
//! through a table's triggers, rules, defaults, constraints, index expressions or row security policies,
//! a type's domain checks or casts, or an event trigger on DDL. Plain views over a protected relation are
//! expanded by the rewriter, so the relation's protections apply inside them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_policy::{CompiledPolicy, Component, Context, SessionProtections};
use portcullis_sql::mask::{
    rewrite, touches_protected, Protections, RelationProtection, ViewDefinition,
    TRUSTED_FUNCTION_SCHEMAS,
};
use portcullis_sql::{ObjectKind, Operation, QualifiedName, SearchPath};
use time::OffsetDateTime;

use super::statement::Refusal;
use crate::catalog::CatalogSnapshot;

/// `pg_catalog` views that expose column values (statistics) or statement texts, which carry a hash mask's
/// salt and other sessions' literals.
const REVEALING_VIEWS: &[&str] = &[
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_stat_activity",
    "pg_prepared_statements",
    "pg_stat_statements",
];

/// Rewrites a session keeps, per text and search path, until its protections are resolved again.
const MAX_CACHED_REWRITES: usize = 1024;

/// A snapshot at least this old is read again at once when a statement names a relation it lacks; a
/// younger one waits for its age, so statements naming missing relations cannot flood the upstream.
const MIN_SNAPSHOT_AGE: Duration = Duration::from_secs(1);

/// What one statement text becomes.
#[derive(Clone)]
pub struct Masked {
    /// The text to send instead, when something was rewritten.
    pub sql: Option<String>,
    /// For the audit log: each protection applied (`hr.employees.ssn masked by mask-ssn`), with the index
    /// of the statement it applied in.
    pub applied: Vec<(usize, String)>,
    /// Whether the statements touch a protected relation at all.
    pub touched: bool,
}

/// A session's protections resolved for one policy version and one catalog snapshot.
struct Resolved {
    version: Option<i64>,
    catalog: Arc<CatalogSnapshot>,
    valid_until: Option<OffsetDateTime>,
    protections: SessionProtections,
    relations: HashMap<QualifiedName, RelationProtection>,
    /// Views the rewriter expands: plain views reading a protected relation.
    expand: HashMap<QualifiedName, ViewDefinition>,
    /// Views and materialised views this session may not read, with why.
    refused_views: HashMap<QualifiedName, String>,
    /// A statement named a relation the snapshot lacks.
    incomplete: bool,
    /// What texts became: a session repeats the same few statements, and a rewrite costs a parse and a
    /// deparse.
    rewrites: HashMap<(String, SearchPath), Result<Masked, Refusal>>,
}

impl Protections for Resolved {
    fn protection(&self, relation: &QualifiedName) -> Option<&RelationProtection> {
        self.relations.get(relation)
    }

    fn columns(&self, relation: &QualifiedName) -> Option<&[String]> {
        self.catalog.columns(relation)
    }

    fn view_to_expand(&self, view: &QualifiedName) -> Option<&ViewDefinition> {
        self.expand.get(view)
    }
}

/// The masking state of one session.
pub struct SessionMasking {
    /// The upstream role `$user` in a search path stands for.
    session_user: String,
    resolved: Option<Resolved>,
    /// A statement was refused for what the catalog snapshot lacks.
    catalog_wanted: bool,
}

impl SessionMasking {
    /// The masking state of a session whose upstream role is `session_user`.
    pub fn new(session_user: &str) -> Self {
        SessionMasking {
            session_user: session_user.to_owned(),
            resolved: None,
            catalog_wanted: false,
        }
    }

    /// Whether masks, row filters or column denies apply to this session now; they are resolved again
    /// when the policy, the catalog snapshot or a time window changed.
    pub fn refresh(
        &mut self,
        policy: &CompiledPolicy,
        version: Option<i64>,
        ctx: &Context,
        catalog: &Arc<CatalogSnapshot>,
    ) -> bool {
        let now = OffsetDateTime::now_utc();
        let stale = self.resolved.as_ref().is_none_or(|r| {
            r.version != version
                || !Arc::ptr_eq(&r.catalog, catalog)
                || r.valid_until.is_some_and(|until| now >= until)
        });
        if stale {
            self.resolved = None;
        }
        let resolved = self
            .resolved
            .get_or_insert_with(|| resolve(policy.protections(ctx, now), version, catalog));
        !resolved.protections.is_empty()
    }

    /// Rewrites `sql` (whose statements' components are `components`) with the protections the last
    /// [`refresh`](Self::refresh) resolved, or refuses it.
    pub fn apply(
        &mut self,
        path: &SearchPath,
        sql: &str,
        components: &[&[Component]],
    ) -> Result<Masked, Refusal> {
        let Some(resolved) = self.resolved.as_mut() else {
            return Ok(Masked::untouched());
        };
        let key = (sql.to_owned(), path.clone());
        if let Some(done) = resolved.rewrites.get(&key) {
            return done.clone();
        }
        let done = resolved.rewrite(&self.session_user, path, sql, components);
        if std::mem::take(&mut resolved.incomplete) {
            // Not kept: a newer snapshot may know the relation.
            self.catalog_wanted = resolved.catalog.began().elapsed() >= MIN_SNAPSHOT_AGE;
            return done;
        }
        if resolved.rewrites.len() >= MAX_CACHED_REWRITES {
            resolved.rewrites.clear();
        }
        resolved.rewrites.insert(key, done.clone());
        done
    }

    /// Whether masks, row filters or column denies may apply to this session's statements (as last
    /// resolved; before that, they may).
    pub fn may_apply(&self) -> bool {
        self.resolved
            .as_ref()
            .is_none_or(|r| !r.protections.is_empty())
    }

    /// Whether a statement was refused for what the catalog snapshot lacks since the last call: the
    /// session should read it again.
    pub fn take_catalog_wanted(&mut self) -> bool {
        std::mem::take(&mut self.catalog_wanted)
    }
}

impl Masked {
    fn untouched() -> Self {
        Masked {
            sql: None,
            applied: Vec::new(),
            touched: false,
        }
    }
}

impl Resolved {
    /// What `sql` becomes under these protections: the checks that refuse what cannot be masked, then
    /// the rewrite.
    fn rewrite(
        &mut self,
        session_user: &str,
        path: &SearchPath,
        sql: &str,
        components: &[&[Component]],
    ) -> Result<Masked, Refusal> {
        if self.protections.is_empty() {
            return Ok(Masked::untouched());
        }
        let catalog = &self.catalog;
        if catalog.has_untrusted_names() {
            self.check_implicit_names(session_user, path, sql)?;
        }
        let objects = || {
            components
                .iter()
                .flat_map(|c| c.iter())
                .filter_map(Component::as_object)
        };
        if let Some(trigger) = catalog.untrusted_event_triggers().first() {
            if objects().any(|o| is_ddl(o.operation)) {
                return Err(Refusal::denied(&format!(
                    "{trigger}, which may read protected data the gateway cannot mask, and masks or row \
                     filters apply to this session"
                )));
            }
        }
        for object in objects() {
            let name = QualifiedName {
                schema: object.schema.clone(),
                name: object.name.clone(),
            };
            if object.kind == ObjectKind::Relation {
                if let Some(why) = catalog.runs_untrusted_code(&name, object.operation) {
                    return Err(Refusal::denied(&format!(
                        "{name} runs code the statement does not name on {} ({why}), which may read \
                         protected data the gateway cannot mask, and masks or row filters apply to this \
                         session",
                        object.operation
                    )));
                }
            }
            match object.kind {
                ObjectKind::Function
                    if !TRUSTED_FUNCTION_SCHEMAS.contains(&object.schema.as_str()) =>
                {
                    return Err(Refusal::denied(&format!(
                        "function {name} may read protected data the gateway cannot mask, and masks or \
                         row filters apply to this session"
                    )));
                }
                ObjectKind::Relation
                    if object.schema == "pg_catalog"
                        && REVEALING_VIEWS.contains(&object.name.as_str()) =>
                {
                    return Err(Refusal::denied(&format!(
                        "{name} shows column values or statement texts, and masks or row filters apply \
                         to this session"
                    )));
                }
                ObjectKind::Relation => {
                    // Not in the snapshot: created since it was read, in this session's open
                    // transaction, or temporary. It may be protected, or be a view reading what is, and
                    // what it is cannot be told until a snapshot shows it.
                    if object.operation != Operation::Create && !catalog.knows(&name) {
                        self.incomplete = true;
                        return Err(Refusal::denied(&format!(
                            "{name} is not in the gateway's catalog yet (a relation created moments ago, \
                             in the open transaction, or a temporary one), so what it reads cannot be \
                             checked, and masks or row filters apply to this session; commit first, or \
                             try again in a moment"
                        )));
                    }
                    if let Some(why) = self.refused_views.get(&name) {
                        return Err(Refusal::denied(why));
                    }
                }
                _ => {}
            }
        }
        let relations: Vec<QualifiedName> = objects()
            .filter(|o| o.kind == ObjectKind::Relation)
            .map(|o| QualifiedName {
                schema: o.schema.clone(),
                name: o.name.clone(),
            })
            .collect();
        if !touches_protected(relations.iter(), self) {
            return Ok(Masked::untouched());
        }
        let rewritten = rewrite(sql, path, session_user, catalog.as_ref(), self)
            .map_err(|e| Refusal::denied(&e.to_string()))?;
        let applied = rewritten
            .applied
            .iter()
            .flat_map(|a| {
                let masks = a.masked.iter().map(move |(column, rule)| {
                    (
                        a.statement,
                        format!("{}.{column} masked by {rule}", a.relation),
                    )
                });
                let filters = a
                    .row_filters
                    .iter()
                    .map(move |rule| (a.statement, format!("{} filtered by {rule}", a.relation)));
                masks.chain(filters)
            })
            .collect();
        Ok(Masked {
            sql: rewritten.sql,
            applied,
            touched: true,
        })
    }
}

impl Resolved {
    /// Refuses `sql` when it uses an operator defined outside `pg_catalog` (its function may read
    /// protected data the rewriter cannot see), or names a type whose domain check or cast runs such a
    /// function. An unqualified name is refused when a schema on the path defines one of that name
    /// (PostgreSQL picks among operators by argument types).
    fn check_implicit_names(
        &self,
        session_user: &str,
        path: &SearchPath,
        sql: &str,
    ) -> Result<(), Refusal> {
        let names =
            portcullis_sql::implicit_names(sql).map_err(|e| Refusal::denied(&e.to_string()))?;
        for operator in names.operators {
            let defined = self.catalog.untrusted_operator_schemas(&operator.name);
            // A qualified operator outside the trusted schemas is refused even when the snapshot lacks
            // it: it may have been created since.
            let schema = match &operator.schema {
                Some(schema) if !TRUSTED_FUNCTION_SCHEMAS.contains(&schema.as_str()) => {
                    Some(schema.as_str())
                }
                Some(_) => None,
                None => path
                    .schemas(session_user)
                    .find(|s| defined.iter().any(|d| d == s)),
            };
            if let Some(schema) = schema {
                return Err(Refusal::denied(&format!(
                    "operator {} in schema {schema} runs a function that may read protected data the \
                     gateway cannot mask, and masks or row filters apply to this session",
                    operator.name
                )));
            }
        }
        for ty in names.types {
            let defined = self.catalog.risky_type_schemas(&ty.name);
            let schema = match &ty.schema {
                Some(schema) => Some(schema.as_str()),
                None => path
                    .schemas(session_user)
                    .find(|s| defined.iter().any(|(d, _)| d == s)),
            };
            if let Some((schema, why)) = schema.and_then(|s| defined.iter().find(|(d, _)| d == s)) {
                return Err(Refusal::denied(&format!(
                    "type {schema}.{} runs code the statement does not name ({why}), which may read \
                     protected data the gateway cannot mask, and masks or row filters apply to this \
                     session",
                    ty.name
                )));
            }
        }
        Ok(())
    }
}

/// Whether `operation` changes an object's definition: DDL, which fires event triggers.
fn is_ddl(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::Create | Operation::Alter | Operation::Drop | Operation::Grant
    )
}

/// Resolves the protections against every relation of the catalog: each protected relation, each
/// inheritance child or partition of one (protected like its parent), and each view reading one.
fn resolve(
    protections: SessionProtections,
    version: Option<i64>,
    catalog: &Arc<CatalogSnapshot>,
) -> Resolved {
    let mut relations = HashMap::new();
    let mut expand = HashMap::new();
    let mut refused_views = HashMap::new();
    if !protections.is_empty() {
        for relation in catalog.relations_with_columns() {
            let columns = catalog.columns(relation).unwrap_or_default();
            // A child or partition is protected by its own rules and by every ancestor's: the parent's
            // rules are meant for its rows, wherever they are stored.
            let mut merged = RelationProtection::default();
            for named in std::iter::once(relation).chain(catalog.ancestors(relation)) {
                if !protections.may_protect(named) {
                    continue;
                }
                // A column added after the snapshot could be one a rule selects: read the relation only
                // through the columns the snapshot lists, whether or not one of them is protected now.
                merged.pinned = true;
                if let Some(protection) = protections.protection_for(named, columns) {
                    merge(&mut merged, protection);
                }
            }
            if !merged.is_empty() {
                relations.insert(relation.clone(), merged);
            }
        }
        refused_views = views_to_refuse(catalog, &relations);
        for (view, bases) in catalog.view_bases() {
            if refused_views.contains_key(view) {
                continue;
            }
            if !bases.iter().any(|b| relations.contains_key(*b)) {
                continue;
            }
            match catalog.view_definition(view) {
                Some(definition) => {
                    expand.insert(view.clone(), definition.clone());
                }
                None => {
                    let why = format!(
                        "the gateway has not read the definition of view {view}, which reads a protected \
                         relation; try again in a minute"
                    );
                    refused_views.insert(view.clone(), why);
                }
            }
        }
    }
    Resolved {
        version,
        catalog: Arc::clone(catalog),
        valid_until: protections.valid_until(),
        protections,
        relations,
        expand,
        refused_views,
        incomplete: false,
        rewrites: HashMap::new(),
    }
}

/// The views and materialised views a protected session may not read, with why: a materialised view's rows
/// are a copy of a protected relation's, which no rewrite of the query can mask; a function outside
/// `pg_catalog` may read protected data from its body; and some catalog views show column values. A view
/// is refused too when anything it reads (through other views) is.
fn views_to_refuse(
    catalog: &CatalogSnapshot,
    protected: &HashMap<QualifiedName, RelationProtection>,
) -> HashMap<QualifiedName, String> {
    let mut refused = HashMap::new();
    for (view, bases) in catalog.view_bases() {
        let reads = std::iter::once(view).chain(bases.iter().copied());
        let why = if let Some(function) = reads
            .flat_map(|v| catalog.view_calls(v))
            .find(|f| !TRUSTED_FUNCTION_SCHEMAS.contains(&f.schema.as_str()))
        {
            format!(
                "view {view} calls function {function}, which may read protected data the gateway cannot \
                 mask, and masks or row filters apply to this session"
            )
        } else if let Some(revealing) = bases.iter().find(|b| is_revealing(b)) {
            format!(
                "view {view} reads {revealing}, which shows column values or statement texts, and masks or \
                 row filters apply to this session"
            )
        } else if let Some(base) = bases.iter().find(|b| protected.contains_key(**b)) {
            match std::iter::once(view)
                .chain(bases.iter().copied())
                .find(|v| catalog.is_materialized(v))
            {
                Some(copy) => format!(
                    "materialised view {copy} holds a copy of protected relation {base}'s rows, which the \
                     gateway cannot mask; query {base} instead"
                ),
                None => continue,
            }
        } else {
            continue;
        };
        refused.insert(view.clone(), why);
    }
    refused
}

/// Whether `relation` is a catalog view that shows column values or statement texts.
fn is_revealing(relation: &QualifiedName) -> bool {
    relation.schema == "pg_catalog" && REVEALING_VIEWS.contains(&relation.name.as_str())
}

/// Adds `more` to `into`: a column already masked keeps its mask; filters and denied columns add up.
fn merge(into: &mut RelationProtection, more: RelationProtection) {
    for mask in more.masks {
        if !into.masks.iter().any(|m| m.column == mask.column) {
            into.masks.push(mask);
        }
    }
    for filter in more.row_filters {
        if !into.row_filters.contains(&filter) {
            into.row_filters.push(filter);
        }
    }
    for denied in more.denied_columns {
        if !into.denied_columns.contains(&denied) {
            into.denied_columns.push(denied);
        }
    }
}

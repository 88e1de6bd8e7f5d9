//! SQL analysis for the Portcullis gateway, with PostgreSQL's own grammar (libpg_query).
//!
//! [`Analyzer::analyze`] turns a query text into an [`Analysis`]: for every statement its **statement
//! component** ([`StatementKind`]) and its **object components** ([`ObjectAccess`]: object, kind, operation,
//! columns), plus the session state it changes ([`SessionEffect`]). Object names are reported as written;
//! [`resolve`] qualifies them against a session's [`SearchPath`] and a [`Catalog`].
//!
//! The analyser fails closed: whatever it cannot attribute to objects (DO blocks, COPY to server files,
//! identity changes, statement types it does not know) makes the statement opaque
//! ([`Statement::opaque`]), and the gateway denies opaque statements. Parse errors are errors. No input
//! makes it panic.
//!
//! ```
//! use portcullis_sql::{Analyzer, Operation, StatementKind};
//! let analyzer = Analyzer::new(1024);
//! let analysis = analyzer.analyze("SELECT * FROM hr.employees e JOIN hr.departments d USING (dept_id)").unwrap();
//! let stmt = &analysis.statements[0];
//! assert_eq!(stmt.kind, StatementKind::Select);
//! assert_eq!(stmt.objects.len(), 2);
//! assert!(stmt.objects.iter().all(|o| o.operation == Operation::Read));
//! ```

mod analysis;
pub mod builtins;
mod cache;
mod ddl;
#[rustfmt::skip]
mod children;
mod error;
mod implicit;
mod kind;
mod lexical;
pub mod mask;
mod parse;
mod resolve;
mod settings;
mod shape;
mod statements;
mod walker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use analysis::{Analysis, ObjectAccess, ObjectName, SessionEffect, Statement};
pub use error::AnalysisError;
pub use implicit::{implicit_names, ImplicitNames};
pub use kind::{ObjectKind, Operation, StatementKind};
pub use lexical::backslash_in_plain_string;
pub use resolve::{quote_ident, resolve, Catalog, MemoryCatalog, QualifiedName, SearchPath};
pub use settings::{setting_class, setting_object, SettingClass};
pub use statements::{leading_justification, JUSTIFICATION_SETTING};

/// Default limit on the length of a query text the analyser accepts.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 16 * 1024 * 1024;

/// Texts longer than this are analysed every time rather than cached, so the cache's memory stays bounded.
const MAX_CACHED_QUERY_BYTES: usize = 64 * 1024;

/// Analyses query texts, caching the result per distinct text. Cheap to share across sessions (`Send + Sync`).
pub struct Analyzer {
    cache: cache::AnalysisCache,
    shapes: cache::AnalysisCache,
    parses: AtomicU64,
    max_query_bytes: usize,
}

impl Analyzer {
    /// An analyser caching up to about `cache_capacity` distinct texts (0 disables the cache).
    pub fn new(cache_capacity: usize) -> Self {
        Self {
            cache: cache::AnalysisCache::new(cache_capacity),
            shapes: cache::AnalysisCache::new(cache_capacity),
            parses: AtomicU64::new(0),
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
        }
    }

    /// Sets the longest text accepted; longer ones fail with [`AnalysisError::TooLarge`].
    pub fn with_max_query_bytes(mut self, max: usize) -> Self {
        self.max_query_bytes = max;
        self
    }

    /// Analyses `sql`. The text is parsed once; repeated calls with the same text are a hash lookup, and
    /// plain DML that differs only in its constants shares one analysis (see the `shape` module).
    pub fn analyze(&self, sql: &str) -> Result<Arc<Analysis>, AnalysisError> {
        if sql.len() > self.max_query_bytes {
            return Err(AnalysisError::TooLarge);
        }
        if let Some(hit) = self.cache.get(sql) {
            return Ok(hit);
        }
        let cacheable = sql.len() <= MAX_CACHED_QUERY_BYTES;
        let shape = cacheable.then(|| shape::shape_key(sql)).flatten();
        if let Some(template) = shape.as_deref().and_then(|key| self.shapes.get(key)) {
            return Ok(Arc::new(shape::with_text(&template, sql)));
        }
        self.parses.fetch_add(1, Ordering::Relaxed);
        let analysis = Arc::new(analyze_uncached(sql)?);
        if cacheable {
            self.cache.insert(sql, Arc::clone(&analysis));
        }
        if let Some(key) = shape.filter(|_| shape::shareable(&analysis, sql)) {
            self.shapes.insert(&key, Arc::clone(&analysis));
        }
        Ok(analysis)
    }

    /// How many texts this analyser has parsed (cache misses), for metrics and tests.
    pub fn parse_count(&self) -> u64 {
        self.parses.load(Ordering::Relaxed)
    }
}

/// Parses and analyses `sql` without any cache.
pub fn analyze_uncached(sql: &str) -> Result<Analysis, AnalysisError> {
    let tree = parse::parse(sql)?;
    let mut statements = Vec::with_capacity(tree.stmts.len());
    for raw in &tree.stmts {
        let (location, text) = statement_text(sql, raw.stmt_location, raw.stmt_len);
        let node = raw.stmt.as_ref().and_then(|n| n.node.as_ref());
        statements.push(statements::analyze_statement(node, text, location));
    }
    Ok(Analysis { statements })
}

/// The statement's own text: `len` bytes from `location` (0 = to the end), without surrounding whitespace.
fn statement_text(sql: &str, location: i32, len: i32) -> (usize, String) {
    let start = usize::try_from(location).unwrap_or(0).min(sql.len());
    let end = match usize::try_from(len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(n) => start.saturating_add(n).min(sql.len()),
    };
    let raw = sql.get(start..end).unwrap_or(sql);
    let trimmed_start = raw.len() - raw.trim_start().len();
    (start + trimmed_start, raw.trim().to_owned())
}

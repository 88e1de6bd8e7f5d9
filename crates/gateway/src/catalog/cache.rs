//! One catalog snapshot per resource, shared by all its sessions and read on the gateway's own upstream
//! connection. Never inside a client's session: there the query's locks would be held until the client's
//! transaction ends, and its failure (a concurrent drop, a `lock_timeout`, a `statement_timeout`) would
//! abort the client's transaction behind its back. One read runs at a time per resource; a session that
//! needs a newer snapshot than the one it has waits for the read in flight or starts one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_sql::QualifiedName;
use portcullis_store::Resource;
use tokio::sync::Mutex as AsyncMutex;

use super::{catalog_row, snapshot_query_without_definitions, CatalogSnapshot, SNAPSHOT_QUERY};
use crate::error::GatewayError;
use crate::upstream::{self, Upstream};

/// How often a read that failed on the server (e.g. a relation dropped while it ran) is tried again.
const READ_ATTEMPTS: usize = 3;
/// How long the reader waits for a lock (`pg_get_viewdef` locks what a view reads, and a migration may
/// hold such a lock for minutes): sessions waiting for a snapshot must not wait for the migration.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
/// After a read failed, sessions go on with the snapshots they have for this long before one tries
/// again, rather than each waiting for a read that is likely to fail the same way.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The gateway's own connection: named so a DBA can tell it apart, JIT off (compiling the snapshot
/// query costs seconds and saves nothing), bounded waits, read-only, and a search path of `pg_catalog`
/// alone so that view definitions come back with every other name qualified.
fn reader_options(timeout: Duration) -> Vec<(String, String)> {
    let ms = timeout.as_millis().max(1);
    let lock_ms = LOCK_TIMEOUT.min(timeout).as_millis().max(1);
    vec![
        ("application_name".into(), "portcullis catalog".into()),
        (
            "options".into(),
            format!(
                "-c jit=off -c statement_timeout={ms} -c lock_timeout={lock_ms} \
                 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=on \
                 -c search_path=pg_catalog"
            ),
        ),
    ]
}

/// The snapshots of every resource of a gateway.
pub struct CatalogCache {
    ttl: Duration,
    timeout: Duration,
    resources: Mutex<HashMap<String, CatalogHandle>>,
}

impl CatalogCache {
    /// An empty cache whose snapshots are trusted for `ttl` and read within `timeout`.
    pub fn new(ttl: Duration, timeout: Duration) -> Self {
        CatalogCache {
            ttl,
            timeout,
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// The catalog of the resource named `resource`, shared by its sessions.
    pub fn handle(&self, resource: &str) -> CatalogHandle {
        let mut resources = self.resources.lock().unwrap_or_else(|p| p.into_inner());
        resources
            .entry(resource.to_owned())
            .or_insert_with(|| {
                CatalogHandle(Arc::new(ResourceCatalog {
                    ttl: self.ttl,
                    timeout: self.timeout,
                    generation: AtomicU64::new(0),
                    latest: Mutex::new(None),
                    failed_at: Mutex::new(None),
                    functions: Mutex::new((0, HashMap::new())),
                    reader: AsyncMutex::new(None),
                }))
            })
            .clone()
    }
}

/// One resource's catalog: its latest snapshot and the connection that reads it.
#[derive(Clone)]
pub struct CatalogHandle(Arc<ResourceCatalog>);

struct ResourceCatalog {
    ttl: Duration,
    timeout: Duration,
    /// Counts the DDL transactions sessions saw end: a snapshot that began before the last one may
    /// lack what it did.
    generation: AtomicU64,
    latest: Mutex<Option<Arc<CatalogSnapshot>>>,
    /// When the last read failed, if the one after it has not succeeded.
    failed_at: Mutex<Option<Instant>>,
    /// Functions' names by OID, as fast-path calls name them, for the change count they were read at.
    functions: Mutex<(u64, HashMap<u32, Option<QualifiedName>>)>,
    /// Held while a read runs (so one runs at a time), with the connection reads use.
    reader: AsyncMutex<Option<Upstream>>,
}

impl CatalogHandle {
    /// Records that a transaction that ran DDL ended: later decisions need a snapshot read after it.
    pub fn changed(&self) {
        self.0.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether `snapshot` may still be used: younger than the TTL (or, lacking view definitions, than
    /// the wait before a read is tried again), and begun after the last DDL a session saw end. Cheap
    /// enough for every statement.
    pub fn is_current(&self, snapshot: &CatalogSnapshot) -> bool {
        let ttl = match snapshot.complete {
            true => self.0.ttl,
            false => self.0.ttl.min(RETRY_AFTER),
        };
        snapshot.generation >= self.0.generation.load(Ordering::Acquire)
            && snapshot.began.elapsed() < ttl
    }

    /// A current snapshot that began no earlier than `since`: the latest one if it will do, else one read
    /// now (or by the read already running, when that one will do).
    pub async fn snapshot(
        &self,
        resource: &Resource,
        since: Option<Instant>,
    ) -> Result<Arc<CatalogSnapshot>, GatewayError> {
        let fits = |s: &CatalogSnapshot| self.is_current(s) && since.is_none_or(|t| s.began >= t);
        if let Some(latest) = self.latest().filter(|s| fits(s)) {
            return Ok(latest);
        }
        let mut reader = self.0.reader.lock().await;
        // A read that finished while this one waited may do.
        if let Some(latest) = self.latest().filter(|s| fits(s)) {
            return Ok(latest);
        }
        let failed_at = *self.0.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return Err(GatewayError::Upstream(
                "the last attempt to read the catalog failed moments ago".into(),
            ));
        }
        let read = tokio::time::timeout(self.0.timeout, self.read(&mut reader, resource)).await;
        let read = match read {
            Ok(read) => read,
            Err(_) => {
                // The connection may be mid-query: a later read starts on a new one.
                *reader = None;
                Err(GatewayError::Upstream(format!(
                    "reading the catalog took longer than {} s",
                    self.0.timeout.as_secs_f32()
                )))
            }
        };
        *self.0.failed_at.lock().unwrap_or_else(|p| p.into_inner()) =
            read.is_err().then(Instant::now);
        let snapshot = Arc::new(read?);
        *self.0.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// The last snapshot read, however old.
    pub fn latest(&self) -> Option<Arc<CatalogSnapshot>> {
        self.0
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The schema and name of the function whose OID is `oid` (`None` when there is none), as a fast-path
    /// call names it; asked on the reader's connection, and kept until DDL changes the catalog.
    pub async fn function_name(
        &self,
        resource: &Resource,
        oid: u32,
    ) -> Result<Option<QualifiedName>, GatewayError> {
        let generation = self.0.generation.load(Ordering::Acquire);
        {
            let known = self.0.functions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(name) = known.1.get(&oid).filter(|_| known.0 == generation) {
                return Ok(name.clone());
            }
        }
        let sql = format!(
            "SELECT n.nspname, p.proname FROM pg_catalog.pg_proc p \
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = {oid}"
        );
        let mut reader = self.0.reader.lock().await;
        let asked = async {
            let connection = self.connection(&mut reader, resource).await?;
            upstream::simple_query_rows(connection, &sql).await
        };
        let rows = match tokio::time::timeout(self.0.timeout, asked).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                if !matches!(e, GatewayError::QueryFailed(_)) {
                    *reader = None;
                }
                return Err(e);
            }
            Err(_) => {
                *reader = None;
                return Err(GatewayError::Upstream(
                    "the function's name was not read in time".into(),
                ));
            }
        };
        let name = rows.into_iter().next().and_then(|row| {
            let mut columns = row.into_iter();
            Some(QualifiedName {
                schema: columns.next()??,
                name: columns.next()??,
            })
        });
        let mut known = self.0.functions.lock().unwrap_or_else(|p| p.into_inner());
        if known.0 != generation {
            *known = (generation, HashMap::new());
        }
        known.1.insert(oid, name.clone());
        Ok(name)
    }

    /// The reader's connection, opened when there is none (or the last one broke).
    async fn connection<'r>(
        &self,
        reader: &'r mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<&'r mut Upstream, GatewayError> {
        Ok(match reader {
            Some(connection) => connection,
            None => {
                reader.insert(upstream::connect(resource, &reader_options(self.0.timeout)).await?)
            }
        })
    }

    /// Runs the snapshot query on the reader's connection, opening one when there is none or the last
    /// one broke, and tries again when the server fails the query: then without view definitions, whose
    /// locks are the likely cause (a relation a view reads locked, or dropped, meanwhile).
    async fn read(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<CatalogSnapshot, GatewayError> {
        let mut last = None;
        let without_definitions = snapshot_query_without_definitions();
        for attempt in 0..READ_ATTEMPTS {
            let query = match attempt {
                0 => SNAPSHOT_QUERY,
                _ => without_definitions.as_str(),
            };
            let connection = self.connection(reader, resource).await?;
            // Taken before the query starts: DDL that ends after this may or may not be in the rows, and
            // its `changed` makes the snapshot stale.
            let generation = self.0.generation.load(Ordering::Acquire);
            let began = Instant::now();
            match upstream::simple_query_rows(connection, query).await {
                Ok(rows) => {
                    let rows = rows.into_iter().filter_map(catalog_row);
                    return Ok(CatalogSnapshot::read(rows, began, generation));
                }
                Err(e) => {
                    // A query the server failed leaves the connection usable; anything else does not.
                    if !matches!(e, GatewayError::QueryFailed(_)) {
                        *reader = None;
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| GatewayError::Upstream("the catalog was not read".into())))
    }
}

//! One catalog snapshot per resource, shared by all its sessions and read on the gateway's own upstream
//! connection. Never inside a client's session: there the query's locks would be held until the client's
//! transaction ends, and its failure (a concurrent drop, a `lock_timeout`, a `statement_timeout`) would
//! abort the client's transaction behind its back. One read runs at a time per resource; a session that
//! needs a newer snapshot than the one it has waits for the read in flight or starts one.
//!
//! DDL made through the gateway is recorded with the names of the objects it changed. A session waits
//! for a snapshot newer than its own only when the statement it is deciding names one of them (or when
//! what changed is unknown: DDL the gateway cannot name, or made elsewhere); the other sessions go on
//! with the snapshot they have while a refresh runs in the background, no sooner than [`SPACING`] times
//! the last read's duration after it, so a migration's DDL does not keep the upstream reading its catalog.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_sql::QualifiedName;
use portcullis_store::Resource;
use tokio::sync::Mutex as AsyncMutex;

use super::changes::{self, delta_query, digest_query, Digest, Plan};
use super::{
    catalog_row, fingerprint_query, snapshot_query_without_definitions, CatalogSnapshot,
    SNAPSHOT_QUERY,
};
use crate::error::GatewayError;
use crate::upstream::{self, Upstream};

/// How often a read that failed on the server (e.g. a relation dropped while it ran) is tried again.
const READ_ATTEMPTS: usize = 3;
/// How long the reader waits for a lock (`pg_get_viewdef` locks what a view reads, and a migration may
/// hold such a lock for minutes): sessions waiting for a snapshot must not wait for the migration.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the gateway asks whether the catalog changed behind its back (DDL not made through it),
/// while sessions of the resource are open…
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// …or, on a catalog so large that a check takes longer than a fiftieth of that, this many times the
/// last check's time: checking costs the upstream at most 2 % of one core.
const CHECK_SHARE: u32 = 50;
/// A background refresh starts no sooner than this many times the last read's duration after that read
/// ended: reading the catalog then takes at most a twentieth of one upstream core however much DDL runs.
/// A session whose statement needs the refresh still starts it at once.
const SPACING: u32 = 20;
/// Changes remembered by name; a session whose snapshot is older than the oldest waits as for an unknown
/// change.
const REMEMBERED_CHANGES: usize = 4096;
/// After a read failed, sessions go on with the snapshots they have for this long before one tries
/// again, rather than each waiting for a read that is likely to fail the same way.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The gateway's own connection: named so a DBA can tell it apart, JIT off (compiling the snapshot
/// query costs seconds and saves nothing), enough `work_mem` that its sorts and hashes stay in memory, bounded waits, read-only, and a search path of `pg_catalog`
/// alone so that view definitions come back with every other name qualified.
fn reader_options(timeout: Duration) -> Vec<(String, String)> {
    let ms = timeout.as_millis().max(1);
    let lock_ms = LOCK_TIMEOUT.min(timeout).as_millis().max(1);
    vec![
        ("application_name".into(), "portcullis catalog".into()),
        (
            "options".into(),
            format!(
                "-c jit=off -c work_mem=64MB -c statement_timeout={ms} -c lock_timeout={lock_ms} \
                 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=on \
                 -c search_path=pg_catalog"
            ),
        ),
    ]
}

/// A function as a fast-path call names it: by OID, which is one overload.
#[derive(Debug, Clone)]
pub struct FunctionByOid {
    /// Its schema and name.
    pub name: QualifiedName,
    /// How many arguments it takes (the overload: some built-ins differ by it in what they do).
    pub args: u16,
}

/// What DDL changed in the catalog.
#[derive(Debug, Clone)]
pub enum Changed {
    /// The objects of these names (and schemas of these names), in any schema.
    Names(HashSet<String>),
    /// Anything: DDL the gateway cannot name, or a change made elsewhere.
    Unknown,
}

/// What a session needs of a snapshot beyond being current: that it include the change counted
/// `generation`, and that it began after `since`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    /// The resource's change count it must have been read at (or after).
    pub generation: u64,
    /// A moment it must have begun after.
    pub since: Option<Instant>,
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
                    changes: Mutex::new(Changes::default()),
                    named_since_check: AtomicBool::new(false),
                    last_read: Mutex::new(None),
                    refresh_scheduled: AtomicBool::new(false),
                    resource: Mutex::new(None),
                    latest: Mutex::new(None),
                    failed_at: Mutex::new(None),
                    functions: Mutex::new((0, HashMap::new())),
                    fingerprint: Mutex::new(None),
                    watched: AtomicBool::new(false),
                    reader: AsyncMutex::new(None),
                }))
            })
            .clone()
    }
}

/// The changes a resource's latest snapshots may lack.
#[derive(Default)]
struct Changes {
    /// Each change's count, and what it changed (`None`: unknown).
    recent: VecDeque<(u64, Option<Arc<HashSet<String>>>)>,
    /// The count of the last change no longer in `recent`.
    forgotten: u64,
    /// The count of the last unknown change.
    unknown: u64,
}

/// One resource's catalog: its latest snapshot and the connection that reads it.
#[derive(Clone)]
pub struct CatalogHandle(Arc<ResourceCatalog>);

struct ResourceCatalog {
    ttl: Duration,
    timeout: Duration,
    /// Counts the DDL transactions sessions saw end (and changes the fingerprint showed): a snapshot
    /// that began before the last one may lack what it did.
    generation: AtomicU64,
    /// What each change counted in `generation` changed, for the last few.
    changes: Mutex<Changes>,
    /// A change was recorded by name since the fingerprint was last taken: a moved fingerprint may be
    /// its doing.
    named_since_check: AtomicBool,
    /// When the last read ended and how long it took: background refreshes are spaced by it.
    last_read: Mutex<Option<(Instant, Duration)>>,
    /// A background refresh is scheduled.
    refresh_scheduled: AtomicBool,
    /// The resource, once a session logged in: what background refreshes connect to.
    resource: Mutex<Option<Resource>>,
    latest: Mutex<Option<Arc<CatalogSnapshot>>>,
    /// When the last read failed, if the one after it has not succeeded.
    failed_at: Mutex<Option<Instant>>,
    /// The catalog's fingerprint when it was last checked (or read).
    fingerprint: Mutex<Option<String>>,
    /// A task checks the fingerprint.
    watched: AtomicBool,
    /// Functions by OID, as fast-path calls name them, for the change count they were read at.
    functions: Mutex<(u64, HashMap<u32, Option<FunctionByOid>>)>,
    /// Held while a read runs (so one runs at a time), with the connection reads use.
    reader: AsyncMutex<Option<Upstream>>,
}

impl CatalogHandle {
    /// Records that a transaction that ran DDL ended, or that the catalog changed elsewhere: decisions
    /// that depend on what changed need a snapshot read after it. A change by name is read in the
    /// background; sessions whose statements name it wait for that read.
    pub fn changed(&self, what: Changed) {
        let named = match what {
            Changed::Names(names) => Some(Arc::new(names)),
            Changed::Unknown => None,
        };
        let is_named = named.is_some();
        {
            let mut changes = self.0.changes.lock().unwrap_or_else(|p| p.into_inner());
            let generation = self.0.generation.fetch_add(1, Ordering::AcqRel) + 1;
            if !is_named {
                changes.unknown = generation;
            }
            changes.recent.push_back((generation, named));
            while changes.recent.len() > REMEMBERED_CHANGES {
                if let Some((old, _)) = changes.recent.pop_front() {
                    changes.forgotten = old;
                }
            }
        }
        if is_named {
            self.0.named_since_check.store(true, Ordering::Release);
        }
        self.refresh_later();
    }

    /// Whether any change was recorded after `snapshot` was read: one atomic load, so a statement
    /// pays for working out its dependencies only when there is something to depend on.
    pub fn changed_since(&self, snapshot: &CatalogSnapshot) -> bool {
        snapshot.generation < self.0.generation.load(Ordering::Acquire)
    }

    /// The change count a snapshot must have been read at for a statement whose decision reads the
    /// catalog's entries for the names `depends_on` accepts (and, with `any_name`, for a statement that
    /// names anything at all, what an unknown change may have changed): `None` when `snapshot` lacks no
    /// such change.
    pub fn needed_for(
        &self,
        snapshot: &CatalogSnapshot,
        any_name: bool,
        depends_on: impl Fn(&str) -> bool,
    ) -> Option<u64> {
        if !self.changed_since(snapshot) {
            return None;
        }
        let changes = self.0.changes.lock().unwrap_or_else(|p| p.into_inner());
        let mut needed = None;
        if snapshot.generation < changes.forgotten && any_name {
            needed = Some(self.0.generation.load(Ordering::Acquire));
        }
        for (generation, names) in changes.recent.iter().rev() {
            if *generation <= snapshot.generation {
                break;
            }
            let depends = match names {
                Some(names) => names.iter().any(|n| depends_on(n)),
                None => any_name,
            };
            if depends {
                needed = needed.max(Some(*generation));
            }
        }
        needed
    }

    /// Starts a background read of the catalog, unless one is scheduled: no sooner than [`SPACING`]
    /// times the last read's duration after it ended.
    fn refresh_later(&self) {
        let Some(resource) = self
            .0
            .resource
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        if self.0.refresh_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let handle = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(handle.spacing_left()).await;
                let mut reader = handle.0.reader.lock().await;
                // A read may have ended while this one waited: space from it.
                if !handle.spacing_left().is_zero() {
                    continue;
                }
                // Changes from here on schedule another.
                handle.0.refresh_scheduled.store(false, Ordering::Release);
                let need = Need {
                    generation: handle.0.generation.load(Ordering::Acquire),
                    since: None,
                };
                if handle.latest().is_some_and(|s| handle.is_current(&s, need)) {
                    return;
                }
                if let Err(e) = handle.read_locked(&mut reader, &resource).await {
                    tracing::warn!(error = %e, resource = %resource.info.name, "catalog not read in the background");
                }
                return;
            }
        });
    }

    /// How long until a background read may start.
    fn spacing_left(&self) -> Duration {
        let last = *self.0.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.map_or(Duration::ZERO, |(ended, took)| {
            (ended + took * SPACING).saturating_duration_since(Instant::now())
        })
    }

    /// Checks every few seconds, while any session of the resource is open, whether DDL made anywhere
    /// changed the catalog; when it did, sessions read it again before their next statement.
    pub fn watch(&self, resource: &Resource) {
        *self.0.resource.lock().unwrap_or_else(|p| p.into_inner()) = Some(resource.clone());
        if self.0.watched.swap(true, Ordering::AcqRel) {
            return;
        }
        let (handle, resource) = (self.clone(), resource.clone());
        tokio::spawn(async move {
            let mut wait = CHECK_EVERY;
            // Held by the cache and by this task alone: no session is open.
            while Arc::strong_count(&handle.0) > 2 {
                tokio::time::sleep(wait).await;
                let started = Instant::now();
                if let Err(e) = handle.check(&resource).await {
                    tracing::warn!(error = %e, resource = %resource.info.name, "catalog check failed");
                    break;
                }
                wait = CHECK_EVERY.max(started.elapsed() * CHECK_SHARE);
            }
            handle.0.watched.store(false, Ordering::Release);
        });
    }

    /// Compares the catalog's fingerprint with the last one, marking the catalog changed when it differs.
    async fn check(&self, resource: &Resource) -> Result<(), GatewayError> {
        let mut reader = self.0.reader.lock().await;
        let named = self.0.named_since_check.swap(false, Ordering::AcqRel);
        let fingerprint = match self.fingerprint(&mut reader, resource).await {
            Ok(fingerprint) => fingerprint,
            // The server failed the query; the next check asks again.
            Err(GatewayError::QueryFailed(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let moved = {
            let mut last = self.0.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
            let moved = last.as_ref().is_some_and(|last| *last != fingerprint);
            *last = Some(fingerprint);
            moved
        };
        drop(reader);
        // DDL through the gateway since the last check explains a move, and its names are recorded (a
        // background read, already scheduled, brings in whatever else changed); otherwise the change is
        // unknown and every statement naming anything waits for a read.
        if moved && !named {
            self.changed(Changed::Unknown);
        }
        Ok(())
    }

    /// The catalog's fingerprint.
    async fn fingerprint(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<String, GatewayError> {
        let rows = self.ask(reader, resource, &fingerprint_query()).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
            .unwrap_or_default())
    }

    /// Runs `sql` on the reader's connection within the timeout, opening the connection when there is
    /// none; a connection that broke or timed out is dropped, one whose query the server failed is kept.
    async fn ask(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, GatewayError> {
        let asked = async {
            let connection = match reader.as_mut() {
                Some(connection) => connection,
                None => reader
                    .insert(upstream::connect(resource, &reader_options(self.0.timeout)).await?),
            };
            upstream::simple_query_rows(connection, sql).await
        };
        match tokio::time::timeout(self.0.timeout, asked).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                if !matches!(e, GatewayError::QueryFailed(_)) {
                    *reader = None;
                }
                Err(e)
            }
            Err(_) => {
                *reader = None;
                Err(GatewayError::Upstream(format!(
                    "the catalog query took longer than {} s",
                    self.0.timeout.as_secs_f32()
                )))
            }
        }
    }

    /// Whether `snapshot` may still be used: younger than the TTL (or, lacking view definitions, than
    /// the wait before a read is tried again), and read at or after the change count and the moment
    /// `need` gives. A snapshot that lacks changes the gateway knows by name is current for statements
    /// that do not name them (see [`needed_for`](Self::needed_for)). Cheap enough for every statement.
    pub fn is_current(&self, snapshot: &CatalogSnapshot, need: Need) -> bool {
        let ttl = match snapshot.complete {
            true => self.0.ttl,
            false => self.0.ttl.min(RETRY_AFTER),
        };
        snapshot.generation >= need.generation
            && snapshot.began.elapsed() < ttl
            && need.since.is_none_or(|t| snapshot.began >= t)
    }

    /// A current snapshot that meets `need`: the latest one if it will do, else one read now (or by the
    /// read already running, when that one will do). Waiting for the read in flight and the read itself
    /// take no longer than the catalog timeout together.
    pub async fn snapshot(
        &self,
        resource: &Resource,
        need: Need,
    ) -> Result<Arc<CatalogSnapshot>, GatewayError> {
        let fits = |s: &CatalogSnapshot| self.is_current(s, need);
        if let Some(latest) = self.latest().filter(|s| fits(s)) {
            return Ok(latest);
        }
        let waited = tokio::time::timeout(self.0.timeout, async {
            let mut reader = self.0.reader.lock().await;
            // A read that finished while this one waited may do.
            if let Some(latest) = self.latest().filter(|s| fits(s)) {
                return Ok(latest);
            }
            self.read_locked(&mut reader, resource).await
        })
        .await;
        waited.unwrap_or_else(|_| {
            Err(GatewayError::Upstream(format!(
                "reading the catalog took longer than {} s",
                self.0.timeout.as_secs_f32()
            )))
        })
    }

    /// Reads the catalog with the reader's lock held, unless a read failed moments ago, and makes the
    /// snapshot the latest.
    async fn read_locked(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<Arc<CatalogSnapshot>, GatewayError> {
        let failed_at = *self.0.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return Err(GatewayError::Upstream(
                "the last attempt to read the catalog failed moments ago".into(),
            ));
        }
        let started = Instant::now();
        let read = tokio::time::timeout(self.0.timeout, self.read(reader, resource)).await;
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
        tracing::debug!(
            resource = %resource.info.name,
            incremental = snapshot.is_incremental(),
            took_ms = started.elapsed().as_millis() as u64,
            "catalog read"
        );
        *self.0.last_read.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), started.elapsed()));
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

    /// The function whose OID is `oid` (`None` when there is none), as a fast-path call names it; asked on
    /// the reader's connection, and kept until DDL changes the catalog.
    pub async fn function(
        &self,
        resource: &Resource,
        oid: u32,
    ) -> Result<Option<FunctionByOid>, GatewayError> {
        let generation = self.0.generation.load(Ordering::Acquire);
        {
            let known = self.0.functions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(function) = known.1.get(&oid).filter(|_| known.0 == generation) {
                return Ok(function.clone());
            }
        }
        let sql = format!(
            "SELECT n.nspname, p.proname, p.pronargs FROM pg_catalog.pg_proc p \
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = {oid}"
        );
        let mut reader = self.0.reader.lock().await;
        let rows = self.ask(&mut reader, resource, &sql).await?;
        let function = rows.into_iter().next().and_then(|row| {
            let mut columns = row.into_iter();
            let name = QualifiedName {
                schema: columns.next()??,
                name: columns.next()??,
            };
            let args = columns.next()??.parse().ok()?;
            Some(FunctionByOid { name, args })
        });
        let mut known = self.0.functions.lock().unwrap_or_else(|p| p.into_inner());
        if known.0 != generation {
            *known = (generation, HashMap::new());
        }
        known.1.insert(oid, function.clone());
        Ok(function)
    }

    /// Reads the catalog: only what changed since the latest snapshot when that can be worked out for
    /// sure (see [`changes`](super::changes)), else all of it.
    async fn read(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<CatalogSnapshot, GatewayError> {
        if let Some(base) = self.latest().filter(|s| s.can_build_on(self.0.ttl)) {
            match self.read_changes(reader, resource, &base).await {
                Ok(Some(snapshot)) => return Ok(snapshot),
                Ok(None) => {
                    tracing::debug!(resource = %resource.info.name, "catalog read in full: the changes could not be worked out")
                }
                Err(e) => {
                    tracing::debug!(error = %e, resource = %resource.info.name, "catalog read in full: the changes could not be read")
                }
            }
        }
        self.read_all(reader, resource).await
    }

    /// Opens a REPEATABLE READ transaction on the reader's connection: the queries in it see the catalog
    /// at one moment.
    async fn begin(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<(), GatewayError> {
        self.ask(
            reader,
            resource,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .await
        .map(drop)
    }

    /// Ends the transaction [`begin`](Self::begin) opened: committed after `outcome` succeeded, else
    /// rolled back (a connection that cannot roll back is dropped).
    async fn end<T>(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
        outcome: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        match outcome {
            Ok(value) => {
                self.ask(reader, resource, "COMMIT").await?;
                Ok(value)
            }
            Err(e) => {
                if reader.is_some() && self.ask(reader, resource, "ROLLBACK").await.is_err() {
                    *reader = None;
                }
                Err(e)
            }
        }
    }

    /// Reads only what changed since `base` was read; `None` when the digest cannot account for every
    /// change (then only a full read can be sure). The digest and the rows are read in one transaction,
    /// so the digest kept describes exactly what the rows hold.
    async fn read_changes(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
        base: &CatalogSnapshot,
    ) -> Result<Option<CatalogSnapshot>, GatewayError> {
        let Some(last) = base.digest() else {
            return Ok(None);
        };
        // Taken before the queries start, as in a full read.
        let generation = self.0.generation.load(Ordering::Acquire);
        self.0.named_since_check.store(false, Ordering::Release);
        let fingerprint = self.fingerprint(reader, resource).await?;
        let began = Instant::now();
        self.begin(reader, resource).await?;
        let read = async {
            let rows = self
                .ask(reader, resource, &digest_query(Some(last.horizon)))
                .await?;
            let Some(now) = Digest::parse(rows) else {
                return Ok(None);
            };
            let known = base.known_relations();
            let delta = match changes::plan(last, &known, &now, None) {
                Plan::Read(delta) => delta,
                Plan::Full => return Ok(None),
                Plan::List => {
                    let rows = self.ask(reader, resource, &digest_query(None)).await?;
                    let Some(listing) = Digest::parse(rows) else {
                        return Ok(None);
                    };
                    match changes::plan(last, &known, &now, Some(&listing)) {
                        Plan::Read(delta) => delta,
                        Plan::List | Plan::Full => return Ok(None),
                    }
                }
            };
            let rows = self
                .ask(reader, resource, &delta_query(&delta.dirty))
                .await?;
            Ok::<_, GatewayError>(Some((now, delta, rows)))
        }
        .await;
        let Some((mut now, mut delta, rows)) = self.end(reader, resource, read).await? else {
            return Ok(None);
        };
        // The next read compares with every relation's attached rows.
        now.counts = std::mem::take(&mut delta.counts);
        *self.0.fingerprint.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
        let rows = rows.into_iter().filter_map(catalog_row);
        Ok(Some(base.rebuilt(&delta, rows, began, generation, now)))
    }

    /// Runs the snapshot query on the reader's connection, opening one when there is none or the last
    /// one broke, and tries again when the server fails the query: then without view definitions, whose
    /// locks are the likely cause (a relation a view reads locked, or dropped, meanwhile). A digest is
    /// taken with the rows, for the next read to find what changed since.
    async fn read_all(
        &self,
        reader: &mut Option<Upstream>,
        resource: &Resource,
    ) -> Result<CatalogSnapshot, GatewayError> {
        let mut last = None;
        let without_definitions = snapshot_query_without_definitions();
        let digest_sql = digest_query(None);
        for attempt in 0..READ_ATTEMPTS {
            let query = match attempt {
                0 => SNAPSHOT_QUERY,
                _ => without_definitions.as_str(),
            };
            // Taken before the query starts: DDL that ends after this may or may not be in the rows, and
            // its `changed` (or the next check's fingerprint) makes the snapshot stale.
            let generation = self.0.generation.load(Ordering::Acquire);
            let read = async {
                self.0.named_since_check.store(false, Ordering::Release);
                let fingerprint = self.fingerprint(reader, resource).await?;
                let began = Instant::now();
                self.begin(reader, resource).await?;
                let rows = async {
                    // A server that cannot say (one older than PostgreSQL 13) is read in full each time.
                    let digest = match self.ask(reader, resource, &digest_sql).await {
                        Ok(rows) => Digest::parse(rows),
                        Err(GatewayError::QueryFailed(_)) => {
                            return Ok::<_, GatewayError>(None);
                        }
                        Err(e) => return Err(e),
                    };
                    Ok(Some((digest, self.ask(reader, resource, query).await?)))
                }
                .await;
                match self.end(reader, resource, rows).await? {
                    Some((digest, rows)) => {
                        Ok::<_, GatewayError>((fingerprint, began, digest, rows))
                    }
                    None => {
                        let rows = self.ask(reader, resource, query).await?;
                        Ok((fingerprint, began, None, rows))
                    }
                }
            };
            match read.await {
                Ok((fingerprint, began, digest, rows)) => {
                    *self.0.fingerprint.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(fingerprint);
                    let rows = rows.into_iter().filter_map(catalog_row);
                    return Ok(CatalogSnapshot::read(rows, began, generation, digest));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| GatewayError::Upstream("the catalog was not read".into())))
    }
}

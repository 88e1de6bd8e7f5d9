//! The client-to-upstream direction of a session: every message is checked, statements are analysed and
//! either forwarded (with a note of the replies they will produce) or replaced by a refusal.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use portcullis_policy::{
    Component, Context, SessionCache, StatementComponent, StatementDecision, Verdict,
};
use portcullis_sql::{
    backslash_in_plain_string, builtins, leading_justification, quote_ident, setting_class,
    setting_object, Analysis, AnalysisError, ObjectAccess, ObjectKind, Operation, QualifiedName,
    SearchPath, SessionEffect, SettingClass, Statement, StatementKind,
};
use portcullis_store::{Request, Resource};
use portcullis_wire::{
    bind_parameter, decode_frontend, encode_bind_without_params, encode_close_statement,
    encode_describe_portal, encode_execute, encode_flush, encode_parse, encode_parse_bytes,
    encode_query, encode_query_bytes, encode_sync, peek_frame, tag, FrontendMessage, Target,
    WireError,
};
use portcullis_workflows::HeldStatement;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use super::flow::{Flow, Pending, SETTINGS_QUERY};
use super::masking::SessionMasking;
use super::row_guard::{self, GuardVerdict, Guarded};
use super::statement::{OutcomeRules, Refusal, Run};
use super::SessionInfo;
use crate::catalog::{CatalogHandle, CatalogSnapshot, FunctionByOid, Need};
use crate::error::GatewayError;
use crate::frames::reserve_partial_frame;
use crate::listener::Shared;
use crate::mfa::{self, Begin, Hold, HoldEnd};
use crate::policy::{self, ActivePolicy, RowLimits};

/// Text of the stand-in for a refused request: it fails in the upstream's parser, touching nothing, so
/// the upstream's reply sequence (and transaction state) is what a failing statement gives.
const REFUSED_SQL: &str = "PORTCULLIS REFUSED";
/// Name of the stand-in prepared statement; a failed Parse creates nothing, so it never exists.
const REFUSED_STATEMENT: &str = "portcullis_refused";

/// A statement the policy did not let through.
struct Decided {
    refusal: Refusal,
    /// `Some(reason)` when the session must end too.
    logout: Option<String>,
    /// Not refused: held for MFA (see [`ClientSide::mfa_hold`]); nothing of its frame is sent.
    held: bool,
}

impl Decided {
    fn refuse(refusal: Refusal) -> Self {
        Decided {
            refusal,
            logout: None,
            held: false,
        }
    }
}

/// How the MFA hold of the frame being handled again ended.
#[derive(Clone)]
enum MfaOutcome {
    /// The user verified: decide as if MFA were done.
    Verified,
    /// Refuse the statement so (not enrolled, timed out).
    Refused(Refusal),
}

/// What the relay loop does after a client frame.
enum Step {
    /// Go on with the next frame.
    Continue,
    /// The client sent Terminate.
    Terminate,
    /// A guarded statement was sent: send nothing more upstream until its verdict.
    AwaitGuard {
        /// Where the verdict comes from.
        verdict: oneshot::Receiver<GuardVerdict>,
        /// The portal it runs in; `None` for a simple Query the gateway sent as extended steps.
        portal: Option<String>,
    },
}

/// How a guarded statement reached the gateway.
enum GuardedRequest<'m> {
    /// A simple Query with this (possibly rewritten) text, in the client encoding.
    Query(&'m [u8]),
    /// An Execute of this portal, in this frame.
    Execute {
        /// The portal.
        portal: &'m str,
        /// The client's Execute.
        frame: &'m [u8],
    },
}

/// How the client direction ended.
pub enum ClientEnd {
    /// The client sent Terminate.
    Terminated,
    /// The client closed the connection.
    Closed,
}

/// A prepared statement or portal: the analysed text and which of its statements it is.
#[derive(Clone)]
struct Prepared {
    analysis: Arc<Analysis>,
    params: u32,
    /// The justification its text gave in a leading comment.
    justification: Option<Arc<str>>,
    /// The masks and row filters its text was rewritten with (as the monitor records them).
    protections: Vec<String>,
    /// The tables its result columns may come from (see [`Run::origins`]), checked against the
    /// RowDescription a Describe brings.
    origins: Option<Vec<(u32, i16)>>,
    /// For a bound portal: the setting names `set_config` was given as parameters (see
    /// [`Statement::bound_settings`]), `None` where the value could not be read.
    bound_settings: Vec<Option<String>>,
}

impl Prepared {
    fn statement(&self) -> Option<&Statement> {
        self.analysis.statements.first()
    }
}

/// State of the client direction.
pub struct ClientSide<'a> {
    shared: &'a Shared,
    info: &'a Arc<SessionInfo>,
    flow: &'a Mutex<Flow>,
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Prepared>,
    sql_prepared: HashMap<String, Statement>,
    /// `PREPARE`s earlier in the simple-query message being decided; tracked for real once it is sent.
    prepared_in_message: HashMap<String, Statement>,
    /// This session's Cedar answers; its statements repeat the same few requests.
    cedar: SessionCache,
    /// The decision context, with the justification the session gave (`SET portcullis.justification`).
    ctx: Context,
    /// The justification the message being handled gave in a leading comment; it overrides the session's.
    message_justification: Option<Arc<str>>,
    /// After a refusal in the extended protocol, messages up to Sync are dropped (the server would skip them).
    skipping: bool,
    /// A statement sent in this request cycle may have changed a setting the gateway follows
    /// (search_path, client_encoding, standard_conforming_strings): the settings query goes at its end.
    refresh_path: bool,
    /// Such a statement was sent since the last transaction end: the transaction's end may undo it.
    path_changed_in_txn: bool,
    /// Such a statement was sent in this extended-protocol cycle: until the cycle ends and the server
    /// says what the settings are, statements that depend on them are refused.
    settings_unknown: bool,
    /// A COPY may be in progress: injecting a query now would break its data stream.
    copy_in_cycle: bool,
    /// Rows each portal has returned under a guard so far (a fetch size runs a portal in pieces).
    portal_rows: HashMap<String, u64>,
    /// The search path a statement of the message being decided sets, for the statements after it.
    path_in_message: Option<Arc<SearchPath>>,
    /// This session's masks and row filters.
    masking: SessionMasking,
    /// Set by a decision that only lacks MFA: what is required and the statement's text. The frame is
    /// then handled again once the hold ends, with [`Self::mfa_outcome`] set.
    mfa_hold: Option<(String, String)>,
    /// How the hold of the frame being handled again ended; cleared once the frame is handled.
    mfa_outcome: Option<MfaOutcome>,
    /// The resource's catalog, which the session's snapshot is kept as current as.
    catalog: CatalogHandle,
    /// Set when a statement depends on a change the session's snapshot lacks (or, where masks apply,
    /// names a relation it lacks): the frame is handled again with a snapshot that meets this.
    catalog_retry: Option<Need>,
    /// The frame being handled again already waited for a newer snapshot.
    catalog_retried: bool,
    /// Why the last wait for a newer snapshot failed: a statement that needs one is refused with it.
    catalog_failed: Option<Refusal>,
    /// The function the fast-path call being handled names, or why it could not be named.
    fast_path_function: Option<Result<FunctionByOid, String>>,
    /// Where the gateway's own messages to the client go (the upstream side writes them out).
    to_client: UnboundedSender<BytesMut>,
    /// Counts the CancelRequests sent with this session's key: one ends an MFA hold.
    cancelled: watch::Receiver<u64>,
}

impl<'a> ClientSide<'a> {
    /// A client direction for a freshly logged-in session.
    pub fn new(
        shared: &'a Shared,
        info: &'a Arc<SessionInfo>,
        flow: &'a Mutex<Flow>,
        to_client: UnboundedSender<BytesMut>,
        cancelled: watch::Receiver<u64>,
    ) -> Self {
        ClientSide {
            shared,
            info,
            flow,
            statements: HashMap::new(),
            portals: HashMap::new(),
            sql_prepared: HashMap::new(),
            prepared_in_message: HashMap::new(),
            cedar: SessionCache::new(),
            ctx: info.ctx.clone(),
            message_justification: None,
            skipping: false,
            refresh_path: false,
            path_changed_in_txn: false,
            settings_unknown: false,
            copy_in_cycle: false,
            portal_rows: HashMap::new(),
            path_in_message: None,
            masking: SessionMasking::new(&info.upstream_user),
            catalog: shared.catalogs.handle(&info.resource),
            catalog_retry: None,
            catalog_retried: false,
            catalog_failed: None,
            fast_path_function: None,
            mfa_hold: None,
            mfa_outcome: None,
            to_client,
            cancelled,
        }
    }

    /// Relays client messages until the client terminates or a protocol error ends the session.
    pub async fn run<R, W>(
        &mut self,
        client: &mut R,
        upstream: &mut W,
        bytes_in: &AtomicU64,
    ) -> Result<ClientEnd, GatewayError>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let max = self.shared.config.max_client_message;
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut out = BytesMut::with_capacity(16 * 1024);
        loop {
            let n = client
                .read_buf(&mut buf)
                .await
                .map_err(|e| GatewayError::io("read from client", e))?;
            if n == 0 {
                return Ok(ClientEnd::Closed);
            }
            bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            let mut terminated = false;
            while let Some(header) = peek_frame(&buf, max)? {
                // A simple Query starts a cycle: a settings query a COPY held back goes first.
                if buf[0] == tag::frontend::QUERY && self.settings_unknown && !self.skipping {
                    self.end_of_cycle(&mut out);
                }
                if !self.skipping
                    && matches!(
                        buf[0],
                        tag::frontend::QUERY | tag::frontend::PARSE | tag::frontend::EXECUTE
                    )
                {
                    self.settle(upstream, &mut out).await?;
                    self.keep_catalog_current(upstream, &mut out, Need::default())
                        .await?;
                    let outside_txn = std::mem::take(&mut self.lock().settled_outside_txn);
                    if outside_txn && !self.refresh_path {
                        // Committed: a later transaction end undoes nothing the gateway followed.
                        self.path_changed_in_txn = false;
                    }
                }
                if buf[0] == tag::frontend::FUNCTION_CALL && !self.skipping {
                    self.keep_catalog_current(upstream, &mut out, Need::default())
                        .await?;
                    let frame = &buf[..header.total_len];
                    let named = self
                        .name_fast_path_function(frame, upstream, &mut out)
                        .await?;
                    self.fast_path_function = Some(named);
                }
                let step = self.on_frame(&buf[..header.total_len], &mut out)?;
                if let Some((required, text)) = self.mfa_hold.take() {
                    // Nothing of this frame was sent: send what came before it, hold, then handle
                    // the same frame again knowing how the hold ended.
                    send(upstream, &mut out).await?;
                    self.mfa_outcome = Some(self.hold_for_mfa(required, &text).await);
                    continue;
                }
                if let Some(need) = self.catalog_retry.take() {
                    // Nothing of this frame was sent: handle it again knowing what the catalog holds now.
                    self.keep_catalog_current(upstream, &mut out, need).await?;
                    self.catalog_retried = true;
                    continue;
                }
                self.catalog_retried = false;
                self.catalog_failed = None;
                self.fast_path_function = None;
                self.mfa_outcome = None;
                buf.advance(header.total_len);
                match step {
                    Step::Continue => {}
                    Step::Terminate => {
                        terminated = true;
                        break;
                    }
                    Step::AwaitGuard { verdict, portal } => {
                        upstream
                            .write_all(&out)
                            .await
                            .map_err(|e| GatewayError::io("write to upstream", e))?;
                        out.clear();
                        // The upstream side drops the sender only when the session is ending.
                        let verdict = verdict.await.unwrap_or(GuardVerdict::Failed);
                        self.after_guard(verdict, portal, &mut out);
                    }
                }
            }
            reserve_partial_frame(&mut buf);
            send(upstream, &mut out).await?;
            if terminated {
                return Ok(ClientEnd::Terminated);
            }
        }
    }

    /// Waits until the server has answered every settings query sent: a statement is decided with the
    /// search_path, client_encoding and standard_conforming_strings the server will read it with, never
    /// with ones the gateway guessed while an earlier statement that changes them was on its way.
    async fn settle<W>(&mut self, upstream: &mut W, out: &mut BytesMut) -> Result<(), GatewayError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let settled = {
            let flow = self.lock();
            if flow.settings_pending == 0 {
                return Ok(());
            }
            Arc::clone(&flow.settled)
        };
        // The settings query may still be in `out`.
        send(upstream, out).await?;
        loop {
            let notified = settled.notified();
            if self.lock().settings_pending == 0 {
                return Ok(());
            }
            notified.await;
        }
    }

    /// Gives the session a snapshot that is current (younger than the TTL) and meets `need`: the
    /// resource's latest when that will do (a newer one is taken whenever there is one), else one read
    /// on the gateway's own connection. A snapshot that lacks changes known by name is current: only the
    /// statements naming them wait (see [`Self::catalog_gate`]). When the read fails or times out, decisions
    /// go on with the snapshot the session has, and a statement that needed the newer one is refused.
    async fn keep_catalog_current<W>(
        &mut self,
        upstream: &mut W,
        out: &mut BytesMut,
        need: Need,
    ) -> Result<(), GatewayError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mine = Arc::clone(&self.lock().catalog);
        if self.catalog.is_current(&mine, need) {
            if let Some(latest) = self.catalog.latest() {
                if latest.generation() > mine.generation() && self.catalog.is_current(&latest, need)
                {
                    self.lock().catalog = latest;
                }
            }
            return Ok(());
        }
        // What was already decided goes on while the catalog is read.
        send(upstream, out).await?;
        let read = match self.resource() {
            Ok(resource) => self.catalog.snapshot(&resource, need).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(snapshot) => self.lock().catalog = snapshot,
            Err(e) => {
                tracing::warn!(error = %e, resource = %self.info.resource, "catalog not read again");
                self.catalog_failed = Some(Refusal::catalog_unread(&self.info.resource, &e));
            }
        }
        Ok(())
    }

    /// Whether `run` may be decided on the session's snapshot: `None` when it names nothing changed
    /// since the snapshot was read (DDL through the gateway records the names it changed); else the
    /// decision waits — the frame is handled again once a newer snapshot is read — or, when that read
    /// failed, the refusal that says so.
    fn catalog_gate(&mut self, run: &Run) -> Option<Decided> {
        if run.catalog_names.is_empty() {
            return None;
        }
        let snapshot = Arc::clone(&self.lock().catalog);
        if !self.catalog.changed_since(&snapshot) {
            return None;
        }
        let masked = self.masking.may_apply();
        let mut names: Vec<&str> = Vec::new();
        for (name, always) in &run.catalog_names {
            if !always && !masked {
                continue;
            }
            names.push(&name.name);
            names.push(&name.schema);
            if masked {
                for related in snapshot.related(name) {
                    names.push(&related.name);
                    names.push(&related.schema);
                }
            }
        }
        if names.is_empty() {
            return None;
        }
        // A relation the snapshot lacks may be what an unnamed change (a rename) created.
        let unknown = run.catalog_names.iter().any(|(name, always)| {
            (*always || masked)
                && !name.schema.is_empty()
                && !snapshot.knows(name)
                && !portcullis_sql::Catalog::has_function(
                    snapshot.as_ref(),
                    &name.schema,
                    &name.name,
                )
                && !portcullis_sql::Catalog::has_schema(snapshot.as_ref(), &name.name)
        });
        let generation = self.catalog.needed_for(&snapshot, true, |changed| {
            unknown || names.contains(&changed)
        })?;
        if let Some(refusal) = self.catalog_failed.take() {
            return Some(Decided::refuse(refusal));
        }
        if self.catalog_retried {
            // A snapshot read since the statement arrived: changes after that ran concurrently with it.
            return None;
        }
        self.catalog_retry = Some(Need {
            generation,
            since: None,
        });
        Some(Decided {
            refusal: Refusal::unanalysable("waiting for the catalog"),
            logout: None,
            held: true,
        })
    }

    /// The text of a Query or Parse as the server reads it (converted from the client encoding), or the
    /// refusal that replaced it.
    fn read_text<'t>(
        &mut self,
        bytes: &'t [u8],
        extended: bool,
        out: &mut BytesMut,
    ) -> Option<std::borrow::Cow<'t, str>> {
        let (encoding, name, conforming) = {
            let flow = self.lock();
            (
                flow.encoding,
                flow.client_encoding.clone(),
                flow.standard_conforming_strings,
            )
        };
        // After a COPY, a settings change may still be unasked (see `end_of_cycle`): then the text must
        // read the same whatever the encoding and standard_conforming_strings are.
        let conforming = conforming && !self.settings_unknown;
        let refusal = match encoding.decode(bytes, &name) {
            Ok(_) if self.settings_unknown && !bytes.is_ascii() => {
                Refusal::unanalysable(UNKNOWN_SETTINGS)
            }
            Ok(text) if conforming || !backslash_in_plain_string(&text) => return Some(text),
            Ok(_) => Refusal::unanalysable(
                "standard_conforming_strings is off, and the statement has a backslash in a '...' \
                 string, which the gateway's parser would read differently from the server; write it \
                 as E'...' or turn standard_conforming_strings on",
            ),
            Err(why) => Refusal::unanalysable(why),
        };
        let text = String::from_utf8_lossy(bytes).into_owned();
        self.refuse(Run::opaque(&text, "UNKNOWN"), refusal, extended, out);
        None
    }

    /// `text` (rewritten by the gateway) in the client encoding, or why it cannot be sent.
    fn encode_text(&self, text: &str) -> Result<Vec<u8>, Refusal> {
        let flow = self.lock();
        flow.encoding
            .encode(text, &flow.client_encoding)
            .map(std::borrow::Cow::into_owned)
            .map_err(Refusal::unanalysable)
    }

    /// Handles one whole client frame.
    fn on_frame(&mut self, frame: &[u8], out: &mut BytesMut) -> Result<Step, GatewayError> {
        let tag = frame[0];
        if self.skipping && tag != tag::frontend::SYNC && tag != tag::frontend::TERMINATE {
            return Ok(Step::Continue);
        }
        match decode_frontend(tag, &frame[5..])? {
            FrontendMessage::Query { sql } => {
                let Some(text) = self.read_text(sql, false, out) else {
                    return Ok(Step::Continue);
                };
                return self.on_query(&text, frame, out);
            }
            FrontendMessage::Parse {
                name,
                sql,
                param_types,
            } => {
                if let Some(text) = self.read_text(sql, true, out) {
                    self.on_parse(name, &text, param_types, frame, out)?
                }
            }
            FrontendMessage::Bind {
                portal,
                statement,
                param_count,
            } => {
                self.portal_rows.remove(portal);
                match self.statements.get(statement) {
                    Some(prepared) => {
                        let mut bound = prepared.clone();
                        bound.params = u32::from(param_count);
                        bound.bound_settings = self.bound_setting_names(&bound, &frame[5..]);
                        self.portals.insert(portal.to_string(), bound);
                    }
                    None => {
                        self.portals.remove(portal);
                    }
                }
                self.forward(Pending::Bind, frame, out);
            }
            FrontendMessage::Execute { portal, .. } => {
                let bound = self.portals.get(portal).cloned();
                self.message_justification = bound.as_ref().and_then(|p| p.justification.clone());
                if let Some(statement) = bound.as_ref().and_then(Prepared::statement) {
                    if self.settings_unknown && depends_on_settings(statement) {
                        let refusal = Refusal::unanalysable(UNKNOWN_SETTINGS);
                        let run = self.run_for(statement, 0);
                        self.refuse(run, refusal, true, out);
                        return Ok(Step::Continue);
                    }
                    // A prepared SET takes effect when it runs, not when it is parsed.
                    let statement = statement.clone();
                    self.note_settings(&statement);
                }
                let run = match bound.as_ref().and_then(|p| Some((p, p.statement()?))) {
                    Some((prepared, statement)) => {
                        match with_bound_settings(statement, &prepared.bound_settings) {
                            Ok(decided) => Some(self.run_for(&decided, prepared.params)),
                            Err(refusal) => {
                                let run = self.run_for(statement, prepared.params);
                                self.refuse(run, refusal, true, out);
                                return Ok(Step::Continue);
                            }
                        }
                    }
                    None => None,
                };
                // Decided again at each execution: the policy, the time or the context may have
                // changed since the statement was prepared.
                let Some(mut run) = self.decide_extended(run, out)? else {
                    return Ok(Step::Continue);
                };
                if let (Some(r), Some(p)) = (run.as_mut(), &bound) {
                    if let Err(refusal) = self.masks_unchanged(r, p) {
                        if self.catalog_retry.is_some() {
                            return Ok(Step::Continue);
                        }
                        if let Some(r) = run {
                            self.refuse_rewrite(r, refusal, true, out);
                        }
                        return Ok(Step::Continue);
                    }
                }
                let limits = run.as_ref().and_then(|r| r.row_limits);
                match (run, limits) {
                    (Some(run), Some(limits)) => {
                        let request = GuardedRequest::Execute { portal, frame };
                        return Ok(self.send_guarded(run, limits, request, out));
                    }
                    (run, _) => self.forward(Pending::Execute(run), frame, out),
                }
            }
            FrontendMessage::Describe { target, name } => {
                let described = match target {
                    Target::Statement => self.statements.get(name),
                    Target::Portal => self.portals.get(name),
                };
                let origins = described.and_then(|p| p.origins.clone());
                self.forward(Pending::Describe(origins), frame, out)
            }
            FrontendMessage::Close { target, name } => {
                match target {
                    Target::Statement => self.statements.remove(name),
                    Target::Portal => {
                        self.portal_rows.remove(name);
                        self.portals.remove(name)
                    }
                };
                self.forward(Pending::Close, frame, out);
            }
            FrontendMessage::Sync => {
                self.skipping = false;
                self.forward(Pending::Sync, frame, out);
                self.end_of_cycle(out);
            }
            FrontendMessage::Flush
            | FrontendMessage::CopyData(_)
            | FrontendMessage::CopyDone
            | FrontendMessage::CopyFail { .. } => out.extend_from_slice(frame),
            FrontendMessage::Terminate => {
                out.extend_from_slice(frame);
                return Ok(Step::Terminate);
            }
            FrontendMessage::FunctionCall { function } => {
                return self.on_function_call(function, frame, out);
            }
            FrontendMessage::AuthResponse(_) => {
                return Err(WireError::Malformed("password message outside authentication").into())
            }
        }
        Ok(Step::Continue)
    }

    /// The session's resource with its credential, for the catalog reader's connection.
    fn resource(&self) -> Result<Resource, GatewayError> {
        self.shared
            .store
            .resource(&self.info.resource)?
            .ok_or_else(|| GatewayError::Config("the resource was removed".into()))
    }

    /// The setting names a Bind gives the `set_config` calls of its statement, read in the client
    /// encoding.
    fn bound_setting_names(&self, prepared: &Prepared, body: &[u8]) -> Vec<Option<String>> {
        let Some(statement) = prepared
            .statement()
            .filter(|s| !s.bound_settings.is_empty())
        else {
            return Vec::new();
        };
        let flow = self.lock();
        statement
            .bound_settings
            .iter()
            .map(|n| {
                let value = bind_parameter(body, usize::from(*n).saturating_sub(1)).ok()??;
                let text = flow.encoding.decode(value, &flow.client_encoding).ok()?;
                Some(text.into_owned())
            })
            .collect()
    }

    /// The function a fast-path call (libpq's and JDBC's large-object API use them) names by OID, asked
    /// of the server on the gateway's own connection.
    async fn name_fast_path_function<W>(
        &mut self,
        frame: &[u8],
        upstream: &mut W,
        out: &mut BytesMut,
    ) -> Result<Result<FunctionByOid, String>, GatewayError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let Ok(FrontendMessage::FunctionCall { function }) = decode_frontend(frame[0], &frame[5..])
        else {
            return Ok(Err("the fast-path call is malformed".into()));
        };
        send(upstream, out).await?;
        let resource = match self.resource() {
            Ok(resource) => resource,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(match self.catalog.function(&resource, function).await {
            Ok(Some(named)) => Ok(named),
            Ok(None) => Err(format!("no function has OID {function}")),
            Err(e) => Err(format!(
                "the gateway could not name function OID {function}: {e}"
            )),
        })
    }

    /// Decides a fast-path call as the call `SELECT schema.function(NULL, …)`, one NULL per argument of
    /// the overload its OID names — the same components, rules, masks and audit — and forwards it. Its
    /// arguments are binary and never read, so a function whose arguments decide what it does
    /// (`set_config`) is refused, as in a query with non-constant ones.
    fn on_function_call(
        &mut self,
        function: u32,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<Step, GatewayError> {
        // Kept until the frame is done: an MFA hold or a catalog read handles it again.
        let named = self
            .fast_path_function
            .clone()
            .unwrap_or_else(|| Err("the fast-path call was not named".into()));
        let FunctionByOid { name, args } = match named {
            Ok(named) => named,
            Err(why) => {
                let text = format!("-- fast-path call of function OID {function}");
                let run = Run::opaque(&text, "FUNCTION CALL");
                self.refuse(run, Refusal::unanalysable(why), false, out);
                return Ok(Step::Continue);
            }
        };
        let sql = format!(
            "SELECT {}.{}({}) -- fast-path function call",
            quote_ident(&name.schema),
            quote_ident(&name.name),
            vec!["NULL"; usize::from(args)].join(", ")
        );
        let Some(analysis) = self.analyse_or_refuse(&sql, false, out) else {
            return Ok(Step::Continue);
        };
        let Some(statement) = analysis.statements.first() else {
            return Ok(Step::Continue);
        };
        let mut run = self.run_for(statement, 0);
        if let Err(decided) = self.decide(&mut run) {
            if !decided.held {
                self.refuse_decided(run, decided, false, out)?;
            }
            return Ok(Step::Continue);
        }
        match self.mask(&sql, std::slice::from_mut(&mut run), false) {
            Ok(None) => {}
            Ok(Some(_)) => {
                let refusal = Refusal::denied(
                    "masks or row filters apply to what this function returns, which a fast-path call \
                     cannot be rewritten for; call it in a query",
                );
                self.refuse_rewrite(run, refusal, false, out);
                return Ok(Step::Continue);
            }
            Err(_) if self.catalog_retry.is_some() => return Ok(Step::Continue),
            Err(refusal) => {
                self.refuse_rewrite(run, refusal, false, out);
                return Ok(Step::Continue);
            }
        }
        self.forward(Pending::FunctionCall(Some(run)), frame, out);
        Ok(Step::Continue)
    }

    /// Holds the statement until the user completes MFA, telling them how; how the hold ended.
    async fn hold_for_mfa(&mut self, required: String, text: &str) -> MfaOutcome {
        let hold = Hold::new(self.shared, self.info, "statement", text, required);
        let ended = match hold.begin().await {
            Begin::Verified => HoldEnd::Verified,
            Begin::Refused(message) => HoldEnd::Refused(message),
            Begin::Wait => {
                portcullis_metrics::gateway::mfa_hold();
                // The upstream side is gone only when the session is ending.
                let _ = self.to_client.send(hold.notice());
                // Only a cancel sent while this statement is held ends it.
                self.cancelled.mark_unchanged();
                tokio::select! {
                    ended = hold.wait() => ended,
                    Ok(()) = self.cancelled.changed() => {
                        return MfaOutcome::Refused(match hold.cancelled().await {
                            Ok(()) => Refusal::cancelled(),
                            Err(why) => Refusal::denied(&why),
                        });
                    }
                }
            }
        };
        match ended {
            HoldEnd::Verified => MfaOutcome::Verified,
            HoldEnd::Refused(message) => MfaOutcome::Refused(Refusal::denied(&message)),
        }
    }

    /// Sends a statement a row-count rule may deny, under a guard: an Execute as it is, a simple Query
    /// as its extended-protocol steps, each followed by Flush so its result comes before any Sync.
    fn send_guarded(
        &mut self,
        run: Run,
        limits: RowLimits,
        request: GuardedRequest<'_>,
        out: &mut BytesMut,
    ) -> Step {
        let portal = match request {
            GuardedRequest::Query(_) => None,
            GuardedRequest::Execute { portal, .. } => Some(portal.to_string()),
        };
        let rows_before = portal
            .as_ref()
            .and_then(|p| self.portal_rows.get(p))
            .copied()
            .unwrap_or_default();
        let (guarded, verdict) = Guarded::new(run, limits, rows_before, portal.is_none());
        self.lock().push(Pending::Guarded(Box::new(guarded)));
        match request {
            // A simple Query drops the unnamed statement and portal too, so using them changes nothing
            // the client relies on.
            GuardedRequest::Query(sql) => {
                encode_parse_bytes("", sql, &[], out);
                encode_bind_without_params("", "", out);
                encode_describe_portal("", out);
                encode_execute("", 0, out);
            }
            GuardedRequest::Execute { frame, .. } => out.extend_from_slice(frame),
        }
        encode_flush(out);
        Step::AwaitGuard { verdict, portal }
    }

    /// Finishes the request cycle of a guarded statement once its verdict is in; `portal` as in
    /// [`Step::AwaitGuard`].
    fn after_guard(&mut self, verdict: GuardVerdict, portal: Option<String>, out: &mut BytesMut) {
        match verdict {
            GuardVerdict::Denied => {
                // A failing Parse aborts the upstream transaction, undoing what the statement wrote.
                self.lock().push(Pending::GuardRefusal);
                encode_parse(REFUSED_STATEMENT, REFUSED_SQL, out);
                self.skipping = portal.is_some();
            }
            // The upstream skips to Sync after an error; the client's messages up to it are dropped here.
            GuardVerdict::Failed => self.skipping = portal.is_some(),
            GuardVerdict::Allowed { suspended_at } => {
                if let Some(portal) = &portal {
                    match suspended_at {
                        Some(rows) => self.portal_rows.insert(portal.clone(), rows),
                        None => self.portal_rows.remove(portal),
                    };
                }
            }
        }
        if portal.is_none() {
            self.lock().push(Pending::Sync);
            encode_sync(out);
            self.end_of_cycle(out);
        }
    }

    fn forward(&mut self, pending: Pending, frame: &[u8], out: &mut BytesMut) {
        self.lock().push(pending);
        out.extend_from_slice(frame);
    }

    fn lock(&self) -> std::sync::MutexGuard<'a, Flow> {
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_query(
        &mut self,
        sql: &str,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<Step, GatewayError> {
        self.message_justification = leading_justification(sql).map(Arc::from);
        self.path_in_message = None;
        let Some(analysis) = self.analyse_or_refuse(sql, false, out) else {
            return Ok(Step::Continue);
        };
        // Every statement of the message is decided before any is sent: one denial refuses them all,
        // so none of them runs.
        let mut runs = VecDeque::with_capacity(analysis.statements.len());
        let session_justification = self.ctx.justification.clone();
        // A transaction end after a search_path change in it (in this message or before) sets the
        // path back to a value the gateway learns only once the message has run.
        let mut path_unknown = false;
        for statement in &analysis.statements {
            let mut run = self.run_for(statement, 0);
            let mut decided = if self.settings_unknown && depends_on_settings(statement) {
                // Only left over from a cycle with a COPY, whose settings query waits for this one.
                Err(Decided::refuse(Refusal::unanalysable(UNKNOWN_SETTINGS)))
            } else if path_unknown && depends_on_settings(statement) {
                Err(Decided::refuse(Refusal::unanalysable(
                    "this query ends a transaction that changed search_path, and the gateway learns \
                     the path the server returns to only once it has run; send the statements after \
                     the transaction's end in a query of their own",
                )))
            } else {
                self.decide(&mut run)
            };
            if decided.is_ok() && run.row_limits.is_some() && analysis.statements.len() > 1 {
                decided = Err(Decided::refuse(Refusal::unanalysable(
                    "a row-count rule may stop this statement part-way, which the gateway can do only \
                     for a statement sent in a query of its own; send it on its own",
                )));
            }
            if let Err(refusal) = decided {
                self.prepared_in_message.clear();
                self.path_in_message = None;
                self.ctx.justification = session_justification;
                if refusal.held {
                    return Ok(Step::Continue);
                }
                return self
                    .refuse_decided(run, refusal, false, out)
                    .map(|()| Step::Continue);
            }
            // The statements after it in the message are justified by it.
            if let Some(SessionEffect::SetJustification(why)) = &statement.effect {
                self.ctx.justification = why.clone();
            }
            // A later `EXECUTE` in the same message runs what this `PREPARE` defines.
            if let Some(SessionEffect::Prepare { name, statement }) = &statement.effect {
                self.prepared_in_message
                    .insert(name.clone(), (**statement).clone());
            }
            // The statements after it resolve names through the path it sets.
            match &statement.effect {
                Some(
                    SessionEffect::SetSearchPath(path) | SessionEffect::SetLocalSearchPath(path),
                ) => self.path_in_message = Some(Arc::new(SearchPath::from_list(path.clone()))),
                Some(SessionEffect::ResetSearchPath | SessionEffect::DiscardAll) => {
                    let reset = Arc::clone(&self.lock().reset_path);
                    self.path_in_message = Some(reset);
                }
                _ => {}
            }
            if ends_transaction(statement)
                && (self.path_in_message.is_some() || self.path_changed_in_txn)
            {
                path_unknown = true;
            }
            runs.push_back(run);
        }
        self.prepared_in_message.clear();
        let path_changed = self.path_in_message.take().is_some();
        let masked = match self.mask(sql, runs.make_contiguous(), path_changed) {
            Ok(masked) => masked,
            Err(refusal) => {
                self.ctx.justification = session_justification;
                if self.catalog_retry.is_some() {
                    return Ok(Step::Continue);
                }
                if let Some(run) = runs.pop_front() {
                    self.refuse_rewrite(run, refusal, false, out);
                }
                return Ok(Step::Continue);
            }
        };
        let masked = match masked.as_deref().map(|text| self.encode_text(text)) {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(refusal)) => {
                self.ctx.justification = session_justification;
                if let Some(run) = runs.pop_front() {
                    self.refuse_rewrite(run, refusal, false, out);
                }
                return Ok(Step::Continue);
            }
        };
        for statement in &analysis.statements {
            self.note_effects(statement);
        }
        // A guarded statement is alone in its message (see above).
        if let Some(limits) = runs.front().and_then(|r| r.row_limits) {
            if let Some(run) = runs.pop_front() {
                // The client's own bytes, unless rewritten: a Query body is the text and its NUL.
                let text = masked
                    .as_deref()
                    .unwrap_or_else(|| &frame[5..frame.len().saturating_sub(1)]);
                return Ok(self.send_guarded(run, limits, GuardedRequest::Query(text), out));
            }
        }
        match masked {
            Some(bytes) => {
                self.lock().push(Pending::Query(runs));
                encode_query_bytes(&bytes, out);
            }
            None => self.forward(Pending::Query(runs), frame, out),
        }
        self.end_of_cycle(out);
        Ok(Step::Continue)
    }

    fn on_parse(
        &mut self,
        name: &str,
        sql: &str,
        param_types: u16,
        frame: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        self.message_justification = leading_justification(sql).map(Arc::from);
        let Some(analysis) = self.analyse_or_refuse(sql, true, out) else {
            return Ok(());
        };
        if self.settings_unknown {
            if let Some(statement) = analysis
                .statements
                .first()
                .filter(|s| depends_on_settings(s) || !sql.is_ascii() || sql.contains('\\'))
            {
                let run = self.run_for(statement, 0);
                self.refuse(run, Refusal::unanalysable(UNKNOWN_SETTINGS), true, out);
                return Ok(());
            }
        }
        let run = analysis.statements.first().map(|s| self.run_for(s, 0));
        // Refused at Parse too, so a client learns nothing (not even a Describe's columns) of what
        // it may not run.
        let Some(mut run) = self.decide_extended(run, out)? else {
            return Ok(());
        };
        let rewritten = match run.as_mut() {
            Some(r) => match self.mask(sql, std::slice::from_mut(r), false) {
                Ok(rewritten) => rewritten,
                Err(_) if self.catalog_retry.is_some() => return Ok(()),
                Err(refusal) => {
                    if let Some(r) = run {
                        self.refuse_rewrite(r, refusal, true, out);
                    }
                    return Ok(());
                }
            },
            None => None,
        };
        let protections = run
            .as_ref()
            .and_then(|r| r.policy.as_ref())
            .map(|t| t.protections.clone())
            .unwrap_or_default();
        let origins = run.as_ref().and_then(|r| r.origins.clone());
        // PostgreSQL refuses to redefine a named statement, so only a new name or the unnamed one counts.
        if name.is_empty() || !self.statements.contains_key(name) {
            self.statements.insert(
                name.to_string(),
                Prepared {
                    analysis: Arc::clone(&analysis),
                    params: 0,
                    justification: self.message_justification.clone(),
                    protections,
                    origins,
                    bound_settings: Vec::new(),
                },
            );
        }
        if let Some(s) = analysis.statements.first() {
            self.note_effects(s);
        }
        match rewritten {
            Some(text) => {
                let bytes = match self.encode_text(&text) {
                    Ok(bytes) => bytes,
                    Err(refusal) => {
                        if let Some(r) = run {
                            self.refuse_rewrite(r, refusal, true, out);
                        }
                        return Ok(());
                    }
                };
                self.lock().push(Pending::Parse(run));
                encode_parse_bytes(name, &bytes, &parse_param_types(frame, param_types), out);
            }
            None => self.forward(Pending::Parse(run), frame, out),
        }
        Ok(())
    }

    /// Checks that the masks and row filters a prepared statement was rewritten with are still the ones
    /// that apply: the upstream runs the text rewritten at Parse, so a mask added since must not be missed.
    fn masks_unchanged(&mut self, run: &mut Run, prepared: &Prepared) -> Result<(), Refusal> {
        let text = prepared.statement().map_or("", |s| s.text.as_str());
        self.mask(text, std::slice::from_mut(run), false)?;
        let now = run
            .policy
            .as_ref()
            .map(|t| t.protections.as_slice())
            .unwrap_or_default();
        if now != prepared.protections.as_slice() {
            return Err(Refusal::denied(
                "the masks or row filters that apply to this prepared statement changed since it was \
                 prepared; prepare it again",
            ));
        }
        Ok(())
    }

    /// Refuses a statement the policy allowed but whose masks or row filters cannot be applied.
    fn refuse_rewrite(
        &mut self,
        mut run: Run,
        refusal: Refusal,
        extended: bool,
        out: &mut BytesMut,
    ) {
        if let Some(trail) = run.policy.as_mut() {
            trail.result = "deny".into();
            trail.reason = refusal.message.clone();
        }
        self.refuse(run, refusal, extended, out);
    }

    /// Applies the session's masks and row filters to `sql`, whose statements are `runs`: the text to send
    /// instead, `None` to send it as written, or why it is refused. `path_changed`: a statement of the text
    /// changes the search path, so one path cannot resolve all of its names.
    fn mask(
        &mut self,
        sql: &str,
        runs: &mut [Run],
        path_changed: bool,
    ) -> Result<Option<String>, Refusal> {
        let active = self.shared.policy.current();
        let (path, catalog) = {
            let flow = self.lock();
            (Arc::clone(&flow.search_path), Arc::clone(&flow.catalog))
        };
        if !self
            .masking
            .refresh(&active.compiled, active.version, &self.ctx, &catalog)
        {
            return Ok(None);
        }
        let components: Vec<&[Component]> = runs.iter().map(|r| r.components.as_slice()).collect();
        let masked = self.masking.apply(&path, sql, &components);
        if self.masking.take_catalog_wanted() && !self.catalog_retried {
            self.catalog_retry = Some(Need {
                generation: 0,
                since: Some(Instant::now()),
            });
        }
        let masked = masked?;
        if masked.touched && path_changed && runs.len() > 1 {
            return Err(Refusal::unanalysable(
                "masks or row filters apply, and this query changes the search path before other \
                 statements; send SET search_path in a query of its own",
            ));
        }
        for (statement, applied) in masked.applied {
            if let Some(trail) = runs.get_mut(statement).and_then(|r| r.policy.as_mut()) {
                trail.protections.push(applied);
            }
        }
        if masked.touched {
            runs.iter_mut().for_each(|r| r.masked = true);
            // A column added to a masked relation since the snapshot has no mask yet: its values must
            // not come back.
            for origins in runs.iter_mut().filter_map(|r| r.origins.as_mut()) {
                for (oid, last) in origins.iter_mut() {
                    *last = catalog.last_column(*oid);
                }
            }
        }
        Ok(masked.sql)
    }

    /// Decides `run` with the policy in force and records the decision on it.
    fn decide(&mut self, run: &mut Run) -> Result<(), Decided> {
        if let Some(waits) = self.catalog_gate(run) {
            return Err(waits);
        }
        let active = self.shared.policy.current();
        let mfa_now = self.shared.mfa.now();
        self.ctx.mfa_verified = match self.mfa_outcome {
            Some(MfaOutcome::Verified) => true,
            _ => self
                .shared
                .mfa
                .verified(&self.info.user, &self.info.resource, mfa_now),
        };
        // A report that changed the trust of this user's device since login applies from now on.
        if let Some(address) = self.ctx.client_addr {
            self.ctx.device_trust = self.shared.devices.trust(&self.info.user, address);
        }
        let with_comment;
        let ctx = match &self.message_justification {
            Some(why) => {
                with_comment = self.ctx.clone().with_justification(why.to_string());
                &with_comment
            }
            None => &self.ctx,
        };
        let actions = actions_of(run);
        let Some(version) = active.version else {
            let mut trail = policy::no_policy_trail("statement", ctx);
            trail.actions = actions;
            run.policy = Some(trail);
            return Err(Decided::refuse(Refusal::denied(policy::NO_POLICY)));
        };
        let now = mfa_now;
        let mut decision =
            active
                .compiled
                .evaluate_statement_cached(ctx, &run.components, now, &mut self.cedar);
        // Only a held statement touches the store: the hot path for allowed statements does not.
        let approved_ctx;
        let ctx = match self.approvals_of(run, &actions, &decision, ctx, now) {
            Some((approved, used)) => {
                approved_ctx = approved;
                decision = active.compiled.evaluate_statement_cached(
                    &approved_ctx,
                    &run.components,
                    now,
                    &mut self.cedar,
                );
                if decision.verdict == Verdict::Allow {
                    for request in &used {
                        portcullis_workflows::record_used(
                            &self.shared.store,
                            request,
                            &self.info.id,
                            now,
                        );
                    }
                }
                &approved_ctx
            }
            None => ctx,
        };
        let missing_mfa = mfa::only_mfa_missing(&decision.requirements, decision.verdict, || {
            let verified = ctx.clone().with_mfa_verified(true);
            active
                .compiled
                .evaluate_statement_cached(&verified, &run.components, now, &mut self.cedar)
                .verdict
        });
        if missing_mfa.is_some() {
            match &self.mfa_outcome {
                None => {
                    // Decided again after the hold; alerts and the record wait for that decision.
                    self.mfa_hold = missing_mfa.map(|required| (required, run.text().to_owned()));
                    return Err(Decided {
                        refusal: Refusal::denied(&decision.reason),
                        logout: None,
                        held: true,
                    });
                }
                Some(MfaOutcome::Refused(refusal)) => {
                    let refusal = refusal.clone();
                    self.shared.alerts.fired(
                        self.info,
                        &decision.fired,
                        &actions,
                        Some(run.text()),
                    );
                    let mut trail = policy::statement_trail(Some(version), ctx, actions, &decision);
                    trail.reason.clone_from(&refusal.message);
                    run.policy = Some(trail);
                    return Err(Decided::refuse(refusal));
                }
                Some(MfaOutcome::Verified) => {}
            }
        }
        self.shared
            .alerts
            .fired(self.info, &decision.fired, &actions, Some(run.text()));
        run.policy = Some(policy::statement_trail(
            Some(version),
            ctx,
            actions,
            &decision,
        ));
        if decision.verdict == Verdict::Allow {
            // An action on the resource: what the MFA idle re-prompt counts from.
            self.shared
                .mfa
                .note_action(&self.info.user, &self.info.resource, mfa_now);
        }
        let refusal = match decision.verdict {
            Verdict::Allow if decision.post_execution.is_empty() => return Ok(()),
            Verdict::Allow => {
                let limits = policy::row_limits(&active.compiled, &decision.post_execution);
                if let Some(limits) = limits {
                    if let Some(why) = row_guard::unguardable(&run.components) {
                        let rule = active
                            .compiled
                            .evaluate_outcome(&decision.post_execution, limits.deny_from)
                            .reason;
                        let why = format!(
                            "a row-count rule may deny this statement ({rule}), and the gateway cannot \
                             count its rows: {why}"
                        );
                        if let Some(trail) = run.policy.as_mut() {
                            trail.result = "deny".into();
                            trail.reason = why.clone();
                        }
                        return Err(Decided::refuse(Refusal::unanalysable(why)));
                    }
                }
                run.row_limits = limits;
                run.outcome_rules = Some(OutcomeRules {
                    active: Arc::clone(&active),
                    pending: decision.post_execution,
                    alerts: self.shared.alerts.clone(),
                });
                return Ok(());
            }
            // Say first that the statement could not be analysed: no grant or rule change alone fixes it.
            Verdict::Deny => match run.components.iter().find_map(Component::as_statement) {
                Some(StatementComponent {
                    opaque: Some(why), ..
                }) => Refusal::unanalysable(why),
                _ => Refusal::denied(&decision.reason),
            },
            Verdict::RequireApproval => {
                self.hold_for_approval(run, &actions_of(run), &decision, &active, now)
            }
        };
        Err(Decided {
            refusal,
            logout: decision.logout.then(|| decision.reason.clone()),
            held: false,
        })
    }

    /// For a statement held for approval: the context with the workflows whose approval of this exact
    /// statement (by this user, on this resource) is still valid, with those approvals, when there is
    /// any. The caller records them as used once they let the statement run.
    fn approvals_of(
        &self,
        run: &Run,
        actions: &[String],
        decision: &StatementDecision,
        ctx: &Context,
        now: OffsetDateTime,
    ) -> Option<(Context, Vec<Request>)> {
        if decision.verdict != Verdict::RequireApproval {
            return None;
        }
        let summary = actions.join("; ");
        let held = self.held(run, &summary, &decision.reason);
        let mut approved = ctx.clone();
        let mut used = Vec::new();
        for workflow in &decision.approvals_needed {
            match portcullis_workflows::approved_query(&self.shared.store, &held, workflow, now) {
                Ok(Some(request)) => {
                    approved = approved.with_approval(workflow.clone());
                    used.push(request);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot look up statement approvals; the statement stays held")
                }
            }
        }
        if used.is_empty() {
            return None;
        }
        Some((approved, used))
    }

    /// The held-statement description of `run` for the workflow crate.
    fn held<'r>(&'r self, run: &'r Run, summary: &'r str, reason: &'r str) -> HeldStatement<'r> {
        HeldStatement {
            user: &self.info.user,
            resource: &self.info.resource,
            text: run.text(),
            summary,
            reason,
            session_id: &self.info.id,
        }
    }

    /// Files (or finds) the approval request for a held statement and says how to get it approved.
    fn hold_for_approval(
        &self,
        run: &Run,
        actions: &[String],
        decision: &StatementDecision,
        active: &ActivePolicy,
        now: OffsetDateTime,
    ) -> Refusal {
        let workflow = decision
            .approvals_needed
            .first()
            .and_then(|name| active.workflows.iter().find(|w| &w.name == name));
        let Some(workflow) = workflow else {
            return Refusal::approval_required(&decision.reason);
        };
        let summary = actions.join("; ");
        let held = self.held(run, &summary, &decision.reason);
        match portcullis_workflows::request_query(
            &self.shared.store,
            &active.workflows,
            workflow,
            &held,
            now,
        ) {
            Ok(request) => Refusal::held(request.id, &workflow.name, &decision.reason),
            Err(e) => {
                tracing::error!(error = %e, "cannot file an approval request");
                Refusal::approval_required(&format!(
                    "{}; the approval request could not be filed ({e})",
                    decision.reason
                ))
            }
        }
    }

    /// Decides an extended-protocol run (an empty statement has none). `None` when it was refused.
    fn decide_extended(
        &mut self,
        run: Option<Run>,
        out: &mut BytesMut,
    ) -> Result<Option<Option<Run>>, GatewayError> {
        let Some(mut run) = run else {
            return Ok(Some(None));
        };
        match self.decide(&mut run) {
            Ok(()) => Ok(Some(Some(run))),
            Err(decided) if decided.held => Ok(None),
            Err(decided) => self.refuse_decided(run, decided, true, out).map(|()| None),
        }
    }

    /// Refuses a statement the policy denied; a denial that ends the session ends it here.
    fn refuse_decided(
        &mut self,
        run: Run,
        decided: Decided,
        extended: bool,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        self.refuse(run, decided.refusal, extended, out);
        match decided.logout {
            Some(reason) => Err(GatewayError::Logout(reason)),
            None => Ok(()),
        }
    }

    /// The analysis of `sql`, or `None` after refusing it because it does not parse. Statements it
    /// cannot attribute to objects are left to the policy, which denies them unless a rule explicitly
    /// allows that kind of statement for this user.
    fn analyse_or_refuse(
        &mut self,
        sql: &str,
        extended: bool,
        out: &mut BytesMut,
    ) -> Option<Arc<Analysis>> {
        let analysis = match self.shared.analyzer.analyze(sql) {
            Ok(analysis) => analysis,
            Err(AnalysisError::Parse { message, position }) => {
                let refusal = Refusal::syntax(&message, position);
                self.refuse_unparsed(Run::opaque(sql, "UNKNOWN"), refusal, extended, out);
                return None;
            }
            Err(e) => {
                let refusal = Refusal::unanalysable(e);
                self.refuse(Run::opaque(sql, "UNKNOWN"), refusal, extended, out);
                return None;
            }
        };
        Some(analysis)
    }

    /// Refuses a text the gateway's parser rejects, letting the server say what is wrong with it: the
    /// text goes as an unnamed Parse (which the server parses and never runs), whose error — with the
    /// server's own position, detail and hint — reaches the client. Should the server parse it after
    /// all, the statement is closed again and `refusal` stands.
    fn refuse_unparsed(&mut self, run: Run, refusal: Refusal, extended: bool, out: &mut BytesMut) {
        let Ok(text) = self.encode_text(run.text()) else {
            return self.refuse(run, refusal, extended, out);
        };
        self.push_refused(run, refusal, extended, true);
        encode_parse_bytes("", &text, &[], out);
        encode_close_statement("", out);
        encode_parse(REFUSED_STATEMENT, REFUSED_SQL, out);
        if extended {
            self.skipping = true;
        } else {
            encode_sync(out);
        }
    }

    /// Records a refusal whose replacement request is about to be sent.
    fn push_refused(&mut self, run: Run, refusal: Refusal, extended: bool, server_parses: bool) {
        tracing::info!(session = %self.info.id, user = %self.info.user, reason = %refusal.message, "statement refused");
        self.lock().push(Pending::Refused {
            refusal,
            run,
            extended,
            reported: false,
            server_parses,
        });
    }

    /// Replaces a refused request by one that fails upstream; its error will be replaced by `refusal`.
    fn refuse(&mut self, run: Run, refusal: Refusal, extended: bool, out: &mut BytesMut) {
        self.push_refused(run, refusal, extended, false);
        if extended {
            encode_parse(REFUSED_STATEMENT, REFUSED_SQL, out);
            self.skipping = true;
        } else {
            encode_query(REFUSED_SQL, out);
        }
    }

    /// A run for `statement`; `EXECUTE name` is attributed to the objects of the statement it runs.
    fn run_for(&self, statement: &Statement, params: u32) -> Run {
        let (path, catalog) = {
            let flow = self.lock();
            let path = self.path_in_message.as_ref().unwrap_or(&flow.search_path);
            (Arc::clone(path), Arc::clone(&flow.catalog))
        };
        let objects_of = match &statement.effect {
            Some(SessionEffect::ExecutePrepared { name }) => self
                .prepared_in_message
                .get(name)
                .or_else(|| self.sql_prepared.get(name))
                .unwrap_or(statement),
            _ => statement,
        };
        let mut run = Run::analysed(
            statement,
            objects_of,
            params,
            &path,
            &self.info.upstream_user,
            catalog.as_ref(),
        );
        run.origins = result_origins(objects_of, &run, &catalog);
        run
    }

    /// Notes a statement that may change a setting the gateway follows, or end a transaction that
    /// did: the server is asked at the end of the cycle, and statements after it wait for the answer.
    fn note_settings(&mut self, statement: &Statement) {
        if changes_settings(statement) {
            self.refresh_path = true;
            self.settings_unknown = true;
            // Even outside a transaction block as last seen: a BEGIN may be on its way with it.
            self.path_changed_in_txn = true;
        } else if ends_transaction(statement) && self.path_changed_in_txn {
            self.refresh_path = true;
            self.settings_unknown = true;
            if statement.kind != StatementKind::RollbackToSavepoint {
                self.path_changed_in_txn = false;
            }
        }
    }

    /// Tracks what a statement changes in the session once it is sent.
    fn note_effects(&mut self, statement: &Statement) {
        if statement.kind == StatementKind::Copy {
            self.copy_in_cycle = true;
        }
        self.note_settings(statement);
        match &statement.effect {
            Some(SessionEffect::SetJustification(why)) => self.ctx.justification = why.clone(),
            Some(SessionEffect::DiscardAll) => {
                self.sql_prepared.clear();
                self.statements.clear();
                self.portals.clear();
            }
            Some(SessionEffect::Prepare { name, statement }) => {
                self.sql_prepared
                    .insert(name.clone(), (**statement).clone());
            }
            Some(SessionEffect::Deallocate { name: Some(name) }) => {
                self.sql_prepared.remove(name);
            }
            Some(SessionEffect::Deallocate { name: None }) => self.sql_prepared.clear(),
            _ => {}
        }
    }

    /// At the end of a request cycle, queues the gateway's own queries (their replies are swallowed).
    fn end_of_cycle(&mut self, out: &mut BytesMut) {
        if std::mem::take(&mut self.copy_in_cycle) {
            // The settings stay unknown (and `settings_unknown` set) until a later cycle asks.
            return;
        }
        let mut flow = self.lock();
        if std::mem::take(&mut self.refresh_path) {
            flow.push(Pending::SearchPath(None));
            flow.settings_pending += 1;
            encode_query(SETTINGS_QUERY, out);
        }
        // From here the settings query's answer tells: statements wait for it (see `settle`).
        self.settings_unknown = false;
    }
}

/// The OIDs of the tables the result columns of `run` (of `statement`) may come from; `None` when the
/// statement's rows are not read from its own relations (a `FETCH` reads a cursor's) or the snapshot
/// lacks one of them (a temporary table, one created since), so there is nothing to check them against.
///
/// Each comes with the highest column number that may be read of it: unchecked here, and the highest the
/// snapshot knows where masks apply (see [`ClientSide::mask`]).
fn result_origins(
    statement: &Statement,
    run: &Run,
    catalog: &CatalogSnapshot,
) -> Option<Vec<(u32, i16)>> {
    if !statement.kind.is_dml() {
        return None;
    }
    let mut oids = Vec::new();
    for object in run.components.iter().filter_map(Component::as_object) {
        if object.kind == ObjectKind::Relation {
            let name = QualifiedName {
                schema: object.schema.clone(),
                name: object.name.clone(),
            };
            oids.extend(
                catalog
                    .origins(&name)?
                    .into_iter()
                    .map(|oid| (oid, i16::MAX)),
            );
        }
    }
    Some(oids)
}

/// `statement` with the settings its `set_config` calls were bound to change: a privileged one is a
/// component to decide (`set` on the setting), one that changes the upstream identity or cannot be read
/// is refused.
fn with_bound_settings<'s>(
    statement: &'s Statement,
    names: &[Option<String>],
) -> Result<std::borrow::Cow<'s, Statement>, Refusal> {
    if statement.bound_settings.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(statement));
    }
    let mut objects = statement.objects.to_vec();
    for n in 0..statement.bound_settings.len() {
        let Some(name) = names.get(n).cloned().flatten() else {
            return Err(Refusal::unanalysable(
                "set_config() was bound a setting name the gateway cannot read",
            ));
        };
        match setting_class(&name) {
            SettingClass::Identity => {
                return Err(Refusal::unanalysable(format!(
                    "set_config() of {name} changes the upstream identity"
                )))
            }
            SettingClass::Privileged => objects.push(ObjectAccess {
                object: setting_object(&name),
                kind: ObjectKind::Setting,
                operation: Operation::Set,
                columns: Vec::new(),
            }),
            SettingClass::Ordinary => {}
        }
    }
    let mut decided = statement.clone();
    decided.objects = objects.into();
    Ok(std::borrow::Cow::Owned(decided))
}

/// Writes what is queued for the upstream, if anything, and empties the queue.
async fn send<W>(upstream: &mut W, out: &mut BytesMut) -> Result<(), GatewayError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    if !out.is_empty() {
        upstream
            .write_all(out)
            .await
            .map_err(|e| GatewayError::io("write to upstream", e))?;
        out.clear();
    }
    Ok(())
}

/// What each component of `run` does (`delete public.t`, `statement DELETE`).
fn actions_of(run: &Run) -> Vec<String> {
    run.components.iter().map(Component::describe).collect()
}

/// The parameter type OIDs at the end of a Parse frame that declares `count` of them.
fn parse_param_types(frame: &[u8], count: u16) -> Vec<u32> {
    let len = 4 * usize::from(count);
    frame
        .get(frame.len().saturating_sub(len)..)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|oid| u32::from_be_bytes([oid[0], oid[1], oid[2], oid[3]]))
        .collect()
}

/// Why a statement that depends on the session's settings is refused right after one that may change them.
const UNKNOWN_SETTINGS: &str = "an earlier statement may have changed search_path, client_encoding or \
     standard_conforming_strings, and the gateway learns what they are from the server only at the end of \
     a request cycle (one without COPY); send Sync before this statement, or run it again";

/// Whether `statement` may change a setting the gateway follows: search_path (names), client_encoding
/// and standard_conforming_strings (how text reads). `set_config` is found in the text, wherever it is;
/// a function that is not a known built-in may call it in its body.
fn changes_settings(statement: &Statement) -> bool {
    matches!(
        statement.kind,
        StatementKind::Set | StatementKind::Reset | StatementKind::Discard
    ) || statement.effect.as_ref().is_some_and(|e| {
        matches!(
            e,
            SessionEffect::SetSearchPath(_)
                | SessionEffect::SetLocalSearchPath(_)
                | SessionEffect::ResetSearchPath
                | SessionEffect::DiscardAll
        )
    }) || statement.text.to_ascii_lowercase().contains("set_config")
        || statement.objects.iter().any(|access| {
            access.kind == ObjectKind::Function && {
                let schema = access.object.schema.as_deref().unwrap_or("pg_catalog");
                builtins::function_class(schema, &access.object.name).is_none()
            }
        })
}

/// Whether `statement` ends a transaction (or its part after a savepoint), which undoes the settings
/// changed in it.
fn ends_transaction(statement: &Statement) -> bool {
    matches!(
        statement.kind,
        StatementKind::Commit
            | StatementKind::Rollback
            | StatementKind::RollbackToSavepoint
            | StatementKind::PrepareTransaction
    )
}

/// Whether what `statement` touches depends on the search path: it names an object without a schema.
fn depends_on_settings(statement: &Statement) -> bool {
    statement
        .objects
        .iter()
        .any(|access| access.object.schema.is_none() && access.kind.lives_in_schema())
}

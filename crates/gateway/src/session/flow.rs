//! The queue of replies the gateway expects from the upstream, in the order it sent the requests.
//!
//! Both directions of a session share one [`Flow`]: the client side pushes what each forwarded message
//! will produce, the upstream side pops as replies arrive. That lets the gateway refuse one statement in a
//! pipeline without desynchronising the connection (the refused message is replaced by one that fails
//! upstream, and that failure's ErrorResponse by the gateway's own), attribute each result to its
//! statement for the audit log, and run its own internal queries whose replies the client never sees.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use portcullis_sql::SearchPath;
use portcullis_store::AuditEvent;
use portcullis_wire::{
    decode_backend, encode_error, encode_parameter_status, tag::backend as tag, BackendMessage,
    ErrorInfo, TransactionStatus, WireError,
};
use tokio::sync::Notify;

use super::encoding::ClientEncoding;
use super::row_guard::Guarded;
use super::statement::{Outcome, Refusal, Run};
use super::SessionInfo;
use crate::catalog::{CatalogSnapshot, Changed};
use crate::rows::{data_row_values, row_description_tables};

/// A request forwarded upstream whose replies are still to come.
#[derive(Debug)]
pub enum Pending {
    /// A simple Query: one run per statement, completed in order; the entry ends at ReadyForQuery.
    Query(VecDeque<Run>),
    /// Parse of an analysed statement (a failure here is the statement's failure).
    Parse(Option<Run>),
    /// Bind.
    Bind,
    /// Describe of a statement or portal, with the tables its result columns may come from.
    Describe(Option<Vec<(u32, i16)>>),
    /// Close of a statement or portal.
    Close,
    /// Execute of a portal.
    Execute(Option<Run>),
    /// Sync: ends an extended-protocol cycle at ReadyForQuery.
    Sync,
    /// A fast-path function call, recorded at its FunctionCallResponse or error; the entry ends at
    /// ReadyForQuery.
    FunctionCall(Option<Run>),
    /// A refused request, replaced upstream by one that fails; its error is replaced by `refusal`.
    Refused {
        /// What the client is told.
        refusal: Refusal,
        /// The refused statement, recorded as denied.
        run: Run,
        /// Extended protocol (ends at the error) or simple (ends at ReadyForQuery).
        extended: bool,
        /// The replacement error has been sent (simple protocol waits for ReadyForQuery).
        reported: bool,
        /// The gateway could not parse the client's text, which went first as an unnamed Parse (parsed
        /// by the server, never run): the server's own syntax error is what the client sees. Cleared
        /// when the server parsed it after all, and the refusal stands.
        server_parses: bool,
    },
    /// The gateway's own [`SETTINGS_QUERY`], after the client may have changed a setting the gateway
    /// follows; none of its replies reach the client. `None` until its row arrives, and when it failed
    /// (in an aborted transaction, where nothing changes).
    SearchPath(Option<String>),
    /// A statement running under a row-count guard, up to its completion or error.
    Guarded(Box<Guarded>),
    /// The failing Parse sent after a guarded statement was denied: its error aborts the upstream
    /// transaction and is not shown (the client already has the gateway's).
    GuardRefusal,
}

/// The gateway's query for the session's search_path, sent after statements that may change a setting
/// the gateway follows: its ReadyForQuery also means every ParameterStatus those statements caused has
/// arrived. `SHOW` is the one query that cannot disturb an open transaction: unlike a `SELECT` it takes
/// no snapshot (so `SET TRANSACTION ISOLATION LEVEL` after it still works), no lock and no plan.
/// Its answer is in the client encoding.
pub const SETTINGS_QUERY: &str = "SHOW search_path";

/// Session state both directions share.
pub struct Flow {
    queue: VecDeque<Pending>,
    /// The session's search_path as the upstream last reported it.
    pub search_path: Arc<SearchPath>,
    /// The search_path `RESET` returns to: the session's value at login (role, database or startup
    /// option default).
    pub reset_path: Arc<SearchPath>,
    /// Settings queries sent and not answered yet: until they are, the gateway does not know the
    /// session's search_path, client_encoding or standard_conforming_strings.
    pub settings_pending: u32,
    /// Woken when `settings_pending` drops to zero.
    pub settled: Arc<Notify>,
    /// A settings query was answered outside a transaction block: no transaction end can undo the
    /// changes made before it. The client side takes it.
    pub settled_outside_txn: bool,
    /// The client_encoding the upstream last reported.
    pub client_encoding: String,
    /// How the gateway reads it.
    pub encoding: ClientEncoding,
    /// standard_conforming_strings as the upstream last reported it.
    pub standard_conforming_strings: bool,
    /// Set when the session must end: the server changed how it reads text under statements the
    /// gateway had already read the old way.
    pub ended: Option<String>,
    /// The catalog names resolve against.
    pub catalog: Arc<CatalogSnapshot>,
    /// The upstream's transaction status at the last ReadyForQuery.
    pub txn: TransactionStatus,
    /// DDL succeeded in the transaction still open, changing these names (`Unknown`: maybe anything):
    /// only its end makes it visible to the catalog reader.
    ddl_in_txn: Option<Changed>,
    /// A transaction that ran DDL ended, changing this: the resource's snapshots are out of date. The
    /// upstream side takes it.
    pub catalog_changed: Option<Changed>,
    /// The application_name the upstream last reported, when the client changed it after startup.
    pub application_name: Option<String>,
}

impl Flow {
    /// A flow for a session that has just logged in with `search_path`, the upstream having reported
    /// `parameters`.
    pub fn new(
        search_path: SearchPath,
        catalog: Arc<CatalogSnapshot>,
        parameters: &[(String, String)],
    ) -> Self {
        let search_path = Arc::new(search_path);
        let mut flow = Flow {
            queue: VecDeque::with_capacity(16),
            reset_path: Arc::clone(&search_path),
            search_path,
            settings_pending: 0,
            settled: Arc::new(Notify::new()),
            settled_outside_txn: false,
            // What the server assumes until it reports otherwise.
            client_encoding: "SQL_ASCII".into(),
            encoding: ClientEncoding::Unreadable,
            standard_conforming_strings: true,
            ended: None,
            catalog,
            txn: TransactionStatus::Idle,
            ddl_in_txn: None,
            catalog_changed: None,
            application_name: None,
        };
        for (name, value) in parameters {
            flow.note_parameter(name, value);
        }
        flow
    }

    /// Whether a statement behind the one running now was read with settings the server just changed,
    /// and its text is one that reads differently under another client_encoding or
    /// standard_conforming_strings (ASCII without a backslash reads the same under all of them).
    /// Statements of the running simple Query were lexed with it, before any of them ran.
    fn read_the_old_way(&self) -> bool {
        let sensitive = |run: &Run| !run.text().is_ascii() || run.text().contains('\\');
        self.queue.iter().skip(1).any(|pending| match pending {
            Pending::Query(runs) => runs.iter().any(sensitive),
            Pending::Parse(Some(run)) => sensitive(run),
            _ => false,
        })
    }

    /// Follows a setting the server reports (ParameterStatus).
    fn note_parameter(&mut self, name: &str, value: &str) {
        match name {
            "client_encoding" => {
                self.encoding = ClientEncoding::from_server_name(value);
                self.client_encoding = value.to_string();
            }
            "standard_conforming_strings" => self.standard_conforming_strings = value != "off",
            _ => {}
        }
    }

    /// The value of a `SHOW` row, read in the client encoding the server answered in.
    fn shown_setting(&self, body: &[u8]) -> Result<String, String> {
        let value = data_row_values(body)
            .ok()
            .and_then(|columns| columns.into_iter().next().flatten())
            .ok_or_else(|| "the server's answer to SHOW search_path was malformed".to_string())?;
        self.encoding
            .decode(value, &self.client_encoding)
            .map(std::borrow::Cow::into_owned)
            .map_err(|why| format!("the gateway could not read the session's search_path: {why}"))
    }

    /// Whether every column of a RowDescription comes from a table the statement was decided on, and,
    /// where masks applied, from a column the snapshot it was decided on knows. When the catalog changed
    /// behind the gateway's back (a table created in a schema earlier on the path, a column added to a
    /// masked table), the server may read what the gateway did not decide on: then the session is ended
    /// before any row of the result reaches the client.
    fn origins_as_decided(&mut self, body: &[u8]) -> bool {
        let decided = match self.queue.front() {
            Some(Pending::Query(runs)) => runs.front().and_then(|r| r.origins.as_deref()),
            Some(Pending::Execute(Some(run))) => run.origins.as_deref(),
            Some(Pending::Describe(origins)) => origins.as_deref(),
            _ => None,
        };
        let Some(decided) = decided else {
            return true;
        };
        let Ok(columns) = row_description_tables(body) else {
            return true;
        };
        let outside = columns.iter().find_map(|(table, number)| {
            if *table == 0 {
                return None;
            }
            match decided.iter().find(|(oid, _)| oid == table) {
                None => Some((*table, None)),
                Some((_, last)) if number > last => Some((*table, Some(*number))),
                Some(_) => None,
            }
        });
        let Some((other, number)) = outside else {
            return true;
        };
        let read = match self.catalog.relation_named_by(other) {
            Some(name) => name.to_string(),
            None => format!("a relation (OID {other}) created since the gateway read the catalog"),
        };
        self.ended = Some(match number {
            None => format!(
                "the server read {read}, not what the gateway decided the statement on: the catalog \
                 changed behind the gateway's back; the session is ended so that none of the result is shown"
            ),
            Some(number) => format!(
                "the server read column {number} of {read}, which masks apply to and which was added \
                 after the gateway read the catalog: the session is ended so that none of the result is \
                 shown"
            ),
        });
        false
    }

    /// Records that a request was forwarded; call before its bytes are written upstream.
    pub fn push(&mut self, pending: Pending) {
        self.queue.push_back(pending);
    }

    /// Handles one whole frame from the upstream: appends what the client must see to `out` and finished
    /// statements' audit events to `events`.
    pub fn on_upstream(
        &mut self,
        frame: &[u8],
        info: &Arc<SessionInfo>,
        out: &mut BytesMut,
        events: &mut Vec<AuditEvent>,
    ) -> Result<(), WireError> {
        let msg_tag = frame[0];
        let body = &frame[5..];
        if let Some(Pending::Guarded(guarded)) = self.queue.front_mut() {
            if is_conversion_reply(guarded, msg_tag) {
                return Ok(());
            }
            match msg_tag {
                tag::DATA_ROW => {
                    guarded.on_data_row(frame, out);
                    return Ok(());
                }
                tag::COMMAND_COMPLETE | tag::PORTAL_SUSPENDED => {
                    return self.finish_guarded(frame, info, out, events);
                }
                _ => {}
            }
        }
        let forward = match msg_tag {
            tag::DATA_ROW => self.on_data_row(body),
            tag::COMMAND_COMPLETE => self.on_command_complete(body, info, events)?,
            tag::EMPTY_QUERY_RESPONSE => self.on_empty_query(),
            tag::PORTAL_SUSPENDED => {
                if let Some(Pending::Execute(Some(run))) =
                    self.pop_if(|p| matches!(p, Pending::Execute(_)))
                {
                    events.push(run.into_event(info, Outcome::Suspended));
                }
                true
            }
            tag::PARSE_COMPLETE | tag::CLOSE_COMPLETE
                if matches!(self.queue.front(), Some(Pending::Refused { .. })) =>
            {
                // The server parsed the text the gateway could not (and closed it again).
                if let Some(Pending::Refused { server_parses, .. }) = self.queue.front_mut() {
                    *server_parses = false;
                }
                false
            }
            tag::PARSE_COMPLETE => {
                self.pop_if(|p| matches!(p, Pending::Parse(_)));
                true
            }
            tag::FUNCTION_CALL_RESPONSE => {
                if let Some(Pending::FunctionCall(run)) = self.queue.front_mut() {
                    if let Some(run) = run.take() {
                        events.push(run.into_event(info, Outcome::Done("FUNCTION CALL")));
                    }
                }
                true
            }
            tag::BIND_COMPLETE => {
                self.pop_if(|p| matches!(p, Pending::Bind));
                true
            }
            tag::CLOSE_COMPLETE => {
                self.pop_if(|p| matches!(p, Pending::Close));
                true
            }
            tag::ROW_DESCRIPTION if !self.origins_as_decided(body) => return Ok(()),
            tag::ROW_DESCRIPTION | tag::NO_DATA => match self.queue.front() {
                Some(Pending::Describe(_)) => {
                    self.queue.pop_front();
                    true
                }
                Some(Pending::SearchPath(_)) => false,
                _ => true,
            },
            tag::ERROR_RESPONSE => return self.on_error(frame, info, out, events),
            tag::READY_FOR_QUERY => self.on_ready(body, info, out, events)?,
            tag::PARAMETER_STATUS => {
                if let BackendMessage::ParameterStatus { name, value } =
                    decode_backend(msg_tag, body)?
                {
                    if name == "application_name" {
                        self.application_name = Some(value.to_string());
                    }
                    let before = (
                        self.client_encoding.clone(),
                        self.standard_conforming_strings,
                    );
                    self.note_parameter(name, value);
                    if before
                        != (
                            self.client_encoding.clone(),
                            self.standard_conforming_strings,
                        )
                        && self.read_the_old_way()
                    {
                        self.ended = Some(format!(
                            "the server changed {name} while statements the gateway had read with \
                             its old value were waiting to run (a function may have set it); they \
                             were not run"
                        ));
                        return Ok(());
                    }
                    // The upstream reports the credential's role name; clients see their own identity.
                    if name == "session_authorization" {
                        encode_parameter_status(name, &info.user, out);
                        return Ok(());
                    }
                }
                true
            }
            tag::BACKEND_KEY_DATA => false,
            _ => {
                !matches!(self.queue.front(), Some(Pending::SearchPath(_)))
                    || matches!(msg_tag, tag::NOTICE_RESPONSE | tag::NOTIFICATION_RESPONSE)
            }
        };
        if forward {
            out.extend_from_slice(frame);
        }
        Ok(())
    }

    /// A guarded statement completed or its portal was suspended: lets its completion through, or
    /// replaces it by the gateway's refusal.
    fn finish_guarded(
        &mut self,
        frame: &[u8],
        info: &Arc<SessionInfo>,
        out: &mut BytesMut,
        events: &mut Vec<AuditEvent>,
    ) -> Result<(), WireError> {
        let Some(Pending::Guarded(mut guarded)) = self.queue.pop_front() else {
            return Ok(());
        };
        let suspended = frame[0] == tag::PORTAL_SUSPENDED;
        let command = if suspended {
            None
        } else {
            match decode_backend(frame[0], &frame[5..])? {
                BackendMessage::CommandComplete { tag } => Some(tag),
                _ => return Err(WireError::Malformed("CommandComplete")),
            }
        };
        let tag_rows = command.and_then(portcullis_wire::command_tag_rows);
        if let Some((refusal, rows)) = guarded.finish(tag_rows, suspended, out) {
            encode_refusal(&refusal, out);
            events.push(
                guarded
                    .run
                    .into_event(info, Outcome::Stopped(&refusal, rows)),
            );
            return Ok(());
        }
        out.extend_from_slice(frame);
        let run = guarded.run;
        self.note_done(&run);
        let outcome = match command {
            Some(command) => Outcome::Done(command),
            None => Outcome::Suspended,
        };
        events.push(run.into_event(info, outcome));
        Ok(())
    }

    fn pop_if(&mut self, wanted: impl Fn(&Pending) -> bool) -> Option<Pending> {
        if self.queue.front().is_some_and(wanted) {
            self.queue.pop_front()
        } else {
            None
        }
    }

    fn on_data_row(&mut self, body: &[u8]) -> bool {
        match self.queue.front_mut() {
            Some(Pending::Query(runs)) => {
                if let Some(run) = runs.front_mut() {
                    run.rows_seen += 1;
                }
                true
            }
            Some(Pending::Execute(Some(run))) => {
                run.rows_seen += 1;
                true
            }
            Some(Pending::SearchPath(_)) => {
                match self.shown_setting(body) {
                    Ok(text) => {
                        if let Some(Pending::SearchPath(value)) = self.queue.front_mut() {
                            *value = Some(text);
                        }
                    }
                    // Names could no longer be resolved as the server resolves them.
                    Err(why) => self.ended = Some(why),
                }
                false
            }
            _ => true,
        }
    }

    fn on_command_complete(
        &mut self,
        body: &[u8],
        info: &Arc<SessionInfo>,
        events: &mut Vec<AuditEvent>,
    ) -> Result<bool, WireError> {
        let BackendMessage::CommandComplete { tag: command } =
            decode_backend(tag::COMMAND_COMPLETE, body)?
        else {
            return Ok(true);
        };
        let finished = match self.queue.front_mut() {
            Some(Pending::Query(runs)) => {
                let run = runs.pop_front();
                if let Some(next) = runs.front_mut() {
                    next.restart_clock();
                }
                run
            }
            Some(Pending::Execute(_)) => match self.queue.pop_front() {
                Some(Pending::Execute(run)) => run,
                _ => None,
            },
            Some(Pending::SearchPath(_)) => return Ok(false),
            _ => None,
        };
        if let Some(run) = finished {
            self.note_done(&run);
            events.push(run.into_event(info, Outcome::Done(command)));
        }
        Ok(true)
    }

    fn note_done(&mut self, run: &Run) {
        if run.changes_catalog {
            self.ddl_in_txn = Some(match (self.ddl_in_txn.take(), &run.changed_names) {
                (None, Some(names)) => Changed::Names(names.clone()),
                (Some(Changed::Names(mut before)), Some(names)) => {
                    before.extend(names.iter().cloned());
                    Changed::Names(before)
                }
                _ => Changed::Unknown,
            });
        }
    }

    fn on_empty_query(&mut self) -> bool {
        match self.queue.front() {
            Some(Pending::Execute(_)) => {
                self.queue.pop_front();
                true
            }
            Some(Pending::SearchPath(_)) => false,
            _ => true,
        }
    }

    fn on_error(
        &mut self,
        frame: &[u8],
        info: &Arc<SessionInfo>,
        out: &mut BytesMut,
        events: &mut Vec<AuditEvent>,
    ) -> Result<(), WireError> {
        let BackendMessage::ErrorResponse(fields) = decode_backend(frame[0], &frame[5..])? else {
            return Err(WireError::Malformed("ErrorResponse"));
        };
        let (code, message) = (fields.sqlstate(), fields.message());
        let mut masked = false;
        match self.queue.front_mut() {
            Some(Pending::Refused {
                refusal,
                reported,
                extended: false,
                server_parses,
                ..
            }) => {
                // Simple protocol: the entry lives on until ReadyForQuery.
                match server_parses {
                    true => out.extend_from_slice(frame),
                    false => encode_refusal(refusal, out),
                }
                *reported = true;
                return Ok(());
            }
            Some(Pending::Query(runs)) => {
                if let Some(run) = runs.pop_front() {
                    masked = run.masked;
                    events.push(run.into_event(info, Outcome::Failed(code, message)));
                }
                // The statements after the failing one never ran.
                runs.clear();
            }
            Some(Pending::FunctionCall(run)) => {
                if let Some(run) = run.take() {
                    masked = run.masked;
                    events.push(run.into_event(info, Outcome::Failed(code, message)));
                }
            }
            Some(Pending::SearchPath(_)) => return Ok(()),
            Some(Pending::GuardRefusal) => {
                self.queue.pop_front();
                self.skip_to_sync(info, events);
                return Ok(());
            }
            Some(Pending::Sync) | None => {}
            Some(_) => {
                // Extended protocol: the front message failed, and the server now skips everything up to
                // the next Sync.
                let mut replaced = false;
                match self.queue.pop_front() {
                    Some(Pending::Refused {
                        refusal,
                        run,
                        server_parses,
                        ..
                    }) => {
                        match server_parses {
                            true => out.extend_from_slice(frame),
                            false => encode_refusal(&refusal, out),
                        }
                        events.push(run.into_event(info, Outcome::Refused(&refusal)));
                        replaced = true;
                    }
                    Some(Pending::Execute(Some(run)) | Pending::Parse(Some(run))) => {
                        masked = run.masked;
                        events.push(run.into_event(info, Outcome::Failed(code, message)));
                    }
                    Some(Pending::Guarded(mut guarded)) => {
                        guarded.fail();
                        masked = guarded.run.masked;
                        events.push(guarded.run.into_event(info, Outcome::Failed(code, message)));
                    }
                    _ => {}
                }
                self.skip_to_sync(info, events);
                if replaced {
                    return Ok(());
                }
            }
        }
        if masked {
            // The detail, hint and context of an error may quote a row's raw values ("Failing row
            // contains …", "Key (ssn)=(…) already exists"); the message and code are what clients act on.
            encode_error(
                &ErrorInfo {
                    severity: fields.severity().unwrap_or("ERROR"),
                    code: code.unwrap_or("XX000"),
                    message: message.unwrap_or("the statement failed"),
                    detail: None,
                    hint: None,
                    position: None,
                },
                out,
            );
            return Ok(());
        }
        out.extend_from_slice(frame);
        Ok(())
    }

    /// Drops the entries the server skips after an error; refusals among them are still recorded.
    fn skip_to_sync(&mut self, info: &Arc<SessionInfo>, events: &mut Vec<AuditEvent>) {
        while self
            .queue
            .front()
            .is_some_and(|p| !matches!(p, Pending::Sync))
        {
            if let Some(Pending::Refused { refusal, run, .. }) = self.queue.pop_front() {
                events.push(run.into_event(info, Outcome::Refused(&refusal)));
            }
        }
    }

    fn on_ready(
        &mut self,
        body: &[u8],
        info: &Arc<SessionInfo>,
        out: &mut BytesMut,
        events: &mut Vec<AuditEvent>,
    ) -> Result<bool, WireError> {
        let BackendMessage::ReadyForQuery(status) = decode_backend(tag::READY_FOR_QUERY, body)?
        else {
            return Err(WireError::Malformed("ReadyForQuery"));
        };
        self.txn = status;
        if status == TransactionStatus::Idle {
            if let Some(changed) = self.ddl_in_txn.take() {
                // Committed or rolled back: either way the reader's next snapshot shows what is there
                // now.
                self.catalog_changed = Some(match (self.catalog_changed.take(), changed) {
                    (Some(Changed::Names(mut before)), Changed::Names(names)) => {
                        before.extend(names);
                        Changed::Names(before)
                    }
                    (None, changed) => changed,
                    _ => Changed::Unknown,
                });
            }
        }
        match self.queue.front() {
            Some(Pending::SearchPath(_)) => {
                if let Some(Pending::SearchPath(value)) = self.queue.pop_front() {
                    self.apply_search_path(value);
                }
                Ok(false)
            }
            Some(Pending::Query(_) | Pending::Sync | Pending::FunctionCall(_)) => {
                self.queue.pop_front();
                Ok(true)
            }
            Some(Pending::Refused { .. }) => {
                if let Some(Pending::Refused {
                    refusal,
                    run,
                    reported,
                    ..
                }) = self.queue.pop_front()
                {
                    if !reported {
                        encode_refusal(&refusal, out);
                    }
                    events.push(run.into_event(info, Outcome::Refused(&refusal)));
                }
                Ok(true)
            }
            _ => Ok(true),
        }
    }

    fn apply_search_path(&mut self, value: Option<String>) {
        self.settled_outside_txn = self.txn == TransactionStatus::Idle;
        self.settings_pending = self.settings_pending.saturating_sub(1);
        if self.settings_pending == 0 {
            self.settled.notify_one();
        }
        if let Some(value) = value {
            self.search_path = Arc::new(SearchPath::from_setting(&value))
        }
    }

    /// Records refused statements still queued when the session ends, so no refusal goes unrecorded.
    pub fn drain_refusals(&mut self, info: &Arc<SessionInfo>, events: &mut Vec<AuditEvent>) {
        for pending in self.queue.drain(..) {
            if let Pending::Refused { refusal, run, .. } = pending {
                events.push(run.into_event(info, Outcome::Refused(&refusal)));
            }
        }
    }
}

/// Whether a reply is one of the steps the gateway added in place of a simple Query, whose replies are
/// the gateway's own and not shown (the RowDescription its Describe brings is what the Query would give).
fn is_conversion_reply(guarded: &Guarded, msg_tag: u8) -> bool {
    guarded.converted
        && matches!(
            msg_tag,
            tag::PARSE_COMPLETE | tag::BIND_COMPLETE | tag::NO_DATA
        )
}

/// The text a hex string of UTF-8 bytes spells (`encode(…, 'hex')` output).
pub fn from_hex_utf8(hex: &str) -> Option<String> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let bytes = digits
        .chunks_exact(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Writes the gateway's refusal as an ErrorResponse.
pub fn encode_refusal(refusal: &Refusal, out: &mut BytesMut) {
    encode_error(
        &ErrorInfo {
            severity: "ERROR",
            code: refusal.code,
            message: &refusal.message,
            detail: None,
            hint: None,
            position: refusal.position,
        },
        out,
    );
}

//! Statements a row-count rule can deny ("block when more than 10 rows"): the gateway runs them guarded.
//!
//! A guarded statement runs in the extended protocol, so that it stays inside a transaction the gateway can
//! still abort once the count is known: a simple Query is sent as Parse/Bind/Describe/Execute/Flush and its
//! Sync is held back until the verdict. Rows below the denying count reach the client as they come; rows
//! past it are dropped (a read is cut off); in between, when a higher-ranked passive rule may still let the
//! statement through, rows are held until the count settles the verdict. A denied statement's
//! CommandComplete is replaced by the gateway's error and a failing Parse is sent after it, so the upstream
//! aborts the transaction and nothing the statement wrote is kept — exactly what the client would see had
//! the statement failed by itself.

use bytes::BytesMut;
use portcullis_policy::{Component, Verdict};
use portcullis_sql::{Operation, StatementKind};
use tokio::sync::oneshot;

use super::statement::{Refusal, Run};
use crate::policy::RowLimits;

/// Rows a guard may hold back while the verdict is open; a result that needs more is denied.
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// What became of a guarded statement, for the client side to finish its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardVerdict {
    /// It completed within the limits; `rows` so far when its portal was suspended (more may follow).
    Allowed {
        /// The portal's rows so far, when it was suspended rather than completed.
        suspended_at: Option<u64>,
    },
    /// The rules denied it: the gateway must abort the upstream transaction.
    Denied,
    /// It failed upstream by itself; the upstream already skips to the next Sync.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The count has not yet settled the verdict.
    Open,
    /// The count passed the point where the verdict can change, and it allows.
    Allowed,
    /// The verdict is a denial: the remaining rows are dropped.
    Cut,
}

/// A statement running under a row-count guard, as the upstream side tracks it.
#[derive(Debug)]
pub struct Guarded {
    /// The statement.
    pub run: Run,
    /// Sent by the gateway in place of a simple Query: its ParseComplete, BindComplete and NoData are
    /// the gateway's, not the client's.
    pub converted: bool,
    limits: RowLimits,
    /// Rows its portal returned in earlier Executes (clients with a fetch size run a portal in pieces).
    rows_before: u64,
    held: BytesMut,
    state: State,
    /// Why it is denied when the gateway, not a rule's count, decided.
    overflow: bool,
    verdict: Option<oneshot::Sender<GuardVerdict>>,
}

impl Guarded {
    /// Guards `run`; the receiver gets the verdict once the statement ends.
    pub fn new(
        run: Run,
        limits: RowLimits,
        rows_before: u64,
        converted: bool,
    ) -> (Guarded, oneshot::Receiver<GuardVerdict>) {
        let (tx, rx) = oneshot::channel();
        let guarded = Guarded {
            run,
            converted,
            limits,
            rows_before,
            held: BytesMut::new(),
            state: State::Open,
            overflow: false,
            verdict: Some(tx),
        };
        (guarded, rx)
    }

    fn total(&self, rows: u64) -> u64 {
        self.rows_before.saturating_add(rows)
    }

    fn denies(&self, rows: u64) -> bool {
        self.run
            .outcome_rules
            .as_ref()
            .is_some_and(|rules| rules.evaluate(rows).verdict == Verdict::Deny)
    }

    /// Handles one DataRow frame: forwards it to `out`, holds it, or drops it.
    pub fn on_data_row(&mut self, frame: &[u8], out: &mut BytesMut) {
        self.run.rows_seen += 1;
        let count = self.total(self.run.rows_seen);
        match self.state {
            State::Cut => {}
            State::Allowed => out.extend_from_slice(frame),
            State::Open if count < self.limits.deny_from => out.extend_from_slice(frame),
            State::Open if count < self.limits.settle_at => {
                if self.held.len() + frame.len() > MAX_HELD_BYTES {
                    self.overflow = true;
                    self.cut();
                } else {
                    self.held.extend_from_slice(frame);
                }
            }
            State::Open => {
                if self.denies(count) {
                    self.cut();
                } else {
                    self.state = State::Allowed;
                    out.extend_from_slice(&self.held);
                    self.held = BytesMut::new();
                    out.extend_from_slice(frame);
                }
            }
        }
    }

    fn cut(&mut self) {
        self.state = State::Cut;
        self.held = BytesMut::new();
    }

    /// The statement completed (`tag_rows` from its command tag) or its portal was suspended.
    /// Returns the refusal to send in place of its completion, with the row count that decided it, when
    /// it is denied; otherwise the rows held back are appended to `out`, and the caller forwards the
    /// completion after them.
    pub fn finish(
        &mut self,
        tag_rows: Option<u64>,
        suspended: bool,
        out: &mut BytesMut,
    ) -> Option<(Refusal, u64)> {
        let count = self.total(tag_rows.unwrap_or(self.run.rows_seen));
        let denied = match self.state {
            State::Cut => true,
            State::Allowed => false,
            // A suspended portal may still grow past a count that denies: the rows held cannot be let
            // through on a guess.
            State::Open => self.denies(count) || (suspended && count >= self.limits.deny_from),
        };
        if denied {
            self.held = BytesMut::new();
            self.send(GuardVerdict::Denied);
            // A cut read stopped counting where the rules denied it.
            let counted = if self.state == State::Cut {
                count.max(self.limits.deny_from)
            } else {
                count
            };
            return Some((Refusal::stopped(&self.denial_reason(counted)), counted));
        }
        out.extend_from_slice(&self.held);
        self.held = BytesMut::new();
        self.send(GuardVerdict::Allowed {
            suspended_at: suspended.then_some(count),
        });
        None
    }

    /// The statement failed upstream by itself.
    pub fn fail(&mut self) {
        self.send(GuardVerdict::Failed);
    }

    fn denial_reason(&self, counted: u64) -> String {
        if self.overflow {
            return format!(
                "a row-count rule decides only once the result's size is known, and more than {} MiB of \
                 rows came before it could",
                MAX_HELD_BYTES / (1024 * 1024)
            );
        }
        self.run
            .outcome_rules
            .as_ref()
            .map(|rules| rules.evaluate(counted).reason)
            .unwrap_or_else(|| format!("a row-count rule denies {counted} rows"))
    }

    fn send(&mut self, verdict: GuardVerdict) {
        if let Some(tx) = self.verdict.take() {
            // The client side may be gone already; then nobody is waiting.
            let _ = tx.send(verdict);
        }
    }
}

/// Why a statement cannot be guarded, when its rows do not come back in its own result: the gateway
/// could not count them, so a denying row-count rule refuses such a statement whole.
/// `EXECUTE name` is judged by the statement it runs, whose kind its statement component carries.
pub fn unguardable(components: &[Component]) -> Option<&'static str> {
    let writes = components.iter().filter_map(Component::as_object).any(|o| {
        matches!(
            o.operation,
            Operation::Insert | Operation::Update | Operation::Delete | Operation::Truncate
        )
    });
    let kind = components
        .iter()
        .find_map(Component::as_statement)
        .map(|s| &s.kind);
    let Some(kind) = kind else {
        return Some("the statement was not analysed");
    };
    match kind {
        StatementKind::Select | StatementKind::Execute | StatementKind::Fetch if writes => Some(
            "its writes happen inside a data-modifying WITH, whose row count the result does not show",
        ),
        StatementKind::Select
        | StatementKind::Execute
        | StatementKind::Fetch
        | StatementKind::Insert
        | StatementKind::Update
        | StatementKind::Delete
        | StatementKind::Merge
        | StatementKind::CreateTableAs
        | StatementKind::SelectInto
        | StatementKind::CreateMaterializedView => None,
        StatementKind::Copy => Some("COPY streams its rows outside the result the gateway counts"),
        StatementKind::DeclareCursor => {
            Some("a cursor's rows are fetched later, by statements the rule does not see")
        }
        _ => Some("the statement's result does not carry the rows it reads or changes"),
    }
}

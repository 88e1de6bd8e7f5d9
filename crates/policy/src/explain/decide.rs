//! The one pipeline `policy explain`, `policy test`, `policy what-if` and the portal's explain page run
//! SQL through: the gateway's analyser, name resolution and engine calls, in the gateway's order.
//! Keeping it in one place is what makes them agree with each other and with the gateway; none of them
//! decides anything on its own.

use crate::{
    components_with, CompiledPolicy, Component, Context, OutcomeDecision, StatementDecision,
    Verdict,
};
use portcullis_sql::{resolve, Analyzer, Catalog, SearchPath, StatementKind};
use time::OffsetDateTime;

/// What to decide.
pub struct Request<'a> {
    /// Who, where from, on what.
    pub ctx: &'a Context,
    /// The session's search_path setting.
    pub search_path: &'a str,
    /// The statement's time.
    pub now: OffsetDateTime,
    /// Rows fetched or affected, to decide row-count rules as after execution.
    pub rows: Option<u64>,
    /// The SQL text.
    pub sql: &'a str,
}

/// What the policy decides for a text.
pub enum Decision {
    /// Each statement of the text, in order (none for an empty or comment-only text).
    Statements(Vec<Decided>),
    /// The text cannot be analysed at all (the gateway refuses it); the analyser's message.
    Unanalysable(String),
}

/// One statement and what the engine decided for it.
pub struct Decided {
    /// The statement's own text.
    pub text: String,
    /// Its kind.
    pub kind: StatementKind,
    /// Why it cannot be fully analysed, if so.
    pub opaque: Option<String>,
    /// What the engine was given: each object access, then the statement itself.
    pub components: Vec<Component>,
    /// The decision before execution.
    pub decision: StatementDecision,
    /// The row count and what the row-count rules decided for it, when rows were given and rules were
    /// left to decide after execution.
    pub outcome: Option<(u64, OutcomeDecision)>,
}

impl Decided {
    /// The verdict once the rows are known: a statement allowed before execution can still be stopped
    /// by a row-count rule, as the gateway stops it.
    pub fn verdict(&self) -> Verdict {
        match (&self.decision.verdict, &self.outcome) {
            (Verdict::Allow, Some((_, outcome))) => outcome.verdict,
            (verdict, _) => *verdict,
        }
    }

    /// The reason, with what the row-count rules added, worded as the monitor records it.
    pub fn reason(&self) -> String {
        match &self.outcome {
            Some((_, o)) if !o.fired.is_empty() => {
                format!("{}; after execution: {}", self.decision.reason, o.reason)
            }
            _ => self.decision.reason.clone(),
        }
    }

    /// Ids of the Cedar policies that decided and the rules that fired, before and after execution.
    pub fn fired_ids(&self) -> impl Iterator<Item = &str> {
        let after = self.outcome.iter().flat_map(|(_, o)| o.fired.iter());
        self.decision
            .policies
            .iter()
            .map(|p| p.id.as_str())
            .chain(self.decision.fired.iter().map(|f| f.id.as_str()))
            .chain(after.map(|f| f.id.as_str()))
    }
}

impl Decision {
    /// The verdict for the whole text: a denial of any statement denies it, then a hold for approval,
    /// as the gateway stops at the first statement it refuses.
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::Unanalysable(_) => Verdict::Deny,
            Decision::Statements(statements) => {
                let verdicts: Vec<Verdict> = statements.iter().map(Decided::verdict).collect();
                if verdicts.contains(&Verdict::Deny) {
                    Verdict::Deny
                } else if verdicts.contains(&Verdict::RequireApproval) {
                    Verdict::RequireApproval
                } else {
                    Verdict::Allow
                }
            }
        }
    }

    /// The reasons of every statement, joined (the analyser's message for an unanalysable text).
    pub fn reason(&self) -> String {
        match self {
            Decision::Unanalysable(e) => unanalysable_reason(e),
            Decision::Statements(statements) => statements
                .iter()
                .map(Decided::reason)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// Why an unanalysable text is denied, as `policy explain` says it.
pub fn unanalysable_reason(error: &str) -> String {
    format!("the text cannot be analysed: {error}")
}

/// `allow`, `deny` or `require-approval`: the words the monitor, the audit log and case files use.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::RequireApproval => "require-approval",
    }
}

/// Decides `request.sql` under `policy`, resolving unqualified names against `catalog` along the
/// request's search_path (`$user` is the context's user).
pub fn decide(policy: &CompiledPolicy, request: &Request<'_>, catalog: &dyn Catalog) -> Decision {
    let ctx = request.ctx;
    let user = ctx.user_label();
    let path = SearchPath::from_setting(request.search_path);
    // Cache disabled: one text, analysed once, with the gateway's size limit.
    let analysis = match Analyzer::new(0).analyze(request.sql) {
        Ok(analysis) => analysis,
        Err(e) => return Decision::Unanalysable(e.to_string()),
    };
    let statements = analysis
        .statements
        .iter()
        .map(|stmt| {
            let components =
                components_with(stmt, |o| resolve(&o.object, o.kind, &path, user, catalog));
            let decision = policy.evaluate_statement(ctx, &components, request.now);
            let outcome = match request.rows {
                Some(rows) if !decision.post_execution.is_empty() => Some((
                    rows,
                    policy.evaluate_outcome(&decision.post_execution, rows),
                )),
                _ => None,
            };
            Decided {
                text: stmt.text.clone(),
                kind: stmt.kind.clone(),
                opaque: stmt.opaque.clone(),
                components,
                decision,
                outcome,
            }
        })
        .collect();
    Decision::Statements(statements)
}

/// The catalog assumed without a database to ask: every schema on the search path exists, every
/// relation lives in the first one, and functions are built-ins in `pg_catalog`.
pub struct AssumedCatalog {
    schemas: Vec<String>,
}

impl AssumedCatalog {
    /// The assumptions for `search_path` as `user` sees it.
    pub fn new(search_path: &str, user: &str) -> Self {
        AssumedCatalog {
            schemas: SearchPath::from_setting(search_path)
                .schemas(user)
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl Catalog for AssumedCatalog {
    fn has_relation(&self, schema: &str, _name: &str) -> bool {
        self.schemas.first().is_some_and(|s| s == schema)
    }
    fn has_schema(&self, schema: &str) -> bool {
        self.schemas.iter().any(|s| s == schema)
    }
    fn has_function(&self, schema: &str, _name: &str) -> bool {
        schema == "pg_catalog"
    }
}

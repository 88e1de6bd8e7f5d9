//! Explaining a decision without a gateway: the pipeline `policy explain`, `policy test`,
//! `policy what-if` and the web portal's explain page share ([`decide()`]), the report `policy explain`
//! and the portal show ([`explain()`]), and the reading of the context they are asked in
//! ([`ContextInput`]). The CLI and the portal print the same [`Report`]; neither decides on its own.

mod context;
mod decide;
mod report;

pub use context::{
    parse_device_trust, parse_location, parse_time, ContextInput, DEFAULT_SEARCH_PATH,
};
pub use decide::{
    decide, unanalysable_reason, verdict_name, AssumedCatalog, Decided, Decision, Request,
};
pub use report::{
    explain, ComponentReport, FiredReport, MissingReport, OutcomeReport, PolicyReport,
    ProtectionReport, Report, RequirementReport, RuleRef, StatementReport,
};

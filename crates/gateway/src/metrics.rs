//! The gateway's calls into `portcullis-metrics`, translated from its own types.

use portcullis_metrics::gateway::{self as m, Decision, Stage};
use portcullis_policy::{ConnectionStage, Verdict};
use portcullis_store::PolicyTrail;

fn of(verdict: Verdict) -> Decision {
    match verdict {
        Verdict::Allow => Decision::Allow,
        Verdict::Deny => Decision::Deny,
        Verdict::RequireApproval => Decision::RequireApproval,
    }
}

fn named(result: &str) -> Decision {
    match result {
        "allow" => Decision::Allow,
        "require-approval" => Decision::RequireApproval,
        _ => Decision::Deny,
    }
}

/// A connection stage decided `verdict`.
pub(crate) fn connection_decision(stage: ConnectionStage, verdict: Verdict) {
    let stage = match stage {
        ConnectionStage::Pre => Stage::PreConnection,
        ConnectionStage::Post => Stage::PostConnection,
    };
    m::decision(stage, of(verdict));
}

/// A statement's record is written: `decision` is whether it ran (`allow`) or not, `policy` the
/// policy's decision when one was taken. A statement held for approval counts as `require-approval`.
pub(crate) fn statement_recorded(decision: &str, policy: Option<&PolicyTrail>) {
    let policy = policy.map(|trail| named(&trail.result));
    if let Some(outcome) = policy {
        m::decision(Stage::Statement, outcome);
    }
    m::statement(match (decision, policy) {
        ("allow", _) => Decision::Allow,
        (_, Some(Decision::RequireApproval)) => Decision::RequireApproval,
        _ => Decision::Deny,
    });
}

//! The policy in force: read from the store, compiled once, and swapped for a newer version when an
//! admin applies one or an access request is approved (its grant joins the policy's grants). Sessions
//! take the current version per decision, so a new policy applies to running sessions from their next
//! statement without dropping them; an approved grant carries its end (`valid_until`), so a session
//! loses it at its next statement after that.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use portcullis_policy::{
    CompiledPolicy, ConnectionDecision, Context, DecidingPolicy, FiredRule, Observed,
    OutcomeDecision, PendingOutcome, Policy, Requirement, RequirementStatus, Reservation,
    StatementDecision, Verdict, Workflow,
};
use portcullis_store::{Clock, FiredRuleRecord, PolicyTrail, RequirementRecord, Store};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::GatewayError;

/// How often the gateway looks for a newly applied policy.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// What a gateway with no applied policy tells every client: nothing is allowed by default.
pub const NO_POLICY: &str =
    "no policy has been applied to this gateway; an administrator must run `portcullis policy apply -f FILE`";

/// One compiled version of the policy.
#[derive(Debug)]
pub struct ActivePolicy {
    /// The store's version number; `None` when no policy was ever applied (everything is denied).
    pub version: Option<i64>,
    /// The compiled policy, with the grants of approved access requests.
    pub compiled: CompiledPolicy,
    /// The store's count of approved access requests the compiled grants include.
    pub grants_version: i64,
    /// The policy's approval workflows (held statements and connections become requests of these).
    pub workflows: Vec<Workflow>,
    /// The resources connected to only inside an approved reservation's window.
    pub reservations: Vec<Reservation>,
}

/// The policy sessions decide with; cheap to read from every session.
pub struct PolicySource {
    current: RwLock<Arc<ActivePolicy>>,
}

impl PolicySource {
    /// Loads the policy in force. A stored policy that no longer compiles (written by another version of
    /// the gateway) stops the start: guessing at a policy is not an option.
    pub fn load(store: &Store, clock: &Clock) -> Result<PolicySource, GatewayError> {
        let active = read_active(store, clock.now())?;
        Ok(PolicySource {
            current: RwLock::new(Arc::new(active)),
        })
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<ActivePolicy> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Loads a newer applied version, if there is one. On error the policy in force stays.
    pub fn refresh(&self, store: &Store, now: OffsetDateTime) -> Result<bool, GatewayError> {
        let stored = store.active_policy_version()?;
        let grants = store.access_grants_version()?;
        let current = self.current();
        if stored == current.version && grants == current.grants_version {
            return Ok(false);
        }
        let active = read_active(store, now)?;
        tracing::info!(version = ?active.version, "policy reloaded");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
        Ok(true)
    }

    /// Watches the store for newly applied versions until `shutdown` turns true; meanwhile escalates
    /// and times out pending approval requests by `clock`.
    pub async fn watch(
        self: Arc<Self>,
        store: Store,
        clock: Clock,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_INTERVAL) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
            let source = Arc::clone(&self);
            let store = store.clone();
            let now = clock.now();
            let refresh = move || {
                // Pending requests escalate and time out even when nobody looks.
                let current = source.current();
                if let Err(e) = portcullis_workflows::expire_due(&store, &current.workflows, now) {
                    tracing::warn!(error = %e, "cannot time out pending approval requests");
                }
                source.refresh(&store, now)
            };
            match tokio::task::spawn_blocking(refresh).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot load the applied policy; the previous one stays in force")
                }
                Err(e) => tracing::error!(error = %e, "policy reload task failed"),
            }
        }
    }
}

fn read_active(store: &Store, now: OffsetDateTime) -> Result<ActivePolicy, GatewayError> {
    // Read first: an approval landing while the policy compiles is picked up by the next poll.
    let grants_version = store.access_grants_version()?;
    let Some(stored) = store.active_policy()? else {
        return Ok(ActivePolicy {
            version: None,
            compiled: CompiledPolicy::compile(&Policy::default()),
            grants_version,
            workflows: Vec::new(),
            reservations: Vec::new(),
        });
    };
    let source = format!("{} (policy version {})", stored.source, stored.version);
    let mut policy = Policy::from_yaml(&stored.text, &source)
        .map_err(|e| GatewayError::Policy(e.to_string()))?;
    let approved = portcullis_workflows::active_grants(store, &policy, now)
        .map_err(|e| GatewayError::Policy(format!("cannot read approved access requests: {e}")))?;
    policy.grants.extend(approved);
    Ok(ActivePolicy {
        version: Some(stored.version),
        compiled: CompiledPolicy::compile(&policy),
        grants_version,
        workflows: policy.workflows,
        reservations: policy.reservations,
    })
}

/// `allow`, `deny` or `require-approval`.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::RequireApproval => "require-approval",
    }
}

/// The monitor record of a statement decision; `actions` describes each component.
pub fn statement_trail(
    version: Option<i64>,
    ctx: &Context,
    actions: Vec<String>,
    decision: &StatementDecision,
) -> PolicyTrail {
    PolicyTrail {
        stage: "statement".into(),
        result: verdict_name(decision.verdict).into(),
        policy_version: version,
        rules: decision
            .policies
            .iter()
            .map(|p| policy_record(p, &actions))
            .chain(decision.fired.iter().map(|f| fired_record(f, &actions)))
            .collect(),
        requirements: decision
            .requirements
            .iter()
            .map(requirement_record)
            .collect(),
        missing_grants: decision
            .missing_grants
            .iter()
            .map(|m| m.message.clone())
            .collect(),
        logout: decision.logout,
        reason: decision.reason.clone(),
        actions,
        ..context_trail(ctx)
    }
}

/// The monitor record of a connection-stage decision.
pub fn connection_trail(
    stage: &str,
    version: Option<i64>,
    ctx: &Context,
    decision: &ConnectionDecision,
) -> PolicyTrail {
    PolicyTrail {
        stage: stage.into(),
        result: verdict_name(decision.verdict).into(),
        policy_version: version,
        actions: vec![format!("connect {}", ctx.resource)],
        rules: decision
            .policies
            .iter()
            .map(|p| policy_record(p, &[]))
            .chain(decision.fired.iter().map(|f| fired_record(f, &[])))
            .collect(),
        requirements: decision
            .requirements
            .iter()
            .map(requirement_record)
            .collect(),
        logout: decision.logout,
        reason: decision.reason.clone(),
        ..context_trail(ctx)
    }
}

fn context_trail(ctx: &Context) -> PolicyTrail {
    PolicyTrail {
        location: match &ctx.location {
            Observed::Known(country) => country.clone(),
            Observed::Unknown => "unknown".into(),
        },
        device_trust: match &ctx.device_trust {
            Observed::Known(trust) => trust.to_string(),
            Observed::Unknown => "unknown".into(),
        },
        justification: ctx.justification.clone(),
        roles: Some(ctx.roles.clone()),
        ..PolicyTrail::default()
    }
}

/// A Cedar permit or forbid as the monitor shows it next to the rules.
fn policy_record(p: &DecidingPolicy, actions: &[String]) -> FiredRuleRecord {
    FiredRuleRecord {
        id: p.id.clone(),
        name: None,
        action: p.effect.as_str().into(),
        severity: String::new(),
        components: p
            .components
            .iter()
            .filter_map(|i| actions.get(*i).cloned())
            .collect(),
        message: p
            .error
            .as_ref()
            .map(|why| format!("evaluation failed: {why}")),
    }
}

fn requirement_record(r: &RequirementStatus) -> RequirementRecord {
    RequirementRecord {
        kind: r.requirement.kind().into(),
        policy: r.policy.clone(),
        met: r.met,
        detail: match &r.requirement {
            Requirement::Mfa { prompt } | Requirement::Justification { prompt } => prompt.clone(),
            Requirement::Approval { workflow } => Some(workflow.clone()),
        },
    }
}

fn fired_record(f: &FiredRule, actions: &[String]) -> FiredRuleRecord {
    FiredRuleRecord {
        id: f.id.clone(),
        name: f.name.clone(),
        action: f.action.as_str().into(),
        severity: f.severity.as_str().into(),
        components: f
            .components
            .iter()
            .filter_map(|i| actions.get(*i).cloned())
            .collect(),
        message: match &f.indeterminate {
            Some(why) => Some(format!("applied as a denial: {why}")),
            None => f.message.clone(),
        },
    }
}

/// The monitor record of a decision made without any applied policy: a denial.
pub fn no_policy_trail(stage: &str, ctx: &Context) -> PolicyTrail {
    PolicyTrail {
        stage: stage.into(),
        result: "deny".into(),
        reason: NO_POLICY.into(),
        ..context_trail(ctx)
    }
}

/// Adds what the row-count rules decided after execution to a statement's trail.
pub fn add_outcome(trail: &mut PolicyTrail, outcome: &OutcomeDecision) {
    let PolicyTrail { rules, actions, .. } = trail;
    rules.extend(outcome.fired.iter().map(|f| fired_record(f, actions)));
    if !outcome.fired.is_empty() {
        trail.reason = format!("{}; after execution: {}", trail.reason, outcome.reason);
    }
}

/// Where the row-count rules pending for a statement can deny it: the gateway guards such a statement,
/// cutting a read off and rolling a write back once the rows cross `deny_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLimits {
    /// The smallest row count the rules deny.
    pub deny_from: u64,
    /// From this count on the verdict no longer changes (one past the highest threshold). Between
    /// `deny_from` and here a read's rows are held back until the count settles the verdict.
    pub settle_at: u64,
}

/// The row counts at which `pending` denies, if any does. Per component the first pending rule whose
/// threshold the count exceeds fires, so a block ranked below a passive rule with no higher threshold can
/// never fire ("allow rows > 1" above "block rows > 10" lets any count through). The verdict changes only
/// where a threshold is crossed, so the counts just past each threshold are the only ones to try.
pub fn row_limits(compiled: &CompiledPolicy, pending: &PendingOutcome) -> Option<RowLimits> {
    let rules = compiled.rules();
    let mut counts: Vec<u64> = pending
        .components
        .iter()
        .flat_map(|c| c.rules.iter())
        .filter_map(|pos| rules.get(*pos)?.when.rows_above)
        .map(|threshold| threshold.saturating_add(1))
        .collect();
    counts.push(0);
    counts.sort_unstable();
    counts.dedup();
    let settle_at = counts.last().copied().unwrap_or_default();
    counts
        .into_iter()
        .find(|rows| compiled.evaluate_outcome(pending, *rows).verdict == Verdict::Deny)
        .map(|deny_from| RowLimits {
            deny_from,
            settle_at,
        })
}

//! Finding the policies that match one request. Each policy is decided on its own — its scope in Rust
//! ([`Scope`](crate::cedar::scope::Scope)), then its conditions by Cedar — so every match is known (not
//! only those Cedar needs for an allow/deny answer) and a policy whose evaluation fails is known by
//! effect.

use cedar_policy::{AuthorizationError, Authorizer, Entities, Request};

use crate::cedar::policies::{CedarSets, Check, Needs};
use crate::cedar::request::{Session, Target};
use crate::cedar::scope::Facts;
use crate::cedar::vocabulary::CedarAction;

/// One policy that matched a request, or failed to evaluate on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Position in [`CedarPolicies::statements`](crate::CedarPolicies::statements).
    pub position: usize,
    /// `Some(why)` when evaluation failed: a forbid then applies (fail closed); a permit then imposes its
    /// requirements but does not authorise.
    pub error: Option<String>,
}

/// The policies matching one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestMatch {
    pub forbids: Vec<Hit>,
    pub permits: Vec<Hit>,
}

/// Which forbids a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forbids {
    /// Every forbid (after authentication).
    All,
    /// Only those decidable before authentication.
    BeforeLogin,
}

/// The request, built once and only if some policy's conditions need Cedar.
struct Lazy<'s, 'v> {
    session: &'s Session<'v>,
    action: CedarAction,
    resource: &'s crate::cedar::request::Resolved<'s>,
    /// By [`Needs::index`]: the request with just the entities some conditions read.
    built: [Option<Result<(Request, Entities), String>>; 8],
}

impl Lazy<'_, '_> {
    fn get(&mut self, needs: Needs) -> &Result<(Request, Entities), String> {
        let (session, action, resource) = (self.session, self.action, self.resource);
        // `& 7` keeps the index in the array whatever `index` returns.
        self.built[needs.index() & 7]
            .get_or_insert_with(|| session.request(action, resource, needs))
    }
}

/// Results of conditions that read only the context, by policy position: the same for every request of
/// one evaluation, so each is asked once.
#[derive(Debug, Default)]
pub(crate) struct Memo(Vec<Option<Option<Hit>>>);

impl Memo {
    fn get_or(&mut self, position: usize, eval: impl FnOnce() -> Option<Hit>) -> Option<Hit> {
        if self.0.len() <= position {
            self.0.resize(position + 1, None);
        }
        match self.0.get_mut(position) {
            Some(Some(known)) => known.clone(),
            Some(slot) => slot.insert(eval()).clone(),
            None => eval(),
        }
    }
}

/// The policies of `sets` matching `action` on `target`. Before login (or without a user), permits are
/// not evaluated: requirements need a user.
pub(crate) fn evaluate(
    sets: &CedarSets,
    which: Forbids,
    session: &Session<'_>,
    action: CedarAction,
    target: Target<'_>,
    memo: &mut Memo,
) -> RequestMatch {
    let resolved = session.resolve(target);
    let vocabulary = session.vocabulary();
    let Some(action_uid) = vocabulary.action(action).map(|e| e.uid()) else {
        return unbuildable(sets, which, "the action is not in the schema");
    };
    let principal = session.principal();
    let action_facts = Facts {
        uid: &action_uid,
        ancestors: vocabulary.action_ancestors(action),
    };
    let resource = Facts {
        uid: &resolved.uid,
        ancestors: &resolved.ancestors,
    };
    let mut lazy = Lazy {
        session,
        action,
        resource: &resolved,
        built: Default::default(),
    };
    let authorizer = Authorizer::new();
    let mut out = RequestMatch::default();
    let user_known = session.has_user();
    for check in &sets.forbids {
        if which == Forbids::BeforeLogin && !check.before_login {
            continue;
        }
        if !user_known && !check.before_login {
            // Without a user, a forbid about the principal cannot be decided: it applies.
            out.forbids.push(Hit {
                position: check.position,
                error: Some("the user is not known".into()),
            });
            continue;
        }
        if check.scope.admits(&principal, &action_facts, &resource) {
            out.forbids
                .extend(decide(check, &mut lazy, &authorizer, memo));
        }
    }
    if which == Forbids::All && user_known {
        for check in &sets.permits {
            if check.scope.admits(&principal, &action_facts, &resource) {
                out.permits
                    .extend(decide(check, &mut lazy, &authorizer, memo));
            }
        }
    }
    out
}

/// Whether the conditions of `check`, whose scope admits the request, hold.
fn decide(
    check: &Check,
    lazy: &mut Lazy<'_, '_>,
    authorizer: &Authorizer,
    memo: &mut Memo,
) -> Option<Hit> {
    if check.needs == Needs::default() {
        return memo.get_or(check.position, || conditions_hold(check, lazy, authorizer));
    }
    conditions_hold(check, lazy, authorizer)
}

fn conditions_hold(check: &Check, lazy: &mut Lazy<'_, '_>, authorizer: &Authorizer) -> Option<Hit> {
    let Some(conditions) = &check.conditions else {
        return Some(Hit {
            position: check.position,
            error: None,
        });
    };
    let (request, entities) = match lazy.get(check.needs) {
        Ok(built) => built,
        Err(why) => {
            return Some(Hit {
                position: check.position,
                error: Some(why.clone()),
            })
        }
    };
    let response = authorizer.is_authorized(request, conditions, entities);
    let diagnostics = response.diagnostics();
    if let Some(AuthorizationError::PolicyEvaluationError(e)) = diagnostics.errors().next() {
        return Some(Hit {
            position: check.position,
            error: Some(e.inner().to_string()),
        });
    }
    // A one-policy set: the policy "contributed" exactly when its conditions held.
    let held = diagnostics.reason().next().is_some();
    held.then_some(Hit {
        position: check.position,
        error: None,
    })
}

/// A request that could not even be built (a context value Cedar rejects): every forbid applies, to fail
/// closed; no permit matches.
pub(crate) fn unbuildable(sets: &CedarSets, which: Forbids, why: &str) -> RequestMatch {
    RequestMatch {
        forbids: sets
            .forbids
            .iter()
            .filter(|c| which == Forbids::All || c.before_login)
            .map(|c| Hit {
                position: c.position,
                error: Some(why.to_owned()),
            })
            .collect(),
        permits: Vec::new(),
    }
}

//! Steps 1 and 3 of ARCHITECTURE §3 for Cedar policies: which forbids apply, and what the matching
//! permits require. The caller (the compiled policy) merges this with grants and ordered rules.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::cedar::cache::{RequestKey, SessionCache};
use crate::cedar::engine::{self, Forbids, Hit, Memo, RequestMatch};
use crate::cedar::policies::{CedarEffect, CedarPolicies, Requirement};
use crate::cedar::request::{Session, Target};
use crate::cedar::vocabulary::{CedarAction, Vocabulary};
use crate::components::Component;
use crate::context::Context;
use crate::decision::{DecidingPolicy, RequirementStatus};

/// What the Cedar policies say about one statement or connection.
#[derive(Debug, Default)]
pub(crate) struct CedarOutcome {
    /// Forbids that applied and permits that matched, in file order.
    pub policies: Vec<DecidingPolicy>,
    /// Requirements of the matching permits.
    pub requirements: Vec<RequirementStatus>,
    /// Requests (component index; `None` for the connection) matched by a permit that evaluated without
    /// error: no grant is needed for them, their permits' requirements are.
    pub covered: Vec<Option<usize>>,
    /// Why applying forbids deny, in file order.
    pub forbidden: Vec<String>,
    /// Whether an applying forbid has `@logout`.
    pub logout: bool,
}

impl CedarOutcome {
    /// Unmet MFA and justification requirements: these deny, with instructions.
    pub fn unmet_denying(&self) -> Vec<String> {
        self.unmet(|r| !matches!(r, Requirement::Approval { .. }))
    }

    /// Unmet approvals: the action waits for one.
    pub fn unmet_approvals(&self) -> Vec<String> {
        self.unmet(|r| matches!(r, Requirement::Approval { .. }))
    }

    fn unmet(&self, which: impl Fn(&Requirement) -> bool) -> Vec<String> {
        self.requirements
            .iter()
            .filter(|s| !s.met && which(&s.requirement))
            .map(|s| {
                let failed = self
                    .policies
                    .iter()
                    .find(|p| p.id == s.policy)
                    .and_then(|p| p.error.as_ref());
                match failed {
                    Some(why) => format!(
                        "{} (its condition could not be evaluated: {why}; required to fail closed)",
                        s.describe()
                    ),
                    None => s.describe(),
                }
            })
            .collect()
    }

    /// Permits whose requirements are all met, for the allowed reason.
    pub fn satisfied_permits(&self) -> Vec<&str> {
        self.policies
            .iter()
            .filter(|p| p.effect == CedarEffect::Permit)
            .filter(|p| {
                self.requirements
                    .iter()
                    .filter(|r| r.policy == p.id)
                    .all(|r| r.met)
            })
            .map(|p| p.id.as_str())
            .collect()
    }
}

/// The Cedar side of one evaluation.
pub(crate) struct CedarCall<'a> {
    pub policies: &'a CedarPolicies,
    pub generation: u64,
    pub ctx: &'a Context,
    pub now: OffsetDateTime,
}

impl CedarCall<'_> {
    /// A statement: each object component's operation on the object, and `statement` on the resource for
    /// the statement component.
    pub(crate) fn statement(
        &self,
        components: &[Component],
        cache: Option<&mut SessionCache>,
    ) -> CedarOutcome {
        let requests: Vec<(Option<usize>, CedarAction, Target<'_>)> = components
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                Component::Object(o) => (Some(i), CedarAction::Op(o.operation), Target::Object(o)),
                Component::Statement(_) => (Some(i), CedarAction::Statement, Target::Resource),
            })
            .collect();
        self.decide(&requests, Forbids::All, cache)
    }

    /// A connection: `connect` on the resource; before login only the forbids decidable then.
    pub(crate) fn connection(
        &self,
        before_login: bool,
        cache: Option<&mut SessionCache>,
    ) -> CedarOutcome {
        let which = if before_login {
            Forbids::BeforeLogin
        } else {
            Forbids::All
        };
        self.decide(
            &[(None, CedarAction::Connect, Target::Resource)],
            which,
            cache,
        )
    }

    fn decide(
        &self,
        requests: &[(Option<usize>, CedarAction, Target<'_>)],
        which: Forbids,
        mut cache: Option<&mut SessionCache>,
    ) -> CedarOutcome {
        let Some(sets) = self.policies.sets.as_ref() else {
            return CedarOutcome::default();
        };
        if let Some(c) = cache.as_deref_mut() {
            c.prepare(self.generation, self.ctx, self.now);
        }
        if sets.forbids.is_empty() && sets.permits.is_empty() {
            return CedarOutcome::default();
        }
        let mut session: Option<Result<Session<'_>, String>> = None;
        let mut memo = Memo::default();
        let mut matches: Vec<(Option<usize>, Arc<RequestMatch>)> = Vec::new();
        for &(component, action, target) in requests {
            let key = cache.as_ref().map(|_| request_key(action, target, which));
            let cached = match (cache.as_deref_mut(), key.as_ref()) {
                (Some(c), Some(k)) => c.get(k),
                _ => None,
            };
            let found = match cached {
                Some(m) => m,
                None => {
                    let session = session.get_or_insert_with(|| {
                        Vocabulary::get().map(|v| Session::new(v, self.ctx, self.now))
                    });
                    let m = Arc::new(match session {
                        Ok(s) => engine::evaluate(sets, which, s, action, target, &mut memo),
                        Err(why) => engine::unbuildable(sets, which, why),
                    });
                    if let (Some(c), Some(k)) = (cache.as_deref_mut(), key) {
                        c.insert(k, Arc::clone(&m));
                    }
                    m
                }
            };
            matches.push((component, found));
        }
        self.combine(&matches)
    }

    fn combine(&self, matches: &[(Option<usize>, Arc<RequestMatch>)]) -> CedarOutcome {
        let statements = &self.policies.statements;
        let mut out = CedarOutcome::default();
        let mut record = |hit: &Hit, effect: CedarEffect, component: Option<usize>| {
            let Some(s) = statements.get(hit.position) else {
                return;
            };
            match out.policies.iter_mut().find(|p| p.id == s.id) {
                Some(p) => {
                    p.components.extend(component);
                    if p.error.is_none() {
                        p.error.clone_from(&hit.error);
                    }
                }
                None => out.policies.push(DecidingPolicy {
                    id: s.id.clone(),
                    effect,
                    components: component.into_iter().collect(),
                    error: hit.error.clone(),
                }),
            }
        };
        for (component, m) in matches {
            for hit in &m.forbids {
                record(hit, CedarEffect::Forbid, *component);
            }
            for hit in &m.permits {
                record(hit, CedarEffect::Permit, *component);
            }
        }
        for (component, m) in matches {
            if m.permits.iter().any(|h| h.error.is_none()) {
                out.covered.push(*component);
            }
        }
        let position = |id: &str| statements.iter().position(|s| s.id == id);
        out.policies.sort_by_key(|p| position(&p.id));
        for p in &out.policies {
            let Some(s) = position(&p.id).and_then(|i| statements.get(i)) else {
                continue;
            };
            match p.effect {
                CedarEffect::Forbid => {
                    out.logout |= s.logout.is_some();
                    out.forbidden.push(forbid_reason(s, p.error.as_deref()));
                }
                CedarEffect::Permit => {
                    out.requirements
                        .extend(s.requirements.iter().map(|r| RequirementStatus {
                            policy: s.id.clone(),
                            requirement: r.clone(),
                            met: self.ctx.meets(r),
                        }));
                }
            }
        }
        out
    }
}

fn request_key(action: CedarAction, target: Target<'_>, which: Forbids) -> RequestKey {
    // Before-login answers cover fewer forbids: keep them apart from full ones.
    let action = action.index() * 2 + usize::from(which == Forbids::BeforeLogin);
    match target {
        Target::Resource => RequestKey {
            action,
            kind: "resource",
            schema: String::new(),
            name: String::new(),
        },
        Target::Object(o) => RequestKey {
            action,
            kind: o.kind.as_str(),
            schema: o.schema.clone(),
            name: o.name.clone(),
        },
    }
}

fn forbid_reason(s: &crate::cedar::CedarStatement, error: Option<&str>) -> String {
    let mut said: Vec<&str> = Vec::new();
    if let Some(l) = s.logout.as_deref().filter(|l| !l.is_empty()) {
        said.push(l);
    }
    if let Some(e) = s.error.as_deref() {
        if !said.contains(&e) {
            said.push(e);
        }
    }
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {}", said.join("; "))
    };
    match (error, s.logout.is_some()) {
        (Some(why), logout) => format!(
            "forbid `{}` could not be evaluated ({why}); denied to fail closed{}{said}",
            s.id,
            if logout { ", with logout" } else { "" }
        ),
        (None, true) => format!("policy `{}` forces logout{said}", s.id),
        (None, false) => format!("forbidden by policy `{}`{said}", s.id),
    }
}

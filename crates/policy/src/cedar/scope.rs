//! A policy's scope — `principal`, `action`, `resource` constraints — checked in Rust before Cedar sees
//! the policy. Cedar evaluates every policy of a set for every request (about a microsecond each, even
//! when the scope rules it out), and needs an entity store to decide `in` (another ten microseconds). So
//! the scope is decided here, with Cedar's semantics (`in` is equality or ancestry; `is` compares the
//! type), and Cedar evaluates only the conditions of the policies whose scope admits the request.

use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PrincipalConstraint, ResourceConstraint,
};

/// An entity as a scope check sees it: its uid and all its ancestors.
pub(crate) struct Facts<'a> {
    pub uid: &'a EntityUid,
    pub ancestors: &'a [EntityUid],
}

impl Facts<'_> {
    /// Cedar's `in`: the entity itself or one of its ancestors.
    fn is_in(&self, other: &EntityUid) -> bool {
        self.uid == other || self.ancestors.contains(other)
    }
}

/// A principal or resource constraint.
#[derive(Debug, Clone)]
enum Constraint {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(EntityTypeName),
    IsIn(EntityTypeName, EntityUid),
}

impl Constraint {
    fn admits(&self, f: &Facts<'_>) -> bool {
        match self {
            Self::Any => true,
            Self::Eq(u) => f.uid == u,
            Self::In(u) => f.is_in(u),
            Self::Is(t) => f.uid.type_name() == t,
            Self::IsIn(t, u) => f.uid.type_name() == t && f.is_in(u),
        }
    }
}

/// An action constraint: `action`, `action == A`, `action in [A, B]`.
#[derive(Debug, Clone)]
enum ActionScope {
    Any,
    Eq(EntityUid),
    In(Vec<EntityUid>),
}

/// A static policy's scope.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    principal: Constraint,
    actions: ActionScope,
    resource: Constraint,
}

impl Scope {
    /// The scope of `policy`.
    pub(crate) fn of(policy: &Policy) -> Scope {
        let principal = match policy.principal_constraint() {
            PrincipalConstraint::Any => Constraint::Any,
            PrincipalConstraint::Eq(u) => Constraint::Eq(u),
            PrincipalConstraint::In(u) => Constraint::In(u),
            PrincipalConstraint::Is(t) => Constraint::Is(t),
            PrincipalConstraint::IsIn(t, u) => Constraint::IsIn(t, u),
        };
        let resource = match policy.resource_constraint() {
            ResourceConstraint::Any => Constraint::Any,
            ResourceConstraint::Eq(u) => Constraint::Eq(u),
            ResourceConstraint::In(u) => Constraint::In(u),
            ResourceConstraint::Is(t) => Constraint::Is(t),
            ResourceConstraint::IsIn(t, u) => Constraint::IsIn(t, u),
        };
        let actions = match policy.action_constraint() {
            ActionConstraint::Any => ActionScope::Any,
            ActionConstraint::Eq(u) => ActionScope::Eq(u),
            ActionConstraint::In(us) => ActionScope::In(us),
        };
        Scope {
            principal,
            actions,
            resource,
        }
    }

    /// Whether the scope admits the request.
    pub(crate) fn admits(
        &self,
        principal: &Facts<'_>,
        action: &Facts<'_>,
        resource: &Facts<'_>,
    ) -> bool {
        let action_ok = match &self.actions {
            ActionScope::Any => true,
            ActionScope::Eq(a) => action.uid == a,
            ActionScope::In(list) => list.iter().any(|a| action.is_in(a)),
        };
        action_ok && self.principal.admits(principal) && self.resource.admits(resource)
    }
}

//! Turning a [`Context`](crate::Context) and a component into Cedar requests: the principal and its
//! roles, the resource and the object hierarchy, and the context record.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use cedar_policy::{Context as CedarContext, Entities, Entity, EntityUid, RestrictedExpression};
use time::OffsetDateTime;

use crate::cedar::policies::Needs;
use crate::cedar::scope::Facts;
use crate::cedar::vocabulary::{object_type, CedarAction, ObjectType, Vocabulary};
use crate::components::ObjectComponent;
use crate::context::{Context, Observed};

/// The principal's id before authentication. Only forbids that read neither the principal nor the
/// device trust are evaluated then, so its value never decides anything.
const NOBODY: &str = "";

/// What every request of one evaluation shares.
pub(crate) struct Session<'v> {
    vocabulary: &'v Vocabulary,
    ctx: &'v Context,
    now: OffsetDateTime,
    principal: EntityUid,
    roles: Vec<EntityUid>,
    has_user: bool,
    resource: EntityUid,
    /// The context record, built on first use: scope checks alone do not need it.
    context: OnceCell<Result<CedarContext, String>>,
}

/// What a request is about: the resource itself, or an object in it.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Resource,
    Object(&'a ObjectComponent),
}

/// A request's resource: its uid and ancestors (for scope checks), and how to build its entities.
pub(crate) struct Resolved<'a> {
    pub uid: EntityUid,
    pub ancestors: Vec<EntityUid>,
    target: Target<'a>,
}

impl<'v> Session<'v> {
    /// The shared parts for `ctx` at `now`.
    pub(crate) fn new(vocabulary: &'v Vocabulary, ctx: &'v Context, now: OffsetDateTime) -> Self {
        Session {
            vocabulary,
            ctx,
            now,
            principal: Vocabulary::uid(&vocabulary.user, ctx.user.as_deref().unwrap_or(NOBODY)),
            roles: ctx.roles.iter().map(|r| vocabulary.role_uid(r)).collect(),
            has_user: ctx.user.is_some(),
            resource: Vocabulary::uid(&vocabulary.resource, &ctx.resource),
            context: OnceCell::new(),
        }
    }

    /// The schema's names.
    pub(crate) fn vocabulary(&self) -> &'v Vocabulary {
        self.vocabulary
    }

    /// Whether the context names a user (else the principal is a placeholder).
    pub(crate) fn has_user(&self) -> bool {
        self.has_user
    }

    /// The principal for scope checks.
    pub(crate) fn principal(&self) -> Facts<'_> {
        Facts {
            uid: &self.principal,
            ancestors: &self.roles,
        }
    }

    /// The uid and ancestors of `target`.
    pub(crate) fn resolve<'t>(&self, target: Target<'t>) -> Resolved<'t> {
        let v = self.vocabulary;
        match target {
            Target::Resource => Resolved {
                uid: self.resource.clone(),
                ancestors: Vec::new(),
                target,
            },
            Target::Object(o) if object_type(o.kind) == ObjectType::Schema => Resolved {
                // A schema object: its name is the component's name, whatever the analyser put in `schema`.
                uid: Vocabulary::uid(&v.schema_type, &o.name),
                ancestors: vec![self.resource.clone()],
                target,
            },
            Target::Object(o) => {
                let mut ancestors = vec![self.resource.clone()];
                if !o.schema.is_empty() {
                    ancestors.push(Vocabulary::uid(&v.schema_type, &o.schema));
                }
                Resolved {
                    uid: Vocabulary::uid(
                        v.object_type_name(object_type(o.kind)),
                        &o.display_name(),
                    ),
                    ancestors,
                    target,
                }
            }
        }
    }

    /// The request for `action` on `resource`, with the entities `needs` says its conditions read.
    /// Every entity lists all its ancestors as parents, so none needs its ancestors in the store.
    pub(crate) fn request(
        &self,
        action: CedarAction,
        resource: &Resolved<'_>,
        needs: Needs,
    ) -> Result<(cedar_policy::Request, Entities), String> {
        let action_entity = self
            .vocabulary
            .action(action)
            .ok_or_else(|| format!("no Cedar action `{}`", action.name()))?;
        let store = if needs == Needs::default() {
            Entities::empty()
        } else {
            let mut entities: Vec<Entity> = Vec::with_capacity(3);
            if needs.action {
                entities.push(action_entity.clone());
            }
            if needs.principal && self.has_user {
                entities.push(Entity::new_no_attrs(
                    self.principal.clone(),
                    self.roles.iter().cloned().collect(),
                ));
            }
            if needs.resource {
                self.objects(resource, &mut entities)?;
            }
            Entities::from_entities(entities, None).map_err(|e| e.to_string())?
        };
        let request = cedar_policy::Request::new(
            self.principal.clone(),
            action_entity.uid(),
            resource.uid.clone(),
            self.context
                .get_or_init(|| context(self.vocabulary, self.ctx, self.now))
                .clone()?,
            None,
        )
        .map_err(|e| e.to_string())?;
        Ok((request, store))
    }

    /// The object's entity, pushed onto `out`. Its schema's entity is not needed: the object lists the
    /// schema and the resource as parents, and schemas have no attribute an object's could lead to.
    fn objects(&self, r: &Resolved<'_>, out: &mut Vec<Entity>) -> Result<(), String> {
        let Target::Object(o) = r.target else {
            return Ok(());
        };
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let attrs = |schema: &str, name: &str| {
            HashMap::from([
                ("schema".to_owned(), string(schema)),
                ("name".to_owned(), string(name)),
            ])
        };
        let to_resource = || HashSet::from([self.resource.clone()]);
        let t = object_type(o.kind);
        if t == ObjectType::Schema {
            out.push(entity(
                r.uid.clone(),
                attrs(&o.name, &o.name),
                to_resource(),
            )?);
            return Ok(());
        }
        let mut a = attrs(&o.schema, &o.name);
        if t == ObjectType::Object {
            a.insert("kind".to_owned(), string(o.kind.as_str()));
        }
        out.push(entity(
            r.uid.clone(),
            a,
            r.ancestors.iter().cloned().collect(),
        )?);
        Ok(())
    }
}

fn entity(
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, String> {
    Entity::new(uid, attrs, parents).map_err(|e| e.to_string())
}

/// The context record (see the schema's `RequestContext`).
fn context(v: &Vocabulary, ctx: &Context, now: OffsetDateTime) -> Result<CedarContext, String> {
    let now = now.to_offset(time::UtcOffset::UTC);
    let location = match &ctx.location {
        Observed::Known(c) => c.to_ascii_uppercase(),
        Observed::Unknown => "unknown".to_owned(),
    };
    let trust = match ctx.device_trust {
        Observed::Known(t) => t.as_str(),
        Observed::Unknown => "unknown",
    };
    let weekday = match now.weekday() {
        time::Weekday::Monday => "mon",
        time::Weekday::Tuesday => "tue",
        time::Weekday::Wednesday => "wed",
        time::Weekday::Thursday => "thu",
        time::Weekday::Friday => "fri",
        time::Weekday::Saturday => "sat",
        time::Weekday::Sunday => "sun",
    };
    let date = i64::from(now.year()) * 10_000
        + i64::from(u8::from(now.month())) * 100
        + i64::from(now.day());
    let mut pairs = vec![
        (
            "location".to_owned(),
            RestrictedExpression::new_string(location),
        ),
        (
            "device_trust".to_owned(),
            RestrictedExpression::new_entity_uid(Vocabulary::uid(&v.device_trust, trust)),
        ),
        ("date".to_owned(), RestrictedExpression::new_long(date)),
        (
            "hour".to_owned(),
            RestrictedExpression::new_long(i64::from(now.hour())),
        ),
        (
            "minute".to_owned(),
            RestrictedExpression::new_long(i64::from(now.minute())),
        ),
        (
            "weekday".to_owned(),
            RestrictedExpression::new_entity_uid(Vocabulary::uid(&v.weekday, weekday)),
        ),
    ];
    if let Some(addr) = ctx.client_addr {
        pairs.push((
            "client_addr".to_owned(),
            RestrictedExpression::new_ip(canonical(addr).to_string()),
        ));
    }
    CedarContext::from_pairs(pairs).map_err(|e| e.to_string())
}

/// IPv4-mapped IPv6 addresses as IPv4, so `ip("10.0.0.0/8")` ranges match them (as YAML cidrs do).
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

//! The per-session cache of Cedar answers. A session repeats the same few (action, object) requests in
//! the same context, so their matches are kept, keyed by request. The cache belongs to the session (the
//! caller owns it and passes it `&mut`): no locks, and it dies with the session.
//!
//! Only the policies' *matches* are cached, never a verdict: requirements (MFA, justification, approval)
//! are checked against the current [`Context`] on every call. Everything a Cedar request reads — the
//! user, roles, resource, client address, location, device trust and the UTC minute — forms the context
//! key; when it changes, or the cache meets another compiled policy, the cache starts over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::cedar::engine::RequestMatch;
use crate::context::{Context, DeviceTrust, Observed};

/// Entries kept before the cache starts over (a session touching thousands of objects is rare; this
/// bounds its memory).
const MAX_ENTRIES: usize = 4096;

/// Cedar answers for one session. Create one per session with [`SessionCache::new`] and pass it to the
/// `*_cached` methods of [`CompiledPolicy`](crate::CompiledPolicy).
#[derive(Debug, Default)]
pub struct SessionCache {
    /// The [`CompiledPolicy`](crate::CompiledPolicy) generation the entries came from.
    generation: u64,
    key: Option<ContextKey>,
    entries: HashMap<RequestKey, Arc<RequestMatch>>,
    hits: u64,
    misses: u64,
}

/// Everything in a Cedar request that comes from the context.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContextKey {
    user: Option<String>,
    roles: Vec<String>,
    resource: String,
    client_addr: Option<IpAddr>,
    location: Observed<String>,
    device_trust: Observed<DeviceTrust>,
    /// Minutes since the Unix epoch: the context's time fields have minute resolution.
    minute: i64,
}

impl ContextKey {
    fn matches(&self, ctx: &Context, minute: i64) -> bool {
        self.minute == minute
            && self.user == ctx.user
            && self.roles == ctx.roles
            && self.resource == ctx.resource
            && self.client_addr == ctx.client_addr
            && self.location == ctx.location
            && self.device_trust == ctx.device_trust
    }

    fn of(ctx: &Context, minute: i64) -> Self {
        ContextKey {
            user: ctx.user.clone(),
            roles: ctx.roles.clone(),
            resource: ctx.resource.clone(),
            client_addr: ctx.client_addr,
            location: ctx.location.clone(),
            device_trust: ctx.device_trust.clone(),
            minute,
        }
    }
}

/// One request: the action and what it is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RequestKey {
    pub action: usize,
    /// The object kind's tag, or `resource`.
    pub kind: &'static str,
    pub schema: String,
    pub name: String,
}

impl SessionCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (e.g. when the session's context changes in a way the key does not see).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.key = None;
    }

    /// Requests answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Requests that had to be evaluated so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Makes the cache valid for `generation` and `ctx` at `now`, dropping entries made for anything else.
    pub(crate) fn prepare(&mut self, generation: u64, ctx: &Context, now: OffsetDateTime) {
        let minute = now.unix_timestamp().div_euclid(60);
        let same = self.generation == generation
            && self.key.as_ref().is_some_and(|k| k.matches(ctx, minute));
        if !same || self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
            self.generation = generation;
            self.key = Some(ContextKey::of(ctx, minute));
        }
    }

    pub(crate) fn get(&mut self, key: &RequestKey) -> Option<Arc<RequestMatch>> {
        let hit = self.entries.get(key).cloned();
        match hit {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        hit
    }

    pub(crate) fn insert(&mut self, key: RequestKey, value: Arc<RequestMatch>) {
        self.entries.insert(key, value);
    }
}

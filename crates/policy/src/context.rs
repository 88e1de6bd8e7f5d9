//! Who is acting, where from and on what: the typed context a decision is made in.
//!
//! Values the gateway may not know are [`Observed`]: `Unknown` is a value in its own right that a policy
//! matches with `unknown` (seed 002: a location that cannot be determined "will be treated as unknown").

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::cedar::Requirement;

/// A context value that may not be known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Observed<T> {
    /// The value is known.
    Known(T),
    /// The value could not be determined.
    Unknown,
}

/// A device trust level as reported by an endpoint-management integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceTrust {
    /// High trust.
    High,
    /// Medium trust.
    Medium,
    /// Low trust.
    Low,
    /// Exempt from device trust.
    Exempt,
}

impl DeviceTrust {
    /// Every level, for error messages.
    pub const ALL: &'static [DeviceTrust] = &[Self::High, Self::Medium, Self::Low, Self::Exempt];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Exempt => "exempt",
        }
    }

    /// The level named `tag` (ASCII case-insensitive).
    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(tag))
    }
}

impl fmt::Display for DeviceTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a decision may depend on besides the statement and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The authenticated gateway user; `None` before authentication (pre-connection stage).
    pub user: Option<String>,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The resource (upstream database) the session targets.
    pub resource: String,
    /// The client's address; `None` when there is none (e.g. a Unix socket).
    pub client_addr: Option<IpAddr>,
    /// The client's country (ISO 3166-1 alpha-2) derived from its address.
    pub location: Observed<String>,
    /// The client device's trust level.
    pub device_trust: Observed<DeviceTrust>,
    /// Whether the user completed an MFA verification that is still valid for this action (the caller
    /// applies ARCHITECTURE §4's rules: valid 5 minutes, re-prompted after a minute without activity on
    /// the resource). Meets `@mfa` requirements.
    pub mfa_verified: bool,
    /// The justification the user gave for this statement or session. Meets `@justification`
    /// requirements when not blank.
    pub justification: Option<String>,
    /// Approval workflows whose approval of this action is still valid. Meets `@approval("workflow")`
    /// requirements naming one of them.
    pub approvals: Vec<String>,
    /// Attributes of the user from the identity provider (`region`, `department`, ...), which row filters
    /// read as `:user.attributes.<key>`; a missing key is NULL.
    pub attributes: BTreeMap<String, String>,
}

impl Context {
    /// A context for `user` on `resource` with no roles, no address, unknown location and device trust.
    pub fn new(user: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            user: Some(user.into()),
            roles: Vec::new(),
            resource: resource.into(),
            client_addr: None,
            location: Observed::Unknown,
            device_trust: Observed::Unknown,
            mfa_verified: false,
            justification: None,
            approvals: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// Adds roles.
    pub fn with_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Sets the client address.
    pub fn with_addr(mut self, addr: IpAddr) -> Self {
        self.client_addr = Some(addr);
        self
    }

    /// Sets the location.
    pub fn with_location(mut self, location: Observed<String>) -> Self {
        self.location = location;
        self
    }

    /// Sets the device trust.
    pub fn with_device_trust(mut self, trust: Observed<DeviceTrust>) -> Self {
        self.device_trust = trust;
        self
    }

    /// Records whether a valid MFA verification covers this action.
    pub fn with_mfa_verified(mut self, verified: bool) -> Self {
        self.mfa_verified = verified;
        self
    }

    /// Records the user's justification.
    pub fn with_justification(mut self, justification: impl Into<String>) -> Self {
        self.justification = Some(justification.into());
        self
    }

    /// Records a valid approval of this action via `workflow`.
    pub fn with_approval(mut self, workflow: impl Into<String>) -> Self {
        self.approvals.push(workflow.into());
        self
    }

    /// Sets the user attribute `key` (replacing an earlier value).
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Sets several user attributes.
    pub fn with_attributes<I, K, V>(mut self, attributes: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.attributes
            .extend(attributes.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Whether the context meets `requirement`.
    pub fn meets(&self, requirement: &Requirement) -> bool {
        match requirement {
            Requirement::Mfa { .. } => self.mfa_verified,
            Requirement::Justification { .. } => self
                .justification
                .as_ref()
                .is_some_and(|j| !j.trim().is_empty()),
            Requirement::Approval { workflow } => self.approvals.iter().any(|a| a == workflow),
        }
    }

    /// The user's name for messages.
    pub fn user_label(&self) -> &str {
        self.user.as_deref().unwrap_or("an unauthenticated client")
    }
}

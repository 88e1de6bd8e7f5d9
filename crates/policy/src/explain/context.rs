//! The context a statement is decided in, as `policy explain` flags, `policy test` case files and the
//! portal's explain form write it: one reading of locations, device trust and times for all, so a case
//! means what the same flags mean.

use std::net::IpAddr;

use crate::{Context, DeviceTrust, Observed};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// PostgreSQL's default search_path, as `SHOW search_path` prints it.
pub const DEFAULT_SEARCH_PATH: &str = "\"$user\", public";

/// The parts of a context that are written as text.
#[derive(Debug, Clone)]
pub struct ContextInput<'a> {
    /// The gateway user.
    pub user: &'a str,
    /// The user's roles.
    pub roles: &'a [String],
    /// The resource.
    pub resource: &'a str,
    /// The client's address; `None` as over a Unix socket.
    pub client_addr: Option<IpAddr>,
    /// The client's country.
    pub location: Observed<String>,
    /// The device's trust.
    pub device_trust: Observed<DeviceTrust>,
    /// Whether the user completed MFA within its validity.
    pub mfa_verified: bool,
    /// The justification the user gave.
    pub justification: Option<&'a str>,
    /// Approval workflows that approved the statement.
    pub approvals: &'a [String],
}

impl ContextInput<'_> {
    /// The engine's context.
    pub fn build(&self) -> Context {
        let mut ctx = Context::new(self.user.to_owned(), self.resource.to_owned())
            .with_roles(self.roles.iter().cloned())
            .with_location(self.location.clone())
            .with_device_trust(self.device_trust.clone())
            .with_mfa_verified(self.mfa_verified);
        if let Some(addr) = self.client_addr {
            ctx = ctx.with_addr(addr);
        }
        if let Some(justification) = self.justification {
            ctx = ctx.with_justification(justification.to_owned());
        }
        for workflow in self.approvals {
            ctx = ctx.with_approval(workflow.clone());
        }
        ctx
    }
}

/// A country as ISO 3166-1 alpha-2 (`DE`, any case) or `unknown`.
pub fn parse_location(text: &str) -> Result<Observed<String>, String> {
    if text.eq_ignore_ascii_case("unknown") {
        Ok(Observed::Unknown)
    } else if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(Observed::Known(text.to_ascii_uppercase()))
    } else {
        Err(format!(
            "`{text}`: write an ISO 3166-1 alpha-2 country code such as DE, or unknown"
        ))
    }
}

/// `high`, `medium`, `low`, `exempt` or `unknown`.
pub fn parse_device_trust(text: &str) -> Result<Observed<DeviceTrust>, String> {
    if text.eq_ignore_ascii_case("unknown") {
        return Ok(Observed::Unknown);
    }
    DeviceTrust::from_tag(text)
        .map(Observed::Known)
        .ok_or_else(|| format!("`{text}`: use high, medium, low, exempt or unknown"))
}

/// An RFC 3339 time.
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z"))
}

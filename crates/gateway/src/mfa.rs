//! MFA in the gateway: which verification still counts for a user's next action, and holding a
//! connection or statement until the user verifies.
//!
//! Rules (ARCHITECTURE §4, seed 002): a verification counts for [`MfaConfig::validity`] (5 minutes);
//! a user whose last action on a resource was [`MfaConfig::idle_reprompt`] (1 minute) ago or more is
//! asked again there, unless they verified since that action. Last actions are kept per user and
//! resource in memory and shared by all of the user's sessions on this gateway.
//!
//! A held request polls the store (off the async threads) until a verification makes the rules hold,
//! for at most [`MfaConfig::hold_timeout`]. Users verify with `portcullis mfa verify`, which writes to
//! the same store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::BytesMut;
use portcullis_policy::{Requirement, RequirementStatus, Verdict};
use portcullis_store::{AuditEvent, Clock, MfaEvent};
use portcullis_wire::{encode_notice, ErrorInfo};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::MfaConfig;
use crate::listener::Shared;
use crate::session::{now_micros, SessionInfo};

/// The gateway's MFA memory, shared by every session.
pub(crate) struct MfaTracker {
    config: MfaConfig,
    clock: Clock,
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    /// When each user last acted on each resource: user → resource → time. Nested so that the lookups
    /// every statement makes borrow the names instead of building a key.
    last_action: HashMap<String, HashMap<String, OffsetDateTime>>,
    /// Each user's newest verification seen in the store.
    verified: HashMap<String, OffsetDateTime>,
}

impl MfaTracker {
    /// A tracker applying `config` with `clock`.
    pub fn new(config: MfaConfig, clock: Clock) -> Self {
        MfaTracker {
            config,
            clock,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Now, by the MFA clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The rules' durations.
    pub fn config(&self) -> &MfaConfig {
        &self.config
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The maps hold plain values; a panic elsewhere cannot leave them half-written.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a verification this gateway knows of covers `user`'s action on `resource` at `now`.
    pub fn verified(&self, user: &str, resource: &str, now: OffsetDateTime) -> bool {
        let memory = self.memory();
        let verified_at = memory.verified.get(user).copied();
        let last_action = memory
            .last_action
            .get(user)
            .and_then(|resources| resources.get(resource))
            .copied();
        covers(&self.config, verified_at, last_action, now)
    }

    /// Records that `user` acted on `resource` at `now` (a connection or a statement let through).
    pub fn note_action(&self, user: &str, resource: &str, now: OffsetDateTime) {
        let mut memory = self.memory();
        match memory
            .last_action
            .get_mut(user)
            .and_then(|resources| resources.get_mut(resource))
        {
            Some(last) => *last = now,
            None => {
                memory
                    .last_action
                    .entry(user.to_owned())
                    .or_default()
                    .insert(resource.to_owned(), now);
            }
        }
    }

    /// Records `user`'s newest verification as read from the store.
    fn note_verification(&self, user: &str, at: OffsetDateTime) {
        let mut memory = self.memory();
        let newest = memory.verified.entry(user.to_owned()).or_insert(at);
        if *newest < at {
            *newest = at;
        }
    }
}

/// Whether a verification at `verified_at` covers an action at `now` by a user whose previous action on
/// the resource was at `last_action`.
fn covers(
    config: &MfaConfig,
    verified_at: Option<OffsetDateTime>,
    last_action: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    let Some(verified_at) = verified_at else {
        return false;
    };
    if now - verified_at >= config.validity {
        return false;
    }
    match last_action {
        // Idle too long: only a verification made since that action counts.
        Some(last) if now - last >= config.idle_reprompt => verified_at > last,
        _ => true,
    }
}

/// When MFA is all that keeps a decision from going through: the unmet MFA requirements, as the
/// policy states them. `decide_verified` decides again as if the user had verified; only when that is
/// not a denial is the request worth holding (a missing grant or justification would refuse it anyway).
pub(crate) fn only_mfa_missing(
    requirements: &[RequirementStatus],
    verdict: Verdict,
    decide_verified: impl FnOnce() -> Verdict,
) -> Option<String> {
    if verdict != Verdict::Deny {
        return None;
    }
    let unmet: Vec<String> = requirements
        .iter()
        .filter(|r| !r.met && matches!(r.requirement, Requirement::Mfa { .. }))
        .map(RequirementStatus::describe)
        .collect();
    if unmet.is_empty() || decide_verified() == Verdict::Deny {
        return None;
    }
    Some(unmet.join("; "))
}

/// One connection or statement waiting for MFA.
pub(crate) struct Hold<'a> {
    shared: &'a Shared,
    info: &'a SessionInfo,
    /// `connection` or `statement`.
    what: &'static str,
    /// For the audit log: the stage, or the statement's text.
    subject: String,
    /// What the policy requires, as its reason says it (``MFA required by permit `x` ``).
    required: String,
}

/// How a hold's first look at the store came out.
pub(crate) enum Begin {
    /// A verification already covers the request.
    Verified,
    /// Refused with this message (not enrolled, the store unavailable).
    Refused(String),
    /// The user must verify: send [`Hold::notice`], then [`Hold::wait`].
    Wait,
}

/// How a hold ended.
pub(crate) enum HoldEnd {
    /// A verification came in and covers the request.
    Verified,
    /// Refused with this message (timed out, enrolment removed, the audit log unavailable).
    Refused(String),
}

impl<'a> Hold<'a> {
    /// A hold of a connection (`subject` its stage) or statement (`subject` its text) that `required`.
    pub fn new(
        shared: &'a Shared,
        info: &'a SessionInfo,
        what: &'static str,
        subject: &str,
        required: impl Into<String>,
    ) -> Self {
        Hold {
            shared,
            info,
            what,
            subject: one_line(subject, 200),
            required: required.into(),
        }
    }

    fn tracker(&self) -> &MfaTracker {
        &self.shared.mfa
    }

    /// The command that completes MFA, exactly as the user types it.
    fn command(&self) -> String {
        format!(
            "portcullis mfa verify --user {} <code>",
            shell_word(&self.info.user)
        )
    }

    /// How to complete MFA: `run: COMMAND`, with the web portal's page first when it is configured.
    fn how(&self) -> String {
        match &self.shared.config.mfa_verify_url {
            Some(url) => format!(
                "open {url} and type the code there, or run: {}",
                self.command()
            ),
            None => format!("run: {}", self.command()),
        }
    }

    /// Looks at the store once: not enrolled, already verified, or the user must verify now.
    pub async fn begin(&self) -> Begin {
        match self.look().await {
            Err(why) => Begin::Refused(format!(
                "{}, and the gateway cannot check MFA now: {why}",
                self.required
            )),
            Ok(None) => {
                let message = format!(
                    "{}, and user \"{}\" is not enrolled in MFA: an administrator enrols you with \
                     `portcullis mfa enroll {}`",
                    self.required,
                    self.info.user,
                    shell_word(&self.info.user)
                );
                match self.record("refuse", "not enrolled").await {
                    Ok(()) => Begin::Refused(message),
                    Err(why) => Begin::Refused(why),
                }
            }
            Ok(Some(_)) if self.covered() => Begin::Verified,
            Ok(Some(_)) => match self.record("hold", "waiting").await {
                Ok(()) => Begin::Wait,
                Err(why) => Begin::Refused(why),
            },
        }
    }

    /// The NoticeResponse telling the user how to complete MFA.
    pub fn notice(&self) -> BytesMut {
        let message = format!(
            "portcullis holds this {} until you complete MFA ({}); {}",
            self.what,
            self.required,
            self.how()
        );
        let detail = format!(
            "Use the code your authenticator app shows for Portcullis. The {} waits up to {}.",
            self.what,
            human(self.tracker().config().hold_timeout)
        );
        let mut out = BytesMut::new();
        encode_notice(
            &ErrorInfo {
                severity: "NOTICE",
                code: "01000",
                message: &message,
                detail: Some(&detail),
                hint: Some(&self.how()),
                position: None,
            },
            &mut out,
        );
        out
    }

    /// Polls the store until a verification covers the request or the hold times out.
    pub async fn wait(&self) -> HoldEnd {
        let config = *self.tracker().config();
        let deadline = tokio::time::Instant::now() + config.hold_timeout;
        loop {
            let next = (tokio::time::Instant::now() + config.poll_interval).min(deadline);
            tokio::time::sleep_until(next).await;
            match self.look().await {
                Ok(Some(at)) if self.covered() => {
                    let detail = format!("verification at {}", rfc3339(at));
                    return match self.record("resume", &detail).await {
                        Ok(()) => HoldEnd::Verified,
                        Err(why) => HoldEnd::Refused(why),
                    };
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    return HoldEnd::Refused(format!(
                        "{}, and the MFA enrolment of user \"{}\" was removed while the {} waited",
                        self.required, self.info.user, self.what
                    ))
                }
                // A store hiccup is not the user's fault: look again until the deadline.
                Err(why) => {
                    tracing::warn!(session = %self.info.id, error = %why, "cannot read MFA verifications")
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let message = format!(
                    "MFA was not completed within {} ({}); {} while the {} waits, then try again",
                    human(config.hold_timeout),
                    self.required,
                    self.how(),
                    self.what
                );
                return match self.record("timeout", "timed out").await {
                    Ok(()) => HoldEnd::Refused(message),
                    Err(why) => HoldEnd::Refused(why),
                };
            }
        }
    }

    /// Records that the client's CancelRequest ended the hold; `Err` when the audit log cannot.
    pub async fn cancelled(&self) -> Result<(), String> {
        self.record("cancel", "cancelled").await
    }

    /// Whether the tracker, told the newest verification, lets the request through now.
    fn covered(&self) -> bool {
        let now = self.tracker().now();
        self.tracker()
            .verified(&self.info.user, &self.info.resource, now)
    }

    /// The user's newest verification (the epoch when they have none yet), remembered in the tracker;
    /// `Ok(None)` when they are not enrolled.
    async fn look(&self) -> Result<Option<OffsetDateTime>, String> {
        let store = self.shared.store.clone();
        let user = self.info.user.clone();
        let read = tokio::task::spawn_blocking(move || {
            if !store.mfa_enrolled(&user)? {
                return Ok(None);
            }
            store.latest_mfa_verification(&user).map(Some)
        })
        .await
        .map_err(|e| format!("the store lookup failed: {e}"))?
        .map_err(|e: portcullis_store::StoreError| e.to_string())?;
        let Some(latest) = read else {
            return Ok(None);
        };
        let at = latest.and_then(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        });
        if let Some(at) = at {
            self.tracker().note_verification(&self.info.user, at);
        }
        Ok(Some(at.unwrap_or(OffsetDateTime::UNIX_EPOCH)))
    }

    /// Records an MFA event for this hold; the message to refuse with when the audit log cannot take it.
    async fn record(&self, action: &str, result: &str) -> Result<(), String> {
        let detail = match action {
            "resume" => format!(
                "{} `{}`: {}; {}",
                self.what, self.subject, self.required, result
            ),
            _ => format!("{} `{}`: {}", self.what, self.subject, self.required),
        };
        let result = if action == "resume" { "ok" } else { result };
        let event = AuditEvent::Mfa(MfaEvent {
            session_id: self.info.id.clone(),
            at: now_micros(),
            user: self.info.user.clone(),
            resource: self.info.resource.clone(),
            client_addr: self.info.client_addr.clone(),
            action: action.to_owned(),
            result: result.to_owned(),
            detail: Some(detail),
        });
        tracing::info!(session = %self.info.id, user = %self.info.user, action, "MFA hold");
        self.shared
            .audit
            .record(event)
            .durable()
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not record an MFA event");
                "the audit log is unavailable".to_owned()
            })
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// "5 minutes", "90 seconds".
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        60 => "1 minute".into(),
        s if s > 0 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

/// `name` as one shell word: as is when it has only safe characters, else single-quoted.
fn shell_word(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-+".contains(c))
    {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    }
}

/// The first `max` characters of `text` on one line.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_verification_counts_five_minutes_and_lapses_after_a_minute_idle() {
        let c = MfaConfig::default();
        assert!(!covers(&c, None, None, t(0)));
        assert!(covers(&c, Some(t(0)), None, t(299)));
        assert!(!covers(&c, Some(t(0)), None, t(300)));
        // Active every 50 s: covered until the validity ends.
        assert!(covers(&c, Some(t(0)), Some(t(250)), t(299)));
        assert!(!covers(&c, Some(t(0)), Some(t(250)), t(300)));
        // Idle a minute or more since the last action: asked again...
        assert!(covers(&c, Some(t(0)), Some(t(10)), t(69)));
        assert!(!covers(&c, Some(t(0)), Some(t(10)), t(70)));
        // ...unless the verification came after that action.
        assert!(covers(&c, Some(t(80)), Some(t(10)), t(90)));
    }

    #[test]
    fn the_tracker_keeps_last_actions_per_user_and_resource() {
        let tracker = MfaTracker::new(MfaConfig::default(), Clock::system());
        tracker.note_verification("alice", t(0));
        tracker.note_verification("alice", t(-100));
        tracker.note_action("alice", "app", t(5));
        assert!(tracker.verified("alice", "app", t(60)));
        assert!(!tracker.verified("alice", "app", t(65)));
        // Another resource has no last action: the verification still counts there.
        assert!(tracker.verified("alice", "other", t(65)));
        assert!(!tracker.verified("bob", "app", t(1)));
    }

    #[test]
    fn words_for_people() {
        assert_eq!(human(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human(Duration::from_secs(60)), "1 minute");
        assert_eq!(human(Duration::from_secs(2)), "2 seconds");
        assert_eq!(shell_word("alice"), "alice");
        assert_eq!(shell_word("o'neil x"), r"'o'\''neil x'");
        assert_eq!(one_line("SELECT\n  1", 200), "SELECT 1");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}

//! What an MFA verification's result means for the person, and its audit record; shared by the CLI
//! (`portcullis mfa verify`), API login and `POST /api/v1/me/mfa/verify` so all three say the same.

use portcullis_store::{AuditEvent, MfaCheck, MfaEvent, Store, StoreError};

/// Why a verification failed: the audit result, a stable error code and the message for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaProblem {
    /// `wrong code`, `replayed code` or `not enrolled`.
    pub result: &'static str,
    /// `mfa_wrong_code`, `mfa_replayed` or `mfa_not_enrolled`.
    pub code: &'static str,
    /// What to do about it.
    pub message: String,
}

/// `None` when `check` verified the user.
pub fn problem(user: &str, check: MfaCheck) -> Option<MfaProblem> {
    let (result, code, message) = match check {
        MfaCheck::Verified { .. } => return None,
        MfaCheck::WrongCode => (
            "wrong code",
            "mfa_wrong_code",
            format!(
                "wrong code for {user}: type the 6 digits your authenticator app shows for \
                 Portcullis now"
            ),
        ),
        MfaCheck::Replayed => (
            "replayed code",
            "mfa_replayed",
            format!(
                "this code was already used by {user}; wait for the next one (codes change every \
                 30 seconds)"
            ),
        ),
        MfaCheck::NotEnrolled => (
            "not enrolled",
            "mfa_not_enrolled",
            format!(
                "{user} is not enrolled in MFA; an administrator enrols them with `portcullis mfa \
                 enroll {user}`"
            ),
        ),
    };
    Some(MfaProblem {
        result,
        code,
        message,
    })
}

/// Records an MFA event taken outside a gateway session (`action`: enroll, verify, reset) and waits
/// until it is written. Call from blocking code only.
pub fn record(store: &Store, user: &str, action: &str, result: &str) -> Result<(), StoreError> {
    let at = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let event = AuditEvent::Mfa(MfaEvent {
        session_id: String::new(),
        at: i64::try_from(at).unwrap_or(i64::MAX),
        user: user.to_owned(),
        resource: String::new(),
        client_addr: String::new(),
        action: action.to_owned(),
        result: result.to_owned(),
        detail: None,
    });
    store.audit().record(event).wait_blocking()
}

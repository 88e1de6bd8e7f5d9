//! Why a delivery attempt failed, as retrying sees it.

use crate::http;

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptError {
    /// Worth another try: connection trouble, a timeout, a 5xx, 408 or 429.
    Transient(String),
    /// Another try would fail the same way.
    Permanent(String),
}

impl AttemptError {
    /// What went wrong.
    pub(crate) fn reason(&self) -> &str {
        match self {
            AttemptError::Transient(r) | AttemptError::Permanent(r) => r,
        }
    }
}

impl From<http::Failure> for AttemptError {
    fn from(failure: http::Failure) -> Self {
        if failure.is_transient() {
            AttemptError::Transient(failure.to_string())
        } else {
            AttemptError::Permanent(failure.to_string())
        }
    }
}

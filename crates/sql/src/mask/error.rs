//! Why a statement could not be rewritten. Every variant means the gateway must not forward the text.

use crate::error::AnalysisError;
use crate::resolve::QualifiedName;

/// Why the rewriter refused a query text. The messages are meant for the user: they say what was refused
/// and, where there is one, what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The text could not be parsed (or is too large, deep or contains a NUL byte).
    #[error("{0}")]
    Parse(#[from] AnalysisError),
    /// A statement involving a protected relation that the rewriter cannot prove it masks completely.
    #[error(
        "statement refused because masking or row filtering could not be guaranteed: {reason}"
    )]
    Unsupported {
        /// What could not be rewritten, naming the relation where there is one.
        reason: String,
    },
    /// The statement references a column that a rule denies.
    #[error("column {column} of {relation} may not be referenced (rule {rule}); remove it from the statement")]
    DeniedColumn {
        /// The protected relation.
        relation: QualifiedName,
        /// The denied column.
        column: String,
        /// The rule that denies it.
        rule: String,
    },
    /// A protected relation whose column list is not known cannot be replaced by a masked projection.
    #[error("the columns of protected relation {relation} are not known to the gateway, so it cannot be masked; try again after the gateway refreshes its catalog")]
    UnknownColumns {
        /// The protected relation.
        relation: QualifiedName,
    },
    /// A row filter of the policy is not a usable predicate (a policy error, not the user's).
    #[error("row filter {rule} on {relation} is invalid: {reason}")]
    InvalidRowFilter {
        /// The protected relation.
        relation: QualifiedName,
        /// The row-filter rule.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The rewriter failed in a way that is not the statement's fault (a bug).
    #[error("the statement rewriter failed: {0}")]
    Internal(String),
}

impl RewriteError {
    /// An [`RewriteError::Unsupported`] with `reason`.
    pub(crate) fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported {
            reason: reason.into(),
        }
    }
}

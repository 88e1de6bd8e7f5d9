//! What can go wrong in a workflow step; every message says what the person can do about it.

use portcullis_store::StoreError;

/// A workflow step that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No policy is applied, so nothing can be requested or approved.
    #[error("no policy has been applied; an administrator must run `portcullis policy apply -f FILE` (with `workflows:` and `on_demand:`)")]
    NoPolicy,
    /// The applied policy does not load (written by another version).
    #[error("the applied policy does not load: {0}")]
    Policy(String),
    /// No request has this number.
    #[error("there is no request {0}; `portcullis requests` lists them")]
    NotFound(i64),
    /// The request was already decided (or expired).
    #[error(
        "request {id} is {status}; its decision is final (make a new request if you still need it)"
    )]
    NotPending {
        /// The request.
        id: i64,
        /// Its status.
        status: String,
    },
    /// A requester tried to endorse their own request.
    #[error(
        "you cannot endorse your own request {0}; another approver of its workflow must decide it"
    )]
    SelfEndorsement(i64),
    /// The actor is not an approver of the request's workflow.
    #[error("{user} is not an approver of workflow `{workflow}` (approvers: {approvers}), so cannot decide request {id}")]
    NotApprover {
        /// The request.
        id: i64,
        /// Who tried.
        user: String,
        /// The workflow.
        workflow: String,
        /// Who may, as written in the policy.
        approvers: String,
    },
    /// The actor already endorsed this request.
    #[error("{user} already endorsed request {id}; each approver endorses once")]
    AlreadyEndorsed {
        /// The request.
        id: i64,
        /// Who.
        user: String,
    },
    /// The request's workflow is no longer in the policy: it cannot be approved (fail closed).
    #[error("request {id} uses workflow `{workflow}`, which the applied policy no longer defines; it cannot be approved")]
    UnknownWorkflow {
        /// The request.
        id: i64,
        /// The workflow.
        workflow: String,
    },
    /// The request asked for something the policy does not offer, or is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;

//! The API's one error shape: `{"code": "stable_snake_case", "message": "…"}` with the matching HTTP
//! status. Codes are part of the API contract; messages say what the person can do about it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_store::StoreError;
use portcullis_workflows::WorkflowError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthenticated`, `forbidden`, `not_found`, `invalid`, …
    pub code: String,
    /// What went wrong and what to do about it, for a person.
    pub message: String,
}

/// An error a handler returns; it becomes a JSON response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// See [`ErrorBody::code`].
    pub code: &'static str,
    /// See [`ErrorBody::message`].
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no usable credentials.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 500: logged in full; the client learns only that it failed, never internals.
    pub fn internal(error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the gateway could not complete the request; its log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::AlreadyExists { .. } => ApiError::conflict("already_exists", e.to_string()),
            StoreError::Invalid { .. } => ApiError::invalid(e.to_string()),
            _ => ApiError::internal(&e),
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> ApiError {
        let message = e.to_string();
        match e {
            WorkflowError::Store(e) => e.into(),
            WorkflowError::NoPolicy => ApiError::conflict("no_policy", message),
            WorkflowError::Policy(_) => ApiError::internal(&message),
            WorkflowError::NotFound(_) => ApiError::not_found(message),
            WorkflowError::NotPending { .. } => ApiError::conflict("not_pending", message),
            WorkflowError::SelfEndorsement(_) => ApiError::forbidden("self_endorsement", message),
            WorkflowError::NotApprover { .. } => ApiError::forbidden("not_approver", message),
            WorkflowError::AlreadyEndorsed { .. } => {
                ApiError::conflict("already_endorsed", message)
            }
            WorkflowError::UnknownWorkflow { .. } => {
                ApiError::conflict("unknown_workflow", message)
            }
            WorkflowError::Invalid(_) => ApiError::invalid(message),
        }
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

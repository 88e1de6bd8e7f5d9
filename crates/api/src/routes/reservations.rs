//! Reservations: a user asks for a connection window on a resource that requires one. A reservation is
//! a request like the others: approvers see it in `/api/v1/inbox` and decide it through
//! `/api/v1/requests/{id}/approve` or `/reject`.

use axum::extract::State;
use axum::Json;
use portcullis_workflows::{self as workflows, ReservationAsk};
use serde::Deserialize;
use utoipa::ToSchema;

use super::requests::RequestView;
use crate::auth::Person;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::state::ApiState;

/// A window to reserve.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    /// The resource.
    pub resource: String,
    /// When connections may start: RFC 3339 (`2026-12-03T09:00:00Z`), `now`, or `+30m` from now.
    pub from: String,
    /// When the window closes (sessions in it end then), in the same forms.
    pub until: String,
    /// Why; approvers decide on it.
    pub reason: String,
}

/// Reserves a resource for a window, as the caller.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "requests", security(("bearer" = [])), request_body = NewReservation,
    responses((status = 200, body = RequestView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    person: Person,
    Body(new): Body<NewReservation>,
) -> ApiResult<Json<RequestView>> {
    state
        .blocking(move |store, clock| {
            let now = clock.now();
            let at = |text: &str, name: &str| {
                workflows::parse_instant(text, now)
                    .map_err(|e| ApiError::invalid(format!("{name}: {e}")))
            };
            let ask = ReservationAsk {
                resource: new.resource,
                from: at(&new.from, "from")?,
                until: at(&new.until, "until")?,
                reason: new.reason,
            };
            let policy = workflows::load_policy(store)?;
            let request =
                workflows::reserve(store, &policy, &person.user, &person.roles, &ask, now)?;
            Ok(Json(RequestView(request)))
        })
        .await
}

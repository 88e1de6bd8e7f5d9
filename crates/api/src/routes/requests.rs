//! Approval requests: listing (auditor), a user's own requests and access requests, the approver's
//! inbox and endorsements. The workflows crate decides who may endorse what, as for the CLI.

use axum::extract::State;
use axum::Json;
use portcullis_store::{Clock, EndorsementDecision, Request, RequestFilter, RequestStatus, Store};
use portcullis_workflows::{self as workflows, AccessAsk};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Person, Reader};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params, Query};
use crate::state::ApiState;

/// A request as the store keeps it: kind, requester, resource, workflow, reason, status, times, what
/// it asks for (`access` or `query`) and its endorsements.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct RequestView(pub Request);

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only pending requests.
    #[serde(default)]
    pub pending: bool,
}

/// An access request: a bundle, or objects and privileges on a resource.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    /// An on-demand bundle the policy defines.
    #[serde(default)]
    pub bundle: Option<String>,
    /// The resource (without a bundle).
    #[serde(default)]
    pub resource: Option<String>,
    /// Object patterns (`hr.*`, `public.orders`).
    #[serde(default)]
    pub objects: Vec<String>,
    /// Privileges (`select`, `update`, `all`).
    #[serde(default)]
    pub privileges: Vec<String>,
    /// For how long: `30m`, `2h`, `1d` (at most the entry's `max_duration`).
    pub duration: String,
    /// Why; approvers decide on it.
    pub reason: String,
}

/// An approver's decision.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Recorded with the endorsement.
    #[serde(default)]
    pub comment: Option<String>,
}

fn views(requests: Vec<Request>) -> Json<Vec<RequestView>> {
    Json(requests.into_iter().map(RequestView).collect())
}

/// Concludes the requests whose time is up before a listing shows them, as the CLI does.
fn expire_due(store: &Store, clock: &Clock) -> ApiResult<()> {
    // Without a policy nothing escalates or is rejected on a timeout; pending requests still expire.
    let policy = workflows::load_policy(store).unwrap_or_default();
    workflows::expire_due(store, &policy.workflows, clock.now())?;
    Ok(())
}

/// Every request (newest first), or only pending ones.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<RequestView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<ApiState>,
    _: Reader,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<RequestView>>> {
    state
        .blocking(move |store, clock| {
            expire_due(store, clock)?;
            let filter = RequestFilter {
                status: query.pending.then_some(RequestStatus::Pending),
                requester: None,
            };
            Ok(views(store.list_requests(&filter)?))
        })
        .await
}

/// One request.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request number")),
    responses((status = 200, body = RequestView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<ApiState>,
    _: Reader,
    Params(id): Params<i64>,
) -> ApiResult<Json<RequestView>> {
    state
        .blocking(move |store, _| {
            let request = store.request(id)?.ok_or_else(|| {
                ApiError::not_found(format!(
                    "there is no request {id}; GET /api/v1/requests lists them"
                ))
            })?;
            Ok(Json(RequestView(request)))
        })
        .await
}

/// The caller's own requests.
#[utoipa::path(get, path = "/api/v1/me/requests", tag = "requests", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<RequestView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn mine(
    State(state): State<ApiState>,
    person: Person,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<RequestView>>> {
    state
        .blocking(move |store, clock| {
            expire_due(store, clock)?;
            let filter = RequestFilter {
                status: query.pending.then_some(RequestStatus::Pending),
                requester: Some(person.user),
            };
            Ok(views(store.list_requests(&filter)?))
        })
        .await
}

/// Asks for access on demand, as the caller.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", security(("bearer" = [])), request_body = NewAccessRequest,
    responses((status = 200, body = RequestView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    person: Person,
    Body(new): Body<NewAccessRequest>,
) -> ApiResult<Json<RequestView>> {
    let duration = portcullis_policy::parse_duration(&new.duration)
        .map_err(|e| ApiError::invalid(format!("duration: {e}")))?;
    let ask = AccessAsk {
        bundle: new.bundle,
        resource: new.resource,
        objects: new.objects,
        privileges: new.privileges,
        duration,
        reason: new.reason,
    };
    state
        .blocking(move |store, clock| {
            let policy = workflows::load_policy(store)?;
            let now = clock.now();
            let request = workflows::request_access(store, &policy, &person.user, &ask, now)?;
            Ok(Json(RequestView(request)))
        })
        .await
}

/// Pending requests the caller may decide.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "requests", security(("bearer" = [])),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn inbox(
    State(state): State<ApiState>,
    person: Person,
) -> ApiResult<Json<Vec<RequestView>>> {
    state
        .blocking(move |store, clock| {
            let policy = workflows::load_policy(store)?;
            let now = clock.now();
            Ok(views(workflows::inbox(
                store,
                &policy,
                &person.user,
                &person.roles,
                now,
            )?))
        })
        .await
}

async fn decide(
    state: ApiState,
    person: Person,
    id: i64,
    decision: EndorsementDecision,
    comment: Option<String>,
) -> ApiResult<Json<RequestView>> {
    state
        .blocking(move |store, clock| {
            let policy = workflows::load_policy(store)?;
            let request = workflows::decide(
                store,
                &policy,
                &person.user,
                &person.roles,
                id,
                decision,
                comment,
                clock.now(),
            )?;
            Ok(Json(RequestView(request)))
        })
        .await
}

/// Approves a request as one of its workflow's approvers (never one's own).
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request number")), request_body = Decision,
    responses((status = 200, body = RequestView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<ApiState>,
    person: Person,
    Params(id): Params<i64>,
    Body(body): Body<Decision>,
) -> ApiResult<Json<RequestView>> {
    decide(
        state,
        person,
        id,
        EndorsementDecision::Approve,
        body.comment,
    )
    .await
}

/// Rejects a request as one of its workflow's approvers; final.
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request number")), request_body = Decision,
    responses((status = 200, body = RequestView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(state): State<ApiState>,
    person: Person,
    Params(id): Params<i64>,
    Body(body): Body<Decision>,
) -> ApiResult<Json<RequestView>> {
    decide(state, person, id, EndorsementDecision::Reject, body.comment).await
}

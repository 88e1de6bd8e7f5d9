//! Roles and membership (admin): the same store calls as `portcullis role …`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Done;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::state::ApiState;

/// A role and its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// Role name.
    pub name: String,
    /// Member users, sorted.
    pub members: Vec<String>,
}

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Role name.
    pub name: String,
}

/// Every role and its members.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = Vec<RoleView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<ApiState>, _: Admin) -> ApiResult<Json<Vec<RoleView>>> {
    state
        .blocking(|store, _| {
            let roles = store.list_roles()?.into_iter();
            Ok(Json(
                roles
                    .map(|r| RoleView {
                        name: r.name,
                        members: r.members,
                    })
                    .collect(),
            ))
        })
        .await
}

/// Creates a role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])), request_body = NewRole,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    _: Admin,
    Body(new): Body<NewRole>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.add_role(&new.name)?;
            Ok(Done::new(format!("role {} added", new.name)))
        })
        .await
}

/// Removes a role.
#[utoipa::path(delete, path = "/api/v1/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path, description = "role name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.remove_role(&name)?;
            Ok(Done::new(format!("role {name} removed")))
        })
        .await
}

/// Makes a user a member of a role.
#[utoipa::path(put, path = "/api/v1/roles/{name}/members/{user}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path, description = "role name"), ("user" = String, Path, description = "user name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<ApiState>,
    _: Admin,
    Params((role, user)): Params<(String, String)>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.grant_role(&user, &role)?;
            Ok(Done::new(format!("{user} is now a member of {role}")))
        })
        .await
}

/// Removes a user from a role.
#[utoipa::path(delete, path = "/api/v1/roles/{name}/members/{user}", tag = "roles", security(("bearer" = [])),
    params(("name" = String, Path, description = "role name"), ("user" = String, Path, description = "user name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<ApiState>,
    _: Admin,
    Params((role, user)): Params<(String, String)>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.revoke_role(&user, &role)?;
            Ok(Done::new(format!("{user} is no longer a member of {role}")))
        })
        .await
}

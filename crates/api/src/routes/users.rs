//! Users (admin): the same store calls as `portcullis user …`.

use axum::extract::State;
use axum::Json;
use portcullis_store::{Store, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Done;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::state::ApiState;

/// A user as listed: never their password or secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Roles, sorted.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// Attributes policies read.
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            created_at: u
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            name: u.name,
            roles: u.roles,
            disabled: u.disabled,
            attributes: u.attributes,
        }
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Their gateway password (write-only).
    pub password: String,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Password {
    /// The password (write-only).
    pub password: String,
}

/// Whether a user may log in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disabled {
    /// `true` refuses their logins.
    pub disabled: bool,
}

/// An attribute's value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeValue {
    /// The value.
    pub value: String,
}

/// The user `name`, or 404.
pub(crate) fn find_user(store: &Store, name: &str) -> ApiResult<User> {
    store
        .list_users()?
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ApiError::not_found(format!("user {name:?} not found")))
}

fn password(text: &str) -> ApiResult<&str> {
    if text.is_empty() {
        return Err(ApiError::invalid("the password is empty"));
    }
    Ok(text)
}

/// Every user and their roles.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<ApiState>, _: Admin) -> ApiResult<Json<Vec<UserView>>> {
    state
        .blocking(|store, _| {
            Ok(Json(
                store
                    .list_users()?
                    .into_iter()
                    .map(UserView::from)
                    .collect(),
            ))
        })
        .await
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    _: Admin,
    Body(new): Body<NewUser>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.add_user(&new.name, password(&new.password)?)?;
            Ok(Done::new(format!("user {} added", new.name)))
        })
        .await
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
) -> ApiResult<Json<UserView>> {
    state
        .blocking(move |store, _| Ok(Json(find_user(store, &name)?.into())))
        .await
}

/// Removes a user.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.remove_user(&name)?;
            Ok(Done::new(format!("user {name} removed")))
        })
        .await
}

/// Changes a user's password.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")), request_body = Password,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn passwd(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
    Body(body): Body<Password>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.set_password(&name, password(&body.password)?)?;
            Ok(Done::new(format!("password of {name} changed")))
        })
        .await
}

/// Disables or enables a user.
#[utoipa::path(put, path = "/api/v1/users/{name}/disabled", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")), request_body = Disabled,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
    Body(body): Body<Disabled>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.set_user_disabled(&name, body.disabled)?;
            let what = if body.disabled { "disabled" } else { "enabled" };
            Ok(Done::new(format!("user {name} {what}")))
        })
        .await
}

/// Sets an attribute (`:user.attributes.KEY` in row filters).
#[utoipa::path(put, path = "/api/v1/users/{name}/attributes/{key}", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name"), ("key" = String, Path, description = "attribute key")),
    request_body = AttributeValue,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_attribute(
    State(state): State<ApiState>,
    _: Admin,
    Params((name, key)): Params<(String, String)>,
    Body(body): Body<AttributeValue>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.set_user_attribute(&name, &key, &body.value)?;
            Ok(Done::new(format!("attribute {key} of {name} set")))
        })
        .await
}

/// Removes an attribute.
#[utoipa::path(delete, path = "/api/v1/users/{name}/attributes/{key}", tag = "users", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name"), ("key" = String, Path, description = "attribute key")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unset_attribute(
    State(state): State<ApiState>,
    _: Admin,
    Params((name, key)): Params<(String, String)>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            if !store.remove_user_attribute(&name, &key)? {
                return Err(ApiError::not_found(format!(
                    "{name} has no attribute {key}"
                )));
            }
            Ok(Done::new(format!("attribute {key} of {name} removed")))
        })
        .await
}

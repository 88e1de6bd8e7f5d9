//! Resources and their credentials (admin): the same store calls as `portcullis resource …`. A
//! credential's password is write-only: no route returns it.

use axum::extract::State;
use axum::Json;
use portcullis_store::{ResourceInfo, ResourceSpec, Secret, TlsMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Done;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::state::ApiState;

/// A resource, without its credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    /// The name clients use as their database name.
    pub name: String,
    /// Upstream host.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Upstream database.
    pub database: String,
    /// `disable`, `prefer`, `require` or `verify-full`.
    pub tls: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl From<ResourceInfo> for ResourceView {
    fn from(r: ResourceInfo) -> ResourceView {
        ResourceView {
            tls: r.tls.to_string(),
            name: r.name,
            host: r.host,
            port: r.port,
            database: r.database,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A resource to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// The name clients use as their database name.
    pub name: String,
    /// Upstream host.
    pub host: String,
    /// Upstream port (default 5432).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Upstream database.
    pub database: String,
    /// The role the gateway logs in as.
    pub db_user: String,
    /// Its password (write-only, stored encrypted).
    pub password: String,
    /// `disable`, `prefer` (default), `require` or `verify-full`.
    #[serde(default)]
    pub tls: Option<String>,
}

fn default_port() -> u16 {
    5432
}

/// A replacement credential.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The role the gateway logs in as.
    pub db_user: String,
    /// Its password (write-only, stored encrypted).
    pub password: String,
}

fn secret(password: String) -> ApiResult<Secret> {
    if password.is_empty() {
        return Err(ApiError::invalid("the password is empty"));
    }
    Ok(Secret::new(password))
}

/// Every resource (never a credential).
#[utoipa::path(get, path = "/api/v1/resources", tag = "resources", security(("bearer" = [])),
    responses((status = 200, body = Vec<ResourceView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<ApiState>, _: Admin) -> ApiResult<Json<Vec<ResourceView>>> {
    state
        .blocking(|store, _| {
            let resources = store.list_resources()?.into_iter();
            Ok(Json(resources.map(ResourceView::from).collect()))
        })
        .await
}

/// Registers a resource and its credential.
#[utoipa::path(post, path = "/api/v1/resources", tag = "resources", security(("bearer" = [])), request_body = NewResource,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    _: Admin,
    Body(new): Body<NewResource>,
) -> ApiResult<Json<Done>> {
    let tls: TlsMode = match new.tls.as_deref() {
        None => TlsMode::Prefer,
        Some(text) => text.parse().map_err(|_| {
            ApiError::invalid(format!(
                "tls {text:?}: expected disable, prefer, require or verify-full"
            ))
        })?,
    };
    let spec = ResourceSpec {
        name: new.name,
        host: new.host,
        port: new.port,
        database: new.database,
        tls,
        username: new.db_user,
        password: secret(new.password)?,
    };
    state
        .blocking(move |store, _| {
            store.add_resource(&spec)?;
            Ok(Done::new(format!("resource {} added", spec.name)))
        })
        .await
}

/// Removes a resource and its credential.
#[utoipa::path(delete, path = "/api/v1/resources/{name}", tag = "resources", security(("bearer" = [])),
    params(("name" = String, Path, description = "resource name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            store.remove_resource(&name)?;
            Ok(Done::new(format!("resource {name} removed")))
        })
        .await
}

/// Replaces a resource's credential.
#[utoipa::path(put, path = "/api/v1/resources/{name}/credential", tag = "resources", security(("bearer" = [])),
    params(("name" = String, Path, description = "resource name")), request_body = Credential,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_credential(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
    Body(body): Body<Credential>,
) -> ApiResult<Json<Done>> {
    let password = secret(body.password)?;
    state
        .blocking(move |store, _| {
            store.update_credential(&name, &body.db_user, &password)?;
            Ok(Done::new(format!("credential of {name} replaced")))
        })
        .await
}

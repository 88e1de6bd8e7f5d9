//! MFA: enrolment, status and reset by an admin; status and verification by the user themselves.

use axum::extract::State;
use axum::Json;
use portcullis_store::MfaStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Done;
use crate::auth::{Admin, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::mfa::{problem, record};
use crate::state::ApiState;

/// A user's enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaView {
    /// The user.
    pub user: String,
    /// `totp`.
    pub method: String,
    /// Unix milliseconds.
    pub enrolled_at: i64,
    /// Their newest verification (unix milliseconds).
    pub last_verified_at: Option<i64>,
}

impl From<MfaStatus> for MfaView {
    fn from(s: MfaStatus) -> MfaView {
        MfaView {
            user: s.user,
            method: s.method,
            enrolled_at: s.enrolled_at,
            last_verified_at: s.last_verified_at,
        }
    }
}

/// A fresh enrolment, for the user's authenticator app; shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    /// `otpauth://totp/Portcullis:USER?secret=…&issuer=Portcullis`.
    pub uri: String,
}

/// A code to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// The 6 digits the authenticator app shows.
    pub code: String,
}

fn status(store: &portcullis_store::Store, user: &str) -> ApiResult<Json<MfaView>> {
    match store.mfa_status(user)? {
        Some(s) => Ok(Json(s.into())),
        None => Err(ApiError::not_found(format!(
            "{user} is not enrolled in MFA"
        ))),
    }
}

fn audited(e: portcullis_store::StoreError) -> ApiError {
    ApiError::internal(&format!(
        "cannot record the MFA event in the audit log: {e}"
    ))
}

/// Every enrolled user.
#[utoipa::path(get, path = "/api/v1/mfa", tag = "mfa", security(("bearer" = [])),
    responses((status = 200, body = Vec<MfaView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<ApiState>, _: Admin) -> ApiResult<Json<Vec<MfaView>>> {
    state
        .blocking(|store, _| {
            let all = store.list_mfa_status()?.into_iter();
            Ok(Json(all.map(MfaView::from).collect()))
        })
        .await
}

/// One user's enrolment.
#[utoipa::path(get, path = "/api/v1/mfa/{user}", tag = "mfa", security(("bearer" = [])),
    params(("user" = String, Path, description = "user name")),
    responses((status = 200, body = MfaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<ApiState>,
    _: Admin,
    Params(user): Params<String>,
) -> ApiResult<Json<MfaView>> {
    state.blocking(move |store, _| status(store, &user)).await
}

/// Enrols a user in TOTP; the URI goes to their authenticator app.
#[utoipa::path(post, path = "/api/v1/mfa/{user}/enrollment", tag = "mfa", security(("bearer" = [])),
    params(("user" = String, Path, description = "user name")),
    responses((status = 200, body = Enrolment), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enroll(
    State(state): State<ApiState>,
    _: Admin,
    Params(user): Params<String>,
) -> ApiResult<Json<Enrolment>> {
    state
        .blocking(move |store, clock| {
            let enrolment = store.enroll_mfa(&user, clock.now())?;
            record(store, &user, "enroll", "ok").map_err(audited)?;
            Ok(Json(Enrolment { uri: enrolment.uri }))
        })
        .await
}

/// Removes a user's enrolment (a lost device); they must enrol again.
#[utoipa::path(delete, path = "/api/v1/mfa/{user}", tag = "mfa", security(("bearer" = [])),
    params(("user" = String, Path, description = "user name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset(
    State(state): State<ApiState>,
    _: Admin,
    Params(user): Params<String>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, _| {
            if !store.reset_mfa(&user)? {
                return Err(ApiError::not_found(format!(
                    "{user} is not enrolled in MFA"
                )));
            }
            record(store, &user, "reset", "ok").map_err(audited)?;
            Ok(Done::new(format!(
                "MFA enrolment of {user} removed; they must enrol again"
            )))
        })
        .await
}

/// The caller's own enrolment.
#[utoipa::path(get, path = "/api/v1/me/mfa", tag = "mfa", security(("bearer" = [])),
    responses((status = 200, body = MfaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mine(State(state): State<ApiState>, person: Person) -> ApiResult<Json<MfaView>> {
    state
        .blocking(move |store, _| status(store, &person.user))
        .await
}

/// Completes MFA for the caller: a connection or statement the gateway holds for them goes on.
#[utoipa::path(post, path = "/api/v1/me/mfa/verify", tag = "mfa", security(("bearer" = [])), request_body = Code,
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn verify(
    State(state): State<ApiState>,
    person: Person,
    Body(body): Body<Code>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, clock| verify_code(store, clock, &person.user, &body.code))
        .await
        .map(Done::new)
}

/// Checks `user`'s code and records the verification; a hold on their connection or statement goes
/// on. Shared by the API and the web portal. Call from blocking code only.
pub fn verify_code(
    store: &portcullis_store::Store,
    clock: &portcullis_store::Clock,
    user: &str,
    code: &str,
) -> ApiResult<String> {
    let check = store.verify_mfa(user, code.trim(), clock.now())?;
    let found = problem(user, check);
    let result = found.as_ref().map_or("ok", |p| p.result);
    record(store, user, "verify", result).map_err(audited)?;
    match found {
        Some(p) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            p.code,
            p.message,
        )),
        None => Ok(format!("MFA verified for {user}")),
    }
}

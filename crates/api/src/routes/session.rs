//! `POST /api/v1/login` and `GET /api/v1/me`: a user's password (and TOTP code when enrolled) for a
//! short-lived token, and what the API knows of the caller.

use axum::Json;
use portcullis_store::{Clock, NewApiToken, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::find_user;
use crate::auth::{self, ClientAddr, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::mfa;
use crate::state::{now_millis, ApiState};

/// Login credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The gateway user.
    pub user: String,
    /// Their gateway password.
    pub password: String,
    /// The 6-digit code of their authenticator app (required once they are enrolled in MFA).
    #[serde(default)]
    pub totp: Option<String>,
}

/// A bearer token for `Authorization: Bearer …`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// The token; shown once.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When it stops working (unix milliseconds).
    pub expires_at: i64,
}

/// The caller as the API sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The gateway user.
    pub user: String,
    /// Their gateway roles.
    pub roles: Vec<String>,
    /// Their attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Whether they are enrolled in MFA.
    pub mfa_enrolled: bool,
}

/// Logs a user in: their password, and their TOTP code when enrolled in MFA (a code is accepted once,
/// and counts as an MFA verification as `portcullis mfa verify` does).
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = Login,
    responses((status = 200, body = Token), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn login(
    ClientAddr(client): ClientAddr,
    state: axum::extract::State<ApiState>,
    Body(login): Body<Login>,
) -> ApiResult<Json<Token>> {
    let ttl = i64::try_from(state.config().token_ttl.as_millis()).unwrap_or(i64::MAX);
    let require_mfa = state.config().require_mfa;
    state
        .blocking(move |store, clock| {
            let user = login.user.as_str();
            check_login(
                store,
                clock,
                user,
                &login.password,
                login.totp.as_deref(),
                require_mfa,
                &client,
            )?;
            let now = now_millis(clock);
            let expires_at = now.saturating_add(ttl);
            let login_token = NewApiToken::Login {
                user: user.to_owned(),
            };
            let issued = store.create_api_token(&login_token, now, Some(expires_at))?;
            auth::record(store, user, &client, true, "login ok")?;
            Ok(Json(Token {
                token: issued.secret,
                token_type: "Bearer".into(),
                expires_at,
            }))
        })
        .await
}

/// The checks of a login, shared by the API and the web portal: the password, and the TOTP code when
/// the user is enrolled in MFA (or a refusal when `require_mfa` and they are not). Refusals and MFA
/// verifications are audit records. Call from blocking code only.
pub fn check_login(
    store: &Store,
    clock: &Clock,
    user: &str,
    password: &str,
    totp: Option<&str>,
    require_mfa: bool,
    client: &str,
) -> ApiResult<()> {
    let refuse = |why: &str, error: ApiError| {
        let _ = auth::record(store, user, client, false, why);
        Err(error)
    };
    if !store.verify_password(user, password)? {
        return refuse(
            "bad password",
            ApiError::unauthenticated(
                "invalid_credentials",
                "wrong user name or password, or the user is disabled",
            ),
        );
    }
    if store.mfa_enrolled(user)? {
        let Some(code) = totp.filter(|c| !c.trim().is_empty()) else {
            return refuse(
                "mfa code missing",
                ApiError::unauthenticated(
                    "mfa_required",
                    format!(
                        "{user} is enrolled in MFA: send the 6-digit code of the authenticator \
                         app as `totp`"
                    ),
                ),
            );
        };
        let found = mfa::problem(user, store.verify_mfa(user, code.trim(), clock.now())?);
        let result = found.as_ref().map_or("ok", |p| p.result);
        mfa::record(store, user, "verify", result).map_err(|e| ApiError::internal(&e))?;
        if let Some(p) = found {
            return refuse(p.result, ApiError::unauthenticated(p.code, p.message));
        }
    } else if require_mfa {
        return refuse(
            "not enrolled in mfa",
            ApiError::forbidden(
                "mfa_not_enrolled",
                format!(
                    "{user} is not enrolled in MFA, which API login requires; an administrator \
                     enrols them with `portcullis mfa enroll {user}` (or POST \
                     /api/v1/mfa/{user}/enrollment)"
                ),
            ),
        );
    }
    Ok(())
}

/// The logged-in user: roles, attributes, MFA enrolment.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn me(state: axum::extract::State<ApiState>, person: Person) -> ApiResult<Json<Me>> {
    state
        .blocking(move |store, _| {
            let user = find_user(store, &person.user)?;
            Ok(Json(Me {
                mfa_enrolled: store.mfa_enrolled(&user.name)?,
                user: user.name,
                roles: user.roles,
                attributes: user.attributes,
            }))
        })
        .await
}

//! Named API tokens (admin): the same store calls as `portcullis token …`. A token's secret is shown
//! once, when it is made.

use axum::extract::State;
use axum::Json;
use portcullis_store::{ApiToken, ApiTokenRole, NewApiToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Done;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::state::{now_millis, ApiState};

/// A named token (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Its name.
    pub name: String,
    /// `admin` or `auditor`.
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; absent: until revoked.
    pub expires_at: Option<i64>,
    /// Unix milliseconds.
    pub revoked_at: Option<i64>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> TokenView {
        TokenView {
            name: t.name.unwrap_or_default(),
            role: t.role.map(|r| r.to_string()).unwrap_or_default(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Unique name.
    pub name: String,
    /// `admin` or `auditor`.
    pub role: String,
    /// How long it lasts (`90d`, `12h`); absent: until revoked.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A token just made.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewTokenSecret {
    /// The bearer token; shown only now.
    pub token: String,
    /// What was stored.
    pub info: TokenView,
}

/// Every named token.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<ApiState>, _: Admin) -> ApiResult<Json<Vec<TokenView>>> {
    state
        .blocking(|store, _| {
            let tokens = store.list_api_tokens()?.into_iter();
            Ok(Json(tokens.map(TokenView::from).collect()))
        })
        .await
}

/// Makes a named token; its secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken,
    responses((status = 200, body = NewTokenSecret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    _: Admin,
    Body(new): Body<NewToken>,
) -> ApiResult<Json<NewTokenSecret>> {
    let role: ApiTokenRole = new.role.parse()?;
    let lasts = new
        .expires
        .as_deref()
        .map(|text| {
            portcullis_policy::parse_duration(text)
                .map_err(|e| ApiError::invalid(format!("expires: {e}")))
        })
        .transpose()?;
    state
        .blocking(move |store, clock| {
            let now = now_millis(clock);
            let expires_at = lasts.map(|d| {
                now.saturating_add(i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX))
            });
            let named = NewApiToken::Named {
                name: new.name,
                role,
            };
            let issued = store.create_api_token(&named, now, expires_at)?;
            Ok(Json(NewTokenSecret {
                token: issued.secret,
                info: issued.token.into(),
            }))
        })
        .await
}

/// Revokes a named token.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens", security(("bearer" = [])),
    params(("name" = String, Path, description = "token name")),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<ApiState>,
    _: Admin,
    Params(name): Params<String>,
) -> ApiResult<Json<Done>> {
    state
        .blocking(move |store, clock| {
            store.revoke_api_token(&name, now_millis(clock))?;
            Ok(Done::new(format!("token {name} revoked")))
        })
        .await
}

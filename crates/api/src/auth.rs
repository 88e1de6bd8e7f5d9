//! Who is calling and what they may do. A bearer token is either a named token with a role
//! (`portcullis token create`) or a user's login token; a user's API roles follow from their gateway
//! roles (`api.admin_roles`, `api.auditor_roles`). Each route names the role it needs by the extractor
//! it takes: [`Admin`], [`Reader`] (auditor or admin) or [`Person`] (a logged-in user; whether they
//! may approve a given request is the workflows crate's decision). Refusals to authenticate are audit
//! records.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use portcullis_store::{ApiTokenRole, AuditEvent, ConnectionEvent, ConnectionPhase, Store};

use crate::error::{ApiError, ApiResult};
use crate::state::{now_millis, ApiState};

/// The application name API records carry in the audit log.
pub const AUDIT_APPLICATION: &str = "portcullis-api";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The gateway user of a login token; `None` for a named token.
    pub user: Option<String>,
    /// The gateway roles of that user.
    pub roles: Vec<String>,
    /// May administer.
    pub admin: bool,
    /// May read audit, monitor, requests and policy.
    pub auditor: bool,
    /// How to name the caller in records: the user, or `token:NAME`.
    pub label: String,
}

/// A caller with the admin role.
pub struct Admin(pub Principal);

/// A caller with the auditor or the admin role.
pub struct Reader(pub Principal);

/// A caller logged in as a gateway user (`POST /api/v1/login`).
pub struct Person {
    /// The user.
    pub user: String,
    /// Their gateway roles.
    pub roles: Vec<String>,
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let principal = authenticate(parts, state).await?;
        if !principal.admin {
            return Err(refused(state, "admin", "admin_roles"));
        }
        Ok(Admin(principal))
    }
}

impl FromRequestParts<ApiState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let principal = authenticate(parts, state).await?;
        if !(principal.admin || principal.auditor) {
            return Err(refused(state, "auditor", "auditor_roles"));
        }
        Ok(Reader(principal))
    }
}

impl FromRequestParts<ApiState> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let principal = authenticate(parts, state).await?;
        match principal.user {
            Some(user) => Ok(Person {
                user,
                roles: principal.roles,
            }),
            None => Err(ApiError::forbidden(
                "user_required",
                "this route acts as a gateway user; a named API token has no user: log in with \
                 POST /api/v1/login and use the token it returns",
            )),
        }
    }
}

fn refused(state: &ApiState, role: &str, setting: &str) -> ApiError {
    let roles = match setting {
        "admin_roles" => &state.config().admin_roles,
        _ => &state.config().auditor_roles,
    };
    ApiError::forbidden(
        "forbidden",
        format!(
            "this route needs the API's {role} role: a token from `portcullis token create --role \
             {role}`, or a login by a member of one of the gateway roles in api.{setting} ({})",
            roles.join(", ")
        ),
    )
}

/// Checks the bearer token and works out the caller's roles.
async fn authenticate(parts: &Parts, state: &ApiState) -> ApiResult<Principal> {
    let header = parts.headers.get(AUTHORIZATION).map(|v| v.to_str());
    let secret = match header {
        None => return Err(ApiError::unauthenticated(
            "unauthenticated",
            "send `Authorization: Bearer TOKEN`; get a token with POST /api/v1/login (users) or \
                 `portcullis token create` (administrators)",
        )),
        Some(Ok(value)) => match value.strip_prefix("Bearer ") {
            Some(secret) => secret.trim().to_owned(),
            None => {
                return Err(ApiError::unauthenticated(
                    "unauthenticated",
                    "the Authorization header must be `Bearer TOKEN`",
                ))
            }
        },
        Some(Err(_)) => {
            return Err(ApiError::unauthenticated(
                "unauthenticated",
                "the Authorization header must be `Bearer TOKEN` in plain ASCII",
            ))
        }
    };
    let client = client_addr(parts);
    let (admin_roles, auditor_roles) = (
        state.config().admin_roles.clone(),
        state.config().auditor_roles.clone(),
    );
    state
        .blocking(move |store, clock| {
            let now = now_millis(clock);
            let refuse = |code: &'static str, why: &str, message: &str| {
                let _ = record(store, "", &client, false, why);
                ApiError::unauthenticated(code, message)
            };
            let Some(token) = store.api_token(&secret)? else {
                return Err(refuse(
                    "invalid_token",
                    "unknown token",
                    "the token is not valid; log in again or ask an administrator for a new one",
                ));
            };
            if token.revoked_at.is_some() {
                return Err(refuse(
                    "token_revoked",
                    "revoked token",
                    "the token was revoked; ask an administrator for a new one",
                ));
            }
            if !token.is_live(now) {
                return Err(refuse(
                    "token_expired",
                    "expired token",
                    "the token has expired; log in again with POST /api/v1/login",
                ));
            }
            if let Some(user) = token.user {
                let Some(login) = store.user_login(&user)? else {
                    let _ = record(store, &user, &client, false, "user removed or disabled");
                    return Err(ApiError::unauthenticated(
                        "user_disabled",
                        format!("{user} no longer exists or is disabled"),
                    ));
                };
                let member = |names: &[String]| login.roles.iter().any(|r| names.contains(r));
                return Ok(Principal {
                    admin: member(&admin_roles),
                    auditor: member(&auditor_roles),
                    label: user.clone(),
                    user: Some(user),
                    roles: login.roles,
                });
            }
            Ok(Principal {
                user: None,
                roles: Vec::new(),
                admin: token.role == Some(ApiTokenRole::Admin),
                auditor: token.role == Some(ApiTokenRole::Auditor),
                label: format!("token:{}", token.name.unwrap_or_default()),
            })
        })
        .await
}

/// The peer address when the server recorded one.
pub fn client_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default()
}

/// The caller's `ip:port` for audit records; empty when unknown (in-process tests).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

/// Records an API login or a refused token as a connection record of application
/// [`AUDIT_APPLICATION`], and waits until it is written. Call from blocking code only.
pub fn record(
    store: &Store,
    user: &str,
    client_addr: &str,
    ok: bool,
    result: &str,
) -> ApiResult<()> {
    let event = AuditEvent::Connection(ConnectionEvent {
        session_id: String::new(),
        phase: if ok {
            ConnectionPhase::Open
        } else {
            ConnectionPhase::Rejected
        },
        at: portcullis_workflows::millis(time::OffsetDateTime::now_utc()).saturating_mul(1000),
        user: user.to_owned(),
        client_addr: client_addr.to_owned(),
        resource: String::new(),
        auth_result: format!("api: {result}"),
        tls: false,
        application_name: Some(AUDIT_APPLICATION.to_owned()),
        bytes_in: 0,
        bytes_out: 0,
        detail: None,
    });
    store
        .audit()
        .record(event)
        .wait_blocking()
        .map_err(|e| ApiError::internal(&e))
}

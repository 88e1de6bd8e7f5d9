//! The Portcullis HTTP API (issue 4): users, roles, resources, policy, grants, approval requests and
//! endorsements, MFA, the audit log and the policy monitor as JSON under `/api/v1`, with the OpenAPI
//! document at `/openapi.json` (no authentication). Callers authenticate with a bearer token: a user's
//! login token (`POST /api/v1/login`, password and TOTP) or a named admin/auditor token
//! (`portcullis token create`); every route checks a role ([`auth`]). Every operation calls the same
//! store, policy and workflows functions as the CLI. Errors are `{"code", "message"}` ([`error`]).

pub mod auth;
pub mod error;
mod extract;
pub mod mfa;
pub mod routes;
mod server;
mod state;
pub mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use error::{ApiError, ErrorBody};
pub use routes::records::parse_time;
pub use rustls::ServerConfig as TlsServerConfig;
pub use server::serve;
pub use state::{ApiConfig, ApiState};

/// The document's fixed parts; the paths come from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis API", description = "Administration, approvals, MFA and audit of the Portcullis database access gateway."),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api_router(ApiDoc::openapi()).into_openapi()
}

/// The whole API over `state`: routes, `/openapi.json`, JSON answers for unknown paths and methods,
/// and the body size limit; the web portal under `/web` (plain HTTP cookies).
pub fn router(state: ApiState) -> Router {
    router_with(state, false)
}

/// [`router`], telling the web portal whether the listener is HTTPS (its cookies are then `Secure`).
pub fn router_with(state: ApiState, tls: bool) -> Router {
    let portal = web::router(state.clone(), tls);
    let limit = state.config().body_limit;
    let (router, doc) = routes::api_router(ApiDoc::openapi()).split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc) }
            }),
        )
        .fallback(|| async {
            ApiError::not_found("no such API route; GET /openapi.json lists them")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method; GET /openapi.json lists what it takes",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
        .merge(portal)
}

//! The routes, one module per family. Each handler's extractor names the role it needs
//! ([`crate::auth`]); its `#[utoipa::path]` is what `/openapi.json` documents, and [`api_router`]
//! mounts handlers and documentation together so the two cannot drift apart.

pub mod metrics;
pub mod mfa;
pub mod notifications;
pub mod policy;
pub mod records;
pub mod requests;
pub mod reservations;
pub mod resources;
pub mod roles;
pub mod session;
pub mod tokens;
pub mod users;

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::ApiState;

/// What a change did, in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// E.g. `user alice added`.
    pub message: String,
}

impl Done {
    /// A JSON `{"message": …}`.
    pub fn new(message: String) -> Json<Done> {
        Json(Done { message })
    }
}

/// Every route of `/api/v1`, with its documentation.
pub fn api_router(doc: utoipa::openapi::OpenApi) -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(session::login))
        .routes(routes!(session::me))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::remove))
        .routes(routes!(users::passwd))
        .routes(routes!(users::disable))
        .routes(routes!(users::set_attribute, users::unset_attribute))
        .routes(routes!(roles::list, roles::create))
        .routes(routes!(roles::remove))
        .routes(routes!(roles::add_member, roles::remove_member))
        .routes(routes!(resources::list, resources::create))
        .routes(routes!(resources::remove))
        .routes(routes!(resources::set_credential))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(policy::show, policy::apply))
        .routes(routes!(policy::check))
        .routes(routes!(policy::versions))
        .routes(routes!(policy::version))
        .routes(routes!(policy::grants))
        .routes(routes!(requests::list, requests::create))
        .routes(routes!(requests::get))
        .routes(routes!(requests::mine))
        .routes(routes!(requests::inbox))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::reject))
        .routes(routes!(reservations::create))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(mfa::list))
        .routes(routes!(mfa::get, mfa::reset))
        .routes(routes!(mfa::enroll))
        .routes(routes!(mfa::mine))
        .routes(routes!(mfa::verify))
        .routes(routes!(records::audit))
        .routes(routes!(records::record))
        .routes(routes!(records::monitor))
        .routes(routes!(metrics::metrics))
}

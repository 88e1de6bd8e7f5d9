//! The policy in force and its earlier versions (read: auditor; apply and check: admin) and the grants
//! it and approved access requests give — the same loader and store calls as `portcullis policy …`.

use axum::extract::State;
use axum::Json;
use portcullis_policy::{privilege_name, Grant, Policy, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Reader};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Params};
use crate::state::ApiState;

/// An applied policy version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// Increases with every apply.
    pub version: i64,
    /// Where the text came from.
    pub source: String,
    /// The policy document (YAML).
    pub text: String,
    /// Unix milliseconds.
    pub applied_at: i64,
    /// Who applied it.
    pub applied_by: String,
}

impl From<portcullis_store::StoredPolicy> for PolicyView {
    fn from(p: portcullis_store::StoredPolicy) -> PolicyView {
        PolicyView {
            version: p.version,
            source: p.source,
            text: p.text,
            applied_at: p.applied_at,
            applied_by: p.applied_by,
        }
    }
}

/// How many versions `GET /api/v1/policy/versions` lists at most.
pub const VERSIONS_LISTED: usize = 500;

/// A policy document to apply or check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyText {
    /// The YAML document.
    pub text: String,
    /// A name for where it came from (default `api`), used in error positions and `policy show`.
    #[serde(default)]
    pub source: Option<String>,
}

/// What a valid document holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicySummary {
    /// The version it was applied as (absent for a check).
    pub version: Option<i64>,
    /// Number of grants.
    pub grants: usize,
    /// Number of rules.
    pub rules: usize,
    /// Number of Cedar policies.
    pub cedar: usize,
}

/// A grant in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    /// `user:NAME` or `role:NAME`.
    pub to: String,
    /// The resource, or `*`.
    pub resource: String,
    /// Object patterns.
    pub objects: Vec<String>,
    /// Privileges (`SELECT`, `UPDATE`, …).
    pub privileges: Vec<String>,
    /// `policy`, or `on-demand` for an approved access request.
    pub source: String,
}

fn grant_view(g: &Grant, source: &str) -> GrantView {
    GrantView {
        to: match &g.to {
            Principal::User(u) => format!("user:{u}"),
            Principal::Role(r) => format!("role:{r}"),
        },
        resource: g.resource.clone(),
        objects: g.objects.iter().map(ToString::to_string).collect(),
        privileges: g.privileges.iter().map(|p| privilege_name(*p)).collect(),
        source: source.to_owned(),
    }
}

fn load(doc: &PolicyText) -> ApiResult<(Policy, String)> {
    let source = doc.source.clone().unwrap_or_else(|| "api".into());
    let policy = Policy::from_yaml(&doc.text, &source).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
            e.to_string(),
        )
    })?;
    Ok((policy, source))
}

fn summary(policy: &Policy, version: Option<i64>) -> PolicySummary {
    PolicySummary {
        version,
        grants: policy.grants.len(),
        rules: policy.rules.len(),
        cedar: policy.cedar.len(),
    }
}

/// The policy in force, as applied.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = PolicyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(State(state): State<ApiState>, _: Reader) -> ApiResult<Json<PolicyView>> {
    state
        .blocking(|store, _| {
            let p = store.active_policy()?.ok_or_else(|| {
                ApiError::not_found("no policy has been applied; apply one with PUT /api/v1/policy")
            })?;
            Ok(Json(PolicyView::from(p)))
        })
        .await
}

/// Every applied version of the policy, newest first (the first is in force), at most 500.
#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = Vec<PolicyView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn versions(
    State(state): State<ApiState>,
    _: Reader,
) -> ApiResult<Json<Vec<PolicyView>>> {
    state
        .blocking(|store, _| {
            let all = store.policy_versions(VERSIONS_LISTED)?;
            Ok(Json(all.into_iter().map(PolicyView::from).collect()))
        })
        .await
}

/// One applied version of the policy.
#[utoipa::path(get, path = "/api/v1/policy/versions/{version}", tag = "policy", security(("bearer" = [])),
    params(("version" = i64, Path, description = "policy version")),
    responses((status = 200, body = PolicyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(state): State<ApiState>,
    _: Reader,
    Params(version): Params<i64>,
) -> ApiResult<Json<PolicyView>> {
    state
        .blocking(move |store, _| {
            let p = store
                .policy_version(version)?
                .ok_or_else(|| ApiError::not_found(format!("no policy version {version}")))?;
            Ok(Json(PolicyView::from(p)))
        })
        .await
}

/// Validates a policy and makes it the policy in force; running gateways load it within a second.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy", security(("bearer" = [])), request_body = PolicyText,
    responses((status = 200, body = PolicySummary), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply(
    State(state): State<ApiState>,
    Admin(admin): Admin,
    Body(doc): Body<PolicyText>,
) -> ApiResult<Json<PolicySummary>> {
    let (policy, source) = load(&doc)?;
    state
        .blocking(move |store, _| {
            let version = store.apply_policy(&source, &doc.text, &admin.label)?;
            Ok(Json(summary(&policy, Some(version))))
        })
        .await
}

/// Validates a policy without applying it; errors are `file:line:column: message` lines.
#[utoipa::path(post, path = "/api/v1/policy/check", tag = "policy", security(("bearer" = [])), request_body = PolicyText,
    responses((status = 200, body = PolicySummary), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn check(_: Admin, Body(doc): Body<PolicyText>) -> ApiResult<Json<PolicySummary>> {
    let (policy, _) = load(&doc)?;
    Ok(Json(summary(&policy, None)))
}

/// The grants in force now: the policy's, and those approved access requests give.
#[utoipa::path(get, path = "/api/v1/grants", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = Vec<GrantView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn grants(State(state): State<ApiState>, _: Reader) -> ApiResult<Json<Vec<GrantView>>> {
    state
        .blocking(|store, clock| {
            let policy = portcullis_workflows::load_policy(store)?;
            let now = clock.now();
            let on_demand = portcullis_workflows::active_grants(store, &policy, now)?;
            let granted = policy.grants.iter().filter(|g| g.is_active(now));
            Ok(Json(
                granted
                    .map(|g| grant_view(g, "policy"))
                    .chain(on_demand.iter().map(|g| grant_view(g, "on-demand")))
                    .collect(),
            ))
        })
        .await
}

//! The caller's notifications: what workflow steps told them (a request waiting for their decision,
//! how their own request ended), the same inbox `portcullis inbox --notifications` shows.

use axum::extract::State;
use axum::Json;
use portcullis_store::InboxEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Person;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, Query};
use crate::state::{now_millis, ApiState};

/// The most notifications one listing returns.
const LIMIT: u32 = 500;

/// A notification in the caller's inbox: id, request, event, subject, body, recipients, when, and
/// `read_at` once marked read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct NotificationView(pub InboxEntry);

/// Which notifications to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread: bool,
}

/// Notifications to mark read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Their ids; absent: all of the caller's.
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
}

/// How many notifications a change touched.
#[derive(Debug, Serialize, ToSchema)]
pub struct Marked {
    /// Notifications that were unread and are read now.
    pub marked: usize,
}

/// The caller's notifications, unread first, then newest first (at most 500).
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "requests", security(("bearer" = [])), params(InboxQuery),
    responses((status = 200, body = Vec<NotificationView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<ApiState>,
    person: Person,
    Query(query): Query<InboxQuery>,
) -> ApiResult<Json<Vec<NotificationView>>> {
    state
        .blocking(move |store, _| {
            let entries = store.inbox_notifications(&person.user, query.unread, LIMIT)?;
            Ok(Json(entries.into_iter().map(NotificationView).collect()))
        })
        .await
}

/// Marks the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/me/notifications/read", tag = "requests", security(("bearer" = [])), request_body = MarkRead,
    responses((status = 200, body = Marked), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<ApiState>,
    person: Person,
    Body(body): Body<MarkRead>,
) -> ApiResult<Json<Marked>> {
    state
        .blocking(move |store, clock| {
            let marked = store.mark_notifications_read(
                &person.user,
                body.ids.as_deref(),
                now_millis(clock),
            )?;
            Ok(Json(Marked { marked }))
        })
        .await
}

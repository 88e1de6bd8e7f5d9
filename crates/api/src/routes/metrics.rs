//! `GET /metrics`: the process's Prometheus metrics, for auditors and admins on the API listener, and
//! without authentication on a listener of its own ([`router`]) that only a scraper should reach.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::auth::Reader;

/// Prometheus metrics in the OpenMetrics text format (see the README's "Metrics" section).
#[utoipa::path(get, path = "/metrics", tag = "records", security(("bearer" = [])),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn metrics(_: Reader) -> impl IntoResponse {
    scrape().await
}

async fn scrape() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, portcullis_metrics::CONTENT_TYPE)],
        portcullis_metrics::encode(),
    )
}

/// `/metrics` alone, unauthenticated, for a listener of its own.
pub fn router() -> Router {
    Router::new().route("/metrics", get(scrape))
}

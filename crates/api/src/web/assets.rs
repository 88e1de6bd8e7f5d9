//! The portal's static files, compiled into the binary: no CDN, nothing fetched at run time.

use axum::http::header;
use axum::response::IntoResponse;

/// htmx 2 (htmx.org on npm, `dist/htmx.min.js`; BSD Zero Clause licence, see htmx.LICENSE).
const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
/// The portal's style sheet.
const CSS: &[u8] = include_bytes!("assets/portal.css");

fn asset(body: &'static [u8], kind: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

/// `GET /web/assets/htmx.min.js`.
pub async fn htmx() -> impl IntoResponse {
    asset(HTMX, "text/javascript; charset=utf-8")
}

/// `GET /web/assets/portal.css`.
pub async fn css() -> impl IntoResponse {
    asset(CSS, "text/css; charset=utf-8")
}

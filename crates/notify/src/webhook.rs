//! What webhook bodies share.

/// Slack treats `<`, `>` and `&` as control characters (links, mentions) unless escaped.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! Webhook bodies.

use std::fmt::Write;

use portcullis_notify::webhook::slack_escape as escape;

use super::{Alert, AlertFormat};

/// Statement text longer than this is cut in chat messages (the JSON body always has all of it).
const CHAT_STATEMENT_CHARS: usize = 1500;

/// The body for `alert` in `format`.
pub(super) fn render(alert: &Alert, format: AlertFormat) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        AlertFormat::Json => serde_json::to_vec(alert),
        AlertFormat::Slack => serde_json::to_vec(&serde_json::json!({ "text": chat_text(alert) })),
    }
}

/// One message in Slack's mrkdwn: a headline, who/where, and the statement as a code block.
fn chat_text(alert: &Alert) -> String {
    let mut text = format!(
        "*[{}] {}*\nrule `{}`",
        alert.severity.as_str().to_ascii_uppercase(),
        escape(&alert.message),
        escape(&alert.rule_id)
    );
    if let Some(name) = &alert.rule_name {
        let _ = write!(text, " ({})", escape(name));
    }
    let _ = write!(
        text,
        " · {} by `{}` on `{}` from {} · session {}",
        alert.kind.as_str(),
        escape(&alert.user),
        escape(&alert.resource),
        escape(&alert.client_addr),
        escape(&alert.session_id)
    );
    if let Some(statement) = &alert.statement {
        let cut = match statement.char_indices().nth(CHAT_STATEMENT_CHARS) {
            Some((i, _)) => format!("{} …", &statement[..i]),
            None => statement.clone(),
        };
        // A literal ``` in the statement would end the code block early.
        let cut = escape(&cut).replace("```", "`\u{200b}``");
        let _ = write!(text, "\n```{cut}```");
    }
    text
}

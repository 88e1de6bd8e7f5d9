//! Webhook bodies of a notification.

use portcullis_store::Notification;

use crate::webhook::slack_escape;
use crate::WebhookFormat;

/// The body for `notification` in `format`. The JSON one is the object the workflow step wrote (request
/// id, kind, user, resource, reason, statement, the commands to decide, subject and text).
pub(crate) fn render(notification: &Notification, format: WebhookFormat) -> Vec<u8> {
    match format {
        WebhookFormat::Json => notification.payload.clone().into_bytes(),
        WebhookFormat::Slack => {
            let text = format!(
                "*{}*\n{}",
                slack_escape(&notification.subject),
                slack_escape(notification.body.trim_end())
            );
            serde_json::json!({ "text": text }).to_string().into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn notification() -> Notification {
        Notification {
            id: 1,
            request_id: 17,
            event: "requested".into(),
            requester: "alice".into(),
            resource: "app".into(),
            workflow: "default".into(),
            recipients: vec!["carol".into()],
            subject: "[portcullis] request 17 (query) by alice on app needs approval".into(),
            body: "statement: DELETE FROM t WHERE a < 1 & b > 2\n  portcullis approve 17\n".into(),
            payload: r#"{"request_id":17,"event":"requested"}"#.into(),
            created_at: 0,
        }
    }

    #[test]
    fn json_is_the_stored_object_and_slack_one_escaped_text() {
        let json: Value =
            serde_json::from_slice(&render(&notification(), WebhookFormat::Json)).unwrap();
        assert_eq!(json["request_id"], 17);
        let slack: Value =
            serde_json::from_slice(&render(&notification(), WebhookFormat::Slack)).unwrap();
        let object = slack.as_object().unwrap();
        assert_eq!(object.len(), 1, "only text: {slack}");
        let text = object["text"].as_str().unwrap();
        assert!(
            text.starts_with("*[portcullis] request 17 (query)"),
            "{text}"
        );
        assert!(text.contains("a &lt; 1 &amp; b &gt; 2"), "{text}");
        assert!(text.ends_with("portcullis approve 17"), "{text}");
    }
}

//! `alert` rules: each firing is logged at warn level and sent to the configured webhook.

use portcullis_policy::{Action, FiredRule};
use time::OffsetDateTime;

use super::SessionInfo;
use crate::alerts::{Alert, AlertKind, Alerter};

impl Alerter {
    /// Raises an alert for every fired `alert` rule, whether it fired before the statement ran or on
    /// its row count after. Never waits: a slow or down receiver must not hold up statements.
    /// `statement` is the statement's text, `None` for a connection stage.
    pub fn fired(
        &self,
        info: &SessionInfo,
        fired: &[FiredRule],
        actions: &[String],
        statement: Option<&str>,
    ) {
        for rule in fired.iter().filter(|f| f.action == Action::Alert) {
            let components: Vec<&str> = rule
                .components
                .iter()
                .filter_map(|i| actions.get(*i).map(String::as_str))
                .collect();
            let message = match (&rule.message, components.is_empty()) {
                (Some(m), _) => m.clone(),
                (None, false) => format!("rule `{}` fired on {}", rule.id, components.join(", ")),
                (None, true) => format!("rule `{}` fired", rule.id),
            };
            self.send(Alert {
                time: OffsetDateTime::now_utc(),
                severity: rule.severity,
                kind: if statement.is_some() {
                    AlertKind::Statement
                } else {
                    AlertKind::Connection
                },
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                message,
                user: info.user.clone(),
                resource: info.resource.clone(),
                client_addr: info.client_addr.clone(),
                statement: statement.map(str::to_string),
                session_id: info.id.clone(),
            });
        }
    }
}

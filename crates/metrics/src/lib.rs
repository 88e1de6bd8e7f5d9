//! Portcullis's Prometheus metrics: one registry per process, and the functions the gateway and the
//! store call to move them.
//!
//! The per-statement calls ([`gateway::statement`], [`gateway::decision`],
//! [`audit::journal_appended`]) are one relaxed atomic add on a counter created at start-up: every
//! label they take is a fixed value picked by an enum, so nothing is allocated, hashed or locked on
//! that path. Metrics labelled by a configured name (a resource, a sink) look their counter up in a
//! family, which takes a lock; they are called when something goes wrong or from background threads.
//!
//! This crate depends on nothing else of Portcullis's, so anything can report into it.

pub mod audit;
pub mod gateway;
mod registry;

/// The `Content-Type` of [`encode`]'s text (OpenMetrics, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of this process in the OpenMetrics text format, ending in `# EOF`.
pub fn encode() -> String {
    registry::encode()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use gateway::{Decision, Stage};

    /// The value of the sample line that starts with `series ` (name and labels exactly).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn calls_move_the_series_a_scrape_reads() {
        gateway::session_opened();
        gateway::session_opened();
        gateway::session_closed();
        gateway::statement(Decision::Deny);
        gateway::decision(Stage::Statement, Decision::Deny);
        gateway::upstream_connect_error("hr");
        gateway::mfa_hold();
        audit::journal_appended(120, 7);
        audit::journal_synced(Duration::from_micros(300));
        audit::indexed(5, 5);
        audit::sink_lag("siem", 3);
        let text = encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        let value =
            |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in {text}"));
        assert_eq!(value("portcullis_sessions_opened_total"), 2.0);
        assert_eq!(value("portcullis_sessions_open"), 1.0);
        assert_eq!(
            value(r#"portcullis_statements_total{decision="deny"}"#),
            1.0
        );
        // Every fixed label set is there from the start, at zero.
        assert_eq!(
            value(r#"portcullis_statements_total{decision="allow"}"#),
            0.0
        );
        assert_eq!(
            value(r#"portcullis_policy_decisions_total{stage="statement",outcome="deny"}"#),
            1.0
        );
        assert_eq!(
            value(r#"portcullis_policy_decisions_total{stage="pre-connection",outcome="allow"}"#),
            0.0
        );
        assert_eq!(
            value(r#"portcullis_upstream_connect_errors_total{resource="hr"}"#),
            1.0
        );
        assert_eq!(value("portcullis_mfa_holds_total"), 1.0);
        assert_eq!(
            value("portcullis_audit_journal_appended_bytes_total"),
            120.0
        );
        assert_eq!(value("portcullis_audit_journal_records_total"), 1.0);
        assert_eq!(value("portcullis_audit_journal_fsync_seconds_count"), 1.0);
        assert_eq!(value("portcullis_audit_indexed_records_total"), 5.0);
        assert_eq!(value("portcullis_audit_index_lag_records"), 2.0);
        assert_eq!(
            value(r#"portcullis_audit_sink_lag_records{sink="siem"}"#),
            3.0
        );
    }
}
